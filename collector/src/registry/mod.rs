//! The registry of partners, their event sources, API keys and settings: persisted as
//! versioned rows in ClickHouse, served to the ingest path from an in-memory snapshot.
//!
//! Ingest never queries ClickHouse for sources or keys; it reads the snapshot, which admin
//! writes replace immediately and a background task refreshes so that changes made through
//! another collector instance arrive within the refresh interval.

pub mod catalog;
pub mod checks;
mod error;
pub mod origin;
mod snapshot;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use self::catalog::{
    EventTypePatch, NewEventType, NewProperty, PropertyPatch, PREDEFINED_PROPERTIES,
    PREDEFINED_TYPES,
};
pub use self::error::RegistryError;
pub use self::snapshot::{key_id_of, PartnerEntry, RegistryRows, Snapshot};
use crate::error::StorageError;
pub use crate::store::rows::{
    ApiKeyRow, EventTypeRow, PartnerRow, PartnerSettingsRow, PropertyRow, SourceRow,
};
use crate::store::Store;

/// Code, name and flags of the source every partner gets at creation.
pub const SYSTEM_SOURCE_CODE: &str = "online_store";
/// Display name of the system source.
pub const SYSTEM_SOURCE_NAME: &str = "Online Store";
/// Longest partner or source name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;
/// Longest per-partner event retention, in days (ten years).
pub const MAX_RETENTION_DAYS: u32 = 3650;

/// A partner's time zone until it sets one.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

/// What ingest does with an event whose name no live event type declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndeclaredEvents {
    /// Store it unchecked (the default: tracking works before anything is declared).
    Accept,
    /// Reject it with `undeclared_event`.
    Reject,
}

impl UndeclaredEvents {
    /// The API and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UndeclaredEvents::Accept => "accept",
            UndeclaredEvents::Reject => "reject",
        }
    }

    /// Parses the API spelling.
    pub fn parse(text: &str) -> Option<UndeclaredEvents> {
        match text {
            "accept" => Some(UndeclaredEvents::Accept),
            "reject" => Some(UndeclaredEvents::Reject),
            _ => None,
        }
    }
}

/// A partial update of a partner's settings; absent fields keep their value.
#[derive(Debug, Clone, Default)]
pub struct SettingsPatch {
    /// `Some(None)` clears the retention.
    pub retention_days: Option<Option<u32>>,
    /// An IANA time zone name.
    pub time_zone: Option<String>,
    /// `accept` or `reject`.
    pub undeclared_events: Option<String>,
}

/// Hex SHA-256 of an API key; keys are stored and compared only in this form.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn new_api_key() -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    format!("elk_{}", hex::encode(bytes))
}

/// Fields of a new source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSource {
    /// Display name.
    pub name: String,
    /// Code the tracker sends.
    pub code: String,
    /// Allowed browser host.
    #[serde(default)]
    pub domain: String,
    /// Accepting events (default true).
    #[serde(default = "default_true")]
    pub active: bool,
}

fn default_true() -> bool {
    true
}

/// A partial update of a source; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcePatch {
    /// New display name.
    pub name: Option<String>,
    /// New code.
    pub code: Option<String>,
    /// New domain.
    pub domain: Option<String>,
    /// New active flag.
    pub active: Option<bool>,
}

/// A partner just created: its rows and its first API key, shown once.
#[derive(Debug)]
pub struct CreatedPartner {
    /// The partner.
    pub partner: PartnerRow,
    /// Its system source.
    pub sources: Vec<SourceRow>,
    /// The key's row.
    pub key: ApiKeyRow,
    /// The key itself; not stored.
    pub api_key: String,
}

/// What a partner deletion tombstoned.
#[derive(Debug)]
pub struct DeletedPartner {
    /// Sources tombstoned.
    pub sources: usize,
    /// Keys revoked.
    pub api_keys: usize,
}

