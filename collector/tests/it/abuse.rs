//! The collector under abuse: amplification, strangers, missing Origins, floods, slow senders,
//! held connections, retention and client addresses. Each test configures small bounds and
//! shows the bound holds; none sleeps to wait for something (deadlines and polls only).

use std::time::{Duration, Instant};

use clickhouse::Row;
use event_model::ContextValue;
use eventline_collector::config::{ClientIpMode, TrustedProxies};
use eventline_collector::store::rejected_ttl::ttl_days_in;
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

async fn metrics(t: &TestCollector) -> String {
    t.http
        .get(t.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn addr(t: &TestCollector) -> std::net::SocketAddr {
    t.running.as_ref().unwrap().addr
}

/// Reads from `stream` until `done` holds for what arrived, the peer closes, or `deadline`.
async fn read_until(
    stream: &mut TcpStream,
    deadline: Duration,
    done: impl Fn(&str) -> bool,
) -> Result<String, String> {
    let mut got = Vec::new();
    let until = Instant::now() + deadline;
    loop {
        let mut buf = [0u8; 4096];
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => {
                return Err(format!(
                    "nothing conclusive within {deadline:?}: {:?}",
                    String::from_utf8_lossy(&got)
                ))
            }
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if done(&text) {
                    return Ok(text.into_owned());
                }
            }
        }
    }
}

