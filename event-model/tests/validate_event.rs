//! One test per whole-event rule of `validate_event`: each names the code and the field a client
//! gets back, so a change to any rule shows up here first.

use std::collections::BTreeMap;

use event_model::limits::{MAX_CONTEXT_KEYS, MAX_EVENT_AGE_MS, MAX_FUTURE_SKEW_MS};
use event_model::timestamp::format_rfc3339_ms;
use event_model::{validate_event, BatchTimes, ContextValue, ErrorCode, Event, EventKind};

const SENT: i64 = 1_795_000_000_000;

fn times() -> BatchTimes {
    BatchTimes {
        sent_at_ms: SENT,
        received_at_ms: SENT + 250,
    }
}

fn event() -> Event {
    Event {
        event_id: "0192f0c6-3b7a-7cde-8f00-0123456789ab".into(),
        kind: EventKind::Customer,
        name: "product_viewed".into(),
        source: "online_store".into(),
        customer_id: Some("42".into()),
        anonymous_id: None,
        session_id: Some("s-1".into()),
        occurred_at: format_rfc3339_ms(SENT - 1_000),
        context: BTreeMap::from([
            ("category".into(), ContextValue::String("Jacket".into())),
            ("price".into(), ContextValue::Number(99.5)),
        ]),
    }
}

fn rejected(event: Event) -> (ErrorCode, String) {
    let v = validate_event(event, times()).expect_err("the event should be rejected");
    (v.code, v.field)
}

fn is(code: ErrorCode, field: &str) -> (ErrorCode, String) {
    (code, field.to_string())
}

#[test]
fn a_good_event_passes_with_its_time_corrected_for_skew() {
    let valid = validate_event(event(), times()).unwrap();
    // One second old on the client's clock → one second before the server received it.
    assert_eq!(valid.event_time_ms, SENT + 250 - 1_000);
    assert_eq!(valid.occurred_at_ms, SENT - 1_000);
    assert_eq!(valid.context.len(), 2);
}

#[test]
fn a_client_clock_an_hour_off_does_not_move_the_event_time() {
    let mut e = event();
    e.occurred_at = format_rfc3339_ms(SENT + 3_600_000 - 1_000);
    let skewed = BatchTimes {
        sent_at_ms: SENT + 3_600_000,
        received_at_ms: SENT + 250,
    };
    assert_eq!(
        validate_event(e, skewed).unwrap().event_time_ms,
        SENT + 250 - 1_000
    );
}

#[test]
fn event_id_must_be_a_uuid_and_not_nil() {
    let mut e = event();
    e.event_id = "not-a-uuid".into();
    assert_eq!(rejected(e), is(ErrorCode::InvalidEventId, "event_id"));
    let mut e = event();
    e.event_id = "00000000-0000-0000-0000-000000000000".into();
    assert_eq!(rejected(e), is(ErrorCode::InvalidEventId, "event_id"));
}

#[test]
fn name_rules() {
    let mut e = event();
    e.name = String::new();
    assert_eq!(rejected(e), is(ErrorCode::InvalidName, "name"));
    let mut e = event();
    e.name = "x".repeat(129);
    assert_eq!(rejected(e), is(ErrorCode::NameTooLong, "name"));
}

#[test]
fn source_code_rules() {
    let mut e = event();
    e.source = "online store".into();
    assert_eq!(rejected(e), is(ErrorCode::InvalidSourceCode, "source"));
}

#[test]
fn a_customer_event_needs_an_identity() {
    let mut e = event();
    e.customer_id = None;
    assert_eq!(rejected(e), is(ErrorCode::MissingIdentity, "customer_id"));
    let mut e = event();
    e.customer_id = None;
    e.anonymous_id = Some("a-1".into());
    assert!(validate_event(e, times()).is_ok());
}

#[test]
fn a_system_event_has_no_identity() {
    let mut e = event();
    e.kind = EventKind::System;
    assert_eq!(
        rejected(e),
        is(ErrorCode::IdentityNotAllowed, "customer_id")
    );
    let mut e = event();
    e.kind = EventKind::System;
    e.customer_id = None;
    e.anonymous_id = Some("a-1".into());
    assert_eq!(
        rejected(e),
        is(ErrorCode::IdentityNotAllowed, "anonymous_id")
    );
    let mut e = event();
    e.kind = EventKind::System;
    e.customer_id = None;
    assert!(validate_event(e, times()).is_ok());
}

