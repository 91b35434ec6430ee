//! The key-value storage the tracker persists into, and an in-memory one.
//!
//! The browser's localStorage, a host-supplied `{getItem, setItem, removeItem}` object and the
//! memory fallback all look like this trait; everything above it is storage-agnostic.

use std::cell::RefCell;

/// Synchronous string storage shared by every tracker instance with access to it.
pub trait Store {
    /// The value at `key`, if any.
    fn get(&self, key: &str) -> Option<String>;
    /// Stores `value` at `key`; `false` if the store refused (quota, private mode, a throwing host).
    fn set(&self, key: &str, value: &str) -> bool;
    /// Removes `key`.
    fn remove(&self, key: &str);
    /// Every key, joined by `\n`, if the store can list them (localStorage can; a host store
    /// may not). One string rather than a list: that is how the keys cross from JavaScript.
    fn keys(&self) -> Option<String>;
}

/// Storage that lives as long as the process; used when nothing persistent exists.
/// A plain list: it holds a handful of keys, and a map type would add kilobytes of wasm.
#[derive(Debug, Default)]
pub struct MemoryStore(RefCell<Vec<(String, String)>>);

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Option<String> {
        self.0
            .borrow()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
    fn set(&self, key: &str, value: &str) -> bool {
        let mut items = self.0.borrow_mut();
        match items.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.into(),
            None => items.push((key.into(), value.into())),
        }
        true
    }
    fn remove(&self, key: &str) {
        self.0.borrow_mut().retain(|(k, _)| k != key);
    }
    fn keys(&self) -> Option<String> {
        let mut all = String::new();
        for (k, _) in self.0.borrow().iter() {
            all.push_str(k);
            all.push('\n');
        }
        Some(all)
    }
}
