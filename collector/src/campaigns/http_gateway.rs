//! The SMS, push and Viber channels: a generic JSON HTTP gateway adapter. Per partner and
//! channel, a gateway URL and a bearer token ([`super::channels::HttpGateway`]); each message is
//! one `POST` of [`payload`] to the URL, so an operator can put a small bridge in front of
//! Twilio, FCM / APNs or Viber that turns it into the provider's call.
//!
//! Headers of each request:
//! - `Authorization: Bearer <token>`: the partner's write-only gateway token.
//! - `Idempotency-Key: <message id>`: the deterministic message id, the same on every attempt,
//!   so the bridge can drop a resend (a retry after a lost answer, or a crash mid-send).
//! - `Content-Type: application/json`.
//!
//! A 2xx answer is delivery; any other answer, a redirect (not followed: the token goes only
//! where it was configured to), a timeout or a connection error is a failure, retried with
//! backoff under the same key. The body is the same bytes on every attempt.

use serde_json::{json, Map, Value};

use super::channels::HttpGateway;
use super::http_client::deliver;
use super::messages::MessageRow;
use super::webhook::IDEMPOTENCY_HEADER;

/// `Some(text)` for a non-empty text, else `null`.
fn text_or_null(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        Value::from(text)
    }
}

/// The JSON a message is posted as. Every channel: `message_id`, `channel`, `to` (the phone,
/// push token or Viber id), `campaign_id`, `campaign_version`, `step`, `customer_id`,
/// `queued_at`. Then by channel: SMS `text`; push `title`, `text`, `image_url` (each a string
/// or `null`); Viber `text`, `image_url` (string or `null`) and `button` (`{"text", "url"}` or
/// `null`).
pub fn payload(row: &MessageRow) -> Vec<u8> {
    let queued_at = row
        .created_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut body = Map::new();
    body.insert("message_id".into(), json!(row.message_id));
    body.insert("channel".into(), json!(row.channel));
    body.insert("to".into(), json!(row.recipient));
    match row.channel.as_str() {
        "sms" => {
            body.insert("text".into(), json!(row.body));
        }
        "push" => {
            body.insert("title".into(), text_or_null(&row.subject));
            body.insert("text".into(), text_or_null(&row.body));
            body.insert("image_url".into(), text_or_null(&row.image_url));
        }
        _ => {
            body.insert("text".into(), text_or_null(&row.body));
            body.insert("image_url".into(), text_or_null(&row.image_url));
            let button = if row.button_text.is_empty() {
                Value::Null
            } else {
                json!({"text": row.button_text, "url": row.button_url})
            };
            body.insert("button".into(), button);
        }
    }
    body.insert("campaign_id".into(), json!(row.campaign_id));
    body.insert("campaign_version".into(), json!(row.version));
    body.insert("step".into(), json!(row.step));
    body.insert("customer_id".into(), json!(row.customer_id));
    body.insert("queued_at".into(), json!(queued_at));
    Value::Object(body).to_string().into_bytes()
}

/// Posts SMS, push and Viber messages to their gateways.
#[derive(Clone)]
pub struct GatewaySender {
    client: reqwest::Client,
}

impl GatewaySender {
    /// A sender over `client` ([`super::http_client::client`]).
    pub fn new(client: reqwest::Client) -> GatewaySender {
        GatewaySender { client }
    }

    /// Posts one message; `Err` carries the reason (for the message log), prefixed with the
    /// channel.
    pub async fn send(&self, gateway: &HttpGateway, row: &MessageRow) -> Result<(), String> {
        let request = self
            .client
            .post(&gateway.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, row.message_id.to_string())
            .bearer_auth(&gateway.token)
            .body(payload(row));
        deliver(request, &format!("{} gateway", row.channel)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;
    use uuid::Uuid;

    fn row(channel: &str) -> MessageRow {
        let now = OffsetDateTime::UNIX_EPOCH;
        MessageRow {
            partner_id: Uuid::nil(),
            message_id: Uuid::from_u128(1),
            campaign_id: Uuid::from_u128(2),
            version: 3,
            customer_id: "c-1".into(),
            step: "steps[0]".into(),
            channel: channel.into(),
            recipient: "+15550100".into(),
            subject: String::new(),
            body: "Trail Boots & Co".into(),
            image_url: String::new(),
            button_text: String::new(),
            button_url: String::new(),
            status: "queued".into(),
            attempts: 0,
            error: String::new(),
            next_attempt_at: now,
            created_at: now,
            updated_at: now,
            revision: 1,
        }
    }

    fn parsed(row: &MessageRow) -> Value {
        serde_json::from_slice(&payload(row)).unwrap()
    }

    #[test]
    fn an_sms_is_posted_as_the_phone_and_the_plain_text() {
        let v = parsed(&row("sms"));
        assert_eq!(
            v,
            json!({
                "message_id": "00000000-0000-0000-0000-000000000001",
                "channel": "sms",
                "to": "+15550100",
                "text": "Trail Boots & Co",
                "campaign_id": "00000000-0000-0000-0000-000000000002",
                "campaign_version": 3,
                "step": "steps[0]",
                "customer_id": "c-1",
                "queued_at": "1970-01-01T00:00:00Z",
            })
        );
    }

    #[test]
    fn a_push_and_a_viber_message_carry_null_for_the_parts_they_lack() {
        let mut push = row("push");
        push.subject = "Back in stock".into();
        push.body = String::new();
        push.image_url = "https://cdn.example.com/a.png".into();
        let v = parsed(&push);
        assert_eq!(v["title"], "Back in stock");
        assert_eq!(v["text"], Value::Null);
        assert_eq!(v["image_url"], "https://cdn.example.com/a.png");
        assert!(v.get("button").is_none());

        let mut viber = row("viber");
        viber.button_text = "Open".into();
        viber.button_url = "https://shop.example.com".into();
        let v = parsed(&viber);
        assert_eq!(v["text"], "Trail Boots & Co");
        assert_eq!(v["image_url"], Value::Null);
        assert_eq!(
            v["button"],
            json!({"text": "Open", "url": "https://shop.example.com"})
        );
        assert!(v.get("title").is_none());
        assert_eq!(
            payload(&viber),
            payload(&viber),
            "the same bytes every time"
        );
    }
}
