//! The registry of partners and their event sources: persisted as versioned rows in
//! ClickHouse, served to the ingest path from an in-memory snapshot.
//!
//! Ingest never queries ClickHouse for sources; it reads the snapshot, which admin writes
//! replace immediately and a background task refreshes so that changes made through another
//! collector instance arrive within the refresh interval.

pub mod origin;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{ApiError, StorageError};
pub use crate::store::rows::{PartnerRow, SourceRow};
use crate::store::Store;

/// Code, name and flags of the source every partner gets at creation.
pub const SYSTEM_SOURCE_CODE: &str = "online_store";
/// Display name of the system source.
pub const SYSTEM_SOURCE_NAME: &str = "Online Store";
/// Longest partner or source name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;

/// A partner and its sources, as the ingest path sees them.
#[derive(Debug, Clone)]
pub struct PartnerEntry {
    /// The partner.
    pub partner: PartnerRow,
    /// Its live sources, by code.
    pub sources: HashMap<String, SourceRow>,
}

/// An immutable view of the registry.
#[derive(Debug, Default)]
pub struct Snapshot {
    partners: HashMap<Uuid, PartnerEntry>,
    by_api_key: HashMap<String, Uuid>,
}

impl Snapshot {
    /// A snapshot of these rows (deleted ones included as given); the registry builds its own.
    pub fn build(partners: Vec<PartnerRow>, sources: Vec<SourceRow>) -> Snapshot {
        let mut snap = Snapshot::default();
        for partner in partners {
            snap.by_api_key
                .insert(partner.api_key_sha256.clone(), partner.partner_id);
            snap.partners.insert(
                partner.partner_id,
                PartnerEntry {
                    partner,
                    sources: HashMap::new(),
                },
            );
        }
        for source in sources {
            if let Some(entry) = snap.partners.get_mut(&source.partner_id) {
                entry.sources.insert(source.code.clone(), source);
            }
        }
        snap
    }

    /// A partner by id.
    pub fn partner(&self, id: &Uuid) -> Option<&PartnerEntry> {
        self.partners.get(id)
    }

    /// All partners.
    pub fn partners(&self) -> impl Iterator<Item = &PartnerEntry> {
        self.partners.values()
    }

    /// The partner an API key belongs to.
    pub fn partner_for_api_key(&self, key: &str) -> Option<Uuid> {
        self.by_api_key.get(&hash_api_key(key)).copied()
    }

    /// Whether any active source of any partner accepts browser requests from `origin`
    /// (used for CORS preflights, which carry no body and so name no source).
    pub fn any_source_allows_origin(&self, origin: &str) -> bool {
        self.partners.values().any(|p| {
            p.sources
                .values()
                .any(|s| s.active && origin::origin_allowed(origin, &s.domain))
        })
    }
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

fn check_display_name(name: &str, field: &'static str) -> Result<String, ApiError> {
    let trimmed = name.trim();
    if trimmed.is_empty()
        || trimmed.chars().count() > MAX_DISPLAY_NAME_CHARS
        || trimmed.chars().any(char::is_control)
    {
        return Err(ApiError::Invalid {
            code: "invalid_name",
            field,
            message: format!(
                "`{field}` must be 1-{MAX_DISPLAY_NAME_CHARS} characters without control characters"
            ),
        });
    }
    Ok(trimmed.to_string())
}

fn check_code(code: &str) -> Result<(), ApiError> {
    event_model::rules::check_source_code(code)
        .map_err(|c| ApiError::Ingest(event_model::Violation::new(c, "code")))
}

fn check_domain(domain: &str) -> Result<String, ApiError> {
    origin::normalize_domain(domain).map_err(|why| ApiError::Invalid {
        code: "invalid_domain",
        field: "domain",
        message: format!("`domain` {why}"),
    })
}

/// The registry: snapshot for readers, serialized writes to ClickHouse.
pub struct Registry {
    store: Store,
    snapshot: RwLock<Arc<Snapshot>>,
    write_lock: tokio::sync::Mutex<()>,
    last_version: AtomicU64,
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
        Ok(registry)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().expect("lock not poisoned").clone()
    }

    /// Re-reads partners and sources from ClickHouse.
    pub async fn refresh(&self) -> Result<(), StorageError> {
        let client = self.store.client();
        let partners: Vec<PartnerRow> = self
            .store
            .timed(
                client
                    .query("SELECT ?fields FROM partners FINAL WHERE is_deleted = 0")
                    .fetch_all(),
            )
            .await?;
        let sources: Vec<SourceRow> = self
            .store
            .timed(
                client
                    .query("SELECT ?fields FROM sources FINAL WHERE is_deleted = 0")
                    .fetch_all(),
            )
            .await?;
        let max_version = partners
            .iter()
            .map(|p| p.version)
            .chain(sources.iter().map(|s| s.version))
            .max()
            .unwrap_or(0);
        self.last_version.fetch_max(max_version, Ordering::SeqCst);
        *self.snapshot.write().expect("lock not poisoned") =
            Arc::new(Snapshot::build(partners, sources));
        Ok(())
    }

