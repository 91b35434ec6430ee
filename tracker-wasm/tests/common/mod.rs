//! Helpers shared by the Node and browser suites: a recording host transport, a host storage,
//! and small JS conveniences.

#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

pub const PARTNER: &str = "5f0c7c1e-7d7a-4c1b-9a57-2f1d3c4b5a69";

pub fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &key.into()).unwrap()
}

pub fn set(obj: &JsValue, key: &str, value: &JsValue) {
    Reflect::set(obj, &key.into(), value).unwrap();
}

pub fn func<F: FnMut(JsValue) -> JsValue + 'static>(f: F) -> Function {
    Closure::<dyn FnMut(JsValue) -> JsValue>::new(f)
        .into_js_value()
        .unchecked_into()
}

/// A request the tracker made: its body and whether keepalive was asked for.
#[derive(Clone, Debug)]
pub struct Sent {
    pub body: String,
    pub keepalive: bool,
}

impl Sent {
    pub fn event_ids(&self) -> Vec<String> {
        let body = js_sys::JSON::parse(&self.body).unwrap();
        Array::from(&get(&body, "events"))
            .iter()
            .map(|e| get(&e, "event_id").as_string().unwrap())
            .collect()
    }
}

/// A host transport that records requests and answers with the next scripted status
/// (200 answers accept every event; other statuses carry an `error` body).
#[derive(Clone, Default)]
pub struct Collector {
    pub sent: Rc<RefCell<Vec<Sent>>>,
    pub statuses: Rc<RefCell<Vec<u16>>>,
}

impl Collector {
    pub fn answer_next(&self, status: u16) {
        self.statuses.borrow_mut().push(status);
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.borrow().clone()
    }

    pub fn transport(&self) -> Function {
        let me = self.clone();
        func(move |req| {
            let body = get(&req, "body").as_string().unwrap();
            let keepalive = get(&req, "keepalive").as_bool().unwrap();
            me.sent.borrow_mut().push(Sent {
                body: body.clone(),
                keepalive,
            });
            let status = {
                let mut s = me.statuses.borrow_mut();
                if s.is_empty() {
                    200
                } else {
                    s.remove(0)
                }
            };
            let answer = Object::new();
            set(&answer, "status", &status.into());
            let text = if status == 200 {
                let parsed = js_sys::JSON::parse(&body).unwrap();
                let results = Array::new();
                for (i, e) in Array::from(&get(&parsed, "events")).iter().enumerate() {
                    let r = Object::new();
                    set(&r, "index", &(i as u32).into());
                    set(&r, "event_id", &get(&e, "event_id"));
                    set(&r, "status", &"accepted".into());
                    results.push(&r);
                }
                let obj = Object::new();
                set(&obj, "results", &results);
                js_sys::JSON::stringify(&obj).unwrap().into()
            } else if status == 400 {
                r#"{"error":{"code":"unknown_partner","message":"partner_id names no partner","field":"partner_id"}}"#.to_string()
            } else {
                r#"{"error":{"code":"storage_unavailable","message":"try later","field":""}}"#
                    .to_string()
            };
            set(&answer, "body", &text.into());
            Promise::resolve(&answer).into()
        })
    }
}

/// A host storage backed by a JS Map, with the three methods the contract names.
pub fn host_storage() -> (JsValue, js_sys::Map) {
    let map = js_sys::Map::new();
    let storage = Object::new();
    let m = map.clone();
    set(
        &storage,
        "getItem",
        &func(move |k| {
            let v = m.get(&k);
            if v.is_undefined() {
                JsValue::NULL
            } else {
                v
            }
        }),
    );
    let m = map.clone();
    let set_item = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |k, v| {
        m.set(&k, &v);
    });
    set(&storage, "setItem", &set_item.into_js_value());
    let m = map.clone();
    set(
        &storage,
        "removeItem",
        &func(move |k| {
            m.delete(&k);
            JsValue::UNDEFINED
        }),
    );
    (storage.into(), map)
}

/// Options for a tracker with a long linger (nothing leaves before `flush()`).
pub fn options(collector: &Collector, prefix: &str) -> Object {
    let o = Object::new();
    set(&o, "collectorUrl", &"http://collector.test".into());
    set(&o, "partnerId", &PARTNER.into());
    set(&o, "source", &"online_store".into());
    set(&o, "flushIntervalMs", &60_000.into());
    set(&o, "storagePrefix", &prefix.into());
    set(&o, "transport", &collector.transport());
    o
}

pub fn context(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        set(&o, k, v);
    }
    o.into()
}

pub async fn settle(promise: Promise) {
    JsFuture::from(promise).await.unwrap();
}

/// Lets pending promise callbacks run.
pub async fn tick() {
    settle(Promise::resolve(&JsValue::UNDEFINED)).await;
    settle(Promise::resolve(&JsValue::UNDEFINED)).await;
}
