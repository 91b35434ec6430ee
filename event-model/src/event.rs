//! Wire format v1 event, and the whole-event rules (identity, timestamps, context, skew correction).

use std::collections::BTreeMap;

use crate::codes::ErrorCode;
use crate::limits::{MAX_CONTEXT_KEYS, MAX_EVENT_AGE_MS, MAX_FUTURE_SKEW_MS};
use crate::rules;
use crate::timestamp::parse_rfc3339_ms;
use crate::Violation;

/// Whom an event concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "json", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "json", serde(rename_all = "lowercase"))]
pub enum EventKind {
    /// About one customer, identified by `customer_id` and/or `anonymous_id`.
    Customer,
    /// About nobody in particular ("product X is back in stock"); fanned out later.
    System,
}

impl EventKind {
    /// The wire and storage spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Customer => "customer",
            EventKind::System => "system",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Option<EventKind> {
        match text {
            "customer" => Some(EventKind::Customer),
            "system" => Some(EventKind::System),
            _ => None,
        }
    }
}

/// One context value. The context is flat: no nulls, arrays or objects.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[cfg_attr(feature = "json", serde(untagged))]
pub enum ContextValue {
    /// A string, at most `MAX_CONTEXT_STRING_CHARS` characters.
    String(String),
    /// A finite number; integers must be within ±2^53.
    Number(f64),
    /// `true` or `false`.
    Bool(bool),
}

/// An event as the client sent it, decoded but not yet validated. Timestamps stay text.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
pub struct Event {
    /// Client-generated UUID (v7 preferred); the idempotency key for retries.
    pub event_id: String,
    /// Customer or system event.
    pub kind: EventKind,
    /// What happened ("product_viewed", "Order Completed").
    pub name: String,
    /// Code of the source (site or app) it came from.
    pub source: String,
    /// The partner's own customer id, once known.
    #[cfg_attr(feature = "json", serde(skip_serializing_if = "Option::is_none"))]
    pub customer_id: Option<String>,
    /// The tracker's device/browser id, before or besides `customer_id`.
    #[cfg_attr(feature = "json", serde(skip_serializing_if = "Option::is_none"))]
    pub anonymous_id: Option<String>,
    /// The tracker's session id.
    #[cfg_attr(feature = "json", serde(skip_serializing_if = "Option::is_none"))]
    pub session_id: Option<String>,
    /// When it happened, on the client's clock (RFC 3339).
    pub occurred_at: String,
    /// Flat variables; never changed after the event happened.
    #[cfg_attr(feature = "json", serde(skip_serializing_if = "BTreeMap::is_empty"))]
    pub context: BTreeMap<String, ContextValue>,
}

/// The batch-level clocks an event is judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchTimes {
    /// The batch's `sent_at`, on the client's clock.
    pub sent_at_ms: i64,
    /// When the collector received the batch, on the server's clock.
    pub received_at_ms: i64,
}

/// An event that passed every rule, with its times resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEvent {
    /// The parsed `event_id`.
    pub event_id: [u8; 16],
    /// Customer or system event.
    pub kind: EventKind,
    /// Event name.
    pub name: String,
    /// Source code.
    pub source: String,
    /// Customer id, if sent.
    pub customer_id: Option<String>,
    /// Anonymous id, if sent.
    pub anonymous_id: Option<String>,
    /// Session id, if sent.
    pub session_id: Option<String>,
    /// `occurred_at` as sent (client clock), Unix ms.
    pub occurred_at_ms: i64,
    /// Skew-corrected time: `received_at − (sent_at − occurred_at)`, Unix ms.
    pub event_time_ms: i64,
    /// The context, keys in sorted order.
    pub context: BTreeMap<String, ContextValue>,
}

fn at(field: &str, code: ErrorCode) -> Violation {
    Violation::new(code, field)
}

fn check_optional_id(field: &str, id: &Option<String>) -> Result<(), Violation> {
    match id {
        Some(id) => rules::check_id(id).map_err(|code| at(field, code)),
        None => Ok(()),
    }
}

/// Checks one context key and value; the tracker calls this as each variable is added.
pub fn check_context_entry(key: &str, value: &ContextValue) -> Result<(), Violation> {
    let field = || {
        let mut f = String::from("context.");
        f.push_str(key);
        f
    };
    rules::check_context_key(key).map_err(|code| Violation::new(code, &field()))?;
    match value {
        ContextValue::String(s) => rules::check_context_string(s),
        ContextValue::Number(n) => rules::check_context_number(*n),
        ContextValue::Bool(_) => Ok(()),
    }
    .map_err(|code| Violation::new(code, &field()))
}

/// Applies every event rule and resolves the event's times.
pub fn validate_event(event: Event, times: BatchTimes) -> Result<ValidEvent, Violation> {
    let event_id = rules::parse_event_id(&event.event_id).map_err(|code| at("event_id", code))?;
    rules::check_event_name(&event.name).map_err(|code| at("name", code))?;
    rules::check_source_code(&event.source).map_err(|code| at("source", code))?;
    match event.kind {
        EventKind::Customer if event.customer_id.is_none() && event.anonymous_id.is_none() => {
            return Err(at("customer_id", ErrorCode::MissingIdentity));
        }
        EventKind::System if event.customer_id.is_some() => {
            return Err(at("customer_id", ErrorCode::IdentityNotAllowed));
        }
        EventKind::System if event.anonymous_id.is_some() => {
            return Err(at("anonymous_id", ErrorCode::IdentityNotAllowed));
        }
        _ => {}
    }
    check_optional_id("customer_id", &event.customer_id)?;
    check_optional_id("anonymous_id", &event.anonymous_id)?;
    check_optional_id("session_id", &event.session_id)?;

    let occurred_at_ms = parse_rfc3339_ms(&event.occurred_at)
        .ok_or_else(|| at("occurred_at", ErrorCode::InvalidTimestamp))?;
    if occurred_at_ms > times.sent_at_ms + MAX_FUTURE_SKEW_MS {
        return Err(at("occurred_at", ErrorCode::OccurredInFuture));
    }
    // Within the tolerance an event may be stamped slightly after sent_at; clamp so the corrected
    // time never lands after the moment the collector received it.
    let age_on_client = (times.sent_at_ms - occurred_at_ms).max(0);
    let event_time_ms = times.received_at_ms - age_on_client;
    if times.received_at_ms - event_time_ms > MAX_EVENT_AGE_MS {
        return Err(at("occurred_at", ErrorCode::OccurredTooLongAgo));
    }

    if event.context.len() > MAX_CONTEXT_KEYS {
        return Err(at("context", ErrorCode::TooManyContextKeys));
    }
    for (key, value) in &event.context {
        check_context_entry(key, value)?;
    }

    Ok(ValidEvent {
        event_id,
        kind: event.kind,
        name: event.name,
        source: event.source,
        customer_id: event.customer_id,
        anonymous_id: event.anonymous_id,
        session_id: event.session_id,
        occurred_at_ms,
        event_time_ms,
        context: event.context,
    })
}
