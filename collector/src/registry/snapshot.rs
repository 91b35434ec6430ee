//! The in-memory view of the registry that the ingest path reads: live partners with their
//! sources, API keys and settings.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use super::catalog::Catalog;
use super::{origin, UndeclaredEvents};
use crate::store::rows::{
    ApiKeyRow, EventTypeRow, PartnerRow, PartnerSettingsRow, PropertyRow, SourceRow,
};

/// A partner and what belongs to it, as the ingest path sees them.
#[derive(Debug, Clone)]
pub struct PartnerEntry {
    /// The partner.
    pub partner: PartnerRow,
    /// Its live sources, by code.
    pub sources: HashMap<String, SourceRow>,
    /// Its API keys, active and revoked, oldest first.
    pub api_keys: Vec<ApiKeyRow>,
    /// Events older than this many days are deleted; `None` keeps them.
    pub retention_days: Option<u32>,
    /// IANA time zone (default `UTC`).
    pub time_zone: String,
    /// What ingest does with an event no live event type declares (default accept).
    pub undeclared_events: UndeclaredEvents,
    /// Its event catalogue.
    pub catalog: Arc<Catalog>,
}

impl PartnerEntry {
    /// Its settings row as it stands, to change one setting without resetting the others.
    pub fn settings_row(&self) -> PartnerSettingsRow {
        PartnerSettingsRow {
            partner_id: self.partner.partner_id,
            retention_days: self.retention_days,
            time_zone: self.time_zone.clone(),
            undeclared_events: self.undeclared_events.as_str().into(),
            updated_at: self.partner.created_at,
            version: 0,
            is_deleted: 0,
        }
    }
}

/// Every row the registry is built from.
#[derive(Debug, Default)]
pub struct RegistryRows {
    /// Live partners.
    pub partners: Vec<PartnerRow>,
    /// Live sources.
    pub sources: Vec<SourceRow>,
    /// Rows of `partner_api_keys`.
    pub api_keys: Vec<ApiKeyRow>,
    /// Rows of `partner_settings`.
    pub settings: Vec<PartnerSettingsRow>,
    /// Live rows of `event_properties`.
    pub properties: Vec<PropertyRow>,
    /// Live rows of `event_types`.
    pub types: Vec<EventTypeRow>,
}

/// An immutable view of the registry.
#[derive(Debug, Default)]
pub struct Snapshot {
    partners: HashMap<Uuid, PartnerEntry>,
    by_api_key: HashMap<String, Uuid>,
}

/// The public id of a key with this hash.
pub fn key_id_of(key_sha256: &str) -> String {
    key_sha256.get(..16).unwrap_or(key_sha256).to_string()
}

impl Snapshot {
    /// A snapshot of these partners and sources only (each partner's legacy key included).
    pub fn build(partners: Vec<PartnerRow>, sources: Vec<SourceRow>) -> Snapshot {
        Snapshot::assemble(RegistryRows {
            partners,
            sources,
            ..RegistryRows::default()
        })
    }

