//! The admin API: token, partners, sources and their rules.

use reqwest::Method;
use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_needs_the_token() {
    let t = TestCollector::start().await;
    let none = t
        .http
        .get(t.url("/v1/admin/partners"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status().as_u16(), 401);
    let body: serde_json::Value = none.json().await.unwrap();
    assert_eq!(body["error"]["code"], "missing_admin_token");
    let wrong = t
        .http
        .get(t.url("/v1/admin/partners"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 403);
    let (status, _) = t.admin(Method::GET, "/v1/admin/partners", None).await;
    assert_eq!(status, 200);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_partner_gets_an_online_store_that_can_be_disabled_but_not_deleted() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let (status, body) = t
        .admin(
            Method::GET,
            &format!("/v1/admin/partners/{}/sources", p.id),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let sources = body["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1);
    let store = &sources[0];
    assert_eq!(
        (store["name"].as_str(), store["code"].as_str()),
        (Some("Online Store"), Some("online_store"))
    );
    assert_eq!(
        (store["active"].as_bool(), store["system"].as_bool()),
        (Some(true), Some(true))
    );

    let path = format!("/v1/admin/partners/{}/sources/{}", p.id, p.online_store_id);
    let (status, body) = t.admin(Method::DELETE, &path, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("system_source_undeletable")),
        "{body}"
    );

    let (status, body) = t
        .patch_source(&p, &p.online_store_id, json!({ "active": false }))
        .await;
    assert_eq!(
        (status, body["active"].as_bool()),
        (200, Some(false)),
        "{body}"
    );
    let (_, body) = t.admin(Method::GET, &path, None).await;
    assert_eq!(body["active"], false, "the toggle persisted");
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn user_sources_are_added_edited_and_removed_with_unique_codes() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let (status, app) = t
        .add_source(
            &p,
            json!({ "name": "Mobile application", "code": "mobile_app", "domain": "" }),
        )
        .await;
    assert_eq!(status, 201, "{app}");
    assert_eq!(
        (app["system"].as_bool(), app["active"].as_bool()),
        (Some(false), Some(true))
    );
    let app_id = app["id"].as_str().unwrap().to_string();

    let (status, body) = t
        .add_source(&p, json!({ "name": "Dup", "code": "mobile_app" }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("source_code_taken")),
        "{body}"
    );
    let (status, body) = t
        .patch_source(&p, &app_id, json!({ "code": "online_store" }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("source_code_taken")),
        "{body}"
    );

    let (status, body) = t
        .add_source(&p, json!({ "name": "Promo", "code": "bad code" }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_source_code")),
        "{body}"
    );
    let (status, body) = t
        .add_source(
            &p,
            json!({ "name": "Promo", "code": "promo", "domain": "https://promo.example/x" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_domain")),
        "{body}"
    );
    let (status, body) = t
        .add_source(&p, json!({ "name": "", "code": "promo" }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_name")),
        "{body}"
    );
    let (status, body) = t
        .add_source(&p, json!({ "nme": "Promo", "code": "promo" }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request_body")),
        "{body}"
    );

    let (status, body) = t
        .patch_source(
            &p,
            &app_id,
            json!({ "name": "App", "code": "app", "domain": "App.Example" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["name"].as_str(),
            body["code"].as_str(),
            body["domain"].as_str()
        ),
        (Some("App"), Some("app"), Some("app.example"))
    );

    // Events for the renamed code are accepted (from its domain, now that it has one).
    let mut e = event("open", "c");
    e.source = "app".into();
    let (status, _, body) = t
        .send(&batch(&p, vec![e]), Some("https://app.example"))
        .await;
    assert_eq!(status, 200, "{body}");

    let path = format!("/v1/admin/partners/{}/sources/{app_id}", p.id);
    let (status, _) = t.admin(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, body) = t.admin(Method::GET, &path, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (_, body) = t
        .admin(
            Method::GET,
            &format!("/v1/admin/partners/{}/sources", p.id),
            None,
        )
        .await;
    assert_eq!(body["sources"].as_array().unwrap().len(), 1);

    // The code is free again once the source is removed.
    let (status, _) = t
        .add_source(&p, json!({ "name": "App again", "code": "app" }))
        .await;
    assert_eq!(status, 201);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_partners_and_sources_are_404_and_partners_are_listed() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let (status, body) = t
        .admin(Method::GET, "/v1/admin/partners/not-a-uuid/sources", None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = t
        .admin(
            Method::GET,
            &format!("/v1/admin/partners/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = t
        .admin(
            Method::POST,
            "/v1/admin/partners",
            Some(json!({ "name": "  " })),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_name"))
    );
    let (status, body) = t.admin(Method::GET, "/v1/admin/partners", None).await;
    assert_eq!(status, 200);
    let partners = body["partners"].as_array().unwrap();
    assert_eq!(partners.len(), 1);
    assert_eq!(partners[0]["id"].as_str(), Some(p.id.as_str()));
    assert!(
        partners[0].get("api_key").is_none(),
        "the key is shown only once"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_run_once_and_the_registry_survives_a_restart() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    t.patch_source(&p, &p.online_store_id, json!({ "domain": "shop.example" }))
        .await;
    let database = t.database.clone();
    let t2 =
        TestCollector::start_with(clickhouse_url(), |c| c.clickhouse_database = database).await;
    assert_eq!(
        t2.count("SELECT count() FROM schema_migrations").await,
        eventline_collector::store::migrations::MIGRATIONS.len() as u64
    );
    let (_, body) = t2
        .admin(
            Method::GET,
            &format!("/v1/admin/partners/{}/sources", p.id),
            None,
        )
        .await;
    assert_eq!(body["sources"][0]["domain"], "shop.example");
    let mut t2 = t2;
    t2.running.take().unwrap().stop().await.unwrap();
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_admin_write_is_audited_with_the_token_id_and_listed_newest_first() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let other = t.create_partner("Other").await;
    let (_, app) = t
        .add_source(&p, json!({ "name": "App", "code": "app" }))
        .await;
    let app_id = app["id"].as_str().unwrap();
    t.patch_source(&p, app_id, json!({ "active": false })).await;
    t.admin(
        Method::DELETE,
        &format!("/v1/admin/partners/{}/sources/{app_id}", p.id),
        None,
    )
    .await;
    let (status, body) = t
        .admin(
            Method::PATCH,
            &format!("/v1/admin/partners/{}", p.id),
            Some(json!({ "retention_days": 30 })),
        )
        .await;
    assert_eq!(
        (status, body["retention_days"].as_u64()),
        (200, Some(30)),
        "{body}"
    );

    let entries = t.audit(&format!("?partner_id={}", p.id)).await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "partner.settings",
            "source.delete",
            "source.update",
            "source.create",
            "partner.create"
        ]
    );
    let token_id = eventline_collector::admin_token::token_id(ADMIN_TOKEN);
    assert!(entries.iter().all(|e| e["actor"] == token_id.as_str()));
    assert_eq!(entries[0]["details"]["retention_days"], 30);
    assert_eq!(entries[2]["details"]["fields"], json!(["active"]));
    assert_eq!(entries[1]["target_id"].as_str(), Some(app_id));
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains(&p.api_key), "no secret in the audit log");

    let all = t.audit("").await;
    assert_eq!(all.len(), 6);
    assert_eq!(
        all.last().unwrap()["partner_id"].as_str(),
        Some(p.id.as_str())
    );
    assert_eq!(t.audit("?limit=2").await.len(), 2);
    assert_eq!(t.audit(&format!("?partner_id={}", other.id)).await.len(), 1);
    let (status, body) = t.admin(Method::GET, "/v1/admin/audit?limit=0", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_limit"))
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_partner_refuses_its_ingest_at_once_erases_its_data_and_is_audited() {
    let t = TestCollector::start_with(clickhouse_url(), |c| {
        c.registry_refresh_secs = 1;
        c.clickhouse_timeout_ms = 2_000;
    })
    .await;
    let p = t.create_partner("Leaving").await;
    let stays = t.create_partner("Staying").await;
    for partner in [&p, &stays] {
        let mut bad = event("view", "c-1");
        bad.name = " bad".into();
        let (status, _, body) = t
            .send(&batch(partner, vec![event("view", "c-1"), bad]), None)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let of =
        |id: &str, table: &str| format!("SELECT count() FROM {table} WHERE partner_id = '{id}'");
    t.rejections_written(2).await;
    assert_eq!(t.count(&of(&p.id, "rejected_events")).await, 1);
    // Audience rows of both partners: a profile, an identity link, the predefined catalogue.
    for partner in [&p, &stays] {
        let resp = t
            .http
            .put(t.url("/v1/server/customers/c-1"))
            .bearer_auth(&partner.api_key)
            .json(&json!({ "first_name": "Ann" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let mut login = event("login", "c-1");
        login.anonymous_id = Some("a-1".into());
        let (status, _, _) = t.send(&batch(partner, vec![login]), None).await;
        assert_eq!(status, 200);
    }
    let audience = [
        "customer_profiles",
        "identity_links",
        "event_types",
        "event_properties",
    ];
    for table in audience {
        assert!(t.count(&of(&p.id, table)).await > 0, "{table}");
    }

    let job_id = t
        .queue_erasure(&format!("/v1/admin/partners/{}", p.id))
        .await;

    // Refused at once, through both paths.
    let (status, _, body) = t.send(&batch(&p, vec![event("view", "c-2")]), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unknown_partner")),
        "{body}"
    );
    let (status, _) = t
        .send_server(&p.api_key, &batch(&p, vec![event("view", "c-2")]))
        .await;
    assert_eq!(status, 403);
    let (status, _) = t
        .admin(Method::GET, &format!("/v1/admin/partners/{}", p.id), None)
        .await;
    assert_eq!(status, 404);

    let job = t.wait_for_job(&job_id, 30).await;
    assert_eq!(job["scope"], "partner");
    // The view, the profile event and the login.
    assert_eq!(job["rows_removed"]["events"], 3, "{job}");
    assert_eq!(job["rows_removed"]["rejected_events"], 1, "{job}");
    assert_eq!(t.count(&of(&p.id, "events")).await, 0);
    for table in audience {
        assert_eq!(t.count(&of(&p.id, table)).await, 0, "{table}");
        assert!(t.count(&of(&stays.id, table)).await > 0, "{table}");
    }
    assert_eq!(t.count(&of(&p.id, "rejected_events")).await, 0);
    assert_eq!(t.count(&of(&stays.id, "events")).await, 3);
    assert_eq!(t.count(&of(&stays.id, "rejected_events")).await, 1);

    let entries = t.audit(&format!("?partner_id={}", p.id)).await;
    assert_eq!(entries[0]["action"], "partner.delete");
    assert_eq!(
        entries[0]["details"]["job_id"].as_str(),
        Some(job_id.as_str())
    );
    t.finish().await;
}
