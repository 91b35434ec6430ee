//! Channel and gateway settings per partner (`partner_channels`, migration 0011), and the rule
//! that a campaign cannot be active while a channel it sends by has no gateway.
//!
//! - **webhook**: `{"url", "secret"}`. The URL gets a JSON POST per message (see
//!   [`super::webhook`]); the secret signs it. The secret is write-only: stored because signing
//!   needs it, never returned (a view says only whether one is set).
//! - **email**: `{"from"}`, the partner's `From` address. The SMTP server is the collector's
//!   (`EVENTLINE_SMTP_URL`), the one gateway of the email channel, so email needs no setting:
//!   without one the collector-wide `EVENTLINE_SMTP_FROM` is the `From`.
//! - **sms**, **push**, **viber**: `{"url", "token"}`, a JSON HTTP gateway (see
//!   [`super::http_gateway`]); the token is sent as `Authorization: Bearer` and is write-only
//!   like the webhook secret.
//!
//! URLs are `https://` or, for receivers on the same host or network, `http://`.

use clickhouse::Row;
use eventline_campaigns::definition::{Campaign, Channel, Step};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StorageError;
use crate::store::Store;

/// Longest webhook or gateway URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Shortest webhook secret, in bytes: 128 bits of a random hex or base64 string.
pub const MIN_SECRET_BYTES: usize = 16;
/// Longest webhook secret, in bytes.
pub const MAX_SECRET_BYTES: usize = 256;
/// Longest `From` address, in bytes.
pub const MAX_FROM_BYTES: usize = 320;
/// Shortest gateway token, in bytes.
pub const MIN_TOKEN_BYTES: usize = 16;
/// Longest gateway token, in bytes: room for a signed JWT.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// The channels that have settings.
pub const CONFIGURABLE: &[Channel] = &[
    Channel::Email,
    Channel::Sms,
    Channel::Push,
    Channel::Viber,
    Channel::Webhook,
];

/// The channels sent through an HTTP gateway ([`super::http_gateway`]).
pub const HTTP_GATEWAYS: &[Channel] = &[Channel::Sms, Channel::Push, Channel::Viber];

/// Why a settings write or an activation was refused; mapped to HTTP in `http/channels.rs`
/// (and, for [`ChannelError::NotConfigured`], through `CampaignError` in `http/campaigns.rs`).
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The path names no channel with settings.
    #[error("no channel `{0}` has settings; the channels are `email`, `sms`, `push`, `viber`, `webhook`")]
    UnknownChannel(String),
    /// The webhook URL is not an absolute `http(s)://` URL of a host.
    #[error("`url` {0}")]
    InvalidUrl(String),
    /// A gateway URL (SMS, push, Viber) is not an absolute `http(s)://` URL of a host.
    #[error("`url` {0}")]
    InvalidGatewayUrl(String),
    /// The gateway token is missing on the first write, or too short, long or not printable.
    #[error("`token` {0}")]
    InvalidToken(String),
    /// The webhook secret is missing on the first write, or too short, long or not printable.
    #[error("`secret` {0}")]
    InvalidSecret(String),
    /// The `From` address does not parse as a mailbox.
    #[error("`from` {0}")]
    InvalidFrom(String),
    /// A campaign sends by a channel that has no gateway for this partner.
    #[error("{message}")]
    NotConfigured {
        /// The channel (`webhook`, `sms`, ...).
        channel: &'static str,
        /// What to do about it.
        message: String,
    },
    /// ClickHouse failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// One version of a row of `partner_channels`.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct ChannelRow {
    /// The partner.
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// `webhook` or `email`.
    pub channel: String,
    /// The non-secret settings, JSON.
    pub settings: String,
    /// The write-only secret; empty when none.
    pub secret: String,
    /// The write.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub updated_at: OffsetDateTime,
    /// Write version.
    pub revision: u64,
    /// 1: removed.
    pub is_deleted: u8,
}

/// An SMS, push or Viber gateway: where messages go and the bearer token they carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGateway {
    /// An absolute `http(s)://` URL.
    pub url: String,
    /// The bearer token.
    pub token: String,
}

/// A webhook gateway: where messages go and the key that signs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookGateway {
    /// An absolute `http(s)://` URL.
    pub url: String,
    /// The signing secret.
    pub secret: String,
}

/// The channel a path names, if it has settings.
pub fn configurable(name: &str) -> Result<Channel, ChannelError> {
    CONFIGURABLE
        .iter()
        .copied()
        .find(|c| c.as_str() == name)
        .ok_or_else(|| ChannelError::UnknownChannel(name.to_string()))
}

