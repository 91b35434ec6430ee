//! Erasure jobs: removing one customer's data, or a deleted partner's, from every table that
//! holds it.
//!
//! A job is a versioned row of `erasure_jobs` (queued → running → done | failed). It stores the
//! SHA-256 of the customer id, never the id: the job matches rows by hashing their ids in
//! ClickHouse, so a job resumed after a restart needs nothing else. Unfinished jobs are resumed
//! at start-up; every step is an idempotent delete, so running a job twice is harmless.
//!
//! Deletes are ClickHouse lightweight deletes (`DELETE FROM … WHERE`, waited for with
//! `lightweight_deletes_sync = 2`): when a job is `done` the rows are gone from every query;
//! their bytes leave disk when ClickHouse next merges the affected parts (background merges,
//! or at once with `OPTIMIZE TABLE … FINAL`).
//!
//! What one customer's erasure removes, within the partner:
//! - the customer's `customer_profiles`, `known_customers`, `campaign_runs` and
//!   `campaign_messages` rows (campaign state, and the message log with addresses and bodies),
//!   and the `identity_links` rows of the customer or of any of the anonymous ids below;
//! - `events` whose `customer_id` is the customer's, and events whose `anonymous_id` appears on
//!   any of the customer's events or is linked to the customer in `identity_links` (the visits
//!   before they logged in), and the same rows of `event_context_strings`, their context index,
//!   and of `event_keys`, the keys the duplicate look-up reads (after the events: while an
//!   event is stored its key must be, or a resend would be stored twice; a resend after the
//!   erasure is stored again like new data);
//! - `rejected_events` (of the partner, or of no known partner) whose payload holds the customer
//!   id or one of those anonymous ids as the JSON string value of `customer_id` /
//!   `anonymous_id`, at the top level or in `events[*]`; in a payload that is not valid JSON
//!   (truncated bodies), as `"customer_id": "<id>"` text (ids without `"` or `\`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::{mpsc, Semaphore};
use uuid::Uuid;

use crate::error::StorageError;
use crate::store::rows::ErasureJobRow;
use crate::store::Store;

/// What a job erases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One customer of a partner.
    Customer,
    /// All data of a (deleted) partner.
    Partner,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Customer => "customer",
            Scope::Partner => "partner",
        }
    }
}

/// Hex SHA-256 of a customer id, as stored in job rows and compared in ClickHouse.
pub fn subject_hash(customer_id: &str) -> String {
    hex::encode(Sha256::digest(customer_id.as_bytes()))
}

/// The customer's ids in a rejected payload: JSON string values of `field` at the top level and
/// in `events[*]` when the payload is JSON, else the `"field": "…"` texts found in it.
fn payload_ids(field: &str) -> String {
    format!(
        "if(isValidJSON(payload), \
            arrayConcat([JSONExtractString(payload, '{field}')], \
                        arrayMap(e -> JSONExtractString(e, '{field}'), JSONExtractArrayRaw(payload, 'events'))), \
            extractAll(payload, {{re_{field}:String}}))"
    )
}

