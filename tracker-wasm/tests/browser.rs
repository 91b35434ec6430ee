//! The exported `Tracker` in headless Chromium with the real localStorage and page lifecycle
//! events. Run: scripts/test-tracker-wasm.sh browser

#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use eventline_tracker::Tracker;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn local_storage() -> JsValue {
    get(&js_sys::global(), "localStorage")
}

/// Every localStorage key under `prefix` with its value.
fn stored(prefix: &str) -> Vec<(String, String)> {
    let ls = local_storage();
    let len = get(&ls, "length").as_f64().unwrap() as u32;
    let key = js_sys::Function::from(get(&ls, "key"));
    let get_item = js_sys::Function::from(get(&ls, "getItem"));
    (0..len)
        .filter_map(|i| key.call1(&ls, &i.into()).unwrap().as_string())
        .filter(|k| k.starts_with(&[prefix, "."].concat()))
        .map(|k| {
            let v = get_item
                .call1(&ls, &k.clone().into())
                .unwrap()
                .as_string()
                .unwrap();
            (k, v)
        })
        .collect()
}

fn queued(prefix: &str) -> usize {
    let q = [prefix, ".q."].concat();
    stored(prefix)
        .iter()
        .filter(|(k, _)| k.starts_with(&q))
        .map(|(_, v)| v.lines().count() - 1)
        .sum()
}

fn dispatch(target: &JsValue, event: &str) {
    let ev = js_sys::Reflect::construct(
        &js_sys::Function::from(get(&js_sys::global(), "Event")),
        &js_sys::Array::of1(&event.into()),
    )
    .unwrap();
    let dispatch = js_sys::Function::from(get(target, "dispatchEvent"));
    dispatch.call1(target, &ev).unwrap();
}

#[wasm_bindgen_test]
fn a_hyphenated_key_throws_and_nothing_reaches_local_storage() {
    let c = Collector::default();
    let t = Tracker::new(options(&c, "b_hyphen").into()).unwrap();
    assert!(t.persistent(), "uses localStorage");
    let err = t
        .track("x".into(), Some(context(&[("user-name", 1.into())])))
        .unwrap_err();
    assert_eq!(get(&err, "code").as_string().unwrap(), "context_key_hyphen");
    assert_eq!(get(&err, "field").as_string().unwrap(), "context.user-name");
    assert_eq!(queued("b_hyphen"), 0);
}

#[wasm_bindgen_test]
async fn events_are_in_local_storage_before_track_returns() {
    let c = Collector::default();
    let t = Tracker::new(options(&c, "b_persist").into()).unwrap();
    let id = t.page(None).unwrap();
    assert!(stored("b_persist").iter().any(|(_, v)| v.contains(&id)));
    settle(t.flush()).await;
    let body = &c.sent()[0].body;
    assert!(body.contains("\"name\":\"page_view\""), "{body}");
    assert!(
        body.contains("\"page_url\":\"http"),
        "auto context from location: {body}"
    );
    assert!(body.contains("\"screen_width\":"), "{body}");
    assert_eq!(queued("b_persist"), 0);
}

#[wasm_bindgen_test]
async fn a_permanent_400_is_dropped_and_a_503_retried() {
    let c = Collector::default();
    let rejected: std::rc::Rc<std::cell::RefCell<Vec<String>>> = Default::default();
    let r = rejected.clone();
    let o = options(&c, "b_status");
    set(
        &o,
        "onRejected",
        &func(move |list| {
            for item in js_sys::Array::from(&list).iter() {
                r.borrow_mut().push(get(&item, "code").as_string().unwrap());
            }
            JsValue::UNDEFINED
        }),
    );
    let t = Tracker::new(o.into()).unwrap();
    t.track("bad".into(), None).unwrap();
    c.answer_next(400);
    settle(t.flush()).await;
    assert_eq!(*rejected.borrow(), ["unknown_partner"]);
    assert_eq!(queued("b_status"), 0);

    let id = t.track("good".into(), None).unwrap();
    c.answer_next(503);
    settle(t.flush()).await;
    assert_eq!(queued("b_status"), 1);
    settle(t.flush()).await;
    assert_eq!(queued("b_status"), 0);
    let sent = c.sent();
    assert_eq!(sent[1].event_ids(), sent[2].event_ids());
    assert_eq!(sent[2].event_ids(), [id]);
}

