//! The crate's errors: field-level validation errors (what the segment API returns on save) and
//! the clock's bad time zone.

use serde::Serialize;

/// Why a definition was refused. The JSON spelling is the stable machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not valid JSON, or not the definition's shape (unknown field, wrong JSON type).
    InvalidDefinition,
    /// `all` or `any` without children.
    EmptyGroup,
    /// Deeper than [`crate::validate::MAX_DEPTH`] or more than [`crate::validate::MAX_NODES`]
    /// nodes or [`crate::validate::MAX_LIST_ITEMS`] list items.
    TooComplex,
    /// An event name no event type declares, while the partner rejects undeclared names.
    UnknownEventType,
    /// An event name that breaks the event-name rule.
    InvalidEventName,
    /// `event` with neither `name` nor `where`.
    MissingEventName,
    /// A source code that breaks the source-code rule, or an empty `sources` list.
    InvalidSource,
    /// A context key that breaks the context-key rule (letters, digits, `_`; never a hyphen).
    InvalidKey,
    /// A key the catalogue does not know (or the event type does not use), while the partner
    /// rejects undeclared events.
    UnknownProperty,
    /// A value whose type differs from the property's type.
    TypeMismatch,
    /// An operator that the property's type does not support (`gt` on a boolean).
    InvalidOp,
    /// A value of the wrong shape: missing, present with `exists`, not a list for `in`, not a
    /// pair for `between`, `low > high`, a number out of range.
    InvalidValue,
    /// A period that cannot be: `last_days` 0, `between` backwards.
    InvalidPeriod,
    /// A date that is not `YYYY-MM-DD`, or a datetime that is not RFC 3339.
    InvalidDate,
    /// `count` on `last_event` (the last event is one event; use `event` to count).
    CountNotAllowed,
    /// A profile field outside the list.
    UnknownProfileField,
}

impl ErrorCode {
    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidDefinition => "invalid_definition",
            ErrorCode::EmptyGroup => "empty_group",
            ErrorCode::TooComplex => "too_complex",
            ErrorCode::UnknownEventType => "unknown_event_type",
            ErrorCode::InvalidEventName => "invalid_event_name",
            ErrorCode::MissingEventName => "missing_event_name",
            ErrorCode::InvalidSource => "invalid_source",
            ErrorCode::InvalidKey => "invalid_key",
            ErrorCode::UnknownProperty => "unknown_property",
            ErrorCode::TypeMismatch => "type_mismatch",
            ErrorCode::InvalidOp => "invalid_op",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::InvalidPeriod => "invalid_period",
            ErrorCode::InvalidDate => "invalid_date",
            ErrorCode::CountNotAllowed => "count_not_allowed",
            ErrorCode::UnknownProfileField => "unknown_profile_field",
        }
    }
}

/// One problem with a definition: which rule, where (a path such as
/// `all[1].event.where[0].value`) and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The stable code.
    pub code: ErrorCode,
    /// The offending field; empty for the whole definition.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    /// An error of `code` at `path`.
    pub fn new(code: ErrorCode, path: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            code,
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A partner time zone the bundled database does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone `{0}`: use an IANA name such as Europe/Moscow or UTC")]
pub struct UnknownTimeZone(pub String);
