-- Eventline schema v4: what the audience needs beside the events. Never edit this file once
-- landed: add a new numbered migration instead. Each statement ends with a semicolon at the end
-- of a line.

-- Identity: an event carrying both a customer_id and an anonymous_id links them, so what a
-- visitor did before logging in counts for the customer afterwards. ClickHouse keeps this table
-- itself (the materialized view below), so every insert into events updates it, whoever wrote
-- it. An anonymous id belongs to the customer of its latest linking event.
CREATE TABLE IF NOT EXISTS identity_links
(
    partner_id    UUID,
    anonymous_id  String,
    customer_id   String,
    linked_at     DateTime64(3, 'UTC') COMMENT 'event_time of the linking event; the latest wins'
)
ENGINE = ReplacingMergeTree(linked_at)
ORDER BY (partner_id, anonymous_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS identity_links_mv TO identity_links AS
SELECT partner_id, anonymous_id, customer_id, event_time AS linked_at
FROM events
WHERE customer_id != '' AND anonymous_id != '';

-- Links from events stored before this migration.
INSERT INTO identity_links
SELECT partner_id, anonymous_id, argMax(customer_id, event_time), max(event_time)
FROM events
WHERE customer_id != '' AND anonymous_id != ''
GROUP BY partner_id, anonymous_id;

-- Customer profiles, upserted by the partner's back end. Versioned rows: read with FINAL.
CREATE TABLE IF NOT EXISTS customer_profiles
(
    partner_id           UUID,
    customer_id          String,
    first_name           String,
    last_name            String,
    email                String,
    phone                String,
    birthday             Nullable(Date32) COMMENT 'Date32: birthdays before 1970 too',
    consents             Map(String, Bool) COMMENT 'per channel (email, sms, push, ...): may we contact them there',
    attributes_strings   Map(String, String),
    attributes_numbers   Map(String, Float64),
    attributes_booleans  Map(String, Bool),
    attributes_datetimes Map(String, DateTime64(3, 'UTC')),
    updated_at           DateTime64(3, 'UTC'),
    version              UInt64,
    is_deleted           UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (partner_id, customer_id);

-- Partner settings the audience needs: the partner's time zone (IANA name) decides calendar
-- days in segment periods; undeclared_events decides whether event names that no event type
-- declares are accepted or rejected at ingest.
ALTER TABLE partner_settings
    ADD COLUMN IF NOT EXISTS time_zone String DEFAULT 'UTC' COMMENT 'IANA time zone of the partner';
ALTER TABLE partner_settings
    ADD COLUMN IF NOT EXISTS undeclared_events LowCardinality(String) DEFAULT 'accept' COMMENT 'accept | reject';
