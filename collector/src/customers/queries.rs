//! ClickHouse reads for customers: a profile, the card (linked anonymous ids, event counts) and
//! the event history. A customer's events are their own (`customer_id`) and those without a
//! customer id whose anonymous id `identity_links` links to them (latest link wins). A retried
//! event counts once: everything groups by `event_id`, merged by ClickHouse or not.

use clickhouse::Row;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StorageError;
use crate::store::rows::CustomerProfileRow;
use crate::store::Store;

/// The anonymous ids whose latest link is to the customer; binds `partner` and `customer`.
/// Not `FINAL`, which would turn off the projection `by_customer` (migration 0007) and read
/// every link of the partner: the projection finds the ids ever linked to the customer, the
/// sort key their other links, and `argMax` keeps those whose latest link is this customer.
const LINKED_ANONYMOUS_IDS: &str = "SELECT anonymous_id FROM identity_links \
     WHERE partner_id = {partner:UUID} AND anonymous_id IN (\
         SELECT anonymous_id FROM identity_links \
         WHERE partner_id = {partner:UUID} AND customer_id = {customer:String}) \
     GROUP BY anonymous_id HAVING argMax(customer_id, linked_at) = {customer:String}";

/// The condition selecting a customer's events; binds `partner` and `customer`.
fn customer_events() -> String {
    format!(
        "partner_id = {{partner:UUID}} AND (customer_id = {{customer:String}} \
         OR (customer_id = '' AND anonymous_id IN ({LINKED_ANONYMOUS_IDS})))"
    )
}

/// Most anonymous ids the card lists.
pub const MAX_CARD_ANONYMOUS_IDS: u32 = 1000;
/// Most events one history page holds.
pub const MAX_HISTORY_LIMIT: u32 = 500;
/// Events per history page unless `limit` says otherwise.
pub const DEFAULT_HISTORY_LIMIT: u32 = 50;

/// The stored profile of a customer, if any.
pub async fn profile(
    store: &Store,
    partner_id: Uuid,
    customer_id: &str,
) -> Result<Option<CustomerProfileRow>, StorageError> {
    store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM customer_profiles FINAL \
                     WHERE partner_id = {partner:UUID} AND customer_id = {customer:String} \
                       AND is_deleted = 0",
                )
                .param("partner", partner_id.to_string())
                .param("customer", customer_id)
                .fetch_optional(),
        )
        .await
}

/// The profiles of many customers (one query); a customer without one is absent.
pub async fn profiles(
    store: &Store,
    partner_id: Uuid,
    customer_ids: &[String],
) -> Result<Vec<CustomerProfileRow>, StorageError> {
    if customer_ids.is_empty() {
        return Ok(Vec::new());
    }
    store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM customer_profiles FINAL \
                     WHERE partner_id = {partner:UUID} AND customer_id IN {customers:Array(String)} \
                       AND is_deleted = 0",
                )
                .param("partner", partner_id.to_string())
                .param("customers", customer_ids)
                .fetch_all(),
        )
        .await
}

/// Anonymous ids linked to the customer, sorted.
pub async fn anonymous_ids(
    store: &Store,
    partner_id: Uuid,
    customer_id: &str,
) -> Result<Vec<String>, StorageError> {
    store
        .timed(
            store
                .client()
                .query(&format!(
                    "{LINKED_ANONYMOUS_IDS} ORDER BY anonymous_id LIMIT {{limit:UInt32}}"
                ))
                .param("partner", partner_id.to_string())
                .param("customer", customer_id)
                .param("limit", MAX_CARD_ANONYMOUS_IDS)
                .fetch_all(),
        )
        .await
}

/// Events of one name for the card.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct NameCount {
    /// Event name.
    pub name: String,
    /// Distinct events.
    pub events: u64,
    /// Earliest event time.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub first: OffsetDateTime,
    /// Latest event time.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub last: OffsetDateTime,
}

