//! A partner's event catalogue: reusable properties (typed context keys) and event types built
//! from them. One home for these types, shared by ingest (an event of a declared type is checked
//! against it) and the segment builder (a property's type decides how its values compare).

use crate::EventKind;

/// The type of an event property. Context values travel as JSON strings, numbers and booleans;
/// a `Datetime` property is a string holding an RFC 3339 timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropertyType {
    /// Text.
    String,
    /// A finite number (integers within ±2^53).
    Number,
    /// `true` or `false`.
    Boolean,
    /// An instant, written as an RFC 3339 string such as `2026-11-25T10:00:00.000Z`.
    Datetime,
}

impl PropertyType {
    /// Every type, in declaration order.
    pub const ALL: &'static [PropertyType] = &[
        PropertyType::String,
        PropertyType::Number,
        PropertyType::Boolean,
        PropertyType::Datetime,
    ];

    /// The API and storage spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            PropertyType::String => "string",
            PropertyType::Number => "number",
            PropertyType::Boolean => "boolean",
            PropertyType::Datetime => "datetime",
        }
    }

    /// Parses the API spelling.
    pub fn parse(text: &str) -> Option<PropertyType> {
        PropertyType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == text)
    }
}

/// A property of the catalogue: its code is a context key (the same identifier rule, never a
/// hyphen), so it can be used as `$field_code` and `{{client.eventContext.field_code}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyDef {
    /// The context key.
    pub code: String,
    /// Display name.
    pub name: String,
    /// The type every value must have.
    pub ty: PropertyType,
}

/// A catalogue property as one event type uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeProperty {
    /// The property's code.
    pub code: String,
    /// Whether every event of the type must carry it.
    pub required: bool,
}

/// An event type: a named draft filled with catalogue properties. Its code is the event `name`
/// events of this type are sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypeDef {
    /// The event name.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Customer or system events.
    pub kind: EventKind,
    /// Its properties.
    pub properties: Vec<TypeProperty>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_types_round_trip_their_spelling() {
        for ty in PropertyType::ALL {
            assert_eq!(PropertyType::parse(ty.as_str()), Some(*ty));
        }
        assert_eq!(PropertyType::parse("int"), None);
    }
}
