//! Scheduled campaigns (`{"schedule": {"date_attribute", "at"}}`): the storage side. The rules
//! (which partner-local days are due, 29 February, the catch-up bound) are
//! `eventline_campaigns::schedule`'s; the runner ([`super::runner`]) drives them.
//!
//! - **Which campaigns.** Every partner's active campaigns at their current version whose
//!   trigger is a schedule, read at each scan (every `EVENTLINE_CAMPAIGN_SCHEDULE_POLL_MS`, and
//!   at each campaign's next due instant).
//! - **Durable, exactly once.** `campaign_schedules` (migration 0014) holds per campaign the last
//!   partner-local day run for every selected customer; it is written after the day's last
//!   customer. A restart therefore runs a due day that was not finished, late, and never a
//!   finished one again; a customer the unfinished day already reached is not run twice, because
//!   the customer's run state remembers the day (`schedule:YYYY-MM-DD`) and message ids include
//!   it. Each engine lane runs the day for its own share of the customers ([`super::shard`])
//!   and keeps its own last day (the share is part of the key, migration 0016).
//! - **Which customers.** Profiles (`customer_profiles FINAL`, deleted ones left out) whose date
//!   falls on the day: `birthday` by month and day, `attributes.<code>` by the month and day of
//!   the datetime attribute's UTC date, in the lane's share. Read in pages of [`PAGE`] by
//!   customer id, with bound parameters only; each page advanced as one batch.

use clickhouse::Row;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use eventline_campaigns::definition::Trigger;
use eventline_campaigns::schedule;

use super::runner::{live, Engine, Input};
use super::shard::Shard;
use crate::error::StorageError;
use crate::store::rows::CampaignRow;
use crate::store::Store;

/// Customers read per query.
pub const PAGE: u32 = 1000;

/// One version of a row of `campaign_schedules`.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
struct ScheduleRow {
    #[serde(with = "clickhouse::serde::uuid")]
    partner_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    campaign_id: Uuid,
    /// Days since 1970-01-01 (`Date32`).
    done_day: i32,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    updated_at: OffsetDateTime,
    revision: u64,
    shard_count: u32,
    shard_index: u32,
}

const EPOCH: Date = Date::constant(1970, 1, 1);

fn day_number(day: Date) -> i32 {
    (day - EPOCH).get_days()
}

fn from_day_number(n: i32) -> Date {
    EPOCH
        .checked_add(jiff::Span::new().days(i64::from(n)))
        .unwrap_or(EPOCH)
}

/// Every partner's active campaigns, at their current versions, whose trigger is a schedule.
pub async fn campaigns(store: &Store) -> Result<Vec<CampaignRow>, StorageError> {
    store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM ( \
                       SELECT * FROM campaigns FINAL \
                       ORDER BY partner_id, campaign_id, version DESC \
                       LIMIT 1 BY partner_id, campaign_id) \
                     WHERE is_deleted = 0 AND status = 'active' \
                       AND JSONHas(definition, 'trigger', 'schedule')",
                )
                .fetch_all(),
        )
        .await
}

/// The last day a campaign ran for `shard`, if it ever ran (or was first seen).
pub async fn done_day(
    store: &Store,
    partner_id: Uuid,
    campaign_id: Uuid,
    shard: Shard,
) -> Result<Option<Date>, StorageError> {
    let row: Option<ScheduleRow> = store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM campaign_schedules FINAL \
                     WHERE partner_id = {partner:UUID} AND campaign_id = {campaign:UUID} \
                       AND shard_count = {count:UInt32} AND shard_index = {index:UInt32}",
                )
                .param("partner", partner_id.to_string())
                .param("campaign", campaign_id.to_string())
                .param("count", shard.count())
                .param("index", shard.index())
                .fetch_optional(),
        )
        .await?;
    Ok(row.map(|r| from_day_number(r.done_day)))
}

/// Records `day` as the campaign's last day run for `shard`.
pub async fn set_done_day(
    store: &Store,
    partner_id: Uuid,
    campaign_id: Uuid,
    day: Date,
    shard: Shard,
) -> Result<(), StorageError> {
    let now = OffsetDateTime::now_utc();
    let row = ScheduleRow {
        partner_id,
        campaign_id,
        done_day: day_number(day),
        updated_at: now,
        revision: (now.unix_timestamp_nanos() / 1000) as u64,
        shard_count: shard.count(),
        shard_index: shard.index(),
    };
    store.insert_rows("campaign_schedules", &[row]).await
}

