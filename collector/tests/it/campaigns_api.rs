//! The campaigns API: CRUD with definition versions and audit rows, field-level validation
//! errors that list the valid names, the draft → active ⇄ paused lifecycle with its refusals,
//! and the README's curl block run as it is written.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

fn campaigns_path(p: &Partner) -> String {
    format!("/v1/admin/partners/{}/campaigns", p.id)
}

/// A valid campaign: a purchase of at least `min` gets an email naming its total.
fn thank_you(name: &str, min: u32) -> Value {
    json!({
        "name": name,
        "trigger": {"event": {"name": "purchase_completed",
            "where": [{"key": "total_price", "op": "gte", "value": min}]}},
        "steps": [{"send": {"channel": "email", "template": {
            "subject": "Thank you, {{ client.first_name | default(\"friend\") }}",
            "body": "<p>{{ client.eventContext.total_price }} spent.</p>"}}}]
    })
}

async fn create(t: &TestCollector, p: &Partner, definition: Value) -> Value {
    let (status, body) = t
        .admin(
            Method::POST,
            &campaigns_path(p),
            Some(json!({ "definition": definition })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn reject_undeclared(t: &TestCollector, p: &Partner) {
    let (status, body) = t
        .admin(
            Method::PATCH,
            &format!("/v1/admin/partners/{}", p.id),
            Some(json!({"undeclared_events": "reject"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The audit actions on `target`, newest first.
async fn actions_on(t: &TestCollector, p: &Partner, target: &str) -> Vec<String> {
    t.audit(&format!("?partner_id={}", p.id))
        .await
        .iter()
        .filter(|e| e["target_id"] == target)
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

fn code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

#[tokio::test(flavor = "multi_thread")]
async fn campaigns_are_created_listed_edited_into_versions_deleted_and_each_write_is_audited() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Acme").await;
    let v1 = thank_you("Thank you", 100);
    let created = create(&t, &p, v1.clone()).await;
    assert_eq!(
        (
            created["name"].as_str(),
            created["status"].as_str(),
            created["version"].as_u64(),
            created["trigger"].as_str()
        ),
        (Some("Thank you"), Some("draft"), Some(1), Some("event")),
        "{created}"
    );
    // The stored definition is the one sent, its status the campaign's.
    let mut expected = v1.clone();
    expected["status"] = json!("draft");
    assert_eq!(created["definition"], expected);
    let id = created["id"].as_str().unwrap().to_string();
    // A definition that says `active` is created active (validated the same way).
    let mut live = thank_you("Big spenders", 500);
    live["status"] = json!("active");
    let other = create(&t, &p, live).await;
    assert_eq!(other["status"], "active");
    let other = other["id"].as_str().unwrap().to_string();

    let (status, list) = t.admin(Method::GET, &campaigns_path(&p), None).await;
    assert_eq!(status, 200, "{list}");
    let listed: Vec<(&str, &str)> = list["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [("Thank you", "draft"), ("Big spenders", "active")],
        "oldest first"
    );
    assert_eq!(list["campaigns"][0]["trigger"], "event", "{list}");
    assert_eq!(list["campaigns"][0]["version"], 1, "{list}");
    assert!(
        list["campaigns"][0].get("definition").is_none(),
        "a listing holds no definitions: {list}"
    );

    let one = format!("{}/{id}", campaigns_path(&p));
    let v2 = thank_you("Thank you again", 200);
    let (status, edited) = t
        .admin(Method::PATCH, &one, Some(json!({"definition": v2})))
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(
        (
            edited["version"].as_u64(),
            edited["name"].as_str(),
            edited["status"].as_str()
        ),
        (Some(2), Some("Thank you again"), Some("draft"))
    );
    assert_eq!(edited["created_at"], created["created_at"]);
    let (status, got) = t.admin(Method::GET, &one, None).await;
    assert_eq!(status, 200);
    assert_eq!(got["version"], 2);
    assert_eq!(
        got["definition"]["trigger"]["event"]["where"][0]["value"],
        200
    );

    // Both versions are kept; the first reads as it was saved.
    let (status, versions) = t.admin(Method::GET, &format!("{one}/versions"), None).await;
    assert_eq!(status, 200, "{versions}");
    let listed: Vec<(u64, &str)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_u64().unwrap(), v["name"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [(2, "Thank you again"), (1, "Thank you")]);
    let (status, first) = t
        .admin(Method::GET, &format!("{one}/versions/1"), None)
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["definition"], expected);
    for missing in ["3", "0", "x"] {
        let (status, body) = t
            .admin(Method::GET, &format!("{one}/versions/{missing}"), None)
            .await;
        assert_eq!((status, code(&body)), (404, Some("not_found")), "{missing}");
    }

    // Refused edits write nothing.
    let (status, body) = t.admin(Method::PATCH, &one, Some(json!({}))).await;
    assert_eq!((status, code(&body)), (400, Some("empty_patch")), "{body}");
    let mut activating = thank_you("Sneaky", 1);
    activating["status"] = json!("active");
    let (status, body) = t
        .admin(Method::PATCH, &one, Some(json!({"definition": activating})))
        .await;
    assert_eq!(
        (status, code(&body), body["error"]["field"].as_str()),
        (400, Some("status_not_editable"), Some("definition.status")),
        "{body}"
    );
    let (status, body) = t
        .admin(
            Method::PATCH,
            &one,
            Some(json!({"definition": {"name": "", "trigger": {"event": {"name": "purchase_completed"}}, "steps": []}})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, Some("invalid_campaign_definition")),
        "{body}"
    );
    let (_, got) = t.admin(Method::GET, &one, None).await;
    assert_eq!(got["version"], 2, "refused edits add no version");

    let (status, _) = t.admin(Method::DELETE, &one, None).await;
    assert_eq!(status, 204);
    for (method, path, body) in [
        (Method::GET, one.clone(), None),
        (
            Method::PATCH,
            one.clone(),
            Some(json!({"definition": thank_you("x", 1)})),
        ),
        (Method::DELETE, one.clone(), None),
        (Method::GET, format!("{one}/versions"), None),
        (Method::GET, format!("{one}/versions/1"), None),
        (Method::POST, format!("{one}/activate"), None),
        (Method::POST, format!("{one}/pause"), None),
    ] {
        let (status, answer) = t.admin(method.clone(), &path, body).await;
        assert_eq!(
            (status, code(&answer)),
            (404, Some("not_found")),
            "{method} {path} after delete: {answer}"
        );
    }
    let (_, list) = t.admin(Method::GET, &campaigns_path(&p), None).await;
    assert_eq!(list["campaigns"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["campaigns"][0]["id"], other.as_str());

    // No token, another partner's campaign, an unknown partner.
    let resp = t.http.get(t.url(&campaigns_path(&p))).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let q = t.create_partner("Other").await;
    let (status, _) = t
        .admin(
            Method::GET,
            &format!("{}/{other}", campaigns_path(&q)),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = t
        .admin(
            Method::GET,
            &format!("/v1/admin/partners/{}/campaigns", uuid::Uuid::now_v7()),
            None,
        )
        .await;
    assert_eq!(status, 404);

    assert_eq!(
        actions_on(&t, &p, &id).await,
        ["campaign.delete", "campaign.update", "campaign.create"]
    );
    assert_eq!(actions_on(&t, &p, &other).await, ["campaign.create"]);
    let audit = t.audit(&format!("?partner_id={}", p.id)).await;
    let update = audit
        .iter()
        .find(|e| e["action"] == "campaign.update")
        .unwrap();
    assert_eq!(
        update["details"],
        json!({"name": "Thank you again", "version": 2, "status": "draft"}),
        "the name, version and status, never the definition"
    );

    // Erasing the partner deletes its campaign rows, every version.
    let rows = format!(
        "SELECT count() FROM campaigns WHERE partner_id = '{}'",
        p.id
    );
    assert!(t.count(&rows).await >= 3);
    let job = t
        .queue_erasure(&format!("/v1/admin/partners/{}", p.id))
        .await;
    t.wait_for_job(&job, 60).await;
    assert_eq!(t.count(&rows).await, 0);
    t.finish().await;
}

/// The errors of a 400 answer as (code, path, message).
fn errors(body: &Value) -> Vec<(String, String, String)> {
    body["error"]["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {body}"))
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap().to_string(),
                e["path"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_event_type_a_missing_field_code_or_an_unresolvable_template_variable_is_a_400_naming_the_path_and_the_valid_names(
) {
    let t = TestCollector::start().await;
    let p = t.create_partner("Strict").await;
    reject_undeclared(&t, &p).await;
    let email = json!({"send": {"channel": "email",
        "template": {"subject": "Hello", "body": "<p>Thanks</p>"}}});
    // (definition, code, path, names the message must list)
    let cases = [
        (
            json!({"name": "Unknown type", "trigger": {"event": {"name": "jacket_viewed"}},
                   "steps": [email]}),
            "unknown_event_type",
            "trigger.event.name",
            &["`purchase_completed`", "`abandoned_cart`"][..],
        ),
        (
            json!({"name": "Missing field", "trigger": {"event": {"name": "purchase_completed"}},
                   "filters": {"event": {"name": "purchase_completed",
                       "where": [{"key": "store_id", "op": "eq", "value": "$colour"}]}},
                   "steps": [email]}),
            "unknown_field",
            "filters.event.where[0].value",
            &["`colour`", "`store_id`", "`total_price`"][..],
        ),
        (
            json!({"name": "Bad variable", "trigger": {"event": {"name": "purchase_completed"}},
                   "steps": [{"send": {"channel": "sms",
                       "template": {"body": "Your {{ client.eventContext.colour }} order"}}}]}),
            "invalid_template",
            "steps[0].send.template.body",
            &["`colour`", "`cart_content`", "`total_price`"][..],
        ),
    ];
    let validate = format!("{}/validate", campaigns_path(&p));
    for (definition, want_code, want_path, names) in cases {
        let (status, body) = t
            .admin(
                Method::POST,
                &campaigns_path(&p),
                Some(json!({ "definition": definition })),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(code(&body), Some("invalid_campaign_definition"), "{body}");
        assert_eq!(body["error"]["field"], "definition");
        let errs = errors(&body);
        assert_eq!(errs.len(), 1, "{body}");
        let (c, path, message) = &errs[0];
        assert_eq!(
            (c.as_str(), path.as_str()),
            (want_code, want_path),
            "{body}"
        );
        for name in names {
            assert!(message.contains(name), "{name} not in {message}");
        }
        // Validation without saving gives the same problem, in a 200.
        let (status, checked) = t
            .admin(
                Method::POST,
                &validate,
                Some(json!({ "definition": definition })),
            )
            .await;
        assert_eq!(status, 200, "{checked}");
        assert_eq!(checked["valid"], false);
        assert_eq!(checked["errors"], body["error"]["errors"], "{checked}");
    }
    let (status, checked) = t
        .admin(
            Method::POST,
            &validate,
            Some(json!({"definition": thank_you("Fine", 10)})),
        )
        .await;
    assert_eq!(
        (status, &checked),
        (200, &json!({"valid": true, "errors": []}))
    );
    // Not the shape at all; not even a definition.
    let (status, checked) = t
        .admin(
            Method::POST,
            &validate,
            Some(json!({"definition": {"name": "Typo", "trigger": {"event": {"name": "purchase_completed"}}, "stesp": []}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(checked["errors"][0]["code"], "invalid_definition");
    let (status, body) = t.admin(Method::POST, &validate, Some(json!({}))).await;
    assert_eq!((status, code(&body)), (400, Some("invalid_request_body")));

    // Nothing was saved, nothing audited.
    let (_, list) = t.admin(Method::GET, &campaigns_path(&p), None).await;
    assert_eq!(list["campaigns"], json!([]));
    assert!(t
        .audit(&format!("?partner_id={}", p.id))
        .await
        .iter()
        .all(|e| !e["action"].as_str().unwrap().starts_with("campaign.")));
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn activation_and_pause_move_a_campaign_between_draft_active_and_paused_and_refuse_what_cannot_run(
) {
    let t = TestCollector::start().await;
    let p = t.create_partner("Lifecycle").await;
    let created = create(&t, &p, thank_you("Thank you", 100)).await;
    let id = created["id"].as_str().unwrap().to_string();
    let one = format!("{}/{id}", campaigns_path(&p));
    let post = |action: &'static str| {
        let path = format!("{one}/{action}");
        let t = &t;
        async move { t.admin(Method::POST, &path, None).await }
    };

    // A draft has never run: it cannot be paused.
    let (status, body) = post("pause").await;
    assert_eq!(
        (status, code(&body)),
        (409, Some("campaign_not_active")),
        "{body}"
    );
    let (status, active) = post("activate").await;
    assert_eq!(status, 200, "{active}");
    assert_eq!(
        (
            active["status"].as_str(),
            active["version"].as_u64(),
            active["definition"]["status"].as_str()
        ),
        (Some("active"), Some(1), Some("active")),
        "the status changes, the version does not: {active}"
    );
    // Again: answered as it is, nothing written.
    let (status, again) = post("activate").await;
    assert_eq!(status, 200);
    assert_eq!(again["updated_at"], active["updated_at"]);
    let (status, paused) = post("pause").await;
    assert_eq!(status, 200);
    assert_eq!(
        (paused["status"].as_str(), paused["version"].as_u64()),
        (Some("paused"), Some(1))
    );
    let (status, _) = post("pause").await;
    assert_eq!(status, 200);

    // An edit keeps the status: paused, then (after activating) active, each a new version.
    let (status, edited) = t
        .admin(
            Method::PATCH,
            &one,
            Some(json!({"definition": thank_you("Thank you", 150)})),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(
        (edited["status"].as_str(), edited["version"].as_u64()),
        (Some("paused"), Some(2))
    );
    let (status, _) = post("activate").await;
    assert_eq!(status, 200);
    let mut same_status = thank_you("Thank you", 175);
    same_status["status"] = json!("active");
    let (status, edited) = t
        .admin(
            Method::PATCH,
            &one,
            Some(json!({"definition": same_status})),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(
        (edited["status"].as_str(), edited["version"].as_u64()),
        (Some("active"), Some(3))
    );
    assert_eq!(
        actions_on(&t, &p, &id).await,
        [
            "campaign.update",
            "campaign.activate",
            "campaign.update",
            "campaign.pause",
            "campaign.activate",
            "campaign.create"
        ],
        "repeated activations and pauses write nothing"
    );

    // A saved definition that no longer fits the catalogue cannot be activated.
    reject_undeclared(&t, &p).await;
    let catalog = format!("/v1/admin/partners/{}", p.id);
    let (status, body) = t
        .admin(
            Method::POST,
            &format!("{catalog}/event-types"),
            Some(json!({"code": "wishlist_added", "name": "Wishlist added"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let wish = create(
        &t,
        &p,
        json!({"name": "Wish", "trigger": {"event": {"name": "wishlist_added"}},
               "steps": [{"send": {"channel": "sms", "template": {"body": "Still want it?"}}}]}),
    )
    .await;
    let wish_path = format!("{}/{}", campaigns_path(&p), wish["id"].as_str().unwrap());
    let (status, body) = t
        .admin(
            Method::DELETE,
            &format!("{catalog}/event-types/wishlist_added"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = t
        .admin(Method::POST, &format!("{wish_path}/activate"), None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, Some("campaign_definition_outdated")),
        "{body}"
    );
    let errs = errors(&body);
    assert_eq!(errs.len(), 1, "{body}");
    assert_eq!(
        (errs[0].0.as_str(), errs[0].1.as_str()),
        ("unknown_event_type", "trigger.event.name")
    );
    assert!(errs[0].2.contains("`purchase_completed`"), "{}", errs[0].2);
    let (_, still) = t.admin(Method::GET, &wish_path, None).await;
    assert_eq!(still["status"], "draft");
    // Fixed by an edit, it activates.
    let (status, _) = t
        .admin(
            Method::PATCH,
            &wish_path,
            Some(json!({"definition": thank_you("Wish", 1)})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = t
        .admin(Method::POST, &format!("{wish_path}/activate"), None)
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("active")),
        "{body}"
    );

    // A deleted campaign is gone for activation and pause alike.
    let (status, _) = t.admin(Method::DELETE, &one, None).await;
    assert_eq!(status, 204);
    for action in ["activate", "pause"] {
        let (status, body) = post(action).await;
        assert_eq!((status, code(&body)), (404, Some("not_found")), "{action}");
    }
    t.finish().await;
}

/// The ```sh block of README.md's "Campaigns API" section.
fn readme_block() -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("### Campaigns API")
        .nth(1)
        .expect("a Campaigns API section");
    section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a sh block")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_campaign_examples_work() {
    const LOCAL_TOKEN: &str = "eventline-local-admin-token";
    let t = TestCollector::start_with(clickhouse_url(), |c| {
        c.admin_token = Some(LOCAL_TOKEN.into());
    })
    .await;
    let resp = t
        .http
        .post(t.url("/v1/admin/partners"))
        .bearer_auth(LOCAL_TOKEN)
        .json(&json!({"name": "Demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let created: Value = resp.json().await.unwrap();
    let partner = created["id"].as_str().unwrap().to_string();

    // The block as written, with the demo partner's id and the test collector's address.
    let block = readme_block();
    let host = t.base.trim_start_matches("http://");
    let script: String = block
        .lines()
        .map(|line| {
            if line.starts_with("P=") {
                format!("P={partner}")
            } else {
                line.replace("localhost:8080", host)
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(script.contains(host) && script.contains(&format!("P={partner}")));
    let out = tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One answer per curl line: list, activate, edit, versions, version 1, pause, validate, 204.
    let answers: Vec<Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(answers.len(), 8, "{stdout}");
    assert_eq!(answers[0]["campaigns"][0]["status"], "draft", "{stdout}");
    assert_eq!(answers[1]["status"], "active", "{stdout}");
    assert_eq!(
        (
            answers[2]["version"].as_u64(),
            answers[2]["status"].as_str()
        ),
        (Some(2), Some("active")),
        "{stdout}"
    );
    assert_eq!(answers[3]["versions"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        answers[4]["definition"]["steps"][0]["send"]["channel"],
        "email"
    );
    assert_eq!(answers[5]["status"], "paused", "{stdout}");
    assert_eq!(answers[6]["valid"], false, "{stdout}");
    let problem = &answers[6]["errors"][0];
    assert_eq!(
        (problem["code"].as_str(), problem["path"].as_str()),
        (
            Some("invalid_template"),
            Some("steps[0].send.template.body")
        )
    );
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .contains("`total_price`"),
        "{problem}"
    );
    assert_eq!(answers[7], json!(204));
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_definition_may_hold_a_100000_character_email_body_and_is_refused_over_512_kib() {
    let t = TestCollector::start().await;
    let p = t.create_partner("Long").await;
    let with_body = |body: String| {
        json!({"name": "Newsletter", "trigger": {"event": {"name": "purchase_completed"}},
               "steps": [{"send": {"channel": "email",
                   "template": {"subject": "News", "body": body}}}]})
    };
    // Over the 64 KiB of other admin bodies, within the email channel's 100,000 characters.
    let longest = with_body("x".repeat(100_000));
    let created = create(&t, &p, longest.clone()).await;
    assert_eq!(
        created["definition"]["steps"][0]["send"]["template"]["body"]
            .as_str()
            .map(str::len),
        Some(100_000)
    );
    // Just over 512 KiB of definition: refused as such, by both save and validate.
    let too_long = json!({"definition": with_body("x".repeat(530_000))});
    for path in [
        campaigns_path(&p),
        format!("{}/validate", campaigns_path(&p)),
    ] {
        let (status, body) = t.admin(Method::POST, &path, Some(too_long.clone())).await;
        assert_eq!(
            (status, code(&body), body["error"]["field"].as_str()),
            (400, Some("definition_too_long"), Some("definition")),
            "{path}"
        );
    }
    let (_, list) = t.admin(Method::GET, &campaigns_path(&p), None).await;
    assert_eq!(list["campaigns"].as_array().map(Vec::len), Some(1));
    t.finish().await;
}
