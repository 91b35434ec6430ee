//! Row types of Eventline's tables, as written and read over RowBinary.

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Unix milliseconds to a UTC timestamp (ClickHouse DateTime64(3)).
pub fn ms_to_datetime(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// One row of `events`.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub struct EventRow {
    /// Partner (tenant).
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// Client-generated id; the idempotency key.
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    /// `customer` or `system`.
    pub kind: String,
    /// Event name.
    pub name: String,
    /// Source code as sent.
    pub source: String,
    /// Stable source id.
    #[serde(with = "clickhouse::serde::uuid")]
    pub source_id: Uuid,
    /// Customer id or empty.
    pub customer_id: String,
    /// Anonymous id or empty.
    pub anonymous_id: String,
    /// Session id or empty.
    pub session_id: String,
    /// Client clock.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub occurred_at: OffsetDateTime,
    /// Client clock.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub sent_at: OffsetDateTime,
    /// Collector clock.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub received_at: OffsetDateTime,
    /// Skew-corrected event time.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub event_time: OffsetDateTime,
    /// String context variables.
    pub context_strings: Vec<(String, String)>,
    /// Numeric context variables.
    pub context_numbers: Vec<(String, f64)>,
    /// Boolean context variables.
    pub context_booleans: Vec<(String, bool)>,
    /// `client` or `server`.
    pub ingest_path: String,
    /// User-Agent header, at most its first 512 bytes.
    pub user_agent: String,
    /// Client IP or empty.
    pub client_ip: String,
}

impl EventRow {
    /// A rough byte size, for the sink's batch byte limit.
    pub fn approx_bytes(&self) -> usize {
        let ctx: usize = self
            .context_strings
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
            + self
                .context_numbers
                .iter()
                .map(|(k, _)| k.len() + 8)
                .sum::<usize>()
            + self
                .context_booleans
                .iter()
                .map(|(k, _)| k.len() + 1)
                .sum::<usize>();
        96 + self.name.len()
            + self.source.len()
            + self.customer_id.len()
            + self.anonymous_id.len()
            + self.session_id.len()
            + self.user_agent.len()
            + self.client_ip.len()
            + ctx
    }
}

/// One row of `rejected_events`.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub struct RejectedRow {
    /// Collector clock.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub received_at: OffsetDateTime,
    /// Partner, or nil when unknown.
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// Source code as sent, if readable.
    pub source: String,
    /// Event id as sent, if readable.
    pub event_id: String,
    /// Position in the batch, or -1 for the whole request.
    pub event_index: i32,
    /// Stable reason code.
    pub reason_code: String,
    /// Offending field.
    pub reason_field: String,
    /// Human message.
    pub reason_message: String,
    /// Raw event JSON or request body, at most its first 8 KiB (cut on a character boundary).
    pub payload: String,
    /// Byte size of the event JSON or body as received, before the cut.
    pub payload_bytes: u32,
    /// `client` or `server`.
    pub ingest_path: String,
    /// User-Agent header, at most its first 512 bytes.
    pub user_agent: String,
    /// Client IP or empty.
    pub client_ip: String,
}

impl RejectedRow {
    /// A rough byte size, for the sink's batch byte limit.
    pub fn approx_bytes(&self) -> usize {
        64 + self.payload.len() + self.reason_message.len() + self.user_agent.len()
    }
}

/// A partner (tenant).
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub struct PartnerRow {
    /// Id.
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// Display name.
    pub name: String,
    /// Hex SHA-256 of the API key.
    pub api_key_sha256: String,
    /// Creation time.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub created_at: OffsetDateTime,
    /// Write version.
    pub version: u64,
    /// Tombstone flag.
    pub is_deleted: u8,
}

/// An event source of a partner.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub struct SourceRow {
    /// Owning partner.
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// Stable id.
    #[serde(with = "clickhouse::serde::uuid")]
    pub source_id: Uuid,
    /// Code the tracker sends.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Allowed browser host ("" = none).
    pub domain: String,
    /// Whether events are accepted.
    pub active: bool,
    /// Created with the partner; undeletable.
    pub is_system: bool,
    /// Creation time.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub updated_at: OffsetDateTime,
    /// Write version.
    pub version: u64,
    /// Tombstone flag.
    pub is_deleted: u8,
}

/// One row of `partner_api_keys`: a key of a partner, active or revoked.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub struct ApiKeyRow {
    /// Owning partner.
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// Public name of the key: the first 16 hex digits of its hash.
    pub key_id: String,
    /// Hex SHA-256 of the key.
    pub key_sha256: String,
    /// Creation time.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub created_at: OffsetDateTime,
    /// Revocation time; `None` while active.
    #[serde(with = "clickhouse::serde::time::datetime64::millis::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Write version.
    pub version: u64,
    /// Tombstone flag.
    pub is_deleted: u8,
}

/// One row of `partner_settings`.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub struct PartnerSettingsRow {
    /// The partner.
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// Events older than this many days are deleted; `None` keeps them.
    pub retention_days: Option<u32>,
    /// IANA time zone of the partner (calendar days of segment periods).
    pub time_zone: String,
    /// `accept` or `reject`: what ingest does with an event no live event type declares.
    pub undeclared_events: String,
    /// Last change.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub updated_at: OffsetDateTime,
    /// Write version.
    pub version: u64,
    /// Tombstone flag.
    pub is_deleted: u8,
}

/// One row of `admin_audit`.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub struct AuditRow {
    /// When.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub at: OffsetDateTime,
    /// Admin token id.
    pub actor: String,
    /// What was done, e.g. `partner.create`.
    pub action: String,
    /// The partner concerned, nil when none.
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// The object acted on.
    pub target_id: String,
    /// Small JSON object.
    pub details: String,
}

