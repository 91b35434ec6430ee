//! Property tests: whatever the rules accept survives the trip through wire JSON unchanged, and
//! the hand-written parsers agree with simple reference definitions.

use std::collections::BTreeMap;

use event_model::json::{decode_envelope, decode_event, Batch};
use event_model::limits::{MAX_CONTEXT_KEY_CHARS, MAX_FUTURE_SKEW_MS};
use event_model::rules::check_context_key;
use event_model::timestamp::{format_rfc3339_ms, parse_rfc3339_ms};
use event_model::{validate_event, BatchTimes, ContextValue, ErrorCode, Event, EventKind};
use proptest::prelude::*;

const NOW: i64 = 1_795_000_000_000;

fn context_value() -> impl Strategy<Value = ContextValue> {
    prop_oneof![
        // Any Unicode, including quotes, backslashes, control characters and astral planes.
        3 => any::<String>().prop_map(ContextValue::String),
        3 => any::<bool>().prop_map(ContextValue::Bool),
        3 => (-9_007_199_254_740_992i64..=9_007_199_254_740_992).prop_map(|n| ContextValue::Number(n as f64)),
        3 => (-1e15f64..1e15).prop_map(ContextValue::Number),
        // Rarely: NaN, infinities and huge values, which the rules must refuse.
        1 => any::<f64>().prop_map(ContextValue::Number),
    ]
}

/// Text without control characters or surrounding whitespace: what names and ids allow.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(
        "[^\\p{{Cc}}\\s]([^\\p{{Cc}}]{{0,{}}}[^\\p{{Cc}}\\s])?",
        max - 2
    ))
    .unwrap()
}

fn id() -> impl Strategy<Value = String> {
    text(40)
}

/// Events of every shape: most are valid, some break a rule; the property only uses the valid.
fn event() -> impl Strategy<Value = Event> {
    (
        any::<[u8; 16]>(),
        prop_oneof![3 => Just(EventKind::Customer), 1 => Just(EventKind::System)],
        text(60),
        "[A-Za-z0-9_.-]{1,64}",
        proptest::option::of(id()),
        proptest::option::of(id()),
        proptest::option::of(id()),
        -MAX_FUTURE_SKEW_MS..40_000_000i64,
        proptest::collection::btree_map("[A-Za-z_][A-Za-z0-9_]{0,20}", context_value(), 0..12),
    )
        .prop_map(
            |(id, kind, name, source, customer_id, anonymous_id, session_id, age, context)| Event {
                event_id: uuid_text(id),
                kind,
                name,
                source,
                customer_id,
                anonymous_id,
                session_id,
                occurred_at: format_rfc3339_ms(NOW - age),
                context,
            },
        )
}

fn uuid_text(bytes: [u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn times() -> BatchTimes {
    BatchTimes {
        sent_at_ms: NOW,
        received_at_ms: NOW + 1_234,
    }
}

/// The key rule as a regular language, written the obvious way.
fn reference_key_ok(key: &str) -> bool {
    let mut chars = key.chars();
    let first_ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_');
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && key.len() <= MAX_CONTEXT_KEY_CHARS
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_events_round_trip_through_a_json_batch(events in proptest::collection::vec(event(), 1..8)) {
        let valid: Vec<Event> = events
            .into_iter()
            .filter(|e| validate_event(e.clone(), times()).is_ok())
            .collect();
        prop_assume!(!valid.is_empty());
        let batch = Batch {
            partner_id: Some("0192f0c6-0000-7000-8000-000000000001".into()),
            sent_at: format_rfc3339_ms(NOW),
            events: valid.clone(),
        };
        let body = serde_json::to_string(&batch).unwrap();
        let envelope = decode_envelope(&body).unwrap();
        prop_assert_eq!(envelope.sent_at_ms, NOW);
        prop_assert_eq!(envelope.partner_id.as_deref(), batch.partner_id.as_deref());
        prop_assert_eq!(envelope.events.len(), valid.len());
        for (raw, original) in envelope.events.iter().zip(&valid) {
            let decoded = decode_event(raw.get()).unwrap();
            prop_assert_eq!(&decoded, original);
            let judged = validate_event(decoded, times()).unwrap();
            prop_assert_eq!(judged, validate_event(original.clone(), times()).unwrap());
        }
    }

    #[test]
    fn context_numbers_survive_json_exactly(n in any::<f64>().prop_filter("finite", |n| n.is_finite())) {
        let mut e = Event {
            event_id: uuid_text([7; 16]),
            kind: EventKind::System,
            name: "n".into(),
            source: "s".into(),
            customer_id: None,
            anonymous_id: None,
            session_id: None,
            occurred_at: format_rfc3339_ms(NOW),
            context: BTreeMap::new(),
        };
        e.context.insert("n".into(), ContextValue::Number(n));
        let decoded = decode_event(&serde_json::to_string(&e).unwrap()).unwrap();
        match decoded.context["n"] {
            ContextValue::Number(back) => prop_assert_eq!(back.to_bits(), n.to_bits()),
            ref other => prop_assert!(false, "decoded as {:?}", other),
        }
    }

    #[test]
    fn timestamps_round_trip(ms in 0i64..253_402_300_799_999) {
        let text = format_rfc3339_ms(ms);
        prop_assert_eq!(parse_rfc3339_ms(&text), Some(ms), "{}", text);
    }

    #[test]
    fn offsets_are_applied(ms in 0i64..4_102_444_800_000, minutes in -1439i64..=1439) {
        // The same instant written in another zone: local time = UTC + offset.
        let local = format_rfc3339_ms(ms + minutes * 60_000);
        let sign = if minutes < 0 { '-' } else { '+' };
        let zoned = format!(
            "{}{sign}{:02}:{:02}",
            local.trim_end_matches('Z'),
            minutes.abs() / 60,
            minutes.abs() % 60
        );
        prop_assert_eq!(parse_rfc3339_ms(&zoned), Some(ms), "{}", zoned);
    }

    #[test]
    fn the_key_rule_is_the_identifier_language(key in "[A-Za-z0-9_\\- .é]{0,70}") {
        let ours = check_context_key(&key);
        prop_assert_eq!(ours.is_ok(), reference_key_ok(&key), "{:?} → {:?}", key, ours);
        if key.contains('-') {
            prop_assert_eq!(ours, Err(ErrorCode::ContextKeyHyphen));
        }
    }
}
