//! The `assign_event` step: the engine's [`Action::AssignEvent`] becomes a customer event of
//! the customer, judged by the same rules as any ingested event (event-model's validation, the
//! partner's source and catalogue) and stored through the same sink and commit path, with
//! ingest path `campaign`. So it shows in the customer's history, counts in segments, and
//! reaches the campaign engine like any other stored event.
//!
//! Exactly once: the event id is the engine's deterministic id (campaign, version, customer,
//! triggering event, pass, step) and its time the step's logical time, so a replay after a
//! crash submits the same event again and the sink's duplicate check skips it.
//!
//! The event's source is the partner's system source (the one manual events use). An event a
//! campaign assigned starts no run (see [`super::runner`]): two campaigns cannot trigger each
//! other forever.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use event_model::json::decode_event;
use event_model::timestamp::format_rfc3339_ms;
use event_model::{validate_event, BatchTimes, Violation};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::StorageError;
use crate::ingest::{check_declared, check_source, event_row, IngestPath, RequestMeta};
use crate::registry::{PartnerEntry, Registry};
use crate::sink::{SubmitError, WeakSink};

/// Where the engine finds the sink: set once the sink is started (after the engine, which the
/// sink hands its commits to). Weak, so the engine does not keep the sink's lanes open.
pub type SinkSlot = Arc<OnceLock<WeakSink>>;

/// Why an assigned event was not stored.
#[derive(Debug, thiserror::Error)]
pub enum AssignError {
    /// The event breaks an ingest rule (a retired type, a property of the wrong type, no system
    /// source): the step is skipped, logged; nothing is retried.
    #[error("the assigned event is refused: {0:?}")]
    Refused(Violation),
    /// The sink could not commit it (ClickHouse down, overloaded, stopping): the run's input
    /// is tried again, with the same event id.
    #[error("the assigned event could not be stored: {0}")]
    Storage(#[from] StorageError),
}

/// An event a campaign step assigns to a customer (from [`eventline_campaigns::engine::Action::AssignEvent`]).
#[derive(Debug, Clone, Copy)]
pub struct Assigned<'a> {
    /// The customer.
    pub customer: &'a str,
    /// Deterministic (the engine's).
    pub event_id: Uuid,
    /// The event type's code.
    pub name: &'a str,
    /// Its context.
    pub properties: &'a BTreeMap<String, Value>,
    /// The step's logical time.
    pub occurred_ms: i64,
}

/// The event row of an assigned event: the JSON an ingest request would carry, judged by the
/// ingest rules.
pub fn row(
    registry: &Registry,
    entry: &PartnerEntry,
    event: Assigned<'_>,
    now_ms: i64,
) -> Result<crate::store::rows::EventRow, Violation> {
    let partner_id = entry.partner.partner_id;
    let source = entry
        .sources
        .values()
        .find(|s| s.is_system)
        .map(|s| s.code.clone())
        .unwrap_or_default();
    let raw = json!({
        "event_id": event.event_id.to_string(),
        "kind": "customer",
        "name": event.name,
        "source": source,
        "customer_id": event.customer,
        "occurred_at": format_rfc3339_ms(event.occurred_ms),
        "context": event.properties,
    })
    .to_string();
    let meta = RequestMeta {
        path: IngestPath::Campaign,
        authenticated_partner: Some(partner_id),
        origin: None,
        user_agent: String::new(),
        client_ip: String::new(),
        received_at_ms: now_ms,
    };
    // Sent and received at the same instant: the stored event time is `occurred_ms` exactly,
    // the same at every replay (the sink's duplicate check looks events up by it).
    let times = BatchTimes {
        sent_at_ms: now_ms,
        received_at_ms: now_ms,
    };
    let snapshot = registry.snapshot();
    let valid = validate_event(decode_event(&raw)?, times)?;
    let source = check_source(&snapshot, &partner_id, &valid.source, &meta)?;
    check_declared(entry, &valid)?;
    Ok(event_row(valid, source, partner_id, now_ms, &meta))
}

/// Assigned events per sink submit in [`record_many`]: a batch's events go in a few submits
/// rather than one per customer, each small enough for one lane's queue.
pub const BATCH: usize = 100;

/// Stores assigned events through the sink (a batch's, or a fan-out page's), [`BATCH`] per
/// sink submit; a replay submits the same event ids, which the sink skips. Returns the
/// refused ones (their index in `events`, and why), which are not stored; `Err` when a submit
/// failed (the caller retries the page, with the same event ids).
pub async fn record_many<'a>(
    sink: &SinkSlot,
    registry: &Registry,
    entry: &PartnerEntry,
    events: impl Iterator<Item = Assigned<'a>>,
    now_ms: i64,
) -> Result<Vec<(usize, AssignError)>, StorageError> {
    let mut refused = Vec::new();
    let mut rows = Vec::new();
    for (i, event) in events.enumerate() {
        match row(registry, entry, event, now_ms) {
            Ok(row) => rows.push(row),
            Err(violation) => refused.push((i, AssignError::Refused(violation))),
        }
    }
    if rows.is_empty() {
        return Ok(refused);
    }
    let sink = sink
        .get()
        .and_then(WeakSink::upgrade)
        .ok_or(StorageError::SinkClosed)?;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let batch: Vec<_> = rows.by_ref().take(BATCH).collect();
        match sink.submit(batch).await {
            Ok(_) => {}
            Err(SubmitError::Storage(e)) => return Err(e),
            Err(e @ SubmitError::Overloaded) => return Err(StorageError::Commit(e.to_string())),
        }
    }
    Ok(refused)
}
