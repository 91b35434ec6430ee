//! Everything that touches JavaScript (wasm32 only): the exported `Core` class.
//!
//! The npm wrapper (npm/src/tracker.js) owns what JavaScript does cheaply — options and their
//! defaults, timers, page lifecycle listeners, fetch/sendBeacon, storage selection and
//! automatic context — and calls this narrow interface of strings and numbers. No closures cross
//! the boundary: each wasm-bindgen closure type costs glue and shims (tracker size budget).

pub mod core;
