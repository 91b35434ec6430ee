//! Saved segments: versioned rows of `segments` (the latest version of a segment wins, a
//! deletion is a tombstone version), definitions validated against the partner's catalogue with
//! `eventline_audience`, and their members read from ClickHouse. Every segment query is built
//! by the audience compiler (`eventline_audience::compile`), the one place segment SQL is
//! written; this module only binds its parameters, with a per-query timeout.
//!
//! HTTP lives in `http/segments.rs`, which maps [`SegmentError`] to answers.

use std::time::Duration;

use clickhouse::query::RowCursor;
use clickhouse::Row;
use eventline_audience::compile::{self, Query};
use eventline_audience::share::Share;
use eventline_audience::{validate_json, Catalogue, Clock, FieldError, Segment, UnknownTimeZone};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StorageError;
use crate::registry::{PartnerEntry, RegistryError, UndeclaredEvents};
use crate::store::rows::SegmentRow;
use crate::store::Store;

/// Most live segments one partner may have.
pub const MAX_SEGMENTS_PER_PARTNER: usize = 1000;
/// Most members one page of `segments/{sid}/customers` returns.
pub const MAX_PAGE_LIMIT: u32 = 1000;
/// Members per page unless `limit` says otherwise.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;
/// Longest definition, in bytes of its JSON text (the admin JSON body limit is 64 KiB).
pub const MAX_DEFINITION_BYTES: usize = 32 * 1024;

/// Segment writes read, change and write one after another (within this collector), so two
/// concurrent edits of a segment cannot both build on the same old version.
static SEGMENT_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What a segment operation can fail with; `http/segments.rs` maps it to HTTP in one place.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// The partner has no live segment with this id.
    #[error("segment not found")]
    NotFound,
    /// A definition sent to be saved or previewed breaks the language's rules.
    #[error("the segment definition is not valid: {} problem(s), listed in `errors`", .0.len())]
    Invalid(Vec<FieldError>),
    /// A saved definition no longer fits the partner's catalogue or setting (an event type was
    /// retired, or undeclared events are now rejected): it cannot be run until it is fixed.
    #[error("the saved definition no longer fits the partner's event catalogue: {} problem(s), listed in `errors`; PATCH a fixed definition", .0.len())]
    Outdated(Vec<FieldError>),
    /// A definition's JSON text is longer than [`MAX_DEFINITION_BYTES`].
    #[error("`definition` is longer than {MAX_DEFINITION_BYTES} bytes of JSON")]
    TooLong,
    /// The partner has [`MAX_SEGMENTS_PER_PARTNER`] live segments.
    #[error("a partner may have at most {MAX_SEGMENTS_PER_PARTNER} segments; delete one first")]
    TooMany,
    /// A PATCH that sets nothing.
    #[error("send at least one of `name`, `definition`")]
    EmptyPatch,
    /// The partner's time zone is unknown to the bundled database (it is checked when set, so
    /// only a database that lost a zone gets here).
    #[error(transparent)]
    TimeZone(#[from] UnknownTimeZone),
    /// The partner does not exist, or a name breaks the display-name rule.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// ClickHouse failed or took longer than the segment query timeout.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What validation checks a partner's definitions against: its live (not retired) event types,
/// every property of its catalogue (retired ones too: stored events still carry them) and its
/// `undeclared_events` setting.
pub fn catalogue(entry: &PartnerEntry) -> Catalogue {
    Catalogue {
        properties: entry
            .catalog
            .properties()
            .into_iter()
            .filter_map(|p| {
                Some(event_model::catalog::PropertyDef {
                    code: p.code.clone(),
                    name: p.name.clone(),
                    ty: event_model::catalog::PropertyType::parse(&p.ty)?,
                })
            })
            .collect(),
        event_types: entry
            .catalog
            .types()
            .into_iter()
            .filter(|t| !t.row.retired)
            .map(|t| t.def.clone())
            .collect(),
        accept_undeclared: entry.undeclared_events == UndeclaredEvents::Accept,
    }
}

/// Validates a definition sent to be saved or previewed.
pub fn check(entry: &PartnerEntry, definition: &Value) -> Result<Segment, SegmentError> {
    let text = definition.to_string();
    if text.len() > MAX_DEFINITION_BYTES {
        return Err(SegmentError::TooLong);
    }
    validate_json(&text, &catalogue(entry)).map_err(SegmentError::Invalid)
}

/// Validates a saved definition before running it: the catalogue may have changed since.
pub fn check_saved(entry: &PartnerEntry, row: &SegmentRow) -> Result<Segment, SegmentError> {
    validate_json(&row.definition, &catalogue(entry)).map_err(SegmentError::Outdated)
}

/// The partner's calendar at `now_ms`: periods and days are the partner's.
pub fn clock(entry: &PartnerEntry, now_ms: i64) -> Result<Clock, SegmentError> {
    Ok(Clock::new(&entry.time_zone, now_ms)?)
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A version above `previous`: microseconds since the epoch, bumped past it.
fn next_version(previous: u64) -> u64 {
    let now = (now().unix_timestamp_nanos() / 1000) as u64;
    now.max(previous + 1)
}

/// The partner's live segments, oldest first.
pub async fn list(store: &Store, partner_id: Uuid) -> Result<Vec<SegmentRow>, StorageError> {
    store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM segments FINAL \
                     WHERE partner_id = {partner:UUID} AND is_deleted = 0 \
                     ORDER BY created_at, segment_id",
                )
                .param("partner", partner_id.to_string())
                .fetch_all(),
        )
        .await
}

