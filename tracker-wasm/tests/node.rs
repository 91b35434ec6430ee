//! The exported `Tracker` in Node (no window, no document, no localStorage), with a
//! host-supplied storage and transport. Run: scripts/test-tracker-wasm.sh

#![cfg(target_arch = "wasm32")]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use eventline_tracker::Tracker;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

fn queued(map: &js_sys::Map, prefix: &str) -> usize {
    let mut n = 0;
    map.for_each(&mut |v, k| {
        if k.as_string()
            .unwrap()
            .starts_with(&[prefix, ".q."].concat())
        {
            n += v.as_string().unwrap().lines().count() - 1;
        }
    });
    n
}

fn stored_text(map: &js_sys::Map) -> String {
    let mut all = String::new();
    map.for_each(&mut |v, _| all.push_str(&v.as_string().unwrap_or_default()));
    all
}

fn tracker(collector: &Collector, prefix: &str) -> (Tracker, js_sys::Map) {
    let (storage, map) = host_storage();
    let o = options(collector, prefix);
    set(&o, "storage", &storage);
    (Tracker::new(o.into()).unwrap(), map)
}

#[wasm_bindgen_test]
fn a_hyphenated_context_key_throws_the_servers_code_and_queues_nothing() {
    let c = Collector::default();
    let (t, map) = tracker(&c, "hyphen");
    let err = t
        .track(
            "product_viewed".into(),
            Some(context(&[("user-name", "x".into())])),
        )
        .unwrap_err();
    assert_eq!(get(&err, "code").as_string().unwrap(), "context_key_hyphen");
    assert_eq!(get(&err, "field").as_string().unwrap(), "context.user-name");
    assert!(err.is_instance_of::<js_sys::Error>());
    assert_eq!(queued(&map, "hyphen"), 0);
    for (bad, code) in [
        (JsValue::NULL, "invalid_context_value"),
        (js_sys::Array::new().into(), "invalid_context_value"),
        (f64::NAN.into(), "context_number_out_of_range"),
    ] {
        let err = t
            .track("x".into(), Some(context(&[("k", bad)])))
            .unwrap_err();
        assert_eq!(get(&err, "code").as_string().unwrap(), code);
        assert_eq!(get(&err, "field").as_string().unwrap(), "context.k");
    }
    let err = t.track(" spaced".into(), None).unwrap_err();
    assert_eq!(get(&err, "code").as_string().unwrap(), "invalid_name");
    assert_eq!(queued(&map, "hyphen"), 0);
}

use wasm_bindgen::JsCast;

#[wasm_bindgen_test]
fn bad_options_throw_with_the_option_as_field() {
    let c = Collector::default();
    let o = options(&c, "opts");
    set(&o, "source", &"bad source".into());
    let err = Tracker::new(o.into()).err().unwrap();
    assert_eq!(
        get(&err, "code").as_string().unwrap(),
        "invalid_source_code"
    );
    assert_eq!(get(&err, "field").as_string().unwrap(), "source");
    let o = options(&c, "opts");
    set(&o, "partnerId", &"not-a-uuid".into());
    let err = Tracker::new(o.into()).err().unwrap();
    assert_eq!(get(&err, "field").as_string().unwrap(), "partnerId");
    let o = options(&c, "opts");
    set(&o, "batchSize", &0.into());
    let err = Tracker::new(o.into()).err().unwrap();
    assert_eq!(get(&err, "code").as_string().unwrap(), "invalid_option");
    assert_eq!(get(&err, "field").as_string().unwrap(), "batchSize");
}

#[wasm_bindgen_test]
async fn events_are_stored_before_track_returns_and_removed_once_accepted() {
    let c = Collector::default();
    let (t, map) = tracker(&c, "persist");
    let id = t
        .track(
            "product_viewed".into(),
            Some(context(&[
                ("category", "Jacket".into()),
                ("price", 99.5.into()),
                ("in_stock", true.into()),
            ])),
        )
        .unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "7", "uuid v7");
    assert!(
        stored_text(&map).contains(&id),
        "stored before track() returned"
    );
    assert!(c.sent().is_empty(), "a partial batch lingers");
    settle(t.flush()).await;
    let sent = c.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].event_ids(), std::slice::from_ref(&id));
    assert!(!sent[0].keepalive);
    assert!(
        sent[0]
            .body
            .contains(r#""context":{"category":"Jacket","price":99.5,"in_stock":true"#),
        "{}",
        sent[0].body
    );
    assert_eq!(queued(&map, "persist"), 0);
}

#[wasm_bindgen_test]
async fn a_permanent_400_is_reported_through_on_rejected_and_dropped() {
    let c = Collector::default();
    let (storage, map) = host_storage();
    let o = options(&c, "perm");
    set(&o, "storage", &storage);
    let reported: Rc<RefCell<Vec<JsValue>>> = Rc::default();
    let r = reported.clone();
    set(
        &o,
        "onRejected",
        &func(move |list| {
            r.borrow_mut().extend(js_sys::Array::from(&list).iter());
            JsValue::UNDEFINED
        }),
    );
    let t = Tracker::new(o.into()).unwrap();
    let id = t.track("purchase".into(), None).unwrap();
    c.answer_next(400);
    settle(t.flush()).await;
    let reported = reported.borrow();
    assert_eq!(reported.len(), 1);
    assert_eq!(get(&reported[0], "eventId").as_string().unwrap(), id);
    assert_eq!(get(&reported[0], "name").as_string().unwrap(), "purchase");
    assert_eq!(
        get(&reported[0], "code").as_string().unwrap(),
        "unknown_partner"
    );
    assert_eq!(
        get(&reported[0], "field").as_string().unwrap(),
        "partner_id"
    );
    assert_eq!(queued(&map, "perm"), 0);
}