/// Checks a webhook or gateway URL: an absolute `https://` (or, for local receivers,
/// `http://`) URL with a host, no user or password (they would be shown back by GET), no
/// fragment, at most [`MAX_URL_BYTES`]. `Err` says why.
pub fn check_url(url: &str) -> Result<(), String> {
    let bad = |why: &str| Err(why.to_string());
    if url.len() > MAX_URL_BYTES {
        return bad(&format!("is longer than {MAX_URL_BYTES} bytes"));
    }
    let parsed = match reqwest::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(e) => {
            return bad(&format!(
                "is not an absolute URL ({e}); send e.g. https://hooks.example.com/eventline"
            ))
        }
    };
    match parsed.scheme() {
        "https" | "http" => {}
        other => {
            return bad(&format!(
            "has the scheme `{other}`; only https:// (and http:// for local receivers) is accepted"
        ))
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return bad("has no host");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return bad("must not carry a user or password: the secret or token authenticates each request instead");
    }
    if parsed.fragment().is_some() {
        return bad("must not have a #fragment");
    }
    Ok(())
}

/// Checks a gateway token: [`MIN_TOKEN_BYTES`] to [`MAX_TOKEN_BYTES`] printable ASCII
/// characters without spaces (it travels as an HTTP header value).
pub fn check_token(token: &str) -> Result<(), ChannelError> {
    if token.len() < MIN_TOKEN_BYTES || token.len() > MAX_TOKEN_BYTES {
        return Err(ChannelError::InvalidToken(format!(
            "must be {MIN_TOKEN_BYTES} to {MAX_TOKEN_BYTES} characters"
        )));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ChannelError::InvalidToken(
            "must be printable ASCII without spaces".into(),
        ));
    }
    Ok(())
}

/// Checks a webhook secret: [`MIN_SECRET_BYTES`] to [`MAX_SECRET_BYTES`] printable ASCII
/// characters without spaces.
pub fn check_secret(secret: &str) -> Result<(), ChannelError> {
    if secret.len() < MIN_SECRET_BYTES || secret.len() > MAX_SECRET_BYTES {
        return Err(ChannelError::InvalidSecret(format!(
            "must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} characters (e.g. 32 random hex digits)"
        )));
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ChannelError::InvalidSecret(
            "must be printable ASCII without spaces".into(),
        ));
    }
    Ok(())
}

/// Checks a `From` address: a mailbox (`Shop <shop@example.com>` or `shop@example.com`).
pub fn check_from(from: &str) -> Result<(), ChannelError> {
    if from.len() > MAX_FROM_BYTES {
        return Err(ChannelError::InvalidFrom(format!(
            "is longer than {MAX_FROM_BYTES} bytes"
        )));
    }
    from.parse::<lettre::message::Mailbox>()
        .map(|_| ())
        .map_err(|e| {
            ChannelError::InvalidFrom(format!(
                "is not a mailbox ({e}); send e.g. `Shop <shop@example.com>`"
            ))
        })
}

/// A settings write: `PUT .../channels/webhook` `{"url", "secret"?}`, `PUT .../channels/email`
/// `{"from"}`. Unknown fields are refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookPut {
    /// The endpoint.
    pub url: String,
    /// The signing secret; required on the first write, kept when absent later.
    pub secret: Option<String>,
}

/// `PUT .../channels/{sms|push|viber}` `{"url", "token"?}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayPut {
    /// The gateway endpoint.
    pub url: String,
    /// The bearer token; required on the first write, kept when absent later.
    pub token: Option<String>,
}

/// `PUT .../channels/email`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailPut {
    /// The `From` of the partner's campaign email.
    pub from: String,
}

/// The live settings row of one channel of the partner.
pub async fn get(
    store: &Store,
    partner_id: Uuid,
    channel: Channel,
) -> Result<Option<ChannelRow>, StorageError> {
    let row: Option<ChannelRow> = store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM partner_channels FINAL \
                     WHERE partner_id = {partner:UUID} AND channel = {channel:String}",
                )
                .param("partner", partner_id.to_string())
                .param("channel", channel.as_str())
                .fetch_optional(),
        )
        .await?;
    Ok(row.filter(|r| r.is_deleted == 0))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

async fn write(
    store: &Store,
    partner_id: Uuid,
    channel: Channel,
    previous: Option<&ChannelRow>,
    settings: Value,
    secret: String,
    is_deleted: u8,
) -> Result<ChannelRow, StorageError> {
    let now = now();
    let micros = (now.unix_timestamp_nanos() / 1000) as u64;
    let row = ChannelRow {
        partner_id,
        channel: channel.as_str().into(),
        settings: settings.to_string(),
        secret,
        updated_at: now,
        revision: micros.max(previous.map_or(0, |p| p.revision) + 1),
        is_deleted,
    };
    store
        .insert_rows("partner_channels", std::slice::from_ref(&row))
        .await?;
    Ok(row)
}

