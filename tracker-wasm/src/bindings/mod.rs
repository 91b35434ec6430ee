//! Everything that touches JavaScript (wasm32 only). Nothing here assumes `window` or `document`:
//! every host object is looked up on the global object and used only if present, so the same
//! module runs in browsers, workers, Node and mobile JS runtimes.

mod autocontext;
mod host_store;
mod js;
mod lifecycle;
mod options;
mod timers;
pub mod tracker;
mod transport;
