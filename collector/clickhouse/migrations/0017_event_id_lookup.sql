-- Eventline schema v17: events by event id, for the sink's duplicate look-up. Never edit this
-- file once landed: add a new numbered migration instead. Each statement ends with a semicolon
-- at the end of a line.
--
-- Why: before each insert the sink asks which of the batch's event ids are already stored.
-- `events` is sorted by (partner_id, name, customer_id, event_id), and its bloom filter on
-- event_id skips nothing once a batch holds many ids (at 1 % false positives per id, a granule
-- passes for 1,000 ids almost surely): every look-up read every event of the partner within
-- the age limit. This projection holds only the event id and the row's place in its part
-- (`_part_offset`), sorted by (partner_id, event_id), so a look-up reads the few granules of the
-- projection around its ids and only the granules of `events` that hold a match (a new UUIDv7
-- falls after every stored one). ClickHouse keeps it with each part, whoever inserts.
-- Projections of a ReplacingMergeTree must say what merges and lightweight deletes (erasure,
-- retention) do to them: rebuild them.
ALTER TABLE events MODIFY SETTING
    deduplicate_merge_projection_mode = 'rebuild',
    lightweight_mutation_projection_mode = 'rebuild';

ALTER TABLE events
    ADD PROJECTION IF NOT EXISTS by_event_id (SELECT event_id, _part_offset ORDER BY partner_id, event_id);

ALTER TABLE events MATERIALIZE PROJECTION by_event_id SETTINGS mutations_sync = 2;
