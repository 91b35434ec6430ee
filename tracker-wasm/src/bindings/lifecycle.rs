//! Page lifecycle hooks, attached only where the host has them (browsers; not Node).
//!
//! - `visibilitychange` → hidden: send now with keepalive (mobile browsers may kill a hidden
//!   page without any further event); visible: resume normal sending.
//! - `pagehide`: beacon the queue in ≤ 63 KiB chunks and release it for adoption; the events
//!   stay stored until a collector answer confirms them, so the next page load resends what the
//!   beacon could not deliver.
//! - `pageshow` from the back/forward cache: take the queue back if nobody adopted it.
//! - `online`: retry at once.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsValue;

use super::js;

/// The lifecycle moments the tracker reacts to.
#[derive(Clone, Copy)]
pub enum Moment {
    /// The page became hidden.
    Hidden,
    /// The page became visible.
    Visible,
    /// The page is being unloaded or put in the back/forward cache.
    PageHide,
    /// The page came back from the back/forward cache.
    PageShowPersisted,
    /// The network came back.
    Online,
}

fn listen(target: &JsValue, event: &str, handler: Box<dyn FnMut(JsValue)>) {
    if js::method(target, "addEventListener").is_none() {
        return;
    }
    // Owned by the JS function from here on: collected with it, never freed by Rust.
    // Boxed handlers share one closure type, so its wasm shims exist once.
    let f = Closure::wrap(handler).into_js_value();
    let _ = js::call(target, "addEventListener", &[&event.into(), &f]);
}

/// Calls `on` for each lifecycle moment the host can signal.
pub fn watch(on: impl Fn(Moment) + Clone + 'static) {
    let global = js::global();
    let document = js::get(&global, "document");
    let doc = document.clone();
    let f = on.clone();
    listen(
        &document,
        "visibilitychange",
        Box::new(move |_| {
            if js::get(&doc, "visibilityState").as_string().as_deref() == Some("hidden") {
                f(Moment::Hidden)
            } else {
                f(Moment::Visible)
            }
        }),
    );
    let f = on.clone();
    listen(&global, "pagehide", Box::new(move |_| f(Moment::PageHide)));
    let f = on.clone();
    listen(
        &global,
        "pageshow",
        Box::new(move |event| {
            if js::get(&event, "persisted").as_bool() == Some(true) {
                f(Moment::PageShowPersisted)
            }
        }),
    );
    listen(&global, "online", Box::new(move |_| on(Moment::Online)));
}
