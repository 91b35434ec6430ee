//! System-event triggers: a system event (no customer) fans out to every customer the
//! campaign's filters select, with `$field_code` values taken from the event, a page at a time,
//! durably (a restart mid-fan-out neither loses customers nor sends twice), through the real
//! SMTP server.

use std::collections::BTreeMap;

use event_model::{ContextValue, Event, EventKind};
use reqwest::Method;
use serde_json::{json, Value};

use crate::campaigns_run::{create_campaign, put_profile, SmtpSink};
use crate::common::*;

/// Declares `product` (string), the customer type `product_viewed` and the system type
/// `product_back_in_stock`, both with `product`.
async fn declare_catalogue(t: &TestCollector, p: &Partner) {
    let base = format!("/v1/admin/partners/{}", p.id);
    let (status, body) = t
        .admin(
            Method::POST,
            &format!("{base}/event-properties"),
            Some(json!({"code": "product", "name": "Product", "type": "string"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    for (code, kind) in [
        ("product_viewed", "customer"),
        ("product_back_in_stock", "system"),
    ] {
        let (status, body) = t
            .admin(
                Method::POST,
                &format!("{base}/event-types"),
                Some(json!({"code": code, "name": code, "kind": kind,
                            "properties": [{"code": "product", "required": true}]})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

/// Back in stock: everyone who viewed the product gets one email naming it.
fn back_in_stock() -> Value {
    json!({
        "name": "Back in stock",
        "status": "active",
        "trigger": {"system_event": {"name": "product_back_in_stock"}},
        "filters": {"event": {"name": "product_viewed",
            "where": [{"key": "product", "op": "eq", "value": "$product"}]}},
        "steps": [{"send": {"channel": "email", "template": {
            "subject": "{{ client.eventContext.product }} is back",
            "body": "<p>Hi {{ client.first_name | default(\"friend\") }}, {{ client.eventContext.product }} is back in stock.</p>"
        }}}]
    })
}

fn product(name: &str) -> BTreeMap<String, ContextValue> {
    [("product".to_string(), ContextValue::String(name.into()))].into()
}

/// A customer event with the given ids (`None`: not sent).
fn customer_event(
    name: &str,
    customer: Option<&str>,
    anonymous: Option<&str>,
    context: BTreeMap<String, ContextValue>,
) -> Event {
    Event {
        customer_id: customer.map(Into::into),
        anonymous_id: anonymous.map(Into::into),
        context,
        ..event(name, "unused")
    }
}

async fn send_events(t: &TestCollector, p: &Partner, events: Vec<Event>) {
    let (status, body) = t.send_server(&p.api_key, &batch(p, events)).await;
    assert_eq!(status, 200, "{body}");
}

/// Sends the system event `product_back_in_stock` for `name`; returns its id.
async fn back_in_stock_event(t: &TestCollector, p: &Partner, name: &str) -> String {
    let system = Event {
        kind: EventKind::System,
        customer_id: None,
        anonymous_id: None,
        session_id: None,
        context: product(name),
        ..event("product_back_in_stock", "unused")
    };
    let id = system.event_id.clone();
    send_events(t, p, vec![system]).await;
    id
}

/// The `X-Envelope-To` of each mail.
fn recipients(mails: &[String]) -> Vec<String> {
    mails
        .iter()
        .map(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("X-Envelope-To: "))
                .unwrap_or_else(|| panic!("no X-Envelope-To in {m}"))
                .trim()
                .to_string()
        })
        .collect()
}

/// Waits until the fan-out of `event_id` is done; returns the customers it selected.
async fn fanout_done(t: &TestCollector, event_id: &str) -> u64 {
    eventually("the fan-out recorded as done", 60, || async {
        // One row per engine lane's share; done when every share's row is.
        t.db.query(
            "SELECT sum(customers) FROM campaign_fanouts FINAL \
             WHERE event_id = {e:String} HAVING countIf(status != 'done') = 0 AND count() > 0",
        )
        .param("e", event_id)
        .fetch_optional::<u64>()
        .await
        .unwrap()
    })
    .await
}

/// The message log as (customer, status), by customer.
async fn log_by_customer(t: &TestCollector) -> Vec<(String, String)> {
    t.db.query(
        "SELECT customer_id, status FROM campaign_messages FINAL ORDER BY customer_id, message_id",
    )
    .fetch_all()
    .await
    .unwrap()
}

/// Waits until no message of the log is queued or failed; returns the log.
async fn settled_log(t: &TestCollector, n: usize) -> Vec<(String, String)> {
    eventually(
        &format!("{n} messages logged, none pending"),
        60,
        || async {
            let log = log_by_customer(t).await;
            (log.len() == n && log.iter().all(|(_, s)| s == "sent" || s == "skipped"))
                .then_some(log)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn back_in_stock_notifies_every_customer_who_viewed_the_product_and_nobody_else() {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    // Two customers a page: the five selected take three pages.
    let t = TestCollector::start_with(clickhouse_url(), |c| {
        c.smtp_url = url;
        c.campaign_fanout_page = 2;
    })
    .await;
    let p = t.create_partner("Shop").await;
    declare_catalogue(&t, &p).await;
    for (c, name) in [
        ("c-ann", "Ann"),
        ("c-bob", "Bob"),
        ("c-cat", "Cat"),
        ("c-eve", "Eve"),
        ("c-fay", "Fay"),
    ] {
        put_profile(
            &t,
            &p,
            c,
            json!({"first_name": name, "email": format!("{c}@example.com")}),
        )
        .await;
    }
    // c-dan viewed Boots but has no email: logged as skipped, never sent.
    put_profile(&t, &p, "c-dan", json!({"first_name": "Dan"})).await;
    send_events(
        &t,
        &p,
        vec![
            customer_event("product_viewed", Some("c-ann"), None, product("Boots")),
            // Another product only.
            customer_event("product_viewed", Some("c-bob"), None, product("Rain Coat")),
            // Viewed anonymously, then logged in on the same device: the view is Cat's.
            customer_event("product_viewed", None, Some("a-cat"), product("Boots")),
            customer_event("page_viewed", Some("c-cat"), Some("a-cat"), BTreeMap::new()),
            // An anonymous visitor who never logged in is nobody's customer.
            customer_event("product_viewed", None, Some("a-ghost"), product("Boots")),
            customer_event("product_viewed", Some("c-dan"), None, product("Boots")),
            customer_event("product_viewed", Some("c-eve"), None, product("Boots")),
            customer_event("product_viewed", Some("c-fay"), None, product("Boots")),
        ],
    )
    .await;
    create_campaign(&t, &p, back_in_stock()).await;

    let event_id = back_in_stock_event(&t, &p, "Boots").await;

    assert_eq!(
        fanout_done(&t, &event_id).await,
        5,
        "ann, cat, dan, eve, fay"
    );
    let log = settled_log(&t, 5).await;
    let want: Vec<(String, String)> = [
        ("c-ann", "sent"),
        ("c-cat", "sent"),
        ("c-dan", "skipped"),
        ("c-eve", "sent"),
        ("c-fay", "sent"),
    ]
    .iter()
    .map(|(c, s)| (c.to_string(), s.to_string()))
    .collect();
    assert_eq!(log, want);
    let mails = smtp.wait_for(4, 60).await;
    let mut to = recipients(&mails);
    to.sort();
    assert_eq!(
        to,
        [
            "c-ann@example.com",
            "c-cat@example.com",
            "c-eve@example.com",
            "c-fay@example.com"
        ]
    );
    let cat = mails
        .iter()
        .find(|m| m.contains("X-Envelope-To: c-cat@example.com"))
        .unwrap();
    assert!(cat.contains("Subject: Boots is back"), "{cat}");
    assert!(cat.contains("Hi Cat, Boots is back in stock."), "{cat}");
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fan_out_larger_than_one_page_in_three_engine_lanes_reaches_every_selected_customer_once()
{
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    // Three lanes: each fans out to its own share of the customers, selected in SQL.
    let t = TestCollector::start_with(clickhouse_url(), |c| {
        c.smtp_url = url;
        c.campaign_fanout_page = 7;
        c.campaign_lanes = 3;
    })
    .await;
    let p = t.create_partner("Shop").await;
    declare_catalogue(&t, &p).await;
    let customers: Vec<String> = (0..40).map(|i| format!("c-{i:02}")).collect();
    for c in &customers {
        put_profile(&t, &p, c, json!({"email": format!("{c}@example.com")})).await;
    }
    // Each customer viewed Boots twice (one message each all the same), and c-00 a Hat too.
    let mut views: Vec<Event> = customers
        .iter()
        .flat_map(|c| {
            [
                customer_event("product_viewed", Some(c), None, product("Boots")),
                customer_event("product_viewed", Some(c), None, product("Boots")),
            ]
        })
        .collect();
    views.push(customer_event(
        "product_viewed",
        Some("c-00"),
        None,
        product("Hat"),
    ));
    send_events(&t, &p, views).await;
    create_campaign(&t, &p, back_in_stock()).await;

    let event_id = back_in_stock_event(&t, &p, "Boots").await;

    assert_eq!(fanout_done(&t, &event_id).await, 40);
    let shares: Vec<(u32, u32, u64)> =
        t.db.query(
            "SELECT shard_index, shard_count, customers FROM campaign_fanouts FINAL \
             WHERE event_id = {e:String} ORDER BY shard_index",
        )
        .param("e", &event_id)
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        shares.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(),
        [(0, 3), (1, 3), (2, 3)],
        "one progress row per lane"
    );
    assert!(
        shares.iter().all(|s| s.2 > 0),
        "every lane reached some: {shares:?}"
    );
    let log = settled_log(&t, 40).await;
    assert!(log.iter().all(|(_, s)| s == "sent"), "{log:?}");
    let mails = smtp.wait_for(40, 60).await;
    let mut to = recipients(&mails);
    to.sort();
    let want: Vec<String> = customers
        .iter()
        .map(|c| format!("{c}@example.com"))
        .collect();
    assert_eq!(to, want, "each of the 40 once");
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_steps_cap_applies_to_fan_out_messages_so_a_second_back_in_stock_within_a_day_is_skipped()
{
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    // One customer a page: the cap is judged across pages, and within each.
    let t = TestCollector::start_with(clickhouse_url(), |c| {
        c.smtp_url = url;
        c.campaign_fanout_page = 1;
    })
    .await;
    let p = t.create_partner("Shop").await;
    declare_catalogue(&t, &p).await;
    for c in ["c-ann", "c-bob"] {
        put_profile(&t, &p, c, json!({"email": format!("{c}@example.com")})).await;
    }
    send_events(
        &t,
        &p,
        vec![
            customer_event("product_viewed", Some("c-ann"), None, product("Boots")),
            customer_event("product_viewed", Some("c-bob"), None, product("Boots")),
        ],
    )
    .await;
    let mut campaign = back_in_stock();
    campaign["steps"][0]["send"]["cap"] = json!({"max": 1, "per": {"days": 1}});
    create_campaign(&t, &p, campaign).await;

    let first = back_in_stock_event(&t, &p, "Boots").await;
    assert_eq!(fanout_done(&t, &first).await, 2);
    settled_log(&t, 2).await;
    // Another back_in_stock event (another id): new message ids, the same step.
    let second = back_in_stock_event(&t, &p, "Boots").await;
    assert_eq!(fanout_done(&t, &second).await, 2);
    let log = settled_log(&t, 4).await;
    let sent: Vec<&str> = log
        .iter()
        .filter(|(_, s)| s == "sent")
        .map(|(c, _)| c.as_str())
        .collect();
    assert_eq!(sent, ["c-ann", "c-bob"], "one message each: {log:?}");
    let capped: Vec<(String, String)> =
        t.db.query(
            "SELECT customer_id, error FROM campaign_messages FINAL \
             WHERE status = 'skipped' ORDER BY customer_id",
        )
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(capped.len(), 2, "{capped:?}");
    for (customer, error) in &capped {
        assert!(
            error.starts_with(
                "capped: the step's cap allows 1 message(s) to a customer per 1 day(s)"
            ),
            "{customer}: {error}"
        );
    }
    smtp.wait_for(2, 60).await;
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fan_outs_assign_event_stores_one_event_for_each_selected_customer_through_the_sink() {
    let t = TestCollector::start_with(clickhouse_url(), |c| {
        c.campaign_fanout_page = 2;
    })
    .await;
    let p = t.create_partner("Shop").await;
    declare_catalogue(&t, &p).await;
    let (status, body) = t
        .admin(
            Method::POST,
            &format!("/v1/admin/partners/{}/event-types", p.id),
            Some(
                json!({"code": "told_back_in_stock", "name": "Told", "kind": "customer",
                        "properties": [{"code": "product", "required": true}]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let customers = ["c-ann", "c-bob", "c-cat"];
    let mut views: Vec<Event> = customers
        .iter()
        .map(|c| customer_event("product_viewed", Some(c), None, product("Boots")))
        .collect();
    views.push(customer_event(
        "product_viewed",
        Some("c-dan"),
        None,
        product("Hat"),
    ));
    send_events(&t, &p, views).await;
    create_campaign(
        &t,
        &p,
        json!({
            "name": "Tell",
            "status": "active",
            "trigger": {"system_event": {"name": "product_back_in_stock"}},
            "filters": {"event": {"name": "product_viewed",
                "where": [{"key": "product", "op": "eq", "value": "$product"}]}},
            "steps": [{"assign_event": {"name": "told_back_in_stock",
                "properties": {"product": "$product"}}}]
        }),
    )
    .await;

    let event_id = back_in_stock_event(&t, &p, "Boots").await;

    assert_eq!(fanout_done(&t, &event_id).await, 3);
    // Stored before the page's progress: there once the fan-out is done.
    let told: Vec<(String, String)> =
        t.db.query(
            "SELECT customer_id, context_strings['product'] FROM events \
             WHERE name = 'told_back_in_stock' AND ingest_path = 'campaign' \
             ORDER BY customer_id",
        )
        .fetch_all()
        .await
        .unwrap();
    let want: Vec<(String, String)> = customers
        .iter()
        .map(|c| (c.to_string(), "Boots".to_string()))
        .collect();
    assert_eq!(told, want);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_mid_fan_out_resumes_after_the_last_recorded_page_and_sends_each_message_once() {
    // The first collector's SMTP server is down, so what it queued waits in the log.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("smtp://127.0.0.1:{port}");
    let mut t = TestCollector::start_with(clickhouse_url(), |c| {
        c.smtp_url = down;
        c.campaign_fanout_page = 5;
    })
    .await;
    let p = t.create_partner("Shop").await;
    declare_catalogue(&t, &p).await;
    let customers: Vec<String> = (1..=20).map(|i| format!("c-{i:02}")).collect();
    for c in &customers {
        put_profile(&t, &p, c, json!({"email": format!("{c}@example.com")})).await;
    }
    send_events(
        &t,
        &p,
        customers
            .iter()
            .map(|c| customer_event("product_viewed", Some(c), None, product("Boots")))
            .collect(),
    )
    .await;
    create_campaign(&t, &p, back_in_stock()).await;
    let event_id = back_in_stock_event(&t, &p, "Boots").await;
    assert_eq!(fanout_done(&t, &event_id).await, 20);
    t.running.take().unwrap().stop().await.unwrap();

    // What a crash during the third page leaves: pages 1-2 (c-01..c-10) done and recorded;
    // page 3's messages (c-11..c-15) queued but neither its states nor its progress written;
    // nothing of pages 4-5.
    for sql in [
        "DELETE FROM campaign_runs WHERE customer_id > 'c-10'",
        "DELETE FROM campaign_messages WHERE customer_id > 'c-15'",
    ] {
        t.db.query(sql)
            .with_setting("lightweight_deletes_sync", "2")
            .execute()
            .await
            .unwrap();
    }
    t.db.query(
        "INSERT INTO campaign_fanouts SELECT partner_id, campaign_id, version, event_id, event, \
           clock_ms, 'c-10', 10, 'running', started_at, now64(3), revision + 1, shard_count, shard_index \
         FROM campaign_fanouts FINAL",
    )
    .execute()
    .await
    .unwrap();
    assert_eq!(log_by_customer(&t).await.len(), 15);
    let restarted_at: i64 =
        t.db.query("SELECT toUnixTimestamp64Milli(now64(3))")
            .fetch_one()
            .await
            .unwrap();

    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let database = t.database.clone();
    let t2 = TestCollector::start_with(clickhouse_url(), |c| {
        c.clickhouse_database = database;
        c.smtp_url = url;
        c.campaign_fanout_page = 5;
    })
    .await;
    assert_eq!(fanout_done(&t2, &event_id).await, 20);
    settled_log(&t2, 20).await;
    let mails = smtp.wait_for(20, 60).await;
    let mut to = recipients(&mails);
    to.sort();
    let want: Vec<String> = customers
        .iter()
        .map(|c| format!("{c}@example.com"))
        .collect();
    assert_eq!(to, want, "each customer once across the restart");
    // The replayed page queued nothing new: its messages are the first collector's.
    let requeued = t2
        .count(&format!(
            "SELECT count() FROM campaign_messages FINAL \
             WHERE customer_id <= 'c-15' AND toUnixTimestamp64Milli(created_at) >= {restarted_at}"
        ))
        .await;
    assert_eq!(requeued, 0);
    t2.finish().await;
    assert_eq!(smtp.mails().len(), 20);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_field_code_the_system_event_type_lacks_is_a_400_listing_its_fields() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Shop").await;
    declare_catalogue(&t, &p).await;
    let mut filters = back_in_stock();
    filters["filters"]["event"]["where"][0]["value"] = json!("$colour");
    let mut template = back_in_stock();
    template["steps"][0]["send"]["template"]["subject"] =
        json!("{{ client.eventContext.colour }} is back");
    for (definition, want_code, want_path) in [
        (filters, "unknown_field", "filters.event.where[0].value"),
        (
            template,
            "invalid_template",
            "steps[0].send.template.subject",
        ),
    ] {
        let (status, body) = t
            .admin(
                Method::POST,
                &format!("/v1/admin/partners/{}/campaigns", p.id),
                Some(json!({ "definition": definition })),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["error"]["code"], "invalid_campaign_definition",
            "{body}"
        );
        let errors = body["error"]["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{body}");
        assert_eq!(
            (errors[0]["code"].as_str(), errors[0]["path"].as_str()),
            (Some(want_code), Some(want_path)),
            "{body}"
        );
        let message = errors[0]["message"].as_str().unwrap();
        assert!(
            message.contains("`colour`") && message.contains("`product`"),
            "the message names the field and lists the event type's fields: {message}"
        );
    }
    t.finish().await;
}

/// The ```sh block of README.md's back-in-stock example.
fn readme_block() -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    readme
        .split("### Back in stock: a system event notifying interested customers")
        .nth(1)
        .expect("a back-in-stock section")
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a sh block")
        .to_string()
}

async fn bash(script: &str) -> String {
    let out = tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_back_in_stock_example_works() {
    const LOCAL_TOKEN: &str = "eventline-local-admin-token";
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let t = TestCollector::start_with(clickhouse_url(), |c| {
        c.admin_token = Some(LOCAL_TOKEN.into());
        c.smtp_url = url;
    })
    .await;
    let resp = t
        .http
        .post(t.url("/v1/admin/partners"))
        .bearer_auth(LOCAL_TOKEN)
        .json(&json!({"name": "Demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let created: Value = resp.json().await.unwrap();

    // The block as written, with the demo partner, the test collector and its database.
    let host = t.base.trim_start_matches("http://");
    let clickhouse = clickhouse_url();
    let clickhouse = clickhouse.trim_start_matches("http://");
    let script: Vec<String> = readme_block()
        .lines()
        .map(|line| {
            if line.starts_with("P=") {
                format!("P={}", created["id"].as_str().unwrap())
            } else if line.starts_with("KEY=") {
                format!("KEY={}", created["api_key"].as_str().unwrap())
            } else {
                line.replace("localhost:8080", host).replace(
                    "localhost:18123/?database=eventline",
                    &format!("{clickhouse}/?database={}", t.database),
                )
            }
        })
        .collect();
    let last = script
        .iter()
        .position(|l| l.starts_with(&format!("curl -s \"{clickhouse}/")))
        .expect("the message log query");
    let setup = script[..last].join("\n");
    assert!(setup.contains(host) && !setup.contains("localhost:8080"));
    let stdout = bash(&setup).await;
    // Property, two types, two profiles, two views, the system event.
    let answers: Vec<Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(answers.len(), 8, "{stdout}");
    assert_eq!(answers[2]["kind"], "system", "{stdout}");
    assert_eq!(answers[7]["accepted"], 1, "{stdout}");

    let mails = smtp.wait_for(1, 60).await;
    assert!(
        mails[0].contains("X-Envelope-To: ann@example.com"),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains("Subject: Trail Boots is back"));
    let campaign: String =
        t.db.query("SELECT DISTINCT toString(campaign_id) FROM campaigns")
            .fetch_one()
            .await
            .unwrap();
    let event_id: String =
        t.db.query("SELECT toString(event_id) FROM events WHERE kind = 'system'")
            .fetch_one()
            .await
            .unwrap();
    assert_eq!(fanout_done(&t, &event_id).await, 1);
    settled_log(&t, 1).await;
    let tail = format!("CID={campaign}\n{}", script[last..].join("\n"));
    let out = bash(&tail).await;
    let row: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        row,
        json!({"customer_id": "ann", "recipient": "ann@example.com",
               "subject": "Trail Boots is back", "status": "sent"}),
        "the row the README shows"
    );
    assert_eq!(smtp.mails().len(), 1, "Bob viewed another product");
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_of_back_in_stock_shows_the_message_to_an_interested_customer_and_leaves_out_another(
) {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let t = TestCollector::start_with(clickhouse_url(), |c| c.smtp_url = url).await;
    let p = t.create_partner("Shop").await;
    declare_catalogue(&t, &p).await;
    for c in ["c-ann", "c-bob"] {
        put_profile(&t, &p, c, json!({"email": format!("{c}@example.com")})).await;
    }
    send_events(
        &t,
        &p,
        vec![
            customer_event("product_viewed", Some("c-ann"), None, product("Boots")),
            customer_event("product_viewed", Some("c-bob"), None, product("Rain Coat")),
        ],
    )
    .await;
    // A draft: it runs nothing, but it can be dry-run.
    let mut draft = back_in_stock();
    draft["status"] = json!("draft");
    let id = create_campaign(&t, &p, draft).await;
    let event_id = back_in_stock_event(&t, &p, "Boots").await;
    let path = format!("/v1/admin/partners/{}/campaigns/{id}/dry-run", p.id);

    let (status, run) = t
        .admin(Method::POST, &path, Some(json!({"customer_id": "c-ann"})))
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(
        run["event"]["event_id"],
        event_id.as_str(),
        "the latest system event"
    );
    assert_eq!(run["started"], true, "{run}");
    assert_eq!(run["messages"][0]["would"], "send", "{run}");
    assert_eq!(run["messages"][0]["subject"], "Boots is back");
    assert_eq!(run["messages"][0]["recipient"], "c-ann@example.com");

    let (status, run) = t
        .admin(Method::POST, &path, Some(json!({"customer_id": "c-bob"})))
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["started"], false, "{run}");
    assert_eq!(run["messages"], json!([]));
    assert!(
        run["ends"].as_str().unwrap().starts_with("not selected"),
        "{run}"
    );
    assert_eq!(
        t.count("SELECT count() FROM campaign_messages").await,
        0,
        "a dry run writes nothing"
    );
    t.finish().await;
}
