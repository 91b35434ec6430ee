//! Erasure of one customer: events, linked anonymous events, rejected rows; jobs resumed.

use event_model::Event;
use eventline_collector::erasure::subject_hash;
use reqwest::Method;

use crate::common::*;

fn anonymous(name: &str, anonymous_id: &str) -> Event {
    Event {
        customer_id: None,
        anonymous_id: Some(anonymous_id.into()),
        ..event(name, "unused")
    }
}

fn with_anonymous(mut e: Event, anonymous_id: &str) -> Event {
    e.anonymous_id = Some(anonymous_id.into());
    e
}

fn invalid(mut e: Event) -> Event {
    e.name = " bad name".into();
    e
}

#[tokio::test(flavor = "multi_thread")]
async fn erasing_a_customer_removes_their_events_linked_anonymous_events_and_rejected_rows_only() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let other = t.create_partner("Other").await;
    let events = vec![
        // The customer, before and after logging in on one device.
        anonymous("view", "a-1"),
        with_anonymous(event("login", "c-1"), "a-1"),
        event("purchase", "c-1"),
        // Look-alikes that must stay.
        event("purchase", "c-10"),
        with_anonymous(event("login", "c-10"), "a-10"),
        anonymous("view", "a-10"),
        anonymous("view", "a-1x"),
        // Rejected rows: the customer's, an anonymous one of theirs, and a look-alike's.
        invalid(event("view", "c-1")),
        invalid(anonymous("view", "a-1")),
        invalid(event("view", "c-10")),
    ];
    let (status, _, body) = t.send(&batch(&p, events), None).await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(7)),
        "{body}"
    );
    // The same customer id at another partner is another person.
    let (status, _, _) = t
        .send(&batch(&other, vec![event("view", "c-1")]), None)
        .await;
    assert_eq!(status, 200);
    t.rejections_written(3).await;
    // Bodies that are not JSON, naming the customer, with no known partner: collectors before
    // migration 0003 stored such requests under the nil partner, and erasure covers them too.
    for payload in [
        r#"{"events":[{"customer_id": "c-1", "name": "view"}"#,
        r#"{"events":[{"customer_id": "c-10", "name": "view"}"#,
    ] {
        t.db.query(
            "INSERT INTO rejected_events (received_at, partner_id, event_index, reason_code, payload, ingest_path) \
             VALUES (now64(3), toUUID('00000000-0000-0000-0000-000000000000'), -1, 'invalid_json', {payload:String}, 'client')",
        )
        .param("payload", payload)
        .execute()
        .await
        .unwrap();
    }
    assert_eq!(t.count("SELECT count() FROM rejected_events").await, 5);

    let job_id = t
        .queue_erasure(&format!("/v1/admin/partners/{}/customers/c-1", p.id))
        .await;
    let job = t.wait_for_job(&job_id, 60).await;
    assert_eq!(job["rows_removed"]["events"], 3, "{job}");
    assert_eq!(job["rows_removed"]["rejected_events"], 3, "{job}");
    assert!(job["started_at"].is_string() && job["finished_at"].is_string());

    let p_events = format!("SELECT count() FROM events WHERE partner_id = '{}'", p.id);
    assert_eq!(t.count(&p_events).await, 4);
    assert_eq!(
        t.count(&format!(
            "{p_events} AND (customer_id = 'c-1' OR anonymous_id = 'a-1')"
        ))
        .await,
        0
    );
    assert_eq!(
        t.count(&format!(
            "SELECT count() FROM events WHERE partner_id = '{}'",
            other.id
        ))
        .await,
        1
    );
    // The customer is no longer known (segments' universe); the look-alike still is.
    let known = format!(
        "SELECT count() FROM known_customers WHERE partner_id = '{}' AND customer_id = ",
        p.id
    );
    assert_eq!(t.count(&format!("{known}'c-1'")).await, 0);
    assert!(t.count(&format!("{known}'c-10'")).await > 0);
    // Nor are their events in the context index segments read (migration 0010), of which
    // every event above has a row (`category`); the look-alike's stay.
    let indexed = format!(
        "SELECT count() FROM event_context_strings WHERE partner_id = '{}'",
        p.id
    );
    assert_eq!(t.count(&indexed).await, 4);
    assert_eq!(
        t.count(&format!(
            "{indexed} AND (customer_id = 'c-1' OR anonymous_id = 'a-1')"
        ))
        .await,
        0
    );
    // The keys the duplicate look-up reads (migration 0017) go with their events: a device
    // that resends one of them after the erasure has it stored again, as the README says.
    let keyed = format!(
        "SELECT count() FROM event_keys WHERE partner_id = '{}'",
        p.id
    );
    assert_eq!(
        t.count(&format!(
            "{keyed} AND (customer_id = 'c-1' OR anonymous_id = 'a-1')"
        ))
        .await,
        0
    );
    assert_eq!(
        t.count(&keyed).await,
        t.count(&format!(
            "SELECT count() FROM events WHERE partner_id = '{}'",
            p.id
        ))
        .await
    );
    assert_eq!(t.count("SELECT count() FROM rejected_events").await, 2);
    assert_eq!(
        t.count("SELECT count() FROM rejected_events WHERE position(payload, 'c-10') > 0")
            .await,
        2
    );

    // The job and the audit log keep the customer id only as a hash, if at all.
    assert_eq!(
        t.count("SELECT count() FROM erasure_jobs WHERE position(subject_sha256, 'c-1') > 0 OR position(error, 'c-1') > 0")
            .await,
        0
    );
    assert_eq!(
        t.count(&format!(
            "SELECT count() FROM erasure_jobs FINAL WHERE subject_sha256 = '{}' AND status = 'done'",
            subject_hash("c-1")
        ))
        .await,
        1
    );
    let entries = t.audit(&format!("?partner_id={}", p.id)).await;
    assert_eq!(entries[0]["action"], "customer.erase");
    assert_eq!(entries[0]["target_id"].as_str(), Some(job_id.as_str()));
    assert!(!serde_json::to_string(&entries).unwrap().contains("c-1"));

    let (status, _) = t
        .admin(
            Method::DELETE,
            &format!("/v1/admin/partners/{}/customers/c-1", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = t
        .admin(
            Method::GET,
            &format!("/v1/admin/erasure-jobs/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(status, 404);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_left_queued_by_a_stopped_collector_runs_at_the_next_start() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let (status, _, _) = t
        .send(
            &batch(&p, vec![event("view", "c-1"), event("view", "c-2")]),
            None,
        )
        .await;
    assert_eq!(status, 200);
    // A queued job as a collector that stopped before running it would have left it.
    let job_id = uuid::Uuid::now_v7();
    t.db.query(
        "INSERT INTO erasure_jobs (job_id, partner_id, scope, subject_sha256, status, \
         requested_by, requested_at, not_before, events_removed, rejected_removed, error, version) \
         VALUES ({j:UUID}, {p:UUID}, 'customer', {h:String}, 'queued', 'test', now64(3), now64(3), \
         0, 0, '', 1)",
    )
    .param("j", job_id.to_string())
    .param("p", p.id.clone())
    .param("h", subject_hash("c-1"))
    .execute()
    .await
    .unwrap();
    let database = t.database.clone();
    let mut t2 =
        TestCollector::start_with(clickhouse_url(), |c| c.clickhouse_database = database).await;
    let job = t2.wait_for_job(&job_id.to_string(), 60).await;
    assert_eq!(job["rows_removed"]["events"], 1, "{job}");
    assert_eq!(
        t2.count("SELECT count() FROM events WHERE customer_id = 'c-2'")
            .await,
        1
    );
    t2.running.take().unwrap().stop().await.unwrap();
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn erasing_a_customer_who_got_a_campaign_message_removes_their_campaign_runs_and_messages_only(
) {
    use crate::campaigns_run::{create_campaign, product, send};
    use serde_json::json;

    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    // An email step the customers (no profile) cannot get: a skipped message each, then a
    // wait that keeps each run's state in `campaign_runs`.
    create_campaign(
        &t,
        &p,
        json!({
            "name": "Cart", "status": "active",
            "trigger": {"event": {"name": "added_to_cart"}},
            "steps": [
                {"send": {"channel": "email", "template": {"subject": "s", "body": "{{ client.eventContext.product }}"}}},
                {"wait": {"days": 1}}
            ]
        }),
    )
    .await;
    for customer in ["c-1", "c-10"] {
        send(&t, &p, "added_to_cart", customer, &product("Trail Boots")).await;
    }
    let rows = |table: &str, customer: &str| {
        format!(
            "SELECT count() FROM {table} WHERE partner_id = '{}' AND customer_id = '{customer}'",
            p.id
        )
    };
    for customer in ["c-1", "c-10"] {
        for table in ["campaign_runs", "campaign_messages"] {
            let sql = rows(table, customer);
            eventually(&format!("{table} rows of {customer}"), 60, || async {
                (t.count(&sql).await > 0).then_some(())
            })
            .await;
        }
    }

    let job_id = t
        .queue_erasure(&format!("/v1/admin/partners/{}/customers/c-1", p.id))
        .await;
    let job = t.wait_for_job(&job_id, 60).await;
    assert_eq!(job["status"], "done", "{job}");
    for table in ["campaign_runs", "campaign_messages"] {
        assert_eq!(t.count(&rows(table, "c-1")).await, 0, "{table} of c-1");
        assert!(t.count(&rows(table, "c-10")).await > 0, "{table} of c-10");
    }
    t.finish().await;
}