fn regex_for(field: &str) -> String {
    format!(r#""{field}"\s*:\s*"([^"\\]*)""#)
}

/// Runs erasure jobs one at a time and answers their status.
pub struct Erasure {
    store: Store,
    queue: mpsc::UnboundedSender<Uuid>,
    last_version: AtomicU64,
}

impl Erasure {
    /// Starts the job runner; it first resumes the jobs left queued or running. `store` should
    /// have a timeout long enough for a delete over the largest partner.
    pub fn spawn(store: Store) -> (Arc<Erasure>, tokio::task::JoinHandle<()>) {
        let (queue, mut jobs) = mpsc::unbounded_channel();
        let erasure = Arc::new(Erasure {
            store,
            queue,
            last_version: AtomicU64::new(0),
        });
        let runner = erasure.clone();
        let task = tokio::spawn(async move {
            match runner.unfinished().await {
                Ok(ids) => {
                    for id in ids {
                        let _ = runner.queue.send(id);
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "unfinished erasure jobs could not be read; they resume at the next start")
                }
            }
            // One job deletes at a time; jobs that wait for their start time do not block others.
            let one_at_a_time = Arc::new(Semaphore::new(1));
            while let Some(id) = jobs.recv().await {
                let runner = runner.clone();
                let permit = one_at_a_time.clone();
                tokio::spawn(async move { runner.run(id, permit).await });
            }
        });
        (erasure, task)
    }

    fn next_version(&self) -> u64 {
        let now = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as u64;
        let prev = self.last_version.fetch_max(now, Ordering::SeqCst);
        if prev >= now {
            self.last_version.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            now
        }
    }

    async fn write(&self, row: &mut ErasureJobRow) -> Result<(), StorageError> {
        row.version = self.next_version();
        self.store
            .insert_rows("erasure_jobs", std::slice::from_ref(row))
            .await
    }

    /// Queues the erasure of one customer of a partner.
    pub async fn request_customer(
        &self,
        partner_id: Uuid,
        customer_id: &str,
        requested_by: &str,
    ) -> Result<ErasureJobRow, StorageError> {
        self.request(
            partner_id,
            Scope::Customer,
            subject_hash(customer_id),
            requested_by,
            Duration::ZERO,
        )
        .await
    }

    /// Queues the erasure of all of a partner's data, to start after `delay` (time for other
    /// instances to stop accepting its events).
    pub async fn request_partner(
        &self,
        partner_id: Uuid,
        requested_by: &str,
        delay: Duration,
    ) -> Result<ErasureJobRow, StorageError> {
        self.request(
            partner_id,
            Scope::Partner,
            String::new(),
            requested_by,
            delay,
        )
        .await
    }

    async fn request(
        &self,
        partner_id: Uuid,
        scope: Scope,
        subject_sha256: String,
        requested_by: &str,
        delay: Duration,
    ) -> Result<ErasureJobRow, StorageError> {
        let now = OffsetDateTime::now_utc();
        let mut row = ErasureJobRow {
            job_id: Uuid::now_v7(),
            partner_id,
            scope: scope.as_str().into(),
            subject_sha256,
            status: "queued".into(),
            requested_by: requested_by.into(),
            requested_at: now,
            not_before: now + delay,
            started_at: None,
            finished_at: None,
            events_removed: 0,
            rejected_removed: 0,
            error: String::new(),
            version: 0,
        };
        self.write(&mut row).await?;
        let _ = self.queue.send(row.job_id);
        Ok(row)
    }

    /// A job's latest state.
    pub async fn job(&self, job_id: Uuid) -> Result<Option<ErasureJobRow>, StorageError> {
        self.store
            .timed(
                self.store
                    .client()
                    .query("SELECT ?fields FROM erasure_jobs FINAL WHERE job_id = {id:UUID}")
                    .param("id", job_id.to_string())
                    .fetch_optional(),
            )
            .await
    }

    async fn unfinished(&self) -> Result<Vec<Uuid>, StorageError> {
        let rows: Vec<ErasureJobRow> = self
            .store
            .timed(
                self.store
                    .client()
                    .query(
                        "SELECT ?fields FROM erasure_jobs FINAL \
                         WHERE status IN ('queued', 'running') ORDER BY requested_at",
                    )
                    .fetch_all(),
            )
            .await?;
        Ok(rows.into_iter().map(|r| r.job_id).collect())
    }

    async fn run(&self, job_id: Uuid, one_at_a_time: Arc<Semaphore>) {
        let mut row = match self.job(job_id).await {
            Ok(Some(row)) if row.status == "queued" || row.status == "running" => row,
            Ok(_) => return,
            Err(error) => {
                tracing::error!(%job_id, %error, "erasure job could not be read; it resumes at the next start");
                return;
            }
        };
        let wait = row.not_before - OffsetDateTime::now_utc();
        if wait.is_positive() {
            tokio::time::sleep(wait.unsigned_abs()).await;
        }
        let _permit = one_at_a_time.acquire().await.expect("never closed");
        row.status = "running".into();
        row.started_at = Some(OffsetDateTime::now_utc());
        if let Err(error) = self.write(&mut row).await {
            tracing::error!(%job_id, %error, "erasure job could not start; it resumes at the next start");
            return;
        }
        let outcome = match row.scope.as_str() {
            "partner" => self.erase_partner(row.partner_id).await,
            _ => {
                self.erase_customer(row.partner_id, &row.subject_sha256)
                    .await
            }
        };
        match outcome {
            Ok((events, rejected)) => {
                row.status = "done".into();
                row.events_removed = events;
                row.rejected_removed = rejected;
                tracing::info!(%job_id, events, rejected, "erasure job done");
            }
            Err(error) => {
                tracing::error!(%job_id, %error, "erasure job failed");
                row.status = "failed".into();
                row.error = error.to_string();
            }
        }
        row.finished_at = Some(OffsetDateTime::now_utc());
        if let Err(error) = self.write(&mut row).await {
            // Left `running`: the next start runs it again, which is harmless.
            tracing::error!(%job_id, %error, "erasure job status could not be stored");
        }
    }

    /// Counts, then deletes, the rows of `table` matching `condition` with `params`.
    async fn delete(
        &self,
        table: &str,
        condition: &str,
        params: &[(&str, Param)],
    ) -> Result<u64, StorageError> {
        let client = self.store.client();
        let bind = |mut query: clickhouse::query::Query| {
            for (name, value) in params {
                query = match value {
                    Param::Text(v) => query.param(name, v),
                    Param::List(v) => query.param(name, v),
                };
            }
            query
        };
        let count: u64 = self
            .store
            .timed(
                bind(client.query(&format!("SELECT count() FROM {table} WHERE {condition}")))
                    .fetch_one(),
            )
            .await?;
        if count > 0 {
            self.store
                .timed(
                    bind(client.query(&format!("DELETE FROM {table} WHERE {condition}")))
                        .with_setting("lightweight_deletes_sync", "2")
                        .execute(),
                )
                .await?;
        }
        Ok(count)
    }

    async fn erase_partner(&self, partner_id: Uuid) -> Result<(u64, u64), StorageError> {
        let p = [("partner", Param::Text(partner_id.to_string()))];
        // The partner's registry rows are tombstoned already; its audience rows go here.
        for table in [
            "customer_profiles",
            "identity_links",
            "known_customers",
            "event_types",
            "event_properties",
            "segments",
            "campaigns",
            "event_context_strings",
            "partner_channels",
            "campaign_runs",
            "campaign_messages",
            "campaign_fanouts",
            "campaign_schedules",
        ] {
            self.delete(table, "partner_id = {partner:UUID}", &p)
                .await?;
        }
        let rejected = self
            .delete("rejected_events", "partner_id = {partner:UUID}", &p)
            .await?;
        let events = self
            .delete("events", "partner_id = {partner:UUID}", &p)
            .await?;
        self.delete("event_keys", "partner_id = {partner:UUID}", &p)
            .await?;
        Ok((events, rejected))
    }

    async fn erase_customer(
        &self,
        partner_id: Uuid,
        hash: &str,
    ) -> Result<(u64, u64), StorageError> {
        // Anonymous ids linked to the customer, read before anything is deleted; the customer's
        // own events go last, so a job resumed after a crash finds the same links again.
        let anonymous: Vec<String> = self
            .store
            .timed(
                self.store
                    .client()
                    .query(
                        "SELECT DISTINCT anonymous_id FROM events \
                         WHERE partner_id = {partner:UUID} AND anonymous_id != '' \
                           AND lower(hex(SHA256(customer_id))) = {hash:String} \
                         UNION DISTINCT \
                         SELECT anonymous_id FROM identity_links \
                         WHERE partner_id = {partner:UUID} \
                           AND lower(hex(SHA256(customer_id))) = {hash:String}",
                    )
                    .param("partner", partner_id.to_string())
                    .param("hash", hash)
                    .fetch_all(),
            )
            .await?;
        let params = [
            ("partner", Param::Text(partner_id.to_string())),
            ("hash", Param::Text(hash.to_string())),
            ("anonymous", Param::List(anonymous)),
            ("re_customer_id", Param::Text(regex_for("customer_id"))),
            ("re_anonymous_id", Param::Text(regex_for("anonymous_id"))),
        ];
        self.delete(
            "customer_profiles",
            "partner_id = {partner:UUID} AND lower(hex(SHA256(customer_id))) = {hash:String}",
            &params,
        )
        .await?;
        self.delete(
            "known_customers",
            "partner_id = {partner:UUID} AND lower(hex(SHA256(customer_id))) = {hash:String}",
            &params,
        )
        .await?;
        // Campaign state and the message log (addresses and rendered bodies) of the customer.
        for table in ["campaign_runs", "campaign_messages"] {
            self.delete(
                table,
                "partner_id = {partner:UUID} AND lower(hex(SHA256(customer_id))) = {hash:String}",
                &params,
            )
            .await?;
        }
        self.delete(
            "identity_links",
            "partner_id = {partner:UUID} \
             AND (has({anonymous:Array(String)}, anonymous_id) \
                  OR lower(hex(SHA256(customer_id))) = {hash:String})",
            &params,
        )
        .await?;
        let rejected = self
            .delete(
                "rejected_events",
                &format!(
                    "partner_id IN ({{partner:UUID}}, toUUID('00000000-0000-0000-0000-000000000000')) \
                     AND (has(arrayMap(v -> lower(hex(SHA256(v))), {customers}), {{hash:String}}) \
                          OR hasAny({anonymous}, {{anonymous:Array(String)}}))",
                    customers = payload_ids("customer_id"),
                    anonymous = payload_ids("anonymous_id"),
                ),
                &params,
            )
            .await?;
        // The context index rows of the events below, before them (a resumed job finds the
        // same rows again, as the events are still there).
        self.delete(
            "event_context_strings",
            "partner_id = {partner:UUID} \
             AND (has({anonymous:Array(String)}, anonymous_id) \
                  OR lower(hex(SHA256(customer_id))) = {hash:String})",
            &params,
        )
        .await?;
        let events = self
            .delete(
                "events",
                "partner_id = {partner:UUID} \
                 AND (has({anonymous:Array(String)}, anonymous_id) \
                      OR lower(hex(SHA256(customer_id))) = {hash:String})",
                &params,
            )
            .await?;
        self.delete(
            "event_keys",
            "partner_id = {partner:UUID} \
             AND (has({anonymous:Array(String)}, anonymous_id) \
                  OR lower(hex(SHA256(customer_id))) = {hash:String})",
            &params,
        )
        .await?;
        Ok((events, rejected))
    }
}

/// A bound query parameter.
enum Param {
    Text(String),
    List(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_hash_is_the_hex_sha256_clickhouse_computes() {
        // SELECT lower(hex(SHA256('abc'))) on ClickHouse 26.9.
        assert_eq!(
            subject_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn payload_id_expressions_bind_their_regex_and_hold_no_question_mark() {
        let sql = payload_ids("customer_id");
        assert!(sql.contains("{re_customer_id:String}"), "{sql}");
        assert!(!sql.contains('?'));
        assert_eq!(
            regex_for("customer_id"),
            r#""customer_id"\s*:\s*"([^"\\]*)""#
        );
    }
}