/// One version of a row of `erasure_jobs`.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub struct ErasureJobRow {
    /// Id.
    #[serde(with = "clickhouse::serde::uuid")]
    pub job_id: Uuid,
    /// The partner whose data is erased.
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// `customer` or `partner`.
    pub scope: String,
    /// Hex SHA-256 of the customer id (empty for a partner).
    pub subject_sha256: String,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    /// Admin token id.
    pub requested_by: String,
    /// Request time.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub requested_at: OffsetDateTime,
    /// The job does not start before this.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub not_before: OffsetDateTime,
    /// Start of the (last) run.
    #[serde(with = "clickhouse::serde::time::datetime64::millis::option")]
    pub started_at: Option<OffsetDateTime>,
    /// End of the run.
    #[serde(with = "clickhouse::serde::time::datetime64::millis::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// Rows removed from `events`.
    pub events_removed: u64,
    /// Rows removed from `rejected_events`.
    pub rejected_removed: u64,
    /// Why it failed.
    pub error: String,
    /// Write version.
    pub version: u64,
}

/// One version of a row of `event_properties`: a property of a partner's event catalogue.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub struct PropertyRow {
    /// The partner.
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// The context key.
    pub code: String,
    /// Display name.
    pub name: String,
    /// `string`, `number`, `boolean` or `datetime`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Written by the collector for every partner.
    pub predefined: bool,
    /// Not offered for new event types.
    pub retired: bool,
    /// Creation time.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub updated_at: OffsetDateTime,
    /// Write version.
    pub version: u64,
    /// Tombstone flag.
    pub is_deleted: u8,
}

/// One version of a row of `event_types`.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub struct EventTypeRow {
    /// The partner.
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// The event name.
    pub code: String,
    /// Display name.
    pub name: String,
    /// `customer` or `system`.
    pub kind: String,
    /// Codes of its properties, in display order.
    pub property_codes: Vec<String>,
    /// Parallel to `property_codes`: whether each is required.
    pub property_required: Vec<bool>,
    /// Written by the collector for every partner.
    pub predefined: bool,
    /// Not checked at ingest.
    pub retired: bool,
    /// Creation time.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub updated_at: OffsetDateTime,
    /// Write version.
    pub version: u64,
    /// Tombstone flag.
    pub is_deleted: u8,
}

/// One version of a row of `customer_profiles`.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct CustomerProfileRow {
    /// The partner.
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// The partner's customer id.
    pub customer_id: String,
    /// First name or empty.
    pub first_name: String,
    /// Last name or empty.
    pub last_name: String,
    /// Email or empty.
    pub email: String,
    /// Phone or empty.
    pub phone: String,
    /// Birthday (a ClickHouse `Date32`, so years before 1970 fit).
    #[serde(with = "clickhouse::serde::time::date32::option")]
    pub birthday: Option<time::Date>,
    /// Consent per channel.
    pub consents: Vec<(String, bool)>,
    /// String attributes.
    pub attributes_strings: Vec<(String, String)>,
    /// Number attributes.
    pub attributes_numbers: Vec<(String, f64)>,
    /// Boolean attributes.
    pub attributes_booleans: Vec<(String, bool)>,
    /// Datetime attributes.
    #[serde(with = "datetime_map")]
    pub attributes_datetimes: Vec<(String, OffsetDateTime)>,
    /// Last change.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub updated_at: OffsetDateTime,
    /// Write version.
    pub version: u64,
    /// Tombstone flag.
    pub is_deleted: u8,
}

/// One version of a row of `segments`.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct SegmentRow {
    /// The partner.
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// The segment.
    #[serde(with = "clickhouse::serde::uuid")]
    pub segment_id: Uuid,
    /// Display name.
    pub name: String,
    /// The definition's JSON text.
    pub definition: String,
    /// Creation time.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub updated_at: OffsetDateTime,
    /// Write version.
    pub version: u64,
    /// Tombstone flag.
    pub is_deleted: u8,
}

/// One row of `campaigns`: one definition version of a campaign, as last written.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct CampaignRow {
    /// The partner.
    #[serde(with = "clickhouse::serde::uuid")]
    pub partner_id: Uuid,
    /// The campaign.
    #[serde(with = "clickhouse::serde::uuid")]
    pub campaign_id: Uuid,
    /// Definition version: 1 at creation, one more at each edit of the definition.
    pub version: u32,
    /// The definition's name.
    pub name: String,
    /// `draft`, `active` or `paused`.
    pub status: String,
    /// The definition's JSON text, its `status` the row's.
    pub definition: String,
    /// When the campaign was created.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub created_at: OffsetDateTime,
    /// When this definition version was saved.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub saved_at: OffsetDateTime,
    /// The last write of this row.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub updated_at: OffsetDateTime,
    /// Write version of the row.
    pub revision: u64,
    /// Tombstone flag (set on the latest version's row).
    pub is_deleted: u8,
}

/// A `Map(String, DateTime64(3))` as key/millisecond pairs.
mod datetime_map {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(
        pairs: &[(String, OffsetDateTime)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let ms: Vec<(&str, i64)> = pairs
            .iter()
            .map(|(k, t)| (k.as_str(), (t.unix_timestamp_nanos() / 1_000_000) as i64))
            .collect();
        ms.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, OffsetDateTime)>, D::Error> {
        let ms: Vec<(String, i64)> = Vec::deserialize(d)?;
        Ok(ms
            .into_iter()
            .map(|(k, ms)| (k, super::ms_to_datetime(ms)))
            .collect())
    }
}
