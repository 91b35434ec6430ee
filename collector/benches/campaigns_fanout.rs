//! Campaign fan-out benchmark (not a test): one system event → a message queued for each of
//! 100,000 interested customers.
//!
//! Loads a partner whose `--customers` customers (default 100,000) each viewed the product
//! `Boots` (and as many others viewed `Hat`, so the selection has something to leave out), each
//! with a profile and an email, straight into ClickHouse (`INSERT … SELECT … FROM numbers(N)`),
//! then starts the collector in-process with the "Back in stock" campaign of the README and
//! sends one `product_back_in_stock` system event for `Boots` through the server ingest API.
//! It prints the time from that request to every message written to the message log
//! (`campaign_messages`, status `queued`, subject and body rendered): the fan-out's work
//! (selection pages, state and profile reads, rendering, message and state inserts), not SMTP.
//! The SMTP server is a local socket that accepts connections and never answers, so delivery
//! holds its first attempt for the whole run and sends nothing.
//!
//! Run against the server in `EVENTLINE_BENCH_CLICKHOUSE_URL` (default
//! `http://127.0.0.1:18140`, the port `make bench-audience` uses):
//! `cargo bench -p eventline-collector --bench campaigns_fanout -- --customers 100000`.

use std::time::{Duration, Instant};

use clap::Parser;
use clickhouse::Client;
use eventline_collector::app;
use eventline_collector::config::Config;
use serde_json::{json, Value};

#[derive(Parser, Debug)]
#[command(about = "Eventline campaign fan-out benchmark: one system event to N customers")]
struct Args {
    /// Customers who viewed the product (each gets one message).
    #[arg(long, default_value_t = 100_000)]
    customers: u64,
    /// Customers per fan-out page (`EVENTLINE_CAMPAIGN_FANOUT_PAGE`).
    #[arg(long, default_value_t = 2_000)]
    page: u32,
    /// Campaign engine lanes (`EVENTLINE_CAMPAIGN_LANES`): each fans out to its share.
    #[arg(long, default_value_t = 1)]
    lanes: u32,
    /// Database to load into; dropped first, and at the end unless `--keep`.
    #[arg(long, default_value = "eventline_bench_fanout")]
    database: String,
    /// Keep the database at the end.
    #[arg(long)]
    keep: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const TOKEN: &str = "bench-admin-token-bench-admin-token";

/// Two views per customer number: `c-<n>` viewed Boots, `h-<n>` viewed Hat, over the last
/// 30 days.
const EVENTS_SQL: &str = "
INSERT INTO events (partner_id, event_id, kind, name, source, source_id, customer_id,
    anonymous_id, session_id, occurred_at, sent_at, received_at, event_time, context_strings,
    context_numbers, context_booleans, ingest_path, user_agent, client_ip)
SELECT
    {partner:UUID}, generateUUIDv4(number), 'customer', 'product_viewed', 'online_store',
    toUUID('00000000-0000-0000-0000-000000000000'),
    concat(if(number % 2 = 0, 'c-', 'h-'), leftPad(toString(intDiv(number, 2)), 7, '0')),
    '', '', t, t, t, t,
    map('product', if(number % 2 = 0, 'Boots', 'Hat')),
    CAST(map(), 'Map(String, Float64)'), CAST(map(), 'Map(String, Bool)'),
    'server', '', ''
FROM (
    SELECT number, now64(3) - toIntervalSecond(cityHash64(number) % 2592000) AS t
    FROM numbers({views:UInt64})
)";

/// A profile with a first name and an email for every customer.
const PROFILES_SQL: &str = "
INSERT INTO customer_profiles (partner_id, customer_id, first_name, last_name, email, phone,
    birthday, consents, attributes_strings, attributes_numbers, attributes_booleans,
    attributes_datetimes, updated_at, version, is_deleted)
SELECT
    {partner:UUID}, id, 'Ann', '', concat(id, '@example.com'), '', NULL,
    map('email', true), CAST(map(), 'Map(String, String)'), CAST(map(), 'Map(String, Float64)'),
    CAST(map(), 'Map(String, Bool)'), CAST(map(), 'Map(String, DateTime64(3, \\'UTC\\'))'),
    now64(3), 1, 0
FROM (
    SELECT concat(if(number % 2 = 0, 'c-', 'h-'), leftPad(toString(intDiv(number, 2)), 7, '0')) AS id
    FROM numbers({views:UInt64})
)";

/// A TCP listener that accepts connections and never says a word (an SMTP server that hangs).
async fn silent_smtp() -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    Ok(port)
}

