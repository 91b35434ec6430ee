-- Eventline schema v5: each partner's event catalogue. Never edit this file once landed: add a
-- new numbered migration instead. Each statement ends with a semicolon at the end of a line.
-- Both tables hold versioned rows like the registry's (the latest version of a key wins; read
-- with FINAL) and are served to ingest from the collector's in-memory registry snapshot.
-- Predefined rows of every partner are written by the collector at partner creation and at
-- start-up (for partners created before this migration), not here.

-- Properties: reusable typed context keys.
CREATE TABLE IF NOT EXISTS event_properties
(
    partner_id  UUID,
    code        String COMMENT 'a context key: letter or _ first, then letters, digits, _ (never a hyphen)',
    name        String COMMENT 'display name',
    type        LowCardinality(String) COMMENT 'string | number | boolean | datetime; never changes',
    predefined  Bool COMMENT 'written by the collector for every partner',
    retired     Bool COMMENT 'not offered for new event types; history stays',
    created_at  DateTime64(3, 'UTC'),
    updated_at  DateTime64(3, 'UTC'),
    version     UInt64,
    is_deleted  UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (partner_id, code);

-- Event types: an event whose name is the code of a live (not retired) type is checked
-- against the type's properties at ingest.
CREATE TABLE IF NOT EXISTS event_types
(
    partner_id           UUID,
    code                 String COMMENT 'the event name events of this type are sent with',
    name                 String COMMENT 'display name',
    kind                 LowCardinality(String) COMMENT 'customer | system',
    property_codes       Array(String) COMMENT 'codes of event_properties, in display order',
    property_required    Array(Bool) COMMENT 'parallel to property_codes: must every event carry it',
    predefined           Bool COMMENT 'written by the collector for every partner',
    retired              Bool COMMENT 'not checked at ingest, not offered for new segments; history stays',
    created_at           DateTime64(3, 'UTC'),
    updated_at           DateTime64(3, 'UTC'),
    version              UInt64,
    is_deleted           UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (partner_id, code);
