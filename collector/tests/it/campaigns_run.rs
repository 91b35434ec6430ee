//! Running campaigns end to end: the sink hands stored events to the engine, waits are durable
//! across restarts, and email goes through a real SMTP server (aiosmtpd, `tests/smtp/sink.py`)
//! whose received messages the tests read back as files.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use event_model::timestamp::parse_rfc3339_ms;
use event_model::{ContextValue, Event};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::common::*;

/// A real SMTP server started for one test; ends with it (its stdin closes).
pub struct SmtpSink {
    dir: PathBuf,
    port: u16,
    _child: Child,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        Self::start_on(0).await
    }

    /// Listens on `port` (0: any free port).
    pub async fn start_on(port: u16) -> SmtpSink {
        let aiosmtpd = std::env::var("EVENTLINE_TEST_AIOSMTPD_PATH").unwrap_or_else(|_| {
            repo_root()
                .join(".cache/aiosmtpd-1.4.6")
                .to_string_lossy()
                .into_owned()
        });
        assert!(
            PathBuf::from(&aiosmtpd).join("aiosmtpd").is_dir(),
            "aiosmtpd is not installed at {aiosmtpd}: run scripts/smtp-sink.sh (make test does) \
             or set EVENTLINE_TEST_AIOSMTPD_PATH"
        );
        let dir = std::env::temp_dir().join(format!("eventline-smtp-{}", uuid::Uuid::new_v4()));
        let mut child = Command::new("python3")
            .arg(repo_root().join("tests/smtp/sink.py"))
            .arg("--dir")
            .arg(&dir)
            .arg("--port")
            .arg(port.to_string())
            .env("PYTHONPATH", &aiosmtpd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 starts the SMTP sink");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the SMTP sink says where it listens within 30 s")
            .unwrap()
            .expect("the SMTP sink printed a line");
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the SMTP sink: {line}"));
        SmtpSink {
            dir,
            port,
            _child: child,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, in order.
    pub fn mails(&self) -> Vec<String> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    /// Waits until `n` messages have arrived.
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<String> {
        eventually(&format!("{n} email(s) at the SMTP sink"), secs, || async {
            let mails = self.mails();
            (mails.len() >= n).then_some(mails)
        })
        .await
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Added to cart, no purchase within `seconds` (standing in for the minute): an email naming
/// the product from the event's context.
pub fn abandoned_cart(seconds: u32) -> Value {
    json!({
        "name": "Abandoned cart",
        "status": "active",
        "trigger": {"event": {"name": "added_to_cart"}},
        "steps": [{"wait": {
            "until_event": "purchase_completed",
            "timeout": {"seconds": seconds},
            "on_timeout": [{"send": {"channel": "email", "template": {
                "subject": "Still thinking about {{ client.eventContext.product }}?",
                "body": "<p>Hi {{ client.first_name | default(\"friend\") }}, your {{ client.eventContext.product }} is waiting.</p>"
            }}}]
        }}]
    })
}

pub async fn create_campaign(t: &TestCollector, p: &Partner, definition: Value) -> String {
    let (status, body) = t
        .admin(
            Method::POST,
            &format!("/v1/admin/partners/{}/campaigns", p.id),
            Some(json!({ "definition": definition })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

pub async fn put_profile(t: &TestCollector, p: &Partner, customer: &str, body: Value) {
    let resp = t
        .http
        .put(t.url(&format!("/v1/server/customers/{customer}")))
        .bearer_auth(&p.api_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
}

pub async fn send(
    t: &TestCollector,
    p: &Partner,
    name: &str,
    customer: &str,
    context: &[(&str, ContextValue)],
) {
    let event = Event {
        context: context
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ..event(name, customer)
    };
    let (status, body) = t.send_server(&p.api_key, &batch(p, vec![event])).await;
    assert_eq!(status, 200, "{body}");
}

pub fn product(name: &str) -> [(&'static str, ContextValue); 1] {
    [("product", ContextValue::String(name.into()))]
}

/// The message log as (customer, status), oldest first.
async fn message_log(t: &TestCollector) -> Vec<(String, String, u32, String)> {
    t.db.query(
        "SELECT customer_id, status, attempts, toString(message_id) FROM campaign_messages FINAL \
         ORDER BY created_at, customer_id",
    )
    .fetch_all()
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_added_to_cart_event_with_no_purchase_within_a_minute_sends_an_email_with_the_product_name_from_the_event_context(
) {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let t = TestCollector::start_with(clickhouse_url(), |c| c.smtp_url = url).await;
    let p = t.create_partner("Shop").await;
    put_profile(
        &t,
        &p,
        "c-1",
        json!({"first_name": "Ann", "email": "ann@example.com", "consents": {"email": true}}),
    )
    .await;
    // Consent withdrawn: no email, a skipped row in the log.
    put_profile(
        &t,
        &p,
        "c-2",
        json!({"email": "bob@example.com", "consents": {"email": false}}),
    )
    .await;
    create_campaign(&t, &p, abandoned_cart(1)).await;

    send(&t, &p, "added_to_cart", "c-1", &product("Trail Boots")).await;
    send(&t, &p, "added_to_cart", "c-2", &product("Rain Coat")).await;

    let mails = smtp.wait_for(1, 60).await;
    let mail = &mails[0];
    assert!(mail.contains("X-Envelope-To: ann@example.com"), "{mail}");
    assert!(
        mail.contains("Subject: Still thinking about Trail Boots?"),
        "{mail}"
    );
    assert!(
        mail.contains("Hi Ann, your Trail Boots is waiting."),
        "{mail}"
    );
    let log = eventually("both messages logged as sent or skipped", 30, || async {
        let log = message_log(&t).await;
        (log.len() == 2 && log.iter().all(|(_, s, _, _)| s != "queued")).then_some(log)
    })
    .await;
    let ann = log.iter().find(|m| m.0 == "c-1").unwrap();
    assert_eq!((ann.1.as_str(), ann.2), ("sent", 1), "{log:?}");
    // The deterministic message id travels as the Message-ID.
    assert!(
        mail.contains(&format!("Message-ID: <{}@eventline>", ann.3)),
        "{mail}\n{log:?}"
    );
    let bob = log.iter().find(|m| m.0 == "c-2").unwrap();
    assert_eq!(bob.1, "skipped", "{log:?}");
    assert_eq!(
        smtp.mails().len(),
        1,
        "nothing went to the customer without consent"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purchase_within_the_wait_sends_nothing() {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let t = TestCollector::start_with(clickhouse_url(), |c| c.smtp_url = url).await;
    let p = t.create_partner("Shop").await;
    for c in ["c-1", "c-2"] {
        put_profile(&t, &p, c, json!({"email": format!("{c}@example.com")})).await;
    }
    create_campaign(&t, &p, abandoned_cart(2)).await;

    send(&t, &p, "added_to_cart", "c-1", &product("Trail Boots")).await;
    send(
        &t,
        &p,
        "purchase_completed",
        "c-1",
        &[("total_price", ContextValue::Number(120.0))],
    )
    .await;
    // The purchase ended c-1's run (its state waits for nothing) before c-2's cart: c-2's wait
    // ends after c-1's would have, and the one engine task takes wake-ups in time order.
    eventually("c-1's run ended by the purchase", 30, || async {
        let ended = t
            .count(
                "SELECT count() FROM campaign_runs FINAL \
                 WHERE customer_id = 'c-1' AND wake_at IS NULL AND state NOT LIKE '%\"run\"%'",
            )
            .await;
        (ended == 1).then_some(())
    })
    .await;
    send(&t, &p, "added_to_cart", "c-2", &product("Rain Coat")).await;

    let mails = smtp.wait_for(1, 60).await;
    assert!(
        mails[0].contains("X-Envelope-To: c-2@example.com"),
        "{}",
        mails[0]
    );
    let log = message_log(&t).await;
    assert!(
        log.iter().all(|m| m.0 == "c-2"),
        "no message for c-1: {log:?}"
    );
    assert_eq!(smtp.mails().len(), 1);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_of_an_edited_campaigns_older_version_still_ends_on_the_purchase_it_waits_for() {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let t = TestCollector::start_with(clickhouse_url(), |c| c.smtp_url = url).await;
    let p = t.create_partner("Shop").await;
    put_profile(&t, &p, "c-1", json!({"email": "ann@example.com"})).await;
    // A wait far longer than the test: only the purchase can end it.
    let id = create_campaign(&t, &p, abandoned_cart(3600)).await;
    send(&t, &p, "added_to_cart", "c-1", &product("Trail Boots")).await;
    eventually("c-1's version-1 run waiting", 30, || async {
        let n = t
            .count(
                "SELECT count() FROM campaign_runs FINAL \
                 WHERE customer_id = 'c-1' AND version = 1 AND wake_at IS NOT NULL",
            )
            .await;
        (n == 1).then_some(())
    })
    .await;
    // The edit makes version 2 current; version 1's run goes on.
    let mut v2 = abandoned_cart(3600);
    v2["name"] = json!("Abandoned cart, new words");
    let (status, body) = t
        .admin(
            Method::PATCH,
            &format!("/v1/admin/partners/{}/campaigns/{id}", p.id),
            Some(json!({ "definition": v2 })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 2, "{body}");
    send(
        &t,
        &p,
        "purchase_completed",
        "c-1",
        &[("total_price", ContextValue::Number(120.0))],
    )
    .await;
    eventually("the purchase ended c-1's version-1 run", 30, || async {
        let ended = t
            .count(
                "SELECT count() FROM campaign_runs FINAL \
                 WHERE customer_id = 'c-1' AND version = 1 AND wake_at IS NULL \
                   AND state NOT LIKE '%\"run\"%'",
            )
            .await;
        (ended == 1).then_some(())
    })
    .await;
    // The purchase started nothing in version 2 (it is not the trigger), and nothing was sent.
    assert_eq!(
        t.count(
            "SELECT count() FROM campaign_runs FINAL WHERE version = 2 AND state LIKE '%\"run\"%'"
        )
        .await,
        0
    );
    assert!(message_log(&t).await.is_empty());
    assert!(smtp.mails().is_empty());
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_renders_what_a_customer_would_get_for_their_latest_cart_and_writes_nothing() {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let t = TestCollector::start_with(clickhouse_url(), |c| c.smtp_url = url).await;
    let p = t.create_partner("Shop").await;
    put_profile(
        &t,
        &p,
        "c-1",
        json!({"first_name": "Ann", "email": "ann@example.com"}),
    )
    .await;
    put_profile(&t, &p, "c-2", json!({"first_name": "Bob"})).await;
    let id = create_campaign(&t, &p, abandoned_cart(3600)).await;
    send(&t, &p, "added_to_cart", "c-1", &product("Rain Coat")).await;
    send(&t, &p, "added_to_cart", "c-1", &product("Trail Boots")).await;
    send(&t, &p, "added_to_cart", "c-2", &product("Hat")).await;
    let path = format!("/v1/admin/partners/{}/campaigns/{id}/dry-run", p.id);
    let dry = |body: Value| {
        let path = path.clone();
        let t = &t;
        async move { t.admin(Method::POST, &path, Some(body)).await }
    };

    let (status, run) = dry(json!({"customer_id": "c-1"})).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["started"], true, "{run}");
    assert_eq!(run["event"]["name"], "added_to_cart");
    let messages = run["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{run}");
    let m = &messages[0];
    assert_eq!(m["would"], "send", "{run}");
    assert_eq!(m["channel"], "email");
    assert_eq!(m["recipient"], "ann@example.com");
    // The latest cart (Trail Boots), rendered with the profile as it is.
    assert_eq!(m["subject"], "Still thinking about Trail Boots?");
    assert!(m["body"].as_str().unwrap().contains("Hi Ann"), "{m}");
    let event_ms = parse_rfc3339_ms(run["event"]["event_time"].as_str().unwrap()).unwrap();
    let due_ms = parse_rfc3339_ms(m["due_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        due_ms - event_ms,
        3_600_000,
        "sent when the hour's wait ends"
    );
    assert!(run["ends"].as_str().unwrap().starts_with("done"), "{run}");

    // Bob has no email: the message would be skipped, with the reason.
    let (status, run) = dry(json!({"customer_id": "c-2"})).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["messages"][0]["would"], "skip", "{run}");
    assert!(
        run["messages"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("no_email"),
        "{run}"
    );

    // Against a given event: the Rain Coat cart.
    let rain_coat: String =
        t.db.query(
            "SELECT toString(event_id) FROM events \
             WHERE customer_id = 'c-1' AND context_strings['product'] = 'Rain Coat'",
        )
        .fetch_one()
        .await
        .unwrap();
    let (status, run) = dry(json!({"customer_id": "c-1", "event_id": rain_coat})).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(
        run["messages"][0]["subject"],
        "Still thinking about Rain Coat?"
    );

    // Clear errors: nobody's cart, a bad or unknown event id, no customer.
    for (body, want_status, code) in [
        (json!({"customer_id": "c-9"}), 409, "no_trigger_event"),
        (
            json!({"customer_id": "c-1", "event_id": "nope"}),
            400,
            "invalid_event_id",
        ),
        (
            json!({"customer_id": "c-1", "event_id": "01a22e22-085b-7411-86b1-acdf7238604a"}),
            404,
            "not_found",
        ),
        (json!({"customer_id": ""}), 400, "invalid_customer_id"),
    ] {
        let (status, answer) = dry(body.clone()).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (want_status, Some(code)),
            "{body}: {answer}"
        );
    }
    // Nothing was written: no message, and the real runs still wait.
    assert!(message_log(&t).await.is_empty());
    assert!(smtp.mails().is_empty());
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_of_the_collector_mid_wait_sends_the_email_once() {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let mut t = TestCollector::start_with(clickhouse_url(), |c| c.smtp_url = url.clone()).await;
    let p = t.create_partner("Shop").await;
    put_profile(&t, &p, "c-1", json!({"email": "ann@example.com"})).await;
    create_campaign(&t, &p, abandoned_cart(4)).await;
    send(&t, &p, "added_to_cart", "c-1", &product("Trail Boots")).await;
    eventually("the run waiting in campaign_runs", 30, || async {
        let n = t
            .count("SELECT count() FROM campaign_runs FINAL WHERE wake_at IS NOT NULL")
            .await;
        (n == 1).then_some(())
    })
    .await;
    t.running.take().unwrap().stop().await.unwrap();
    assert!(
        smtp.mails().is_empty(),
        "the first collector stopped before the 4-second wait ended (a machine too slow for this test?)"
    );

    let database = t.database.clone();
    let t2 = TestCollector::start_with(clickhouse_url(), |c| {
        c.clickhouse_database = database;
        c.smtp_url = url.clone();
    })
    .await;
    let mails = smtp.wait_for(1, 60).await;
    assert!(mails[0].contains("Trail Boots"), "{}", mails[0]);
    let log = eventually("the message logged as sent", 30, || async {
        let log = message_log(&t2).await;
        (log.len() == 1 && log[0].1 == "sent").then_some(log)
    })
    .await;
    assert_eq!(log[0].2, 1, "sent in one attempt: {log:?}");
    // What a next start would find: no run waiting and nothing queued, so nothing to send again.
    assert_eq!(
        t2.count("SELECT count() FROM campaign_runs FINAL WHERE wake_at IS NOT NULL")
            .await,
        0
    );
    t2.finish().await;
    assert_eq!(
        smtp.mails().len(),
        1,
        "exactly one email across the restart"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_campaign_filters_are_checked_in_clickhouse_for_the_one_customer_with_the_field_code_of_the_event(
) {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let t = TestCollector::start_with(clickhouse_url(), |c| c.smtp_url = url).await;
    let p = t.create_partner("Shop").await;
    for c in ["c-1", "c-2"] {
        put_profile(&t, &p, c, json!({"email": format!("{c}@example.com")})).await;
    }
    // Only customers who viewed the product they put in the cart.
    let mut campaign = abandoned_cart(1);
    campaign["filters"] = json!({"event": {"name": "product_viewed",
        "where": [{"key": "product", "op": "eq", "value": "$product"}]}});
    create_campaign(&t, &p, campaign).await;
    send(&t, &p, "product_viewed", "c-1", &product("Trail Boots")).await;
    send(&t, &p, "product_viewed", "c-2", &product("Rain Coat")).await;

    // c-2 first: were it let in, its message would be queued before c-1's.
    send(&t, &p, "added_to_cart", "c-2", &product("Trail Boots")).await;
    send(&t, &p, "added_to_cart", "c-1", &product("Trail Boots")).await;

    let mails = smtp.wait_for(1, 60).await;
    assert!(
        mails[0].contains("X-Envelope-To: c-1@example.com"),
        "{}",
        mails[0]
    );
    let log = message_log(&t).await;
    assert_eq!(log.len(), 1, "c-2 did not pass the filters: {log:?}");
    assert_eq!(log[0].0, "c-1");
    assert_eq!(smtp.mails().len(), 1);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_smtp_server_that_is_down_delays_the_email_with_the_failure_logged_and_it_is_sent_once_back(
) {
    // A port nobody listens on until the sink starts there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("smtp://127.0.0.1:{port}");
    let t = TestCollector::start_with(clickhouse_url(), |c| c.smtp_url = url).await;
    let p = t.create_partner("Shop").await;
    put_profile(&t, &p, "c-1", json!({"email": "ann@example.com"})).await;
    create_campaign(&t, &p, abandoned_cart(1)).await;
    send(&t, &p, "added_to_cart", "c-1", &product("Trail Boots")).await;

    let reason: String = eventually("the failed attempt in the message log", 60, || async {
        t.db.query(
            "SELECT error FROM campaign_messages FINAL WHERE status = 'failed' AND attempts >= 1",
        )
        .fetch_optional::<String>()
        .await
        .unwrap()
    })
    .await;
    assert!(reason.starts_with("SMTP"), "{reason}");

    let smtp = SmtpSink::start_on(port).await;
    let mails = smtp.wait_for(1, 60).await;
    assert!(mails[0].contains("Trail Boots"), "{}", mails[0]);
    let log = eventually("the message logged as sent", 30, || async {
        let log = message_log(&t).await;
        (log.len() == 1 && log[0].1 == "sent").then_some(log)
    })
    .await;
    assert!(log[0].2 >= 2, "sent on a retry: {log:?}");
    assert!(
        mails[0].contains(&format!("Message-ID: <{}@eventline>", log[0].3)),
        "the retry carries the same id: {}",
        mails[0]
    );
    assert_eq!(smtp.mails().len(), 1);
    t.finish().await;
}