#[wasm_bindgen_test]
async fn opted_out_nothing_is_stored_or_sent() {
    let c = Collector::default();
    let t = Tracker::new(options(&c, "b_optout").into()).unwrap();
    t.opt_out();
    assert_eq!(t.track("x".into(), None).unwrap(), "");
    assert_eq!(queued("b_optout"), 0);
    settle(t.flush()).await;
    assert!(c.sent().is_empty());
    // The flag is shared with every tab (and the next page load).
    let other = Tracker::new(options(&c, "b_optout").into()).unwrap();
    assert!(other.opted_out());
    other.opt_in();
    assert!(!t.opted_out());
}

#[wasm_bindgen_test]
async fn pagehide_beacons_the_queue_and_the_next_page_resends_what_is_unconfirmed() {
    let c = Collector::default();
    let o = options(&c, "b_unload");
    let t = Tracker::new(o.clone().into()).unwrap();
    let id = t.track("purchase".into(), None).unwrap();
    dispatch(&js_sys::global(), "pagehide");
    let sent = c.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].keepalive, "beacon-style send");
    assert_eq!(sent[0].event_ids(), std::slice::from_ref(&id));
    // Still stored (a beacon is never confirmed) and released for adoption.
    assert_eq!(queued("b_unload"), 1);
    assert!(stored("b_unload")
        .iter()
        .any(|(k, v)| k.contains(".hb.") && v.starts_with('R')));
    drop(t);
    // "Reload": a new instance adopts the released queue and resends the same event id.
    let next = Tracker::new(o.into()).unwrap();
    settle(next.flush()).await;
    assert_eq!(c.sent().last().unwrap().event_ids(), [id]);
    assert_eq!(queued("b_unload"), 0);
}

#[wasm_bindgen_test]
async fn a_hidden_page_sends_with_keepalive() {
    let c = Collector::default();
    let t = Tracker::new(options(&c, "b_hidden").into()).unwrap();
    t.track("x".into(), None).unwrap();
    let document = get(&js_sys::global(), "document");
    // Headless Chromium never hides a page by itself: override visibilityState.
    let descriptor = js_sys::Object::new();
    set(&descriptor, "configurable", &true.into());
    set(&descriptor, "get", &func(|_| "hidden".into()));
    js_sys::Reflect::define_property(
        document.unchecked_ref::<js_sys::Object>(),
        &"visibilityState".into(),
        &descriptor,
    )
    .unwrap();
    dispatch(&document, "visibilitychange");
    tick().await;
    js_sys::Reflect::delete_property(
        document.unchecked_ref::<js_sys::Object>(),
        &"visibilityState".into(),
    )
    .unwrap();
    let sent = c.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].keepalive);
    tick().await;
    assert_eq!(
        queued("b_hidden"),
        0,
        "the answer to a keepalive fetch still confirms"
    );
}

use wasm_bindgen::JsCast;

#[wasm_bindgen_test]
async fn two_live_tabs_never_adopt_each_other() {
    let c = Collector::default();
    let a = Tracker::new(options(&c, "b_tabs").into()).unwrap();
    let b = Tracker::new(options(&c, "b_tabs").into()).unwrap();
    let ida = a.track("a".into(), None).unwrap();
    let idb = b.track("b".into(), None).unwrap();
    settle(a.flush()).await;
    settle(b.flush()).await;
    let sent = c.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].event_ids(), [ida]);
    assert_eq!(sent[1].event_ids(), [idb]);
}
