//! The storage behind the queue and ids: a host-supplied object, else localStorage, else memory.

use wasm_bindgen::JsValue;

use super::js;
use crate::store::{MemoryStore, Store};

/// A `{getItem, setItem, removeItem}` object (localStorage or the host's), or process memory.
pub enum HostStore {
    /// A JS storage object; key listing works if it has `length` and `key(i)` like localStorage.
    Js(JsValue),
    /// No persistent storage available.
    Memory(MemoryStore),
}

impl HostStore {
    /// `storage` option if given, else `globalThis.localStorage` if it exists and works (it
    /// throws in some privacy modes and sandboxed frames), else memory.
    pub fn pick(option: &JsValue) -> HostStore {
        if option.is_object() {
            return HostStore::Js(option.clone());
        }
        let local = js::get(&js::global(), "localStorage");
        let probe = "eventline.probe";
        if js::call(&local, "setItem", &[&probe.into(), &"1".into()]).is_ok() {
            let _ = js::call(&local, "removeItem", &[&probe.into()]);
            return HostStore::Js(local);
        }
        HostStore::Memory(MemoryStore::default())
    }

    /// Whether events survive a reload.
    pub fn persistent(&self) -> bool {
        matches!(self, HostStore::Js(_))
    }
}

impl Store for HostStore {
    fn get(&self, key: &str) -> Option<String> {
        match self {
            HostStore::Js(s) => js::call(s, "getItem", &[&key.into()]).ok()?.as_string(),
            HostStore::Memory(m) => m.get(key),
        }
    }
    fn set(&self, key: &str, value: &str) -> bool {
        match self {
            HostStore::Js(s) => js::call(s, "setItem", &[&key.into(), &value.into()]).is_ok(),
            HostStore::Memory(m) => m.set(key, value),
        }
    }
    fn remove(&self, key: &str) {
        match self {
            HostStore::Js(s) => {
                let _ = js::call(s, "removeItem", &[&key.into()]);
            }
            HostStore::Memory(m) => m.remove(key),
        }
    }
    fn keys(&self) -> Option<Vec<String>> {
        match self {
            HostStore::Js(s) => {
                let len = js::get(s, "length").as_f64()?;
                js::method(s, "key")?;
                let mut keys = Vec::new();
                for i in 0..len as u32 {
                    if let Some(k) = js::call(s, "key", &[&JsValue::from(i)])
                        .ok()
                        .and_then(|k| k.as_string())
                    {
                        keys.push(k);
                    }
                }
                Some(keys)
            }
            HostStore::Memory(m) => m.keys(),
        }
    }
}