    /// A version higher than any seen: microseconds since the epoch, bumped past the last one.
    fn next_version(&self) -> u64 {
        let now = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as u64;
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

    /// Creates a partner with its system "Online Store" source; returns the API key once.
    pub async fn create_partner(
        &self,
        name: &str,
    ) -> Result<(PartnerRow, String, Vec<SourceRow>), ApiError> {
        let name = check_display_name(name, "name")?;
        let _guard = self.write_lock.lock().await;
        let now = OffsetDateTime::now_utc();
        let api_key = new_api_key();
        let partner = PartnerRow {
            partner_id: Uuid::now_v7(),
            name,
            api_key_sha256: hash_api_key(&api_key),
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
        // Source first: a partner row without its system source would be visible as incomplete.
        self.store
            .insert_rows("sources", std::slice::from_ref(&system))
            .await?;
        self.store
            .insert_rows("partners", std::slice::from_ref(&partner))
            .await?;
        self.refresh().await?;
        Ok((partner, api_key, vec![system]))
    }

    fn partner_entry(&self, partner_id: &Uuid) -> Result<PartnerEntry, ApiError> {
        self.snapshot()
            .partner(partner_id)
            .cloned()
            .ok_or(ApiError::NotFound("partner"))
    }

    /// Lists a partner's sources, system source first, then by creation.
    pub fn sources(&self, partner_id: &Uuid) -> Result<Vec<SourceRow>, ApiError> {
        let mut sources: Vec<SourceRow> = self
            .partner_entry(partner_id)?
            .sources
            .into_values()
            .collect();
        sources.sort_by_key(|s| (!s.is_system, s.created_at, s.source_id));
        Ok(sources)
    }

    /// One source of a partner.
    pub fn source(&self, partner_id: &Uuid, source_id: &Uuid) -> Result<SourceRow, ApiError> {
        self.partner_entry(partner_id)?
            .sources
            .into_values()
            .find(|s| s.source_id == *source_id)
            .ok_or(ApiError::NotFound("source"))
    }

    fn ensure_code_free(
        entry: &PartnerEntry,
        code: &str,
        except: Option<Uuid>,
    ) -> Result<(), ApiError> {
        match entry.sources.get(code) {
            Some(existing) if Some(existing.source_id) != except => Err(ApiError::Conflict {
                code: "source_code_taken",
                message: format!("this partner already has a source with code `{code}`"),
            }),
            _ => Ok(()),
        }
    }

    /// Adds a user source.
    pub async fn create_source(
        &self,
        partner_id: &Uuid,
        new: NewSource,
    ) -> Result<SourceRow, ApiError> {
        let name = check_display_name(&new.name, "name")?;
        check_code(&new.code)?;
        let domain = check_domain(&new.domain)?;
        let _guard = self.write_lock.lock().await;
        self.refresh().await?;
        let entry = self.partner_entry(partner_id)?;
        Self::ensure_code_free(&entry, &new.code, None)?;
        let now = OffsetDateTime::now_utc();
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
        self.store
            .insert_rows("sources", std::slice::from_ref(&row))
            .await?;
        self.refresh().await?;
        Ok(row)
    }

    /// Changes name, code, domain or the active toggle of a source (system sources too).
    pub async fn update_source(
        &self,
        partner_id: &Uuid,
        source_id: &Uuid,
        patch: SourcePatch,
    ) -> Result<SourceRow, ApiError> {
        let name = patch
            .name
            .as_deref()
            .map(|n| check_display_name(n, "name"))
            .transpose()?;
        if let Some(code) = &patch.code {
            check_code(code)?;
        }
        let domain = patch.domain.as_deref().map(check_domain).transpose()?;
        let _guard = self.write_lock.lock().await;
        self.refresh().await?;
        let entry = self.partner_entry(partner_id)?;
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
        row.updated_at = OffsetDateTime::now_utc();
        row.version = self.next_version();
        self.store
            .insert_rows("sources", std::slice::from_ref(&row))
            .await?;
        self.refresh().await?;
        Ok(row)
    }

    /// Removes a user source; system sources can only be switched off.
    pub async fn delete_source(&self, partner_id: &Uuid, source_id: &Uuid) -> Result<(), ApiError> {
        let _guard = self.write_lock.lock().await;
        self.refresh().await?;
        let mut row = self.source(partner_id, source_id)?;
        if row.is_system {
            return Err(ApiError::Conflict {
                code: "system_source_undeletable",
                message: format!(
                    "`{}` is a system source: it cannot be deleted, but it can be disabled with PATCH {{\"active\": false}}",
                    row.name
                ),
            });
        }
        row.is_deleted = 1;
        row.updated_at = OffsetDateTime::now_utc();
        row.version = self.next_version();
        self.store
            .insert_rows("sources", std::slice::from_ref(&row))
            .await?;
        self.refresh().await?;
        Ok(())
    }
}
