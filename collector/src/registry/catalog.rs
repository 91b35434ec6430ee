//! A partner's event catalogue in the registry: the in-memory view ingest checks events against,
//! and the rules admin input must follow. The types themselves, and the predefined properties and
//! event types every partner starts with, live in `event_model::catalog`.

use std::collections::HashMap;

use event_model::catalog::{EventTypeDef, PropertyType, TypeProperty};
use event_model::EventKind;
use serde::Deserialize;

use super::RegistryError;
use crate::store::rows::{EventTypeRow, PropertyRow};

/// Most properties one event type may list.
pub const MAX_TYPE_PROPERTIES: usize = event_model::limits::MAX_CONTEXT_KEYS;

// The predefined catalogue is event-model's, so every crate reads the same list.
pub use event_model::catalog::{PredefinedType, PREDEFINED_PROPERTIES, PREDEFINED_TYPES};

/// A partner's catalogue as ingest and the admin API read it.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    properties: HashMap<String, PropertyRow>,
    types: HashMap<String, CatalogType>,
}

/// An event type with its row.
#[derive(Debug, Clone)]
pub struct CatalogType {
    /// The stored row.
    pub row: EventTypeRow,
    /// The same type as event-model checks it.
    pub def: EventTypeDef,
}

impl CatalogType {
    fn of(row: EventTypeRow) -> CatalogType {
        let def = EventTypeDef {
            code: row.code.clone(),
            name: row.name.clone(),
            kind: EventKind::parse(&row.kind).unwrap_or(EventKind::Customer),
            properties: row
                .property_codes
                .iter()
                .zip(
                    row.property_required
                        .iter()
                        .chain(std::iter::repeat(&false)),
                )
                .map(|(code, required)| TypeProperty {
                    code: code.clone(),
                    required: *required,
                })
                .collect(),
        };
        CatalogType { row, def }
    }
}

impl Catalog {
    /// Adds a property row (live rows only).
    pub fn add_property(&mut self, row: PropertyRow) {
        self.properties.insert(row.code.clone(), row);
    }

    /// Adds an event type row (live rows only).
    pub fn add_type(&mut self, row: EventTypeRow) {
        self.types.insert(row.code.clone(), CatalogType::of(row));
    }

    /// The live (not retired) event type named `name`: the one an event of that name is checked
    /// against. One hash look-up.
    pub fn live_type(&self, name: &str) -> Option<&EventTypeDef> {
        self.types
            .get(name)
            .filter(|t| !t.row.retired)
            .map(|t| &t.def)
    }

    /// A property's type, retired or not (events of a type using it are still checked).
    pub fn property_type(&self, code: &str) -> Option<PropertyType> {
        self.properties
            .get(code)
            .and_then(|p| PropertyType::parse(&p.ty))
    }

    /// A property by code.
    pub fn property(&self, code: &str) -> Option<&PropertyRow> {
        self.properties.get(code)
    }

    /// An event type by code.
    pub fn event_type(&self, code: &str) -> Option<&CatalogType> {
        self.types.get(code)
    }

    /// Every property, by code.
    pub fn properties(&self) -> Vec<&PropertyRow> {
        let mut all: Vec<&PropertyRow> = self.properties.values().collect();
        all.sort_by(|a, b| a.code.cmp(&b.code));
        all
    }

    /// Every event type, by code.
    pub fn types(&self) -> Vec<&CatalogType> {
        let mut all: Vec<&CatalogType> = self.types.values().collect();
        all.sort_by(|a, b| a.row.code.cmp(&b.row.code));
        all
    }
}

/// A new property.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProperty {
    /// The context key.
    pub code: String,
    /// Display name.
    pub name: String,
    /// `string`, `number`, `boolean` or `datetime`.
    #[serde(rename = "type")]
    pub ty: String,
}

/// A partial update of a property. Its type cannot change: stored events were checked against it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyPatch {
    /// New display name.
    pub name: Option<String>,
    /// Accepted only when equal to the current type.
    #[serde(rename = "type")]
    pub ty: Option<String>,
    /// `false` brings a retired property back.
    pub retired: Option<bool>,
}

