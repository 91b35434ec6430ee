-- Eventline schema v8: saved campaigns. Never edit this file once landed: add a new numbered
-- migration instead. Each statement ends with a semicolon at the end of a line.
-- One row per (campaign, definition version): every edit of the definition is a new version and
-- the old ones stay, because a run belongs to the version it started in (message ids include
-- it; docs/campaigns.md). A status change, or a deletion (is_deleted = 1), rewrites the latest
-- version's row with a higher revision. Read with FINAL; a campaign is its highest version, and
-- is deleted when that row is. is_deleted is not the engine's parameter on purpose: FINAL would
-- then hide the tombstone and show the version before it as the campaign.

CREATE TABLE IF NOT EXISTS campaigns
(
    partner_id  UUID,
    campaign_id UUID COMMENT 'UUID v7',
    version     UInt32 COMMENT 'definition version: 1 at creation, one more at each edit of the definition',
    name        String COMMENT 'the definition''s name, for listings',
    status      LowCardinality(String) COMMENT 'draft | active | paused',
    definition  String COMMENT 'the definition JSON (docs/campaigns.md), validated against the catalogue when saved; its status is the row''s',
    created_at  DateTime64(3, 'UTC') COMMENT 'when the campaign was created',
    saved_at    DateTime64(3, 'UTC') COMMENT 'when this definition version was saved',
    updated_at  DateTime64(3, 'UTC') COMMENT 'the last write of this row',
    revision    UInt64 COMMENT 'write version of the row: the highest of (partner_id, campaign_id, version) wins',
    is_deleted  UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY (partner_id, campaign_id, version);
