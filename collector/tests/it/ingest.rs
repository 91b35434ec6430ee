//! Ingest through `/v1/events` and `/v1/server/events` into real ClickHouse tables.

use std::io::Write;

use clickhouse::Row;
use event_model::json::Batch;
use event_model::timestamp::format_rfc3339_ms;
use event_model::{ContextValue, EventKind};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::common::*;

#[derive(Row, Deserialize, Debug)]
struct Stored {
    name: String,
    source: String,
    customer_id: String,
    kind: String,
    ingest_path: String,
    user_agent: String,
    context_strings: Vec<(String, String)>,
    context_numbers: Vec<(String, f64)>,
    context_booleans: Vec<(String, bool)>,
    skew_ms: i64,
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_events_are_queryable_with_context_and_corrected_time() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let mut e = event("product_viewed", "c-42");
    e.context.insert("price".into(), ContextValue::Number(99.5));
    e.context
        .insert("in_stock".into(), ContextValue::Bool(true));
    // The device clock runs two hours fast: occurred 10 s before it sent, by its own clock.
    let skewed = now_ms() + 2 * 3_600_000;
    e.occurred_at = format_rfc3339_ms(skewed - 10_000);
    let mut b = batch(&p, vec![e]);
    b.sent_at = format_rfc3339_ms(skewed);

    let (status, _, body) = t
        .post_raw(
            "/v1/events",
            &[
                ("content-type", "application/json"),
                ("user-agent", "it-test/1.0"),
            ],
            serde_json::to_vec(&b).unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["results"][0]["status"], "accepted");

    let rows: Vec<Stored> = t
        .db
        .query(
            "SELECT name, source, customer_id, kind, ingest_path, user_agent, context_strings, \
             context_numbers, context_booleans, \
             toInt64(toUnixTimestamp64Milli(received_at) - toUnixTimestamp64Milli(event_time)) AS skew_ms \
             FROM events",
        )
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(
        (r.name.as_str(), r.source.as_str(), r.customer_id.as_str()),
        ("product_viewed", "online_store", "c-42")
    );
    assert_eq!(
        (
            r.kind.as_str(),
            r.ingest_path.as_str(),
            r.user_agent.as_str()
        ),
        ("customer", "client", "it-test/1.0")
    );
    assert_eq!(
        r.context_strings,
        vec![("category".to_string(), "Jacket".to_string())]
    );
    assert_eq!(r.context_numbers, vec![("price".to_string(), 99.5)]);
    assert_eq!(r.context_booleans, vec![("in_stock".to_string(), true)]);
    assert_eq!(
        r.skew_ms, 10_000,
        "event_time = received_at - (sent_at - occurred_at)"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mixed_batch_stores_the_good_events_and_records_the_bad_ones() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let good = event("purchase", "c-1");
    let mut hyphen = event("purchase", "c-2");
    hyphen
        .context
        .insert("user-name".into(), ContextValue::String("x".into()));
    let mut unknown = event("purchase", "c-3");
    unknown.source = "nowhere".into();
    let (status, _, body) = t
        .send(&batch(&p, vec![good, hyphen.clone(), unknown]), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(1), Some(2))
    );
    let r1 = &body["results"][1];
    assert_eq!(r1["status"], "rejected");
    assert_eq!(r1["code"], "context_key_hyphen");
    assert_eq!(r1["field"], "context.user-name");
    assert!(r1["message"].as_str().unwrap().contains("hyphen"), "{r1}");
    assert_eq!(body["results"][2]["code"], "unknown_source");

