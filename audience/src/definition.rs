//! A segment definition as analysts write it: the JSON shape and nothing else.
//!
//! Every struct rejects unknown fields, so a typo (`"perid"`) is an error, not a condition
//! silently dropped. Meaning (types, periods, who counts) lives in `validate`, `period`,
//! `compile` and `evaluate`; see `docs/segments.md` for the language.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A node of a segment definition: a combinator or a condition. The JSON is an object with
/// exactly one key naming the node: `{"all": [...]}`, `{"event": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// Every child holds. Must not be empty.
    All(Vec<Condition>),
    /// At least one child holds. Must not be empty.
    Any(Vec<Condition>),
    /// The child does not hold, among the partner's known customers.
    Not(Box<Condition>),
    /// The customer has (or lacks) events matching a filter, a number of times, in a period.
    Event(EventCondition),
    /// The customer's last matching event falls in a period.
    LastEvent(LastEventCondition),
    /// Partner-local calendar days since the customer's last matching event.
    DaysSinceLast(DaysSinceLastCondition),
    /// A field of the customer's profile.
    Profile(ProfileCondition),
}

/// `{"event": {...}}`: customers with matching events. `name` may be left out when `where` is
/// given (a context filter across all events).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventCondition {
    /// Event name (an event type's code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Source codes; an event from any of them counts. Absent = every source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    /// Context predicates, all holding on the same event.
    #[serde(rename = "where", default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Vec<Predicate>>,
    /// How many distinct matching events. Absent = at least once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<Count>,
    /// When. Absent = all time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
}

/// `{"last_event": {...}}`: the customer's latest matching event falls in `period`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastEventCondition {
    /// Event name.
    pub name: String,
    /// Where the last event must fall.
    pub period: Period,
    /// Source codes, as in `event`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    /// Context predicates, as in `event`.
    #[serde(rename = "where", default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Vec<Predicate>>,
    /// Never valid: accepted by the parser only so validation can point at it with a clear
    /// message (`count_not_allowed`) instead of a bare "unknown field".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<Value>,
}

/// `{"days_since_last": {...}}`: whole partner-local calendar days from the day of the last
/// matching event to today. Customers without such an event never match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaysSinceLastCondition {
    /// Event name.
    pub name: String,
    /// How the day count compares with `value`.
    pub op: CompareOp,
    /// Days, 0 or more.
    pub value: u32,
    /// Source codes, as in `event`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    /// Context predicates, as in `event`.
    #[serde(rename = "where", default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Vec<Predicate>>,
}

/// `{"profile": {...}}`: a field of the customer's latest, not deleted, profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileCondition {
    /// `first_name`, `last_name`, `email`, `phone`, `birthday`, `consents.<channel>` or
    /// `attributes.<code>`.
    pub field: String,
    /// The comparison.
    pub op: PredicateOp,
    /// The operand; absent for `exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// The type of a custom attribute (`string`, `number`, `boolean`, `datetime`). Absent = the
    /// JSON type of `value`; needed only to compare a `datetime` attribute, or to ask whether an
    /// attribute of one type `exists`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub attribute_type: Option<String>,
}

/// One context predicate: `{"key": "category", "op": "eq", "value": "Jacket"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Predicate {
    /// The context key (a property code).
    pub key: String,
    /// The comparison.
    pub op: PredicateOp,
    /// The operand: a scalar, a list for `in`/`not_in`, `[low, high]` for `between`, absent
    /// for `exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// Comparisons of a context value or profile field. Every operator but `exists` needs the key
/// present: `ne` and `not_in` mean "has the key, with another value".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredicateOp {
    /// Equal.
    Eq,
    /// Present and not equal.
    Ne,
    /// Equal to one of a list.
    In,
    /// Present and equal to none of a list.
    NotIn,
    /// A string containing the operand (case-sensitive).
    Contains,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// Within `[low, high]`, both included.
    Between,
    /// The key is present.
    Exists,
}

impl PredicateOp {
    /// The JSON spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            PredicateOp::Eq => "eq",
            PredicateOp::Ne => "ne",
            PredicateOp::In => "in",
            PredicateOp::NotIn => "not_in",
            PredicateOp::Contains => "contains",
            PredicateOp::Gt => "gt",
            PredicateOp::Gte => "gte",
            PredicateOp::Lt => "lt",
            PredicateOp::Lte => "lte",
            PredicateOp::Between => "between",
            PredicateOp::Exists => "exists",
        }
    }
}

/// `{"op": "gte", "value": 1}`: how many distinct events (`eq 0` = never).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Count {
    /// `gte`, `lte` or `eq`.
    pub op: CountOp,
    /// The number of distinct events.
    pub value: u64,
}

/// Count comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountOp {
    /// At least.
    Gte,
    /// At most (zero included).
    Lte,
    /// Exactly (`eq 0` = never).
    Eq,
}

/// Numeric comparisons of `days_since_last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareOp {
    /// Equal.
    Eq,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
}

/// A period in the partner's time zone. Dates are `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Period {
    /// From the start of the partner-local calendar day N−1 days ago until now (N ≥ 1; 1 =
    /// today so far).
    LastDays(u32),
    /// From the start of the first date to the end of the second, both included.
    Between([String; 2]),
    /// From the start of the date until now.
    Since(String),
}

/// Parses a definition from JSON. Shape errors (unknown field, wrong JSON type) come back as
/// serde's message; meaning is checked by [`crate::validate::validate`].
pub fn parse(json: &str) -> Result<Condition, serde_json::Error> {
    serde_json::from_str(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_EXAMPLE: &str = r#"{"all": [
      {"event": {"name": "product_viewed", "sources": ["online_store"],
                 "where": [{"key": "category", "op": "eq", "value": "Jacket"}],
                 "count": {"op": "gte", "value": 1}, "period": {"last_days": 30}}},
      {"not": {"event": {"name": "purchase_completed", "period": {"last_days": 30}}}},
      {"last_event": {"name": "purchase_completed", "period": {"between": ["2026-11-01", "2026-11-30"]}}},
      {"days_since_last": {"name": "purchase_completed", "op": "gte", "value": 14}},
      {"profile": {"field": "birthday", "op": "exists"}}
    ]}"#;

    #[test]
    fn the_issue_example_parses_and_round_trips() {
        let def = parse(ISSUE_EXAMPLE).unwrap();
        let Condition::All(children) = &def else {
            panic!("{def:?}")
        };
        assert_eq!(children.len(), 5);
        assert!(
            matches!(&children[1], Condition::Not(inner) if matches!(**inner, Condition::Event(_)))
        );
        let again: Condition = serde_json::from_value(serde_json::to_value(&def).unwrap()).unwrap();
        assert_eq!(again, def);
    }

    #[test]
    fn a_misspelt_field_is_refused_not_ignored() {
        let err = parse(r#"{"event": {"name": "x", "perid": {"last_days": 3}}}"#).unwrap_err();
        assert!(err.to_string().contains("perid"), "{err}");
        assert!(parse(r#"{"event": {"name": "x"}, "any": []}"#).is_err());
        assert!(parse(r#"{"some": []}"#).is_err());
        assert!(
            parse(r#"{"event": {"period": {"last_days": 3, "since": "2026-01-01"}}}"#).is_err()
        );
    }
}
