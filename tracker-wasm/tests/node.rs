//! The exported `Core` in Node (no window, no document, no localStorage), with a host storage
//! that cannot list keys. The npm wrapper (npm/src/tracker.js) turns its `!<code number>\x1ffield`
//! answers into thrown Errors; tests/npm-package covers that layer. Run: scripts/test-tracker-wasm.sh

#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use event_model::ErrorCode;
use eventline_tracker::check;
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
fn a_hyphenated_context_key_fails_with_the_servers_code_and_queues_nothing() {
    let s = memory_storage();
    let (mut c, _) = core(&s, "hyphen", 20.0);
    assert_eq!(
        c.add("user-name".into(), "x".into(), 0.0, 1),
        err(ErrorCode::ContextKeyHyphen, "context.user-name")
    );
    assert_eq!(queued(&s, "hyphen"), 0);
    for (kind, n, code) in [
        (5, 0.0, ErrorCode::InvalidContextValue),
        (2, f64::NAN, ErrorCode::ContextNumberOutOfRange),
    ] {
        assert_eq!(
            c.add("k".into(), "NaN".into(), n, kind),
            err(code, "context.k")
        );
    }
    assert_eq!(
        c.track(" spaced", T, T),
        err(ErrorCode::InvalidName, "name")
    );
    assert_eq!(queued(&s, "hyphen"), 0);
}

#[wasm_bindgen_test]
fn bad_options_fail_with_the_option_as_field() {
    assert_eq!(
        check(PARTNER, "bad source"),
        err(ErrorCode::InvalidSourceCode, "source")
    );
    assert_eq!(
        check("nope", "online_store"),
        err(ErrorCode::UnknownPartner, "partnerId")
    );
    assert_eq!(check(PARTNER, "online_store"), "");
}

#[wasm_bindgen_test]
fn events_are_stored_before_track_returns_and_removed_once_accepted() {
    let s = memory_storage();
    let (mut c, _) = core(&s, "persist", 20.0);
    assert_eq!(c.add("price".into(), "99.5".into(), 99.5, 2), "");
    let id = c.track("product_viewed", T, T);
    assert!(stored(&s, "persist").contains(&id));
    assert_eq!(queued(&s, "persist"), 1);
    let (ids, body) = split(&c.batch(0, false, T));
    assert!(body.contains(&id) && body.contains("\"price\":99.5"));
    assert_eq!(ids, id);
    c.settle(&ids, false, 0.0, "", T);
    assert_eq!(queued(&s, "persist"), 0);
}

#[wasm_bindgen_test]
fn a_dropped_batch_leaves_the_queue_and_batches_name_their_events() {
    let s = memory_storage();
    let (mut c, host) = core(&s, "perm", 20.0);
    c.track("bad", T, T);
    c.track("worse", T, T);
    let batch = c.batch(0, false, T);
    assert_eq!(names(&batch), "bad\x1fworse");
    let (ids, _) = split(&batch);
    // The wrapper reports rejections itself; Core only forgets the events.
    c.settle(&ids, false, -1.0, "", T);
    assert_eq!(take_rejected(&host), "");
    assert_eq!(queued(&s, "perm"), 0);
}

#[wasm_bindgen_test]
fn a_retry_keeps_the_event_and_resends_the_same_event_id() {
    let s = memory_storage();
    let (mut c, host) = core(&s, "retry", 20.0);
    let id = c.track("x", T, T);
    let (ids, _) = split(&c.batch(0, false, T));
    c.settle(&ids, true, 0.0, " 7 ", T);
    assert_eq!(take_rejected(&host), "");
    assert_eq!(queued(&s, "retry"), 1);
    assert!(c.op(9, T) >= T + 7000.0);
    assert_eq!(split(&c.batch(0, false, T + 8000.0)).0, id);
}

#[wasm_bindgen_test]
fn opted_out_nothing_is_stored_or_sent() {
    let s = memory_storage();
    let (mut c, _) = core(&s, "optout", 20.0);
    c.track("before", T, T);
    c.op(5, T);
    assert_eq!(c.op(8, T), 1.0);
    assert_eq!(c.track("x", T, T), "");
    assert_eq!(queued(&s, "optout"), 0);
    assert_eq!(c.batch(0, false, T), "");
    let (mut other, _) = core(&s, "optout", 20.0);
    assert_eq!(other.op(8, T), 1.0);
    c.op(6, T);
    assert!(!c.track("y", T, T).is_empty());
}

#[wasm_bindgen_test]
fn a_freed_instances_queue_is_adopted_by_the_next_one() {
    let s = memory_storage();
    let (mut first, _) = core(&s, "adopt", 20.0);
    let id = first.track("a", T, T);
    first.op(3, T);
    drop(first);
    let (mut next, _) = core(&s, "adopt", 20.0);
    next.op(0, T + 10.0);
    assert!(next.batch(0, false, T + 10.0).contains(&id));
}

#[wasm_bindgen_test]
fn identity_and_session_persist_and_reset() {
    let s = memory_storage();
    let (c, _) = core(&s, "ids", 20.0);
    let aid = c.text(0, "", T);
    let sid = c.text(1, "", T);
    assert_eq!(c.text(3, "42", T), "");
    assert_eq!(
        c.text(3, " 42", T),
        err(ErrorCode::InvalidId, "customer_id")
    );
    let (mut again, _) = core(&s, "ids", 20.0);
    assert_eq!(again.text(0, "", T), aid);
    assert_eq!(again.text(1, "", T + 1000.0), sid);
    assert_eq!(again.text(2, "", T), "42");
    again.op(7, T);
    assert_eq!(c.text(2, "", T), "");
    assert_ne!(c.text(0, "", T), aid);
}

#[wasm_bindgen_test]
fn a_full_batch_is_due_at_once_and_a_partial_one_lingers() {
    let s = memory_storage();
    let (mut c, _) = core(&s, "full", 3.0);
    assert_eq!(c.op(9, T), -1.0);
    c.track("a", T, T);
    assert_eq!(c.op(9, T), T + 1000.0);
    c.track("b", T, T);
    c.track("c", T, T);
    assert!(c.op(9, T) <= T);
}
