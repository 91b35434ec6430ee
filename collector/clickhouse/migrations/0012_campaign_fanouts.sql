-- Eventline schema v12: system-event fan-outs. Never edit this file once landed: add a new
-- numbered migration instead. Each statement ends with a semicolon at the end of a line.
-- campaign_fanouts: one row per (campaign version, triggering system event), one row version per
-- page done (the highest revision wins; read with FINAL). A fan-out walks the customers its
-- filters select in customer_id order, a page at a time; after a page's messages and states are
-- written, `after` records its last customer id. A start resumes every fan-out still `running`
-- after that id, so a restart neither loses the customers not reached nor sends twice (the
-- customers of an unrecorded page are replayed: their states already hold the trigger, and the
-- message log refuses an id it holds). `event` is the triggering event as the engine reads it
-- (JSON), `clock_ms` the instant the selection's periods are counted from (fixed, so every page
-- of one fan-out selects from the same set).

CREATE TABLE IF NOT EXISTS campaign_fanouts
(
    partner_id  UUID,
    campaign_id UUID,
    version     UInt32 COMMENT 'the campaign definition version',
    event_id    String COMMENT 'the triggering system event',
    event       String COMMENT 'the triggering event as JSON: name, source, event_time_ms, context',
    clock_ms    Int64 COMMENT 'Unix ms the audience periods are counted from (the fan-out''s start)',
    after       String COMMENT 'the last customer id done (keyset cursor); empty before the first page',
    customers   UInt64 COMMENT 'customers selected so far',
    status      LowCardinality(String) COMMENT 'running | done',
    started_at  DateTime64(3, 'UTC'),
    updated_at  DateTime64(3, 'UTC'),
    revision    UInt64 COMMENT 'write version: the highest of the key wins'
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY (partner_id, campaign_id, version, event_id);
