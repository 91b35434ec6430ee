//! The message log (`campaign_messages`, migration 0009): every message a run produces is
//! written `queued` under its deterministic id BEFORE it is sent, then `sent`, or `failed` with
//! the reason and the time of the next attempt (retried with backoff), or `skipped` when the
//! customer cannot receive it (no address, consent withdrawn).
//!
//! Exactly once: a run replayed after a crash produces the same message ids, and the engine asks
//! the log which of them it [`held`] before writing a batch, so a message is queued once. The send itself is
//! at-least-once: a crash after the SMTP server accepted a message and before `sent` was
//! written sends it again at the next start, under the same id (the email `Message-ID`), so a
//! receiver can drop the copy.

use std::collections::HashSet;
use std::time::Duration;

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StorageError;
use crate::store::Store;

/// `queued`: written, not sent yet.
pub const QUEUED: &str = "queued";
/// `sent`: the channel's server accepted it.
pub const SENT: &str = "sent";
/// `failed`: the last attempt failed; tried again at `next_attempt_at`.
pub const FAILED: &str = "failed";
/// `skipped`: never sent (the customer cannot receive it on this channel).
pub const SKIPPED: &str = "skipped";

/// The first retry waits this long; each next one twice as long, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// One version of a row of `campaign_messages`.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct MessageRow {
    /// The partner.
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// Deterministic (`eventline_campaigns::message_id`).
    #[serde(with = "clickhouse::serde::uuid")]
    pub message_id: Uuid,
    /// The campaign.
    #[serde(with = "clickhouse::serde::uuid")]
    pub campaign_id: Uuid,
    /// Its definition version.
    pub version: u32,
    /// The customer.
    pub customer_id: String,
    /// The step path.
    pub step: String,
    /// The channel.
    pub channel: String,
    /// The address.
    pub recipient: String,
    /// Rendered subject.
    pub subject: String,
    /// Rendered body.
    pub body: String,
    /// Rendered image URL (push, Viber); empty when none.
    pub image_url: String,
    /// Rendered Viber button caption; empty when none.
    pub button_text: String,
    /// Rendered Viber button link; empty when none.
    pub button_url: String,
    /// [`QUEUED`], [`SENT`], [`FAILED`] or [`SKIPPED`].
    pub status: String,
    /// Attempts so far.
    pub attempts: u32,
    /// The last failure, or why it was skipped.
    pub error: String,
    /// When a queued or failed message is to be tried.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub next_attempt_at: OffsetDateTime,
    /// When it was queued.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub created_at: OffsetDateTime,
    /// The last write.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub updated_at: OffsetDateTime,
    /// Write version.
    pub revision: u64,
}

impl MessageRow {
    /// The next version of this row: `revision` above the last one, `updated_at` now.
    pub fn next(&self) -> MessageRow {
        let now = OffsetDateTime::now_utc();
        MessageRow {
            updated_at: now,
            revision: revision_after(self.revision),
            ..self.clone()
        }
    }

    /// When it is to be tried, Unix ms.
    pub fn next_attempt_ms(&self) -> i64 {
        (self.next_attempt_at.unix_timestamp_nanos() / 1_000_000) as i64
    }
}

/// A revision above `previous`: microseconds now, bumped past it.
pub fn revision_after(previous: u64) -> u64 {
    let micros = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as u64;
    micros.max(previous + 1)
}

/// The wait before attempt `attempts + 1`, after `attempts` failed ones (at least one).
pub fn backoff(attempts: u32) -> Duration {
    let doubled = FIRST_BACKOFF.saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF)
}

/// The logged message with this id, if any.
pub async fn get(
    store: &Store,
    partner_id: Uuid,
    message_id: Uuid,
) -> Result<Option<MessageRow>, StorageError> {
    store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM campaign_messages FINAL \
                     WHERE partner_id = {partner:UUID} AND message_id = {id:UUID}",
                )
                .param("partner", partner_id.to_string())
                .param("id", message_id.to_string())
                .fetch_optional(),
        )
        .await
}

/// Which of `ids` the log holds (one look-up). For a fan-out's page: a replayed page's
/// messages are all held, and nothing is written again.
pub async fn held(
    store: &Store,
    partner_id: Uuid,
    ids: &[Uuid],
) -> Result<HashSet<Uuid>, StorageError> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let held: Vec<String> = store
        .timed(
            store
                .client()
                .query(
                    "SELECT DISTINCT toString(message_id) FROM campaign_messages \
                     WHERE partner_id = {partner:UUID} AND message_id IN {ids:Array(UUID)}",
                )
                .param("partner", partner_id.to_string())
                .param("ids", &ids)
                .fetch_all(),
        )
        .await?;
    Ok(held.iter().filter_map(|id| id.parse().ok()).collect())
}

/// Writes many new rows (queued or skipped) in one insert; the caller has checked with
/// [`held`] that the log holds none of their ids.
pub async fn write_many(store: &Store, rows: &[MessageRow]) -> Result<(), StorageError> {
    store.insert_rows("campaign_messages", rows).await
}

/// Writes a new version of a message's row.
pub async fn write(store: &Store, row: &MessageRow) -> Result<(), StorageError> {
    store
        .insert_rows("campaign_messages", std::slice::from_ref(row))
        .await
}

/// Every message still to be sent (queued, or failed and to be retried).
pub async fn pending(store: &Store) -> Result<Vec<MessageRow>, StorageError> {
    store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM campaign_messages FINAL \
                     WHERE status IN ('queued', 'failed') ORDER BY next_attempt_at",
                )
                .fetch_all(),
        )
        .await
}

/// Default page size of the message log API.
pub const DEFAULT_PAGE_LIMIT: u32 = 50;
/// Largest page of the message log API.
pub const MAX_PAGE_LIMIT: u32 = 500;

/// Whose messages a log page lists.
#[derive(Debug, Clone, Copy)]
pub enum LogOf<'a> {
    /// One campaign's (every version).
    Campaign(Uuid),
    /// One customer's (every campaign).
    Customer(&'a str),
}

/// A page of the message log, newest first by `(created_at, message_id)` descending, so pages
/// never overlap or skip; `before` is the keyset cursor (the last row of the previous page).
pub async fn page(
    store: &Store,
    partner_id: Uuid,
    of: LogOf<'_>,
    before: Option<(i64, Uuid)>,
    limit: u32,
) -> Result<Vec<MessageRow>, StorageError> {
    // Both filters are on columns no row version changes, so filtering next to FINAL is safe.
    let filter = match of {
        LogOf::Campaign(_) => "campaign_id = {campaign:UUID}",
        LogOf::Customer(_) => "customer_id = {customer:String}",
    };
    let sql = format!(
        "SELECT ?fields FROM campaign_messages FINAL \
         WHERE partner_id = {{partner:UUID}} AND {filter} \
           AND (toUnixTimestamp64Milli(created_at), message_id) \
               < ({{before_ms:Int64}}, {{before_id:UUID}}) \
         ORDER BY created_at DESC, message_id DESC LIMIT {{limit:UInt32}}"
    );
    let (before_ms, before_id) = before.unwrap_or((i64::MAX, Uuid::max()));
    let mut query = store
        .client()
        .query(&sql)
        .param("partner", partner_id.to_string())
        .param("before_ms", before_ms)
        .param("before_id", before_id.to_string())
        .param("limit", limit);
    query = match of {
        LogOf::Campaign(id) => query.param("campaign", id.to_string()),
        LogOf::Customer(id) => query.param("customer", id),
    };
    store.timed(query.fetch_all()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(9), Duration::from_secs(256));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(1000), MAX_BACKOFF);
    }
}
