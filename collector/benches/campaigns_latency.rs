//! Campaign latency benchmark (not a test): a steady stream of `added_to_cart` events, one per
//! request to `/v1/server/events`, each for a new customer with an email address, against an
//! active campaign that sends an email at once. For every event it measures
//!
//! - **acknowledged → queued**: from the moment the client has the HTTP 200 (wall clock) to the
//!   `created_at` of the message's row in `campaign_messages` (the engine's wall clock, taken
//!   just before the `queued` row is inserted; that insert, a few milliseconds, is not
//!   included). The engine is handed the events right after their commit, while the answer is
//!   on its way, so a value can be slightly negative.
//! - **sent → queued**: the same, from the moment the request was sent.
//!
//! The collector runs in-process (`serve` with campaigns, the in-process hand-off); mail goes
//! to a minimal SMTP responder in this process, so delivery runs as in production and accepts
//! every message. Run with `make bench-campaigns` (starts a private ClickHouse), or point
//! `EVENTLINE_BENCH_CLICKHOUSE_URL` at any server; `--rate N` (events per second, default 200)
//! and `--secs N` (default 30). Each run uses a fresh database and drops it afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use event_model::json::Batch;
use event_model::timestamp::format_rfc3339_ms;
use event_model::{ContextValue, Event, EventKind};
use eventline_collector::app;
use eventline_collector::config::Config;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Accepts every message: just enough SMTP for lettre (greeting, EHLO, MAIL, RCPT, DATA, QUIT).
async fn smtp_responder() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                if write.write_all(b"220 bench ESMTP\r\n").await.is_err() {
                    return;
                }
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    let answer: &[u8] = if in_data {
                        if line != "." {
                            continue;
                        }
                        in_data = false;
                        b"250 OK\r\n"
                    } else {
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        match verb.as_str() {
                            "EHLO" => b"250-bench\r\n250 8BITMIME\r\n",
                            "DATA" => {
                                in_data = true;
                                b"354 go on\r\n"
                            }
                            "QUIT" => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                return;
                            }
                            _ => b"250 OK\r\n",
                        }
                    };
                    if write.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(port)
}

