//! Everything that touches JavaScript (wasm32 only): `Core` and its exports.
//!
//! The npm wrapper (npm/src/tracker.js) owns what JavaScript does cheaply — options and their
//! defaults, timers, page lifecycle listeners, fetch/sendBeacon, storage selection and
//! automatic context — and calls this narrow interface of strings and numbers. No closures cross
//! the boundary: each wasm-bindgen closure type costs glue and shims (tracker size budget).

pub mod core;

use wasm_bindgen::prelude::wasm_bindgen;

// A plain function of a number (not `new Date(ms)` as an imported class): a returned string
// crosses without a JS object, so no externref table code ships for it.
#[wasm_bindgen(inline_js = "export function iso(ms) { return new Date(ms).toISOString(); }")]
extern "C" {
    /// `new Date(ms).toISOString()`: the wire timestamps (see `wire`).
    #[wasm_bindgen(js_name = iso)]
    pub fn iso_timestamp(ms: f64) -> String;
}
