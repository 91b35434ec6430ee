//! A validated segment: the typed tree the compiler and the reference evaluator both read.
//!
//! Only [`crate::validate::validate`] builds one, so every key has its type, every value its
//! Rust type and every period its dates; the compiler and the evaluator never re-check.

use event_model::catalog::PropertyType;
use jiff::civil::Date;

use crate::definition::{CompareOp, CountOp, PredicateOp};
use crate::period::Period;

/// A validated segment definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The root condition.
    pub root: Node,
}

/// A validated condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Every child holds (at least one child).
    All(Vec<Node>),
    /// At least one child holds (at least one child).
    Any(Vec<Node>),
    /// The child does not hold, among known customers.
    Not(Box<Node>),
    /// A test on the customer's events that pass a filter.
    Events(EventFilter, EventTest),
    /// A test on the customer's profile.
    Profile(ProfileTest),
}

/// Which events a condition looks at.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventFilter {
    /// The event name; `None` = every name.
    pub name: Option<String>,
    /// Source codes; `None` = every source.
    pub sources: Option<Vec<String>>,
    /// Context predicates, all on the same event.
    pub predicates: Vec<ContextPredicate>,
}

/// What a condition asks of the filtered events.
#[derive(Debug, Clone, PartialEq)]
pub enum EventTest {
    /// The number of distinct events in the period compares with `value`.
    Count {
        /// The comparison.
        op: CountOp,
        /// Distinct events.
        value: u64,
        /// `None` = all time.
        period: Option<Period>,
    },
    /// The latest event falls in the period.
    LastIn(Period),
    /// Calendar days since the latest event compare with `days`.
    DaysSinceLast {
        /// The comparison.
        op: CompareOp,
        /// Days.
        days: u32,
    },
}

/// A typed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// Text (exact, byte for byte).
    Str(String),
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// An instant, Unix milliseconds.
    Time(i64),
    /// A calendar date (birthdays).
    Date(Date),
}

/// A typed comparison: `op` with its operands (one for scalar ops, a list for `in`/`not_in`,
/// two for `between`, none for `exists`).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The operator.
    pub op: PredicateOp,
    /// Its operands, all of the compared type.
    pub operands: Vec<Scalar>,
}

/// A context predicate with the key's type resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextPredicate {
    /// The context key.
    pub key: String,
    /// The key's type; `None` only for `exists` on an undeclared key (any type).
    pub ty: Option<PropertyType>,
    /// The test.
    pub test: Comparison,
}

/// A profile field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileField {
    /// `first_name`.
    FirstName,
    /// `last_name`.
    LastName,
    /// `email`.
    Email,
    /// `phone`.
    Phone,
    /// `birthday` (a date).
    Birthday,
    /// `consents.<channel>` (a boolean).
    Consent(String),
    /// `attributes.<code>`, of a type (`None` = `exists` of any type).
    Attribute(String, Option<PropertyType>),
}

impl ProfileField {
    /// The column of a profile string field.
    pub fn string_column(&self) -> Option<&'static str> {
        match self {
            ProfileField::FirstName => Some("first_name"),
            ProfileField::LastName => Some("last_name"),
            ProfileField::Email => Some("email"),
            ProfileField::Phone => Some("phone"),
            _ => None,
        }
    }
}

/// A validated profile condition.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileTest {
    /// The field.
    pub field: ProfileField,
    /// The test.
    pub test: Comparison,
}
