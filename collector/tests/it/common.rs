//! A collector started in-process on port 0 over a fresh database, and helpers to talk to it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use clickhouse::Client;
use event_model::json::Batch;
use event_model::timestamp::format_rfc3339_ms;
use event_model::{ContextValue, Event, EventKind};
use eventline_collector::app::{self, Running};
pub use eventline_collector::campaigns::clock::Clock;
use eventline_collector::config::Config;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub fn clickhouse_url() -> String {
    std::env::var("EVENTLINE_TEST_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18123".into())
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn fresh_database() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "eventline_it_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        uuid::Uuid::new_v4().simple().to_string().get(..8).unwrap()
    )
}

/// A partner created through the admin API.
pub struct Partner {
    pub id: String,
    pub api_key: String,
    pub online_store_id: String,
}

pub struct TestCollector {
    pub running: Option<Running>,
    pub base: String,
    pub http: reqwest::Client,
    pub db: Client,
    pub database: String,
    /// Set by [`TestCollector::finish`]; a test that panics before it leaves the clean-up to `Drop`.
    finished: bool,
}

async fn drop_database(db: &Client, database: &str) {
    let _ = db
        .query("DROP DATABASE IF EXISTS {db:Identifier}")
        .param("db", database)
        .execute()
        .await;
}

/// A test that panics never reaches `finish`: its server is stopped when the test's runtime
/// shuts down, and its database is dropped here, from a thread with a runtime of its own (the
/// test's runtime may be the one unwinding, and `Drop` cannot await).
impl Drop for TestCollector {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Some(running) = self.running.take() {
            running.abort();
        }
        let (db, database) = (self.db.clone(), self.database.clone());
        let cleanup = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the clean-up")
                .block_on(drop_database(&db, &database));
        });
        let _ = cleanup.join();
    }
}

impl TestCollector {
    pub async fn start() -> TestCollector {
        Self::start_with(clickhouse_url(), |_| {}).await
    }

    pub async fn start_with(url: String, tweak: impl FnOnce(&mut Config)) -> TestCollector {
        Self::start_with_clock(url, Clock::system(), tweak).await
    }

    /// [`TestCollector::start_with`], with the campaign engine on `clock`.
    pub async fn start_with_clock(
        url: String,
        clock: Clock,
        tweak: impl FnOnce(&mut Config),
    ) -> TestCollector {
        let database = fresh_database();
        let mut config = Config::local_defaults();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.clickhouse_url = url.clone();
        config.clickhouse_database = database.clone();
        config.admin_token = Some(ADMIN_TOKEN.into());
        config.workers = 1;
        config.batch_linger_ms = 1;
        config.clickhouse_timeout_ms = 5_000;
        tweak(&mut config);
        let database = config.clickhouse_database.clone();
        let running = app::start_with_clock(config, clock)
            .await
            .expect("collector starts");
        let base = format!("http://{}", running.addr);
        // reqwest has no crypto provider of its own (see http_client); the collector's start
        // installed it, said again here for the tests' own clients.
        eventline_collector::campaigns::http_client::install_crypto_provider();
        TestCollector {
            running: Some(running),
            base,
            http: reqwest::Client::new(),
            db: Client::default().with_url(url).with_database(&database),
            database,
            finished: false,
        }
    }

    /// Stops the collector and drops its database.
    pub async fn finish(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.unwrap();
        }
        drop_database(&self.db, &self.database).await;
        self.finished = true;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn create_partner(&self, name: &str) -> Partner {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                "/v1/admin/partners",
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        Partner {
            id: body["id"].as_str().unwrap().into(),
            api_key: body["api_key"].as_str().unwrap().into(),
            online_store_id: body["sources"][0]["id"].as_str().unwrap().into(),
        }
    }

    pub async fn patch_source(
        &self,
        partner: &Partner,
        source_id: &str,
        patch: Value,
    ) -> (u16, Value) {
        self.admin(
            reqwest::Method::PATCH,
            &format!("/v1/admin/partners/{}/sources/{source_id}", partner.id),
            Some(patch),
        )
        .await
    }

