//! Campaign features run end to end: scheduled triggers on a shifted clock, caps and channel
//! counters from the message log, `assign_event` through the sink, and branches answered by
//! ClickHouse. Email goes through the real SMTP server of `campaigns_run`.

use event_model::timestamp::parse_rfc3339_ms;
use eventline_collector::campaigns::clock::Clock;
use reqwest::Method;
use serde_json::{json, Value};

use crate::campaigns_run::{abandoned_cart, create_campaign, product, put_profile, send, SmtpSink};
use crate::common::*;

fn at(t: &str) -> i64 {
    parse_rfc3339_ms(t).unwrap()
}

/// The message log as (customer, status, error), by customer then time.
async fn log(t: &TestCollector) -> Vec<(String, String, String)> {
    t.db.query(
        "SELECT customer_id, status, error FROM campaign_messages FINAL \
         ORDER BY customer_id, created_at",
    )
    .fetch_all()
    .await
    .unwrap()
}

/// Waits until every message in the log is sent or skipped, and `n` are there.
async fn settled_log(t: &TestCollector, n: usize) -> Vec<(String, String, String)> {
    eventually(&format!("{n} messages sent or skipped"), 60, || async {
        let log = log(t).await;
        (log.len() == n && log.iter().all(|m| m.1 == "sent" || m.1 == "skipped")).then_some(log)
    })
    .await
}

