//! Helpers shared by the Node and browser suites: a JS host (storage, randomness, a list of
//! rejections) for the exported `Core`, and small JS conveniences.

#![allow(dead_code)]

use eventline_tracker::{Core, Host};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

pub const PARTNER: &str = "5f0c7c1e-7d7a-4c1b-9a57-2f1d3c4b5a69";
pub const T: f64 = 1_795_600_800_000.0;

#[wasm_bindgen(inline_js = r#"
// A host object, registered where the crate's test-side imports look it up
// (src/bindings/core.rs): returns [its number, the object].
export function make_host(storage) {
  const rejected = [];
  const host = {
    rejected,
    get(k) { const v = storage.getItem(k); return typeof v === 'string' ? v : undefined; },
    set(k, v) { storage.setItem(k, v); return true; },
    remove(k) { storage.removeItem(k); },
    keys() {
      if (typeof storage.key !== 'function') return undefined;
      const out = [];
      for (let i = 0; i < storage.length; i++) out.push(storage.key(i));
      return out.join('\n');
    },
    fill(b) { globalThis.crypto.getRandomValues(b); },
    reject(eventId, name) { rejected.push([eventId, name].join(' ')); },
  };
  const hosts = (globalThis.eventlineHosts ??= []);
  return [hosts.push(host) - 1, host];
}
export function memory_storage() {
  const map = new Map();
  return { map, getItem: (k) => (map.has(k) ? map.get(k) : null), setItem: (k, v) => map.set(k, v), removeItem: (k) => map.delete(k) };
}
export function local_storage() { return globalThis.localStorage; }
export function rejected(host) { return host.rejected.splice(0).join('\n'); }
export function values(storage, prefix) {
  const out = [];
  const keys = storage.map ? [...storage.map.keys()] : Array.from({ length: storage.length }, (_, i) => storage.key(i));
  for (const k of keys) if (k.startsWith(prefix)) out.push(k + '=' + storage.getItem(k));
  return out.join('\x1e');
}
"#)]
extern "C" {
    fn make_host(storage: &JsValue) -> JsValue;
    pub fn memory_storage() -> JsValue;
    pub fn local_storage() -> JsValue;
    fn rejected(host: &JsValue) -> String;
    fn values(storage: &JsValue, prefix: &str) -> String;
}

/// What `Core` answers for a broken rule: `!<code number>\x1f<field>`.
pub fn err(code: event_model::ErrorCode, field: &str) -> String {
    ["!", &(code as u8).to_string(), "\x1f", field].concat()
}

/// A `Core` over `storage` and its host (to read the rejections back).
pub fn core(storage: &JsValue, prefix: &str, batch_size: f64) -> (Core, JsValue) {
    let made = make_host(storage);
    let number = js_sys::Reflect::get_u32(&made, 0)
        .unwrap()
        .as_f64()
        .unwrap() as u32;
    let host = js_sys::Reflect::get_u32(&made, 1).unwrap();
    let core = Core::new(
        Host(number),
        "http://collector.test/v1/events".into(),
        PARTNER.into(),
        "online_store".into(),
        batch_size,
        60_000.0,
        1000.0,
        1000.0,
        1_800_000.0,
        prefix.into(),
        T,
    );
    (core, host)
}

/// The events the queue cap pushed out since the last call, one `eventId name` a line.
pub fn take_rejected(host: &JsValue) -> String {
    rejected(host)
}

/// Every stored `key=value` under `prefix.`, separated by `\x1e`.
pub fn stored(storage: &JsValue, prefix: &str) -> String {
    values(storage, &[prefix, "."].concat())
}

/// How many events are in stored queues under `prefix`.
pub fn queued(storage: &JsValue, prefix: &str) -> usize {
    let q = [prefix, ".q."].concat();
    stored(storage, prefix)
        .split('\x1e')
        .filter(|l| l.starts_with(&q))
        .map(|l| l.matches("\"event_id\"").count())
        .sum()
}

/// Splits a `Core::batch` answer into the ids and the body (skipping the names).
pub fn split(batch: &str) -> (String, String) {
    let mut parts = batch.splitn(3, '\x1e');
    let ids = parts.next().unwrap_or_default().to_string();
    parts.next();
    (ids, parts.next().unwrap_or_default().to_string())
}

/// The event names of a `Core::batch` answer, separated by `\x1f`.
pub fn names(batch: &str) -> String {
    batch.split('\x1e').nth(1).unwrap_or_default().to_string()
}
