//! Saved campaigns: one `campaigns` row per (campaign, definition version), definitions
//! validated against the partner's catalogue (the one segments use, [`segments::catalogue`])
//! with `eventline_campaigns`, and the status lifecycle draft → active ⇄ paused.
//!
//! - Every edit of the definition is a new version; the old versions stay, because a run
//!   belongs to the version it started in (message ids include it). Editing an active campaign
//!   is allowed, as in Braze: the new version is validated like an activation and is active at
//!   once; runs already in progress keep their version.
//! - A status change rewrites the current version's row (same version: pausing and resuming
//!   keeps every run and message id). The stored definition's `status` is always the row's, so
//!   the text parses as a [`Campaign`] on its own.
//! - Activation validates the saved definition again, against the catalogue as it is now,
//!   and refuses a campaign that sends by a channel without a gateway ([`channels`]); so do
//!   creating an active campaign and editing one.
//!
//! HTTP lives in `http/campaigns.rs`, which maps [`CampaignError`] to answers. Running them:
//! [`runner`] (the engine task fed by the sink and by [`tail`], and delivery; [`shard`]: which
//! customers a process runs; [`standalone`]: the `campaigns` process), [`runs`] (durable run
//! state and wake-ups), [`messages`] (the message log), [`fanout`] (system-event fan-outs), [`schedules`] (schedule
//! triggers), [`eligibility`] (who can receive what),
//! [`gateways`] (sending by channel: [`email`] over SMTP, [`webhook`], [`http_gateway`] for
//! SMS, push and Viber, both over [`http_client`]), [`channels`] (the partner's channel
//! settings).

pub mod assign;
pub mod branches;
pub mod caps;
pub mod channels;
pub mod clock;
pub mod dry_run;
pub mod eligibility;
pub mod email;
pub mod fanout;
pub mod gateways;
pub mod http_client;
pub mod http_gateway;
pub mod messages;
pub mod runner;
pub mod runs;
pub mod schedules;
pub mod shard;
pub mod standalone;
pub mod tail;
pub mod webhook;

use clickhouse::Row;
use eventline_campaigns::definition::Status;
use eventline_campaigns::{validate_json, FieldError, Valid};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StorageError;
use crate::registry::{PartnerEntry, RegistryError};
use crate::segments;
use crate::store::rows::CampaignRow;
use crate::store::Store;

/// Most live campaigns one partner may have.
pub const MAX_CAMPAIGNS_PER_PARTNER: usize = 1000;
/// Most definition versions of one campaign (each edit adds one; they are kept for the runs).
pub const MAX_VERSIONS_PER_CAMPAIGN: u32 = 1000;
/// Longest definition, in bytes of its JSON text: room for an email body of 100,000 characters
/// (the channel's limit) and the rest of a campaign.
pub const MAX_DEFINITION_BYTES: usize = 512 * 1024;

/// Campaign writes read, change and write one after another (within this collector), so two
/// concurrent edits cannot both build on the same version.
static CAMPAIGN_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What a campaign operation can fail with; `http/campaigns.rs` maps it to HTTP in one place.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// The partner has no live campaign with this id.
    #[error("campaign not found")]
    NotFound,
    /// The campaign has no such definition version.
    #[error("campaign version not found")]
    VersionNotFound,
    /// A definition sent to be saved breaks the language's rules.
    #[error("the campaign definition is not valid: {} problem(s), listed in `errors`", .0.len())]
    Invalid(Vec<FieldError>),
    /// The saved definition no longer fits the partner's catalogue (an event type or property
    /// was retired, or undeclared events are now rejected): it cannot be activated until fixed.
    #[error("the saved definition no longer fits the partner's event catalogue: {} problem(s), listed in `errors`; PATCH a fixed definition, then activate", .0.len())]
    Outdated(Vec<FieldError>),
    /// A definition's JSON text is longer than [`MAX_DEFINITION_BYTES`].
    #[error("`definition` is longer than {MAX_DEFINITION_BYTES} bytes of JSON")]
    TooLong,
    /// The partner has [`MAX_CAMPAIGNS_PER_PARTNER`] live campaigns.
    #[error("a partner may have at most {MAX_CAMPAIGNS_PER_PARTNER} campaigns; delete one first")]
    TooMany,
    /// The campaign has [`MAX_VERSIONS_PER_CAMPAIGN`] versions.
    #[error(
        "a campaign may have at most {MAX_VERSIONS_PER_CAMPAIGN} versions; create a new campaign"
    )]
    TooManyVersions,
    /// A PATCH without a definition.
    #[error("send `definition`")]
    EmptyPatch,
    /// An edit that would change the status: that is what activate and pause are for.
    #[error("an edit keeps the status (`{current}`); change it with POST .../activate or .../pause, and send `\"status\": \"{current}\"` or no status")]
    StatusNotEditable {
        /// The campaign's status.
        current: &'static str,
    },
    /// Pausing a draft: it has never run.
    #[error("a draft has never run, so it cannot be paused; activate it first")]
    NotActive,
    /// An active campaign (activated, created or edited while active) sends by a channel that
    /// has no gateway for the partner ([`channels::ChannelError::NotConfigured`]).
    #[error(transparent)]
    Channel(#[from] channels::ChannelError),
    /// The partner does not exist.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// ClickHouse failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The stable spelling of a status (`draft`, `active`, `paused`).
pub fn status_str(status: Status) -> &'static str {
    match status {
        Status::Draft => "draft",
        Status::Active => "active",
        Status::Paused => "paused",
    }
}