/// One live segment of the partner.
pub async fn get(
    store: &Store,
    partner_id: Uuid,
    segment_id: Uuid,
) -> Result<SegmentRow, SegmentError> {
    store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM segments FINAL \
                     WHERE partner_id = {partner:UUID} AND segment_id = {segment:UUID} \
                       AND is_deleted = 0",
                )
                .param("partner", partner_id.to_string())
                .param("segment", segment_id.to_string())
                .fetch_optional(),
        )
        .await?
        .ok_or(SegmentError::NotFound)
}

fn display_name(name: &str) -> Result<String, SegmentError> {
    Ok(crate::registry::checks::display_name(name, "name")?)
}

/// Saves a new segment after validating its name and definition.
pub async fn create(
    store: &Store,
    entry: &PartnerEntry,
    name: &str,
    definition: &Value,
) -> Result<SegmentRow, SegmentError> {
    let name = display_name(name)?;
    check(entry, definition)?;
    let partner_id = entry.partner.partner_id;
    let _one_at_a_time = SEGMENT_WRITES.lock().await;
    if list(store, partner_id).await?.len() >= MAX_SEGMENTS_PER_PARTNER {
        return Err(SegmentError::TooMany);
    }
    let now = now();
    let row = SegmentRow {
        partner_id,
        segment_id: Uuid::now_v7(),
        name,
        definition: definition.to_string(),
        created_at: now,
        updated_at: now,
        version: next_version(0),
        is_deleted: 0,
    };
    store
        .insert_rows("segments", std::slice::from_ref(&row))
        .await?;
    Ok(row)
}

/// A partial update of a segment; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentPatch {
    /// New display name.
    pub name: Option<String>,
    /// New definition, validated like a new one.
    pub definition: Option<Value>,
}

/// Renames a segment or replaces its definition (validated against the catalogue as it is now).
pub async fn update(
    store: &Store,
    entry: &PartnerEntry,
    segment_id: Uuid,
    patch: SegmentPatch,
) -> Result<SegmentRow, SegmentError> {
    if patch.name.is_none() && patch.definition.is_none() {
        return Err(SegmentError::EmptyPatch);
    }
    let name = patch.name.as_deref().map(display_name).transpose()?;
    if let Some(definition) = &patch.definition {
        check(entry, definition)?;
    }
    let _one_at_a_time = SEGMENT_WRITES.lock().await;
    let mut row = get(store, entry.partner.partner_id, segment_id).await?;
    if let Some(name) = name {
        row.name = name;
    }
    if let Some(definition) = patch.definition {
        row.definition = definition.to_string();
    }
    row.updated_at = now();
    row.version = next_version(row.version);
    store
        .insert_rows("segments", std::slice::from_ref(&row))
        .await?;
    Ok(row)
}

/// Deletes a segment (a tombstone version); returns the deleted row.
pub async fn delete(
    store: &Store,
    partner_id: Uuid,
    segment_id: Uuid,
) -> Result<SegmentRow, SegmentError> {
    let _one_at_a_time = SEGMENT_WRITES.lock().await;
    let mut row = get(store, partner_id, segment_id).await?;
    row.is_deleted = 1;
    row.updated_at = now();
    row.version = next_version(row.version);
    store
        .insert_rows("segments", std::slice::from_ref(&row))
        .await?;
    Ok(row)
}

/// Runs compiled segment queries: binds the partner and every parameter with `.param()`, and
/// bounds each query by `timeout`, on both sides (ClickHouse's `max_execution_time` stops the
/// work; the client stops waiting).
#[derive(Clone)]
pub struct Members {
    store: Store,
    timeout: Duration,
}

/// Members of one source (see [`compile::member_count_by_source`]).
#[derive(Debug, Clone, PartialEq, Eq, Row, Deserialize, serde::Serialize)]
pub struct SourceCount {
    /// The source code.
    pub source: String,
    /// Members with at least one matching event from it.
    pub members: u64,
}

impl Members {
    /// Segment queries on `store`, each bounded by `timeout`.
    pub fn new(store: &Store, timeout: Duration) -> Members {
        Members {
            store: store.with_timeout(timeout),
            timeout,
        }
    }

