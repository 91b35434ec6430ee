//! Caps on repeats, counted from the message log (`campaign_messages`): a send step's `cap`
//! counts that step's earlier messages to the customer (every run and version of the campaign);
//! a campaign's channel `counters` count the customer's messages of the channel from every
//! campaign of the partner. Whether one more fits is `eventline_campaigns::counters`' rule (a
//! rolling window back from now); this module only reads the times.
//!
//! A message counts from the moment it is queued (`created_at`, the engine's clock) unless it
//! was skipped: queued, sent and failed ones (a failed one is retried until sent) all count. A
//! message a cap refuses is logged `skipped` with the reason `capped: …` and never sent. The
//! engine advances one input at a time, so a message queued by one campaign is in the log
//! before the next campaign's cap is checked.
//!
//! The counted messages are read once per input, or once per fan-out page for all its
//! customers ([`counted`]); each message the input or page queues is then added to what was
//! read ([`Counted::count`]) before the next one is judged, so two messages of one input count
//! each other as if the first were read back from the log.

use std::collections::HashMap;

use clickhouse::Row;
use eventline_campaigns::counters;
use eventline_campaigns::definition::Cap;
use eventline_campaigns::engine::Message;
use serde::Deserialize;
use uuid::Uuid;

use crate::error::StorageError;
use crate::store::Store;

/// The reason code of a capped message.
pub const CAPPED: &str = "capped";

/// One counted message, as [`counted`] reads it.
#[derive(Debug, Row, Deserialize)]
struct CountedRow {
    customer_id: String,
    #[serde(with = "clickhouse::serde::uuid")]
    campaign_id: Uuid,
    step: String,
    channel: String,
    /// Queue time, Unix ms.
    t: i64,
}

/// The queue times (Unix ms) of some customers' counted messages since a start, by step
/// (customer, campaign, step) and by channel (customer, channel).
#[derive(Debug, Default)]
pub struct Counted {
    steps: HashMap<(String, Uuid, String), Vec<i64>>,
    channels: HashMap<(String, String), Vec<i64>>,
}

/// Where the window of the caps of `messages` starts at `now_ms` (the longest one's start), or
/// `None` when none of them has a cap or a counter (nothing to read).
pub fn window_start<'a>(messages: impl Iterator<Item = &'a Message>, now_ms: i64) -> Option<i64> {
    messages
        .flat_map(|m| {
            let cap = m.cap.as_ref().map(|c| c.per.as_ms());
            let counter = m.counter.as_ref().map(|c| c.per.as_ms());
            cap.into_iter().chain(counter)
        })
        .max()
        .map(|per| now_ms - per)
}

/// The counted messages of `customers` queued after `from_ms`, in one query.
pub async fn counted(
    store: &Store,
    partner_id: Uuid,
    customers: &[&str],
    from_ms: i64,
) -> Result<Counted, StorageError> {
    // The customer, campaign, step, channel and created_at never change between row versions,
    // so filtering on them next to FINAL is safe; the status changes, so it is filtered after.
    let rows: Vec<CountedRow> = store
        .timed(
            store
                .client()
                .query(
                    "SELECT customer_id, campaign_id, step, channel, t FROM ( \
                       SELECT customer_id, campaign_id, step, channel, status, \
                              toUnixTimestamp64Milli(created_at) AS t \
                       FROM campaign_messages FINAL \
                       WHERE partner_id = {partner:UUID} \
                         AND customer_id IN {customers:Array(String)} \
                         AND toUnixTimestamp64Milli(created_at) > {from:Int64}) \
                     WHERE status != 'skipped'",
                )
                .param("partner", partner_id.to_string())
                .param("customers", customers.to_vec())
                .param("from", from_ms)
                .fetch_all(),
        )
        .await?;
    let mut counted = Counted::default();
    for row in rows {
        counted.add(
            row.customer_id,
            row.campaign_id,
            row.step,
            row.channel,
            row.t,
        );
    }
    Ok(counted)
}

fn window(cap: &Cap) -> String {
    let ms = cap.per.as_ms();
    match ms {
        _ if ms % 86_400_000 == 0 => format!("{} day(s)", ms / 86_400_000),
        _ if ms % 3_600_000 == 0 => format!("{} hour(s)", ms / 3_600_000),
        _ if ms % 60_000 == 0 => format!("{} minute(s)", ms / 60_000),
        _ => format!("{} second(s)", ms / 1000),
    }
}

impl Counted {
    fn add(&mut self, customer: String, campaign_id: Uuid, step: String, channel: String, t: i64) {
        self.steps
            .entry((customer.clone(), campaign_id, step))
            .or_default()
            .push(t);
        self.channels
            .entry((customer, channel))
            .or_default()
            .push(t);
    }

    /// Why `message` of `campaign_id` may not go to `customer` at `now_ms` (`capped: …`), or
    /// `None` when every cap admits it. Only messages read or counted are seen: the reader
    /// must have read from [`window_start`] of this message (or earlier) for this customer.
    pub fn refusal(
        &self,
        campaign_id: Uuid,
        customer: &str,
        message: &Message,
        now_ms: i64,
    ) -> Option<String> {
        if let Some(cap) = &message.cap {
            let key = (customer.to_string(), campaign_id, message.step.clone());
            let sent = self.steps.get(&key).map_or(&[][..], Vec::as_slice);
            if !counters::admits(cap, sent, now_ms) {
                return Some(format!(
                    "{CAPPED}: the step's cap allows {} message(s) to a customer per {}",
                    cap.max,
                    window(cap)
                ));
            }
        }
        if let Some(counter) = &message.counter {
            let channel = counter.channel.as_str();
            let key = (customer.to_string(), channel.to_string());
            let sent = self.channels.get(&key).map_or(&[][..], Vec::as_slice);
            if !counters::counter_admits(counter, sent, now_ms) {
                let cap = Cap {
                    max: counter.max,
                    per: counter.per,
                };
                return Some(format!(
                    "{CAPPED}: the campaign's `{channel}` counter allows {} message(s) to a customer per {}, from every campaign",
                    counter.max,
                    window(&cap)
                ));
            }
        }
        None
    }

    /// Counts `message`, queued now (`now_ms`), for the messages judged after it.
    pub fn count(&mut self, campaign_id: Uuid, customer: &str, message: &Message, now_ms: i64) {
        self.add(
            customer.to_string(),
            campaign_id,
            message.step.clone(),
            message.channel.as_str().to_string(),
            now_ms,
        );
    }
}
