//! Committing a batch to ClickHouse: drop events already stored, then insert.

use std::collections::HashSet;

use clickhouse::Row;
use serde::Deserialize;
use uuid::Uuid;

use super::{Batch, BatchWriter, EventKey};
use crate::error::StorageError;
use crate::metrics::Metrics;
use crate::store::rows::{EventRow, RejectedRow};
use crate::store::Store;

/// Writes batches to the `events` and `rejected_events` tables.
pub struct ClickHouseWriter {
    store: Store,
    metrics: Metrics,
}

impl ClickHouseWriter {
    /// A writer over `store`.
    pub fn new(store: Store, metrics: Metrics) -> ClickHouseWriter {
        ClickHouseWriter { store, metrics }
    }

    /// Which of these keys are already in `events`.
    async fn stored(&self, keys: &HashSet<EventKey>) -> Result<HashSet<EventKey>, StorageError> {
        #[derive(Row, Deserialize)]
        struct Key {
            #[serde(with = "clickhouse::serde::uuid")]
            partner_id: Uuid,
            #[serde(with = "clickhouse::serde::uuid")]
            event_id: Uuid,
        }
        let partners: HashSet<Uuid> = keys.iter().map(|k| k.0).collect();
        let ids: Vec<String> = keys.iter().map(|k| k.1.to_string()).collect();
        let partners: Vec<String> = partners.iter().map(Uuid::to_string).collect();
        // The bloom-filter index on event_id keeps this cheap however large the table grows.
        let found: Vec<Key> = self
            .store
            .timed(
                self.store
                    .client()
                    .query(
                        "SELECT DISTINCT partner_id, event_id FROM events \
                         WHERE event_id IN {ids:Array(UUID)} AND partner_id IN {partners:Array(UUID)}",
                    )
                    .param("ids", ids)
                    .param("partners", partners)
                    .fetch_all(),
            )
            .await?;
        Ok(found
            .into_iter()
            .map(|k| (k.partner_id, k.event_id))
            .filter(|k| keys.contains(k))
            .collect())
    }

    async fn insert_events(&self, rows: &[EventRow]) -> Result<(), StorageError> {
        let client = self.store.client();
        let write = async {
            let mut insert = client.insert::<EventRow>("events").await?;
            for row in rows {
                insert.write(row).await?;
            }
            insert.end().await
        };
        self.store.timed(write).await
    }

    async fn insert_rejected(&self, rows: &[RejectedRow]) -> Result<(), StorageError> {
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
    async fn commit(&self, batch: Batch) -> Result<HashSet<EventKey>, StorageError> {
        let mut skipped = HashSet::new();
        let mut repeats = 0u64;
        let mut fresh = Vec::with_capacity(batch.events.len());
        if !batch.events.is_empty() {
            let keys: HashSet<EventKey> = batch
                .events
                .iter()
                .map(|e| (e.partner_id, e.event_id))
                .collect();
            let already = self.stored(&keys).await?;
            let mut seen = HashSet::with_capacity(batch.events.len());
            for row in batch.events {
                let key = (row.partner_id, row.event_id);
                if already.contains(&key) {
                    skipped.insert(key);
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
        // Events before rejections: if the second insert fails the request is retried, the
        // events are then found as stored, and only the rejections are written again.
        if !fresh.is_empty() {
            self.insert_events(&fresh).await?;
            for row in &fresh {
                self.metrics
                    .accepted
                    .with_label_values(&[row.ingest_path.as_str()])
                    .inc();
            }
        }
        if !batch.rejected.is_empty() {
            self.insert_rejected(&batch.rejected).await?;
        }
        self.metrics.duplicates.inc_by(repeats);
        Ok(skipped)
    }
}
