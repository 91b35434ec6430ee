//! Decoding wire format v1 from JSON, with an error code and field for every way it can be wrong.
//!
//! A batch is decoded in two steps so one malformed event never sinks its neighbours: the
//! envelope first (each event kept as raw JSON text, which is also what `rejected_events`
//! stores), then each event on its own.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::codes::ErrorCode;
use crate::limits::{MAX_BATCH_EVENTS, MAX_EVENT_BYTES};
use crate::timestamp::parse_rfc3339_ms;
use crate::{ContextValue, Event, EventKind, Violation};

/// A batch as a client sends it; used to build requests (tracker tests, benchmarks, fixtures).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Batch {
    /// The partner the batch is for (its public id); optional with a partner API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    /// When the client sent the batch, on its own clock (RFC 3339).
    pub sent_at: String,
    /// The events.
    pub events: Vec<Event>,
}

/// A decoded envelope; events are still raw JSON text.
#[derive(Debug)]
pub struct Envelope<'a> {
    /// `partner_id` if present.
    pub partner_id: Option<String>,
    /// `sent_at` parsed to Unix ms.
    pub sent_at_ms: i64,
    /// Each event's JSON text, in order.
    pub events: Vec<&'a RawValue>,
}

fn batch_error(code: ErrorCode, field: &str) -> Violation {
    Violation::new(code, field)
}

/// Decodes the batch envelope (`partner_id`, `sent_at`, `events`).
pub fn decode_envelope(body: &str) -> Result<Envelope<'_>, Violation> {
    let fields: BTreeMap<&str, &RawValue> = match serde_json::from_str(body) {
        Ok(fields) => fields,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return Err(batch_error(ErrorCode::InvalidJson, "").with_detail(e.to_string()))
        }
        Err(_) => return Err(batch_error(ErrorCode::InvalidBatch, "body")),
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !matches!(**k, "partner_id" | "sent_at" | "events"))
    {
        return Err(batch_error(ErrorCode::UnknownField, unknown));
    }
    let partner_id = match fields.get("partner_id").map(|raw| raw.get()) {
        None | Some("null") => None,
        Some(raw) => Some(
            serde_json::from_str::<String>(raw)
                .map_err(|_| batch_error(ErrorCode::InvalidFieldType, "partner_id"))?,
        ),
    };
    let sent_at = fields
        .get("sent_at")
        .ok_or_else(|| batch_error(ErrorCode::MissingField, "sent_at"))?;
    let sent_at: String = serde_json::from_str(sent_at.get())
        .map_err(|_| batch_error(ErrorCode::InvalidTimestamp, "sent_at"))?;
    let sent_at_ms = parse_rfc3339_ms(&sent_at)
        .ok_or_else(|| batch_error(ErrorCode::InvalidTimestamp, "sent_at"))?;
    let events = fields
        .get("events")
        .ok_or_else(|| batch_error(ErrorCode::MissingField, "events"))?;
    let events: Vec<&RawValue> = serde_json::from_str(events.get())
        .map_err(|_| batch_error(ErrorCode::InvalidBatch, "events"))?;
    if events.is_empty() {
        return Err(batch_error(ErrorCode::EmptyBatch, "events"));
    }
    if events.len() > MAX_BATCH_EVENTS {
        return Err(batch_error(ErrorCode::TooManyEvents, "events"));
    }
    Ok(Envelope {
        partner_id,
        sent_at_ms,
        events,
    })
}

fn take_string(obj: &mut Map<String, Value>, field: &str) -> Result<Option<String>, Violation> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => {
            Err(Violation::new(ErrorCode::InvalidFieldType, field).with_detail("expected a string"))
        }
    }
}

fn require_string(obj: &mut Map<String, Value>, field: &str) -> Result<String, Violation> {
    take_string(obj, field)?.ok_or_else(|| Violation::new(ErrorCode::MissingField, field))
}

