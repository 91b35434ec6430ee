//! SMS, push and Viber through their HTTP gateways, and HTTPS: a real HTTP(S) gateway process
//! (`tests/webhook/receiver.py`, recording each request as a file) stands for the operator's
//! bridge; a throwaway CA made here with `rcgen` signs its certificate.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{json, Value};

use crate::campaigns_channels::{cart_webhook, get_json, header, put_channel, Receiver, SECRET};
use crate::campaigns_run::{create_campaign, product, put_profile, send};
use crate::common::*;

const TOKEN: &str = "gw_token_0123456789abcdef";

/// The partner's message log of one campaign, once `n` messages are logged and none is pending.
async fn settled_log(t: &TestCollector, p: &Partner, campaign: &str, n: usize) -> Vec<Value> {
    let path = format!("/v1/admin/partners/{}/campaigns/{campaign}/messages", p.id);
    eventually(&format!("{n} messages, none pending"), 60, || async {
        let page = get_json(t, &path).await;
        let messages = page["messages"].as_array().unwrap().clone();
        (messages.len() == n
            && messages
                .iter()
                .all(|m| m["status"] == "sent" || m["status"] == "skipped"))
        .then_some(messages)
    })
    .await
}

fn of<'a>(log: &'a [Value], customer: &str, channel: &str) -> &'a Value {
    log.iter()
        .find(|m| m["customer_id"] == customer && m["channel"] == channel)
        .unwrap_or_else(|| panic!("no {channel} message of {customer}: {log:?}"))
}

