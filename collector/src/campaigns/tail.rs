//! Reading the campaign engine's inputs from ClickHouse: `events` by `received_at`, from a
//! durable checkpoint per share (`campaign_checkpoints`, migration 0015), with an overlap.
//!
//! - **Rounds.** A round reads the events received at or after `checkpoint - overlap` (a
//!   full round, at most every [`FULL_EVERY`]) or at or after the checkpoint (the rounds in
//!   between), in `(received_at, event_id)` order, a page at a time. Each page is read light first (ids,
//!   kind, customer); only the events of this share not advanced yet in this process are read
//!   whole and handed to the engine. Events the in-process hand-off already gave the engine
//!   ([`Tail::handed`]) count as advanced.
//! - **Checkpoint.** After a page is advanced, the checkpoint moves to the latest
//!   `received_at` the round has read; it is saved at most every [`SAVE_EVERY`] and at a
//!   graceful end. A new share writes its start at once, so a crash before its first save
//!   cannot move its start later.
//! - **The window.** `received_at` is stamped when a request arrives, and the event becomes
//!   visible when its commit ends. The overlap must exceed that delay (the sink's queue wait,
//!   linger and commit, plus the clock difference between collectors): an event that becomes
//!   visible more than `overlap - FULL_EVERY` after its `received_at` may never be read by the
//!   tail (inside `serve`, the hand-off still gives it to the engine of that process).
//! - **Replays are harmless.** After a restart the overlap is read again with nothing marked
//!   advanced: a triggering event a run remembers starts nothing (`RECENT_TRIGGERS`), and a
//!   message id the log holds is not queued again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::shard::Shard;
use crate::error::StorageError;
use crate::store::rows::{ms_to_datetime, EventRow};
use crate::store::Store;

/// Most events one page reads; their ids travel as one query parameter when read whole
/// (about 40 bytes each: well under ClickHouse's 1 MiB URI limit).
pub const PAGE: u64 = 2_000;

/// How often a round reads the whole overlap again; the rounds in between read from the
/// checkpoint on, so a poll reads little more than what is new.
pub const FULL_EVERY: Duration = Duration::from_secs(5);

/// How often a moved checkpoint is saved; a restart reads again at most this much more than
/// the overlap.
pub const SAVE_EVERY: Duration = Duration::from_secs(5);

/// How the tail reads.
#[derive(Debug, Clone, Copy)]
pub struct TailSettings {
    /// This process's share of the customers.
    pub shard: Shard,
    /// How far before the checkpoint each round starts.
    pub overlap: Duration,
    /// The pause between rounds.
    pub poll: Duration,
}

/// The identity of a stored event.
pub type Seen = (Uuid, Uuid);

/// One row of `campaign_checkpoints`.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
struct CheckpointRow {
    shard_count: u32,
    shard_index: u32,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    received_before: OffsetDateTime,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    updated_at: OffsetDateTime,
    revision: u64,
}

/// What a page reads first.
#[derive(Debug, Clone, Row, Deserialize)]
struct Light {
    #[serde(with = "clickhouse::serde::uuid")]
    partner_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    event_id: Uuid,
    received_ms: i64,
    kind: String,
    customer_id: String,
}

/// A page of a round: the events to advance, in received order.
pub struct Page {
    /// This share's events not advanced yet (system events go to every share).
    pub events: Vec<EventRow>,
    light: Vec<Light>,
    /// Whether the round has more to read at once.
    pub more: bool,
}

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The reading position of one share.
pub struct Tail {
    store: Store,
    settings: TailSettings,
    /// Every event received before this (and visible when read) was advanced (Unix ms).
    checkpoint_ms: i64,
    saved_ms: i64,
    saved_at: Instant,
    /// Where the round in progress is: after this `(received_ms, event_id)`.
    cursor: Option<(i64, Uuid)>,
    /// Where the round in progress started (Unix ms).
    round_from: i64,
    /// Whether the round in progress is full.
    round_full: bool,
    /// When the last full round ended; `None` before the first (the start's replay).
    full_at: Option<Instant>,
    /// Events advanced in this process with their receive time, kept while the overlap can
    /// read them again.
    seen: HashMap<Seen, i64>,
}

