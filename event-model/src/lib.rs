//! Eventline wire format v1 and its rules, shared by the browser tracker and the collector so
//! the two can never disagree about what a valid event is.
//!
//! Pure: no I/O, no clock (callers pass times in), builds for `wasm32-unknown-unknown`.
//! The `json` feature (on by default) adds decoding of wire batches with serde_json.

pub mod catalog;
pub mod codes;
mod event;
#[cfg(feature = "json")]
pub mod json;
pub mod limits;
pub mod rules;
pub mod timestamp;

pub use codes::{ErrorClass, ErrorCode};
pub use event::{
    check_context_entry, validate_event, BatchTimes, ContextValue, Event, EventKind, ValidEvent,
};

/// A broken rule: which code, on which field (a path such as `context.user-name` or `sent_at`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The stable code.
    pub code: ErrorCode,
    /// The offending field, relative to the event (or the batch, for batch-level errors).
    pub field: String,
    /// Extra words for the message, such as a parser's complaint; empty when the code says it all.
    pub detail: String,
}

impl Violation {
    /// A violation of `code` on `field`.
    pub fn new(code: ErrorCode, field: &str) -> Violation {
        Violation {
            code,
            field: field.into(),
            detail: String::new(),
        }
    }

    /// The same violation with more words for the message.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Violation {
        self.detail = detail.into();
        self
    }

    /// A sentence for people, naming the field; built on demand so the tracker can skip it.
    pub fn message(&self) -> String {
        use limits::*;
        let f = &self.field;
        let key = f.strip_prefix("context.").unwrap_or(f);
        let mut text = match self.code {
            ErrorCode::ContextKeyHyphen => format!(
                "context key `{key}` contains a hyphen; keys are used as $field_code and \
                 {{{{client.eventContext.field_code}}}}, so use letters, digits and underscores (e.g. `{}`)",
                key.replace('-', "_")
            ),
            ErrorCode::InvalidContextKey => format!(
                "context key `{key}` must start with a letter or underscore and contain only ASCII letters, digits and underscores"
            ),
            ErrorCode::ContextKeyTooLong => {
                format!("context key `{key}` is longer than {MAX_CONTEXT_KEY_CHARS} characters")
            }
            ErrorCode::ContextValueTooLong => format!(
                "context value `{key}` is longer than {MAX_CONTEXT_STRING_CHARS} characters"
            ),
            ErrorCode::ContextNumberOutOfRange => format!(
                "context value `{key}` is not a finite number within ±2^53; send large ids as strings"
            ),
            ErrorCode::InvalidContextValue => format!(
                "context value `{key}` must be a string, number or boolean (not null, array or object)"
            ),
            ErrorCode::TooManyContextKeys => {
                format!("`{f}` has more than {MAX_CONTEXT_KEYS} keys")
            }
            ErrorCode::InvalidContext => format!("`{f}` must be a flat JSON object"),
            ErrorCode::MissingField => format!("`{f}` is required"),
            ErrorCode::UnknownField => format!("`{f}` is not a field of wire format v1"),
            ErrorCode::InvalidFieldType => format!("`{f}` has the wrong type"),
            ErrorCode::InvalidEventId => format!("`{f}` must be a UUID such as 0192f0c6-3b7a-7cde-8f00-0123456789ab (v7 preferred), not nil"),
            ErrorCode::InvalidKind => format!("`{f}` must be \"customer\" or \"system\""),
            ErrorCode::InvalidName => format!(
                "`{f}` must be non-empty, without control characters or leading/trailing spaces"
            ),
            ErrorCode::NameTooLong => format!("`{f}` is longer than {MAX_NAME_CHARS} characters"),
            ErrorCode::InvalidSourceCode => format!(
                "`{f}` must be 1-{MAX_SOURCE_CODE_CHARS} ASCII letters, digits, '_', '.' or '-', starting with a letter or digit"
            ),
            ErrorCode::MissingIdentity => {
                "a customer event needs `customer_id` or `anonymous_id`".to_string()
            }
            ErrorCode::IdentityNotAllowed => {
                format!("a system event concerns no customer, so `{f}` is not allowed")
            }
            ErrorCode::InvalidId => format!(
                "`{f}` must be 1-{MAX_ID_CHARS} characters without control characters or leading/trailing spaces"
            ),
            ErrorCode::InvalidTimestamp => format!(
                "`{f}` must be an RFC 3339 timestamp such as 2026-11-25T10:00:00.000Z"
            ),
            ErrorCode::OccurredInFuture => format!(
                "`{f}` is more than {} minutes after the batch's sent_at",
                MAX_FUTURE_SKEW_MS / 60_000
            ),
            ErrorCode::OccurredTooLongAgo => format!(
                "`{f}` is more than {} days in the past",
                MAX_EVENT_AGE_MS / 86_400_000
            ),
            ErrorCode::EventTooLarge => {
                format!("the event is larger than {MAX_EVENT_BYTES} bytes of JSON")
            }
            ErrorCode::InvalidEvent => "the event must be a JSON object".to_string(),
            ErrorCode::TooManyEvents => {
                format!("a batch may hold at most {MAX_BATCH_EVENTS} events")
            }
            ErrorCode::EmptyBatch => "the batch has no events".to_string(),
            ErrorCode::BodyTooLarge => {
                format!("the body is larger than {MAX_BATCH_BYTES} bytes (after decompression)")
            }
            ErrorCode::InvalidJson => "the body is not valid JSON".to_string(),
            ErrorCode::OriginNotAllowed => "this origin may not send to this source".to_string(),
            ErrorCode::OriginRequired => {
                "this source has a domain, so it takes browser requests (with an Origin) only"
                    .to_string()
            }
            ErrorCode::BodyTimeout => "the body did not arrive in time".to_string(),
            ErrorCode::PropertyTypeMismatch => {
                format!("context value `{key}` has the wrong type for this event type")
            }
            ErrorCode::MissingProperty => {
                format!("this event type requires the context value `{key}`")
            }
            ErrorCode::UndeclaredEvent => {
                format!("`{f}` is not a declared event type, and this partner accepts declared types only")
            }
            ErrorCode::InvalidBatch => format!(
                "`{f}`: the body must be an object with `sent_at` and an `events` array"
            ),
            other => format!("`{f}`: {}", other.as_str()),
        };
        if !self.detail.is_empty() {
            text.push_str(": ");
            text.push_str(&self.detail);
        }
        text
    }
}

impl core::fmt::Display for Violation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Violation {}