/// The customer's distinct events by name, with first and last times.
pub async fn counts(
    store: &Store,
    partner_id: Uuid,
    customer_id: &str,
) -> Result<Vec<NameCount>, StorageError> {
    let sql = format!(
        "SELECT name, uniqExact(event_id) AS events, min(event_time) AS first, \
                max(event_time) AS last \
         FROM events WHERE {customer_events} GROUP BY name ORDER BY name",
        customer_events = customer_events()
    );
    store
        .timed(
            store
                .client()
                .query(&sql)
                .param("partner", partner_id.to_string())
                .param("customer", customer_id)
                .fetch_all(),
        )
        .await
}

/// One event of a history.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct HistoryRow {
    /// Id.
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    /// Skew-corrected time (the earliest of a retried event's copies).
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub event_time: OffsetDateTime,
    /// Name.
    pub name: String,
    /// Source code.
    pub source: String,
    /// `customer` or `system`.
    pub kind: String,
    /// Customer id as sent (empty for a linked anonymous event).
    pub customer_id: String,
    /// Anonymous id as sent.
    pub anonymous_id: String,
    /// Session id.
    pub session_id: String,
    /// `client`, `server` or `manual`.
    pub ingest_path: String,
    /// Context strings.
    pub context_strings: Vec<(String, String)>,
    /// Context numbers.
    pub context_numbers: Vec<(String, f64)>,
    /// Context booleans.
    pub context_booleans: Vec<(String, bool)>,
}

/// A history page request; times are Unix ms, `before` is the keyset cursor.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// Only this name (empty: all).
    pub name: String,
    /// Only this source (empty: all).
    pub source: String,
    /// Events at or after.
    pub from_ms: Option<i64>,
    /// Events before.
    pub until_ms: Option<i64>,
    /// Events strictly before this `(event_time ms, event_id)` in the page order.
    pub before: Option<(i64, Uuid)>,
    /// Page size.
    pub limit: u32,
}

/// A page of the customer's history, newest first, ordered by `(event_time, event_id)`
/// descending so pages never overlap or skip.
pub async fn history(
    store: &Store,
    partner_id: Uuid,
    customer_id: &str,
    q: &HistoryQuery,
) -> Result<Vec<HistoryRow>, StorageError> {
    let sql = format!(
        "SELECT event_id, t AS event_time, n AS name, s AS source, k AS kind, \
                c AS customer_id, a AS anonymous_id, ss AS session_id, ip AS ingest_path, \
                cs AS context_strings, cn AS context_numbers, cb AS context_booleans \
         FROM ( \
         SELECT event_id, min(event_time) AS t, any(name) AS n, any(source) AS s, \
                any(kind) AS k, any(customer_id) AS c, any(anonymous_id) AS a, \
                any(session_id) AS ss, any(ingest_path) AS ip, any(context_strings) AS cs, \
                any(context_numbers) AS cn, any(context_booleans) AS cb \
         FROM events \
         WHERE {customer_events} \
           AND ({{name:String}} = '' OR name = {{name:String}}) \
           AND ({{source:String}} = '' OR source = {{source:String}}) \
           AND event_time >= fromUnixTimestamp64Milli({{from:Int64}}, 'UTC') \
           AND event_time < fromUnixTimestamp64Milli({{until:Int64}}, 'UTC') \
         GROUP BY event_id \
         HAVING (toUnixTimestamp64Milli(t), event_id) < ({{before_ms:Int64}}, {{before_id:UUID}}) \
         ORDER BY t DESC, event_id DESC \
         LIMIT {{limit:UInt32}}) \
         ORDER BY event_time DESC, event_id DESC",
        customer_events = customer_events()
    );
    let (before_ms, before_id) = q.before.unwrap_or((i64::MAX, Uuid::max()));
    store
        .timed(
            store
                .client()
                .query(&sql)
                .param("partner", partner_id.to_string())
                .param("customer", customer_id)
                .param("name", &q.name)
                .param("source", &q.source)
                .param("from", q.from_ms.unwrap_or(0))
                // 2299-12-31, the last day DateTime64(3) holds: this bound excludes nothing.
                .param("until", q.until_ms.unwrap_or(10_413_791_999_000))
                .param("before_ms", before_ms)
                .param("before_id", before_id.to_string())
                .param("limit", q.limit)
                .fetch_all(),
        )
        .await
}
