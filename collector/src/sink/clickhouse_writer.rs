//! Committing a batch to ClickHouse: drop events already stored, then insert; and writing
//! rejected rows for the quarantine path.
//!
//! Which events are stored already is asked of `event_keys` (migration 0017): one narrow row
//! per event sorted by `(partner_id, event_id)`, written by a materialized view inside every
//! insert into `events`. A look-up then costs what its ids cost, not what the table holds.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
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

/// Most events in one repair of `event_keys` (500 keys of four fields stay near 60 KiB).
const REPAIR_CHUNK: usize = 500;

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
    /// The events of inserts whose outcome is unknown, by insert id, until they are settled:
    /// such an insert may have committed its `events` part and not the `event_keys` part its
    /// view writes after it (a view error, a kill in between), so settling repairs the keys.
    in_doubt: Mutex<HashMap<String, Vec<SortKey>>>,
}

impl ClickHouseWriter {
    /// A writer over `store`.
    pub fn new(store: Store, metrics: Metrics) -> ClickHouseWriter {
        ClickHouseWriter {
            store,
            metrics,
            in_doubt: Mutex::new(HashMap::new()),
        }
    }

    /// The earliest `event_time` a stored copy of an acceptable event can have, as ClickHouse
    /// DateTime64 text.
    fn window_start() -> String {
        let since = OffsetDateTime::now_utc() - LOOKUP_WINDOW;
        let since_ms = (since.unix_timestamp_nanos() / 1_000_000) as i64;
        format_rfc3339_ms(since_ms)
            .replace('T', " ")
            .replace('Z', "")
    }

    /// Which of these rows are already in `events`, from their rows in `event_keys`.
    ///
    /// A duplicate is a row with the same sort key `(partner_id, name, customer_id, event_id)`:
    /// exactly what ReplacingMergeTree would collapse; a retry repeats all four fields, since
    /// it resends the stored event unchanged. The query asks `event_keys` by its primary key
    /// `(partner_id, event_id)`, so ClickHouse reads only granules where those ids would sort,
    /// and skips weekly partitions older than any event that could still be accepted; the exact
    /// key is compared here.
    async fn stored(&self, keys: &HashSet<SortKey>) -> Result<HashSet<SortKey>, StorageError> {
        #[derive(Row, Deserialize)]
        struct Found {
            #[serde(with = "clickhouse::serde::uuid")]
            partner_id: Uuid,
            name: String,
            customer_id: String,
            event_id: String,
        }
        let since = Self::window_start();
        let all = keys;
        let mut stored = HashSet::new();
        // Parameters travel as HTTP form fields, which ClickHouse caps at 128 KiB each
        // (http_max_field_value_size); a chunk of ids stays well below that.
        for (partner, ids) in by_partner(all.iter(), |(_, _, _, id)| id.to_string()) {
            for chunk in ids.chunks(LOOKUP_CHUNK) {
                let found: Vec<Found> = self
                    .store
                    .timed(
                        self.store
                            .client()
                            .query(
                                "SELECT DISTINCT partner_id, name, customer_id, event_id \
                                 FROM event_keys WHERE partner_id = {partner:UUID} \
                                 AND event_id IN {ids:Array(String)} AND event_time >= {since:DateTime64(3)}",
                            )
                            .param("partner", partner.to_string())
                            .param("ids", chunk)
                            .param("since", since.as_str())
                            .fetch_all(),
                    )
                    .await?;
                stored.extend(found.into_iter().filter_map(|f| {
                    let id = Uuid::parse_str(&f.event_id).ok()?;
                    Some((f.partner_id, f.name, f.customer_id, id))
                }));
            }
        }
        stored.retain(|k| all.contains(k));
        Ok(stored)
    }

    /// Writes the `event_keys` rows of those of `keys` that are in `events`, whether or not
    /// their view wrote them already (a second copy is harmless: the look-up reads keys).
    async fn repair_keys(&self, keys: &[SortKey]) -> Result<(), StorageError> {
        let since = Self::window_start();
        let grouped = by_partner(keys.iter(), |(_, name, customer, id)| {
            (name.as_str(), customer.as_str(), id.to_string())
        });
        for (partner, keys) in grouped {
            for chunk in keys.chunks(REPAIR_CHUNK) {
                self.store
                    .timed(
                        self.store
                            .client()
                            .query(
                                "INSERT INTO event_keys \
                                 SELECT partner_id, toString(event_id), name, customer_id, anonymous_id, event_time \
                                 FROM events WHERE partner_id = {partner:UUID} \
                                 AND (name, customer_id, event_id) IN {keys:Array(Tuple(String, String, UUID))} \
                                 AND event_time >= {since:DateTime64(3)}",
                            )
                            .param("partner", partner.to_string())
                            .param("keys", chunk)
                            .param("since", since.as_str())
                            .execute(),
                    )
                    .await?;
            }
        }
        Ok(())
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

/// `part` of each of `keys`, grouped by partner (the look-up and the repair ask per partner).
fn by_partner<'a, T>(
    keys: impl Iterator<Item = &'a SortKey>,
    part: impl Fn(&'a SortKey) -> T,
) -> BTreeMap<Uuid, Vec<T>> {
    let mut grouped: BTreeMap<Uuid, Vec<T>> = BTreeMap::new();
    for key in keys {
        grouped.entry(key.0).or_default().push(part(key));
    }
    grouped
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
            if let Err(error) = self.insert_events(&fresh, insert_id).await {
                self.in_doubt
                    .lock()
                    .expect("in-doubt map poisoned")
                    .insert(insert_id.to_string(), fresh.iter().map(sort_key).collect());
                return Err(CommitError::InDoubt(error));
            }
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
    /// Then the `event_keys` rows of whatever it stored in `events` are written, so the next
    /// look-up sees every event it committed.
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
                let keys = self
                    .in_doubt
                    .lock()
                    .expect("in-doubt map poisoned")
                    .get(insert_id)
                    .cloned();
                if let Some(keys) = keys {
                    self.repair_keys(&keys).await?;
                    self.in_doubt
                        .lock()
                        .expect("in-doubt map poisoned")
                        .remove(insert_id);
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StorageError::Unsettled(insert_id.to_string()));
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }
}
