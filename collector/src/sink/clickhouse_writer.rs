//! Committing a batch to ClickHouse: drop events already stored, then insert; and writing
//! rejected rows for the quarantine path.

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use clickhouse::Row;
use event_model::timestamp::format_rfc3339_ms;
use serde::Deserialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::quarantine::QuarantineWriter;
use super::{Batch, BatchWriter, CommitError, EventKey};
use crate::error::StorageError;
use crate::metrics::Metrics;
use crate::store::rows::{EventRow, RejectedRow};
use crate::store::Store;

/// How often `system.processes` is asked whether a killed insert has ended.
const SETTLE_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Most event ids in one duplicate look-up (2,000 UUIDs are about 80 KiB of parameter).
const LOOKUP_CHUNK: usize = 2_000;

/// How far back a stored copy of an arriving event can be: an event older than the age limit
/// is refused anyway, so its earlier copy needs no look-up. A day of margin covers clock drift.
const LOOKUP_WINDOW: Duration =
    Duration::milliseconds(event_model::limits::MAX_EVENT_AGE_MS + 86_400_000);

/// The `events` sort key, which is also what makes two rows the same event.
type SortKey = (Uuid, String, String, Uuid);

fn sort_key(row: &EventRow) -> SortKey {
    (
        row.partner_id,
        row.name.clone(),
        row.customer_id.clone(),
        row.event_id,
    )
}

/// Writes batches to `events`, and rejected rows to `rejected_events`.
pub struct ClickHouseWriter {
    store: Store,
    metrics: Metrics,
}

impl ClickHouseWriter {
    /// A writer over `store`.
    pub fn new(store: Store, metrics: Metrics) -> ClickHouseWriter {
        ClickHouseWriter { store, metrics }
    }

    /// Which of these rows are already in `events`.
    ///
    /// A duplicate is a row with the same sort key `(partner_id, name, customer_id, event_id)`:
    /// exactly what ReplacingMergeTree would collapse; a retry repeats all four fields, since
    /// it resends the stored event unchanged. The query narrows by the primary-key prefix
    /// `(partner_id, name)`, probes the bloom filter on `event_id`, and skips partitions older
    /// than any event that could still be accepted; the exact key is compared here.
    async fn stored(&self, keys: &HashSet<SortKey>) -> Result<HashSet<SortKey>, StorageError> {
        #[derive(Row, Deserialize)]
        struct Found {
            #[serde(with = "clickhouse::serde::uuid")]
            partner_id: Uuid,
            name: String,
            customer_id: String,
            #[serde(with = "clickhouse::serde::uuid")]
            event_id: Uuid,
        }
        let since = OffsetDateTime::now_utc() - LOOKUP_WINDOW;
        let since_ms = (since.unix_timestamp_nanos() / 1_000_000) as i64;
        let since = format_rfc3339_ms(since_ms)
            .replace('T', " ")
            .replace('Z', "");
        let all = keys;
        let keys: Vec<&SortKey> = all.iter().collect();
        let mut stored = HashSet::new();
        // Parameters travel as HTTP form fields, which ClickHouse caps at 128 KiB each
        // (http_max_field_value_size); a chunk of ids stays well below that.
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            let partners: BTreeSet<String> = chunk.iter().map(|k| k.0.to_string()).collect();
            let names: BTreeSet<&str> = chunk.iter().map(|k| k.1.as_str()).collect();
            let ids: Vec<String> = chunk.iter().map(|k| k.3.to_string()).collect();
            let found: Vec<Found> = self
                .store
                .timed(
                    self.store
                        .client()
                        .query(
                            "SELECT DISTINCT partner_id, name, customer_id, event_id FROM events \
                             WHERE partner_id IN {partners:Array(UUID)} AND name IN {names:Array(String)} \
                             AND event_id IN {ids:Array(UUID)} AND event_time >= {since:DateTime64(3)}",
                        )
                        .param("partners", partners)
                        .param("names", names)
                        .param("ids", ids)
                        .param("since", since.as_str())
                        .fetch_all(),
                )
                .await?;
            stored.extend(
                found
                    .into_iter()
                    .map(|f| (f.partner_id, f.name, f.customer_id, f.event_id)),
            );
        }
        stored.retain(|k| all.contains(k));
        Ok(stored)
    }

    async fn insert_events(&self, rows: &[EventRow], insert_id: &str) -> Result<(), StorageError> {
        let client = self.store.client();
        let write = async {
            let mut insert = client
                .insert::<EventRow>("events")
                .await?
                .with_setting("query_id", insert_id);
            for row in rows {
                insert.write(row).await?;
            }
            insert.end().await
        };
        self.store.timed(write).await
    }
}

impl QuarantineWriter for ClickHouseWriter {
    async fn write(&self, rows: &[RejectedRow]) -> Result<(), StorageError> {
        let client = self.store.client();
        let write = async {
            let mut insert = client.insert::<RejectedRow>("rejected_events").await?;
            for row in rows {
                insert.write(row).await?;
            }
            insert.end().await
        };
        self.store.timed(write).await
    }
}

impl BatchWriter for ClickHouseWriter {
    async fn commit(
        &self,
        batch: Batch,
        insert_id: &str,
    ) -> Result<HashSet<EventKey>, CommitError> {
        let mut skipped = HashSet::new();
        let mut repeats = 0u64;
        let mut fresh = Vec::with_capacity(batch.events.len());
        if !batch.events.is_empty() {
            let keys: HashSet<SortKey> = batch.events.iter().map(sort_key).collect();
            let already = self.stored(&keys).await.map_err(CommitError::Failed)?;
            let mut seen = HashSet::with_capacity(batch.events.len());
            for row in batch.events {
                let key = sort_key(&row);
                if already.contains(&key) {
                    skipped.insert((row.partner_id, row.event_id));
                    repeats += 1;
                } else if seen.insert(key) {
                    fresh.push(row);
                } else {
                    // The same event twice in one commit (a retry racing its original): the
                    // first copy is stored now, so neither request is told "duplicate".
                    repeats += 1;
                }
            }
        }
        if !fresh.is_empty() {
            // Any failure once the insert is sent leaves its outcome open: a timeout or a reset
            // can come after ClickHouse committed, and a 5xx can come from a proxy while the
            // insert still runs. Settling an insert that had ended costs two short queries.
            self.insert_events(&fresh, insert_id)
                .await
                .map_err(CommitError::InDoubt)?;
            for row in &fresh {
                self.metrics
                    .accepted
                    .with_label_values(&[row.ingest_path.as_str()])
                    .inc();
            }
        }
        self.metrics.duplicates.inc_by(repeats);
        Ok(skipped)
    }

    /// `KILL QUERY … SYNC` stops the insert if it still runs (a query that has ended matches
    /// nothing); then `system.processes` must no longer list it, within the ClickHouse timeout.
    /// `system.processes` is this server's: behind a load balancer over several replicas the
    /// collector must talk to one server (or this check must use `clusterAllReplicas`).
    async fn settle(&self, insert_id: &str) -> Result<(), StorageError> {
        let client = self.store.client();
        self.store
            .timed(
                client
                    .query("KILL QUERY WHERE query_id = {id:String} SYNC")
                    .param("id", insert_id)
                    .execute(),
            )
            .await?;
        let deadline = Instant::now() + self.store.timeout();
        loop {
            let running: u64 = self
                .store
                .timed(
                    client
                        .query("SELECT count() FROM system.processes WHERE query_id = {id:String}")
                        .param("id", insert_id)
                        .fetch_one(),
                )
                .await?;
            if running == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StorageError::Unsettled(insert_id.to_string()));
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }
}
