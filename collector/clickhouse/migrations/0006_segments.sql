-- Eventline schema v6: saved segments. Never edit this file once landed: add a new numbered
-- migration instead. Each statement ends with a semicolon at the end of a line.
-- Versioned rows like the registry's: the latest version of (partner_id, segment_id) wins, a
-- deletion is a version with is_deleted = 1; read with FINAL.

CREATE TABLE IF NOT EXISTS segments
(
    partner_id  UUID,
    segment_id  UUID,
    name        String COMMENT 'display name',
    definition  String COMMENT 'the definition JSON (docs/segments.md), validated against the catalogue when saved',
    created_at  DateTime64(3, 'UTC'),
    updated_at  DateTime64(3, 'UTC'),
    version     UInt64,
    is_deleted  UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (partner_id, segment_id);
