//! The event catalogue: predefined types, CRUD and retiring, the ingest check, the
//! undeclared-events setting, and partner settings that never reset each other.

use event_model::ContextValue;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

fn path(p: &Partner, rest: &str) -> String {
    format!("/v1/admin/partners/{}/{rest}", p.id)
}

fn purchase(customer: &str, context: &[(&str, ContextValue)]) -> event_model::Event {
    let mut e = event("purchase_completed", customer);
    e.context = context
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    e
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_partner_starts_with_the_predefined_types_and_properties() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let (status, body) = t.admin(Method::GET, &path(&p, "event-types"), None).await;
    assert_eq!(status, 200, "{body}");
    let codes: Vec<&str> = body["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap())
        .collect();
    for code in [
        "abandoned_cart",
        "customer_profile_updated",
        "purchase_completed",
        "card_issued",
        "bonus_payment",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    assert!(codes.iter().all(|c| !c.contains('-')));
    let (status, purchase) = t
        .admin(
            Method::GET,
            &path(&p, "event-types/purchase_completed"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(purchase["predefined"], true);
    let props: Vec<(&str, &str)> = purchase["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["code"].as_str().unwrap(), p["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        props,
        [
            ("purchase_time", "datetime"),
            ("cart_content", "string"),
            ("total_price", "number"),
            ("store_id", "string"),
            ("points_collected", "number"),
            ("points_used", "number"),
        ]
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partner_created_before_the_catalogue_gets_the_predefined_types_at_the_next_start() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Old").await;
    // As if the partner predated migration 0005: no catalogue rows.
    for table in ["event_types", "event_properties"] {
        t.db.query(&format!("TRUNCATE TABLE {table}"))
            .execute()
            .await
            .unwrap();
    }
    let database = t.database.clone();
    let mut t2 =
        TestCollector::start_with(clickhouse_url(), |c| c.clickhouse_database = database).await;
    let (status, body) = t2
        .admin(Method::GET, &path(&p, "event-types/abandoned_cart"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    t2.running.take().unwrap().stop().await.unwrap();
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn properties_and_types_are_created_edited_and_retired_with_field_level_errors() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let props = path(&p, "event-properties");
    let (status, body) = t
        .admin(
            Method::POST,
            &props,
            Some(json!({"code": "size", "name": "Size", "type": "string"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let cases: [(Value, u16, &str, &str); 4] = [
        (
            json!({"code": "shoe-size", "name": "Shoe size", "type": "number"}),
            400,
            "invalid_property_code",
            "code",
        ),
        (
            json!({"code": "weight", "name": "Weight", "type": "int"}),
            400,
            "invalid_property_type",
            "type",
        ),
        (
            json!({"code": "size", "name": "Size again", "type": "string"}),
            409,
            "property_code_taken",
            "",
        ),
        (
            json!({"code": "w", "name": " ", "type": "number"}),
            400,
            "invalid_name",
            "name",
        ),
    ];
    for (bad, status_want, code, field) in cases {
        let (status, body) = t.admin(Method::POST, &props, Some(bad.clone())).await;
        assert_eq!(status, status_want, "{bad}: {body}");
        assert_eq!(body["error"]["code"], code, "{bad}: {body}");
        if !field.is_empty() {
            assert_eq!(body["error"]["field"], field, "{bad}: {body}");
        }
    }
    let (status, body) = t
        .admin(
            Method::PATCH,
            &format!("{props}/size"),
            Some(json!({"type": "number"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("property_type_immutable"))
    );

    let types = path(&p, "event-types");
    let (status, body) = t
        .admin(
            Method::POST,
            &types,
            Some(json!({"code": "product_viewed", "name": "Product viewed",
                        "properties": [{"code": "size"}, {"code": "nope", "required": true}]})),
        )
        .await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_str(),
            body["error"]["field"].as_str()
        ),
        (400, Some("unknown_property"), Some("properties[1].code")),
        "{body}"
    );
    let (status, body) = t
        .admin(
            Method::POST,
            &types,
            Some(json!({"code": "product_viewed", "name": "Product viewed",
                        "properties": [{"code": "size", "required": true}]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (
            body["kind"].as_str(),
            body["properties"][0]["required"].as_bool()
        ),
        (Some("customer"), Some(true))
    );
    let (status, body) = t
        .admin(
            Method::POST,
            &types,
            Some(json!({"code": "product_viewed", "name": "Again"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("event_type_code_taken"))
    );
    let (status, body) = t
        .admin(
            Method::PATCH,
            &format!("{types}/product_viewed"),
            Some(json!({"name": "Product page viewed", "properties": []})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Product page viewed");
    assert_eq!(body["properties"], json!([]));
    let (status, body) = t
        .admin(Method::DELETE, &format!("{types}/product_viewed"), None)
        .await;
    assert_eq!((status, body["retired"].as_bool()), (200, Some(true)));
    let (status, body) = t
        .admin(Method::GET, &format!("{types}/product_viewed"), None)
        .await;
    assert_eq!((status, body["retired"].as_bool()), (200, Some(true)));
    // A retired property cannot go into a type.
    let (status, _) = t
        .admin(Method::DELETE, &format!("{props}/size"), None)
        .await;
    assert_eq!(status, 200);
    let (status, body) = t
        .admin(
            Method::POST,
            &types,
            Some(json!({"code": "x", "name": "X", "properties": [{"code": "size"}]})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("property_retired"))
    );
    let (status, _) = t
        .admin(Method::GET, &format!("{types}/missing"), None)
        .await;
    assert_eq!(status, 404);

    let actions: Vec<String> = t
        .audit(&format!("?partner_id={}", p.id))
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    for action in [
        "event_property.create",
        "event_property.retire",
        "event_type.create",
        "event_type.update",
        "event_type.retire",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_of_a_declared_type_is_checked_and_rejections_are_quarantined() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    // Make total_price required.
    let (status, body) = t
        .admin(
            Method::PATCH,
            &path(&p, "event-types/purchase_completed"),
            Some(
                json!({"properties": [{"code": "total_price", "required": true},
                                       {"code": "purchase_time"}]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let events = vec![
        purchase("c-1", &[("total_price", ContextValue::Number(150.0))]),
        purchase(
            "c-1",
            &[("total_price", ContextValue::String("150".into()))],
        ),
        purchase("c-1", &[("store_id", ContextValue::String("S1".into()))]),
        purchase(
            "c-1",
            &[
                ("total_price", ContextValue::Number(1.0)),
                ("purchase_time", ContextValue::String("yesterday".into())),
            ],
        ),
        // Undeclared, accepted by default.
        event("whatever_happened", "c-1"),
    ];
    let (status, _, body) = t.send(&batch(&p, events), None).await;
    assert_eq!(status, 200, "{body}");
    let codes: Vec<Option<&str>> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str())
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some("property_type_mismatch"),
            Some("missing_property"),
            Some("property_type_mismatch"),
            None
        ],
        "{body}"
    );
    assert_eq!(body["results"][1]["field"], "context.total_price");
    assert_eq!(body["results"][3]["field"], "context.purchase_time");
    t.rejections_written(3).await;
    assert_eq!(
        t.count("SELECT count() FROM rejected_events WHERE reason_code IN ('property_type_mismatch', 'missing_property')")
            .await,
        3
    );
    assert_eq!(t.count("SELECT count() FROM events").await, 2);

    // A lone bad event answers 400 with the code.
    let (status, _, body) = t
        .send(
            &batch(
                &p,
                vec![purchase("c-1", &[("store_id", ContextValue::Bool(true))])],
            ),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("missing_property"))
    );

    // A retired type is no longer checked.
    let (status, _) = t
        .admin(
            Method::DELETE,
            &path(&p, "event-types/purchase_completed"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, body) = t
        .send(
            &batch(
                &p,
                vec![purchase(
                    "c-1",
                    &[("total_price", ContextValue::Bool(true))],
                )],
            ),
            None,
        )
        .await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn undeclared_events_are_rejected_only_when_the_partner_says_so() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let partner = format!("/v1/admin/partners/{}", p.id);
    let (status, body) = t
        .admin(
            Method::PATCH,
            &partner,
            Some(json!({"undeclared_events": "maybe"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_undeclared_events"))
    );
    let (status, body) = t
        .admin(
            Method::PATCH,
            &partner,
            Some(json!({"undeclared_events": "reject"})),
        )
        .await;
    assert_eq!(
        (status, body["undeclared_events"].as_str()),
        (200, Some("reject")),
        "{body}"
    );
    let (status, _, body) = t
        .send(
            &batch(
                &p,
                vec![
                    event("whatever_happened", "c-1"),
                    purchase("c-1", &[("total_price", ContextValue::Number(1.0))]),
                ],
            ),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["code"], "undeclared_event");
    assert_eq!(body["results"][0]["field"], "name");
    assert_eq!(body["results"][1]["status"], "accepted");
    t.rejections_written(1).await;
    assert_eq!(
        t.count("SELECT count() FROM rejected_events WHERE reason_code = 'undeclared_event'")
            .await,
        1
    );
    let (status, _) = t
        .admin(
            Method::PATCH,
            &partner,
            Some(json!({"undeclared_events": "accept"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, body) = t
        .send(&batch(&p, vec![event("whatever_happened", "c-1")]), None)
        .await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn updating_one_partner_setting_keeps_the_others() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let partner = format!("/v1/admin/partners/{}", p.id);
    let (_, body) = t.admin(Method::GET, &partner, None).await;
    assert_eq!(
        (
            body["time_zone"].as_str(),
            body["undeclared_events"].as_str()
        ),
        (Some("UTC"), Some("accept"))
    );
    for patch in [
        json!({"retention_days": 30}),
        json!({"time_zone": "Europe/Prague"}),
        json!({"undeclared_events": "reject"}),
    ] {
        let (status, body) = t.admin(Method::PATCH, &partner, Some(patch.clone())).await;
        assert_eq!(status, 200, "{patch}: {body}");
    }
    let (_, body) = t.admin(Method::GET, &partner, None).await;
    assert_eq!(body["retention_days"], 30, "{body}");
    assert_eq!(body["time_zone"], "Europe/Prague", "{body}");
    assert_eq!(body["undeclared_events"], "reject", "{body}");
    let (status, body) = t
        .admin(
            Method::PATCH,
            &partner,
            Some(json!({"time_zone": "Mars/Olympus"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_time_zone"))
    );
    // A restart reads the same settings back from ClickHouse.
    let database = t.database.clone();
    let mut t2 =
        TestCollector::start_with(clickhouse_url(), |c| c.clickhouse_database = database).await;
    let (_, body) = t2.admin(Method::GET, &partner, None).await;
    assert_eq!(
        (
            body["retention_days"].as_u64(),
            body["time_zone"].as_str(),
            body["undeclared_events"].as_str()
        ),
        (Some(30), Some("Europe/Prague"), Some("reject")),
        "{body}"
    );
    t2.running.take().unwrap().stop().await.unwrap();
    t.finish().await;
}
