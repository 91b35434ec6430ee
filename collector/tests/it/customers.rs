//! Customers: profile upserts and their events, the card and history with identity links,
//! manual events, pagination, and erasure of profiles and links.

use event_model::Event;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

async fn put_profile(t: &TestCollector, key: &str, customer: &str, body: Value) -> (u16, Value) {
    let resp = t
        .http
        .put(t.url(&format!("/v1/server/customers/{customer}")))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn anonymous(name: &str, anonymous_id: &str) -> Event {
    Event {
        customer_id: None,
        anonymous_id: Some(anonymous_id.into()),
        ..event(name, "unused")
    }
}

fn linked(name: &str, customer: &str, anonymous_id: &str) -> Event {
    Event {
        anonymous_id: Some(anonymous_id.into()),
        ..event(name, customer)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_upsert_merges_records_an_event_per_change_and_erasure_removes_profile_and_links()
{
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let (status, body) = put_profile(
        &t,
        &p.api_key,
        "c-1",
        json!({"first_name": "Ann", "email": "ann@example.com", "birthday": "1961-04-12",
               "consents": {"email": true},
               "attributes": {"tier": "gold", "ltv": 120.5,
                              "last_visit": {"datetime": "2026-11-25T10:00:00Z"}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["profile"]["attributes"]["ltv"], 120.5);
    assert_eq!(
        body["profile"]["attributes"]["last_visit"]["datetime"],
        "2026-11-25T10:00:00.000Z"
    );
    // Field-level errors, no API key, and a no-op upsert.
    let (status, body) = put_profile(&t, &p.api_key, "c-1", json!({"email": "nope"})).await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_str(),
            body["error"]["field"].as_str()
        ),
        (400, Some("invalid_email"), Some("email"))
    );
    let (status, _) = put_profile(&t, "elk_wrong", "c-1", json!({"first_name": "X"})).await;
    assert_eq!(status, 403);
    let (status, body) = put_profile(&t, &p.api_key, "c-1", json!({"first_name": "Ann"})).await;
    assert_eq!(
        (status, body["event_id"].clone()),
        (200, Value::Null),
        "{body}"
    );
    let (status, body) = put_profile(
        &t,
        &p.api_key,
        "c-1",
        json!({"last_name": "Lee", "attributes": {"tier": null}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["profile"]["first_name"], "Ann", "absent fields stay");
    assert_eq!(body["profile"]["attributes"].get("tier"), None);
    assert_eq!(body["changed_fields"], json!(["last_name", "tier"]));

    // Two changes, two profile events, stored through the sink with ingest path server.
    assert_eq!(
        t.count("SELECT count() FROM events WHERE name = 'customer_profile_updated' AND customer_id = 'c-1' AND ingest_path = 'server'")
            .await,
        2
    );
    let changed: String = t
        .db
        .query("SELECT context_strings['changed_fields'] FROM events WHERE name = 'customer_profile_updated' ORDER BY event_time DESC LIMIT 1")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(changed, "last_name,tier");

    let (status, card) = t
        .admin(
            Method::GET,
            &format!("/v1/admin/partners/{}/customers/c-1", p.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{card}");
    assert_eq!(card["profile"]["last_name"], "Lee");
    assert_eq!(card["profile"]["consents"]["email"], true);

    // Erasure removes the profile and the identity links with the events.
    let (status, _, _) = t
        .send(&batch(&p, vec![linked("login", "c-1", "a-1")]), None)
        .await;
    assert_eq!(status, 200);
    let links = format!(
        "SELECT count() FROM identity_links WHERE partner_id = '{}'",
        p.id
    );
    assert_eq!(t.count(&links).await, 1);
    let job = t
        .queue_erasure(&format!("/v1/admin/partners/{}/customers/c-1", p.id))
        .await;
    t.wait_for_job(&job, 60).await;
    assert_eq!(t.count("SELECT count() FROM customer_profiles").await, 0);
    assert_eq!(t.count(&links).await, 0);
    assert_eq!(
        t.count("SELECT count() FROM events WHERE customer_id = 'c-1'")
            .await,
        0
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_card_and_history_include_pre_login_anonymous_events_manual_events_and_count_retries_once(
) {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    // Before login on device a-1, then login (the link), then as the customer.
    let before = vec![
        anonymous("product_viewed", "a-1"),
        anonymous("cart_viewed", "a-1"),
    ];
    let retried = before[0].clone();
    let (status, _, _) = t.send(&batch(&p, before), None).await;
    assert_eq!(status, 200);
    // Another visitor's events must not appear.
    let (status, _, _) = t
        .send(&batch(&p, vec![anonymous("product_viewed", "a-2")]), None)
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = t
        .send(
            &batch(
                &p,
                vec![
                    linked("login", "c-1", "a-1"),
                    event("product_viewed", "c-1"),
                ],
            ),
            None,
        )
        .await;
    assert_eq!(status, 200);
    // A retry of an already stored event, bypassing the sink's check (as if stored twice
    // before a merge): it must still count once.
    t.db.query("INSERT INTO events SELECT * FROM events WHERE event_id = {id:UUID}")
        .param("id", retried.event_id.clone())
        .execute()
        .await
        .unwrap();

    let base = format!("/v1/admin/partners/{}/customers/c-1", p.id);
    let (status, card) = t.admin(Method::GET, &base, None).await;
    assert_eq!(status, 200, "{card}");
    assert_eq!(card["anonymous_ids"], json!(["a-1"]));
    assert_eq!(card["events"], 4, "{card}");
    let counts: Vec<(String, u64)> = card["event_counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["events"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("cart_viewed".to_string(), 1),
            ("login".to_string(), 1),
            ("product_viewed".to_string(), 2)
        ]
    );
    assert!(card["first_event_at"].is_string() && card["last_event_at"].is_string());
    assert_eq!(card["profile"], Value::Null);

    // A manual event: validated like any event, stored with ingest path manual.
    let (status, body) = t
        .admin(
            Method::POST,
            &format!("{base}/events"),
            Some(json!({"name": "purchase_completed", "context": {"total_price": "lots"}})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("property_type_mismatch")),
        "{body}"
    );
    let (status, body) = t
        .admin(
            Method::POST,
            &format!("{base}/events"),
            Some(json!({"name": "bad-key", "context": {"a-b": 1}})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("context_key_hyphen"))
    );
    let (status, body) = t
        .admin(
            Method::POST,
            &format!("{base}/events"),
            Some(json!({"name": "purchase_completed", "context": {"total_price": 99.5}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let manual_id = body["event_id"].as_str().unwrap().to_string();
    t.rejections_written(2).await;
    assert_eq!(
        t.count("SELECT count() FROM rejected_events WHERE ingest_path = 'manual'")
            .await,
        2
    );

    let (status, page) = t
        .admin(Method::GET, &format!("{base}/events?limit=500"), None)
        .await;
    assert_eq!(status, 200, "{page}");
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 5, "{page}");
    assert_eq!(events[0]["event_id"], manual_id.as_str(), "newest first");
    assert_eq!(events[0]["ingest_path"], "manual");
    assert_eq!(events[0]["context"]["total_price"], 99.5);
    assert!(events
        .iter()
        .any(|e| e["name"] == "cart_viewed" && e["anonymous_id"] == "a-1"));
    assert_eq!(page["next_cursor"], Value::Null);
    let times: Vec<&str> = events
        .iter()
        .map(|e| e["event_time"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);

    // Filters.
    let (_, page) = t
        .admin(
            Method::GET,
            &format!("{base}/events?name=product_viewed&source=online_store"),
            None,
        )
        .await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2, "{page}");
    let (_, page) = t
        .admin(
            Method::GET,
            &format!("{base}/events?from=2000-01-01&to=2000-12-31"),
            None,
        )
        .await;
    assert_eq!(page["events"].as_array().unwrap().len(), 0, "{page}");
    for bad in ["limit=0", "limit=501", "cursor=nope", "from=yesterday"] {
        let (status, body) = t
            .admin(Method::GET, &format!("{base}/events?{bad}"), None)
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn history_pages_are_stable_and_together_hold_every_event_once() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    // 25 events, several sharing one timestamp so the event_id tie-break matters.
    let occurred = event_model::timestamp::format_rfc3339_ms(now_ms() - 60_000);
    let events: Vec<Event> = (0..25)
        .map(|i| {
            let mut e = event(&format!("step_{}", i % 3), "c-1");
            if i % 2 == 0 {
                e.occurred_at = occurred.clone();
            }
            e
        })
        .collect();
    let ids: std::collections::BTreeSet<String> =
        events.iter().map(|e| e.event_id.clone()).collect();
    let (status, _, _) = t.send(&batch(&p, events), None).await;
    assert_eq!(status, 200);
    let base = format!("/v1/admin/partners/{}/customers/c-1/events", p.id);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}?limit=7&cursor={c}"),
            None => format!("{base}?limit=7"),
        };
        let (status, page) = t.admin(Method::GET, &url, None).await;
        assert_eq!(status, 200, "{page}");
        let batch: Vec<String> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_string())
            .collect();
        assert!(batch.len() <= 7);
        seen.extend(batch);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25, "no event twice");
    assert_eq!(
        seen.iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        ids
    );
    // The same first page twice: the order is stable.
    let (_, a) = t.admin(Method::GET, &format!("{base}?limit=7"), None).await;
    let (_, b) = t.admin(Method::GET, &format!("{base}?limit=7"), None).await;
    assert_eq!(a["events"], b["events"]);
    t.finish().await;
}