/// A page of the customers whose date attribute's month and day is one of `keys`
/// (`month * 100 + day`, [`eventline_campaigns::schedule::occasion_keys`]), after `after` in
/// customer id order, of `shard`.
pub async fn customers(
    store: &Store,
    partner_id: Uuid,
    date_attribute: &str,
    keys: &[u16],
    after: &str,
    shard: Shard,
) -> Result<Vec<String>, StorageError> {
    // The date expression is one of two fixed texts; the attribute code is a bound parameter.
    let (date, attribute) = match date_attribute.strip_prefix("attributes.") {
        Some(code) => (
            "if(mapContains(attributes_datetimes, {attribute:String}), \
               toDate32(attributes_datetimes[{attribute:String}]), NULL)",
            Some(code),
        ),
        None => ("birthday", None),
    };
    let in_share = shard
        .share()
        .sql_predicate("customer_id", "share")
        .map(|p| format!(" AND {p}"))
        .unwrap_or_default();
    // FINAL first, then the filters on columns a newer version may change.
    let sql = format!(
        "SELECT customer_id FROM ( \
           SELECT customer_id, is_deleted, {date} AS d FROM customer_profiles FINAL \
           WHERE partner_id = {{partner:UUID}} AND customer_id > {{after:String}}{in_share}) \
         WHERE is_deleted = 0 AND d IS NOT NULL \
           AND toMonth(d) * 100 + toDayOfMonth(d) IN {{keys:Array(UInt16)}} \
         ORDER BY customer_id LIMIT {{limit:UInt32}}"
    );
    let mut query = store
        .client()
        .query(&sql)
        .param("partner", partner_id.to_string())
        .param("after", after)
        .param("keys", keys.to_vec())
        .param("limit", PAGE)
        .param("share_count", shard.count())
        .param("share_index", shard.index());
    if let Some(code) = attribute {
        query = query.param("attribute", code);
    }
    store.timed(query.fetch_all()).await
}

impl Engine {
    /// Runs every scheduled campaign's due days at `now`; returns when one is next due
    /// (`i64::MAX` when none is known). A failure leaves the day to the next scan.
    pub(super) async fn on_schedules(&mut self, now: i64) -> i64 {
        let rows = match campaigns(&self.store).await {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(%error, "reading scheduled campaigns failed; retrying at the next scan");
                return i64::MAX;
            }
        };
        let mut next = i64::MAX;
        for row in rows {
            let (partner_id, campaign_id) = (row.partner_id, row.campaign_id);
            match self.run_schedule(row, now).await {
                Ok(Some(due)) => next = next.min(due),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, %partner_id, %campaign_id, "a scheduled campaign's day failed; retrying at the next scan");
                }
            }
        }
        next
    }

    /// One campaign's due days, oldest first; returns its next due instant.
    async fn run_schedule(
        &mut self,
        row: CampaignRow,
        now: i64,
    ) -> Result<Option<i64>, StorageError> {
        let Ok(entry) = self.registry.partner(&row.partner_id) else {
            return Ok(None);
        };
        let (partner_id, campaign_id) = (row.partner_id, row.campaign_id);
        let Some(campaign) = live(&entry, row) else {
            return Ok(None);
        };
        let Trigger::Schedule(trigger) = &campaign.valid.campaign.trigger else {
            return Ok(None);
        };
        let Some(at) = schedule::parse_time_of_day(&trigger.at) else {
            return Ok(None);
        };
        let zone = entry.time_zone.clone();
        let date_attribute = trigger.date_attribute.clone();
        let shard = self.shard();
        let done = match done_day(&self.store, partner_id, campaign_id, shard).await? {
            Some(day) => day,
            None => {
                // First seen: it starts with its next day, never late with one already past.
                let Ok(first) = schedule::first_done(&zone, at, now) else {
                    return Ok(None);
                };
                set_done_day(&self.store, partner_id, campaign_id, first, shard).await?;
                first
            }
        };
        let Ok(due) = schedule::due_days(&zone, at, done, now) else {
            tracing::warn!(%partner_id, zone = %zone, "the partner's time zone is unknown; scheduled campaigns wait");
            return Ok(None);
        };
        let mut done = done;
        for (day, at_ms) in due {
            let keys = schedule::occasion_keys(day);
            let mut after = String::new();
            loop {
                let page = customers(
                    &self.store,
                    partner_id,
                    &date_attribute,
                    &keys,
                    &after,
                    shard,
                )
                .await?;
                let inputs: Vec<(&str, Input<'_>)> = page
                    .iter()
                    .map(|c| (c.as_str(), Input::Schedule { day, at_ms }))
                    .collect();
                // A replay of an unfinished day is possible: the log is asked.
                let advanced = self
                    .advance_batch(&entry, &campaign, &inputs, None, true, now)
                    .await?;
                self.hand_on(advanced);
                match page.last() {
                    Some(last) if page.len() as u32 == PAGE => after = last.clone(),
                    _ => break,
                }
            }
            set_done_day(&self.store, partner_id, campaign_id, day, shard).await?;
            tracing::info!(%partner_id, %campaign_id, %day, "scheduled campaign day run");
            done = day;
        }
        Ok(schedule::next_due_ms(&zone, at, done).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_convert_to_date32_numbers_and_back() {
        let d: Date = "2026-11-30".parse().unwrap();
        assert_eq!(day_number(EPOCH), 0);
        assert_eq!(day_number("1969-12-31".parse().unwrap()), -1);
        assert_eq!(from_day_number(day_number(d)), d);
    }
}
