//! System-event fan-outs: a system event concerns no customer, so a campaign it triggers runs
//! for every customer its `filters` and `audience` select (`docs/campaigns.md`), a page at a
//! time.
//!
//! - **Selection.** The filters' `$field_code` values are replaced by the event's context
//!   values, as typed JSON values, before the condition is validated and compiled
//!   ([`selection`]); the audience compiler binds every value as a server-side parameter, so an
//!   event's value never becomes SQL text. Without filters and audience, every known customer
//!   is selected; a `$field_code` the event lacks selects nobody.
//! - **Pages.** Members are read in `customer_id` order, [`Page`] ids after the last one done
//!   (keyset pagination: `compile::member_page`), with the periods counted from the fan-out's
//!   fixed start (`clock_ms`), so the pages of one fan-out partition one set.
//! - **Progress** is durable (`campaign_fanouts`, migration 0012): the row is written before the
//!   first page, and again after each page's messages and states are written, with the page's
//!   last id. A start resumes every fan-out still running after that id; a page done but not
//!   recorded is replayed, and its customers' states (which remember the trigger) and the
//!   message log (which refuses an id it holds) make the replay send nothing twice.
//! - **Shares.** Each engine lane fans out to its own share of the customers
//!   ([`super::shard`]): its pages select only them (`xxHash64(customer_id) % N = k`, in SQL),
//!   and its progress is a row of its own (the share is part of the key, migration 0016), so
//!   N processes fan out one system event in parallel, each customer reached once.

use std::collections::BTreeMap;

use clickhouse::Row;
use event_model::{ContextValue, EventKind};
use eventline_audience::evaluate::StoredEvent;
use eventline_audience::{Condition, Segment};
use eventline_campaigns::engine;
use eventline_campaigns::Valid;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::shard::Shard;
use crate::error::StorageError;
use crate::registry::PartnerEntry;
use crate::segments::{self, Members};
use crate::store::rows::ms_to_datetime;
use crate::store::Store;

/// `running`: customers are left to reach.
pub const RUNNING: &str = "running";
/// `done`: every selected customer was reached (or the campaign was deleted).
pub const DONE: &str = "done";

/// One version of a row of `campaign_fanouts`.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct FanoutRow {
    /// The partner.
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// The campaign.
    #[serde(with = "clickhouse::serde::uuid")]
    pub campaign_id: Uuid,
    /// Its definition version.
    pub version: u32,
    /// The triggering system event.
    pub event_id: String,
    /// The event as JSON ([`TriggerEvent`]).
    pub event: String,
    /// Unix ms the selection's periods are counted from.
    pub clock_ms: i64,
    /// The last customer id done; empty before the first page.
    pub after: String,
    /// Customers selected so far.
    pub customers: u64,
    /// [`RUNNING`] or [`DONE`].
    pub status: String,
    /// When the fan-out started.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub started_at: OffsetDateTime,
    /// The last write.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub updated_at: OffsetDateTime,
    /// Write version.
    pub revision: u64,
    /// `N` of the share `k/N` this row is the progress of.
    pub shard_count: u32,
    /// `k` of the share `k/N`.
    pub shard_index: u32,
}

impl FanoutRow {
    /// A new fan-out of `event` for a campaign version, to the customers of `shard`, started
    /// at `now_ms`.
    pub fn start(
        partner_id: Uuid,
        campaign_id: Uuid,
        version: u32,
        event: &StoredEvent,
        now_ms: i64,
        shard: Shard,
    ) -> FanoutRow {
        let now = ms_to_datetime(now_ms);
        FanoutRow {
            partner_id,
            campaign_id,
            version,
            event_id: event.event_id.clone(),
            event: serde_json::to_string(&TriggerEvent::of(event)).unwrap_or_default(),
            clock_ms: now_ms,
            after: String::new(),
            customers: 0,
            status: RUNNING.into(),
            started_at: now,
            updated_at: now,
            revision: super::messages::revision_after(0),
            shard_count: shard.count(),
            shard_index: shard.index(),
        }
    }