/// Settings writes read, merge (the kept secret) and write one after another within this
/// collector.
static CHANNEL_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Sets the webhook gateway; a missing secret keeps the one set before (none before: refused).
pub async fn put_webhook(
    store: &Store,
    partner_id: Uuid,
    body: WebhookPut,
) -> Result<ChannelRow, ChannelError> {
    check_url(&body.url).map_err(ChannelError::InvalidUrl)?;
    if let Some(secret) = &body.secret {
        check_secret(secret)?;
    }
    let _one_at_a_time = CHANNEL_WRITES.lock().await;
    let previous = get(store, partner_id, Channel::Webhook).await?;
    let secret = match (body.secret, &previous) {
        (Some(secret), _) => secret,
        (None, Some(p)) if !p.secret.is_empty() => p.secret.clone(),
        (None, _) => {
            return Err(ChannelError::InvalidSecret(
                "is required when the webhook is first set (it signs every request)".into(),
            ))
        }
    };
    Ok(write(
        store,
        partner_id,
        Channel::Webhook,
        previous.as_ref(),
        json!({ "url": body.url }),
        secret,
        0,
    )
    .await?)
}

/// Sets an SMS, push or Viber gateway; a missing token keeps the one set before (none before:
/// refused).
pub async fn put_gateway(
    store: &Store,
    partner_id: Uuid,
    channel: Channel,
    body: GatewayPut,
) -> Result<ChannelRow, ChannelError> {
    check_url(&body.url).map_err(ChannelError::InvalidGatewayUrl)?;
    if let Some(token) = &body.token {
        check_token(token)?;
    }
    let _one_at_a_time = CHANNEL_WRITES.lock().await;
    let previous = get(store, partner_id, channel).await?;
    let token = match (body.token, &previous) {
        (Some(token), _) => token,
        (None, Some(p)) if !p.secret.is_empty() => p.secret.clone(),
        (None, _) => {
            return Err(ChannelError::InvalidToken(
                "is required when the gateway is first set (it authenticates every request)".into(),
            ))
        }
    };
    Ok(write(
        store,
        partner_id,
        channel,
        previous.as_ref(),
        json!({ "url": body.url }),
        token,
        0,
    )
    .await?)
}

/// Sets the partner's email `From`.
pub async fn put_email(
    store: &Store,
    partner_id: Uuid,
    body: EmailPut,
) -> Result<ChannelRow, ChannelError> {
    check_from(&body.from)?;
    let _one_at_a_time = CHANNEL_WRITES.lock().await;
    let previous = get(store, partner_id, Channel::Email).await?;
    Ok(write(
        store,
        partner_id,
        Channel::Email,
        previous.as_ref(),
        json!({ "from": body.from }),
        String::new(),
        0,
    )
    .await?)
}

/// Removes a channel's settings; `false` when there were none.
pub async fn delete(
    store: &Store,
    partner_id: Uuid,
    channel: Channel,
) -> Result<bool, ChannelError> {
    let _one_at_a_time = CHANNEL_WRITES.lock().await;
    let Some(previous) = get(store, partner_id, channel).await? else {
        return Ok(false);
    };
    write(
        store,
        partner_id,
        channel,
        Some(&previous),
        json!({}),
        String::new(),
        1,
    )
    .await?;
    Ok(true)
}