fn json_ct() -> (&'static str, &'static str) {
    ("content-type", "application/json")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_user_agent_with_500_bad_events_stores_capped_rows_that_echo_neither_origin_nor_domain(
) {
    let t =
        TestCollector::start_with(clickhouse_url(), |c| c.max_body_bytes = 8 * 1024 * 1024).await;
    let p = t.create_partner("Acme").await;
    t.patch_source(
        &p,
        &p.online_store_id,
        json!({ "domain": "secret-shop.example" }),
    )
    .await;
    // 500 events of about 9 KiB, each refused (a context string over 2048 characters).
    let events: Vec<_> = (0..500)
        .map(|i| {
            let mut e = event("view", &format!("c-{i}"));
            e.context
                .insert("note".into(), ContextValue::String("n".repeat(9_000)));
            e
        })
        .collect();
    let first_len = serde_json::to_string(&events[0]).unwrap().len();
    let body = serde_json::to_vec(&batch(&p, events)).unwrap();
    let user_agent = "A".repeat(100_000);
    let (status, _, answer) = t
        .post_raw(
            "/v1/events",
            &[
                json_ct(),
                ("user-agent", &user_agent),
                ("origin", "https://evil-origin.example"),
            ],
            body,
        )
        .await;
    assert_eq!(status, 400, "{}", answer.to_string().get(..300).unwrap());
    let text = answer.to_string();
    assert_eq!(answer["rejected"], 500);
    assert!(!text.contains("evil-origin") && !text.contains("secret-shop"));

    t.rejections_written(500).await;
    #[derive(Row, Deserialize, Debug)]
    struct Summary {
        rows: u64,
        longest_agent: u64,
        longest_payload: u64,
        smallest_original: u32,
        first_original: u32,
        echoes: u64,
    }
    let s: Summary = t
        .db
        .query(
            "SELECT count() AS rows, max(length(user_agent)) AS longest_agent, \
             max(length(payload)) AS longest_payload, min(payload_bytes) AS smallest_original, \
             anyIf(payload_bytes, event_index = 0) AS first_original, \
             countIf(position(reason_message, 'evil-origin') > 0 OR position(reason_message, 'secret-shop') > 0 \
                     OR position(reason_field, 'evil-origin') > 0) AS echoes \
             FROM rejected_events",
        )
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(s.rows, 500, "{s:?}");
    assert_eq!(s.longest_agent, 512, "{s:?}");
    assert_eq!(s.longest_payload, 8 * 1024, "{s:?}");
    assert!(s.smallest_original > 9_000, "{s:?}");
    assert_eq!(s.first_original as usize, first_len, "{s:?}");
    assert_eq!(s.echoes, 0, "{s:?}");
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_of_no_known_partner_are_counted_in_metrics_not_stored() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let mut stranger = batch(&p, vec![event("view", "c")]);
    stranger.partner_id = Some(uuid::Uuid::new_v4().to_string());
    let (status, _, body) = t.send(&stranger, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unknown_partner"))
    );
    let (status, _, _) = t
        .post_raw("/v1/events", &[json_ct()], b"{\"sent_at\":".to_vec())
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = t
        .post_raw("/v1/server/events", &[json_ct()], b"{}".to_vec())
        .await;
    assert_eq!(status, 401);
    // The partner's own bad envelope is its mistake, and is kept.
    let mut empty = batch(&p, vec![]);
    empty.events.clear();
    let (status, _, _) = t.send(&empty, None).await;
    assert_eq!(status, 400);

    // Rows are written in the background: once the partner's own row is, any other would be too.
    t.rejections_written(1).await;
    assert_eq!(
        t.count("SELECT count() FROM rejected_events WHERE reason_code != 'empty_batch'")
            .await,
        0
    );
    assert_eq!(t.count("SELECT count() FROM rejected_events").await, 1);
    let m = metrics(&t).await;
    for code in ["unknown_partner", "invalid_json", "missing_api_key"] {
        assert!(
            m.contains(&format!(
                "eventline_requests_not_stored_total{{code=\"{code}\"}} 1"
            )),
            "{code}: {m}"
        );
    }
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_with_a_domain_requires_an_origin_and_an_app_source_takes_none() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    t.patch_source(&p, &p.online_store_id, json!({ "domain": "shop.example" }))
        .await;
    let (s, body) = t
        .add_source(&p, json!({ "name": "App", "code": "mobile_app" }))
        .await;
    assert_eq!(s, 201, "{body}");

    // curl with the public partner id cannot write into the browser source.
    let (status, _, body) = t.send(&batch(&p, vec![event("view", "c")]), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("origin_required")),
        "{body}"
    );
    assert!(!body.to_string().contains("shop.example"));
    let (status, _, body) = t
        .send(
            &batch(&p, vec![event("view", "c")]),
            Some("https://shop.example"),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let mut app_event = event("open", "c");
    app_event.source = "mobile_app".into();
    let (status, _, body) = t.send(&batch(&p, vec![app_event.clone()]), None).await;
    assert_eq!(status, 200, "{body}");
    app_event.event_id = uuid::Uuid::now_v7().to_string();
    let (status, _, body) = t
        .send(&batch(&p, vec![app_event]), Some("https://shop.example"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("origin_not_allowed")),
        "{body}"
    );
    assert_eq!(t.count("SELECT count() FROM events").await, 2);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_headers_are_sent_only_for_origins_an_active_source_admits() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    t.patch_source(&p, &p.online_store_id, json!({ "domain": "shop.example" }))
        .await;
    let (_, headers, _) = t
        .send(
            &batch(&p, vec![event("view", "c")]),
            Some("https://www.shop.example"),
        )
        .await;
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://www.shop.example"
    );
    assert_eq!(headers["vary"], "Origin");
    // An error answer to an admitted origin is readable too.
    let (status, headers, _) = t
        .post_raw(
            "/v1/events",
            &[json_ct(), ("origin", "https://shop.example")],
            b"{".to_vec(),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://shop.example"
    );

    let (_, headers, _) = t
        .send(
            &batch(&p, vec![event("view", "c")]),
            Some("https://evil.example"),
        )
        .await;
    assert!(headers.get("access-control-allow-origin").is_none());
    assert_eq!(headers["vary"], "Origin");

    let refused = t
        .http
        .request(reqwest::Method::OPTIONS, t.url("/v1/events"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert!(!refused.text().await.unwrap().contains("evil.example"));

    // A disabled source admits nobody.
    t.patch_source(&p, &p.online_store_id, json!({ "active": false }))
        .await;
    let (_, headers, _) = t
        .send(
            &batch(&p, vec![event("view", "c")]),
            Some("https://shop.example"),
        )
        .await;
    assert!(headers.get("access-control-allow-origin").is_none());
    t.finish().await;
}

/// Sends `request` until it is answered 429 (at most `tries` times); returns the answer.
async fn until_429(
    tries: usize,
    mut request: impl FnMut() -> reqwest::RequestBuilder,
) -> reqwest::Response {
    for _ in 0..tries {
        let r = request().send().await.unwrap();
        if r.status().as_u16() == 429 {
            return r;
        }
    }
    panic!("no 429 after {tries} requests");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_from_one_address_gets_429_with_retry_after_while_another_address_is_served() {
    let t = TestCollector::start_with(clickhouse_url(), |c| {
        (c.rate_limit_ip_per_sec, c.rate_limit_ip_burst) = (1, 3);
        // The test client is 127.0.0.1; as a trusted proxy it can speak for other addresses.
        c.trusted_proxies = TrustedProxies::parse("127.0.0.1/32").unwrap();
    })
    .await;
    let p = t.create_partner("Acme").await;
    let flood = || {
        t.http
            .post(t.url("/v1/events"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", "198.51.100.7")
            .body("{")
    };
    let refused = until_429(10, flood).await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // The same address is refused on the server door too, before its key is even looked at.
    let server = t
        .http
        .post(t.url("/v1/server/events"))
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .unwrap();
    assert_eq!(server.status().as_u16(), 429);

    let (status, _, body) = t
        .post_raw(
            "/v1/events",
            &[json_ct(), ("x-forwarded-for", "198.51.100.8")],
            serde_json::to_vec(&batch(&p, vec![event("view", "c")])).unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let m = metrics(&t).await;
    assert!(
        m.contains("eventline_rate_limited_total{scope=\"ip\"} 2"),
        "{m}"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partner_over_its_limit_gets_429_while_another_partner_is_served() {
    let t = TestCollector::start_with(clickhouse_url(), |c| {
        c.rate_limit_ip_per_sec = 0;
        (c.rate_limit_partner_per_sec, c.rate_limit_partner_burst) = (1, 2);
    })
    .await;
    let a = t.create_partner("A").await;
    let b = t.create_partner("B").await;
    let send_a = || {
        t.http
            .post(t.url("/v1/events"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&batch(&a, vec![event("view", "c")])).unwrap())
    };
    let refused = until_429(10, send_a).await;
    assert!(refused.headers().contains_key("retry-after"));
    // The partner's bucket is shared by both doors.
    let server = t
        .http
        .post(t.url("/v1/server/events"))
        .bearer_auth(&a.api_key)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&batch(&a, vec![event("view", "c")])).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(server.status().as_u16(), 429);
    let (status, _, body) = t.send(&batch(&b, vec![event("view", "c")]), None).await;
    assert_eq!(status, 200, "{body}");
    let m = metrics(&t).await;
    assert!(
        m.contains("eventline_rate_limited_total{scope=\"partner\"} 2"),
        "{m}"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_body_is_answered_408_body_timeout_within_the_bound() {
    let t = TestCollector::start_with(clickhouse_url(), |c| c.body_timeout_ms = 300).await;
    let mut stream = TcpStream::connect(addr(&t)).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(
            b"POST /v1/events HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{\"partner_id\":",
        )
        .await
        .unwrap();
    let answer = read_until(&mut stream, Duration::from_secs(5), |text| {
        text.contains("body_timeout")
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_headers_are_cut_off_by_the_header_timeout() {
    let t = TestCollector::start_with(clickhouse_url(), |c| c.header_timeout_ms = 300).await;
    let mut stream = TcpStream::connect(addr(&t)).await.unwrap();
    stream
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: test\r\n")
        .await
        .unwrap();
    // Answered 408 or closed, well before the default 5 s.
    let answer = read_until(&mut stream, Duration::from_secs(3), |text| {
        text.contains("\r\n\r\n")
    })
    .await
    .unwrap();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let t = TestCollector::start_with(clickhouse_url(), |c| {
        c.workers = 1;
        c.max_connections = 2;
    })
    .await;
    let get = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";
    let answered = |text: &str| text.contains("\"ok\"");
    // Two connections, each proven accepted by an answer, then held open (keep-alive).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr(&t)).await.unwrap();
        s.write_all(get).await.unwrap();
        read_until(&mut s, Duration::from_secs(5), answered)
            .await
            .unwrap();
        held.push(s);
    }
    let mut third = TcpStream::connect(addr(&t)).await.unwrap();
    third.write_all(get).await.unwrap();
    let waiting = read_until(&mut third, Duration::from_millis(500), answered).await;
    assert!(
        waiting.is_err(),
        "the third connection was served: {waiting:?}"
    );
    drop(held.pop());
    let served = read_until(&mut third, Duration::from_secs(5), answered)
        .await
        .unwrap();
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    t.finish().await;
}

async fn rejected_ttl_days(t: &TestCollector) -> Option<u32> {
    let engine: String =
        t.db.query(
            "SELECT engine_full FROM system.tables \
             WHERE database = currentDatabase() AND name = 'rejected_events'",
        )
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(engine.contains(" TTL "), ttl_days_in(&engine).is_some());
    ttl_days_in(&engine)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rejected_events_ttl_is_set_at_start_up_and_follows_the_setting() {
    let t = TestCollector::start().await;
    assert_eq!(rejected_ttl_days(&t).await, Some(30), "the default");
    let database = t.database.clone();
    let mut t2 = TestCollector::start_with(clickhouse_url(), |c| {
        c.clickhouse_database = database.clone();
        c.rejected_ttl_days = 7;
    })
    .await;
    assert_eq!(rejected_ttl_days(&t2).await, Some(7));
    t2.running.take().unwrap().stop().await.unwrap();
    let mut t3 = TestCollector::start_with(clickhouse_url(), |c| {
        c.clickhouse_database = database;
        c.rejected_ttl_days = 0;
    })
    .await;
    assert_eq!(rejected_ttl_days(&t3).await, None, "0 keeps rows forever");
    t3.running.take().unwrap().stop().await.unwrap();
    t.finish().await;
}

/// Stores one accepted event and one rejected event of a known partner; returns the IPs stored.
async fn stored_ips(t: &TestCollector, headers: &[(&str, &str)]) -> (String, String) {
    let p = t.create_partner("Acme").await;
    let mut bad = event("view", "c");
    bad.context.insert("a-b".into(), ContextValue::Bool(true));
    let mut all = vec![json_ct()];
    all.extend_from_slice(headers);
    let (status, _, body) = t
        .post_raw(
            "/v1/events",
            &all,
            serde_json::to_vec(&batch(&p, vec![event("view", "c"), bad])).unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    t.rejections_written(1).await;
    let one = |table: &'static str| async move {
        t.db.query(&format!("SELECT client_ip FROM {table}"))
            .fetch_one::<String>()
            .await
            .unwrap()
    };
    (one("events").await, one("rejected_events").await)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_ip_is_stored_truncated_by_default_whole_or_not_at_all_when_configured() {
    for (mode, expected) in [
        (None, "127.0.0.0"),
        (Some(ClientIpMode::Full), "127.0.0.1"),
        (Some(ClientIpMode::None), ""),
    ] {
        let t = TestCollector::start_with(clickhouse_url(), |c| {
            if let Some(mode) = mode {
                c.client_ip = mode;
            }
        })
        .await;
        let (event_ip, rejected_ip) = stored_ips(&t, &[]).await;
        assert_eq!(
            (event_ip.as_str(), rejected_ip.as_str()),
            (expected, expected),
            "{mode:?}"
        );
        t.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn x_forwarded_for_is_read_only_from_trusted_proxies_from_the_right() {
    let forged = [("x-forwarded-for", "6.6.6.6, 198.51.100.77")];
    let t = TestCollector::start_with(clickhouse_url(), |c| c.client_ip = ClientIpMode::Full).await;
    assert_eq!(
        stored_ips(&t, &forged).await.0,
        "127.0.0.1",
        "no trusted proxy: the header is ignored"
    );
    t.finish().await;

    let t = TestCollector::start_with(clickhouse_url(), |c| {
        c.client_ip = ClientIpMode::Full;
        c.trusted_proxies = TrustedProxies::parse("127.0.0.1/32").unwrap();
    })
    .await;
    assert_eq!(stored_ips(&t, &forged).await.0, "198.51.100.77");
    t.finish().await;

    let t = TestCollector::start_with(clickhouse_url(), |c| {
        c.trusted_proxies = TrustedProxies::parse("127.0.0.1/32").unwrap();
    })
    .await;
    assert_eq!(
        stored_ips(&t, &forged).await,
        ("198.51.100.0".into(), "198.51.100.0".into()),
        "truncated after resolving"
    );
    t.finish().await;
}