fn decode_context(value: Option<Value>) -> Result<BTreeMap<String, ContextValue>, Violation> {
    let obj = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(obj)) => obj,
        Some(_) => return Err(Violation::new(ErrorCode::InvalidContext, "context")),
    };
    obj.into_iter()
        .map(|(key, value)| {
            let value = match value {
                Value::String(s) => ContextValue::String(s),
                Value::Bool(b) => ContextValue::Bool(b),
                // as_f64 is lossy beyond 2^53; the range rule rejects those values later.
                Value::Number(n) => ContextValue::Number(n.as_f64().unwrap_or(f64::INFINITY)),
                Value::Null | Value::Array(_) | Value::Object(_) => {
                    let mut field = String::from("context.");
                    field.push_str(&key);
                    return Err(Violation::new(ErrorCode::InvalidContextValue, &field));
                }
            };
            Ok((key, value))
        })
        .collect()
}

/// Decodes one event's JSON text into an [`Event`] (shape only; [`crate::validate_event`] judges it).
pub fn decode_event(raw: &str) -> Result<Event, Violation> {
    if raw.len() > MAX_EVENT_BYTES {
        return Err(Violation::new(ErrorCode::EventTooLarge, ""));
    }
    let mut obj: Map<String, Value> = match serde_json::from_str(raw) {
        Ok(Value::Object(obj)) => obj,
        _ => return Err(Violation::new(ErrorCode::InvalidEvent, "")),
    };
    let event_id = require_string(&mut obj, "event_id")?;
    let kind_text = require_string(&mut obj, "kind")?;
    let kind = EventKind::parse(&kind_text)
        .ok_or_else(|| Violation::new(ErrorCode::InvalidKind, "kind"))?;
    let name = require_string(&mut obj, "name")?;
    let source = require_string(&mut obj, "source")?;
    let customer_id = take_string(&mut obj, "customer_id")?;
    let anonymous_id = take_string(&mut obj, "anonymous_id")?;
    let session_id = take_string(&mut obj, "session_id")?;
    let occurred_at = require_string(&mut obj, "occurred_at")?;
    let context = decode_context(obj.remove("context"))?;
    if let Some(unknown) = obj.keys().next() {
        return Err(Violation::new(ErrorCode::UnknownField, unknown));
    }
    Ok(Event {
        event_id,
        kind,
        name,
        source,
        customer_id,
        anonymous_id,
        session_id,
        occurred_at,
        context,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"event_id":"0192f0c6-3b7a-7cde-8f00-0123456789ab","kind":"customer",
        "name":"product_viewed","source":"online_store","customer_id":"c1",
        "occurred_at":"2026-11-25T10:00:00.000Z","context":{"category":"Jacket","price":99.5,"sale":true}}"#;

    fn batch(events: &str) -> String {
        format!(r#"{{"partner_id":"p","sent_at":"2026-11-25T10:00:01.000Z","events":[{events}]}}"#)
    }

    #[test]
    fn decodes_a_batch_and_its_event() {
        let body = batch(EVENT);
        let env = decode_envelope(&body).unwrap();
        assert_eq!(env.partner_id.as_deref(), Some("p"));
        assert_eq!(env.sent_at_ms, 1_795_600_801_000);
        assert_eq!(env.events.len(), 1);
        let event = decode_event(env.events[0].get()).unwrap();
        assert_eq!(event.kind, EventKind::Customer);
        assert_eq!(event.customer_id.as_deref(), Some("c1"));
        assert_eq!(event.context["price"], ContextValue::Number(99.5));
        assert_eq!(event.context["sale"], ContextValue::Bool(true));
    }

    #[test]
    fn envelope_errors_name_the_field() {
        let cases: &[(&str, ErrorCode, &str)] = &[
            ("{", ErrorCode::InvalidJson, ""),
            ("[]", ErrorCode::InvalidBatch, "body"),
            (r#"{"events":[{}]}"#, ErrorCode::MissingField, "sent_at"),
            (
                r#"{"sent_at":"x","events":[{}]}"#,
                ErrorCode::InvalidTimestamp,
                "sent_at",
            ),
            (
                r#"{"sent_at":1,"events":[{}]}"#,
                ErrorCode::InvalidTimestamp,
                "sent_at",
            ),
            (
                r#"{"sent_at":"2026-11-25T10:00:00Z"}"#,
                ErrorCode::MissingField,
                "events",
            ),
            (
                r#"{"sent_at":"2026-11-25T10:00:00Z","events":{}}"#,
                ErrorCode::InvalidBatch,
                "events",
            ),
            (
                r#"{"sent_at":"2026-11-25T10:00:00Z","events":[]}"#,
                ErrorCode::EmptyBatch,
                "events",
            ),
            (
                r#"{"sent_at":"2026-11-25T10:00:00Z","events":[{}],"x":1}"#,
                ErrorCode::UnknownField,
                "x",
            ),
            (
                r#"{"partner_id":5,"sent_at":"2026-11-25T10:00:00Z","events":[{}]}"#,
                ErrorCode::InvalidFieldType,
                "partner_id",
            ),
        ];
        for (body, code, field) in cases {
            let v = decode_envelope(body).unwrap_err();
            assert_eq!((v.code, v.field.as_str()), (*code, *field), "{body}");
        }
        let many = format!(
            r#"{{"sent_at":"2026-11-25T10:00:00Z","events":[{}]}}"#,
            vec!["{}"; MAX_BATCH_EVENTS + 1].join(",")
        );
        assert_eq!(
            decode_envelope(&many).unwrap_err().code,
            ErrorCode::TooManyEvents
        );
    }

    #[test]
    fn event_shape_errors_name_the_field() {
        let replace = |from: &str, to: &str| EVENT.replace(from, to);
        let cases = [
            ("[1]".to_string(), ErrorCode::InvalidEvent, ""),
            (
                replace(r#""kind":"customer","#, ""),
                ErrorCode::MissingField,
                "kind",
            ),
            (
                replace(r#""customer""#, r#""robot""#),
                ErrorCode::InvalidKind,
                "kind",
            ),
            (
                replace(r#""name":"product_viewed""#, r#""name":7"#),
                ErrorCode::InvalidFieldType,
                "name",
            ),
            (
                replace(r#""source":"online_store","#, ""),
                ErrorCode::MissingField,
                "source",
            ),
            (
                replace(r#""customer_id":"c1""#, r#""customer_id":1"#),
                ErrorCode::InvalidFieldType,
                "customer_id",
            ),
            (
                replace(r#""context":{"#, r#""contxt":1,"context":{"#),
                ErrorCode::UnknownField,
                "contxt",
            ),
            (
                replace(r#""sale":true"#, r#""sale":null"#),
                ErrorCode::InvalidContextValue,
                "context.sale",
            ),
            (
                replace(r#""sale":true"#, r#""sale":[1]"#),
                ErrorCode::InvalidContextValue,
                "context.sale",
            ),
            (
                replace(r#""sale":true"#, r#""sale":{"a":1}"#),
                ErrorCode::InvalidContextValue,
                "context.sale",
            ),
            (
                replace(
                    r#","context":{"category":"Jacket","price":99.5,"sale":true}"#,
                    r#","context":[]"#,
                ),
                ErrorCode::InvalidContext,
                "context",
            ),
        ];
        for (raw, code, field) in cases {
            let v = decode_event(&raw).unwrap_err();
            assert_eq!((v.code, v.field.as_str()), (code, field), "{raw}");
        }
        let big = EVENT.replace("Jacket", &"J".repeat(MAX_EVENT_BYTES));
        assert_eq!(
            decode_event(&big).unwrap_err().code,
            ErrorCode::EventTooLarge
        );
    }

    #[test]
    fn null_optional_fields_are_absent() {
        let raw = EVENT.replace(
            r#""customer_id":"c1""#,
            r#""customer_id":null,"session_id":null"#,
        );
        let event = decode_event(&raw).unwrap();
        assert_eq!(event.customer_id, None);
        assert_eq!(event.session_id, None);
    }
}