fn body(request: &Value) -> Value {
    serde_json::from_str(request["body"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sms_campaign_posts_the_rendered_plain_text_to_the_gateway_and_skips_customers_without_a_phone_or_sms_consent(
) {
    let gateway = Receiver::start_on(0, 0).await;
    let t = TestCollector::start_with(clickhouse_url(), |_| {}).await;
    let p = t.create_partner("Shop").await;
    let (status, view) =
        put_channel(&t, &p, "sms", json!({"url": gateway.url(), "token": TOKEN})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["token_set"], true);
    assert!(!view.to_string().contains(TOKEN), "{view}");
    put_profile(
        &t,
        &p,
        "c-1",
        json!({"first_name": "Ann", "phone": "+1 555 0100", "consents": {"sms": true}}),
    )
    .await;
    // A phone without an opt-in, and an opt-in without a phone.
    put_profile(&t, &p, "c-2", json!({"phone": "+1 555 0101"})).await;
    put_profile(&t, &p, "c-3", json!({"consents": {"sms": true}})).await;
    let campaign = create_campaign(
        &t,
        &p,
        json!({
            "name": "Cart SMS", "status": "active",
            "trigger": {"event": {"name": "added_to_cart"}},
            "steps": [{"send": {"channel": "sms", "template": {
                "body": "Hi {{ client.first_name | default(\"there\") }}, {{ client.eventContext.product }} is in your cart"
            }}}]
        }),
    )
    .await;
    for customer in ["c-1", "c-2", "c-3"] {
        send(&t, &p, "added_to_cart", customer, &product("Boots & <Co>")).await;
    }

    let requests = gateway.wait_for(1, 60).await;
    let log = settled_log(&t, &p, &campaign, 3).await;
    let sent = of(&log, "c-1", "sms");
    assert_eq!(sent["status"], "sent", "{log:?}");
    assert_eq!(sent["recipient"], "+1 555 0100");
    let request = &requests[0];
    assert_eq!(header(request, "Authorization"), format!("Bearer {TOKEN}"));
    assert_eq!(
        header(request, "Idempotency-Key"),
        sent["message_id"].as_str().unwrap(),
        "the idempotency key is the logged message id"
    );
    assert_eq!(header(request, "Content-Type"), "application/json");
    let payload = body(request);
    assert_eq!(
        payload["text"], "Hi Ann, Boots & <Co> is in your cart",
        "plain text, never HTML-escaped: {payload}"
    );
    assert_eq!(payload["to"], "+1 555 0100");
    assert_eq!(payload["channel"], "sms");
    assert_eq!(payload["message_id"], sent["message_id"]);
    assert_eq!(payload["customer_id"], "c-1");
    assert_eq!(payload["campaign_id"], campaign.as_str());

    let no_consent = of(&log, "c-2", "sms");
    assert_eq!(no_consent["status"], "skipped");
    assert!(
        no_consent["last_error"]
            .as_str()
            .unwrap()
            .starts_with("no_consent: "),
        "{no_consent}"
    );
    let no_phone = of(&log, "c-3", "sms");
    assert_eq!(no_phone["status"], "skipped");
    assert_eq!(
        no_phone["last_error"],
        "no_phone: the customer's profile has no phone"
    );
    // Nothing went to the gateway for the skipped two (delivery is drained first).
    t.finish().await;
    assert_eq!(gateway.requests().len(), 1, "{:?}", gateway.requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn push_and_viber_reach_their_gateways_only_for_customers_with_a_push_token_or_a_viber_id() {
    let push_gateway = Receiver::start_on(0, 0).await;
    let viber_gateway = Receiver::start_on(0, 0).await;
    let t = TestCollector::start().await;
    let p = t.create_partner("Shop").await;
    for (channel, gateway) in [("push", &push_gateway), ("viber", &viber_gateway)] {
        let (status, view) = put_channel(
            &t,
            &p,
            channel,
            json!({"url": gateway.url(), "token": TOKEN}),
        )
        .await;
        assert_eq!(status, 200, "{view}");
    }
    put_profile(
        &t,
        &p,
        "c-1",
        json!({"attributes": {"push_token": "fcm-token-1", "viber_id": "vb-1"}}),
    )
    .await;
    let campaign = create_campaign(
        &t,
        &p,
        json!({
            "name": "Cart push and Viber", "status": "active",
            "trigger": {"event": {"name": "added_to_cart"}},
            "steps": [
                {"send": {"channel": "push", "template": {
                    "subject": "{{ client.eventContext.product }}",
                    "image_url": "https://cdn.example.com/cart.png"}}},
                {"send": {"channel": "viber", "template": {
                    "body": "{{ client.eventContext.product }} is waiting",
                    "image_url": "https://cdn.example.com/cart.png",
                    "button": {"text": "Open the cart", "url": "https://shop.example.com/cart"}}}}
            ]
        }),
    )
    .await;
    send(&t, &p, "added_to_cart", "c-1", &product("Trail Boots")).await;
    send(&t, &p, "added_to_cart", "c-2", &product("Rain Coat")).await;

    let push = body(&push_gateway.wait_for(1, 60).await[0]);
    let viber = body(&viber_gateway.wait_for(1, 60).await[0]);
    assert_eq!(push["to"], "fcm-token-1");
    assert_eq!(push["title"], "Trail Boots");
    assert_eq!(push["text"], Value::Null);
    assert_eq!(push["image_url"], "https://cdn.example.com/cart.png");
    assert_eq!(viber["to"], "vb-1");
    assert_eq!(viber["text"], "Trail Boots is waiting");
    assert_eq!(
        viber["button"],
        json!({"text": "Open the cart", "url": "https://shop.example.com/cart"})
    );
    let log = settled_log(&t, &p, &campaign, 4).await;
    let no_app = of(&log, "c-2", "push");
    assert_eq!(no_app["status"], "skipped");
    assert!(
        no_app["last_error"]
            .as_str()
            .unwrap()
            .starts_with("no_app: "),
        "{no_app}"
    );
    let not_member = of(&log, "c-2", "viber");
    assert!(
        not_member["last_error"]
            .as_str()
            .unwrap()
            .starts_with("not_registered: "),
        "{not_member}"
    );
    t.finish().await;
    assert_eq!(push_gateway.requests().len(), 1);
    assert_eq!(viber_gateway.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn push_and_viber_content_outside_the_channels_shapes_is_refused_on_save_listing_the_allowed_ones(
) {
    let t = TestCollector::start().await;
    let p = t.create_partner("Shop").await;
    let definition = json!({
        "name": "Bad shapes", "status": "draft",
        "trigger": {"event": {"name": "added_to_cart"}},
        "steps": [
            {"send": {"channel": "push", "template": {"body": "x", "button": {"text": "Go", "url": "https://x.example"}}}},
            {"send": {"channel": "viber", "template": {"image_url": "https://cdn.example.com/a.png", "button": {"text": "Go", "url": "https://x.example"}}}},
            {"send": {"channel": "sms", "template": {"body": "<p>Hi</p>"}}}
        ]
    });
    let (status, answer) = t
        .admin(
            Method::POST,
            &format!("/v1/admin/partners/{}/campaigns", p.id),
            Some(json!({ "definition": definition })),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_campaign_definition");
    let errors = answer["error"]["errors"].as_array().unwrap();
    let at = |path: &str| {
        errors
            .iter()
            .find(|e| e["path"] == path)
            .unwrap_or_else(|| panic!("no error at {path}: {errors:?}"))
    };
    let push = at("steps[0].send.template.button");
    assert_eq!(push["code"], "content_rule");
    assert!(
        push["message"].as_str().unwrap().contains(
            "a push is one of `body` (text), `image_url` (image), `body` + `image_url` (both)"
        ),
        "{push}"
    );
    let viber = at("steps[1].send.template");
    assert_eq!(viber["code"], "content_rule");
    let message = viber["message"].as_str().unwrap();
    for shape in [
        "`body` (text only)",
        "`image_url` (image only)",
        "`body` + `button` (text and button)",
        "`body` + `image_url` + `button` (text, image and button)",
    ] {
        assert!(message.contains(shape), "{message}");
    }
    let sms = at("steps[2].send.template.body");
    assert!(
        sms["message"]
            .as_str()
            .unwrap()
            .starts_with("`<p>` is HTML: an SMS is `body` only: plain text"),
        "{sms}"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_sending_by_sms_push_or_viber_is_activated_only_once_the_channels_gateway_is_set(
) {
    let t = TestCollector::start().await;
    let p = t.create_partner("Shop").await;
    let campaigns = format!("/v1/admin/partners/{}/campaigns", p.id);
    for (channel, template) in [
        ("sms", json!({"body": "x"})),
        ("push", json!({"body": "x"})),
        ("viber", json!({"body": "x"})),
    ] {
        let id = create_campaign(
            &t,
            &p,
            json!({
                "name": format!("Cart {channel}"), "status": "draft",
                "trigger": {"event": {"name": "added_to_cart"}},
                "steps": [{"send": {"channel": channel, "template": template}}]
            }),
        )
        .await;
        let activate = format!("{campaigns}/{id}/activate");
        let (status, body) = t.admin(Method::POST, &activate, None).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"]["code"], "channel_not_configured");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("`{channel}`"))
                && message.contains(&format!("/channels/{channel}")),
            "{message}"
        );
        let (status, body) = put_channel(
            &t,
            &p,
            channel,
            json!({"url": "https://gateway.example.com/send", "token": TOKEN}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = t.admin(Method::POST, &activate, None).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("active")),
            "{body}"
        );
    }

    // Gateway settings are checked; a later write without a token keeps the token.
    for (body, code, field) in [
        (
            json!({"url": "ftp://gateway.example.com", "token": TOKEN}),
            "invalid_gateway_url",
            "url",
        ),
        (
            json!({"url": "https://gateway.example.com", "token": "short"}),
            "invalid_gateway_token",
            "token",
        ),
        (
            json!({"url": "https://gateway.example.com", "secret": TOKEN}),
            "invalid_request_body",
            "body",
        ),
    ] {
        let (status, answer) = put_channel(&t, &p, "sms", body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, answer) =
        put_channel(&t, &p, "push", json!({"url": "http://127.0.0.1:9/p"})).await;
    assert_eq!(status, 200, "{answer}");
    let all = get_json(&t, &format!("/v1/admin/partners/{}/channels", p.id)).await;
    let push = all["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "push")
        .unwrap();
    assert_eq!(
        (push["url"].as_str(), push["token_set"].as_bool()),
        (Some("http://127.0.0.1:9/p"), Some(true)),
        "{all}"
    );
    assert!(!all.to_string().contains(TOKEN), "the token leaked: {all}");
    let audit = t.audit(&format!("?partner_id={}", p.id)).await;
    assert!(
        !json!(audit).to_string().contains(TOKEN),
        "the token leaked into the audit log"
    );
    t.finish().await;
}

/// A CA and a certificate it signed for `localhost` and 127.0.0.1, as PEM files in `dir`:
/// (CA certificate, server certificate, server key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Eventline test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, server.pem()).unwrap();
    std::fs::write(&paths.2, server_key.serialize_pem()).unwrap();
    (paths.0, paths.1, paths.2)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_webhook_is_verified_against_the_gateway_ca_file_and_delivered_once_its_ca_is_trusted(
) {
    let dir = std::env::temp_dir().join(format!("eventline-tls-{}", uuid::Uuid::new_v4()));
    let (ca, cert, key) = certificates(&dir);
    let receiver = Receiver::start_with(
        0,
        0,
        &[
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ],
    )
    .await;
    let url = format!("https://localhost:{}/hooks/eventline", receiver.port);

    // Without the CA: the certificate is refused, and the failure logged says so.
    let t = TestCollector::start().await;
    let p = t.create_partner("Shop").await;
    let (status, view) =
        put_channel(&t, &p, "webhook", json!({"url": url, "secret": SECRET})).await;
    assert_eq!(status, 200, "https is accepted: {view}");
    create_campaign(&t, &p, cart_webhook()).await;
    send(&t, &p, "added_to_cart", "c-1", &product("Trail Boots")).await;
    let log_path = format!("/v1/admin/partners/{}/customers/c-1/messages", p.id);
    let failed = eventually("the failed attempt in the message log", 60, || async {
        let page = get_json(&t, &log_path).await;
        (page["messages"][0]["status"] == "failed").then_some(page["messages"][0].clone())
    })
    .await;
    let reason = failed["last_error"].as_str().unwrap().to_lowercase();
    assert!(
        reason.starts_with("webhook: ")
            && reason.contains("invalid peer certificate: unknownissuer"),
        "{reason}"
    );
    t.finish().await;
    assert!(
        receiver.requests().is_empty(),
        "nothing was posted over an unverified connection"
    );

    // With the CA in EVENTLINE_GATEWAY_CA_FILE: delivered over TLS.
    let ca_file = ca.clone();
    let t =
        TestCollector::start_with(clickhouse_url(), |c| c.gateway_ca_file = Some(ca_file)).await;
    let p = t.create_partner("Shop").await;
    let (status, _) = put_channel(&t, &p, "webhook", json!({"url": url, "secret": SECRET})).await;
    assert_eq!(status, 200);
    create_campaign(&t, &p, cart_webhook()).await;
    send(&t, &p, "added_to_cart", "c-1", &product("Trail Boots")).await;
    let requests = receiver.wait_for(1, 60).await;
    assert_eq!(body(&requests[0])["body"], "c-1 added Trail Boots");
    let log_path = format!("/v1/admin/partners/{}/customers/c-1/messages", p.id);
    let sent = eventually("the message logged as sent", 30, || async {
        let page = get_json(&t, &log_path).await;
        (page["messages"][0]["status"] == "sent").then_some(page["messages"][0].clone())
    })
    .await;
    assert_eq!(sent["recipient"], url.as_str());
    t.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
}
