//! The webhook channel: one JSON POST per message to the partner's URL
//! ([`super::channels::WebhookGateway`]), signed Stripe-style with the partner's secret.
//!
//! Headers of each request:
//! - `Idempotency-Key: <message id>`: the deterministic message id, the same on every attempt,
//!   so a receiver can drop a resend (a retry after a timeout, or a crash mid-send).
//! - `Eventline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: `t` is
//!   the attempt's time. A receiver recomputes the HMAC over the timestamp, a `.` and the raw
//!   body bytes, compares in constant time, and refuses a `t` older than its tolerance (say five
//!   minutes) so a captured request cannot be replayed later.
//!
//! The body ([`payload`]) is the same bytes on every attempt. A 2xx answer is delivery; any
//! other answer, a redirect (not followed: the signed body goes only where it was configured
//! to), a timeout or a connection error is a failure, retried with backoff. `https://` URLs
//! are verified against the roots of [`super::http_client`].

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use time::OffsetDateTime;

use super::channels::WebhookGateway;
use super::http_client::deliver;
use super::messages::MessageRow;

/// The header with the message id.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// The header with the timestamp and signature.
pub const SIGNATURE_HEADER: &str = "Eventline-Signature";

/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The JSON a message is posted as: who, which campaign step, and the rendered body.
pub fn payload(row: &MessageRow) -> Vec<u8> {
    let queued_at = row
        .created_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({
        "message_id": row.message_id,
        "campaign_id": row.campaign_id,
        "campaign_version": row.version,
        "step": row.step,
        "customer_id": row.customer_id,
        "channel": "webhook",
        "body": row.body,
        "queued_at": queued_at,
    })
    .to_string()
    .into_bytes()
}

/// Posts webhook messages.
#[derive(Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
}

impl WebhookSender {
    /// A sender over `client` ([`super::http_client::client`]: its timeout, TLS roots, no
    /// redirects).
    pub fn new(client: reqwest::Client) -> WebhookSender {
        WebhookSender { client }
    }

    /// Posts one message; `Err` carries the reason (for the message log).
    pub async fn send(&self, gateway: &WebhookGateway, row: &MessageRow) -> Result<(), String> {
        let body = payload(row);
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let request = self
            .client
            .post(&gateway.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, row.message_id.to_string())
            .header(
                SIGNATURE_HEADER,
                signature(&gateway.secret, timestamp, &body),
            )
            .body(body);
        deliver(request, "webhook").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_timestamp_a_dot_and_the_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test_secret_123
        assert_eq!(
            signature("whsec_test_secret_123", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=e89dcbfdce3392fb275033fb083d8c81e095a63bf687d9a2cd50e7d5f55e21f6"
        );
    }

    #[test]
    fn the_payload_names_the_message_campaign_step_and_customer_and_carries_the_body() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let row = MessageRow {
            partner_id: Uuid::nil(),
            message_id: Uuid::from_u128(1),
            campaign_id: Uuid::from_u128(2),
            version: 3,
            customer_id: "c-1".into(),
            step: "steps[0]".into(),
            channel: "webhook".into(),
            recipient: String::new(),
            subject: String::new(),
            body: "Trail Boots".into(),
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
        };
        let v: serde_json::Value = serde_json::from_slice(&payload(&row)).unwrap();
        assert_eq!(v["message_id"], "00000000-0000-0000-0000-000000000001");
        assert_eq!(v["campaign_version"], 3);
        assert_eq!(v["customer_id"], "c-1");
        assert_eq!(v["body"], "Trail Boots");
        assert_eq!(v["queued_at"], "1970-01-01T00:00:00Z");
        assert_eq!(
            payload(&row),
            payload(&row),
            "the same bytes on every attempt"
        );
    }
}