async fn set_time_zone(t: &TestCollector, p: &Partner, zone: &str) {
    let (status, body) = t
        .admin(
            Method::PATCH,
            &format!("/v1/admin/partners/{}", p.id),
            Some(json!({ "time_zone": zone })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The last day a scheduled campaign has run, once it is `day`.
async fn done_day(t: &TestCollector, day: &str) {
    eventually(&format!("the schedule done up to {day}"), 30, || async {
        let done: Vec<String> =
            t.db.query("SELECT toString(done_day) FROM campaign_schedules FINAL")
                .fetch_all()
                .await
                .unwrap();
        (done == [day]).then_some(())
    })
    .await
}

fn birthday_greeting() -> Value {
    json!({
        "name": "Happy birthday",
        "status": "active",
        "trigger": {"schedule": {"date_attribute": "birthday", "at": "09:00"}},
        "steps": [{"send": {"channel": "email", "template": {
            "subject": "Happy birthday, {{ client.first_name }}",
            "body": "<p>All the best, {{ client.first_name }}.</p>"
        }}}]
    })
}

fn envelope_to(mail: &str) -> &str {
    mail.lines()
        .find_map(|l| l.strip_prefix("X-Envelope-To: "))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_birthday_greeting_goes_out_once_at_0900_partner_time_on_the_customers_birthday() {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    // 08:59 in Berlin (summer time, UTC+2) on 15 June 2027.
    let (clock, hands) = Clock::shifted();
    hands.set_ms(at("2027-06-15T06:59:00Z"));
    let mut t = TestCollector::start_with_clock(clickhouse_url(), clock, |c| {
        c.smtp_url = url.clone();
        c.campaign_schedule_poll_ms = 100;
    })
    .await;
    let p = t.create_partner("Shop").await;
    set_time_zone(&t, &p, "Europe/Berlin").await;
    for (customer, name, birthday) in [
        ("c-1", "Ann", Some("1990-06-15")),
        ("c-2", "Bob", Some("1985-06-16")),
        ("c-3", "Cy", None),
    ] {
        let mut profile = json!({"first_name": name, "email": format!("{customer}@example.com")});
        if let Some(b) = birthday {
            profile["birthday"] = json!(b);
        }
        put_profile(&t, &p, customer, profile).await;
    }
    create_campaign(&t, &p, birthday_greeting()).await;

    // Seen at 08:59: its first day is today, not run yet.
    done_day(&t, "2027-06-14").await;
    assert!(log(&t).await.is_empty(), "nothing before 09:00");

    hands.set_ms(at("2027-06-15T07:00:00Z"));
    let mails = smtp.wait_for(1, 60).await;
    assert_eq!(envelope_to(&mails[0]), "c-1@example.com", "{}", mails[0]);
    assert!(
        mails[0].contains("Subject: Happy birthday, Ann"),
        "{}",
        mails[0]
    );
    done_day(&t, "2027-06-15").await;

    // A restart the same morning runs nothing again; the next day is Bob's.
    t.running.take().unwrap().stop().await.unwrap();
    let database = t.database.clone();
    let (clock, hands) = Clock::shifted();
    hands.set_ms(at("2027-06-15T07:30:00Z"));
    let t2 = TestCollector::start_with_clock(clickhouse_url(), clock, |c| {
        c.clickhouse_database = database;
        c.smtp_url = url.clone();
        c.campaign_schedule_poll_ms = 100;
    })
    .await;
    hands.set_ms(at("2027-06-16T07:00:00Z"));
    done_day(&t2, "2027-06-16").await;
    let mails = smtp.wait_for(2, 60).await;
    assert_eq!(envelope_to(&mails[1]), "c-2@example.com", "{}", mails[1]);
    let log = settled_log(&t2, 2).await;
    assert_eq!(
        log.iter()
            .map(|m| (m.0.as_str(), m.1.as_str()))
            .collect::<Vec<_>>(),
        [("c-1", "sent"), ("c-2", "sent")]
    );
    t2.finish().await;
    assert_eq!(
        smtp.mails().len(),
        2,
        "one greeting each, across the restart"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_birthday_due_while_the_collector_was_down_goes_out_late_once_and_29_february_on_the_28th(
) {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    // Noon in Berlin (winter, UTC+1) on 27 February 2027, a year without a 29 February.
    let (clock, hands) = Clock::shifted();
    hands.set_ms(at("2027-02-27T11:00:00Z"));
    let mut t = TestCollector::start_with_clock(clickhouse_url(), clock, |c| {
        c.smtp_url = url.clone();
        c.campaign_schedule_poll_ms = 100;
    })
    .await;
    let p = t.create_partner("Shop").await;
    set_time_zone(&t, &p, "Europe/Berlin").await;
    for (customer, birthday) in [
        ("c-1", "2000-02-29"),
        ("c-2", "1990-02-28"),
        ("c-3", "1990-03-01"),
    ] {
        put_profile(
            &t,
            &p,
            customer,
            json!({"first_name": customer, "email": format!("{customer}@example.com"), "birthday": birthday}),
        )
        .await;
    }
    create_campaign(&t, &p, birthday_greeting()).await;
    done_day(&t, "2027-02-27").await;
    t.running.take().unwrap().stop().await.unwrap();

    // Down at 09:00 on the 28th; back at 11:00.
    let database = t.database.clone();
    let (clock, hands) = Clock::shifted();
    hands.set_ms(at("2027-02-28T10:00:00Z"));
    let t2 = TestCollector::start_with_clock(clickhouse_url(), clock, |c| {
        c.clickhouse_database = database;
        c.smtp_url = url.clone();
        c.campaign_schedule_poll_ms = 100;
    })
    .await;
    done_day(&t2, "2027-02-28").await;
    let log = settled_log(&t2, 2).await;
    assert_eq!(
        log.iter()
            .map(|m| (m.0.as_str(), m.1.as_str()))
            .collect::<Vec<_>>(),
        [("c-1", "sent"), ("c-2", "sent")]
    );
    let mut to: Vec<String> = smtp
        .wait_for(2, 60)
        .await
        .iter()
        .map(|m| envelope_to(m).to_string())
        .collect();
    to.sort();
    assert_eq!(to, ["c-1@example.com", "c-2@example.com"]);
    t2.finish().await;
    t.finish().await;
}

fn thank_you(name: &str, counters: Value) -> Value {
    json!({
        "name": name,
        "status": "active",
        "trigger": {"event": {"name": "purchase_completed"}},
        "steps": [{"send": {"channel": "email", "template": {
            "subject": name, "body": "<p>Thank you.</p>"
        }}}],
        "counters": counters
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn two_campaigns_emailing_one_customer_under_a_counter_of_one_per_day_send_one_and_log_the_other_capped(
) {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let t = TestCollector::start_with(clickhouse_url(), |c| c.smtp_url = url).await;
    let p = t.create_partner("Shop").await;
    put_profile(&t, &p, "c-1", json!({"email": "ann@example.com"})).await;
    let per_day = json!([{"channel": "email", "max": 1, "per": {"days": 1}}]);
    create_campaign(&t, &p, thank_you("First", per_day.clone())).await;
    create_campaign(&t, &p, thank_you("Second", per_day)).await;

    send(&t, &p, "purchase_completed", "c-1", &[]).await;
    let log = settled_log(&t, 2).await;
    let statuses: Vec<&str> = log.iter().map(|m| m.1.as_str()).collect();
    assert!(
        statuses.contains(&"sent") && statuses.contains(&"skipped"),
        "{log:?}"
    );
    let capped = log.iter().find(|m| m.1 == "skipped").unwrap();
    assert!(
        capped.2.starts_with("capped: ") && capped.2.contains("`email` counter"),
        "{log:?}"
    );
    assert_eq!(smtp.wait_for(1, 30).await.len(), 1);

    // A step's own cap counts that step's messages: a second purchase the same day is capped.
    let once = json!({
        "name": "Once a day",
        "status": "active",
        "trigger": {"event": {"name": "purchase_completed"}},
        "steps": [{"send": {"channel": "webhook", "template": {"body": "bought"},
                             "cap": {"max": 1, "per": {"days": 1}}}}]
    });
    let (status, body) = t
        .admin(
            Method::PUT,
            &format!("/v1/admin/partners/{}/channels/webhook", p.id),
            Some(json!({"url": "http://127.0.0.1:9/hook", "secret": "whsec_0123456789abcdef0123456789"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    create_campaign(&t, &p, once).await;
    send(&t, &p, "purchase_completed", "c-2", &[]).await;
    send(&t, &p, "purchase_completed", "c-2", &[]).await;
    let webhook_log = eventually("two webhook messages logged", 30, || async {
        let rows: Vec<(String, String)> =
            t.db.query(
                "SELECT status, error FROM campaign_messages FINAL \
                 WHERE channel = 'webhook' ORDER BY created_at",
            )
            .fetch_all()
            .await
            .unwrap();
        (rows.len() == 2).then_some(rows)
    })
    .await;
    assert_ne!(webhook_log[0].0, "skipped", "{webhook_log:?}");
    assert_eq!(webhook_log[1].0, "skipped", "{webhook_log:?}");
    assert!(
        webhook_log[1].1.starts_with("capped: the step's cap"),
        "{webhook_log:?}"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_assigned_event_shows_in_the_customer_history_with_ingest_path_campaign_and_counts_in_a_segment(
) {
    let t = TestCollector::start().await;
    let p = t.create_partner("Shop").await;
    create_campaign(
        &t,
        &p,
        json!({
            "name": "Invite",
            "status": "active",
            "trigger": {"event": {"name": "purchase_completed"}},
            "steps": [{"assign_event": {"name": "abandoned_cart",
                "properties": {"cart_content": "$cart_content", "total_price": 5}}}]
        }),
    )
    .await;
    // Would send to whoever has an abandoned cart: an assigned event must not start it.
    create_campaign(
        &t,
        &p,
        json!({
            "name": "Cart reminder",
            "status": "active",
            "trigger": {"event": {"name": "abandoned_cart"}},
            "steps": [{"send": {"channel": "email", "template": {"subject": "Cart", "body": "<p>Cart</p>"}}}]
        }),
    )
    .await;
    send(
        &t,
        &p,
        "purchase_completed",
        "c-1",
        &[(
            "cart_content",
            event_model::ContextValue::String("Boots".into()),
        )],
    )
    .await;
    let history = format!("/v1/admin/partners/{}/customers/c-1/events", p.id);
    let assigned = eventually("the assigned event in the history", 30, || async {
        let (status, page) = t.admin(Method::GET, &history, None).await;
        assert_eq!(status, 200, "{page}");
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "abandoned_cart")
            .cloned()
    })
    .await;
    assert_eq!(assigned["ingest_path"], "campaign", "{assigned}");
    assert_eq!(assigned["context"]["cart_content"], "Boots", "{assigned}");
    assert_eq!(assigned["context"]["total_price"], 5.0, "{assigned}");
    let (status, body) = t
        .admin(
            Method::POST,
            &format!("/v1/admin/partners/{}/segments/preview", p.id),
            Some(json!({"definition": {"event": {"name": "abandoned_cart"}}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["members"], 1, "{body}");
    assert_eq!(
        t.count("SELECT count() FROM events WHERE name = 'abandoned_cart'")
            .await,
        1,
        "stored once"
    );
    // A customer's own abandoned cart, handed to the engine after the assigned one, starts the
    // reminder (logged skipped: no email); the assigned one started nothing.
    send(&t, &p, "abandoned_cart", "c-2", &[]).await;
    let log = settled_log(&t, 1).await;
    assert_eq!(log[0].0, "c-2", "{log:?}");
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_branch_on_a_purchase_in_the_last_7_days_sends_message_a_to_a_buyer_and_b_to_a_non_buyer()
{
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let t = TestCollector::start_with(clickhouse_url(), |c| c.smtp_url = url).await;
    let p = t.create_partner("Shop").await;
    for c in ["buyer", "browser"] {
        put_profile(&t, &p, c, json!({"email": format!("{c}@example.com")})).await;
    }
    send(&t, &p, "purchase_completed", "buyer", &[]).await;
    let mail = |subject: &str| json!([{"send": {"channel": "email", "template": {"subject": subject, "body": "<p>Hi</p>"}}}]);
    create_campaign(
        &t,
        &p,
        json!({
            "name": "Cart follow-up",
            "status": "active",
            "trigger": {"event": {"name": "abandoned_cart"}},
            "steps": [{"branch": {
                "if": {"event": {"name": "purchase_completed", "period": {"last_days": 7}}},
                "then": mail("A: thanks for shopping again"),
                "else": mail("B: your first order")
            }}]
        }),
    )
    .await;
    send(&t, &p, "abandoned_cart", "buyer", &[]).await;
    send(&t, &p, "abandoned_cart", "browser", &[]).await;
    let mails = smtp.wait_for(2, 60).await;
    let subject_to = |who: &str| {
        mails
            .iter()
            .find(|m| envelope_to(m) == who)
            .and_then(|m| m.lines().find_map(|l| l.strip_prefix("Subject: ")))
            .map(str::to_string)
    };
    assert_eq!(
        subject_to("buyer@example.com").as_deref(),
        Some("A: thanks for shopping again")
    );
    assert_eq!(
        subject_to("browser@example.com").as_deref(),
        Some("B: your first order")
    );
    settled_log(&t, 2).await;
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_branch_on_a_saved_segment_sends_message_a_to_its_members_and_b_to_others_and_an_unknown_segment_is_refused_on_save(
) {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let t = TestCollector::start_with(clickhouse_url(), |c| c.smtp_url = url).await;
    let p = t.create_partner("Shop").await;
    put_profile(
        &t,
        &p,
        "vip",
        json!({"email": "vip@example.com", "attributes": {"tier": "gold"}}),
    )
    .await;
    put_profile(&t, &p, "other", json!({"email": "other@example.com"})).await;
    let (status, body) = t
        .admin(
            Method::POST,
            &format!("/v1/admin/partners/{}/segments", p.id),
            Some(json!({"name": "Gold", "definition":
                {"profile": {"field": "attributes.tier", "op": "eq", "value": "gold"}}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let segment = body["id"].as_str().unwrap().to_string();
    let campaign = |segment: &str| {
        let mail = |subject: &str| json!([{"send": {"channel": "email", "template": {"subject": subject, "body": "<p>Hi</p>"}}}]);
        json!({
            "name": "Gold or not",
            "status": "active",
            "trigger": {"event": {"name": "abandoned_cart"}},
            "steps": [{"branch": {"in_segment": segment,
                "then": mail("A: gold"), "else": mail("B: everyone")}}]
        })
    };
    let (status, body) = t
        .admin(
            Method::POST,
            &format!("/v1/admin/partners/{}/campaigns", p.id),
            Some(json!({"definition": campaign(&uuid::Uuid::new_v4().to_string())})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["errors"][0]["code"], "unknown_segment",
        "{body}"
    );
    assert_eq!(
        body["error"]["errors"][0]["path"], "steps[0].branch.in_segment",
        "{body}"
    );
    create_campaign(&t, &p, campaign(&segment)).await;
    send(&t, &p, "abandoned_cart", "vip", &[]).await;
    send(&t, &p, "abandoned_cart", "other", &[]).await;
    let mails = smtp.wait_for(2, 60).await;
    let subject_to = |who: &str| {
        mails
            .iter()
            .find(|m| envelope_to(m) == who)
            .and_then(|m| m.lines().find_map(|l| l.strip_prefix("Subject: ")))
            .map(str::to_string)
    };
    assert_eq!(subject_to("vip@example.com").as_deref(), Some("A: gold"));
    assert_eq!(
        subject_to("other@example.com").as_deref(),
        Some("B: everyone")
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_branch_on_the_triggering_events_total_price_sends_the_big_spender_message_a_and_others_b(
) {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let t = TestCollector::start_with(clickhouse_url(), |c| c.smtp_url = url).await;
    let p = t.create_partner("Shop").await;
    for c in ["big", "small"] {
        put_profile(&t, &p, c, json!({"email": format!("{c}@example.com")})).await;
    }
    let mail = |subject: &str| json!([{"send": {"channel": "email", "template": {"subject": subject, "body": "<p>Hi</p>"}}}]);
    create_campaign(
        &t,
        &p,
        json!({
            "name": "Big spenders",
            "status": "active",
            "trigger": {"event": {"name": "purchase_completed"}},
            "steps": [{"branch": {
                "if_trigger": [{"key": "total_price", "op": "gte", "value": 100}],
                "then": mail("A: VIP"),
                "else": mail("B: thanks")
            }}]
        }),
    )
    .await;
    let price = |p: f64| [("total_price", event_model::ContextValue::Number(p))];
    send(&t, &p, "purchase_completed", "big", &price(250.0)).await;
    send(&t, &p, "purchase_completed", "small", &price(20.0)).await;
    let mails = smtp.wait_for(2, 60).await;
    let subject_to = |who: &str| {
        mails
            .iter()
            .find(|m| envelope_to(m) == who)
            .and_then(|m| m.lines().find_map(|l| l.strip_prefix("Subject: ")))
            .map(str::to_string)
    };
    assert_eq!(subject_to("big@example.com").as_deref(), Some("A: VIP"));
    assert_eq!(
        subject_to("small@example.com").as_deref(),
        Some("B: thanks")
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_that_ends_while_the_campaign_is_paused_goes_out_once_it_is_active_again() {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    // The clock starts at the real time (the wait counts from the event's time, which is real)
    // and is moved past the wait's end by the test.
    let (clock, hands) = Clock::shifted();
    let start = clock.now_ms();
    let t = TestCollector::start_with_clock(clickhouse_url(), clock, |c| {
        c.smtp_url = url.clone();
    })
    .await;
    let p = t.create_partner("Shop").await;
    put_profile(&t, &p, "c-1", json!({"email": "c-1@example.com"})).await;
    let id = create_campaign(&t, &p, abandoned_cart(60)).await;
    let mut browsing = abandoned_cart(3600);
    browsing["name"] = json!("Browsing");
    browsing["trigger"] = json!({"event": {"name": "page_viewed"}});
    create_campaign(&t, &p, browsing).await;
    send(&t, &p, "added_to_cart", "c-1", &product("Trail Boots")).await;
    eventually("c-1's run waiting", 30, || async {
        let n = t
            .count("SELECT count() FROM campaign_runs FINAL WHERE wake_at IS NOT NULL")
            .await;
        (n == 1).then_some(())
    })
    .await;
    let one = format!("/v1/admin/partners/{}/campaigns/{id}", p.id);
    let (status, body) = t.admin(Method::POST, &format!("{one}/pause"), None).await;
    assert_eq!(status, 200, "{body}");

    // The wait ends while paused: nothing goes out, and the run still waits (moving the clock
    // wakes the engine at once; it finds the campaign paused and looks again 30 s later).
    // (The wait counts from the event, a moment after `start`: 200 s is well past its end.)
    hands.set_ms(start + 200_000);
    // The engine takes its inputs one at a time: once c-2's page view (sent after the clock
    // moved) has started c-2's run in another campaign, the wake-up due before it was handled.
    send(&t, &p, "page_viewed", "c-2", &[]).await;
    eventually("c-2's page view advanced", 30, || async {
        let n = t
            .count("SELECT count() FROM campaign_runs FINAL WHERE customer_id = 'c-2'")
            .await;
        (n == 1).then_some(())
    })
    .await;
    eventually("the paused run still waiting", 30, || async {
        let n = t
            .count(
                "SELECT count() FROM campaign_runs FINAL \
                 WHERE customer_id = 'c-1' AND wake_at IS NOT NULL AND state LIKE '%\"run\"%'",
            )
            .await;
        (n == 1).then_some(())
    })
    .await;
    assert!(log(&t).await.is_empty(), "nothing sent while paused");

    // Active again: the run goes on at its next look (every 30 s), without a restart.
    let (status, body) = t
        .admin(Method::POST, &format!("{one}/activate"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    hands.set_ms(start + 240_000);
    let mails = smtp.wait_for(1, 60).await;
    assert_eq!(envelope_to(&mails[0]), "c-1@example.com", "{}", mails[0]);
    assert_eq!(smtp.mails().len(), 1);
    t.finish().await;
}
