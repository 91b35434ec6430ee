//! Ingest benchmark (not a test): collector throughput and latency for batches of 1, 20 and 500
//! events, beside a raw `INSERT ... FORMAT JSONEachRow` of the same events straight into
//! ClickHouse, so the ratio shows what the collector costs (or saves, by batching).
//!
//! Run with `make bench` (starts the local ClickHouse), or point `EVENTLINE_BENCH_CLICKHOUSE_URL`
//! at any server. Each run uses a fresh database and drops it afterwards. Compare the ratios
//! within one run: these machines are shared and noisy.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use event_model::json::Batch;
use event_model::timestamp::format_rfc3339_ms;
use event_model::{ContextValue, Event, EventKind};
use eventline_collector::app;
use eventline_collector::config::Config;
use serde_json::{json, Value};

const CONCURRENCY: usize = 8;
/// (events per batch, requests per path): about the same work for every size, bounded in time.
const PLAN: &[(usize, usize)] = &[(1, 3_000), (20, 600), (500, 120)];

#[derive(Parser)]
struct Args {
    /// Events stored for the benchmark partner before the timed runs (spread over the last 23
    /// days, UUID v7 ids of their time), so the collector's duplicate look-up meets a table of
    /// a production size; the raw paths' tables stay empty, as their inserts look nothing up.
    #[arg(long, default_value_t = 0)]
    prefill: u64,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Stores `n` events of the partner with ClickHouse's own generator (through every view).
async fn prefill(
    ch: &clickhouse::Client,
    partner_id: &str,
    source_id: &str,
    n: u64,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    ch.query(
        "INSERT INTO events (partner_id, event_id, kind, name, source, source_id, customer_id, \
         anonymous_id, occurred_at, sent_at, received_at, event_time, context_strings) \
         SELECT {partner:UUID}, dateTimeToUUIDv7(toDateTime(t)), 'customer', \
           ['product_viewed', 'added_to_cart', 'purchase_completed'][number % 3 + 1], \
           'online_store', {source:UUID}, concat('earlier-', toString(number % 500000)), \
           concat('earlier-anon-', toString(number % 700000)), t, t, t, t, \
           map('category', 'Hat', 'product_id', concat('sku-', toString(number % 997))) \
         FROM (SELECT number, now64(3) - toIntervalMillisecond(number * 2000000000 / {n:UInt64}) AS t \
               FROM numbers({n:UInt64}))",
    )
    .param("partner", partner_id)
    .param("source", source_id)
    .param("n", n)
    .execute()
    .await?;
    println!(
        "prefilled the collector's events with {n} earlier events of the partner in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn shop_event(i: usize) -> Event {
    let mut context: std::collections::BTreeMap<String, ContextValue> = [
        (
            "category",
            ContextValue::String(["Jacket", "Shoes", "Hat"][i % 3].into()),
        ),
        (
            "product_id",
            ContextValue::String(format!("sku-{}", i % 997)),
        ),
        ("price", ContextValue::Number((i % 200) as f64 + 0.99)),
        ("quantity", ContextValue::Number((i % 5 + 1) as f64)),
        ("in_stock", ContextValue::Bool(i % 7 != 0)),
        (
            "page_url",
            ContextValue::String("https://shop.example/catalog/jackets?utm_source=mail".into()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    // Every third event is a purchase_completed, a predefined event type: ingest checks it
    // against the partner's catalogue, so the benchmark includes that check.
    if i % 3 == 2 {
        context.insert(
            "total_price".into(),
            ContextValue::Number((i % 500) as f64 + 0.5),
        );
        context.insert(
            "points_collected".into(),
            ContextValue::Number((i % 50) as f64),
        );
    }
    Event {
        event_id: uuid::Uuid::now_v7().to_string(),
        kind: EventKind::Customer,
        name: ["product_viewed", "added_to_cart", "purchase_completed"][i % 3].into(),
        source: "online_store".into(),
        customer_id: Some(format!("customer-{}", i % 5_000)),
        anonymous_id: Some(format!("anon-{}", i % 7_000)),
        session_id: Some(format!("session-{}", i % 900)),
        occurred_at: format_rfc3339_ms(now_ms() - 1_000),
        context,
    }
}

fn ch_time(ms: i64) -> String {
    format_rfc3339_ms(ms)
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// The same event as a JSONEachRow line of the `events` table, as the collector would store it.
fn raw_row(partner: &str, source_id: &str, e: &Event) -> String {
    let (mut s, mut n, mut b) = (
        serde_json::Map::new(),
        serde_json::Map::new(),
        serde_json::Map::new(),
    );
    for (k, v) in &e.context {
        match v {
            ContextValue::String(x) => s.insert(k.clone(), json!(x)),
            ContextValue::Number(x) => n.insert(k.clone(), json!(x)),
            ContextValue::Bool(x) => b.insert(k.clone(), json!(x)),
        };
    }
    let t = ch_time(now_ms());
    json!({
        "partner_id": partner, "event_id": e.event_id, "kind": "customer", "name": e.name,
        "source": e.source, "source_id": source_id, "customer_id": e.customer_id,
        "anonymous_id": e.anonymous_id, "session_id": e.session_id,
        "occurred_at": t, "sent_at": t, "received_at": t, "event_time": t,
        "context_strings": s, "context_numbers": n, "context_booleans": b,
        "ingest_path": "client", "user_agent": "bench", "client_ip": "127.0.0.1"
    })
    .to_string()
}

/// CPU seconds (user + system) this process has used so far, from `/proc/self/stat` (Linux;
/// `None` elsewhere). The collector runs in this process, beside the benchmark's HTTP clients.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at the state, field 3;
    // utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Peak resident memory of this process (`VmHWM` in `/proc/self/status`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

struct Outcome {
    events: usize,
    /// CPU seconds of this process while the path ran (`None` where not measurable).
    cpu_seconds: Option<f64>,
    wall: Duration,
    latencies_ms: Vec<f64>,
    failures: usize,
}

impl Outcome {
    fn pct(&self, p: f64) -> f64 {
        let i = ((self.latencies_ms.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_ms.get(i).copied().unwrap_or(f64::NAN)
    }
    /// Milliseconds of this process's CPU per 1,000 events.
    fn cpu_ms_per_1000(&self) -> f64 {
        self.cpu_seconds
            .map_or(f64::NAN, |s| s * 1e6 / self.events as f64)
    }
    fn rate(&self) -> f64 {
        self.events as f64 / self.wall.as_secs_f64()
    }
}

/// Sends `bodies` with `CONCURRENCY` clients; each request must answer 200.
async fn drive(
    http: &reqwest::Client,
    url: &str,
    headers: Vec<(&'static str, String)>,
    bodies: Vec<Vec<u8>>,
    events_per_body: usize,
) -> Outcome {
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (bodies, next, http, url, headers) = (
                bodies.clone(),
                next.clone(),
                http.clone(),
                url.to_string(),
                headers.clone(),
            );
            tokio::spawn(async move {
                let (mut lat, mut failures) = (Vec::new(), 0);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    let mut req = http.post(&url).body(body.clone());
                    for (k, v) in &headers {
                        req = req.header(*k, v);
                    }
                    let t = Instant::now();
                    let ok = match req.send().await {
                        Ok(r) => {
                            let status = r.status();
                            let body = r.text().await.unwrap_or_default();
                            if !status.is_success() && failures == 0 {
                                eprintln!(
                                    "first failure: {status} {}",
                                    body.get(..300).unwrap_or(&body)
                                );
                            }
                            status.is_success()
                        }
                        Err(e) => {
                            eprintln!("request error: {e}");
                            false
                        }
                    };
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                    failures += usize::from(!ok);
                }
                (lat, failures)
            })
        })
        .collect();
    let (mut latencies_ms, mut failures) = (Vec::new(), 0);
    for w in workers {
        let (l, f) = w.await.unwrap();
        latencies_ms.extend(l);
        failures += f;
    }
    let wall = started.elapsed();
    let cpu_seconds = cpu_before.zip(process_cpu_seconds()).map(|(a, b)| b - a);
    latencies_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Outcome {
        events: bodies.len() * events_per_body,
        cpu_seconds,
        wall,
        latencies_ms,
        failures,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let args = Args::parse();
    let ch_url = std::env::var("EVENTLINE_BENCH_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18123".into());
    let database = format!("eventline_bench_{}", std::process::id());
    let mut config = Config::local_defaults();
    config.listen = "127.0.0.1:0".parse()?;
    config.clickhouse_url = ch_url.clone();
    config.clickhouse_database = database.clone();
    // Eight clients on one address far exceed the per-address default (100 requests/s): the
    // limits stay on, so their cost is measured, but above what the benchmark sends.
    config.rate_limit_ip_per_sec = 1_000_000;
    config.rate_limit_ip_burst = 1_000_000;
    config.rate_limit_partner_per_sec = 1_000_000;
    config.rate_limit_partner_burst = 1_000_000;
    let token = eventline_collector::config::LOCAL_ADMIN_TOKEN;
    // A second database with the whole schema, for raw inserts into `events` with its
    // materialized views (identity links, known customers, the context index): what ClickHouse
    // itself does to store an event for segments, without the collector.
    let full_database = format!("{database}_full");
    let mut full_config = config.clone();
    full_config.clickhouse_database = full_database.clone();
    eventline_collector::store::migrations::migrate(&full_config).await?;
    let running = app::start(config).await?;
    let base = format!("http://{}", running.addr);
    // reqwest has no crypto provider of its own (see campaigns::http_client).
    eventline_collector::campaigns::http_client::install_crypto_provider();
    let http = reqwest::Client::new();

    let partner: Value = http
        .post(format!("{base}/v1/admin/partners"))
        .bearer_auth(token)
        .json(&json!({ "name": "Bench" }))
        .send()
        .await?
        .json()
        .await?;
    let partner_id = partner["id"].as_str().unwrap().to_string();
    let source_id = partner["sources"][0]["id"].as_str().unwrap().to_string();
    let ch = clickhouse::Client::default()
        .with_url(&ch_url)
        .with_database(&database);
    if args.prefill > 0 {
        prefill(&ch, &partner_id, &source_id, args.prefill).await?;
    }
    ch.query("CREATE TABLE raw_events AS events")
        .execute()
        .await?;
    let raw_url = format!(
        "{ch_url}/?database={database}&query=INSERT%20INTO%20raw_events%20FORMAT%20JSONEachRow"
    );
    let full_url = format!(
        "{ch_url}/?database={full_database}&query=INSERT%20INTO%20events%20FORMAT%20JSONEachRow"
    );

    println!(
        "Eventline ingest benchmark: {CONCURRENCY} concurrent clients, ClickHouse at {ch_url}"
    );
    println!(
        "collector = POST /v1/events (validate, dedup check, batched insert, ack after commit)"
    );
    println!("raw       = POST INSERT INTO raw_events FORMAT JSONEachRow, same events, straight to ClickHouse");
    println!("            (a bare copy of the events table: no materialized views)");
    println!(
        "raw+views = the same inserts into `events` of a database with the whole schema, whose"
    );
    println!("            materialized views also write identity links, known customers and the context index\n");
    println!(
        "{:>5} {:<10} {:>8} {:>8} {:>10} {:>8} {:>8} {:>8} {:>6} {:>9}",
        "batch",
        "path",
        "requests",
        "events",
        "events/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "fail",
        "cpu ms/1k"
    );
    let mut counter = 0;
    for &(size, requests) in PLAN {
        let mut collector_bodies = Vec::with_capacity(requests);
        let mut raw_bodies = Vec::with_capacity(requests);
        for _ in 0..requests {
            let events: Vec<Event> = (0..size)
                .map(|_| {
                    counter += 1;
                    shop_event(counter)
                })
                .collect();
            raw_bodies.push(
                events
                    .iter()
                    .map(|e| raw_row(&partner_id, &source_id, e))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes(),
            );
            let batch = Batch {
                partner_id: Some(partner_id.clone()),
                sent_at: format_rfc3339_ms(now_ms()),
                events,
            };
            collector_bodies.push(serde_json::to_vec(&batch)?);
        }
        let collector = drive(
            &http,
            &format!("{base}/v1/events"),
            vec![("content-type", "application/json".into())],
            collector_bodies,
            size,
        )
        .await;
        let raw = drive(&http, &raw_url, vec![], raw_bodies.clone(), size).await;
        let full = drive(&http, &full_url, vec![], raw_bodies, size).await;
        for (name, o) in [
            ("collector", &collector),
            ("raw insert", &raw),
            ("raw+views", &full),
        ] {
            println!(
                "{:>5} {:<10} {:>8} {:>8} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>9.1}",
                size,
                name,
                o.latencies_ms.len(),
                o.events,
                o.rate(),
                o.pct(0.5),
                o.pct(0.95),
                o.pct(0.99),
                o.failures,
                o.cpu_ms_per_1000()
            );
        }
        println!(
            "{:>5} {:<10} throughput collector/raw = {:.2}x, p50 latency collector/raw = {:.2}x",
            size,
            "ratio",
            collector.rate() / raw.rate(),
            collector.pct(0.5) / raw.pct(0.5)
        );
        println!(
            "{:>5} {:<10} throughput collector/raw+views = {:.2}x, raw+views/raw = {:.2}x\n",
            size,
            "",
            collector.rate() / full.rate(),
            full.rate() / raw.rate()
        );
    }
    let stored: u64 = ch.query("SELECT count() FROM events").fetch_one().await?;
    let raw_stored: u64 = ch
        .query("SELECT count() FROM raw_events")
        .fetch_one()
        .await?;
    println!(
        "cpu ms/1k = CPU of this process (collector + the benchmark's HTTP clients) per 1,000 events; \
         the raw rows are the clients' share alone"
    );
    match peak_rss_mib() {
        Some(mib) => println!(
            "peak memory of this process (VmHWM, collector + clients + bodies): {mib:.0} MiB"
        ),
        None => println!("peak memory: not measurable here"),
    }
    let full_stored: u64 = ch
        .query("SELECT count() FROM {db:Identifier}.events")
        .param("db", full_database.as_str())
        .fetch_one()
        .await?;
    println!(
        "rows stored: events = {stored}, raw_events = {raw_stored}, raw+views events = {full_stored} \
         (each should equal the events sent)"
    );
    running.stop().await?;
    // The full database first: `ch` is bound to `database`, which must exist for its queries.
    for db in [&full_database, &database] {
        ch.query("DROP DATABASE IF EXISTS {db:Identifier}")
            .param("db", db.as_str())
            .execute()
            .await?;
    }
    Ok(())
}
