//! The campaign engine scaled out and restarted: engine processes (`eventline-collector
//! campaigns`, started in-process through the same `standalone::start`) each run their share of
//! the customers from `events` in ClickHouse, and a `serve` killed with events stored but not
//! advanced advances them at its next start. Every message goes through a real SMTP server.

use std::collections::BTreeMap;

use event_model::{ContextValue, Event};
use eventline_collector::campaigns::shard::Shard;
use eventline_collector::campaigns::standalone;
use eventline_collector::config::Config;
use serde_json::{json, Value};

use crate::campaigns_run::{create_campaign, put_profile, SmtpSink};
use crate::common::*;

/// Sends at once when a customer adds something to the cart.
fn immediate_email() -> Value {
    json!({
        "name": "Thanks for the cart",
        "status": "active",
        "trigger": {"event": {"name": "added_to_cart"}},
        "steps": [{"send": {"channel": "email", "template": {
            "subject": "Your {{ client.eventContext.product }}",
            "body": "<p>{{ client.eventContext.product }} is in your cart.</p>"
        }}}]
    })
}

/// An engine process's settings: the collector's database, the SMTP sink, share `shard`.
fn engine_config(t: &TestCollector, smtp: &SmtpSink, shard: &str) -> Config {
    let mut config = Config::local_defaults();
    config.clickhouse_url = clickhouse_url();
    config.clickhouse_database = t.database.clone();
    config.clickhouse_timeout_ms = 5_000;
    config.smtp_url = smtp.url();
    config.campaign_shard = shard.parse().unwrap();
    config.campaign_poll_ms = 100;
    // Share k/2 in two lanes: the shares k/4 and (k+2)/4, a checkpoint each.
    config.campaign_lanes = 2;
    config
}

/// Mails received per recipient.
fn per_recipient(smtp: &SmtpSink) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for mail in smtp.mails() {
        let to = mail
            .lines()
            .find_map(|l| l.strip_prefix("X-Envelope-To: "))
            .unwrap_or_else(|| panic!("no envelope recipient in {mail}"))
            .trim()
            .to_string();
        *count.entry(to).or_insert(0) += 1;
    }
    count
}

async fn add_to_cart(t: &TestCollector, p: &Partner, customers: &[String]) {
    let events: Vec<Event> = customers
        .iter()
        .map(|c| Event {
            context: [(
                "product".to_string(),
                ContextValue::String(format!("boots for {c}")),
            )]
            .into(),
            ..event("added_to_cart", c)
        })
        .collect();
    let (status, body) = t.send_server(&p.api_key, &batch(p, events)).await;
    assert_eq!(status, 200, "{body}");
}

