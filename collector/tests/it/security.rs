//! Closed by default: admin tokens at start-up and per request.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const LONG_TOKEN: &str = "a-test-admin-token-of-more-than-32-bytes";

/// Runs the binary with `env` (and nothing inherited that could configure it); returns its exit
/// code and stderr, or panics if it is still running after 20 s (it started serving).
fn run_binary(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eventline-collector"));
    command
        .arg("serve")
        .env_clear()
        .env("CLICKHOUSE_URL", clickhouse_url())
        .env("CLICKHOUSE_DATABASE", "eventline_it_must_not_be_created")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            return (
                status.code(),
                String::from_utf8_lossy(&output.stderr).into(),
            );
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the collector started serving with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_binary_refuses_a_public_address_with_the_default_a_short_or_an_empty_token() {
    let (code, stderr) = run_binary(&[("EVENTLINE_LISTEN", "0.0.0.0:0")]);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("public local admin token") && stderr.contains("EVENTLINE_ADMIN_TOKEN"),
        "{stderr}"
    );
    let (code, stderr) = run_binary(&[
        ("EVENTLINE_LISTEN", "0.0.0.0:0"),
        ("EVENTLINE_ADMIN_TOKEN", "short-token"),
    ]);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("EVENTLINE_ADMIN_TOKEN is 11 bytes long") && stderr.contains("32 bytes"),
        "{stderr}"
    );
    for listen in ["0.0.0.0:0", "127.0.0.1:0"] {
        let (code, stderr) =
            run_binary(&[("EVENTLINE_LISTEN", listen), ("EVENTLINE_ADMIN_TOKEN", "")]);
        assert_ne!(code, Some(0));
        assert!(
            stderr.contains("EVENTLINE_ADMIN_TOKEN is empty"),
            "{stderr}"
        );
    }
    let (code, stderr) = run_binary(&[
        ("EVENTLINE_LISTEN", "0.0.0.0:0"),
        ("EVENTLINE_ADMIN_TOKEN", LONG_TOKEN),
        ("EVENTLINE_ADMIN_TOKEN_PREVIOUS", "old"),
    ]);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("EVENTLINE_ADMIN_TOKEN_PREVIOUS is 3 bytes long"),
        "{stderr}"
    );
}

async fn status_with(t: &TestCollector, token: &str) -> u16 {
    t.http
        .get(t.url("/v1/admin/partners"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_current_and_the_previous_token_both_open_the_admin_api() {
    let t = TestCollector::start_with(clickhouse_url(), |c| {
        c.admin_token = Some(LONG_TOKEN.into());
        c.admin_token_previous = Some(ADMIN_TOKEN.into());
    })
    .await;
    assert_eq!(status_with(&t, LONG_TOKEN).await, 200);
    assert_eq!(status_with(&t, ADMIN_TOKEN).await, 200);
    for wrong in ["x", &LONG_TOKEN[..LONG_TOKEN.len() - 1], "test-admin-tokeN"] {
        assert_eq!(status_with(&t, wrong).await, 403, "{wrong:?}");
    }
    let missing = t
        .http
        .get(t.url("/v1/admin/partners"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 401);

    // The previous token (the helper's) creates a partner; the audit row names it by its id.
    t.create_partner("Acme").await;
    let entries = t.audit("").await;
    assert_eq!(
        entries[0]["actor"].as_str(),
        Some(eventline_collector::admin_token::token_id(ADMIN_TOKEN).as_str())
    );
    assert_ne!(
        eventline_collector::admin_token::token_id(ADMIN_TOKEN),
        eventline_collector::admin_token::token_id(LONG_TOKEN)
    );
    t.finish().await;

    // After rotation the old token is refused.
    let t = TestCollector::start_with(clickhouse_url(), |c| {
        c.admin_token = Some(LONG_TOKEN.into());
    })
    .await;
    assert_eq!(status_with(&t, LONG_TOKEN).await, 200);
    assert_eq!(status_with(&t, ADMIN_TOKEN).await, 403);
    t.finish().await;
}