impl Tail {
    /// Reads the share's checkpoint; a share without one starts at the oldest checkpoint of
    /// any share (re-sharding), or, on a database that has none, at `now_ms`, and saves it.
    pub async fn open(
        store: Store,
        settings: TailSettings,
        now_ms: i64,
    ) -> Result<Tail, StorageError> {
        let own: Option<i64> = store
            .timed(
                store
                    .client()
                    .query(
                        "SELECT toUnixTimestamp64Milli(received_before) FROM campaign_checkpoints FINAL \
                         WHERE shard_count = {count:UInt32} AND shard_index = {index:UInt32}",
                    )
                    .param("count", settings.shard.count())
                    .param("index", settings.shard.index())
                    .fetch_optional(),
            )
            .await?;
        let mut tail = Tail {
            store,
            settings,
            checkpoint_ms: 0,
            saved_ms: 0,
            saved_at: Instant::now(),
            cursor: None,
            round_from: 0,
            round_full: false,
            full_at: None,
            seen: HashMap::new(),
        };
        match own {
            Some(at) => {
                tail.checkpoint_ms = at;
                tail.saved_ms = at;
            }
            None => {
                let oldest: Option<i64> = tail
                    .store
                    .timed(
                        tail.store
                            .client()
                            .query(
                                "SELECT toUnixTimestamp64Milli(min(received_before)) \
                                 FROM campaign_checkpoints FINAL HAVING count() > 0",
                            )
                            .fetch_optional(),
                    )
                    .await?;
                tail.checkpoint_ms = oldest.unwrap_or(now_ms);
                tail.save().await?;
            }
        }
        tracing::info!(shard = %settings.shard, checkpoint_ms = tail.checkpoint_ms, "campaign tail opened");
        Ok(tail)
    }

    /// The settings it reads with.
    pub fn settings(&self) -> TailSettings {
        self.settings
    }

    /// The checkpoint (Unix ms).
    pub fn checkpoint_ms(&self) -> i64 {
        self.checkpoint_ms
    }

    /// Who and when `rows` are, for [`Tail::handed`] once the engine advanced them.
    pub fn keys(rows: &[EventRow]) -> Vec<(Seen, i64)> {
        rows.iter()
            .map(|r| ((r.partner_id, r.event_id), ms(r.received_at)))
            .collect()
    }

    /// `rows` less the events this process advanced already (a round of the tail can read a
    /// commit before its hand-off reaches the engine).
    pub fn unseen(&self, mut rows: Vec<EventRow>) -> Vec<EventRow> {
        rows.retain(|r| !self.seen.contains_key(&(r.partner_id, r.event_id)));
        rows
    }

    /// Events the in-process hand-off gave the engine and it advanced: the tail skips them.
    pub fn handed(&mut self, keys: Vec<(Seen, i64)>) {
        self.seen.extend(keys);
    }