async fn sent_messages(t: &TestCollector) -> u64 {
    t.count("SELECT count() FROM campaign_messages FINAL WHERE status = 'sent'")
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn two_engine_processes_with_shares_0_of_2_and_1_of_2_send_every_customer_their_message_exactly_once(
) {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    // The collector only ingests: the engines run the campaigns.
    let t = TestCollector::start_with(clickhouse_url(), |c| {
        c.smtp_url = url;
        c.serve_campaigns = false;
    })
    .await;
    let p = t.create_partner("Shop").await;
    let customers: Vec<String> = (0..20).map(|i| format!("customer-{i}")).collect();
    for c in &customers {
        put_profile(&t, &p, c, json!({"email": format!("{c}@example.com")})).await;
    }
    // Both shares hold some of the 20 customers, so both engines have work.
    let first = Shard::new(0, 2).unwrap();
    let in_first = customers.iter().filter(|c| first.owns(c)).count();
    assert!((1..20).contains(&in_first), "{in_first} of 20 in share 0/2");
    create_campaign(&t, &p, immediate_email()).await;

    let a = standalone::start(engine_config(&t, &smtp, "0/2"))
        .await
        .unwrap();
    let b = standalone::start(engine_config(&t, &smtp, "1/2"))
        .await
        .unwrap();
    eventually(
        "the checkpoints of both shares' lanes written",
        30,
        || async {
            let n = t
                .count("SELECT count() FROM campaign_checkpoints FINAL WHERE shard_count = 4")
                .await;
            (n == 4).then_some(())
        },
    )
    .await;

    add_to_cart(&t, &p, &customers[..10]).await;
    add_to_cart(&t, &p, &customers[10..]).await;
    smtp.wait_for(20, 60).await;
    eventually("20 messages logged as sent", 30, || async {
        (sent_messages(&t).await == 20).then_some(())
    })
    .await;
    // A graceful stop saves each share's checkpoint: both read past the last event, so each
    // saw every event and advanced only its own customers'.
    a.stop().await;
    b.stop().await;
    let last: i64 =
        t.db.query("SELECT toUnixTimestamp64Milli(max(received_at)) FROM events")
            .fetch_one()
            .await
            .unwrap();
    let checkpoints: Vec<i64> =
        t.db.query(
            "SELECT toUnixTimestamp64Milli(received_before) FROM campaign_checkpoints FINAL \
             WHERE shard_count = 4 ORDER BY shard_index",
        )
        .fetch_all()
        .await
        .unwrap();
    assert!(
        checkpoints.len() == 4 && checkpoints.iter().all(|&c| c >= last),
        "{checkpoints:?} < {last}"
    );

    let mails = per_recipient(&smtp);
    assert_eq!(mails.len(), 20, "{mails:?}");
    assert!(mails.values().all(|&n| n == 1), "none twice: {mails:?}");
    for c in &customers {
        assert_eq!(mails.get(&format!("{c}@example.com")), Some(&1), "{c}");
    }
    assert_eq!(
        t.count("SELECT count() FROM campaign_messages FINAL").await,
        20
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_serve_killed_with_events_stored_but_not_advanced_advances_them_at_its_next_start_and_sends_nothing_twice(
) {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    // The tail reads only at start (the next read is an hour away): inside the running serve,
    // events reach the engine by the in-process hand-off alone.
    let serve = |c: &mut Config| {
        c.smtp_url = url.clone();
        c.campaign_poll_ms = 3_600_000;
    };
    let mut t1 = TestCollector::start_with(clickhouse_url(), serve).await;
    let p = t1.create_partner("Shop").await;
    let early: Vec<String> = (0..5).map(|i| format!("early-{i}")).collect();
    let stored: Vec<String> = (0..5).map(|i| format!("stored-{i}")).collect();
    for c in early.iter().chain(&stored) {
        put_profile(&t1, &p, c, json!({"email": format!("{c}@example.com")})).await;
    }
    create_campaign(&t1, &p, immediate_email()).await;

    // Advanced through the hand-off and sent.
    add_to_cart(&t1, &p, &early).await;
    smtp.wait_for(5, 60).await;
    eventually("the early messages logged as sent", 30, || async {
        (sent_messages(&t1).await == 5).then_some(())
    })
    .await;

    // Stored through another collector (one that runs no campaigns): the running engine is
    // not handed them and does not read events again before it is killed.
    let database = t1.database.clone();
    let mut ingest = TestCollector::start_with(clickhouse_url(), |c| {
        c.clickhouse_database = database.clone();
        c.serve_campaigns = false;
    })
    .await;
    add_to_cart(&ingest, &p, &stored).await;
    ingest.running.take().unwrap().stop().await.unwrap();
    assert_eq!(
        t1.count("SELECT count() FROM events WHERE name = 'added_to_cart' AND customer_id LIKE 'stored-%'")
            .await,
        5,
        "stored"
    );
    assert_eq!(
        t1.count("SELECT count() FROM campaign_runs FINAL WHERE customer_id LIKE 'stored-%'")
            .await,
        0,
        "not advanced"
    );
    // A hard stop: no drain, no checkpoint saved.
    t1.running.take().unwrap().abort();

    let t2 = TestCollector::start_with(clickhouse_url(), |c| {
        serve(c);
        c.clickhouse_database = database.clone();
    })
    .await;
    smtp.wait_for(10, 60).await;
    // The stored events came after the early ones in the same replayed round: once theirs are
    // sent, the early ones were replayed too.
    eventually("ten messages logged as sent", 30, || async {
        (sent_messages(&t2).await == 10).then_some(())
    })
    .await;
    let mut t2 = t2;
    t2.running.take().unwrap().stop().await.unwrap();
    let mails = per_recipient(&smtp);
    assert_eq!(mails.len(), 10, "{mails:?}");
    assert!(
        mails.values().all(|&n| n == 1),
        "the replay sent nothing twice: {mails:?}"
    );
    assert_eq!(
        t2.count("SELECT count() FROM campaign_messages FINAL")
            .await,
        10
    );
    t2.finish().await;
    ingest.finish().await;
    t1.finish().await;
}