    pub async fn add_source(&self, partner: &Partner, body: Value) -> (u16, Value) {
        self.admin(
            reqwest::Method::POST,
            &format!("/v1/admin/partners/{}/sources", partner.id),
            Some(body),
        )
        .await
    }

    /// Posts raw bytes to a path with the given headers; returns status, headers and JSON body.
    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, HeaderMap, Value) {
        let mut req = self.http.post(self.url(path)).body(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Posts a batch as JSON to `/v1/events`.
    pub async fn send(&self, batch: &Batch, origin: Option<&str>) -> (u16, HeaderMap, Value) {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(origin) = origin {
            headers.push(("origin", origin));
        }
        self.post_raw("/v1/events", &headers, serde_json::to_vec(batch).unwrap())
            .await
    }

    /// A counter's value from `/metrics` (the line `name value`, labels included in `name`).
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .map(|v| v.trim().parse::<f64>().unwrap() as u64)
            .unwrap_or(0)
    }

    /// Waits until at least `rows` rejected rows have been written to `rejected_events`: they
    /// are written in the background, after the answer.
    pub async fn rejections_written(&self, rows: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let written = self.metric("eventline_quarantine_written_total").await;
            if written >= rows {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{written} of {rows} rejected rows written within 30 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub async fn count(&self, sql: &str) -> u64 {
        self.db.query(sql).fetch_one::<u64>().await.unwrap()
    }
}

/// A valid customer event from the online store, happening now.
pub fn event(name: &str, customer: &str) -> Event {
    Event {
        event_id: uuid::Uuid::now_v7().to_string(),
        kind: EventKind::Customer,
        name: name.into(),
        source: "online_store".into(),
        customer_id: Some(customer.into()),
        anonymous_id: None,
        session_id: Some("s-1".into()),
        occurred_at: format_rfc3339_ms(now_ms()),
        context: [(
            "category".to_string(),
            ContextValue::String("Jacket".into()),
        )]
        .into(),
    }
}

pub fn batch(partner: &Partner, events: Vec<Event>) -> Batch {
    Batch {
        partner_id: Some(partner.id.clone()),
        sent_at: format_rfc3339_ms(now_ms()),
        events,
    }
}

/// Polls `check` until it returns `Some`, failing the test after `secs` seconds.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

impl TestCollector {
    /// Posts a batch to `/v1/server/events` with an API key; returns status and body.
    pub async fn send_server(&self, key: &str, batch: &Batch) -> (u16, Value) {
        let auth = format!("Bearer {key}");
        let (status, _, body) = self
            .post_raw(
                "/v1/server/events",
                &[
                    ("content-type", "application/json"),
                    ("authorization", &auth),
                ],
                serde_json::to_vec(batch).unwrap(),
            )
            .await;
        (status, body)
    }

    /// Sends an admin `DELETE` that queues an erasure job (a customer's or a partner's); checks
    /// the `202 queued` answer and returns the job id.
    pub async fn queue_erasure(&self, path: &str) -> String {
        let (status, body) = self.admin(reqwest::Method::DELETE, path, None).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("queued")),
            "{body}"
        );
        body["job_id"].as_str().unwrap().to_string()
    }

    /// Waits until an erasure job is `done` (or fails the test if it fails); returns its view.
    pub async fn wait_for_job(&self, job_id: &str, secs: u64) -> Value {
        let path = format!("/v1/admin/erasure-jobs/{job_id}");
        eventually("the erasure job to finish", secs, || async {
            let (status, body) = self.admin(reqwest::Method::GET, &path, None).await;
            assert_eq!(status, 200, "{body}");
            assert_ne!(body["status"], "failed", "{body}");
            (body["status"] == "done").then_some(body)
        })
        .await
    }

    /// The audit log, newest first.
    pub async fn audit(&self, query: &str) -> Vec<Value> {
        let (status, body) = self
            .admin(
                reqwest::Method::GET,
                &format!("/v1/admin/audit{query}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["entries"].as_array().unwrap().clone()
    }
}
