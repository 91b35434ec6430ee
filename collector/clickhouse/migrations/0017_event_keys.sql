-- Eventline schema v17: the keys of recent events, sorted by event id, for the duplicate look-up.
-- Never edit this file once landed: add a new numbered migration instead. Each statement ends
-- with a semicolon at the end of a line.
--
-- Before each insert the sink asks which events of the batch are stored already. `events` is
-- sorted by (partner_id, name, customer_id, event_id), so that question read every event of
-- the partner within the age window (the event_id bloom filter passes every granule once a
-- look-up holds a few hundred ids): a look-up cost grew with the table. `event_keys` holds one
-- narrow row per event, sorted by (partner_id, event_id) with the id as canonical text, whose
-- byte order is time order for UUID v7 ids (ClickHouse's own UUID order compares the second
-- half first): fresh v7 ids fall beyond every stored key and a look-up reads no granule at all;
-- other ids read at most one 256-row granule per id and part. The view writes it inside every
-- insert into `events`; the sink repairs it from `events` after an insert whose outcome it did
-- not learn (the view's part can fail after the events part committed). Rows expire a few days
-- after no event that old can be accepted (age limit 31 days), whole weekly parts at a time.

CREATE TABLE IF NOT EXISTS event_keys
(
    partner_id    UUID,
    event_id      String COMMENT 'canonical lowercase text of the event UUID',
    name          LowCardinality(String),
    customer_id   String COMMENT 'empty when not sent',
    anonymous_id  String COMMENT 'empty when not sent; erasure finds anonymous events by it',
    event_time    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toMonday(event_time)
ORDER BY (partner_id, event_id, name, customer_id)
TTL toDateTime(event_time) + INTERVAL 34 DAY
SETTINGS index_granularity = 256, ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_keys_mv TO event_keys AS
SELECT partner_id, toString(event_id) AS event_id, name, customer_id, anonymous_id, event_time
FROM events;

-- The keys of events stored before this migration (within the age window). Events inserted
-- while it runs may get two key rows (view and this statement): the look-up reads them as one.
INSERT INTO event_keys
SELECT partner_id, toString(event_id), name, customer_id, anonymous_id, event_time
FROM events
WHERE event_time >= now64(3) - INTERVAL 33 DAY;
