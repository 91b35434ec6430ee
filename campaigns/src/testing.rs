//! Test fixtures: the catalogue every partner starts with (`event_model::catalog`'s predefined
//! event types, the list the collector seeds) plus a shop's own types.

use event_model::catalog::{
    EventTypeDef, PropertyDef, PropertyType, TypeProperty, PREDEFINED_PROPERTIES, PREDEFINED_TYPES,
};
use event_model::EventKind;
use eventline_audience::Catalogue;

fn uses(codes: &[&str]) -> Vec<TypeProperty> {
    codes
        .iter()
        .map(|c| TypeProperty {
            code: c.to_string(),
            required: false,
        })
        .collect()
}

/// The seeded catalogue plus `product_viewed` and `added_to_cart` (customer, with `product`
/// and `size`) and `back_in_stock` (system, with `product`).
pub fn shop() -> Catalogue {
    let prop = |code: &str, ty| PropertyDef {
        code: code.into(),
        name: code.into(),
        ty,
    };
    let mut event_types: Vec<EventTypeDef> = PREDEFINED_TYPES
        .iter()
        .map(|t| EventTypeDef {
            code: t.code.to_string(),
            name: t.name.to_string(),
            kind: t.kind,
            properties: uses(t.properties),
        })
        .collect();
    for (code, kind, props) in [
        (
            "product_viewed",
            EventKind::Customer,
            &["product", "size"][..],
        ),
        (
            "added_to_cart",
            EventKind::Customer,
            &["product", "size"][..],
        ),
        ("back_in_stock", EventKind::System, &["product"][..]),
    ] {
        event_types.push(EventTypeDef {
            code: code.into(),
            name: code.into(),
            kind,
            properties: uses(props),
        });
    }
    Catalogue {
        properties: PREDEFINED_PROPERTIES
            .iter()
            .map(|(code, _, ty)| prop(code, *ty))
            .chain([
                prop("product", PropertyType::String),
                prop("size", PropertyType::String),
            ])
            .collect(),
        event_types,
        accept_undeclared: false,
    }
}

/// The `n`th ```json block of docs/campaigns.md (0 = back in stock, 1 = registered without a
/// purchase, 2 = with postponement), so the documented examples are the tested ones.
pub fn docs_example(n: usize) -> serde_json::Value {
    let docs = include_str!("../../docs/campaigns.md");
    let block = docs
        .split("```json\n")
        .nth(n + 1)
        .and_then(|rest| rest.split("```").next())
        .expect("example block");
    serde_json::from_str(block).expect("example JSON")
}