    assert_eq!(t.count("SELECT count() FROM events").await, 1);
    t.rejections_written(2).await;
    #[derive(Row, Deserialize)]
    struct Rejected {
        reason_code: String,
        event_id: String,
        event_index: i32,
        payload: String,
    }
    let rejected: Vec<Rejected> = t
        .db
        .query("SELECT reason_code, event_id, event_index, payload FROM rejected_events ORDER BY event_index")
        .fetch_all()
        .await
        .unwrap();
    let codes: Vec<(&str, i32)> = rejected
        .iter()
        .map(|r| (r.reason_code.as_str(), r.event_index))
        .collect();
    assert_eq!(
        codes,
        vec![("context_key_hyphen", 1), ("unknown_source", 2)]
    );
    assert_eq!(rejected[0].event_id, hyphen.event_id);
    let payload: Value = serde_json::from_str(&rejected[0].payload).unwrap();
    assert_eq!(
        payload["context"]["user-name"], "x",
        "the raw event is kept"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_with_only_a_hyphenated_key_is_answered_400() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let mut e = event("purchase", "c-2");
    e.context
        .insert("promo-code".into(), ContextValue::String("X".into()));
    let (status, _, body) = t.send(&batch(&p, vec![e]), None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "context_key_hyphen");
    assert_eq!(t.count("SELECT count() FROM events").await, 0);
    t.rejections_written(1).await;
    assert_eq!(
        t.count("SELECT count() FROM rejected_events WHERE reason_code = 'context_key_hyphen'")
            .await,
        1
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_disabled_and_wrong_origin_sources_are_refused_clearly() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let (s, body) = t
        .patch_source(&p, &p.online_store_id, json!({ "domain": "shop.example" }))
        .await;
    assert_eq!(s, 200, "{body}");

    // The store's own origin and its subdomains are accepted, and may read the answer (CORS).
    let (status, headers, body) = t
        .send(
            &batch(&p, vec![event("view", "c")]),
            Some("https://www.shop.example"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://www.shop.example"
    );

    // Another origin: 403, without naming the origin or the domain, and no CORS headers for it.
    let (status, headers, body) = t
        .send(
            &batch(&p, vec![event("view", "c")]),
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "origin_not_allowed");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("shop.example") && !message.contains("evil.example"),
        "{message}"
    );
    assert!(headers.get("access-control-allow-origin").is_none());

    let mut unknown = event("view", "c");
    unknown.source = "mobile_app".into();
    let (status, _, body) = t.send(&batch(&p, vec![unknown]), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unknown_source")),
        "{body}"
    );

    let (s, _) = t
        .patch_source(&p, &p.online_store_id, json!({ "active": false }))
        .await;
    assert_eq!(s, 200);
    let (status, _, body) = t.send(&batch(&p, vec![event("view", "c")]), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("source_disabled")),
        "{body}"
    );

    let mut other = batch(&p, vec![event("view", "c")]);
    other.partner_id = Some(uuid::Uuid::new_v4().to_string());
    let (status, _, body) = t.send(&other, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unknown_partner")),
        "{body}"
    );

    // The unknown partner's request is nobody's: counted in /metrics, not stored.
    assert_eq!(t.count("SELECT count() FROM events").await, 1);
    t.rejections_written(3).await;
    assert_eq!(
        t.count("SELECT count() FROM rejected_events WHERE reason_code IN ('origin_not_allowed','unknown_source','source_disabled','unknown_partner')").await,
        3
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_preflight_is_allowed_only_for_a_known_active_domain() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    t.patch_source(&p, &p.online_store_id, json!({ "domain": "shop.example" }))
        .await;
    let preflight = |origin: &'static str| {
        t.http
            .request(reqwest::Method::OPTIONS, t.url("/v1/events"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let ok = preflight("https://shop.example").await.unwrap();
    assert_eq!(ok.status().as_u16(), 204);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_and_beacon_bodies_are_accepted_and_broken_gzip_is_refused() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let json_body = serde_json::to_vec(&batch(&p, vec![event("a", "c"), event("b", "c")])).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json_body).unwrap();
    let (status, _, body) = t
        .post_raw(
            "/v1/events",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            gz.finish().unwrap(),
        )
        .await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(2)),
        "{body}"
    );

    let beacon = serde_json::to_vec(&batch(&p, vec![event("c", "c")])).unwrap();
    let (status, _, body) = t
        .post_raw(
            "/v1/events",
            &[("content-type", "text/plain;charset=UTF-8")],
            beacon,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, _, body) = t
        .post_raw(
            "/v1/events",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            b"not gzip".to_vec(),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_gzip")),
        "{body}"
    );

    let (status, _, body) = t
        .post_raw(
            "/v1/events",
            &[("content-type", "application/xml")],
            b"<a/>".to_vec(),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (415, Some("unsupported_media_type")),
        "{body}"
    );

    assert_eq!(t.count("SELECT count() FROM events").await, 3);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_and_gzip_bombs_get_413_and_are_recorded() {
    let t = TestCollector::start_with(clickhouse_url(), |c| c.max_body_bytes = 64 * 1024).await;
    let p = t.create_partner("Acme").await;
    // Through the server door, so the API key names the partner the refusals are recorded for.
    let auth = format!("Bearer {}", p.api_key);
    let big = vec![b' '; 65 * 1024];
    let (status, _, body) = t
        .post_raw(
            "/v1/server/events",
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
            big,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("body_too_large")),
        "{body}"
    );

    // 1 MiB of spaces gzips to about 1 KiB: the limit applies to the decompressed size too.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 1024 * 1024]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 64 * 1024);
    let (status, _, body) = t
        .post_raw(
            "/v1/server/events",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
                ("authorization", &auth),
            ],
            bomb,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("body_too_large")),
        "{body}"
    );

    t.rejections_written(2).await;
    assert_eq!(t.count(&format!("SELECT count() FROM rejected_events WHERE reason_code = 'body_too_large' AND event_index = -1 AND partner_id = '{}'", p.id)).await, 2);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_of_a_known_partner_is_answered_400_and_kept_verbatim() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let auth = format!("Bearer {}", p.api_key);
    let (status, _, body) = t
        .post_raw(
            "/v1/server/events",
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
            b"{\"sent_at\": ".to_vec(),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "{body}"
    );
    t.rejections_written(1).await;
    assert_eq!(
        t.count("SELECT count() FROM rejected_events WHERE payload = '{\"sent_at\": '")
            .await,
        1
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_batch_is_stored_once_and_reported_as_duplicate() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let b = batch(&p, vec![event("purchase", "c-1"), event("purchase", "c-2")]);
    let (status, _, first) = t.send(&b, None).await;
    assert_eq!(status, 200, "{first}");
    assert!(first["results"][0].get("duplicate").is_none());
    // A retry that adds one new event, and repeats an event inside the same batch.
    let mut retry = b.clone();
    retry.events.push(event("purchase", "c-3"));
    retry.events.push(retry.events[2].clone());
    let (status, _, second) = t.send(&retry, None).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["results"][0]["duplicate"], true);
    assert_eq!(second["results"][1]["duplicate"], true);
    assert!(second["results"][2].get("duplicate").is_none());
    // Analysts query without FINAL and still see each event once.
    assert_eq!(t.count("SELECT count() FROM events").await, 3);
    assert_eq!(t.count("SELECT uniqExact(event_id) FROM events").await, 3);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_commit_larger_than_one_lookup_chunk_is_found_stored_in_every_chunk() {
    // 3,000 rows make one commit (the row limit starts it; the linger would wait 60 s), and its
    // duplicate look-up asks ClickHouse in chunks of 2,000 ids.
    let t = TestCollector::start_with(clickhouse_url(), |c| {
        c.batch_linger_ms = 60_000;
        c.batch_max_rows = 3_000;
    })
    .await;
    let p = t.create_partner("Acme").await;
    let batches: Vec<Batch> = (0..6)
        .map(|b| {
            let events = (0..500)
                .map(|i| event("purchase", &format!("c-{b}-{i}")))
                .collect();
            batch(&p, events)
        })
        .collect();
    for round in ["first", "retry"] {
        let answers = futures_util::future::join_all(batches.iter().map(|b| t.send(b, None))).await;
        for (status, _, body) in answers {
            assert_eq!(status, 200, "{round}: {body}");
            let duplicates = body["results"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["duplicate"] == true)
                .count();
            let expected = if round == "first" { 0 } else { 500 };
            assert_eq!(duplicates, expected, "{round}: {body}");
        }
    }
    assert_eq!(t.count("SELECT count() FROM events").await, 3_000);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn server_to_server_ingest_needs_the_partner_api_key() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let other = t.create_partner("Other").await;
    let system = event_model::Event {
        kind: EventKind::System,
        customer_id: None,
        name: "product_back_in_stock".into(),
        ..event("x", "c")
    };
    let mut b = batch(&p, vec![system, event("purchase", "c-9")]);
    b.partner_id = None;
    let body = serde_json::to_vec(&b).unwrap();
    let ct = ("content-type", "application/json");

    let (status, _, resp) = t.post_raw("/v1/server/events", &[ct], body.clone()).await;
    assert_eq!(
        (status, resp["error"]["code"].as_str()),
        (401, Some("missing_api_key")),
        "{resp}"
    );
    let (status, _, resp) = t
        .post_raw(
            "/v1/server/events",
            &[ct, ("authorization", "Bearer elk_wrong")],
            body.clone(),
        )
        .await;
    assert_eq!(
        (status, resp["error"]["code"].as_str()),
        (403, Some("invalid_api_key")),
        "{resp}"
    );

    let auth = format!("Bearer {}", p.api_key);
    let (status, _, resp) = t
        .post_raw("/v1/server/events", &[ct, ("authorization", &auth)], body)
        .await;
    assert_eq!(
        (status, resp["accepted"].as_u64()),
        (200, Some(2)),
        "{resp}"
    );

    // A key used for another partner's batch is refused.
    let mut foreign = batch(&other, vec![event("purchase", "c")]);
    foreign.partner_id = Some(other.id.clone());
    let (status, _, resp) = t
        .post_raw(
            "/v1/server/events",
            &[ct, ("authorization", &auth)],
            serde_json::to_vec(&foreign).unwrap(),
        )
        .await;
    assert_eq!(
        (status, resp["error"]["code"].as_str()),
        (403, Some("invalid_api_key")),
        "{resp}"
    );

    let partner_filter = format!("partner_id = '{}'", p.id);
    assert_eq!(
        t.count(&format!(
            "SELECT count() FROM events WHERE ingest_path = 'server' AND {partner_filter}"
        ))
        .await,
        2
    );
    assert_eq!(t.count("SELECT count() FROM events WHERE kind = 'system' AND customer_id = '' AND anonymous_id = ''").await, 1);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quotes_and_sql_in_values_are_stored_verbatim() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let nasty = "x'); DROP TABLE events; --";
    let mut e = event(nasty, nasty);
    e.context
        .insert("q".into(), ContextValue::String(nasty.into()));
    let (status, _, body) = t.send(&batch(&p, vec![e.clone()]), None).await;
    assert_eq!(status, 200, "{body}");
    // Retrying exercises the duplicate look-up, whose ids travel as bound parameters.
    let (status, _, body) = t.send(&batch(&p, vec![e]), None).await;
    assert_eq!(
        (status, body["results"][0]["duplicate"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let n = t
        .db
        .query("SELECT count() FROM events WHERE name = {n:String} AND customer_id = {n:String} AND context_strings['q'] = {n:String}")
        .param("n", nasty)
        .fetch_one::<u64>()
        .await
        .unwrap();
    assert_eq!(n, 1);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_metrics_report_what_happened() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let mut bad = event("x", "c");
    bad.context.insert("a-b".into(), ContextValue::Bool(true));
    t.send(&batch(&p, vec![event("x", "c"), bad]), None).await;
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            t.http
                .get(t.url(path))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            200,
            "{path}"
        );
    }
    let metrics = t
        .http
        .get(t.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("eventline_events_accepted_total{ingest_path=\"client\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("eventline_events_rejected_total{code=\"context_key_hyphen\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("eventline_sink_commit_seconds_bucket"),
        "{metrics}"
    );
    t.finish().await;
}
