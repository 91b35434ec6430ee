//! Channels end to end: the webhook channel against a real HTTP receiver process
//! (`tests/webhook/receiver.py`, recording each request as a file), channel settings with
//! write-only secrets, activation refused without a gateway, and the message log API.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::campaigns_run::{create_campaign, product, put_profile, send, SmtpSink};
use crate::common::*;

pub const SECRET: &str = "whsec_0123456789abcdef0123456789";

/// A real HTTP server standing for the partner's endpoint; ends with the test (stdin closes).
pub struct Receiver {
    dir: PathBuf,
    pub port: u16,
    _child: Child,
}

impl Receiver {
    /// Listens on `port` (0: any free port); the first `fail_first` requests get a 503.
    pub async fn start_on(port: u16, fail_first: u32) -> Receiver {
        Receiver::start_with(port, fail_first, &[]).await
    }

    /// [`Receiver::start_on`] with more arguments of `receiver.py` (`--tls-cert`, ...).
    pub async fn start_with(port: u16, fail_first: u32, extra: &[&std::ffi::OsStr]) -> Receiver {
        let dir = std::env::temp_dir().join(format!("eventline-webhook-{}", uuid::Uuid::new_v4()));
        let mut child = Command::new("python3")
            .arg(repo_root().join("tests/webhook/receiver.py"))
            .arg("--dir")
            .arg(&dir)
            .arg("--port")
            .arg(port.to_string())
            .arg("--fail-first")
            .arg(fail_first.to_string())
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 starts the webhook receiver");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the receiver says where it listens within 30 s")
            .unwrap()
            .expect("the receiver printed a line");
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the receiver: {line}"));
        Receiver {
            dir,
            port,
            _child: child,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/eventline", self.port)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "json"));
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Value> {
        eventually(&format!("{n} request(s) at the receiver"), secs, || async {
            let requests = self.requests();
            (requests.len() >= n).then_some(requests)
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A header of a recorded request, whatever its case.
pub fn header<'a>(request: &'a Value, name: &str) -> &'a str {
    request["headers"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header: {request}"))
}

/// Checks `Eventline-Signature: t=<ts>,v1=<hex>` by recomputing the HMAC here.
fn assert_signed(request: &Value, secret: &str) {
    let signature = header(request, "Eventline-Signature");
    let (t, v1) = signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .unwrap_or_else(|| panic!("signature not t=..,v1=..: {signature}"));
    let timestamp: i64 = t.parse().unwrap();
    assert!(
        (now_ms() / 1000 - timestamp).abs() < 300,
        "the timestamp is the attempt's time: {t}"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", request["body"].as_str().unwrap()).as_bytes());
    assert_eq!(
        hex::encode(mac.finalize().into_bytes()),
        v1,
        "the signature is HMAC-SHA256 of `t.body` with the partner's secret"
    );
}

/// Added to cart: a webhook with the product at once.
pub fn cart_webhook() -> Value {
    json!({
        "name": "Cart webhook",
        "status": "active",
        "trigger": {"event": {"name": "added_to_cart"}},
        "steps": [{"send": {"channel": "webhook", "template": {
            "body": "{{ client.customer_id }} added {{ client.eventContext.product }}"
        }}}]
    })
}

pub async fn put_channel(
    t: &TestCollector,
    p: &Partner,
    channel: &str,
    body: Value,
) -> (u16, Value) {
    t.admin(
        Method::PUT,
        &format!("/v1/admin/partners/{}/channels/{channel}", p.id),
        Some(body),
    )
    .await
}

pub async fn get_json(t: &TestCollector, path: &str) -> Value {
    let (status, body) = t.admin(Method::GET, path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_step_posts_the_message_signed_with_the_partner_secret_under_the_message_id_as_idempotency_key(
) {
    let receiver = Receiver::start_on(0, 0).await;
    let t = TestCollector::start_with(clickhouse_url(), |_| {}).await;
    let p = t.create_partner("Shop").await;
    let (status, body) = put_channel(
        &t,
        &p,
        "webhook",
        json!({"url": receiver.url(), "secret": SECRET}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["secret_set"], true);
    let campaign = create_campaign(&t, &p, cart_webhook()).await;
    send(&t, &p, "added_to_cart", "c-1", &product("Trail Boots")).await;

    let requests = receiver.wait_for(1, 60).await;
    let request = &requests[0];
    assert_eq!(request["path"], "/hooks/eventline");
    assert_eq!(header(request, "Content-Type"), "application/json");
    assert_signed(request, SECRET);
    let payload: Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
    assert_eq!(payload["body"], "c-1 added Trail Boots", "{payload}");
    assert_eq!(payload["customer_id"], "c-1");
    assert_eq!(payload["campaign_id"], campaign.as_str());
    assert_eq!(payload["campaign_version"], 1);
    assert_eq!(payload["step"], "steps[0]");

    let log = eventually("the message logged as sent", 30, || async {
        let page = get_json(
            &t,
            &format!("/v1/admin/partners/{}/campaigns/{campaign}/messages", p.id),
        )
        .await;
        (page["messages"][0]["status"] == "sent").then_some(page)
    })
    .await;
    let message = &log["messages"][0];
    assert_eq!(
        header(request, "Idempotency-Key"),
        message["message_id"].as_str().unwrap(),
        "the idempotency key is the logged message id"
    );
    assert_eq!(payload["message_id"], message["message_id"]);
    assert_eq!(message["channel"], "webhook");
    assert_eq!(message["recipient"], receiver.url().as_str());
    assert_eq!(message["attempts"], 1);
    assert_eq!(message["last_error"], Value::Null);
    assert_eq!(log["next_cursor"], Value::Null);
    assert_eq!(receiver.requests().len(), 1);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_receiver_that_is_down_delays_the_message_with_each_failure_logged_and_it_is_delivered_once(
) {
    // A port nobody listens on until the receiver starts there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hooks/eventline");
    let t = TestCollector::start_with(clickhouse_url(), |_| {}).await;
    let p = t.create_partner("Shop").await;
    let (status, body) =
        put_channel(&t, &p, "webhook", json!({"url": url, "secret": SECRET})).await;
    assert_eq!(status, 200, "{body}");
    create_campaign(&t, &p, cart_webhook()).await;
    send(&t, &p, "added_to_cart", "c-1", &product("Trail Boots")).await;

    let log_path = format!("/v1/admin/partners/{}/customers/c-1/messages", p.id);
    let failed = eventually("the failed attempt in the message log", 60, || async {
        let page = get_json(&t, &log_path).await;
        (page["messages"][0]["status"] == "failed").then_some(page["messages"][0].clone())
    })
    .await;
    let reason = failed["last_error"].as_str().unwrap();
    assert!(reason.starts_with("webhook: "), "{reason}");
    assert!(failed["next_attempt_at"].is_string(), "{failed}");

    // Back, but busy at first: one 503, then a 200.
    let receiver = Receiver::start_on(port, 1).await;
    let requests = receiver.wait_for(2, 60).await;
    assert_eq!(requests[0]["status"], 503);
    assert_eq!(requests[1]["status"], 200);
    let sent = eventually("the message logged as sent", 30, || async {
        let page = get_json(&t, &log_path).await;
        (page["messages"][0]["status"] == "sent").then_some(page)
    })
    .await;
    let message = &sent["messages"][0];
    assert_eq!(sent["messages"].as_array().unwrap().len(), 1, "{sent}");
    assert!(message["attempts"].as_u64().unwrap() >= 3, "{message}");
    let id = message["message_id"].as_str().unwrap();
    for request in &requests {
        assert_eq!(
            header(request, "Idempotency-Key"),
            id,
            "every attempt, one key"
        );
        assert_signed(request, SECRET);
    }
    // Sent is final: nothing is posted again (the delivery task is drained before the check).
    t.finish().await;
    let delivered: Vec<Value> = receiver
        .requests()
        .into_iter()
        .filter(|r| r["status"] == 200)
        .collect();
    assert_eq!(delivered.len(), 1, "delivered once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_that_sends_by_a_channel_without_a_gateway_cannot_be_activated() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Shop").await;
    let campaigns = format!("/v1/admin/partners/{}/campaigns", p.id);

    // Created active: refused, naming the channel.
    let (status, body) = t
        .admin(
            Method::POST,
            &campaigns,
            Some(json!({ "definition": cart_webhook() })),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "channel_not_configured");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`webhook`"),
        "{body}"
    );

    // A draft saves; its activation is refused until the gateway is set.
    let mut draft = cart_webhook();
    draft["status"] = json!("draft");
    let id = create_campaign(&t, &p, draft).await;
    let activate = format!("{campaigns}/{id}/activate");
    let (status, body) = t.admin(Method::POST, &activate, None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "channel_not_configured");
    let (status, body) = put_channel(
        &t,
        &p,
        "webhook",
        json!({"url": "http://127.0.0.1:9/hooks", "secret": SECRET}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = t.admin(Method::POST, &activate, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "active");

    // SMS without its gateway: refused (campaigns_gateways.rs sets one).
    let sms = json!({
        "name": "Cart SMS", "status": "active",
        "trigger": {"event": {"name": "added_to_cart"}},
        "steps": [{"send": {"channel": "sms", "template": {"body": "x"}}}]
    });
    let (status, body) = t
        .admin(Method::POST, &campaigns, Some(json!({ "definition": sms })))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("`sms`"),
        "{body}"
    );
    // Email needs no setting: the collector's SMTP server is its gateway.
    let email = crate::campaigns_run::abandoned_cart(60);
    create_campaign(&t, &p, email).await;
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn channel_settings_are_validated_and_the_secret_is_never_returned() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Shop").await;
    for (body, code, field) in [
        (
            json!({"url": "ftp://hooks.example.com/x", "secret": SECRET}),
            "invalid_webhook_url",
            "url",
        ),
        (
            json!({"url": "http://ann:pw@hooks.example.com/x", "secret": SECRET}),
            "invalid_webhook_url",
            "url",
        ),
        (
            json!({"url": "http://hooks.example.com/x", "secret": "short"}),
            "invalid_webhook_secret",
            "secret",
        ),
        // The first write needs a secret.
        (
            json!({"url": "http://hooks.example.com/x"}),
            "invalid_webhook_secret",
            "secret",
        ),
        (
            json!({"url": "http://hooks.example.com/x", "secret": SECRET, "token": "x"}),
            "invalid_request_body",
            "body",
        ),
    ] {
        let (status, answer) = put_channel(&t, &p, "webhook", body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    let (status, answer) = put_channel(&t, &p, "email", json!({"from": "not a mailbox"})).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("invalid_from_address")),
        "{answer}"
    );
    let (status, _) = put_channel(&t, &p, "carrier_pigeon", json!({})).await;
    assert_eq!(status, 404);

    let (status, _) = put_channel(
        &t,
        &p,
        "webhook",
        json!({"url": "http://hooks.example.com/x", "secret": SECRET}),
    )
    .await;
    assert_eq!(status, 200);
    // A new URL without a secret keeps the secret.
    let (status, body) = put_channel(
        &t,
        &p,
        "webhook",
        json!({"url": "http://hooks.example.com/y"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = put_channel(
        &t,
        &p,
        "email",
        json!({"from": "Demo Shop <shop@example.com>"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let channels = format!("/v1/admin/partners/{}/channels", p.id);
    let webhook = get_json(&t, &format!("{channels}/webhook")).await;
    assert_eq!(webhook["url"], "http://hooks.example.com/y");
    assert_eq!(webhook["secret_set"], true);
    assert_eq!(webhook["configured"], true);
    let all = get_json(&t, &channels).await;
    let email = all["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "email")
        .unwrap();
    assert_eq!(email["from"], "Demo Shop <shop@example.com>", "{all}");
    let audit = t.audit(&format!("?partner_id={}", p.id)).await;
    for shown in [
        webhook.to_string(),
        all.to_string(),
        json!(audit).to_string(),
    ] {
        assert!(!shown.contains(SECRET), "the secret leaked: {shown}");
    }
    assert!(
        audit.iter().any(|a| a["action"] == "channel.update"),
        "{audit:?}"
    );

    let (status, _) = t
        .admin(Method::DELETE, &format!("{channels}/webhook"), None)
        .await;
    assert_eq!(status, 204);
    let webhook = get_json(&t, &format!("{channels}/webhook")).await;
    assert_eq!(
        (
            webhook["configured"].as_bool(),
            webhook["secret_set"].as_bool()
        ),
        (Some(false), Some(false))
    );
    let (status, _) = t
        .admin(Method::DELETE, &format!("{channels}/webhook"), None)
        .await;
    assert_eq!(status, 404);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_message_log_lists_a_customers_messages_newest_first_in_keyset_pages() {
    let receiver = Receiver::start_on(0, 0).await;
    let t = TestCollector::start().await;
    let p = t.create_partner("Shop").await;
    let (status, _) = put_channel(
        &t,
        &p,
        "webhook",
        json!({"url": receiver.url(), "secret": SECRET}),
    )
    .await;
    assert_eq!(status, 200);
    // Three messages per cart: two webhooks and an email the customer (no address) cannot get.
    let campaign = json!({
        "name": "Three", "status": "active",
        "trigger": {"event": {"name": "added_to_cart"}},
        "steps": [
            {"send": {"channel": "webhook", "template": {"body": "first"}}},
            {"send": {"channel": "webhook", "template": {"body": "second"}}},
            {"send": {"channel": "email", "template": {"subject": "s", "body": "third"}}}
        ]
    });
    let campaign_id = create_campaign(&t, &p, campaign).await;
    send(&t, &p, "added_to_cart", "c-1", &product("Trail Boots")).await;
    receiver.wait_for(2, 60).await;
    let path = format!("/v1/admin/partners/{}/customers/c-1/messages", p.id);
    let all = eventually("three messages, none pending", 30, || async {
        let page = get_json(&t, &path).await;
        let messages = page["messages"].as_array().unwrap().clone();
        (messages.len() == 3
            && messages
                .iter()
                .all(|m| m["status"] == "sent" || m["status"] == "skipped"))
        .then_some(messages)
    })
    .await;
    let skipped: Vec<&Value> = all.iter().filter(|m| m["status"] == "skipped").collect();
    assert_eq!(skipped.len(), 1, "{all:?}");
    assert_eq!(skipped[0]["channel"], "email");
    assert_eq!(
        skipped[0]["last_error"],
        "no_email: the customer's profile has no email"
    );
    for m in &all {
        assert_eq!(m["campaign_id"], campaign_id.as_str());
        assert_eq!(m["version"], 1);
        assert_eq!(m["customer_id"], "c-1");
    }
    let order: Vec<(String, String)> = all
        .iter()
        .map(|m| {
            (
                m["queued_at"].as_str().unwrap().to_string(),
                m["message_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Newest first; messages queued in one batch share their time, and ClickHouse orders
    // those by its own UUID order (not the text's), which the cursor follows too.
    let times: Vec<&String> = order.iter().map(|(t, _)| t).collect();
    let mut newest_first = times.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, newest_first, "newest first");

    // Pages of 2: the same three, in the same order, without overlap.
    let first = get_json(&t, &format!("{path}?limit=2")).await;
    assert_eq!(first["messages"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = get_json(&t, &format!("{path}?limit=2&cursor={cursor}")).await;
    assert_eq!(second["messages"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_cursor"], Value::Null);
    let paged: Vec<&Value> = first["messages"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["messages"].as_array().unwrap())
        .collect();
    assert_eq!(
        paged.iter().map(|m| &m["message_id"]).collect::<Vec<_>>(),
        all.iter().map(|m| &m["message_id"]).collect::<Vec<_>>()
    );
    // Another customer has none; a bad cursor or limit is a 400.
    let other = get_json(
        &t,
        &format!("/v1/admin/partners/{}/customers/c-2/messages", p.id),
    )
    .await;
    assert_eq!(other["messages"], json!([]));
    for (query, code) in [
        ("cursor=nope", "invalid_cursor"),
        ("limit=0", "invalid_limit"),
    ] {
        let (status, body) = t.admin(Method::GET, &format!("{path}?{query}"), None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}"
        );
    }
    let (status, _) = t
        .admin(
            Method::GET,
            &format!(
                "/v1/admin/partners/{}/campaigns/{}/messages",
                p.id,
                uuid::Uuid::new_v4()
            ),
            None,
        )
        .await;
    assert_eq!(status, 404, "an unknown campaign");
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partners_from_address_is_the_from_of_its_campaign_email() {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let t = TestCollector::start_with(clickhouse_url(), |c| c.smtp_url = url).await;
    let p = t.create_partner("Shop").await;
    let (status, body) = put_channel(
        &t,
        &p,
        "email",
        json!({"from": "Demo Shop <shop@example.com>"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    put_profile(&t, &p, "c-1", json!({"email": "ann@example.com"})).await;
    create_campaign(&t, &p, crate::campaigns_run::abandoned_cart(1)).await;
    send(&t, &p, "added_to_cart", "c-1", &product("Trail Boots")).await;
    let mails = smtp.wait_for(1, 60).await;
    assert!(
        mails[0].contains("From: \"Demo Shop\" <shop@example.com>")
            || mails[0].contains("From: Demo Shop <shop@example.com>"),
        "{}",
        mails[0]
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn erasing_a_partner_erases_its_channel_settings_and_secret() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Shop").await;
    let other = t.create_partner("Other").await;
    for partner in [&p, &other] {
        let (status, _) = put_channel(
            &t,
            partner,
            "webhook",
            json!({"url": "http://hooks.example.com/x", "secret": SECRET}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let count =
        |id: &str| format!("SELECT count() FROM partner_channels WHERE partner_id = '{id}'");
    assert_eq!(t.count(&count(&p.id)).await, 1);
    let job = t
        .queue_erasure(&format!("/v1/admin/partners/{}", p.id))
        .await;
    t.wait_for_job(&job, 60).await;
    assert_eq!(t.count(&count(&p.id)).await, 0, "every row version erased");
    assert_eq!(
        t.count(&count(&other.id)).await,
        1,
        "another partner's kept"
    );
    t.finish().await;
}
