-- Eventline schema v10: events by string context value, for segments. Never edit this file once
-- landed: add a new numbered migration instead. Each statement ends with a semicolon at the end
-- of a line.
--
-- Why: a segment condition on a context value (`name = Bag`, with or without an event name)
-- otherwise reads the context map of every event of the partner (`events` is sorted by event
-- name and customer, not by context): 0.8-1.1 s at 10M events on two cores. Here each string
-- context entry of a customer event is one narrow row sorted by (key, value), so the condition
-- reads only the events that carry the value. The segment compiler reads this table when every
-- `where` predicate of a condition is `eq` / `in` on one string key (see docs/segments.md).
--
-- One row per (event, string key), without the event id: the compiler reads this table only
-- for "at least once" / "never" and for the time of the last matching event, which copies of a
-- retried event do not change; counts of events (`uniqExact(event_id)`) read `events`. The
-- sort key is every column, so merges collapse the copies of a retried event (and of events
-- alike in every column, which the table's uses cannot tell apart). Without the id the table
-- takes about 45 % of the bytes of `events` (10M events, 22M string entries: 230 MiB beside
-- 502 MiB; with it 674 MiB). System events carry no customer or anonymous id and are left out.
-- Retention and erasure delete rows here together with the events they come from.

CREATE TABLE IF NOT EXISTS event_context_strings
(
    partner_id    UUID,
    key           LowCardinality(String) COMMENT 'a context key of the event (context_strings)',
    value         String COMMENT 'its value',
    name          LowCardinality(String),
    source        LowCardinality(String),
    customer_id   String COMMENT 'empty when not sent',
    anonymous_id  String COMMENT 'empty when not sent',
    event_time    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (partner_id, key, value, name, source, customer_id, anonymous_id, event_time);

CREATE MATERIALIZED VIEW IF NOT EXISTS event_context_strings_mv TO event_context_strings AS
SELECT partner_id, key, value, name, source, customer_id, anonymous_id, event_time
FROM events
ARRAY JOIN mapKeys(context_strings) AS key, mapValues(context_strings) AS value
WHERE customer_id != '' OR anonymous_id != '';

-- The events stored before this migration. Events inserted while it runs may be indexed twice
-- (by the view and by this statement): the copies are harmless, as above.
INSERT INTO event_context_strings
SELECT partner_id, key, value, name, source, customer_id, anonymous_id, event_time
FROM events
ARRAY JOIN mapKeys(context_strings) AS key, mapValues(context_strings) AS value
WHERE customer_id != '' OR anonymous_id != '';
