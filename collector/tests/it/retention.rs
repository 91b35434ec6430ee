//! Per-partner event retention, enforced by the periodic sweep.

use event_model::timestamp::format_rfc3339_ms;
use reqwest::Method;
use serde_json::json;

use crate::common::*;

const DAY_MS: i64 = 86_400_000;

#[tokio::test(flavor = "multi_thread")]
async fn a_one_day_retention_removes_that_partners_older_events_only_and_survives_a_restart() {
    let t = TestCollector::start_with(clickhouse_url(), |c| c.retention_sweep_secs = 1).await;
    let p = t.create_partner("Short memory").await;
    let other = t.create_partner("Long memory").await;
    for partner in [&p, &other] {
        let mut old = event("view", "c-old");
        old.occurred_at = format_rfc3339_ms(now_ms() - 2 * DAY_MS);
        let (status, _, body) = t
            .send(&batch(partner, vec![old, event("view", "c-new")]), None)
            .await;
        assert_eq!(
            (status, body["accepted"].as_u64()),
            (200, Some(2)),
            "{body}"
        );
    }
    let path = format!("/v1/admin/partners/{}", p.id);
    for bad in [
        json!({ "retention_days": 0 }),
        json!({ "retention_days": 3651 }),
        json!({ "retention_days": -1 }),
        json!({}),
    ] {
        let (status, body) = t.admin(Method::PATCH, &path, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, body) = t
        .admin(Method::PATCH, &path, Some(json!({ "retention_days": 1 })))
        .await;
    assert_eq!(
        (status, body["retention_days"].as_u64()),
        (200, Some(1)),
        "{body}"
    );

    let count = |partner: &str, customer: &str| {
        format!(
            "SELECT count() FROM events WHERE partner_id = '{partner}' AND customer_id = '{customer}'"
        )
    };
    eventually("the retention sweep", 30, || async {
        (t.count(&count(&p.id, "c-old")).await == 0).then_some(())
    })
    .await;
    assert_eq!(t.count(&count(&p.id, "c-new")).await, 1);
    assert_eq!(t.count(&count(&other.id, "c-old")).await, 1);
    // The context index segments read (migration 0010) loses the same events and only those.
    let indexed = |partner: &str, customer: &str| {
        count(partner, customer).replace("FROM events", "FROM event_context_strings")
    };
    assert_eq!(t.count(&indexed(&p.id, "c-old")).await, 0);
    assert_eq!(t.count(&indexed(&p.id, "c-new")).await, 1);
    assert_eq!(t.count(&indexed(&other.id, "c-old")).await, 1);
    // So do the keys the duplicate look-up reads (migration 0017).
    let keyed = |partner: &str, customer: &str| {
        count(partner, customer).replace("FROM events", "FROM event_keys")
    };
    assert_eq!(t.count(&keyed(&p.id, "c-old")).await, 0);
    assert_eq!(t.count(&keyed(&p.id, "c-new")).await, 1);
    assert_eq!(t.count(&keyed(&other.id, "c-old")).await, 1);

    let database = t.database.clone();
    let mut t2 =
        TestCollector::start_with(clickhouse_url(), |c| c.clickhouse_database = database).await;
    let (_, body) = t2.admin(Method::GET, &path, None).await;
    assert_eq!(body["retention_days"], 1);
    let (_, body) = t2
        .admin(
            Method::GET,
            &format!("/v1/admin/partners/{}", other.id),
            None,
        )
        .await;
    assert_eq!(body["retention_days"], serde_json::Value::Null);
    let (status, body) = t2
        .admin(
            Method::PATCH,
            &path,
            Some(json!({ "retention_days": null })),
        )
        .await;
    assert_eq!(
        (status, body["retention_days"].clone()),
        (200, serde_json::Value::Null)
    );
    t2.running.take().unwrap().stop().await.unwrap();
    t.finish().await;
}
