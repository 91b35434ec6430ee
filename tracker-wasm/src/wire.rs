//! Wire format v1 written by hand: one event as JSON text, and a batch around pre-written events.
//!
//! No serde and no `format!`: the serde stack and float `Display` are most of a serde-based
//! tracker's size. Numbers arrive as JSON number text made by the caller
//! (the browser's own `String(number)` in the wasm build), so no float formatting lives here.

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for Unix ms: event-model's formatter natively; in the wasm build
/// the host's own `Date.prototype.toISOString`, which writes the same text for the years the
/// collector accepts and saves the formatter's code (about 350 bytes gzip of the .wasm).
#[cfg(not(target_arch = "wasm32"))]
fn timestamp(ms: i64) -> String {
    event_model::timestamp::format_rfc3339_ms(ms)
}

#[cfg(target_arch = "wasm32")]
fn timestamp(ms: i64) -> String {
    crate::bindings::iso_timestamp(ms as f64)
}

/// A context value ready to be written; `Num` holds valid JSON number text such as `99.5`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Str(String),
    /// A finite number, as JSON number text.
    Num(String),
    /// A boolean.
    Bool(bool),
}

/// The fields of one tracker event (always `kind: "customer"`, always with an anonymous id).
#[derive(Debug, Clone)]
pub struct EventFields<'a> {
    /// UUID v7 of the event, the collector's idempotency key.
    pub event_id: &'a str,
    /// Event name, already checked.
    pub name: &'a str,
    /// Source code, already checked.
    pub source: &'a str,
    /// The partner's customer id, once `identify` was called.
    pub customer_id: Option<&'a str>,
    /// The device/browser id.
    pub anonymous_id: &'a str,
    /// The session id.
    pub session_id: &'a str,
    /// When it happened, Unix ms on the client's clock.
    pub occurred_at_ms: i64,
    /// Flat context in insertion order; keys already checked.
    pub context: &'a [(String, Value)],
}

/// Concatenates `parts`. One plain loop instead of `[..].concat()` / `join`, whose generic
/// copies each cost about a kilobyte of wasm.
pub fn cat(parts: &[&str]) -> String {
    let mut out = String::new();
    for p in parts {
        out.push_str(p);
    }
    out
}

/// `text` cut at the first `sep` (an ASCII byte): what comes before and after it. A byte search,
/// where `str::split_once(char)` would bring the UTF-8 char searcher into the wasm.
pub fn cut(text: &str, sep: u8) -> Option<(&str, &str)> {
    let i = text.bytes().position(|b| b == sep)?;
    // `get`, not `[..]`: indexing a str could panic, which on stable brings the panic
    // message formatting (several KB) into the wasm. An ASCII byte is always a char boundary.
    Some((text.get(..i)?, text.get(i + 1..)?))
}

/// The pieces of `text` between `sep` bytes (ASCII), like `str::split(char)`.
pub fn fields(text: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        Some(match cut(s, sep) {
            Some((head, tail)) => {
                rest = Some(tail);
                head
            }
            None => {
                rest = None;
                s
            }
        })
    })
}