    /// The row after a page of `ids` (in `customer_id` order); done when the page was not full.
    pub fn after_page(&self, ids: &[String], page: u32) -> FanoutRow {
        let mut next = self.clone();
        if let Some(last) = ids.last() {
            next.after = last.clone();
        }
        next.customers += ids.len() as u64;
        if ids.len() < page as usize {
            next.status = DONE.into();
        }
        next.updated_at = OffsetDateTime::now_utc();
        next.revision = super::messages::revision_after(self.revision);
        next
    }

    /// The row marked done.
    pub fn finished(&self) -> FanoutRow {
        FanoutRow {
            status: DONE.into(),
            updated_at: OffsetDateTime::now_utc(),
            revision: super::messages::revision_after(self.revision),
            ..self.clone()
        }
    }

    /// The triggering event, as stored.
    pub fn trigger_event(&self) -> Option<StoredEvent> {
        serde_json::from_str::<TriggerEvent>(&self.event)
            .ok()
            .map(|e| e.stored(&self.event_id))
    }
}

/// The triggering event as a fan-out row keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TriggerEvent {
    name: String,
    source: String,
    event_time_ms: i64,
    context: BTreeMap<String, Value>,
}

impl TriggerEvent {
    fn of(event: &StoredEvent) -> TriggerEvent {
        TriggerEvent {
            name: event.name.clone(),
            source: event.source.clone(),
            event_time_ms: event.event_time_ms,
            context: event
                .context
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        ContextValue::String(s) => Value::String(s.clone()),
                        ContextValue::Bool(b) => Value::Bool(*b),
                        ContextValue::Number(n) => serde_json::Number::from_f64(*n)
                            .map(Value::Number)
                            .unwrap_or(Value::Null),
                    };
                    (k.clone(), v)
                })
                .collect(),
        }
    }

    fn stored(self, event_id: &str) -> StoredEvent {
        StoredEvent {
            event_id: event_id.to_string(),
            kind: EventKind::System,
            name: self.name,
            source: self.source,
            customer_id: String::new(),
            anonymous_id: String::new(),
            event_time_ms: self.event_time_ms,
            context: self
                .context
                .into_iter()
                .filter_map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => ContextValue::String(s),
                        Value::Bool(b) => ContextValue::Bool(b),
                        Value::Number(n) => ContextValue::Number(n.as_f64()?),
                        _ => return None,
                    };
                    Some((k, v))
                })
                .collect(),
        }
    }
}

/// Who a fan-out reaches.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// No customer: a `$field_code` the event lacks, or a condition the catalogue no longer
    /// admits.
    Nobody,
    /// Every known customer of the partner (no filters, no audience).
    Everyone,
    /// The members of this segment (filters resolved, and the audience).
    Members(Segment),
}

/// The customers a system event selects for a campaign: its audience and its filters with every
/// `$field_code` replaced by the event's value, validated against the partner's catalogue.
pub fn selection(valid: &Valid, entry: &PartnerEntry, event: &StoredEvent) -> Selection {
    let context = engine::context_json(&event.context);
    let condition: Condition = match engine::entry_condition(valid, &context) {
        None => return Selection::Everyone,
        Some(Err(missing)) => {
            tracing::info!(field = %missing, event = %event.event_id, "the system event lacks a field the campaign's filters read; nobody is selected");
            return Selection::Nobody;
        }
        Some(Ok(condition)) => condition,
    };
    match eventline_audience::validate(&condition, &segments::catalogue(entry)) {
        Ok(segment) => Selection::Members(segment),
        Err(errors) => {
            tracing::warn!(
                ?errors,
                "a campaign's filters no longer fit the catalogue; nobody is selected"
            );
            Selection::Nobody
        }
    }
}

