//! `setTimeout` through the global object (browsers, workers, Node, React Native all have it).

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsValue;

use super::js;

/// Runs `f` once after `ms`. In Node the timer is `unref`ed: a pending retry or heartbeat must
/// not keep a script alive (call `await tracker.flush()` before exiting instead).
pub fn after(ms: f64, f: Box<dyn FnOnce()>) {
    // Boxed so every timer shares one closure type (each type adds its own wasm shims).
    let callback = Closure::once_into_js(f);
    if let Ok(handle) = js::call(
        &js::global(),
        "setTimeout",
        &[&callback, &JsValue::from_f64(ms.max(0.0))],
    ) {
        let _ = js::call(&handle, "unref", &[]);
    }
}