fn parse_status(text: &str) -> Option<Status> {
    match text {
        "draft" => Some(Status::Draft),
        "active" => Some(Status::Active),
        "paused" => Some(Status::Paused),
        _ => None,
    }
}

/// A stored row's status; a row only ever holds the three spellings.
pub fn row_status(row: &CampaignRow) -> Status {
    parse_status(&row.status).unwrap_or(Status::Draft)
}

/// `definition` with `status` set to `status` where it has none (a definition is an object;
/// anything else is left for the validator to refuse).
fn with_default_status(mut definition: Value, status: Status) -> Value {
    if let Some(object) = definition.as_object_mut() {
        object
            .entry("status")
            .or_insert_with(|| Value::from(status_str(status)));
    }
    definition
}

/// `definition` with `status` set to `status`.
fn with_status(mut definition: Value, status: Status) -> Value {
    if let Some(object) = definition.as_object_mut() {
        object.insert("status".into(), Value::from(status_str(status)));
    }
    definition
}

/// Validates a definition sent to be validated or saved; a missing `status` is `default`.
/// Returns the validated campaign and the JSON as it will be stored. Besides the language's
/// rules, every branch's `in_segment` must be one of the partner's live segments.
pub async fn check(
    store: &Store,
    entry: &PartnerEntry,
    definition: Value,
    default: Status,
) -> Result<(Valid, Value), CampaignError> {
    let definition = with_default_status(definition, default);
    let text = definition.to_string();
    if text.len() > MAX_DEFINITION_BYTES {
        return Err(CampaignError::TooLong);
    }
    let valid =
        validate_json(&text, &segments::catalogue(entry)).map_err(CampaignError::Invalid)?;
    let unknown =
        branches::unknown_segments(store, entry.partner.partner_id, &valid.campaign).await?;
    if !unknown.is_empty() {
        return Err(CampaignError::Invalid(unknown));
    }
    Ok((valid, definition))
}

/// Validates a saved definition against the catalogue as it is now (before activating it).
pub fn check_saved(entry: &PartnerEntry, row: &CampaignRow) -> Result<Valid, CampaignError> {
    validate_json(&row.definition, &segments::catalogue(entry)).map_err(CampaignError::Outdated)
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A revision above `previous`: microseconds since the epoch, bumped past it.
fn next_revision(previous: u64) -> u64 {
    let now = (now().unix_timestamp_nanos() / 1000) as u64;
    now.max(previous + 1)
}

/// A campaign in a listing: its current version without the definition (one may be 512 KiB).
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct CampaignSummary {
    /// The campaign.
    #[serde(with = "clickhouse::serde::uuid")]
    pub campaign_id: Uuid,
    /// Its current version.
    pub version: u32,
    /// The definition's name.
    pub name: String,
    /// `draft`, `active` or `paused`.
    pub status: String,
    /// The trigger's kind: the one key of the definition's `trigger`.
    pub trigger: String,
    /// When the campaign was created.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub created_at: OffsetDateTime,
    /// When the current version was saved.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub saved_at: OffsetDateTime,
    /// The last write.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub updated_at: OffsetDateTime,
}

/// The partner's live campaigns (their current versions), oldest first. A campaign is its
/// highest version; it is deleted when that row is.
pub async fn list(store: &Store, partner_id: Uuid) -> Result<Vec<CampaignSummary>, StorageError> {
    store
        .timed(
            store
                .client()
                .query(
                    "SELECT campaign_id, version, name, status, \
                       JSONExtractKeys(definition, 'trigger')[1] AS trigger, \
                       created_at, saved_at, updated_at \
                     FROM ( \
                       SELECT * FROM campaigns FINAL WHERE partner_id = {partner:UUID} \
                       ORDER BY campaign_id, version DESC LIMIT 1 BY campaign_id) \
                     WHERE is_deleted = 0 ORDER BY created_at, campaign_id",
                )
                .param("partner", partner_id.to_string())
                .fetch_all(),
        )
        .await
}

/// One live campaign of the partner, at its current version.
pub async fn get(
    store: &Store,
    partner_id: Uuid,
    campaign_id: Uuid,
) -> Result<CampaignRow, CampaignError> {
    let row: Option<CampaignRow> = store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM campaigns FINAL \
                     WHERE partner_id = {partner:UUID} AND campaign_id = {campaign:UUID} \
                     ORDER BY version DESC LIMIT 1",
                )
                .param("partner", partner_id.to_string())
                .param("campaign", campaign_id.to_string())
                .fetch_optional(),
        )
        .await?;
    row.filter(|r| r.is_deleted == 0)
        .ok_or(CampaignError::NotFound)
}