/// A setting of a stored row (`""` when absent).
pub fn setting(row: &ChannelRow, key: &str) -> String {
    serde_json::from_str::<Value>(&row.settings)
        .ok()
        .and_then(|v| v.get(key).and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

/// The partner's webhook gateway, if set.
pub async fn webhook(
    store: &Store,
    partner_id: Uuid,
) -> Result<Option<WebhookGateway>, StorageError> {
    Ok(get(store, partner_id, Channel::Webhook)
        .await?
        .map(|row| WebhookGateway {
            url: setting(&row, "url"),
            secret: row.secret,
        })
        .filter(|g| !g.url.is_empty() && !g.secret.is_empty()))
}

/// The partner's gateway of an SMS, push or Viber channel, if set.
pub async fn http_gateway(
    store: &Store,
    partner_id: Uuid,
    channel: Channel,
) -> Result<Option<HttpGateway>, StorageError> {
    Ok(get(store, partner_id, channel)
        .await?
        .map(|row| HttpGateway {
            url: setting(&row, "url"),
            token: row.secret,
        })
        .filter(|g| !g.url.is_empty() && !g.token.is_empty()))
}

/// The partner's email `From`, if set.
pub async fn email_from(store: &Store, partner_id: Uuid) -> Result<Option<String>, StorageError> {
    Ok(get(store, partner_id, Channel::Email)
        .await?
        .map(|row| setting(&row, "from"))
        .filter(|f| !f.is_empty()))
}

/// Every channel a campaign sends by, at any depth of its steps.
pub fn used_channels(campaign: &Campaign) -> BTreeSet<Channel> {
    fn walk(steps: &[Step], into: &mut BTreeSet<Channel>) {
        for step in steps {
            match step {
                Step::Send(send) => {
                    into.insert(send.channel);
                }
                Step::Wait(wait) => walk(wait.on_timeout.as_deref().unwrap_or_default(), into),
                Step::Branch(branch) => {
                    walk(&branch.then, into);
                    walk(&branch.otherwise, into);
                }
                Step::AssignEvent(_) => {}
            }
        }
    }
    let mut channels = BTreeSet::new();
    walk(&campaign.steps, &mut channels);
    channels
}

/// Refuses a campaign that sends by a channel with no gateway for this partner: a webhook,
/// SMS, push or Viber channel without settings. Email always has one (the collector's SMTP
/// server).
pub async fn require_gateways(
    store: &Store,
    partner_id: Uuid,
    campaign: &Campaign,
) -> Result<(), ChannelError> {
    for channel in used_channels(campaign) {
        match channel {
            Channel::Email => {}
            Channel::Webhook => {
                if webhook(store, partner_id).await?.is_none() {
                    return Err(ChannelError::NotConfigured {
                        channel: channel.as_str(),
                        message: format!("the campaign sends by `webhook`, which has no gateway: set it with PUT /v1/admin/partners/{partner_id}/channels/webhook, then activate"),
                    });
                }
            }
            Channel::Sms | Channel::Push | Channel::Viber => {
                if http_gateway(store, partner_id, channel).await?.is_none() {
                    let name = channel.as_str();
                    return Err(ChannelError::NotConfigured {
                        channel: name,
                        message: format!("the campaign sends by `{name}`, which has no gateway: set it with PUT /v1/admin/partners/{partner_id}/channels/{name} {{\"url\", \"token\"}}, then activate"),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_and_gateway_urls_must_be_absolute_https_or_http_without_credentials() {
        check_url("http://127.0.0.1:9000/hooks").unwrap();
        check_url("http://hooks.example.com/eventline?team=7").unwrap();
        check_url("https://hooks.example.com/eventline").unwrap();
        check_url("https://sms-bridge.internal:8443/send").unwrap();
        for (bad, why) in [
            ("hooks.example.com/x", "absolute"),
            ("ftp://hooks.example.com/", "scheme `ftp`"),
            ("http://user:pw@hooks.example.com/", "user or password"),
            ("http://hooks.example.com/#x", "fragment"),
            ("http://", ""),
        ] {
            let err = check_url(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let long = format!("http://h.example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(check_url(&long).is_err());
    }

    #[test]
    fn secrets_are_16_to_256_printable_characters() {
        check_secret("0123456789abcdef").unwrap();
        assert!(check_secret("short").is_err());
        assert!(check_secret(&"x".repeat(MAX_SECRET_BYTES + 1)).is_err());
        assert!(check_secret("0123456789 abcdef").is_err());
    }

    #[test]
    fn gateway_tokens_are_16_to_4096_printable_characters() {
        check_token("0123456789abcdef").unwrap();
        check_token(&"x".repeat(MAX_TOKEN_BYTES)).unwrap();
        assert!(check_token("short").is_err());
        assert!(check_token(&"x".repeat(MAX_TOKEN_BYTES + 1)).is_err());
        assert!(check_token("0123456789 abcdef").is_err());
        assert!(check_token("0123456789abcdef\n").is_err());
    }

    #[test]
    fn from_addresses_must_be_mailboxes() {
        check_from("Shop <shop@example.com>").unwrap();
        check_from("shop@example.com").unwrap();
        assert!(check_from("not an address").is_err());
    }

    #[test]
    fn the_channels_of_a_campaign_are_found_at_any_depth() {
        let campaign: Campaign = serde_json::from_value(json!({
            "name": "x", "status": "draft",
            "trigger": {"event": {"name": "a"}},
            "steps": [
                {"wait": {"until_event": "b", "timeout": {"days": 1},
                          "on_timeout": [{"send": {"channel": "webhook", "template": {"body": "x"}}}]}},
                {"branch": {"if": {"event": {"name": "a"}},
                            "then": [{"send": {"channel": "email", "template": {"subject": "s", "body": "x"}}}],
                            "else": [{"send": {"channel": "sms", "template": {"body": "x"}}}]}}
            ]
        }))
        .unwrap();
        assert_eq!(
            used_channels(&campaign).into_iter().collect::<Vec<_>>(),
            vec![Channel::Email, Channel::Sms, Channel::Webhook]
        );
    }
}