/// `text` as a decimal number if it is 1 to `max_len` (at most 19) ASCII digits. The one number
/// reader of the stored formats (queue, beats, sessions) and of `Retry-After`.
pub fn digits(text: &str, max_len: usize) -> Option<u64> {
    if text.is_empty() || text.len() > max_len.min(19) || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some(text.bytes().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Appends `s` as a JSON string literal. Rust strings are valid UTF-8, so lone UTF-16
/// surrogates from JavaScript were already replaced by U+FFFD when the string crossed over.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    // Char by char rather than slicing runs: slicing would bring a panic path (and core::fmt).
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0'..='\u{1f}' => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let b = c as usize;
                out.push_str("\\u00");
                out.push(HEX[b >> 4] as char);
                out.push(HEX[b & 15] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a signed integer in decimal (integer `Display` would pull in `core::fmt`).
pub fn push_int(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    let v = n.unsigned_abs();
    // Digits from the highest power of ten down: no buffer to index, so no bounds-check panic.
    let mut div = 1u64;
    while v / div >= 10 {
        div *= 10;
    }
    loop {
        out.push(char::from(b'0' + (v / div % 10) as u8));
        if div == 1 {
            break;
        }
        div /= 10;
    }
}

fn push_field(out: &mut String, key: &str, value: &str) {
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":");
    push_str(out, value);
}

/// Writes one event object. `event_id` comes first, which the queue's storage format relies on
/// only for readability; entries keep their id separately.
pub fn write_event(e: &EventFields<'_>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"event_id\":");
    push_str(&mut out, e.event_id);
    out.push_str(",\"kind\":\"customer\"");
    push_field(&mut out, "name", e.name);
    push_field(&mut out, "source", e.source);
    if let Some(id) = e.customer_id {
        push_field(&mut out, "customer_id", id);
    }
    push_field(&mut out, "anonymous_id", e.anonymous_id);
    push_field(&mut out, "session_id", e.session_id);
    push_field(&mut out, "occurred_at", &timestamp(e.occurred_at_ms));
    if !e.context.is_empty() {
        out.push_str(",\"context\":{");
        for (i, (key, value)) in e.context.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_str(&mut out, key);
            out.push(':');
            match value {
                Value::Str(s) => push_str(&mut out, s),
                Value::Num(n) => out.push_str(n),
                Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            }
        }
        out.push('}');
    }
    out.push('}');
    out
}

/// Bytes of a batch body around its events: envelope plus the commas between `events` events.
pub fn batch_size(partner_id: &str, event_bytes: usize, events: usize) -> usize {
    // {"partner_id":"…","sent_at":"2026-11-25T10:00:01.000Z","events":[…]}
    const FIXED: usize =
        r#"{"partner_id":"","sent_at":"2026-11-25T10:00:01.000Z","events":[]}"#.len();
    FIXED + partner_id.len() + event_bytes + events.saturating_sub(1)
}

/// Writes a batch around pre-written event JSON texts.
pub fn write_batch<'a>(
    partner_id: &str,
    sent_at_ms: i64,
    events: impl Iterator<Item = &'a str>,
) -> String {
    let mut out = String::with_capacity(1024);
    out.push_str("{\"partner_id\":");
    push_str(&mut out, partner_id);
    push_field(&mut out, "sent_at", &timestamp(sent_at_ms));
    out.push_str(",\"events\":[");
    for (i, event) in events.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(event);
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_model::json::{decode_envelope, decode_event};
    use event_model::{validate_event, BatchTimes, ContextValue};

    fn escaped(s: &str) -> String {
        let mut out = String::new();
        push_str(&mut out, s);
        out
    }

    #[test]
    fn strings_round_trip_through_a_real_json_parser() {
        for s in [
            "",
            "plain",
            "quote \" and backslash \\",
            "new\nline\r\ttab",
            "\u{0}\u{1}\u{1f}\u{7f}",
            "Заказ оформлен ✓ 😀",
            "\u{2028}\u{2029}",
            "\u{fffd} was a lone surrogate",
        ] {
            let json = escaped(s);
            assert!(
                !json.bytes().any(|b| b < 0x20),
                "raw control byte in {json:?}"
            );
            let back: String = serde_json::from_str(&json).unwrap();
            assert_eq!(back, s);
        }
        assert_eq!(escaped("\u{1}"), "\"\\u0001\"");
        assert_eq!(escaped("\u{1f}"), "\"\\u001f\"");
    }

    #[test]
    fn integers_are_written_in_decimal() {
        for n in [0i64, 7, -7, 10, 1_795_600_801_000, i64::MAX, i64::MIN] {
            let mut out = String::new();
            push_int(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    fn sample_context() -> Vec<(String, Value)> {
        vec![
            ("category".into(), Value::Str("Jacket \"XL\"\n".into())),
            ("price".into(), Value::Num("99.5".into())),
            ("qty".into(), Value::Num("-3".into())),
            ("tiny".into(), Value::Num("1e-7".into())),
            ("in_stock".into(), Value::Bool(true)),
            ("gift".into(), Value::Bool(false)),
        ]
    }

    fn sample_event(context: &[(String, Value)], customer: Option<&str>) -> String {
        write_event(&EventFields {
            event_id: "0192f0c6-3b7a-7cde-8f00-0123456789ab",
            name: "Order Completed",
            source: "online_store",
            customer_id: customer,
            anonymous_id: "a-1",
            session_id: "s-1",
            occurred_at_ms: 1_795_600_800_000,
            context,
        })
    }

    #[test]
    fn the_collector_accepts_what_the_tracker_writes() {
        let ctx = sample_context();
        let events = [sample_event(&ctx, Some("42")), sample_event(&[], None)];
        let body = write_batch(
            "5f0c7c1e-7d7a-4c1b-9a57-2f1d3c4b5a69",
            1_795_600_801_000,
            events.iter().map(String::as_str),
        );
        assert_eq!(
            body.len(),
            batch_size(
                "5f0c7c1e-7d7a-4c1b-9a57-2f1d3c4b5a69",
                events[0].len() + events[1].len(),
                2
            )
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["events"][0]["context"]["price"], 99.5);
        assert_eq!(parsed["events"][0]["customer_id"], "42");
        assert!(parsed["events"][1].get("customer_id").is_none());
        assert!(parsed["events"][1].get("context").is_none());

        let env = decode_envelope(&body).unwrap();
        assert_eq!(env.sent_at_ms, 1_795_600_801_000);
        let times = BatchTimes {
            sent_at_ms: env.sent_at_ms,
            received_at_ms: env.sent_at_ms + 50,
        };
        let first = validate_event(decode_event(env.events[0].get()).unwrap(), times).unwrap();
        assert_eq!(first.occurred_at_ms, 1_795_600_800_000);
        assert_eq!(first.customer_id.as_deref(), Some("42"));
        assert_eq!(
            first.context["category"],
            ContextValue::String("Jacket \"XL\"\n".into())
        );
        assert_eq!(first.context["tiny"], ContextValue::Number(1e-7));
        assert_eq!(first.context["gift"], ContextValue::Bool(false));
        let second = validate_event(decode_event(env.events[1].get()).unwrap(), times).unwrap();
        assert!(second.context.is_empty());
    }
}
