//! Small helpers over `Reflect` for duck-typed host objects, plus errors, randomness and time.
//!
//! Dynamic property access keeps the glue small (one import serves every lookup) and lets each
//! feature be detected at run time instead of assuming a browser.

use event_model::Violation;
use js_sys::{Function, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

use crate::engine::{Entropy, Rejection};
use crate::validate;

/// The global object (`globalThis`): window, worker scope, or Node's global.
pub fn global() -> JsValue {
    js_sys::global().into()
}

/// `obj[key]`, or `undefined` when `obj` is not an object or the getter throws.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() && !obj.is_function() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// `obj[key] = value` (ignored if it throws).
pub fn set(obj: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

/// `obj[key]` if it is a function.
pub fn method(obj: &JsValue, key: &str) -> Option<Function> {
    get(obj, key).dyn_into::<Function>().ok()
}

/// Calls `obj[key](...args)`; `Err` if it is missing or throws.
pub fn call(obj: &JsValue, key: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
    let f = method(obj, key).ok_or(JsValue::UNDEFINED)?;
    match args {
        [] => f.call0(obj),
        [a] => f.call1(obj, a),
        [a, b] => f.call2(obj, a, b),
        [a, b, c, ..] => f.call3(obj, a, b, c),
    }
}

/// A plain object from key/value pairs.
pub fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let obj: JsValue = Object::new().into();
    for (k, v) in fields {
        set(&obj, k, v);
    }
    obj
}

/// Unix ms now.
pub fn now() -> f64 {
    js_sys::Date::now()
}

/// A JS `Error` with `.code` and `.field`, as the contract promises for rule violations.
pub fn error(code: &str, field: &str) -> JsValue {
    let err: JsValue =
        js_sys::Error::new(&["eventline: ", &validate::message(code, field)].concat()).into();
    set(&err, "code", &JsValue::from_str(code));
    set(&err, "field", &JsValue::from_str(field));
    err
}

/// The JS error for a broken rule.
pub fn violation(v: &Violation) -> JsValue {
    error(v.code.as_str(), &v.field)
}

/// `String(n)`: the engine's shortest round-trip formatting, so none ships in the wasm.
pub fn number_text(n: f64) -> String {
    js_sys::Number::from(n)
        .to_string_with_radix(10)
        .map(String::from)
        .unwrap_or_else(|_| "0".into())
}

/// Reports events given up on: `onRejected(list)` if set, and `console.warn`.
pub fn report(on_rejected: Option<&Function>, rejections: Vec<Rejection>) {
    if rejections.is_empty() {
        return;
    }
    let list = js_sys::Array::new();
    for r in rejections {
        list.push(&object(&[
            ("eventId", r.event_id.into()),
            ("name", r.name.into()),
            ("code", r.code.into()),
            ("field", r.field.into()),
            ("message", r.message.into()),
        ]));
    }
    let console = get(&global(), "console");
    let _ = call(
        &console,
        "warn",
        &[&"eventline: events dropped".into(), &list],
    );
    if let Some(f) = on_rejected {
        // A throwing callback must not break delivery.
        let _ = f.call1(&JsValue::UNDEFINED, &list);
    }
}

/// Randomness from `crypto.getRandomValues` (browsers, Node ≥ 19, React Native with a
/// polyfill), else `Math.random` (good enough for ids that only need to be unique).
pub struct Crypto;

impl Entropy for Crypto {
    fn bytes(&mut self) -> [u8; 16] {
        let arr = Uint8Array::new_with_length(16);
        let crypto = get(&global(), "crypto");
        if call(&crypto, "getRandomValues", &[&arr]).is_err() {
            for i in 0..16 {
                arr.set_index(i, (js_sys::Math::random() * 256.0) as u8);
            }
        }
        let mut out = [0u8; 16];
        arr.copy_to(&mut out);
        out
    }
}