/// The registry: snapshot for readers, serialized writes to ClickHouse.
pub struct Registry {
    store: Store,
    snapshot: RwLock<Arc<Snapshot>>,
    write_lock: tokio::sync::Mutex<()>,
    last_version: AtomicU64,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl Registry {
    /// Loads the registry from ClickHouse.
    pub async fn load(store: Store) -> Result<Registry, StorageError> {
        let registry = Registry {
            store,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            write_lock: tokio::sync::Mutex::new(()),
            last_version: AtomicU64::new(0),
        };
        registry.refresh().await?;
        registry.ensure_predefined().await?;
        Ok(registry)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().expect("lock not poisoned").clone()
    }

    /// Refreshes the registry every `every` for as long as the task runs, so changes made
    /// through other instances arrive; a failed refresh keeps the last snapshot.
    pub fn spawn_refresher(
        self: &Arc<Self>,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let registry = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(error) = registry.refresh().await {
                    tracing::warn!(%error, "registry refresh failed; using the last snapshot");
                }
            }
        })
    }

    /// Re-reads partners, sources, keys and settings from ClickHouse.
    pub async fn refresh(&self) -> Result<(), StorageError> {
        let client = self.store.client();
        let live = |table: &str| format!("SELECT ?fields FROM {table} FINAL WHERE is_deleted = 0");
        let rows = RegistryRows {
            partners: self
                .store
                .timed(client.query(&live("partners")).fetch_all())
                .await?,
            sources: self
                .store
                .timed(client.query(&live("sources")).fetch_all())
                .await?,
            api_keys: self
                .store
                .timed(client.query(&live("partner_api_keys")).fetch_all())
                .await?,
            settings: self
                .store
                .timed(client.query(&live("partner_settings")).fetch_all())
                .await?,
            properties: self
                .store
                .timed(client.query(&live("event_properties")).fetch_all())
                .await?,
            types: self
                .store
                .timed(client.query(&live("event_types")).fetch_all())
                .await?,
        };
        let max_version = rows
            .partners
            .iter()
            .map(|p| p.version)
            .chain(rows.sources.iter().map(|s| s.version))
            .chain(rows.api_keys.iter().map(|k| k.version))
            .chain(rows.settings.iter().map(|s| s.version))
            .chain(rows.properties.iter().map(|p| p.version))
            .chain(rows.types.iter().map(|t| t.version))
            .max()
            .unwrap_or(0);
        self.last_version.fetch_max(max_version, Ordering::SeqCst);
        *self.snapshot.write().expect("lock not poisoned") = Arc::new(Snapshot::assemble(rows));
        Ok(())
    }

    /// Writes one versioned row, then re-reads the snapshot so this instance serves it at once.
    async fn write_row<T>(&self, table: &str, row: &T) -> Result<(), StorageError>
    where
        T: clickhouse::RowOwned + clickhouse::RowWrite,
    {
        self.store
            .insert_rows(table, std::slice::from_ref(row))
            .await?;
        self.refresh().await
    }

    /// A version higher than any seen: microseconds since the epoch, bumped past the last one.
    fn next_version(&self) -> u64 {
        let now = (now().unix_timestamp_nanos() / 1000) as u64;
        let mut prev = self.last_version.load(Ordering::SeqCst);
        loop {
            let next = now.max(prev + 1);
            match self
                .last_version
                .compare_exchange(prev, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(actual) => prev = actual,
            }
        }
    }

    fn new_key_row(&self, partner_id: Uuid, key: &str) -> ApiKeyRow {
        let key_sha256 = hash_api_key(key);
        ApiKeyRow {
            partner_id,
            key_id: key_id_of(&key_sha256),
            key_sha256,
            created_at: now(),
            revoked_at: None,
            version: self.next_version(),
            is_deleted: 0,
        }
    }

    /// Creates a partner with its system "Online Store" source and a first API key.
    pub async fn create_partner(&self, name: &str) -> Result<CreatedPartner, RegistryError> {
        let name = checks::display_name(name, "name")?;
        let _guard = self.write_lock.lock().await;
        let now = now();
        let partner = PartnerRow {
            partner_id: Uuid::now_v7(),
            name,
            // Keys live in partner_api_keys; this column only holds keys from before it.
            api_key_sha256: String::new(),
            created_at: now,
            version: self.next_version(),
            is_deleted: 0,
        };
        let system = SourceRow {
            partner_id: partner.partner_id,
            source_id: Uuid::now_v7(),
            code: SYSTEM_SOURCE_CODE.into(),
            name: SYSTEM_SOURCE_NAME.into(),
            domain: String::new(),
            active: true,
            is_system: true,
            created_at: now,
            updated_at: now,
            version: self.next_version(),
            is_deleted: 0,
        };
        let api_key = new_api_key();
        let key = self.new_key_row(partner.partner_id, &api_key);
        // Source and key first: a partner row without them would be visible as incomplete.
        self.store
            .insert_rows("sources", std::slice::from_ref(&system))
            .await?;
        self.store
            .insert_rows("partner_api_keys", std::slice::from_ref(&key))
            .await?;
        let (properties, types) = self.predefined_rows(partner.partner_id, &Default::default());
        self.store
            .insert_rows("event_properties", &properties)
            .await?;
        self.store.insert_rows("event_types", &types).await?;
        self.store
            .insert_rows("partners", std::slice::from_ref(&partner))
            .await?;
        self.refresh().await?;
        Ok(CreatedPartner {
            partner,
            sources: vec![system],
            key,
            api_key,
        })
    }

    /// A live partner and what belongs to it.
    pub fn partner(&self, partner_id: &Uuid) -> Result<PartnerEntry, RegistryError> {
        self.snapshot()
            .partner(partner_id)
            .cloned()
            .ok_or(RegistryError::PartnerNotFound)
    }

    /// Lists a partner's sources, system source first, then by creation.
    pub fn sources(&self, partner_id: &Uuid) -> Result<Vec<SourceRow>, RegistryError> {
        let mut sources: Vec<SourceRow> = self.partner(partner_id)?.sources.into_values().collect();
        sources.sort_by_key(|s| (!s.is_system, s.created_at, s.source_id));
        Ok(sources)
    }

    /// One source of a partner.
    pub fn source(&self, partner_id: &Uuid, source_id: &Uuid) -> Result<SourceRow, RegistryError> {
        self.partner(partner_id)?
            .sources
            .into_values()
            .find(|s| s.source_id == *source_id)
            .ok_or(RegistryError::SourceNotFound)
    }

    fn ensure_code_free(
        entry: &PartnerEntry,
        code: &str,
        except: Option<Uuid>,
    ) -> Result<(), RegistryError> {
        match entry.sources.get(code) {
            Some(existing) if Some(existing.source_id) != except => {
                Err(RegistryError::SourceCodeTaken(code.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Adds a user source.
    pub async fn create_source(
        &self,
        partner_id: &Uuid,
        new: NewSource,
    ) -> Result<SourceRow, RegistryError> {
        let name = checks::display_name(&new.name, "name")?;
        checks::code(&new.code)?;
        let domain = checks::domain(&new.domain)?;
        let _guard = self.write_lock.lock().await;
        self.refresh().await?;
        let entry = self.partner(partner_id)?;
        Self::ensure_code_free(&entry, &new.code, None)?;
        let now = now();
        let row = SourceRow {
            partner_id: *partner_id,
            source_id: Uuid::now_v7(),
            code: new.code,
            name,
            domain,
            active: new.active,
            is_system: false,
            created_at: now,
            updated_at: now,
            version: self.next_version(),
            is_deleted: 0,
        };
        self.write_row("sources", &row).await?;
        Ok(row)
    }

    /// Changes name, code, domain or the active toggle of a source (system sources too).
    pub async fn update_source(
        &self,
        partner_id: &Uuid,
        source_id: &Uuid,
        patch: SourcePatch,
    ) -> Result<SourceRow, RegistryError> {
        let name = patch
            .name
            .as_deref()
            .map(|n| checks::display_name(n, "name"))
            .transpose()?;
        if let Some(code) = &patch.code {
            checks::code(code)?;
        }
        let domain = patch.domain.as_deref().map(checks::domain).transpose()?;
        let _guard = self.write_lock.lock().await;
        self.refresh().await?;
        let entry = self.partner(partner_id)?;
        let mut row = self.source(partner_id, source_id)?;
        if let Some(code) = patch.code {
            Self::ensure_code_free(&entry, &code, Some(row.source_id))?;
            row.code = code;
        }
        if let Some(name) = name {
            row.name = name;
        }
        if let Some(domain) = domain {
            row.domain = domain;
        }
        if let Some(active) = patch.active {
            row.active = active;
        }
        row.updated_at = now();
        row.version = self.next_version();
        self.write_row("sources", &row).await?;
        Ok(row)
    }

    /// Removes a user source; system sources can only be switched off.
    pub async fn delete_source(
        &self,
        partner_id: &Uuid,
        source_id: &Uuid,
    ) -> Result<SourceRow, RegistryError> {
        let _guard = self.write_lock.lock().await;
        self.refresh().await?;
        let mut row = self.source(partner_id, source_id)?;
        if row.is_system {
            return Err(RegistryError::SystemSourceUndeletable(row.name));
        }
        row.is_deleted = 1;
        row.updated_at = now();
        row.version = self.next_version();
        self.write_row("sources", &row).await?;
        Ok(row)
    }

    /// A partner's API keys (active and revoked), oldest first.
    pub fn api_keys(&self, partner_id: &Uuid) -> Result<Vec<ApiKeyRow>, RegistryError> {
        Ok(self.partner(partner_id)?.api_keys)
    }

    /// Adds an API key to a partner; returns its row and the key, which is not stored.
    pub async fn create_api_key(
        &self,
        partner_id: &Uuid,
    ) -> Result<(ApiKeyRow, String), RegistryError> {
        let _guard = self.write_lock.lock().await;
        self.refresh().await?;
        self.partner(partner_id)?;
        let api_key = new_api_key();
        let row = self.new_key_row(*partner_id, &api_key);
        self.write_row("partner_api_keys", &row).await?;
        Ok((row, api_key))
    }

    /// Revokes a key of a partner (revoking a revoked key changes nothing); ingest refuses it
    /// here at once and on other instances after their next refresh.
    pub async fn revoke_api_key(
        &self,
        partner_id: &Uuid,
        key_id: &str,
    ) -> Result<ApiKeyRow, RegistryError> {
        let _guard = self.write_lock.lock().await;
        self.refresh().await?;
        let mut row = self
            .partner(partner_id)?
            .api_keys
            .into_iter()
            .find(|k| k.key_id == key_id)
            .ok_or(RegistryError::ApiKeyNotFound)?;
        if row.revoked_at.is_some() {
            return Ok(row);
        }
        row.revoked_at = Some(now());
        row.version = self.next_version();
        self.write_row("partner_api_keys", &row).await?;
        Ok(row)
    }

    /// Changes the settings a patch names and keeps the others as they are.
    pub async fn update_settings(
        &self,
        partner_id: &Uuid,
        patch: SettingsPatch,
    ) -> Result<PartnerEntry, RegistryError> {
        if patch.retention_days.is_none()
            && patch.time_zone.is_none()
            && patch.undeclared_events.is_none()
        {
            return Err(RegistryError::EmptyPatch);
        }
        let retention = patch
            .retention_days
            .map(checks::retention_days)
            .transpose()?;
        let time_zone = patch
            .time_zone
            .as_deref()
            .map(checks::time_zone)
            .transpose()?;
        let undeclared = patch
            .undeclared_events
            .as_deref()
            .map(|u| UndeclaredEvents::parse(u).ok_or(RegistryError::InvalidUndeclaredEvents))
            .transpose()?;
        let _guard = self.write_lock.lock().await;
        self.refresh().await?;
        let mut row = self.partner(partner_id)?.settings_row();
        if let Some(days) = retention {
            row.retention_days = days;
        }
        if let Some(tz) = time_zone {
            row.time_zone = tz;
        }
        if let Some(u) = undeclared {
            row.undeclared_events = u.as_str().into();
        }
        row.updated_at = now();
        row.version = self.next_version();
        self.write_row("partner_settings", &row).await?;
        self.partner(partner_id)
    }

    /// Tombstones a partner, its sources and settings and revokes its keys: ingest refuses it
    /// here at once and on other instances after their next refresh. Its data is erased
    /// separately (see [`crate::erasure`]).
    pub async fn delete_partner(&self, partner_id: &Uuid) -> Result<DeletedPartner, RegistryError> {
        let _guard = self.write_lock.lock().await;
        self.refresh().await?;
        let entry = self.partner(partner_id)?;
        let now = now();
        let mut settings = entry.settings_row();
        settings.updated_at = now;
        settings.version = self.next_version();
        settings.is_deleted = 1;
        let sources: Vec<SourceRow> = entry
            .sources
            .into_values()
            .map(|mut s| {
                s.is_deleted = 1;
                s.updated_at = now;
                s.version = self.next_version();
                s
            })
            .collect();
        let keys: Vec<ApiKeyRow> = entry
            .api_keys
            .into_iter()
            .filter(|k| k.revoked_at.is_none())
            .map(|mut k| {
                k.revoked_at = Some(now);
                k.version = self.next_version();
                k
            })
            .collect();
        let mut partner = entry.partner;
        partner.is_deleted = 1;
        partner.version = self.next_version();
        // The partner row first: once it is tombstoned nothing else of it is served.
        self.store
            .insert_rows("partners", std::slice::from_ref(&partner))
            .await?;
        self.store.insert_rows("sources", &sources).await?;
        self.store.insert_rows("partner_api_keys", &keys).await?;
        self.store
            .insert_rows("partner_settings", std::slice::from_ref(&settings))
            .await?;
        self.refresh().await?;
        Ok(DeletedPartner {
            sources: sources.len(),
            api_keys: keys.len(),
        })
    }

    /// The predefined catalogue rows a partner lacks (`have`: its current catalogue).
    fn predefined_rows(
        &self,
        partner_id: Uuid,
        have: &catalog::Catalog,
    ) -> (Vec<PropertyRow>, Vec<EventTypeRow>) {
        let now = now();
        let properties = PREDEFINED_PROPERTIES
            .iter()
            .filter(|(code, _, _)| have.property(code).is_none())
            .map(|(code, name, ty)| PropertyRow {
                partner_id,
                code: (*code).into(),
                name: (*name).into(),
                ty: ty.as_str().into(),
                predefined: true,
                retired: false,
                created_at: now,
                updated_at: now,
                version: self.next_version(),
                is_deleted: 0,
            })
            .collect();
        let types = PREDEFINED_TYPES
            .iter()
            .filter(|t| have.event_type(t.code).is_none())
            .map(|t| EventTypeRow {
                partner_id,
                code: t.code.into(),
                name: t.name.into(),
                kind: t.kind.as_str().into(),
                property_codes: t.properties.iter().map(|p| (*p).to_string()).collect(),
                property_required: vec![false; t.properties.len()],
                predefined: true,
                retired: false,
                created_at: now,
                updated_at: now,
                version: self.next_version(),
                is_deleted: 0,
            })
            .collect();
        (properties, types)
    }

    /// Gives every live partner the predefined properties and event types it lacks (partners
    /// created before the catalogue existed, or before a predefined type was added). A code the
    /// partner already has, retired or edited, is left alone.
    pub async fn ensure_predefined(&self) -> Result<(), StorageError> {
        let _guard = self.write_lock.lock().await;
        let snapshot = self.snapshot();
        let mut properties = Vec::new();
        let mut types = Vec::new();
        for entry in snapshot.partners() {
            let (p, t) = self.predefined_rows(entry.partner.partner_id, &entry.catalog);
            properties.extend(p);
            types.extend(t);
        }
        if properties.is_empty() && types.is_empty() {
            return Ok(());
        }
        self.store
            .insert_rows("event_properties", &properties)
            .await?;
        self.store.insert_rows("event_types", &types).await?;
        self.refresh().await
    }

    /// A partner's catalogue.
    pub fn catalog(&self, partner_id: &Uuid) -> Result<Arc<catalog::Catalog>, RegistryError> {
        Ok(self.partner(partner_id)?.catalog)
    }

    /// Adds a property to a partner's catalogue.
    pub async fn create_property(
        &self,
        partner_id: &Uuid,
        new: NewProperty,
    ) -> Result<PropertyRow, RegistryError> {
        catalog::property_code(&new.code)?;
        let name = checks::display_name(&new.name, "name")?;
        let ty = catalog::property_type(&new.ty)?;
        let _guard = self.write_lock.lock().await;
        self.refresh().await?;
        if self.catalog(partner_id)?.property(&new.code).is_some() {
            return Err(RegistryError::PropertyCodeTaken(new.code));
        }
        let now = now();
        let row = PropertyRow {
            partner_id: *partner_id,
            code: new.code,
            name,
            ty: ty.as_str().into(),
            predefined: false,
            retired: false,
            created_at: now,
            updated_at: now,
            version: self.next_version(),
            is_deleted: 0,
        };
        self.write_row("event_properties", &row).await?;
        Ok(row)
    }

    /// Renames, retires or brings back a property; its type never changes.
    pub async fn update_property(
        &self,
        partner_id: &Uuid,
        code: &str,
        patch: PropertyPatch,
    ) -> Result<PropertyRow, RegistryError> {
        let name = patch
            .name
            .as_deref()
            .map(|n| checks::display_name(n, "name"))
            .transpose()?;
        let ty = patch
            .ty
            .as_deref()
            .map(catalog::property_type)
            .transpose()?;
        let _guard = self.write_lock.lock().await;
        self.refresh().await?;
        let mut row = self
            .catalog(partner_id)?
            .property(code)
            .cloned()
            .ok_or(RegistryError::PropertyNotFound)?;
        if ty.is_some_and(|t| t.as_str() != row.ty) {
            return Err(RegistryError::PropertyTypeImmutable(row.code));
        }
        if let Some(name) = name {
            row.name = name;
        }
        if let Some(retired) = patch.retired {
            row.retired = retired;
        }
        row.updated_at = now();
        row.version = self.next_version();
        self.write_row("event_properties", &row).await?;
        Ok(row)
    }

    /// Adds an event type to a partner's catalogue.
    pub async fn create_event_type(
        &self,
        partner_id: &Uuid,
        new: NewEventType,
    ) -> Result<EventTypeRow, RegistryError> {
        catalog::event_type_code(&new.code)?;
        let name = checks::display_name(&new.name, "name")?;
        let kind = catalog::kind(new.kind.as_deref())?;
        let _guard = self.write_lock.lock().await;
        self.refresh().await?;
        let catalog = self.catalog(partner_id)?;
        if catalog.event_type(&new.code).is_some() {
            return Err(RegistryError::EventTypeCodeTaken(new.code));
        }
        let (property_codes, property_required) =
            catalog::type_properties(&catalog, &new.properties)?;
        let now = now();
        let row = EventTypeRow {
            partner_id: *partner_id,
            code: new.code,
            name,
            kind: kind.as_str().into(),
            property_codes,
            property_required,
            predefined: false,
            retired: false,
            created_at: now,
            updated_at: now,
            version: self.next_version(),
            is_deleted: 0,
        };
        self.write_row("event_types", &row).await?;
        Ok(row)
    }

    /// Changes an event type's name, kind, properties or retired flag.
    pub async fn update_event_type(
        &self,
        partner_id: &Uuid,
        code: &str,
        patch: EventTypePatch,
    ) -> Result<EventTypeRow, RegistryError> {
        let name = patch
            .name
            .as_deref()
            .map(|n| checks::display_name(n, "name"))
            .transpose()?;
        let kind = patch
            .kind
            .as_deref()
            .map(|k| catalog::kind(Some(k)))
            .transpose()?;
        let _guard = self.write_lock.lock().await;
        self.refresh().await?;
        let catalog = self.catalog(partner_id)?;
        let mut row = catalog
            .event_type(code)
            .map(|t| t.row.clone())
            .ok_or(RegistryError::EventTypeNotFound)?;
        if let Some(properties) = &patch.properties {
            let (codes, required) = catalog::type_properties(&catalog, properties)?;
            row.property_codes = codes;
            row.property_required = required;
        }
        if let Some(name) = name {
            row.name = name;
        }
        if let Some(kind) = kind {
            row.kind = kind.as_str().into();
        }
        if let Some(retired) = patch.retired {
            row.retired = retired;
        }
        row.updated_at = now();
        row.version = self.next_version();
        self.write_row("event_types", &row).await?;
        Ok(row)
    }
}
