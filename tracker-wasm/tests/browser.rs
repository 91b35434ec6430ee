//! The exported `Core` in headless Chromium over the real localStorage (which can list keys,
//! so tabs find each other without an index). Page lifecycle hooks are the npm wrapper's
//! (npm/src/tracker.js). Run: scripts/test-tracker-wasm.sh browser

#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use event_model::ErrorCode;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn a_hyphenated_key_fails_and_nothing_reaches_local_storage() {
    let s = local_storage();
    let (mut c, _) = core(&s, "b_hyphen", 20.0);
    assert_eq!(
        c.add("user-name".into(), "1".into(), 1.0, 2),
        err(ErrorCode::ContextKeyHyphen, "context.user-name")
    );
    assert_eq!(queued(&s, "b_hyphen"), 0);
}

#[wasm_bindgen_test]
fn events_are_in_local_storage_before_track_returns() {
    let s = local_storage();
    let (mut c, _) = core(&s, "b_persist", 20.0);
    let id = c.track("x", T, T);
    assert!(stored(&s, "b_persist").contains(&id));
    let (ids, _) = split(&c.batch(0, false, T));
    c.settle(&ids, false, 0.0, "", T);
    assert_eq!(queued(&s, "b_persist"), 0);
}

#[wasm_bindgen_test]
fn a_dropped_batch_leaves_and_a_retried_one_stays() {
    let s = local_storage();
    let (mut c, _) = core(&s, "b_status", 1.0);
    c.track("bad", T, T);
    let (ids, _) = split(&c.batch(0, false, T));
    c.settle(&ids, false, -1.0, "", T);
    assert_eq!(queued(&s, "b_status"), 0);
    let good = c.track("good", T, T);
    let (ids, _) = split(&c.batch(0, false, T));
    c.settle(&ids, true, 0.0, "", T);
    assert_eq!(queued(&s, "b_status"), 1);
    c.op(4, T);
    assert!(c.batch(0, false, T).contains(&good));
}

#[wasm_bindgen_test]
fn opted_out_nothing_is_stored_or_sent() {
    let s = local_storage();
    let (mut c, _) = core(&s, "b_optout", 20.0);
    c.op(5, T);
    assert_eq!(c.track("x", T, T), "");
    assert_eq!(queued(&s, "b_optout"), 0);
    let (mut other, _) = core(&s, "b_optout", 20.0);
    assert_eq!(other.op(8, T), 1.0);
    c.op(6, T);
}

#[wasm_bindgen_test]
fn a_released_queue_is_resent_by_the_next_page() {
    let s = local_storage();
    let (mut c, _) = core(&s, "b_unload", 20.0);
    let id = c.track("purchase", T, T);
    c.op(2, T);
    assert!(c.batch(0, true, T).contains(&id));
    c.op(3, T);
    drop(c);
    let (mut next, _) = core(&s, "b_unload", 20.0);
    next.op(0, T + 10.0);
    assert!(next.batch(0, false, T + 10.0).contains(&id));
}

#[wasm_bindgen_test]
fn two_live_tabs_never_adopt_each_other() {
    let s = local_storage();
    let (mut a, _) = core(&s, "b_tabs", 20.0);
    let (mut b, _) = core(&s, "b_tabs", 20.0);
    let ida = a.track("a", T, T);
    let idb = b.track("b", T, T);
    a.op(1, T + 1000.0);
    b.op(1, T + 1000.0);
    let body_a = a.batch(0, false, T + 1000.0);
    let body_b = b.batch(0, false, T + 1000.0);
    assert!(body_a.contains(&ida) && !body_a.contains(&idb));
    assert!(body_b.contains(&idb) && !body_b.contains(&ida));
}
