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

use eventline_campaigns::counters;
use eventline_campaigns::definition::Cap;
use eventline_campaigns::engine::Message;
use uuid::Uuid;

use crate::error::StorageError;
use crate::store::Store;

/// The reason code of a capped message.
pub const CAPPED: &str = "capped";

/// What a count covers.
enum Scope<'a> {
    /// One step of one campaign.
    Step { campaign_id: Uuid, step: &'a str },
    /// One channel, every campaign.
    Channel(&'a str),
}

/// Queue times (Unix ms) of the customer's counted messages in the scope, newer than `from_ms`.
async fn sent_since(
    store: &Store,
    partner_id: Uuid,
    customer: &str,
    scope: Scope<'_>,
    from_ms: i64,
) -> Result<Vec<i64>, StorageError> {
    // The scope columns and created_at never change between row versions, so filtering on them
    // next to FINAL is safe; the status changes, so it is filtered after FINAL.
    let filter = match scope {
        Scope::Step { .. } => "campaign_id = {campaign:UUID} AND step = {step:String}",
        Scope::Channel(_) => "channel = {channel:String}",
    };
    let sql = format!(
        "SELECT t FROM ( \
           SELECT toUnixTimestamp64Milli(created_at) AS t, status FROM campaign_messages FINAL \
           WHERE partner_id = {{partner:UUID}} AND customer_id = {{customer:String}} \
             AND {filter} AND toUnixTimestamp64Milli(created_at) > {{from:Int64}}) \
         WHERE status != 'skipped'"
    );
    let mut query = store
        .client()
        .query(&sql)
        .param("partner", partner_id.to_string())
        .param("customer", customer)
        .param("from", from_ms);
    query = match scope {
        Scope::Step { campaign_id, step } => query
            .param("campaign", campaign_id.to_string())
            .param("step", step),
        Scope::Channel(channel) => query.param("channel", channel),
    };
    store.timed(query.fetch_all()).await
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

/// Why `message` may not go to `customer` now (`capped: …`), or `None` when every cap admits it.
pub async fn refusal(
    store: &Store,
    partner_id: Uuid,
    campaign_id: Uuid,
    customer: &str,
    message: &Message,
    now_ms: i64,
) -> Result<Option<String>, StorageError> {
    if let Some(cap) = &message.cap {
        let sent = sent_since(
            store,
            partner_id,
            customer,
            Scope::Step {
                campaign_id,
                step: &message.step,
            },
            now_ms - cap.per.as_ms(),
        )
        .await?;
        if !counters::admits(cap, &sent, now_ms) {
            return Ok(Some(format!(
                "{CAPPED}: the step's cap allows {} message(s) to a customer per {}",
                cap.max,
                window(cap)
            )));
        }
    }
    if let Some(counter) = &message.counter {
        let channel = counter.channel.as_str();
        let sent = sent_since(
            store,
            partner_id,
            customer,
            Scope::Channel(channel),
            now_ms - counter.per.as_ms(),
        )
        .await?;
        if !counters::counter_admits(counter, &sent, now_ms) {
            let cap = Cap {
                max: counter.max,
                per: counter.per,
            };
            return Ok(Some(format!(
                "{CAPPED}: the campaign's `{channel}` counter allows {} message(s) to a customer per {}, from every campaign",
                counter.max,
                window(&cap)
            )));
        }
    }
    Ok(None)
}