/// One definition version of a campaign, as listed by [`versions`].
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct VersionRow {
    /// The version.
    pub version: u32,
    /// The definition's name in that version.
    pub name: String,
    /// When it was saved.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub saved_at: OffsetDateTime,
}

/// Every definition version of a live campaign, newest first.
pub async fn versions(
    store: &Store,
    partner_id: Uuid,
    campaign_id: Uuid,
) -> Result<Vec<VersionRow>, CampaignError> {
    get(store, partner_id, campaign_id).await?;
    Ok(store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM campaigns FINAL \
                     WHERE partner_id = {partner:UUID} AND campaign_id = {campaign:UUID} \
                     ORDER BY version DESC",
                )
                .param("partner", partner_id.to_string())
                .param("campaign", campaign_id.to_string())
                .fetch_all(),
        )
        .await?)
}

/// One definition version of a live campaign.
pub async fn version(
    store: &Store,
    partner_id: Uuid,
    campaign_id: Uuid,
    version: u32,
) -> Result<CampaignRow, CampaignError> {
    get(store, partner_id, campaign_id).await?;
    store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM campaigns FINAL \
                     WHERE partner_id = {partner:UUID} AND campaign_id = {campaign:UUID} \
                       AND version = {version:UInt32}",
                )
                .param("partner", partner_id.to_string())
                .param("campaign", campaign_id.to_string())
                .param("version", version)
                .fetch_optional(),
        )
        .await?
        .ok_or(CampaignError::VersionNotFound)
}

async fn write(store: &Store, row: &CampaignRow) -> Result<(), StorageError> {
    store
        .insert_rows("campaigns", std::slice::from_ref(row))
        .await
}

/// Saves a new campaign (version 1) after validating its definition. Its status is the
/// definition's (`draft` when it has none); an `active` one is checked exactly as an activation.
pub async fn create(
    store: &Store,
    entry: &PartnerEntry,
    definition: Value,
) -> Result<CampaignRow, CampaignError> {
    let (valid, definition) = check(store, entry, definition, Status::Draft).await?;
    let partner_id = entry.partner.partner_id;
    if valid.campaign.status == Status::Active {
        channels::require_gateways(store, partner_id, &valid.campaign).await?;
    }
    let _one_at_a_time = CAMPAIGN_WRITES.lock().await;
    if list(store, partner_id).await?.len() >= MAX_CAMPAIGNS_PER_PARTNER {
        return Err(CampaignError::TooMany);
    }
    let now = now();
    let row = CampaignRow {
        partner_id,
        campaign_id: Uuid::now_v7(),
        version: 1,
        name: valid.campaign.name.clone(),
        status: status_str(valid.campaign.status).into(),
        definition: definition.to_string(),
        created_at: now,
        saved_at: now,
        updated_at: now,
        revision: next_revision(0),
        is_deleted: 0,
    };
    write(store, &row).await?;
    Ok(row)
}

/// An edit of a campaign: a whole new definition.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignPatch {
    /// The new definition, validated like a new one; its `status`, if any, must be the
    /// campaign's.
    pub definition: Option<Value>,
}

/// Replaces a campaign's definition with a new version (validated against the catalogue as it
/// is now); the status stays.
pub async fn update(
    store: &Store,
    entry: &PartnerEntry,
    campaign_id: Uuid,
    patch: CampaignPatch,
) -> Result<CampaignRow, CampaignError> {
    let definition = patch.definition.ok_or(CampaignError::EmptyPatch)?;
    let _one_at_a_time = CAMPAIGN_WRITES.lock().await;
    let mut row = get(store, entry.partner.partner_id, campaign_id).await?;
    let status = row_status(&row);
    // A status that is not one of the three is left to the validator's message.
    let sent = definition
        .get("status")
        .and_then(Value::as_str)
        .and_then(parse_status);
    if sent.is_some_and(|sent| sent != status) {
        return Err(CampaignError::StatusNotEditable {
            current: status_str(status),
        });
    }
    let (valid, definition) = check(store, entry, definition, status).await?;
    if status == Status::Active {
        channels::require_gateways(store, entry.partner.partner_id, &valid.campaign).await?;
    }
    if row.version >= MAX_VERSIONS_PER_CAMPAIGN {
        return Err(CampaignError::TooManyVersions);
    }
    let now = now();
    row.version += 1;
    row.name = valid.campaign.name;
    row.definition = definition.to_string();
    row.saved_at = now;
    row.updated_at = now;
    row.revision = next_revision(row.revision);
    write(store, &row).await?;
    Ok(row)
}

