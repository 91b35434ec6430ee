//! The test harness itself: a failing test must not leave a database or a server behind.

use std::time::{Duration, Instant};

use clickhouse::Client;

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_test_that_panics_still_drops_its_database_and_stops_its_server() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let failing = tokio::spawn(async move {
        let t = TestCollector::start().await;
        tx.send((t.database.clone(), t.url("/healthz"))).unwrap();
        panic!("an assertion in a test failed");
    });
    let (database, healthz) = rx.await.unwrap();
    assert!(failing.await.unwrap_err().is_panic());

    let databases = Client::default()
        .with_url(clickhouse_url())
        .query("SELECT count() FROM system.databases WHERE name = {db:String}")
        .param("db", database.as_str())
        .fetch_one::<u64>()
        .await
        .unwrap();
    assert_eq!(databases, 0, "database {database} was left behind");

    // The stop command was sent before the panic finished unwinding; the listener closes soon.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.get(&healthz).send().await.is_ok() {
        assert!(Instant::now() < deadline, "the server still answers");
        tokio::task::yield_now().await;
    }
}