fn pct(sorted: &[i64], p: f64) -> i64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn row(what: &str, mut values: Vec<i64>) {
    values.sort_unstable();
    println!(
        "| {what} | {} | {} ms | {} ms | {} ms | {} ms |",
        values.len(),
        pct(&values, 0.5),
        pct(&values, 0.9),
        pct(&values, 0.99),
        values.last().copied().unwrap_or(0)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let rate = arg("--rate", 200).max(1);
    let secs = arg("--secs", 30).max(1);
    let total = (rate * secs) as usize;
    let ch_url = std::env::var("EVENTLINE_BENCH_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18123".into());
    let database = format!("eventline_bench_campaigns_{}", std::process::id());
    let smtp_port = smtp_responder().await?;
    let mut config = Config::local_defaults();
    config.listen = "127.0.0.1:0".parse()?;
    config.clickhouse_url = ch_url.clone();
    config.clickhouse_database = database.clone();
    config.smtp_url = format!("smtp://127.0.0.1:{smtp_port}");
    // One client address sends every event: above the per-address default of 100/s.
    config.rate_limit_ip_per_sec = 1_000_000;
    config.rate_limit_ip_burst = 1_000_000;
    let token = eventline_collector::config::LOCAL_ADMIN_TOKEN;
    let running = app::start(config).await?;
    let base = format!("http://{}", running.addr);
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
    let api_key = partner["api_key"].as_str().unwrap().to_string();
    let created = http
        .post(format!("{base}/v1/admin/partners/{partner_id}/campaigns"))
        .bearer_auth(token)
        .json(&json!({"definition": {
            "name": "Cart thanks",
            "status": "active",
            "trigger": {"event": {"name": "added_to_cart"}},
            "steps": [{"send": {"channel": "email", "template": {
                "subject": "Your {{ client.eventContext.product }}",
                "body": "<p>{{ client.eventContext.product }} is in your cart.</p>"
            }}}]
        }}))
        .send()
        .await?;
    anyhow::ensure!(
        created.status().as_u16() == 201,
        "{:?}",
        created.text().await
    );

    // A profile with an email per customer, so every message is queued (not skipped). Written
    // straight into ClickHouse in one insert: the setup, not what is measured.
    let ch = clickhouse::Client::default()
        .with_url(&ch_url)
        .with_database(&database);
    ch.query(
        "INSERT INTO customer_profiles (partner_id, customer_id, email, updated_at, version) \
         SELECT toUUID({partner:String}), concat('bench-', toString(number)), \
                concat('bench-', toString(number), '@example.com'), now64(3), 1 \
         FROM numbers({n:UInt64})",
    )
    .param("partner", partner_id.as_str())
    .param("n", total as u64)
    .execute()
    .await?;
    eprintln!("{total} profiles; sending {rate} events/s for {secs} s");

    let times: Arc<Mutex<Vec<(usize, i64, i64)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut senders = Vec::with_capacity(total);
    let load_started = Instant::now();
    for i in 0..total {
        ticker.tick().await;
        let (http, base, api_key, partner_id, times) = (
            http.clone(),
            base.clone(),
            api_key.clone(),
            partner_id.clone(),
            times.clone(),
        );
        senders.push(tokio::spawn(async move {
            let event = Event {
                event_id: uuid::Uuid::now_v7().to_string(),
                kind: EventKind::Customer,
                name: "added_to_cart".into(),
                source: "online_store".into(),
                customer_id: Some(format!("bench-{i}")),
                anonymous_id: None,
                session_id: None,
                occurred_at: format_rfc3339_ms(now_ms()),
                context: [(
                    "product".to_string(),
                    ContextValue::String(format!("sku-{}", i % 997)),
                )]
                .into(),
            };
            let batch = Batch {
                partner_id: Some(partner_id),
                sent_at: format_rfc3339_ms(now_ms()),
                events: vec![event],
            };
            let sent = now_ms();
            let resp = http
                .post(format!("{base}/v1/server/events"))
                .bearer_auth(&api_key)
                .json(&batch)
                .send()
                .await
                .expect("event");
            let acked = now_ms();
            assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
            times.lock().await.push((i, sent, acked));
        }));
    }
    for s in senders {
        s.await?;
    }
    let offered = load_started.elapsed().as_secs_f64();

    let deadline = Instant::now() + Duration::from_secs(120);
    let queued: Vec<(String, i64)> = loop {
        let rows: Vec<(String, i64)> = ch
            .query(
                "SELECT customer_id, toUnixTimestamp64Milli(created_at) \
                 FROM campaign_messages FINAL",
            )
            .fetch_all()
            .await?;
        if rows.len() >= total || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let queued: std::collections::HashMap<usize, i64> = queued
        .into_iter()
        .filter_map(|(c, at)| Some((c.strip_prefix("bench-")?.parse().ok()?, at)))
        .collect();
    let times = times.lock().await;
    let mut from_ack = Vec::new();
    let mut from_send = Vec::new();
    let mut http_rtt = Vec::new();
    for &(i, sent, acked) in times.iter() {
        http_rtt.push(acked - sent);
        if let Some(&at) = queued.get(&i) {
            from_ack.push(at - acked);
            from_send.push(at - sent);
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\n{total} events at {rate}/s offered over {offered:.1} s; {} messages queued; load average {}",
        queued.len(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!("\n| measure | n | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|");
    row(
        "HTTP 200 of /v1/server/events (sent → acknowledged)",
        http_rtt,
    );
    row("acknowledged → message `queued` (created_at)", from_ack);
    row("sent → message `queued` (created_at)", from_send);

    running.stop().await?;
    ch.query("DROP DATABASE IF EXISTS {db:Identifier}")
        .param("db", database.as_str())
        .execute()
        .await?;
    anyhow::ensure!(
        queued.len() == total,
        "{} of {total} messages queued",
        queued.len()
    );
    Ok(())
}
