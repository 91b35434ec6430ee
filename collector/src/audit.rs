//! The admin audit log: one `admin_audit` row per admin write, readable through
//! `GET /v1/admin/audit`.
//!
//! Rows are written after the change they record succeeded. If ClickHouse refuses the audit
//! insert right after accepting the change, the row is logged at error level (target
//! `eventline::audit`) instead, so it is never silently lost.

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StorageError;
use crate::store::rows::AuditRow;
use crate::store::Store;

/// Most rows one `GET /v1/admin/audit` returns.
pub const MAX_AUDIT_LIMIT: u32 = 1000;
/// Rows returned when no limit is given.
pub const DEFAULT_AUDIT_LIMIT: u32 = 100;

/// Records one admin write. `details` must hold no secrets and no customer ids.
pub async fn record(
    store: &Store,
    actor: &str,
    action: &str,
    partner_id: Option<Uuid>,
    target_id: &str,
    details: Value,
) {
    let row = AuditRow {
        at: OffsetDateTime::now_utc(),
        actor: actor.to_string(),
        action: action.to_string(),
        partner_id: partner_id.unwrap_or(Uuid::nil()),
        target_id: target_id.to_string(),
        details: details.to_string(),
    };
    if let Err(error) = store
        .insert_rows("admin_audit", std::slice::from_ref(&row))
        .await
    {
        tracing::error!(
            target: "eventline::audit",
            %error,
            actor = row.actor,
            action = row.action,
            partner_id = %row.partner_id,
            target_id = row.target_id,
            details = row.details,
            "the audit row could not be stored; this log line is the record"
        );
    }
}

/// The newest rows first, of one partner or of all.
pub async fn list(
    store: &Store,
    partner_id: Option<Uuid>,
    limit: u32,
) -> Result<Vec<AuditRow>, StorageError> {
    store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM admin_audit \
                     WHERE {all:UInt8} = 1 OR partner_id = {partner:UUID} \
                     ORDER BY at DESC LIMIT {limit:UInt32}",
                )
                .param("all", u8::from(partner_id.is_none()))
                .param("partner", partner_id.unwrap_or(Uuid::nil()).to_string())
                .param("limit", limit)
                .fetch_all(),
        )
        .await
}