#[wasm_bindgen_test]
async fn a_503_keeps_the_event_and_the_retry_resends_the_same_event_id() {
    let c = Collector::default();
    let (t, map) = tracker(&c, "retry");
    let id = t.track("purchase".into(), None).unwrap();
    c.answer_next(503);
    settle(t.flush()).await;
    assert_eq!(queued(&map, "retry"), 1, "kept for the retry");
    settle(t.flush()).await;
    let sent = c.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].event_ids(), std::slice::from_ref(&id));
    assert_eq!(sent[1].event_ids(), [id]);
    assert_eq!(queued(&map, "retry"), 0);
}

#[wasm_bindgen_test]
async fn opted_out_nothing_is_stored_or_sent() {
    let c = Collector::default();
    let (t, map) = tracker(&c, "optout");
    t.track("before".into(), None).unwrap();
    t.opt_out();
    assert!(t.opted_out());
    assert_eq!(queued(&map, "optout"), 0, "opting out clears the queue");
    assert_eq!(t.track("during".into(), None).unwrap(), "");
    assert_eq!(queued(&map, "optout"), 0);
    assert!(!stored_text(&map).contains("during"));
    settle(t.flush()).await;
    assert!(c.sent().is_empty());
    t.opt_in();
    assert_ne!(t.track("after".into(), None).unwrap(), "");
}

#[wasm_bindgen_test]
async fn a_freed_instances_queue_is_adopted_by_the_next_one() {
    let c = Collector::default();
    let (storage, map) = host_storage();
    let o = options(&c, "adopt");
    set(&o, "storage", &storage);
    let first = Tracker::new(o.clone().into()).unwrap();
    let id = first.track("purchase".into(), None).unwrap();
    c.answer_next(503);
    settle(first.flush()).await;
    drop(first); // free(): releases the queue
    let second = Tracker::new(o.into()).unwrap();
    settle(second.flush()).await;
    let sent = c.sent();
    assert_eq!(sent.last().unwrap().event_ids(), [id]);
    assert_eq!(queued(&map, "adopt"), 0);
}

#[wasm_bindgen_test]
async fn identity_and_session_persist_and_reset() {
    let c = Collector::default();
    let (storage, _map) = host_storage();
    let o = options(&c, "ident");
    set(&o, "storage", &storage);
    let t = Tracker::new(o.clone().into()).unwrap();
    let anon = t.anonymous_id();
    let session = t.session_id();
    t.identify(42.into()).unwrap();
    assert_eq!(t.customer_id().as_deref(), Some("42"));
    let again = Tracker::new(o.into()).unwrap();
    assert_eq!(again.anonymous_id(), anon);
    assert_eq!(again.session_id(), session);
    again.track("x".into(), None).unwrap();
    settle(again.flush()).await;
    let body = &c.sent()[0].body;
    assert!(
        body.contains(&[r#""customer_id":"42","anonymous_id":""#, &anon].concat()),
        "{body}"
    );
    again.reset();
    assert_ne!(again.anonymous_id(), anon);
    assert_eq!(again.customer_id(), None);
    let err = again.identify(" 42".into()).unwrap_err();
    assert_eq!(get(&err, "code").as_string().unwrap(), "invalid_id");
}

#[wasm_bindgen_test]
async fn lone_surrogates_become_replacement_characters_in_valid_json() {
    let c = Collector::default();
    let (t, _) = tracker(&c, "utf16");
    let lone: JsValue = js_sys::JSON::parse(r#""a\ud800b""#).unwrap();
    t.track("x".into(), Some(context(&[("s", lone)]))).unwrap();
    settle(t.flush()).await;
    let body = js_sys::JSON::parse(&c.sent()[0].body).unwrap();
    let s = get(
        &get(
            &js_sys::Array::from(&get(&body, "events")).get(0),
            "context",
        ),
        "s",
    );
    assert_eq!(s.as_string().as_deref(), Some("a\u{fffd}b"));
}

#[wasm_bindgen_test]
async fn a_full_batch_goes_without_waiting() {
    let c = Collector::default();
    let (storage, _) = host_storage();
    let o = options(&c, "full");
    set(&o, "storage", &storage);
    set(&o, "batchSize", &2.into());
    let t = Tracker::new(o.into()).unwrap();
    t.track("a".into(), None).unwrap();
    tick().await;
    assert!(c.sent().is_empty());
    t.track("b".into(), None).unwrap();
    tick().await;
    assert_eq!(c.sent().len(), 1);
    assert_eq!(c.sent()[0].event_ids().len(), 2);
}
