//! Where a logged message goes, by its channel: email through the collector's SMTP server (with
//! the partner's `From` when set), webhook to the partner's URL, SMS, push and Viber to the
//! partner's HTTP gateway of the channel ([`super::http_gateway`]). The partner's settings are read
//! from `partner_channels` at send time (so a retry uses the settings as they are then), kept
//! for [`SETTINGS_TTL`] to spare ClickHouse one read per message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use eventline_campaigns::definition::Channel;
use uuid::Uuid;

use super::channels::{self, HttpGateway, WebhookGateway};
use super::email::Mailer;
use super::http_gateway::GatewaySender;
use super::messages::MessageRow;
use super::webhook::WebhookSender;
use crate::store::Store;

/// How long a partner's channel settings read at send time are reused: a change applies to the
/// messages sent from at most this long after it.
pub const SETTINGS_TTL: Duration = Duration::from_secs(5);

/// What a send reads of a partner's settings.
#[derive(Clone)]
enum Settings {
    Webhook(Option<WebhookGateway>),
    EmailFrom(Option<String>),
    Http(Option<HttpGateway>),
}

/// The channels' senders.
pub struct Gateways {
    store: Store,
    mailer: Mailer,
    webhook: WebhookSender,
    http: GatewaySender,
    cache: Mutex<HashMap<(Uuid, Channel), (Instant, Settings)>>,
}

impl Gateways {
    /// Senders over the collector's SMTP server and an HTTP client.
    pub fn new(
        store: Store,
        mailer: Mailer,
        webhook: WebhookSender,
        http: GatewaySender,
    ) -> Gateways {
        Gateways {
            store,
            mailer,
            webhook,
            http,
            cache: Mutex::new(HashMap::new()),
        }
    }

    async fn settings(&self, partner_id: Uuid, channel: Channel) -> Result<Settings, String> {
        let key = (partner_id, channel);
        if let Some((at, settings)) = self.cache.lock().expect("not poisoned").get(&key) {
            if at.elapsed() < SETTINGS_TTL {
                return Ok(settings.clone());
            }
        }
        let read = match channel {
            Channel::Webhook => channels::webhook(&self.store, partner_id)
                .await
                .map(Settings::Webhook),
            Channel::Sms | Channel::Push | Channel::Viber => {
                channels::http_gateway(&self.store, partner_id, channel)
                    .await
                    .map(Settings::Http)
            }
            Channel::Email => channels::email_from(&self.store, partner_id)
                .await
                .map(Settings::EmailFrom),
        };
        let settings = read.map_err(|e| format!("reading the channel settings: {e}"))?;
        self.cache
            .lock()
            .expect("not poisoned")
            .insert(key, (Instant::now(), settings.clone()));
        Ok(settings)
    }

    /// Sends one logged message by its channel; a webhook's URL becomes its `recipient`.
    /// `Err` carries the reason (for the message log).
    pub async fn send(&self, row: &mut MessageRow) -> Result<(), String> {
        match row.channel.as_str() {
            "email" => {
                let from = match self.settings(row.partner_id, Channel::Email).await? {
                    Settings::EmailFrom(from) => from,
                    _ => None,
                };
                self.mailer
                    .send_as(
                        from.as_deref(),
                        row.message_id,
                        &row.recipient,
                        &row.subject,
                        &row.body,
                    )
                    .await
            }
            "webhook" => {
                let Settings::Webhook(Some(gateway)) =
                    self.settings(row.partner_id, Channel::Webhook).await?
                else {
                    return Err(format!(
                        "webhook: the partner has no webhook gateway; set it with PUT /v1/admin/partners/{}/channels/webhook",
                        row.partner_id
                    ));
                };
                row.recipient.clone_from(&gateway.url);
                self.webhook.send(&gateway, row).await
            }
            name => {
                let Some(channel) = Channel::ALL.iter().copied().find(|c| c.as_str() == name)
                else {
                    return Err(format!("unknown channel `{name}`"));
                };
                let Settings::Http(Some(gateway)) = self.settings(row.partner_id, channel).await?
                else {
                    return Err(format!(
                        "{name}: the partner has no {name} gateway; set it with PUT /v1/admin/partners/{}/channels/{name}",
                        row.partner_id
                    ));
                };
                self.http.send(&gateway, row).await
            }
        }
    }
}
