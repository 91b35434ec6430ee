//! Per-partner event retention: a periodic sweep deletes each partner's events older than its
//! `retention_days` (by `event_time`), and their rows of the context index
//! `event_context_strings` and of `event_keys`, with ClickHouse lightweight deletes.
//!
//! Every collector instance sweeps; the deletes are idempotent. Rows vanish from queries when
//! the delete returns and leave disk when ClickHouse merges their parts.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::error::StorageError;
use crate::registry::Registry;
use crate::store::Store;

/// Deletes one partner's events older than `days`; returns how many there were.
pub async fn sweep_partner(
    store: &Store,
    partner_id: Uuid,
    days: u32,
) -> Result<u64, StorageError> {
    const OLD: &str =
        "partner_id = {partner:UUID} AND event_time < now64(3) - toIntervalDay({days:UInt32})";
    let client = store.client();
    let old: u64 = store
        .timed(
            client
                .query(&format!("SELECT count() FROM events WHERE {OLD}"))
                .param("partner", partner_id.to_string())
                .param("days", days)
                .fetch_one(),
        )
        .await?;
    // Keys go after their events (a key outliving its event only answers a resend of an
    // expired event `duplicate`; the other way round it would be stored twice), so a sweep cut
    // short between the two leaves keys alone, and they are counted on their own.
    let old_keys: u64 = store
        .timed(
            client
                .query(&format!("SELECT count() FROM event_keys WHERE {OLD}"))
                .param("partner", partner_id.to_string())
                .param("days", days)
                .fetch_one(),
        )
        .await?;
    // An empty sweep issues no delete: each one is a mutation ClickHouse must schedule.
    if old > 0 {
        // The context index first: while its rows outlive their events a segment would still
        // find them; the other way round a sweep cut short leaves only unindexed old events,
        // which the next sweep removes.
        store
            .timed(
                client
                    .query(&format!("DELETE FROM event_context_strings WHERE {OLD}"))
                    .param("partner", partner_id.to_string())
                    .param("days", days)
                    .with_setting("lightweight_deletes_sync", "2")
                    .execute(),
            )
            .await?;
        store
            .timed(
                client
                    .query(&format!("DELETE FROM events WHERE {OLD}"))
                    .param("partner", partner_id.to_string())
                    .param("days", days)
                    .with_setting("lightweight_deletes_sync", "2")
                    .execute(),
            )
            .await?;
    }
    if old > 0 || old_keys > 0 {
        store
            .timed(
                client
                    .query(&format!("DELETE FROM event_keys WHERE {OLD}"))
                    .param("partner", partner_id.to_string())
                    .param("days", days)
                    .with_setting("lightweight_deletes_sync", "2")
                    .execute(),
            )
            .await?;
    }
    Ok(old)
}

/// Sweeps every partner that has a retention once.
pub async fn sweep(store: &Store, registry: &Registry) {
    let due: Vec<(Uuid, u32)> = registry
        .snapshot()
        .partners()
        .filter_map(|p| p.retention_days.map(|d| (p.partner.partner_id, d)))
        .collect();
    for (partner_id, days) in due {
        match sweep_partner(store, partner_id, days).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(%partner_id, days, removed, "retention sweep"),
            Err(error) => {
                tracing::warn!(%partner_id, %error, "retention sweep failed; retried next round")
            }
        }
    }
}

/// Sweeps at start and then every `every`, until aborted.
pub fn spawn(
    store: Store,
    registry: Arc<Registry>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            sweep(&store, &registry).await;
        }
    })
}
