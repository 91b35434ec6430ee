//! A slow ClickHouse: a TCP proxy between the collector and the real server that, when armed,
//! forwards an `INSERT INTO events` request (or a segment query) but keeps its answer from the
//! collector. ClickHouse commits, the collector sees a timeout or a dropped connection and
//! answers 503, the client resends: every event must end up stored once. A segment query that
//! outlives its timeout is a 503 too, and the next one works.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_model::timestamp::format_rfc3339_ms;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::common::*;

/// What the armed proxy does with the answer to the next insert of events.
#[derive(Clone, Copy, Debug)]
enum Swallow {
    /// Keeps it, and the connection open: the collector's ClickHouse timeout fires.
    Hold,
    /// Closes the connection to the collector as soon as the answer arrives.
    Drop,
}

/// Which request the armed proxy swallows the answer of.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    /// An `INSERT INTO events`.
    EventsInsert,
    /// A compiled segment query (it reads `known_customers`).
    SegmentQuery,
}

struct Proxy {
    url: String,
    armed: Arc<Mutex<Option<(Target, Swallow)>>>,
    swallowed: mpsc::UnboundedReceiver<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let armed = Arc::new(Mutex::new(None));
        let (tx, swallowed) = mpsc::unbounded_channel();
        let state = armed.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream.clone(), state.clone(), tx.clone()));
            }
        });
        Proxy {
            url,
            armed,
            swallowed,
        }
    }

    /// The next `INSERT INTO events` gets its answer swallowed (once).
    fn arm(&self, mode: Swallow) {
        self.arm_for(Target::EventsInsert, mode);
    }

    /// The next request of `target` gets its answer swallowed (once).
    fn arm_for(&self, target: Target, mode: Swallow) {
        *self.armed.lock().unwrap() = Some((target, mode));
    }

    /// Waits until the armed proxy has swallowed an answer: ClickHouse has committed.
    async fn swallowed(&mut self) {
        tokio::time::timeout(Duration::from_secs(30), self.swallowed.recv())
            .await
            .expect("the proxy swallowed an insert's answer within 30 s")
            .unwrap();
    }
}

