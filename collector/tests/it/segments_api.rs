//! The segments API: CRUD with audit rows, field-level validation errors, previews (with the
//! per-source breakdown), member pages and CSV, the Jacket example end to end through
//! ingest, and a profile-field segment after a profile upsert.

use std::collections::BTreeSet;

use event_model::timestamp::format_rfc3339_ms;
use event_model::{ContextValue, Event};
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn segments_path(p: &Partner) -> String {
    format!("/v1/admin/partners/{}/segments", p.id)
}

/// A customer event of `name` from `source`, `ago_ms` before now, with a `category`.
fn viewed(customer: &str, source: &str, category: &str, ago_ms: i64) -> Event {
    Event {
        source: source.into(),
        occurred_at: format_rfc3339_ms(now_ms() - ago_ms),
        context: [(
            "category".to_string(),
            ContextValue::String(category.into()),
        )]
        .into(),
        ..event("product_viewed", customer)
    }
}

async fn ingest(t: &TestCollector, p: &Partner, events: Vec<Event>) {
    let n = events.len();
    let (status, body) = t.send_server(&p.api_key, &batch(p, events)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], n, "{body}");
}

async fn add_mobile_app(t: &TestCollector, p: &Partner) {
    let (status, body) = t
        .add_source(
            p,
            json!({"name": "Mobile app", "code": "mobile_app", "domain": ""}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn create_segment(t: &TestCollector, p: &Partner, name: &str, definition: Value) -> String {
    let (status, body) = t
        .admin(
            Method::POST,
            &segments_path(p),
            Some(json!({"name": name, "definition": definition})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

/// Every member id, following `next_cursor` with pages of `limit`.
async fn all_pages(t: &TestCollector, p: &Partner, segment: &str, limit: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..1000 {
        let mut url = t.url(&format!(
            "{}/{segment}/customers?limit={limit}",
            segments_path(p)
        ));
        if let Some(a) = &after {
            url = reqwest::Url::parse_with_params(&url, &[("after", a)])
                .unwrap()
                .to_string();
        }
        let resp = t
            .http
            .get(url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let body: Value = resp.json().await.unwrap();
        let page = body["customers"].as_array().unwrap();
        assert!(page.len() <= limit as usize, "{body}");
        ids.extend(
            page.iter()
                .map(|c| c["customer_id"].as_str().unwrap().to_string()),
        );
        match body["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(
                    page.len(),
                    limit as usize,
                    "only a full page has a next one"
                );
                assert_eq!(Some(next), ids.last().map(String::as_str));
                after = Some(next.to_string());
            }
            None => return ids,
        }
    }
    panic!("pages never ended");
}

async fn members(t: &TestCollector, p: &Partner, segment: &str) -> Vec<String> {
    all_pages(t, p, segment, 1000).await
}

async fn preview(t: &TestCollector, p: &Partner, body: Value) -> (u16, Value) {
    t.admin(
        Method::POST,
        &format!("{}/preview", segments_path(p)),
        Some(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn segments_are_created_listed_renamed_redefined_deleted_and_each_write_is_audited() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let jacket = json!({"event": {"name": "product_viewed",
        "where": [{"key": "category", "op": "eq", "value": "Jacket"}]}});
    let (status, created) = t
        .admin(
            Method::POST,
            &segments_path(&p),
            Some(json!({"name": "Jacket viewers", "definition": jacket})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "Jacket viewers");
    assert_eq!(created["definition"], jacket);
    let id = created["id"].as_str().unwrap().to_string();
    let other = create_segment(
        &t,
        &p,
        "Birthdays",
        json!({"profile": {"field": "birthday", "op": "exists"}}),
    )
    .await;

    let (status, list) = t.admin(Method::GET, &segments_path(&p), None).await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Jacket viewers", "Birthdays"], "oldest first");

    let one = format!("{}/{id}", segments_path(&p));
    let (status, renamed) = t
        .admin(Method::PATCH, &one, Some(json!({"name": "Jacket fans"})))
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(
        (renamed["name"].as_str(), &renamed["definition"]),
        (Some("Jacket fans"), &jacket)
    );
    let bags = json!({"event": {"where": [{"key": "category", "op": "eq", "value": "Bags"}]}});
    let (status, redefined) = t
        .admin(Method::PATCH, &one, Some(json!({"definition": bags})))
        .await;
    assert_eq!(status, 200, "{redefined}");
    let (status, got) = t.admin(Method::GET, &one, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (got["name"].as_str(), &got["definition"]),
        (Some("Jacket fans"), &bags)
    );
    let (status, body) = t.admin(Method::PATCH, &one, Some(json!({}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("empty_patch"))
    );
    let (status, body) = t
        .admin(Method::PATCH, &one, Some(json!({"name": ""})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_name"))
    );

    let (status, _) = t.admin(Method::DELETE, &one, None).await;
    assert_eq!(status, 204);
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"name": "x"}))),
        (Method::DELETE, None),
    ] {
        let (status, answer) = t.admin(method.clone(), &one, body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{method} after delete"
        );
    }
    let (_, list) = t.admin(Method::GET, &segments_path(&p), None).await;
    assert_eq!(list["segments"].as_array().unwrap().len(), 1);
    assert_eq!(list["segments"][0]["id"], other.as_str());

    // No token, another partner's segment, an unknown partner.
    let resp = t.http.get(t.url(&segments_path(&p))).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let q = t.create_partner("Other").await;
    let (status, _) = t
        .admin(Method::GET, &format!("{}/{other}", segments_path(&q)), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = t
        .admin(
            Method::GET,
            &format!("/v1/admin/partners/{}/segments", uuid::Uuid::now_v7()),
            None,
        )
        .await;
    assert_eq!(status, 404);

    let audit = t.audit(&format!("?partner_id={}", p.id)).await;
    let of_segment = |id: &str| -> Vec<String> {
        audit
            .iter()
            .filter(|e| e["target_id"] == id)
            .map(|e| e["action"].as_str().unwrap().to_string())
            .collect()
    };
    // Newest first; the refused PATCHes wrote nothing.
    assert_eq!(
        of_segment(&id),
        [
            "segment.delete",
            "segment.update",
            "segment.update",
            "segment.create"
        ]
    );
    assert_eq!(of_segment(&other), ["segment.create"]);

    // Deleting the partner erases its segment rows, every version.
    let rows = format!("SELECT count() FROM segments WHERE partner_id = '{}'", p.id);
    assert!(t.count(&rows).await >= 5);
    let job = t
        .queue_erasure(&format!("/v1/admin/partners/{}", p.id))
        .await;
    t.wait_for_job(&job, 60).await;
    assert_eq!(t.count(&rows).await, 0);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_definition_is_refused_with_every_field_error_and_its_path() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Strict").await;
    let (status, body) = t
        .admin(
            Method::PATCH,
            &format!("/v1/admin/partners/{}", p.id),
            Some(json!({"undeclared_events": "reject"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let definition = json!({"all": [
        {"event": {"name": "jacket_viewed"}},
        {"event": {"name": "purchase_completed", "where": [
            {"key": "store-id", "op": "eq", "value": "S1"},
            {"key": "total_price", "op": "gt", "value": "100"},
            {"key": "colour", "op": "eq", "value": "red"}
        ]}},
        {"any": []},
        {"last_event": {"name": "purchase_completed", "period": {"last_days": 0}}}
    ]});
    let (status, body) = t
        .admin(
            Method::POST,
            &segments_path(&p),
            Some(json!({"name": "Broken", "definition": definition})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_segment_definition");
    assert_eq!(body["error"]["field"], "definition");
    let errors: BTreeSet<(String, String)> = body["error"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(!e["message"].as_str().unwrap().is_empty(), "{e}");
            (
                e["code"].as_str().unwrap().to_string(),
                e["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("unknown_event_type", "all[0].event.name"),
        ("invalid_key", "all[1].event.where[0].key"),
        ("type_mismatch", "all[1].event.where[1].value"),
        ("unknown_property", "all[1].event.where[2].key"),
        ("empty_group", "all[2].any"),
        ("invalid_period", "all[3].last_event.period.last_days"),
    ]
    .iter()
    .map(|(c, p)| (c.to_string(), p.to_string()))
    .collect();
    assert_eq!(errors, expected, "{body}");

    // Not JSON of the shape; a preview is checked the same way; nothing was saved.
    let (status, body) = t
        .admin(
            Method::POST,
            &segments_path(&p),
            Some(json!({"name": "Typo", "definition": {"event": {"name": "purchase_completed", "perid": {"last_days": 3}}}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["errors"][0]["code"], "invalid_definition");
    let (status, body) = preview(&t, &p, json!({"definition": definition})).await;
    assert_eq!(
        (status, body["error"]["errors"].as_array().map(Vec::len)),
        (400, Some(6)),
        "{body}"
    );
    let (_, list) = t.admin(Method::GET, &segments_path(&p), None).await;
    assert_eq!(list["segments"], json!([]));
    assert!(t
        .audit(&format!("?partner_id={}", p.id))
        .await
        .iter()
        .all(|e| e["action"] != "segment.create"));

    // A PATCH with a bad definition leaves the segment as it was.
    let good = json!({"event": {"name": "purchase_completed"}});
    let id = create_segment(&t, &p, "Buyers", good.clone()).await;
    let one = format!("{}/{id}", segments_path(&p));
    let (status, body) = t
        .admin(
            Method::PATCH,
            &one,
            Some(json!({"definition": {"any": []}})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["errors"][0]["path"].as_str()),
        (400, Some("any")),
        "{body}"
    );
    let (_, got) = t.admin(Method::GET, &one, None).await;
    assert_eq!(got["definition"], good);

    // Retiring the event type makes the saved definition stale: running it answers 409.
    let (status, body) = t
        .admin(
            Method::DELETE,
            &format!("/v1/admin/partners/{}/event-types/purchase_completed", p.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = t
        .admin(Method::GET, &format!("{one}/customers"), None)
        .await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_str(),
            body["error"]["errors"][0]["path"].as_str()
        ),
        (409, Some("segment_definition_outdated"), Some("event.name")),
        "{body}"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preview_counts_members_without_saving_and_breaks_them_down_by_source() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Shop").await;
    add_mobile_app(&t, &p).await;
    let web_twice = viewed("c-web", "online_store", "Jacket", 0);
    ingest(
        &t,
        &p,
        vec![
            web_twice.clone(),
            viewed("c-app", "mobile_app", "Jacket", 0),
            viewed("c-both", "online_store", "Jacket", DAY_MS),
            viewed("c-both", "mobile_app", "Jacket", 0),
            viewed("c-bags", "online_store", "Bags", 0),
            Event {
                name: "purchase_completed".into(),
                ..viewed("c-both", "online_store", "Jacket", 0)
            },
            // A Jacket purchase is not a view: c-buyer matches no `product_viewed` condition.
            Event {
                name: "purchase_completed".into(),
                ..viewed("c-buyer", "mobile_app", "Jacket", 0)
            },
        ],
    )
    .await;
    // A retried copy: counted once.
    let (status, body) = t.send_server(&p.api_key, &batch(&p, vec![web_twice])).await;
    assert_eq!(status, 200, "{body}");

    let jacket = json!({"event": {"name": "product_viewed",
        "where": [{"key": "category", "op": "eq", "value": "Jacket"}]}});
    let (status, body) = preview(&t, &p, json!({"definition": jacket})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["members"], 3);
    assert_eq!(body.get("by_source"), None, "only when asked");
    assert_eq!(body["time_zone"], "UTC");

    let (status, body) = preview(&t, &p, json!({"definition": jacket, "by_source": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["members"], 3);
    // c-both is under both sources; c-bags and c-buyer under none.
    assert_eq!(
        body["by_source"],
        json!([{"source": "mobile_app", "members": 2}, {"source": "online_store", "members": 2}])
    );

    // Members of a definition that also asks for two views or more: only c-both, under both of
    // its sources; a profile-only definition has no breakdown.
    let twice = json!({"event": {"name": "product_viewed", "count": {"op": "gte", "value": 2}}});
    let (_, body) = preview(&t, &p, json!({"definition": twice, "by_source": true})).await;
    assert_eq!(body["members"], 1, "the retried copy is one view: {body}");
    assert_eq!(
        body["by_source"],
        json!([{"source": "mobile_app", "members": 1}, {"source": "online_store", "members": 1}])
    );
    // Outside a `not` only: "viewed in the app, not bought twice" breaks down by the app views,
    // not by c-both's one purchase in the Online Store.
    let app_not_buyer = json!({"all": [
        {"event": {"name": "product_viewed", "sources": ["mobile_app"]}},
        {"not": {"event": {"name": "purchase_completed", "count": {"op": "gte", "value": 2}}}}
    ]});
    let (_, body) = preview(
        &t,
        &p,
        json!({"definition": app_not_buyer, "by_source": true}),
    )
    .await;
    assert_eq!(body["members"], 2, "{body}");
    assert_eq!(
        body["by_source"],
        json!([{"source": "mobile_app", "members": 2}])
    );
    let (_, body) = preview(
        &t,
        &p,
        json!({"definition": {"profile": {"field": "email", "op": "exists"}}, "by_source": true}),
    )
    .await;
    assert_eq!(
        (&body["members"], &body["by_source"]),
        (&json!(0), &json!([]))
    );

    let (_, list) = t.admin(Method::GET, &segments_path(&p), None).await;
    assert_eq!(list["segments"], json!([]), "a preview saves nothing");
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn member_pages_are_stable_and_complete_and_the_csv_equals_them() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Pages").await;
    // Ids that sort differently as numbers and as bytes, and ones CSV must quote.
    let mut expected: Vec<String> = (1..=23).map(|i| format!("c-{i}")).collect();
    expected.extend(["a,b".to_string(), "say \"hi\"".into(), "Ёлка".into()]);
    let mut events: Vec<Event> = expected
        .iter()
        .map(|c| viewed(c, "online_store", "Jacket", 0))
        .collect();
    events.push(viewed("not-a-member", "online_store", "Bags", 0));
    ingest(&t, &p, events).await;
    let id = create_segment(
        &t,
        &p,
        "Jacket viewers",
        json!({"event": {"where": [{"key": "category", "op": "eq", "value": "Jacket"}]}}),
    )
    .await;
    expected.sort();

    let pages = all_pages(&t, &p, &id, 7).await;
    assert_eq!(
        pages, expected,
        "every member once, in customer_id byte order"
    );
    assert_eq!(
        all_pages(&t, &p, &id, 7).await,
        pages,
        "the same pages again"
    );
    assert_eq!(members(&t, &p, &id).await, pages, "one page of 1000");
    assert_eq!(all_pages(&t, &p, &id, 26).await, pages, "a full last page");

    for limit in ["0", "1001"] {
        let (status, body) = t
            .admin(
                Method::GET,
                &format!("{}/{id}/customers?limit={limit}", segments_path(&p)),
                None,
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_limit"))
        );
    }

    let resp = t
        .http
        .get(t.url(&format!("{}/{id}/customers.csv", segments_path(&p))))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/csv; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["customer_id"]
    );
    let rows: Vec<String> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(r.len(), 1);
            r[0].to_string()
        })
        .collect();
    assert_eq!(rows, pages, "the CSV is the pages");
    assert!(text.contains("\"a,b\""), "{text}");

    // An empty segment: the header only, and one empty page.
    let none = create_segment(&t, &p, "Nobody", json!({"event": {"name": "never_sent"}})).await;
    let resp = t
        .http
        .get(t.url(&format!("{}/{none}/customers.csv", segments_path(&p))))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "customer_id\n");
    assert!(members(&t, &p, &none).await.is_empty());
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jacket_in_the_online_store_in_the_last_30_days_leaves_out_the_mobile_app_only_customer() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Fashion").await;
    add_mobile_app(&t, &p).await;
    let (status, body) = t
        .admin(
            Method::PATCH,
            &format!("/v1/admin/partners/{}", p.id),
            Some(json!({"time_zone": "Europe/Moscow"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    ingest(
        &t,
        &p,
        vec![
            viewed("c-web", "online_store", "Jacket", 3 * DAY_MS),
            viewed("c-app-only", "mobile_app", "Jacket", 0),
            // 30 days ago is before the start of the local day 29 days ago.
            viewed("c-stale", "online_store", "Jacket", 30 * DAY_MS),
            viewed("c-bags", "online_store", "Bags", 0),
            viewed("c-jackets", "online_store", "Jackets", 0),
        ],
    )
    .await;
    let id = create_segment(
        &t,
        &p,
        "Viewed a Jacket in the Online Store in the last 30 days",
        json!({"event": {"name": "product_viewed", "sources": ["online_store"],
            "where": [{"key": "category", "op": "eq", "value": "Jacket"}],
            "count": {"op": "gte", "value": 1}, "period": {"last_days": 30}}}),
    )
    .await;
    assert_eq!(members(&t, &p, &id).await, ["c-web"]);
    // Seen in the app now, the app-only customer joins once they view it in the store too.
    ingest(
        &t,
        &p,
        vec![viewed("c-app-only", "online_store", "Jacket", 0)],
    )
    .await;
    assert_eq!(members(&t, &p, &id).await, ["c-app-only", "c-web"]);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_field_segment_includes_a_customer_after_their_profile_upsert() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Profiles").await;
    ingest(&t, &p, vec![viewed("c-1", "online_store", "Jacket", 0)]).await;
    let birthday = create_segment(
        &t,
        &p,
        "Has a birthday",
        json!({"profile": {"field": "birthday", "op": "exists"}}),
    )
    .await;
    let gold = create_segment(
        &t,
        &p,
        "Gold tier Jacket viewers",
        json!({"all": [
            {"profile": {"field": "attributes.tier", "op": "eq", "value": "gold"}},
            {"event": {"name": "product_viewed"}}
        ]}),
    )
    .await;
    assert!(members(&t, &p, &birthday).await.is_empty());
    assert!(members(&t, &p, &gold).await.is_empty());

    let resp = t
        .http
        .put(t.url("/v1/server/customers/c-1"))
        .bearer_auth(&p.api_key)
        .json(&json!({"birthday": "1961-04-12", "attributes": {"tier": "gold"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Another customer, with a birthday but another tier.
    let resp = t
        .http
        .put(t.url("/v1/server/customers/c-2"))
        .bearer_auth(&p.api_key)
        .json(&json!({"birthday": "1990-05-01", "attributes": {"tier": "silver"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(members(&t, &p, &birthday).await, ["c-1", "c-2"]);
    assert_eq!(members(&t, &p, &gold).await, ["c-1"]);
    t.finish().await;
}
