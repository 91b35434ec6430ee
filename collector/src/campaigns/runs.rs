//! Run state: one `campaign_runs` row version per change of a customer's state in a campaign
//! version (migration 0009). This process is the only writer of every state it runs (see
//! [`super::runner`]), so reading the latest version and writing the next needs no
//! compare-and-set.

use std::collections::HashMap;

use clickhouse::Row;
use eventline_campaigns::engine::State;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StorageError;
use crate::store::rows::ms_to_datetime;
use crate::store::Store;

/// Whose state: (partner, campaign, version, customer).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunKey {
    /// The partner.
    pub partner_id: Uuid,
    /// The campaign.
    pub campaign_id: Uuid,
    /// The definition version the run belongs to.
    pub version: u32,
    /// The customer.
    pub customer_id: String,
}

/// One version of a row of `campaign_runs`.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub struct RunRow {
    /// The partner.
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// The campaign.
    #[serde(with = "clickhouse::serde::uuid")]
    pub campaign_id: Uuid,
    /// The definition version.
    pub version: u32,
    /// The customer.
    pub customer_id: String,
    /// The engine state as JSON.
    pub state: String,
    /// When the run's wait ends, if it waits.
    #[serde(with = "clickhouse::serde::time::datetime64::millis::option")]
    pub wake_at: Option<OffsetDateTime>,
    /// The write.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub updated_at: OffsetDateTime,
    /// Write version.
    pub revision: u64,
}

impl RunRow {
    /// Whose state this is.
    pub fn key(&self) -> RunKey {
        RunKey {
            partner_id: self.partner_id,
            campaign_id: self.campaign_id,
            version: self.version,
            customer_id: self.customer_id.clone(),
        }
    }
}

/// A state as read: the engine's state and the revision to write above.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The state (the default state when there is no row).
    pub state: State,
    /// The row's revision (0 when there is no row).
    pub revision: u64,
}

fn loaded(row: RunRow) -> Loaded {
    Loaded {
        state: serde_json::from_str(&row.state).unwrap_or_else(|error| {
            tracing::warn!(%error, key = ?row.key(), "unreadable campaign run state; starting over");
            State::default()
        }),
        revision: row.revision,
    }
}

/// Which versions of a campaign a read of run rows takes.
#[derive(Clone, Copy)]
enum Versions {
    /// This one.
    Exactly(u32),
    /// Every one older than this.
    Before(u32),
}

/// The latest rows of `customers` in the campaign's `versions` (one query).
async fn latest_rows(
    store: &Store,
    partner_id: Uuid,
    campaign_id: Uuid,
    versions: Versions,
    customers: &[String],
) -> Result<Vec<RunRow>, StorageError> {
    // One of two fixed texts; the version itself is a bound parameter.
    let (op, version) = match versions {
        Versions::Exactly(v) => ("=", v),
        Versions::Before(v) => ("<", v),
    };
    let sql = format!(
        "SELECT ?fields FROM campaign_runs FINAL \
         WHERE partner_id = {{partner:UUID}} AND campaign_id = {{campaign:UUID}} \
           AND version {op} {{version:UInt32}} AND customer_id IN {{customers:Array(String)}}"
    );
    store
        .timed(
            store
                .client()
                .query(&sql)
                .param("partner", partner_id.to_string())
                .param("campaign", campaign_id.to_string())
                .param("version", version)
                .param("customers", customers)
                .fetch_all(),
        )
        .await
}

/// Which of `customers` have a run in progress in a version of the campaign older than
/// `current`, by version (one query): the runs an edit left running, which events still reach
/// (a purchase still ends the old version's wait for it).
pub async fn older_in_progress(
    store: &Store,
    partner_id: Uuid,
    campaign_id: Uuid,
    current: u32,
    customers: &[String],
) -> Result<HashMap<u32, Vec<String>>, StorageError> {
    if customers.is_empty() || current <= 1 {
        return Ok(HashMap::new());
    }
    let rows = latest_rows(
        store,
        partner_id,
        campaign_id,
        Versions::Before(current),
        customers,
    )
    .await?;
    let mut found: HashMap<u32, Vec<String>> = HashMap::new();
    for row in rows {
        let (version, customer) = (row.version, row.customer_id.clone());
        if loaded(row).state.run.is_some() {
            found.entry(version).or_default().push(customer);
        }
    }
    Ok(found)
}

/// The latest states of many customers in one campaign version, by customer (one query; a
/// customer without a row is absent; an unreadable state, never written by this code, starts
/// over).
pub async fn load_many(
    store: &Store,
    partner_id: Uuid,
    campaign_id: Uuid,
    version: u32,
    customers: &[String],
) -> Result<HashMap<String, Loaded>, StorageError> {
    if customers.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = latest_rows(
        store,
        partner_id,
        campaign_id,
        Versions::Exactly(version),
        customers,
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.customer_id.clone(), loaded(row)))
        .collect())
}

fn row(key: &RunKey, state: &State, previous_revision: u64, now: OffsetDateTime) -> RunRow {
    let micros = (now.unix_timestamp_nanos() / 1000) as u64;
    RunRow {
        partner_id: key.partner_id,
        campaign_id: key.campaign_id,
        version: key.version,
        customer_id: key.customer_id.clone(),
        state: serde_json::to_string(state).unwrap_or_default(),
        wake_at: state.next_wake_ms().map(ms_to_datetime),
        updated_at: now,
        revision: micros.max(previous_revision + 1),
    }
}

/// Writes many states (each above its previous revision) in one insert.
pub async fn save_many(store: &Store, states: &[(RunKey, State, u64)]) -> Result<(), StorageError> {
    let now = OffsetDateTime::now_utc();
    let rows: Vec<RunRow> = states
        .iter()
        .map(|(key, state, previous)| row(key, state, *previous, now))
        .collect();
    store.insert_rows("campaign_runs", &rows).await
}

/// Every run that waits, with its due time (Unix ms): what the timer holds after a start.
pub async fn waiting(store: &Store) -> Result<Vec<(RunKey, i64)>, StorageError> {
    let rows: Vec<RunRow> = store
        .timed(
            store
                .client()
                .query("SELECT ?fields FROM campaign_runs FINAL WHERE wake_at IS NOT NULL")
                .fetch_all(),
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let due = r.wake_at?;
            Some((r.key(), (due.unix_timestamp_nanos() / 1_000_000) as i64))
        })
        .collect())
}
