//! ClickHouse going away and coming back: nothing acknowledged is lost, nothing is doubled.

use std::process::Command;

use crate::common::*;

/// A private ClickHouse instance started with the project's own script, so stopping it
/// does not disturb the other tests.
struct PrivateClickHouse {
    port: u16,
    data_dir: std::path::PathBuf,
}

impl PrivateClickHouse {
    fn script(&self, action: &str) {
        let status = Command::new("bash")
            .arg(repo_root().join("scripts/clickhouse.sh"))
            .args([action, "--port", &self.port.to_string(), "--data-dir"])
            .arg(&self.data_dir)
            .status()
            .expect("scripts/clickhouse.sh runs");
        assert!(status.success(), "clickhouse.sh {action} failed");
    }

    fn start() -> PrivateClickHouse {
        // A port the system has just handed out, so tests running in parallel get their own.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let data_dir = std::env::temp_dir().join(format!(
            "eventline-outage-{port}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let ch = PrivateClickHouse { port, data_dir };
        ch.script("start");
        ch
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateClickHouse {
    fn drop(&mut self) {
        self.script("stop");
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn while_clickhouse_is_down_nothing_is_acknowledged_and_retries_land_once() {
    let ch = PrivateClickHouse::start();
    let t = TestCollector::start_with(ch.url(), |c| c.clickhouse_timeout_ms = 2_000).await;
    let p = t.create_partner("Acme").await;
    let (status, _, body) = t.send(&batch(&p, vec![event("before", "c")]), None).await;
    assert_eq!(status, 200, "{body}");

    ch.script("stop");
    let pending = batch(&p, vec![event("during", "c-1"), event("during", "c-2")]);
    let (status, headers, body) = t.send(&pending, None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "storage_unavailable");
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    let ready = t.http.get(t.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let health = t.http.get(t.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "the process itself is fine");

    ch.script("start");
    // The tracker retries the same batch, perhaps more than once.
    for _ in 0..2 {
        let (status, _, body) = t.send(&pending, None).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        t.count("SELECT count() FROM events WHERE name = 'during'")
            .await,
        2
    );
    assert_eq!(t.count("SELECT count() FROM events").await, 3);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn while_clickhouse_is_down_bad_requests_still_get_their_4xx_and_are_recorded_later() {
    let ch = PrivateClickHouse::start();
    let t = TestCollector::start_with(ch.url(), |c| c.clickhouse_timeout_ms = 2_000).await;
    let p = t.create_partner("Acme").await;
    let mut hyphen = event("bad", "c-1");
    hyphen.context.insert(
        "user-name".into(),
        event_model::ContextValue::String("x".into()),
    );

    ch.script("stop");
    let (status, _, body) = t
        .post_raw(
            "/v1/events",
            &[("content-type", "application/json")],
            b"{\"sent_at\": ".to_vec(),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "{body}"
    );
    let (status, _, body) = t.send(&batch(&p, vec![hyphen.clone()]), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("context_key_hyphen")),
        "{body}"
    );
    // Good and bad together: the good event cannot be stored, so the batch is answered 503
    // like any other, and the client resends it unchanged.
    let mixed = batch(&p, vec![event("good", "c-2"), hyphen]);
    let (status, _, body) = t.send(&mixed, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("storage_unavailable")),
        "{body}"
    );

    ch.script("start");
    // The hyphen batch's final rejection was held and is written once ClickHouse is back (the
    // undecodable body names no partner: it is counted in /metrics, never stored).
    t.rejections_written(1).await;
    let (status, _, body) = t.send(&mixed, None).await;
    assert_eq!(status, 200, "{body}");
    t.rejections_written(2).await;
    assert_eq!(t.count("SELECT count() FROM events").await, 1);
    assert_eq!(t.count("SELECT count() FROM rejected_events").await, 2);
    assert_eq!(
        t.metric("eventline_quarantine_dropped_total{reason=\"storage\"}")
            .await,
        0
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn while_clickhouse_is_down_segment_and_customer_reads_answer_503_and_work_again() {
    let ch = PrivateClickHouse::start();
    let t = TestCollector::start_with(ch.url(), |c| c.clickhouse_timeout_ms = 2_000).await;
    let p = t.create_partner("Acme").await;
    let (status, _, body) = t
        .send(&batch(&p, vec![event("product_viewed", "c-1")]), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let preview = format!("/v1/admin/partners/{}/segments/preview", p.id);
    let definition = serde_json::json!({"definition": {"event": {"name": "product_viewed"}}});
    let card = format!("/v1/admin/partners/{}/customers/c-1", p.id);
    let history = format!("{card}/events");

    ch.script("stop");
    for (method, path, body) in [
        (reqwest::Method::POST, &preview, Some(definition.clone())),
        (reqwest::Method::GET, &card, None),
        (reqwest::Method::GET, &history, None),
    ] {
        let (status, answer) = t.admin(method, path, body).await;
        assert_eq!(status, 503, "{path}: {answer}");
        assert_eq!(answer["error"]["code"], "storage_unavailable", "{path}");
        // Reads speak of storage, never of events not stored.
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("storage is unavailable"), "{message}");
    }

    ch.script("start");
    let (status, answer) = t
        .admin(reqwest::Method::POST, &preview, Some(definition))
        .await;
    assert_eq!(
        (status, answer["members"].as_u64()),
        (200, Some(1)),
        "{answer}"
    );
    let (status, answer) = t.admin(reqwest::Method::GET, &history, None).await;
    assert_eq!(status, 200, "{answer}");
    t.finish().await;
}
