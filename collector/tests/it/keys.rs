//! Partner API keys: created, listed (ids only), revoked; keys from before the upgrade.

use eventline_collector::registry::hash_api_key;
use reqwest::Method;

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_new_key_works_for_server_ingest_until_it_is_revoked_and_keys_are_never_listed() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let keys_path = format!("/v1/admin/partners/{}/api-keys", p.id);

    let (status, created) = t.admin(Method::POST, &keys_path, None).await;
    assert_eq!(status, 201, "{created}");
    let new_key = created["api_key"].as_str().unwrap().to_string();
    let key_id = created["key_id"].as_str().unwrap().to_string();
    assert_ne!(new_key, p.api_key);

    let (status, body) = t
        .send_server(&new_key, &batch(&p, vec![event("purchase", "c-1")]))
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, listed) = t.admin(Method::GET, &keys_path, None).await;
    assert_eq!(status, 200);
    let keys = listed["api_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{listed}");
    assert!(keys
        .iter()
        .all(|k| k["active"] == true && k.get("api_key").is_none()));
    let text = listed.to_string();
    for key in [&new_key, &p.api_key] {
        assert!(!text.contains(key.as_str()) && !text.contains(&hash_api_key(key)[16..]));
    }

    let (status, revoked) = t
        .admin(Method::DELETE, &format!("{keys_path}/{key_id}"), None)
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(
        (
            revoked["active"].as_bool(),
            revoked["revoked_at"].is_string()
        ),
        (Some(false), true)
    );
    let (status, body) = t
        .send_server(&new_key, &batch(&p, vec![event("purchase", "c-1")]))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("invalid_api_key")),
        "{body}"
    );
    // The partner's first key is untouched.
    let (status, _) = t
        .send_server(&p.api_key, &batch(&p, vec![event("purchase", "c-1")]))
        .await;
    assert_eq!(status, 200);

    let (status, body) = t
        .admin(Method::DELETE, &format!("{keys_path}/nope"), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    let actions: Vec<String> = t
        .audit(&format!("?partner_id={}", p.id))
        .await
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["target_id"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions[..2],
        [
            format!("api_key.revoke {key_id}"),
            format!("api_key.create {key_id}")
        ]
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_from_before_the_upgrade_keeps_working_is_listed_and_can_be_revoked() {
    let t = TestCollector::start().await;
    // A partner as the previous version wrote it: the key's hash in partners, no key rows.
    let partner_id = uuid::Uuid::now_v7();
    let legacy_key = "elk_0123456789abcdef0123456789abcdef0123456789abcdef";
    t.db.query(
        "INSERT INTO partners (partner_id, name, api_key_sha256, created_at, version) \
         VALUES ({p:UUID}, 'Old', {h:String}, now64(3), 1)",
    )
    .param("p", partner_id.to_string())
    .param("h", hash_api_key(legacy_key))
    .execute()
    .await
    .unwrap();
    t.db.query(
        "INSERT INTO sources (partner_id, source_id, code, name, domain, active, is_system, \
         created_at, updated_at, version) \
         VALUES ({p:UUID}, generateUUIDv7(), 'online_store', 'Online Store', '', true, true, \
         now64(3), now64(3), 1)",
    )
    .param("p", partner_id.to_string())
    .execute()
    .await
    .unwrap();
    // A collector started on that database (the upgrade) loads it.
    let database = t.database.clone();
    let mut t2 =
        TestCollector::start_with(clickhouse_url(), |c| c.clickhouse_database = database).await;
    let p = Partner {
        id: partner_id.to_string(),
        api_key: legacy_key.into(),
        online_store_id: String::new(),
    };
    let (status, body) = t2
        .send_server(legacy_key, &batch(&p, vec![event("purchase", "c-1")]))
        .await;
    assert_eq!(status, 200, "{body}");
    let keys_path = format!("/v1/admin/partners/{partner_id}/api-keys");
    let (_, listed) = t2.admin(Method::GET, &keys_path, None).await;
    let key_id = &hash_api_key(legacy_key)[..16];
    assert_eq!(
        listed["api_keys"][0]["key_id"].as_str(),
        Some(key_id),
        "{listed}"
    );
    let (status, _) = t2
        .admin(Method::DELETE, &format!("{keys_path}/{key_id}"), None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = t2
        .send_server(legacy_key, &batch(&p, vec![event("purchase", "c-1")]))
        .await;
    assert_eq!(status, 403);
    let (_, listed) = t2.admin(Method::GET, &keys_path, None).await;
    assert_eq!(listed["api_keys"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["api_keys"][0]["active"], false);
    t2.running.take().unwrap().stop().await.unwrap();
    t.finish().await;
}