/// Decodes `+` and `%XX` of a URL query.
fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether this chunk starts an HTTP request of `target`: an insert into `events` (not
/// `rejected_events`), its SQL sent in the URL by the clickhouse crate; or a segment query, its
/// SQL in the body.
fn is_request_of(target: Target, chunk: &[u8]) -> bool {
    let text = String::from_utf8_lossy(chunk);
    if !text.starts_with("POST ") {
        return false;
    }
    match target {
        Target::EventsInsert => text
            .split("\r\n")
            .filter(|line| line.starts_with("POST "))
            .any(|line| {
                url_decode(line)
                    .replace('`', "")
                    .contains("INSERT INTO events(")
            }),
        Target::SegmentQuery => text.contains("FROM known_customers"),
    }
}

async fn relay(
    client: TcpStream,
    upstream: String,
    armed: Arc<Mutex<Option<(Target, Swallow)>>>,
    swallowed: mpsc::UnboundedSender<()>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Set when this connection carries the insert whose answer is to be swallowed. Without
    // pipelining, every byte the server sends after that is the answer to that insert.
    let swallow: Arc<Mutex<Option<Swallow>>> = Arc::new(Mutex::new(None));
    let marked = swallow.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            {
                let mut armed = armed.lock().unwrap();
                if let Some((target, mode)) = *armed {
                    if is_request_of(target, &buf[..n]) {
                        *armed = None;
                        *marked.lock().unwrap() = Some(mode);
                    }
                }
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut told = false;
    loop {
        let n = match server_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mode = *swallow.lock().unwrap();
        match mode {
            None => {
                if client_write.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            Some(mode) => {
                if !told {
                    told = true;
                    let _ = swallowed.send(());
                }
                if let Swallow::Drop = mode {
                    // Closing the collector's side mid-answer: a dropped connection.
                    return;
                }
            }
        }
    }
}

/// `(accepted, every result a duplicate)` of an answer.
fn duplicates(body: &Value) -> (u64, bool) {
    let results = body["results"].as_array().unwrap();
    (
        body["accepted"].as_u64().unwrap(),
        results.iter().all(|r| r["duplicate"] == true),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_insert_whose_answer_is_lost_is_stored_once_and_its_resend_is_answered_duplicate() {
    let upstream = clickhouse_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut proxy = Proxy::start(upstream).await;
    let t = TestCollector::start_with(proxy.url.clone(), |c| {
        c.clickhouse_timeout_ms = 1_500;
        // Two lanes: one insert of the request is swallowed while the other commits.
        c.sink_lanes = 2;
    })
    .await;
    let p = t.create_partner("Acme").await;

    let mut sent = 0;
    for mode in [Swallow::Hold, Swallow::Drop] {
        let events: Vec<_> = (0..20).map(|i| event("slow", &format!("c-{i}"))).collect();
        sent += events.len() as u64;
        let pending = batch(&p, events);
        proxy.arm(mode);
        let (status, _, body) = t.send(&pending, None).await;
        assert_eq!(status, 503, "{mode:?}: {body}");
        assert_eq!(body["error"]["code"], "storage_unavailable");
        proxy.swallowed().await;
        // The client resends the same batch, more than once. Everything had committed.
        for _ in 0..2 {
            let (status, _, body) = t.send(&pending, None).await;
            assert_eq!(status, 200, "{mode:?}: {body}");
            assert_eq!(duplicates(&body), (20, true), "{mode:?}: {body}");
        }
        assert_eq!(t.count("SELECT count() FROM events").await, sent);
        assert_eq!(
            t.count("SELECT uniqExact(event_id) FROM events").await,
            sent
        );
    }
    assert_eq!(t.metric("eventline_sink_inserts_in_doubt_total").await, 2);
    t.finish().await;
}

/// Waits until ClickHouse runs no insert into this test's `events` any more.
async fn no_insert_running(t: &TestCollector) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let running = t
            .count(&format!(
                "SELECT count() FROM system.processes WHERE query_kind = 'Insert' \
                 AND current_database = '{}'",
                t.database
            ))
            .await;
        if running == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "an insert still runs after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_insert_still_running_when_the_collector_gives_up_is_settled_before_the_resend() {
    let t = TestCollector::start_with(clickhouse_url(), |c| c.clickhouse_timeout_ms = 2_000).await;
    let p = t.create_partner("Acme").await;
    // Inserts that start in the next 1.2 s are slow: 20 rows × 140 ms = 2.8 s of work inside
    // ClickHouse, after it has the whole body, so the collector's 2 s timeout fires while the
    // insert runs on. A `now64()` is constant within a query, as sleepEachRow needs.
    let slow_until = format_rfc3339_ms(now_ms() + 1_200)
        .replace('T', " ")
        .replace('Z', "");
    t.db.query(
        "ALTER TABLE events ADD COLUMN slow_insert UInt8 DEFAULT \
         sleepEachRow(if(now64(3) < toDateTime64({until:String}, 3, 'UTC'), 0.14, 0))",
    )
    .param("until", slow_until.as_str())
    .execute()
    .await
    .unwrap();

    let events: Vec<_> = (0..20).map(|i| event("slow", &format!("c-{i}"))).collect();
    let pending = batch(&p, events);
    let (status, _, body) = t.send(&pending, None).await;
    assert_eq!(status, 503, "{body}");
    // The resend arrives while the first insert still runs. Without settling it first, the
    // look-up would find nothing, the events would be inserted again, and the first insert
    // would then commit its copies too.
    let (status, _, body) = t.send(&pending, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 20, "{body}");
    no_insert_running(&t).await;
    assert_eq!(t.count("SELECT count() FROM events").await, 20);
    assert_eq!(t.count("SELECT uniqExact(event_id) FROM events").await, 20);
    assert_eq!(t.metric("eventline_sink_inserts_in_doubt_total").await, 1);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_segment_query_that_outlives_its_timeout_answers_503_and_the_next_one_works() {
    let upstream = clickhouse_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut proxy = Proxy::start(upstream).await;
    let t =
        TestCollector::start_with(proxy.url.clone(), |c| c.segment_query_timeout_secs = 1).await;
    let p = t.create_partner("Acme").await;
    let (status, _, _) = t
        .send(&batch(&p, vec![event("product_viewed", "c-1")]), None)
        .await;
    assert_eq!(status, 200);
    let path = format!("/v1/admin/partners/{}/segments/preview", p.id);
    let definition = serde_json::json!({"definition": {"event": {"name": "product_viewed"}}});

    proxy.arm_for(Target::SegmentQuery, Swallow::Hold);
    let started = std::time::Instant::now();
    let (status, body) = t
        .admin(reqwest::Method::POST, &path, Some(definition.clone()))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
    proxy.swallowed().await;
    // The 1 s timeout answered, not the collector's 10 s ClickHouse timeout nor the proxy.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    let (status, body) = t
        .admin(reqwest::Method::POST, &path, Some(definition))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["members"], 1, "{body}");
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_insert_whose_key_rows_failed_after_its_events_committed_is_repaired_before_the_resend()
{
    let t = TestCollector::start_with(clickhouse_url(), |_| {}).await;
    let p = t.create_partner("Acme").await;
    // The duplicate look-up reads `event_keys`, which a view writes after the events part of
    // an insert has committed. Here the view fails: every row it writes gets a column whose
    // default throws.
    t.db.query(
        "ALTER TABLE event_keys ADD COLUMN fail_keys UInt8 \
         DEFAULT throwIf(1, 'injected: the event_keys part fails')",
    )
    .execute()
    .await
    .unwrap();
    let events: Vec<_> = (0..20).map(|i| event("keys", &format!("c-{i}"))).collect();
    let pending = batch(&p, events);
    let (status, _, body) = t.send(&pending, None).await;
    assert_eq!(status, 503, "{body}");
    // ClickHouse kept the events and has no keys for them: the state the sink must repair.
    assert_eq!(t.count("SELECT count() FROM events").await, 20);
    assert_eq!(t.count("SELECT count() FROM event_keys").await, 0);
    t.db.query("ALTER TABLE event_keys DROP COLUMN fail_keys")
        .execute()
        .await
        .unwrap();

    // Without the repair the look-up would find no key, and the resend would store every
    // event a second time.
    let (status, _, body) = t.send(&pending, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(duplicates(&body), (20, true), "{body}");
    assert_eq!(t.count("SELECT count() FROM events").await, 20);
    assert_eq!(
        t.count("SELECT uniqExact(event_id) FROM event_keys").await,
        20
    );
    assert_eq!(t.metric("eventline_sink_inserts_in_doubt_total").await, 1);
    t.finish().await;
}
