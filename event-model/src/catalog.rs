//! A partner's event catalogue: reusable properties (typed context keys) and event types built
//! from them. One home for these types, shared by ingest (an event of a declared type is checked
//! against it) and the segment builder (a property's type decides how its values compare).

use std::collections::BTreeMap;

use crate::codes::ErrorCode;
use crate::timestamp::parse_rfc3339_ms;
use crate::{ContextValue, EventKind, Violation};

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

impl PropertyType {
    /// Whether a context value has this type. A `Datetime` value must be a string holding an
    /// RFC 3339 timestamp.
    pub fn admits(self, value: &ContextValue) -> bool {
        match (self, value) {
            (PropertyType::String, ContextValue::String(_)) => true,
            (PropertyType::Number, ContextValue::Number(_)) => true,
            (PropertyType::Boolean, ContextValue::Bool(_)) => true,
            (PropertyType::Datetime, ContextValue::String(s)) => parse_rfc3339_ms(s).is_some(),
            _ => false,
        }
    }
}

fn context_field(code: &str) -> String {
    let mut field = String::from("context.");
    field.push_str(code);
    field
}

/// Checks an event's context against its declared type: every required property is present,
/// and every property of the type that is present has the property's type. Context keys the
/// type does not list are not checked (a type is a draft, not a closed schema). `property_type`
/// looks a catalogue property up by code; a property it does not know is not type-checked.
///
/// Errors name the field as `context.<code>`: [`ErrorCode::MissingProperty`] for an absent
/// required property (checked first, in the type's order), [`ErrorCode::PropertyTypeMismatch`]
/// for a value of another type (detail: the expected type).
pub fn check_event_type(
    context: &BTreeMap<String, ContextValue>,
    event_type: &EventTypeDef,
    property_type: impl Fn(&str) -> Option<PropertyType>,
) -> Result<(), Violation> {
    for property in &event_type.properties {
        if property.required && !context.contains_key(&property.code) {
            return Err(Violation::new(
                ErrorCode::MissingProperty,
                &context_field(&property.code),
            ));
        }
    }
    for property in &event_type.properties {
        let (Some(value), Some(ty)) = (context.get(&property.code), property_type(&property.code))
        else {
            continue;
        };
        if !ty.admits(value) {
            let mut expected = String::from("expected ");
            expected.push_str(ty.as_str());
            if ty == PropertyType::Datetime {
                expected.push_str(" (an RFC 3339 string)");
            }
            return Err(Violation::new(
                ErrorCode::PropertyTypeMismatch,
                &context_field(&property.code),
            )
            .with_detail(expected));
        }
    }
    Ok(())
}

/// Properties every partner starts with: `(code, display name, type)`.
pub const PREDEFINED_PROPERTIES: &[(&str, &str, PropertyType)] = &[
    (
        "purchase_time",
        "Time and date of purchase",
        PropertyType::Datetime,
    ),
    ("cart_content", "Cart content", PropertyType::String),
    ("total_price", "Total price", PropertyType::Number),
    ("store_id", "Store ID", PropertyType::String),
    (
        "points_collected",
        "Loyalty points collected",
        PropertyType::Number,
    ),
    ("points_used", "Loyalty points used", PropertyType::Number),
    (
        "changed_fields",
        "Changed profile fields",
        PropertyType::String,
    ),
];

/// A predefined event type: code, display name, kind, optional properties.
pub struct PredefinedType {
    /// The event name.
    pub code: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Customer or system.
    pub kind: EventKind,
    /// Property codes (all optional: partners already sending these names must not start
    /// failing a required-property check because a collector upgrade declared the type).
    pub properties: &'static [&'static str],
}

const fn customer(
    code: &'static str,
    name: &'static str,
    properties: &'static [&'static str],
) -> PredefinedType {
    PredefinedType {
        code,
        name,
        kind: EventKind::Customer,
        properties,
    }
}

