-- Eventline schema v7: the partner's known customers, kept by ClickHouse, and identity links by
-- customer. Never edit this file once landed: add a new numbered migration instead. Each
-- statement ends with a semicolon at the end of a line.
--
-- Why: every segment is taken against the partner's known customers (what `not`, `count eq 0`
-- and `count lte N` are complements of). Deriving them per query from all events joined with
-- identity_links read every event of the partner (3-11 s at 10M events); this table holds one
-- row per (partner, customer) and is read in milliseconds.
--
-- A customer is known once an event carries their customer_id (system events never carry one),
-- an identity link names them (the collector only writes links from such events; a link
-- inserted by hand counts too) or a profile version is written for them. They stay known until
-- erased (erasure deletes their row here), also after retention removed their events: like a
-- profile, a customer outlives their raw events.

CREATE TABLE IF NOT EXISTS known_customers
(
    partner_id     UUID,
    customer_id    String,
    first_seen_at  SimpleAggregateFunction(min, DateTime64(3, 'UTC')) COMMENT 'earliest event_time or profile update seen (the minimum once merged: read min(first_seen_at))'
)
ENGINE = AggregatingMergeTree
ORDER BY (partner_id, customer_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS known_customers_from_events_mv TO known_customers AS
SELECT partner_id, customer_id, event_time AS first_seen_at
FROM events
WHERE customer_id != '';

CREATE MATERIALIZED VIEW IF NOT EXISTS known_customers_from_links_mv TO known_customers AS
SELECT partner_id, customer_id, linked_at AS first_seen_at
FROM identity_links;

CREATE MATERIALIZED VIEW IF NOT EXISTS known_customers_from_profiles_mv TO known_customers AS
SELECT partner_id, customer_id, updated_at AS first_seen_at
FROM customer_profiles;

INSERT INTO known_customers
SELECT partner_id, customer_id, min(first_seen_at)
FROM
(
    SELECT partner_id, customer_id, event_time AS first_seen_at FROM events WHERE customer_id != ''
    UNION ALL
    SELECT partner_id, customer_id, linked_at AS first_seen_at FROM identity_links
    UNION ALL
    SELECT partner_id, customer_id, updated_at AS first_seen_at FROM customer_profiles
)
GROUP BY partner_id, customer_id;

-- A customer's card and history look up the anonymous ids linked to them by customer_id, which
-- is not identity_links' sort key: without this projection every link of the partner is read
-- (1.26M rows, 200-490 ms at 10M events; with it the look-up reads 16K rows in 20 ms, and the
-- projection takes 10 MiB). Projections of a
-- ReplacingMergeTree must say what merges and lightweight deletes (erasure) do to them:
-- rebuild them.
ALTER TABLE identity_links MODIFY SETTING
    deduplicate_merge_projection_mode = 'rebuild',
    lightweight_mutation_projection_mode = 'rebuild';

ALTER TABLE identity_links
    ADD PROJECTION IF NOT EXISTS by_customer (SELECT customer_id, _part_offset ORDER BY partner_id, customer_id);

ALTER TABLE identity_links MATERIALIZE PROJECTION by_customer SETTINGS mutations_sync = 2;