/// What a status change did.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The campaign after it.
    pub row: CampaignRow,
    /// The status before; equal to the row's when nothing changed (the call is idempotent).
    pub from: Status,
}

impl Transition {
    /// Whether the status changed (and a row was written).
    pub fn changed(&self) -> bool {
        self.from != row_status(&self.row)
    }
}

async fn set_status(
    store: &Store,
    mut row: CampaignRow,
    status: Status,
) -> Result<Transition, CampaignError> {
    let from = row_status(&row);
    if from == status {
        return Ok(Transition { row, from });
    }
    // Stored only after validation, so it parses as JSON.
    let definition: Value = serde_json::from_str(&row.definition).map_err(|e| {
        CampaignError::Outdated(vec![FieldError::new(
            eventline_campaigns::ErrorCode::InvalidDefinition,
            "",
            format!("the stored definition is not JSON: {e}"),
        )])
    })?;
    row.definition = with_status(definition, status).to_string();
    row.status = status_str(status).into();
    row.updated_at = now();
    row.revision = next_revision(row.revision);
    write(store, &row).await?;
    Ok(Transition { row, from })
}

/// Activates a draft or paused campaign after validating its current definition against the
/// catalogue as it is now; an active one is answered as it is.
pub async fn activate(
    store: &Store,
    entry: &PartnerEntry,
    campaign_id: Uuid,
) -> Result<Transition, CampaignError> {
    let _one_at_a_time = CAMPAIGN_WRITES.lock().await;
    let row = get(store, entry.partner.partner_id, campaign_id).await?;
    if row_status(&row) != Status::Active {
        let valid = check_saved(entry, &row)?;
        channels::require_gateways(store, entry.partner.partner_id, &valid.campaign).await?;
    }
    set_status(store, row, Status::Active).await
}

/// Pauses an active campaign; a paused one is answered as it is, a draft refused.
pub async fn pause(
    store: &Store,
    partner_id: Uuid,
    campaign_id: Uuid,
) -> Result<Transition, CampaignError> {
    let _one_at_a_time = CAMPAIGN_WRITES.lock().await;
    let row = get(store, partner_id, campaign_id).await?;
    if row_status(&row) == Status::Draft {
        return Err(CampaignError::NotActive);
    }
    set_status(store, row, Status::Paused).await
}

/// Deletes a campaign in any status (a tombstone on its current version); returns the deleted
/// row. Its runs end: nothing runs a deleted campaign.
pub async fn delete(
    store: &Store,
    partner_id: Uuid,
    campaign_id: Uuid,
) -> Result<CampaignRow, CampaignError> {
    let _one_at_a_time = CAMPAIGN_WRITES.lock().await;
    let mut row = get(store, partner_id, campaign_id).await?;
    row.is_deleted = 1;
    row.updated_at = now();
    row.revision = next_revision(row.revision);
    write(store, &row).await?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn revisions_increase_even_when_the_clock_does_not() {
        let far_future = (now().unix_timestamp_nanos() / 1000) as u64 + 10_000_000_000;
        assert_eq!(next_revision(far_future), far_future + 1);
        assert!(next_revision(0) > 1_700_000_000_000_000);
    }

    #[test]
    fn a_missing_status_takes_the_default_and_a_given_one_stays() {
        let d = with_default_status(json!({"name": "x"}), Status::Paused);
        assert_eq!(d["status"], "paused");
        let d = with_default_status(json!({"status": "active"}), Status::Draft);
        assert_eq!(d["status"], "active");
        assert_eq!(with_status(d, Status::Draft)["status"], "draft");
        // Not an object: left as it is for the validator to refuse.
        assert_eq!(with_default_status(json!([1]), Status::Draft), json!([1]));
    }

    #[test]
    fn every_status_spelling_parses_back() {
        for s in [Status::Draft, Status::Active, Status::Paused] {
            assert_eq!(parse_status(status_str(s)), Some(s));
        }
        assert_eq!(parse_status("running"), None);
    }
}
