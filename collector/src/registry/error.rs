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
    /// A time zone that is not an IANA name.
    #[error("`time_zone` must be an IANA time zone name such as `Europe/Prague` or `UTC`")]
    InvalidTimeZone,
    /// An `undeclared_events` value other than `accept` or `reject`.
    #[error("`undeclared_events` must be `accept` or `reject`")]
    InvalidUndeclaredEvents,
    /// A partner PATCH that sets nothing.
    #[error("send at least one of `retention_days`, `time_zone`, `undeclared_events`")]
    EmptyPatch,
    /// A property code breaks the context-key rule.
    #[error("`code`: {0}")]
    InvalidPropertyCode(String),
    /// An event type code breaks the event-name rule.
    #[error("{0}")]
    InvalidEventTypeCode(String),
    /// A property type other than string, number, boolean, datetime.
    #[error("`type` must be `string`, `number`, `boolean` or `datetime`")]
    InvalidPropertyType,
    /// An event kind other than customer or system.
    #[error("`kind` must be `customer` or `system`")]
    InvalidEventKind,
    /// An event type lists more properties than allowed.
    #[error("an event type may list at most {max} properties", max = super::catalog::MAX_TYPE_PROPERTIES)]
    TooManyTypeProperties,
    /// An event type lists a property the catalogue does not have.
    #[error("`properties[{index}]`: the catalogue has no property `{code}`; create it under event-properties first")]
    UnknownProperty {
        /// Position in the list.
        index: usize,
        /// The code.
        code: String,
    },
    /// An event type lists a retired property.
    #[error("`properties[{index}]`: property `{code}` is retired; bring it back with PATCH {{\"retired\": false}} first")]
    PropertyRetired {
        /// Position in the list.
        index: usize,
        /// The code.
        code: String,
    },
    /// An event type lists a property twice.
    #[error("`properties[{index}]`: property `{code}` is listed twice")]
    DuplicateProperty {
        /// Position in the list.
        index: usize,
        /// The code.
        code: String,
    },
    /// The catalogue already has a property with this code (retired ones included).
    #[error(
        "this partner already has a property with code `{0}` (retired properties keep their code)"
    )]
    PropertyCodeTaken(String),
    /// The catalogue already has an event type with this code (retired ones included).
    #[error("this partner already has an event type with code `{0}` (retired types keep their code; PATCH {{\"retired\": false}} brings one back)")]
    EventTypeCodeTaken(String),
    /// A property's type cannot change.
    #[error("the type of property `{0}` cannot change: stored events were checked against it; create a new property")]
    PropertyTypeImmutable(String),
    /// The partner has no property with this code.
    #[error("event property not found")]
    PropertyNotFound,
    /// The partner has no event type with this code.
    #[error("event type not found")]
    EventTypeNotFound,
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