async fn admin(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let resp = http
        .post(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
    Ok(body)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // RUST_LOG=eventline_collector::campaigns=debug shows each fan-out page's timings.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let args = Args::parse();
    let ch_url = std::env::var("EVENTLINE_BENCH_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18140".into());
    let server = Client::default().with_url(&ch_url);
    server
        .query("DROP DATABASE IF EXISTS {db:Identifier}")
        .param("db", args.database.as_str())
        .execute()
        .await?;
    let db = server.clone().with_database(&args.database);
    println!(
        "Eventline campaign fan-out benchmark: ClickHouse at {ch_url}, database {}, {} customers, pages of {}, {} engine lane(s)",
        args.database, args.customers, args.page, args.lanes
    );

    let smtp_port = silent_smtp().await?;
    let mut config = Config::local_defaults();
    config.listen = "127.0.0.1:0".parse()?;
    config.clickhouse_url = ch_url.clone();
    config.clickhouse_database = args.database.clone();
    config.admin_token = Some(TOKEN.into());
    config.smtp_url = format!("smtp://127.0.0.1:{smtp_port}");
    config.smtp_timeout_ms = 3_600_000;
    config.campaign_fanout_page = args.page;
    config.campaign_lanes = args.lanes;
    config.clickhouse_timeout_ms = 600_000;
    let running = app::start(config).await?;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();

    let partner = admin(&http, &base, "/v1/admin/partners", json!({"name": "Bench"})).await?;
    let partner_id = partner["id"].as_str().unwrap_or_default().to_string();
    let api_key = partner["api_key"].as_str().unwrap_or_default().to_string();
    let p = format!("/v1/admin/partners/{partner_id}");
    admin(
        &http,
        &base,
        &format!("{p}/event-properties"),
        json!({"code": "product", "name": "Product", "type": "string"}),
    )
    .await?;
    for (code, kind) in [
        ("product_viewed", "customer"),
        ("product_back_in_stock", "system"),
    ] {
        admin(
            &http,
            &base,
            &format!("{p}/event-types"),
            json!({"code": code, "name": code, "kind": kind,
                   "properties": [{"code": "product", "required": true}]}),
        )
        .await?;
    }

    let load = Instant::now();
    let views = args.customers * 2;
    for sql in [EVENTS_SQL, PROFILES_SQL] {
        db.query(sql)
            .param("partner", partner_id.as_str())
            .param("views", views)
            .execute()
            .await?;
    }
    println!(
        "loaded {views} product views and profiles of {views} customers in {:.1} s",
        load.elapsed().as_secs_f64()
    );

    let campaign = admin(
        &http,
        &base,
        &format!("{p}/campaigns"),
        json!({"definition": {
            "name": "Back in stock",
            "status": "active",
            "trigger": {"system_event": {"name": "product_back_in_stock"}},
            "filters": {"event": {"name": "product_viewed",
                "where": [{"key": "product", "op": "eq", "value": "$product"}],
                "period": {"last_days": 90}}},
            "steps": [{"send": {"channel": "email", "template": {
                "subject": "{{ client.eventContext.product }} is back",
                "body": "<p>Hi {{ client.first_name | default(\"friend\") }}, {{ client.eventContext.product }} is back in stock.</p>"}}}]
        }}),
    )
    .await?;
    let campaign_id = campaign["id"].as_str().unwrap_or_default().to_string();

    let started = Instant::now();
    let resp = http
        .post(format!("{base}/v1/server/events"))
        .bearer_auth(&api_key)
        .json(&json!({"sent_at": now_rfc3339(), "events": [{
            "event_id": uuid::Uuid::now_v7().to_string(), "kind": "system",
            "name": "product_back_in_stock", "source": "online_store",
            "occurred_at": now_rfc3339(), "context": {"product": "Boots"}}]}))
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "the system event was refused: {}",
        resp.text().await?
    );
    let acknowledged = started.elapsed();
    let mut first: Option<Duration> = None;
    let queued = loop {
        let n: u64 = db
            .query(
                "SELECT count() FROM campaign_messages \
                 WHERE campaign_id = {c:UUID} AND status = 'queued'",
            )
            .param("c", campaign_id.as_str())
            .fetch_one()
            .await?;
        if n > 0 && first.is_none() {
            first = Some(started.elapsed());
        }
        if n >= args.customers {
            break started.elapsed();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "only {n} of {} messages queued after 10 minutes",
            args.customers
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let hats: u64 = db
        .query("SELECT count() FROM campaign_messages WHERE customer_id LIKE 'h-%'")
        .fetch_one()
        .await?;
    println!(
        "system event acknowledged after {:.3} s",
        acknowledged.as_secs_f64()
    );
    println!(
        "first message queued after {:.3} s",
        first.unwrap_or(queued).as_secs_f64()
    );
    println!(
        "all {} messages queued after {:.2} s ({:.0} messages/s); messages to customers who viewed only Hat: {hats}",
        args.customers,
        queued.as_secs_f64(),
        args.customers as f64 / queued.as_secs_f64()
    );
    println!(
        "goal: under 10 s for 100,000 customers: {}",
        if queued < Duration::from_secs(10) {
            "met"
        } else {
            "NOT met"
        }
    );
    running.abort();
    if !args.keep {
        server
            .query("DROP DATABASE IF EXISTS {db:Identifier}")
            .param("db", args.database.as_str())
            .execute()
            .await?;
    }
    Ok(())
}

fn now_rfc3339() -> String {
    let ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    event_model::timestamp::format_rfc3339_ms(ms as i64)
}
