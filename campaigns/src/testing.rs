//! Test fixtures: the catalogue every partner starts with (the collector's predefined event
//! types, same codes) plus a shop's own types.

use event_model::catalog::{EventTypeDef, PropertyDef, PropertyType, TypeProperty};
use event_model::EventKind;
use eventline_audience::Catalogue;

/// The predefined customer event types the collector seeds (collector/src/registry/catalog.rs).
pub const PREDEFINED: &[(&str, &[&str])] = &[
    ("abandoned_cart", &["cart_content", "total_price"]),
    ("customer_profile_updated", &["changed_fields"]),
    (
        "purchase_completed",
        &[
            "purchase_time",
            "cart_content",
            "total_price",
            "store_id",
            "points_collected",
            "points_used",
        ],
    ),
    ("discount_calculated", &[]),
    ("bonuses_calculated", &[]),
    ("payment", &[]),
    ("balance_requested", &[]),
    ("card_issued", &[]),
    ("friend_purchase", &[]),
    ("card_activated", &[]),
    ("registration_completed", &[]),
    ("questionnaire_filled", &[]),
    ("contact_bound", &[]),
    ("mobile_app_installed", &[]),
    ("social_profile_linked", &[]),
    ("social_activity", &[]),
    ("friend_invited", &[]),
    ("customer_status_changed", &[]),
    ("application_form_changed", &[]),
    ("bonus_payment", &[]),
];

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
    let mut event_types: Vec<EventTypeDef> = PREDEFINED
        .iter()
        .map(|(code, props)| EventTypeDef {
            code: code.to_string(),
            name: code.to_string(),
            kind: EventKind::Customer,
            properties: uses(props),
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
        properties: vec![
            prop("purchase_time", PropertyType::Datetime),
            prop("cart_content", PropertyType::String),
            prop("total_price", PropertyType::Number),
            prop("store_id", PropertyType::String),
            prop("points_collected", PropertyType::Number),
            prop("points_used", PropertyType::Number),
            prop("changed_fields", PropertyType::String),
            prop("product", PropertyType::String),
            prop("size", PropertyType::String),
        ],
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
