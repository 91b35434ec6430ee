//! What a registry operation can fail with; `http/admin.rs` maps it to HTTP in one place.

use crate::error::StorageError;

/// A registry failure.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A partner or source name is empty, too long or has control characters.
    #[error("`{field}` must be 1-{max} characters without control characters", max = super::MAX_DISPLAY_NAME_CHARS)]
    InvalidName {
        /// The field.
        field: &'static str,
    },
    /// A source code breaks the event-model rule.
    #[error("{0}")]
    InvalidCode(event_model::Violation),
    /// A source domain is not a host name.
    #[error("`domain` {0}")]
    InvalidDomain(&'static str),
    /// A retention period is out of range.
    #[error("`retention_days` must be null or a whole number of days from 1 to {max}", max = super::MAX_RETENTION_DAYS)]
    InvalidRetention,
    /// No live partner has this id.
    #[error("partner not found")]
    PartnerNotFound,
    /// The partner has no live source with this id.
    #[error("source not found")]
    SourceNotFound,
    /// The partner has no API key with this id.
    #[error("API key not found")]
    ApiKeyNotFound,
    /// Another source of the partner has this code.
    #[error("this partner already has a source with code `{0}`")]
    SourceCodeTaken(String),
    /// System sources can only be disabled.
    #[error("`{0}` is a system source: it cannot be deleted, but it can be disabled with PATCH {{\"active\": false}}")]
    SystemSourceUndeletable(String),
    /// ClickHouse failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}
