//! First-party serving: the collector serves the tracker's files (versioned, immutable-cached,
//! gzip when accepted) and takes client ingest under a public path prefix, so a site can put
//! both behind one path of its own domain.

use std::io::Read;
use std::path::PathBuf;

use eventline_collector::config::PathPrefix;

use crate::common::*;

/// A tracker build in a temporary folder: the three files the collector serves.
fn tracker_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eventline-dist-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("wasm")).unwrap();
    std::fs::write(
        dir.join("eventline.js"),
        "export const build = 'test';\n".repeat(50),
    )
    .unwrap();
    std::fs::write(dir.join("messages.js"), "export const MESSAGES = {};").unwrap();
    std::fs::write(
        dir.join("snippet.js"),
        "window.eventline=window.eventline||1;",
    )
    .unwrap();
    std::fs::write(
        dir.join("wasm/eventline_tracker_bg.wasm"),
        b"\0asm\x01\0\0\0",
    )
    .unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tracker_and_client_ingest_are_served_under_the_public_prefix_and_admin_is_not() {
    let dir = tracker_dir();
    let t = TestCollector::start_with(clickhouse_url(), |c| {
        c.tracker_dir = Some(dir.clone());
        c.public_path_prefix = PathPrefix::parse("/x7k").unwrap();
    })
    .await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // `latest` points at the current build, relative to where it was asked for.
    let latest = no_redirects
        .get(t.url("/x7k/tracker/latest/eventline.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(latest.status().as_u16(), 307);
    assert_eq!(latest.headers()["cache-control"], "public, max-age=300");
    let location = latest.headers()["location"].to_str().unwrap().to_string();
    let version = location
        .strip_prefix("../")
        .and_then(|rest| rest.strip_suffix("/eventline.js"))
        .unwrap_or_else(|| panic!("{location}"))
        .to_string();
    assert_eq!(version.len(), 16);

    let js = t
        .http
        .get(t.url(&format!("/x7k/tracker/{version}/eventline.js")))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(js.status().as_u16(), 200);
    let headers = js.headers().clone();
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["access-control-allow-origin"], "*");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&js.bytes().await.unwrap()[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(
        text,
        std::fs::read_to_string(dir.join("eventline.js")).unwrap()
    );

    // The .wasm beside it, at the root too (no prefix), uncompressed when gzip is not asked for.
    let wasm = t
        .http
        .get(t.url(&format!(
            "/tracker/{version}/wasm/eventline_tracker_bg.wasm"
        )))
        .header("accept-encoding", "identity")
        .send()
        .await
        .unwrap();
    assert_eq!(wasm.status().as_u16(), 200);
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    assert!(wasm.headers().get("content-encoding").is_none());
    assert_eq!(&wasm.bytes().await.unwrap()[..], b"\0asm\x01\0\0\0");

    // A cached copy is confirmed without a body.
    let etag = headers["etag"].to_str().unwrap();
    let again = t
        .http
        .get(t.url(&format!("/x7k/tracker/{version}/eventline.js")))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);

    // Another build's version, or a file that is not part of the tracker: 404 with our body.
    for path in [
        "/x7k/tracker/0123456789abcdef/eventline.js".to_string(),
        format!("/x7k/tracker/{version}/../Cargo.toml"),
        format!("/x7k/tracker/{version}/index.html"),
    ] {
        let (status, body) = t.admin(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
    }

    // Client ingest under the prefix is the same route: stored once.
    let p = t.create_partner("Acme").await;
    let (status, _, body) = t
        .post_raw(
            "/x7k/v1/events",
            &[("content-type", "application/json")],
            serde_json::to_vec(&batch(&p, vec![event("page_view", "c-1")])).unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        t.count(&format!(
            "SELECT count() FROM events WHERE partner_id = '{}'",
            p.id
        ))
        .await,
        1
    );
    // The admin API is never under the public prefix.
    let (status, _) = t
        .admin(reqwest::Method::GET, "/x7k/v1/admin/partners", None)
        .await;
    assert_eq!(status, 404);
    t.finish().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_tracker_folder_the_tracker_routes_are_not_found() {
    let t = TestCollector::start().await;
    let (status, body) = t
        .admin(reqwest::Method::GET, "/tracker/latest/eventline.js", None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    t.finish().await;
}
