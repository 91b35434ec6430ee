//! Field-level errors of a campaign definition: what the campaign API returns on save. The
//! same shape as the segment errors (`code`, `path`, `message`); a segment nested in a campaign
//! (audience, filters, a branch condition) keeps its segment code, with the campaign path before
//! its own.

use serde::{Serialize, Serializer};

/// Why a campaign definition was refused. The JSON spelling is the stable machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Not valid JSON, or not the definition's shape (unknown field, wrong JSON type).
    InvalidDefinition,
    /// An empty or over-long campaign name.
    InvalidName,
    /// An event name no event type declares, while the partner rejects undeclared names; or a
    /// type of the wrong kind (a customer type as a system trigger, or the reverse).
    UnknownEventType,
    /// A `$field_code` the triggering event type does not carry (or any `$field_code` where the
    /// trigger has no event, as in a schedule).
    UnknownField,
    /// A template that does not parse, or reads a variable no trigger provides.
    InvalidTemplate,
    /// A template or content rule of a channel broken (an SMS with a subject, an email without one).
    ContentRule,
    /// A list that must not be empty is (`steps`, `then`, turn-on `on`/`off`).
    Empty,
    /// A duration of zero or beyond the limit, a time of day that is not `HH:MM`.
    InvalidTime,
    /// A cap or counter of 0, or one with an invalid window.
    InvalidCap,
    /// Nested deeper than [`crate::validate::MAX_BRANCH_DEPTH`] or more than
    /// [`crate::validate::MAX_STEPS`] steps.
    TooComplex,
    /// A value of the wrong type or shape (an `assign_event` property, a date attribute, a
    /// branch with both `if` and `in_segment`).
    InvalidValue,
    /// A branch's `in_segment` that is not one of the partner's live segments (checked by the
    /// collector, which knows them).
    UnknownSegment,
    /// A segment rule inside the campaign (audience, filters, `where`, a branch's `if`).
    Segment(eventline_audience::ErrorCode),
}

impl ErrorCode {
    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidDefinition => "invalid_definition",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::UnknownEventType => "unknown_event_type",
            ErrorCode::UnknownField => "unknown_field",
            ErrorCode::InvalidTemplate => "invalid_template",
            ErrorCode::ContentRule => "content_rule",
            ErrorCode::Empty => "empty",
            ErrorCode::InvalidTime => "invalid_time",
            ErrorCode::InvalidCap => "invalid_cap",
            ErrorCode::TooComplex => "too_complex",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::UnknownSegment => "unknown_segment",
            ErrorCode::Segment(code) => code.as_str(),
        }
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One problem with a campaign definition: which rule, where (a path such as
/// `steps[2].branch.then[0].send.template.body`) and a sentence for people that, where a name
/// is wrong, lists the valid names.
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

/// `a`, `b` and `c` as "`a`, `b`, `c`", or "none" for an empty list: the valid names in a message.
pub fn list_names<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return "none".to_string();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_their_stable_spelling_and_segment_codes_keep_theirs() {
        let e = FieldError::new(ErrorCode::UnknownField, "filters.event.where[0].value", "x");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["code"], "unknown_field");
        let seg = ErrorCode::Segment(eventline_audience::ErrorCode::TypeMismatch);
        assert_eq!(serde_json::to_value(seg).unwrap(), "type_mismatch");
    }

    #[test]
    fn valid_names_are_listed_sorted_once() {
        assert_eq!(list_names(["b", "a", "b"]), "`a`, `b`");
        assert_eq!(list_names([]), "none");
    }
}