/// A property as an event type lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypePropertyInput {
    /// The property's code.
    pub code: String,
    /// Whether every event of the type must carry it (default false).
    #[serde(default)]
    pub required: bool,
}

/// A new event type.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEventType {
    /// The event name.
    pub code: String,
    /// Display name.
    pub name: String,
    /// `customer` (default) or `system`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Its properties.
    #[serde(default)]
    pub properties: Vec<TypePropertyInput>,
}

/// A partial update of an event type; `properties` replaces the whole list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTypePatch {
    /// New display name.
    pub name: Option<String>,
    /// New kind.
    pub kind: Option<String>,
    /// New property list.
    pub properties: Option<Vec<TypePropertyInput>>,
    /// `false` brings a retired type back.
    pub retired: Option<bool>,
}

/// A property code: the context-key rule of event-model (never a hyphen).
pub fn property_code(code: &str) -> Result<(), RegistryError> {
    event_model::rules::check_context_key(code).map_err(|c| {
        RegistryError::InvalidPropertyCode(event_model::Violation::new(c, code).message())
    })
}

/// An event type code: the event-name rule (it is the name events are sent with).
pub fn event_type_code(code: &str) -> Result<(), RegistryError> {
    event_model::rules::check_event_name(code).map_err(|c| {
        RegistryError::InvalidEventTypeCode(event_model::Violation::new(c, "code").message())
    })
}

/// A property type spelling.
pub fn property_type(text: &str) -> Result<PropertyType, RegistryError> {
    PropertyType::parse(text).ok_or(RegistryError::InvalidPropertyType)
}

/// A kind spelling; `None` is `customer`.
pub fn kind(text: Option<&str>) -> Result<EventKind, RegistryError> {
    match text {
        None => Ok(EventKind::Customer),
        Some(k) => EventKind::parse(k).ok_or(RegistryError::InvalidEventKind),
    }
}

/// An event type's property list: at most [`MAX_TYPE_PROPERTIES`], each a live property of the
/// catalogue, none twice. Returns the parallel code and required arrays.
pub fn type_properties(
    catalog: &Catalog,
    properties: &[TypePropertyInput],
) -> Result<(Vec<String>, Vec<bool>), RegistryError> {
    if properties.len() > MAX_TYPE_PROPERTIES {
        return Err(RegistryError::TooManyTypeProperties);
    }
    let mut codes: Vec<String> = Vec::with_capacity(properties.len());
    for (index, p) in properties.iter().enumerate() {
        match catalog.property(&p.code) {
            None => {
                return Err(RegistryError::UnknownProperty {
                    index,
                    code: p.code.clone(),
                })
            }
            Some(row) if row.retired => {
                return Err(RegistryError::PropertyRetired {
                    index,
                    code: p.code.clone(),
                })
            }
            Some(_) => {}
        }
        if codes.contains(&p.code) {
            return Err(RegistryError::DuplicateProperty {
                index,
                code: p.code.clone(),
            });
        }
        codes.push(p.code.clone());
    }
    Ok((codes, properties.iter().map(|p| p.required).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predefined_codes_are_hyphen_free_identifiers_and_their_properties_exist() {
        for (code, _, _) in PREDEFINED_PROPERTIES {
            assert!(property_code(code).is_ok(), "{code}");
        }
        let mut seen = std::collections::HashSet::new();
        for t in PREDEFINED_TYPES {
            assert!(seen.insert(t.code), "{} twice", t.code);
            assert_eq!(
                event_model::rules::check_context_key(t.code),
                Ok(()),
                "{}",
                t.code
            );
            for p in t.properties {
                assert!(
                    PREDEFINED_PROPERTIES.iter().any(|(c, _, _)| c == p),
                    "{}: {p}",
                    t.code
                );
            }
        }
        assert!(seen.contains("purchase_completed") && seen.contains("abandoned_cart"));
    }

    #[test]
    fn property_codes_follow_the_context_key_rule() {
        assert!(property_code("points_used").is_ok());
        for bad in ["points-used", "1points", "", "a b"] {
            assert!(
                matches!(
                    property_code(bad),
                    Err(RegistryError::InvalidPropertyCode(_))
                ),
                "{bad}"
            );
        }
    }
}