    /// Reads the next page of the round in progress (a new round starts at the checkpoint
    /// minus the overlap). Call [`Tail::advanced`] once its events are advanced.
    pub async fn next_page(&mut self) -> Result<Page, StorageError> {
        if self.cursor.is_none() {
            self.round_full = self.full_at.is_none_or(|at| at.elapsed() >= FULL_EVERY);
            self.round_from = if self.round_full {
                self.checkpoint_ms - self.settings.overlap.as_millis() as i64
            } else {
                self.checkpoint_ms
            };
        }
        let from = self.round_from;
        let (after_ms, after_id) = self.cursor.unwrap_or((from - 1, Uuid::max()));
        let light: Vec<Light> = self
            .store
            .timed(
                self.store
                    .client()
                    .query(
                        "SELECT partner_id, event_id, toUnixTimestamp64Milli(received_at) AS received_ms, \
                                kind, customer_id \
                         FROM events \
                         WHERE received_at >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') \
                           AND (toUnixTimestamp64Milli(received_at), event_id) > ({after_ms:Int64}, {after_id:UUID}) \
                           AND (kind = 'system' OR customer_id != '') \
                         ORDER BY received_at, event_id LIMIT {page:UInt64}",
                    )
                    .param("from", from)
                    .param("after_ms", after_ms)
                    .param("after_id", after_id.to_string())
                    .param("page", PAGE)
                    .fetch_all(),
            )
            .await?;
        let more = light.len() as u64 == PAGE;
        let shard = self.settings.shard;
        let wanted: Vec<&Light> = light
            .iter()
            .filter(|l| !self.seen.contains_key(&(l.partner_id, l.event_id)))
            .filter(|l| l.kind == "system" || shard.owns(&l.customer_id))
            .collect();
        let mut events = Vec::new();
        if !wanted.is_empty() {
            let ids: Vec<String> = wanted.iter().map(|l| l.event_id.to_string()).collect();
            let first = wanted.iter().map(|l| l.received_ms).min().unwrap_or(from);
            let rows: Vec<EventRow> = self
                .store
                .timed(
                    self.store
                        .client()
                        .query(
                            "SELECT ?fields FROM events \
                             WHERE received_at >= fromUnixTimestamp64Milli({first:Int64}, 'UTC') \
                               AND event_id IN {ids:Array(UUID)} \
                             ORDER BY received_at, event_id",
                        )
                        .param("first", first)
                        .param("ids", ids)
                        .fetch_all(),
                )
                .await?;
            // The same id under another partner, or a second stored copy of a retried event
            // (two collectors racing on one retry), is not a second input.
            let mut want: HashMap<Seen, ()> = wanted
                .iter()
                .map(|l| ((l.partner_id, l.event_id), ()))
                .collect();
            events = rows
                .into_iter()
                .filter(|r| want.remove(&(r.partner_id, r.event_id)).is_some())
                .collect();
        }
        Ok(Page {
            events,
            light,
            more,
        })
    }

    /// The page's events are advanced: marks them, moves the cursor and the checkpoint, and
    /// ends the round when the page was its last.
    pub fn advanced(&mut self, page: Page) {
        for l in &page.light {
            self.seen.insert((l.partner_id, l.event_id), l.received_ms);
        }
        if let Some(last) = page.light.last() {
            self.checkpoint_ms = self.checkpoint_ms.max(last.received_ms);
            self.cursor = Some((last.received_ms, last.event_id));
        }
        if !page.more {
            self.cursor = None;
            if self.round_full {
                self.full_at = Some(Instant::now());
            }
            let keep_from = self.checkpoint_ms - self.settings.overlap.as_millis() as i64;
            self.seen.retain(|_, received| *received >= keep_from);
        }
    }

    /// Saves the checkpoint if it moved and [`SAVE_EVERY`] has passed (`force`: if it moved).
    pub async fn save_if_due(&mut self, force: bool) -> Result<(), StorageError> {
        if self.checkpoint_ms == self.saved_ms || (!force && self.saved_at.elapsed() < SAVE_EVERY) {
            return Ok(());
        }
        self.save().await
    }

    async fn save(&mut self) -> Result<(), StorageError> {
        let now = OffsetDateTime::now_utc();
        let row = CheckpointRow {
            shard_count: self.settings.shard.count(),
            shard_index: self.settings.shard.index(),
            received_before: ms_to_datetime(self.checkpoint_ms),
            updated_at: now,
            revision: (now.unix_timestamp_nanos() / 1000) as u64,
        };
        self.store
            .insert_rows("campaign_checkpoints", &[row])
            .await?;
        self.saved_ms = self.checkpoint_ms;
        self.saved_at = Instant::now();
        Ok(())
    }
}