    fn bind(&self, query: &Query, partner_id: Uuid) -> clickhouse::query::Query {
        // Whole seconds, at least one: ClickHouse checks it between blocks.
        let secs = self.timeout.as_secs().max(1);
        let mut q = self
            .store
            .client()
            .query(&query.sql)
            .with_setting("max_execution_time", secs.to_string())
            .param("partner", partner_id.to_string());
        for p in &query.params {
            q = q.param(&p.name, &p.value);
        }
        q
    }

    /// The number of members.
    pub async fn count(
        &self,
        partner_id: Uuid,
        segment: &Segment,
        clock: &Clock,
    ) -> Result<u64, StorageError> {
        let query = compile::member_count(segment, clock);
        self.store
            .timed(self.bind(&query, partner_id).fetch_one::<u64>())
            .await
    }

    /// Members per source, in source order; empty when no condition looks at events.
    pub async fn count_by_source(
        &self,
        partner_id: Uuid,
        segment: &Segment,
        clock: &Clock,
    ) -> Result<Vec<SourceCount>, StorageError> {
        let Some(query) = compile::member_count_by_source(segment, clock) else {
            return Ok(Vec::new());
        };
        self.store
            .timed(self.bind(&query, partner_id).fetch_all())
            .await
    }

    /// Up to `limit` member ids after `after`, in `customer_id` (byte) order.
    pub async fn page(
        &self,
        partner_id: Uuid,
        segment: &Segment,
        clock: &Clock,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        let query = compile::member_page(segment, clock, after, limit);
        self.store
            .timed(self.bind(&query, partner_id).fetch_all())
            .await
    }

    /// [`Self::page`] restricted to the members in `share` (a campaign lane's share).
    pub async fn share_page(
        &self,
        partner_id: Uuid,
        segment: &Segment,
        clock: &Clock,
        after: Option<&str>,
        limit: u32,
        share: Share,
    ) -> Result<Vec<String>, StorageError> {
        let query = compile::member_share_page(segment, clock, after, limit, share);
        self.store
            .timed(self.bind(&query, partner_id).fetch_all())
            .await
    }

    /// Up to `limit` of the partner's known customers (the universe every segment is taken
    /// against, table `known_customers`) in `share`, after `after`, in `customer_id` (byte)
    /// order.
    pub async fn known_share_page(
        &self,
        partner_id: Uuid,
        after: Option<&str>,
        limit: u32,
        share: Share,
    ) -> Result<Vec<String>, StorageError> {
        let in_share = share
            .sql_predicate("customer_id", "share")
            .map(|p| format!(" AND {p}"))
            .unwrap_or_default();
        let query = Query {
            sql: format!(
                "SELECT DISTINCT customer_id FROM known_customers \
                 WHERE partner_id = {{partner:UUID}} AND customer_id > {{after:String}}{in_share} \
                 ORDER BY customer_id LIMIT {{limit:UInt32}}"
            ),
            params: vec![
                compile::Param {
                    name: "share_count".into(),
                    ty: "UInt32",
                    value: compile::ParamValue::UInt(u64::from(share.count)),
                },
                compile::Param {
                    name: "share_index".into(),
                    ty: "UInt32",
                    value: compile::ParamValue::UInt(u64::from(share.index)),
                },
                compile::Param {
                    name: "after".into(),
                    ty: "String",
                    value: compile::ParamValue::Str(after.unwrap_or_default().into()),
                },
                compile::Param {
                    name: "limit".into(),
                    ty: "UInt32",
                    value: compile::ParamValue::UInt(u64::from(limit)),
                },
            ],
        };
        self.store
            .timed(self.bind(&query, partner_id).fetch_all())
            .await
    }

    /// Every member id in `customer_id` order, as rows stream from ClickHouse: the same order
    /// as the pages, one query, nothing held in memory but the current block.
    pub fn all(
        &self,
        partner_id: Uuid,
        segment: &Segment,
        clock: &Clock,
    ) -> Result<MemberStream, StorageError> {
        let query = compile::member_page(segment, clock, None, u32::MAX);
        let cursor = self.bind(&query, partner_id).fetch::<String>()?;
        Ok(MemberStream {
            cursor,
            timeout: self.timeout,
        })
    }
}

/// Member ids as ClickHouse sends them.
pub struct MemberStream {
    cursor: RowCursor<String>,
    timeout: Duration,
}

impl MemberStream {
    /// The next member id; `None` at the end. Each wait is bounded by the segment query
    /// timeout, so a stalled ClickHouse ends the stream with an error.
    pub async fn next(&mut self) -> Result<Option<String>, StorageError> {
        match tokio::time::timeout(self.timeout, self.cursor.next()).await {
            Ok(row) => Ok(row?),
            Err(_) => Err(StorageError::Timeout(self.timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_even_when_the_clock_does_not() {
        let far_future = (now().unix_timestamp_nanos() / 1000) as u64 + 10_000_000_000;
        assert_eq!(next_version(far_future), far_future + 1);
        assert!(next_version(0) > 1_700_000_000_000_000);
    }
}