#[test]
fn ids_have_limits() {
    let mut e = event();
    e.customer_id = Some("c\u{7}".into());
    assert_eq!(rejected(e), is(ErrorCode::InvalidId, "customer_id"));
    let mut e = event();
    e.anonymous_id = Some("a".repeat(129));
    assert_eq!(rejected(e), is(ErrorCode::InvalidId, "anonymous_id"));
    let mut e = event();
    e.session_id = Some(String::new());
    assert_eq!(rejected(e), is(ErrorCode::InvalidId, "session_id"));
}

#[test]
fn occurred_at_must_be_rfc3339() {
    let mut e = event();
    e.occurred_at = "yesterday".into();
    assert_eq!(rejected(e), is(ErrorCode::InvalidTimestamp, "occurred_at"));
}

#[test]
fn occurred_at_may_lead_sent_at_by_the_tolerance_but_no_more() {
    let mut e = event();
    e.occurred_at = format_rfc3339_ms(SENT + MAX_FUTURE_SKEW_MS);
    let valid = validate_event(e, times()).unwrap();
    // Clamped: never after the moment the collector received it.
    assert_eq!(valid.event_time_ms, SENT + 250);
    let mut e = event();
    e.occurred_at = format_rfc3339_ms(SENT + MAX_FUTURE_SKEW_MS + 1);
    assert_eq!(rejected(e), is(ErrorCode::OccurredInFuture, "occurred_at"));
}

#[test]
fn events_older_than_the_maximum_age_are_refused() {
    let mut e = event();
    e.occurred_at = format_rfc3339_ms(SENT - MAX_EVENT_AGE_MS);
    assert!(validate_event(e, times()).is_ok());
    let mut e = event();
    e.occurred_at = format_rfc3339_ms(SENT - MAX_EVENT_AGE_MS - 1);
    assert_eq!(
        rejected(e),
        is(ErrorCode::OccurredTooLongAgo, "occurred_at")
    );
}

#[test]
fn a_hyphenated_context_key_is_named_in_the_error() {
    let mut e = event();
    e.context
        .insert("user-name".into(), ContextValue::String("Ann".into()));
    assert_eq!(
        rejected(e.clone()),
        is(ErrorCode::ContextKeyHyphen, "context.user-name")
    );
    let message = validate_event(e, times()).unwrap_err().message();
    assert!(message.contains("user-name"), "{message}");
    assert!(message.contains("user_name"), "suggests a fix: {message}");
}

#[test]
fn context_key_shape_and_length() {
    let mut e = event();
    e.context.insert("1st".into(), ContextValue::Bool(true));
    assert_eq!(rejected(e), is(ErrorCode::InvalidContextKey, "context.1st"));
    let long = "k".repeat(65);
    let mut e = event();
    e.context.insert(long.clone(), ContextValue::Bool(true));
    assert_eq!(
        rejected(e),
        (ErrorCode::ContextKeyTooLong, format!("context.{long}"))
    );
}

#[test]
fn context_has_at_most_the_maximum_number_of_keys() {
    let mut e = event();
    e.context = (0..MAX_CONTEXT_KEYS)
        .map(|i| (format!("k{i}"), ContextValue::Bool(true)))
        .collect();
    assert!(validate_event(e.clone(), times()).is_ok());
    e.context
        .insert("one_more".into(), ContextValue::Bool(false));
    assert_eq!(rejected(e), is(ErrorCode::TooManyContextKeys, "context"));
}

#[test]
fn context_values_have_limits() {
    let mut e = event();
    e.context
        .insert("note".into(), ContextValue::String("x".repeat(2049)));
    assert_eq!(
        rejected(e),
        is(ErrorCode::ContextValueTooLong, "context.note")
    );
    let mut e = event();
    e.context.insert(
        "points".into(),
        ContextValue::Number(9_007_199_254_740_994.0),
    );
    assert_eq!(
        rejected(e),
        is(ErrorCode::ContextNumberOutOfRange, "context.points")
    );
    let mut e = event();
    e.context
        .insert("points".into(), ContextValue::Number(f64::NAN));
    assert_eq!(rejected(e).1, "context.points");
}
