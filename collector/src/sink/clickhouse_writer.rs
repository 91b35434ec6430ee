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

/// Budget for one look-up query's parameter, below ClickHouse's 128 KiB form-field cap.
const LOOKUP_CHUNK_BYTES: usize = 96 * 1024;

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

    /// Which of these rows are already in `events`.
    ///
    /// A duplicate is a row with the same sort key `(partner_id, name, customer_id, event_id)`:
    /// exactly what ReplacingMergeTree would collapse, and a primary-index look-up rather than
    /// a scan. A retry repeats all four fields, since it resends the stored event unchanged.
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
        let mut stored = HashSet::new();
        let mut chunk: Vec<(String, &str, &str, String)> = Vec::new();
        let mut chunk_bytes = 0;
        let mut keys_iter = keys.iter().peekable();
        while let Some(key) = keys_iter.next() {
            chunk_bytes += 96 + 4 * (key.1.len() + key.2.len());
            chunk.push((key.0.to_string(), &key.1, &key.2, key.3.to_string()));
            // Parameters travel as HTTP form fields, which ClickHouse caps at 128 KiB each
            // (http_max_field_value_size); the estimate above allows for escaping.
            if chunk_bytes < LOOKUP_CHUNK_BYTES && keys_iter.peek().is_some() {
                continue;
            }
            let found: Vec<Found> = self
                .store
                .timed(
                    self.store
                        .client()
                        .query(
                            "SELECT DISTINCT partner_id, name, customer_id, event_id FROM events \
                             WHERE (partner_id, name, customer_id, event_id) \
                             IN {keys:Array(Tuple(UUID, String, String, UUID))}",
                        )
                        .param("keys", &chunk)
                        .fetch_all(),
                )
                .await?;
            stored.extend(
                found
                    .into_iter()
                    .map(|f| (f.partner_id, f.name, f.customer_id, f.event_id)),
            );
            chunk.clear();
            chunk_bytes = 0;
        }
        Ok(stored)
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
            let keys: HashSet<SortKey> = batch.events.iter().map(sort_key).collect();
            let already = self.stored(&keys).await?;
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