/// Up to `limit` selected customer ids of `shard` after `after`, in `customer_id` (byte)
/// order.
pub async fn page(
    members: &Members,
    entry: &PartnerEntry,
    selection: &Selection,
    clock_ms: i64,
    after: &str,
    limit: u32,
    shard: Shard,
) -> Result<Vec<String>, StorageError> {
    let partner_id = entry.partner.partner_id;
    let after = (!after.is_empty()).then_some(after);
    match selection {
        Selection::Nobody => Ok(Vec::new()),
        Selection::Everyone => {
            members
                .known_share_page(partner_id, after, limit, shard.share())
                .await
        }
        Selection::Members(segment) => {
            let Ok(clock) = segments::clock(entry, clock_ms) else {
                return Ok(Vec::new());
            };
            members
                .share_page(partner_id, segment, &clock, after, limit, shard.share())
                .await
        }
    }
}

/// The fan-out of `event_id` for a campaign version to `shard`, if one was started.
pub async fn get(
    store: &Store,
    partner_id: Uuid,
    campaign_id: Uuid,
    version: u32,
    event_id: &str,
    shard: Shard,
) -> Result<Option<FanoutRow>, StorageError> {
    store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM campaign_fanouts FINAL \
                     WHERE partner_id = {partner:UUID} AND campaign_id = {campaign:UUID} \
                       AND version = {version:UInt32} AND event_id = {event:String} \
                       AND shard_count = {count:UInt32} AND shard_index = {index:UInt32}",
                )
                .param("partner", partner_id.to_string())
                .param("campaign", campaign_id.to_string())
                .param("version", version)
                .param("event", event_id)
                .param("count", shard.count())
                .param("index", shard.index())
                .fetch_optional(),
        )
        .await
}

/// Writes a new version of a fan-out's row.
pub async fn write(store: &Store, row: &FanoutRow) -> Result<(), StorageError> {
    store
        .insert_rows("campaign_fanouts", std::slice::from_ref(row))
        .await
}

/// Every fan-out of `shard` still running, oldest first: what a start resumes.
pub async fn running(store: &Store, shard: Shard) -> Result<Vec<FanoutRow>, StorageError> {
    store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM campaign_fanouts FINAL \
                     WHERE status = 'running' \
                       AND shard_count = {count:UInt32} AND shard_index = {index:UInt32} \
                     ORDER BY started_at, event_id",
                )
                .param("count", shard.count())
                .param("index", shard.index())
                .fetch_all(),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> StoredEvent {
        StoredEvent {
            event_id: "e-1".into(),
            kind: EventKind::System,
            name: "product_back_in_stock".into(),
            source: "online_store".into(),
            customer_id: String::new(),
            anonymous_id: String::new(),
            event_time_ms: 1_700_000_000_123,
            context: BTreeMap::from([
                ("product".into(), ContextValue::String("Boots".into())),
                ("stock".into(), ContextValue::Number(12.5)),
                ("sale".into(), ContextValue::Bool(true)),
            ]),
        }
    }

    #[test]
    fn the_triggering_event_comes_back_from_its_row_as_it_went_in() {
        let row = FanoutRow::start(
            Uuid::nil(),
            Uuid::nil(),
            3,
            &event(),
            1_700_000_001_000,
            Shard::ALL,
        );
        assert_eq!(row.trigger_event(), Some(event()));
        assert_eq!((row.status.as_str(), row.after.as_str()), (RUNNING, ""));
        assert_eq!(row.clock_ms, 1_700_000_001_000);
    }

    #[test]
    fn a_full_page_moves_the_cursor_and_a_short_one_ends_the_fan_out() {
        let row = FanoutRow::start(Uuid::nil(), Uuid::nil(), 1, &event(), 0, Shard::ALL);
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let full = row.after_page(&ids(&["a", "b"]), 2);
        assert_eq!(
            (full.after.as_str(), full.customers, full.status.as_str()),
            ("b", 2, RUNNING)
        );
        assert!(full.revision > row.revision);
        let short = full.after_page(&ids(&["c"]), 2);
        assert_eq!(
            (short.after.as_str(), short.customers, short.status.as_str()),
            ("c", 3, DONE)
        );
        let empty = full.after_page(&[], 2);
        assert_eq!(
            (empty.after.as_str(), empty.customers, empty.status.as_str()),
            ("b", 2, DONE)
        );
    }
}