    /// A snapshot of these rows. Rows of unknown partners are ignored. A partner's key from
    /// before `partner_api_keys` existed (`partners.api_key_sha256`) counts as one of its keys
    /// unless a `partner_api_keys` row with the same hash (its revocation) overrides it.
    pub fn assemble(rows: RegistryRows) -> Snapshot {
        let mut snap = Snapshot::default();
        for partner in rows.partners {
            snap.partners.insert(
                partner.partner_id,
                PartnerEntry {
                    partner,
                    sources: HashMap::new(),
                    api_keys: Vec::new(),
                    retention_days: None,
                    time_zone: super::DEFAULT_TIME_ZONE.into(),
                    undeclared_events: UndeclaredEvents::Accept,
                    catalog: Arc::default(),
                },
            );
        }
        let mut catalogs: HashMap<Uuid, Catalog> = HashMap::new();
        for row in rows.properties {
            if snap.partners.contains_key(&row.partner_id) {
                catalogs
                    .entry(row.partner_id)
                    .or_default()
                    .add_property(row);
            }
        }
        for row in rows.types {
            if snap.partners.contains_key(&row.partner_id) {
                catalogs.entry(row.partner_id).or_default().add_type(row);
            }
        }
        for (partner_id, catalog) in catalogs {
            if let Some(entry) = snap.partners.get_mut(&partner_id) {
                entry.catalog = Arc::new(catalog);
            }
        }
        for source in rows.sources {
            if let Some(entry) = snap.partners.get_mut(&source.partner_id) {
                entry.sources.insert(source.code.clone(), source);
            }
        }
        for key in rows.api_keys {
            if let Some(entry) = snap.partners.get_mut(&key.partner_id) {
                entry.api_keys.push(key);
            }
        }
        for settings in rows.settings {
            if let Some(entry) = snap.partners.get_mut(&settings.partner_id) {
                entry.retention_days = settings.retention_days;
                entry.time_zone = settings.time_zone;
                // An unknown spelling (a newer collector's) keeps the permissive default.
                entry.undeclared_events = UndeclaredEvents::parse(&settings.undeclared_events)
                    .unwrap_or(UndeclaredEvents::Accept);
            }
        }
        for entry in snap.partners.values_mut() {
            let legacy = &entry.partner.api_key_sha256;
            if !legacy.is_empty() && !entry.api_keys.iter().any(|k| &k.key_sha256 == legacy) {
                entry.api_keys.push(ApiKeyRow {
                    partner_id: entry.partner.partner_id,
                    key_id: key_id_of(legacy),
                    key_sha256: legacy.clone(),
                    created_at: entry.partner.created_at,
                    revoked_at: None,
                    version: 0,
                    is_deleted: 0,
                });
            }
            entry
                .api_keys
                .sort_by(|a, b| (a.created_at, &a.key_id).cmp(&(b.created_at, &b.key_id)));
            for key in entry.api_keys.iter().filter(|k| k.revoked_at.is_none()) {
                snap.by_api_key
                    .insert(key.key_sha256.clone(), entry.partner.partner_id);
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

    /// The partner an active API key belongs to.
    pub fn partner_for_api_key(&self, key: &str) -> Option<Uuid> {
        self.by_api_key.get(&super::hash_api_key(key)).copied()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::hash_api_key;
    use crate::store::rows::ms_to_datetime;

    fn partner(n: u128, key: &str) -> PartnerRow {
        PartnerRow {
            partner_id: Uuid::from_u128(n),
            name: format!("P{n}"),
            api_key_sha256: if key.is_empty() {
                String::new()
            } else {
                hash_api_key(key)
            },
            created_at: ms_to_datetime(1_000),
            version: 1,
            is_deleted: 0,
        }
    }

    fn source(partner: u128, code: &str, domain: &str, active: bool) -> SourceRow {
        SourceRow {
            partner_id: Uuid::from_u128(partner),
            source_id: Uuid::now_v7(),
            code: code.into(),
            name: code.into(),
            domain: domain.into(),
            active,
            is_system: false,
            created_at: ms_to_datetime(1_000),
            updated_at: ms_to_datetime(1_000),
            version: 1,
            is_deleted: 0,
        }
    }

    fn key(partner: u128, key: &str, revoked: bool) -> ApiKeyRow {
        ApiKeyRow {
            partner_id: Uuid::from_u128(partner),
            key_id: key_id_of(&hash_api_key(key)),
            key_sha256: hash_api_key(key),
            created_at: ms_to_datetime(2_000),
            revoked_at: revoked.then(|| ms_to_datetime(3_000)),
            version: 2,
            is_deleted: 0,
        }
    }

    #[test]
    fn sources_keys_and_settings_attach_to_their_live_partner_only() {
        let snap = Snapshot::assemble(RegistryRows {
            partners: vec![partner(1, ""), partner(2, "")],
            sources: vec![source(1, "web", "", true), source(9, "orphan", "", true)],
            api_keys: vec![key(1, "k1", false), key(9, "k9", false)],
            settings: vec![PartnerSettingsRow {
                partner_id: Uuid::from_u128(2),
                retention_days: Some(7),
                time_zone: "Europe/Prague".into(),
                undeclared_events: "reject".into(),
                updated_at: ms_to_datetime(1_000),
                version: 1,
                is_deleted: 0,
            }],
            ..RegistryRows::default()
        });
        let one = snap.partner(&Uuid::from_u128(1)).unwrap();
        assert_eq!(one.sources.keys().collect::<Vec<_>>(), ["web"]);
        assert_eq!(one.retention_days, None);
        assert_eq!(
            snap.partner(&Uuid::from_u128(2)).unwrap().retention_days,
            Some(7)
        );
        let two = snap.partner(&Uuid::from_u128(2)).unwrap();
        assert_eq!(
            (two.time_zone.as_str(), two.undeclared_events),
            ("Europe/Prague", UndeclaredEvents::Reject)
        );
        assert_eq!(one.time_zone, "UTC");
        assert_eq!(one.undeclared_events, UndeclaredEvents::Accept);
        assert_eq!(snap.partner_for_api_key("k1"), Some(Uuid::from_u128(1)));
        assert_eq!(snap.partner_for_api_key("k9"), None, "partner 9 is gone");
        assert_eq!(snap.partners().count(), 2);
    }

    #[test]
    fn a_legacy_key_works_until_a_key_row_revokes_it_and_revoked_keys_open_nothing() {
        let legacy = Snapshot::build(vec![partner(1, "old")], vec![]);
        assert_eq!(legacy.partner_for_api_key("old"), Some(Uuid::from_u128(1)));
        let entry = legacy.partner(&Uuid::from_u128(1)).unwrap();
        assert_eq!(entry.api_keys.len(), 1);
        assert_eq!(entry.api_keys[0].key_id, key_id_of(&hash_api_key("old")));

        let revoked = Snapshot::assemble(RegistryRows {
            partners: vec![partner(1, "old")],
            api_keys: vec![key(1, "old", true), key(1, "new", false)],
            ..RegistryRows::default()
        });
        assert_eq!(revoked.partner_for_api_key("old"), None);
        assert_eq!(revoked.partner_for_api_key("new"), Some(Uuid::from_u128(1)));
        assert_eq!(
            revoked.partner(&Uuid::from_u128(1)).unwrap().api_keys.len(),
            2,
            "the revoked legacy key is listed once"
        );
    }

    #[test]
    fn cors_admits_an_origin_only_through_an_active_source() {
        let snap = Snapshot::build(
            vec![partner(1, "")],
            vec![
                source(1, "web", "shop.example", true),
                source(1, "old", "old.example", false),
            ],
        );
        assert!(snap.any_source_allows_origin("https://www.shop.example"));
        assert!(!snap.any_source_allows_origin("https://old.example"));
        assert!(!snap.any_source_allows_origin("https://other.example"));
    }
}