/// Event types every partner starts with: CareCloud's predefined types, then Loymax's built-in
/// catalogue ("Completion of purchase" is CareCloud's "New purchase": one type).
pub const PREDEFINED_TYPES: &[PredefinedType] = &[
    customer(
        "abandoned_cart",
        "Abandoned shopping cart",
        &["cart_content", "total_price"],
    ),
    customer(
        "customer_profile_updated",
        "Update of customer profile",
        &["changed_fields"],
    ),
    customer(
        "purchase_completed",
        "New purchase",
        &[
            "purchase_time",
            "cart_content",
            "total_price",
            "store_id",
            "points_collected",
            "points_used",
        ],
    ),
    customer("discount_calculated", "Calculation of the discount", &[]),
    customer("bonuses_calculated", "Calculation of bonuses", &[]),
    customer("payment", "Payment", &[]),
    customer("balance_requested", "Balance request", &[]),
    customer("card_issued", "Card issuance", &[]),
    customer("friend_purchase", "Purchase by a friend", &[]),
    customer("card_activated", "Card activation", &[]),
    customer("registration_completed", "Registration completion", &[]),
    customer("questionnaire_filled", "Filling out the questionnaire", &[]),
    customer("contact_bound", "Phone/Email binding", &[]),
    customer("mobile_app_installed", "Mobile app installation", &[]),
    customer(
        "social_profile_linked",
        "Social network profile linking",
        &[],
    ),
    customer("social_activity", "Activity in social networks", &[]),
    customer("friend_invited", "Friend invitation", &[]),
    customer("customer_status_changed", "Changing customer status", &[]),
    customer("application_form_changed", "Application form change", &[]),
    customer("bonus_payment", "Payment by bonuses", &[]),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn purchase() -> EventTypeDef {
        EventTypeDef {
            code: "purchase_completed".into(),
            name: "New purchase".into(),
            kind: EventKind::Customer,
            properties: vec![
                TypeProperty {
                    code: "total_price".into(),
                    required: true,
                },
                TypeProperty {
                    code: "purchase_time".into(),
                    required: false,
                },
                TypeProperty {
                    code: "gift".into(),
                    required: false,
                },
                TypeProperty {
                    code: "store_id".into(),
                    required: false,
                },
            ],
        }
    }

    fn types(code: &str) -> Option<PropertyType> {
        match code {
            "total_price" => Some(PropertyType::Number),
            "purchase_time" => Some(PropertyType::Datetime),
            "gift" => Some(PropertyType::Boolean),
            "store_id" => Some(PropertyType::String),
            _ => None,
        }
    }

    fn context(entries: &[(&str, ContextValue)]) -> BTreeMap<String, ContextValue> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn text(s: &str) -> ContextValue {
        ContextValue::String(s.into())
    }

    #[test]
    fn an_event_with_every_property_of_its_type_passes_and_extra_keys_are_not_checked() {
        let ctx = context(&[
            ("total_price", ContextValue::Number(150.0)),
            ("purchase_time", text("2026-11-25T10:00:00.000Z")),
            ("gift", ContextValue::Bool(false)),
            ("store_id", text("S-1")),
            ("anything_else", ContextValue::Bool(true)),
        ]);
        assert_eq!(check_event_type(&ctx, &purchase(), types), Ok(()));
        let only_required = context(&[("total_price", ContextValue::Number(0.5))]);
        assert_eq!(check_event_type(&only_required, &purchase(), types), Ok(()));
    }

    #[test]
    fn a_missing_required_property_is_named() {
        let ctx = context(&[("store_id", text("S-1"))]);
        let v = check_event_type(&ctx, &purchase(), types).unwrap_err();
        assert_eq!(
            (v.code, v.field.as_str()),
            (ErrorCode::MissingProperty, "context.total_price")
        );
    }

    #[test]
    fn a_value_of_another_type_is_a_mismatch_for_every_property_type() {
        let cases = [
            ("total_price", text("150")),
            ("gift", text("true")),
            ("store_id", ContextValue::Number(1.0)),
            ("purchase_time", text("yesterday")),
            ("purchase_time", ContextValue::Number(1_795_600_800_000.0)),
        ];
        for (key, value) in cases {
            let mut ctx = context(&[("total_price", ContextValue::Number(1.0))]);
            ctx.insert(key.into(), value.clone());
            let v = check_event_type(&ctx, &purchase(), types).unwrap_err();
            assert_eq!(v.code, ErrorCode::PropertyTypeMismatch, "{key}: {value:?}");
            assert_eq!(v.field, format!("context.{key}"));
        }
    }

    #[test]
    fn a_property_unknown_to_the_catalogue_is_not_type_checked() {
        let ctx = context(&[
            ("total_price", ContextValue::Number(1.0)),
            ("store_id", ContextValue::Bool(true)),
        ]);
        assert_eq!(check_event_type(&ctx, &purchase(), |_| None), Ok(()));
    }

    #[test]
    fn property_types_round_trip_their_spelling() {
        for ty in PropertyType::ALL {
            assert_eq!(PropertyType::parse(ty.as_str()), Some(*ty));
        }
        assert_eq!(PropertyType::parse("int"), None);
    }
}
