-- Eventline schema v16: fan-out progress and schedule progress per share of the customers.
-- Never edit this file once landed: add a new numbered migration instead. Each statement ends
-- with a semicolon at the end of a line.
--
-- Each campaign engine lane owns a share k/N of the customers (EVENTLINE_CAMPAIGN_SHARD and
-- EVENTLINE_CAMPAIGN_LANES; a customer is in share xxHash64(customer_id) % N) and fans out a
-- system event, or runs a schedule's day, to its own customers only; so each share keeps its
-- own progress row, and the share joins the key. Added columns cannot have a default and be
-- in the sorting key, so they come in as 0 and the rows written before (all by the one engine
-- there was, share 0/1) are copied to 1/0 and the originals deleted.

ALTER TABLE campaign_fanouts ADD COLUMN IF NOT EXISTS shard_count UInt32 COMMENT 'N of the share k/N this progress is of', ADD COLUMN IF NOT EXISTS shard_index UInt32 COMMENT 'k of the share k/N', MODIFY ORDER BY (partner_id, campaign_id, version, event_id, shard_count, shard_index);

INSERT INTO campaign_fanouts (partner_id, campaign_id, version, event_id, event, clock_ms, after, customers, status, started_at, updated_at, revision, shard_count, shard_index) SELECT partner_id, campaign_id, version, event_id, event, clock_ms, after, customers, status, started_at, updated_at, revision, 1, 0 FROM campaign_fanouts FINAL WHERE shard_count = 0;

DELETE FROM campaign_fanouts WHERE shard_count = 0;

ALTER TABLE campaign_schedules ADD COLUMN IF NOT EXISTS shard_count UInt32 COMMENT 'N of the share k/N this progress is of', ADD COLUMN IF NOT EXISTS shard_index UInt32 COMMENT 'k of the share k/N', MODIFY ORDER BY (partner_id, campaign_id, shard_count, shard_index);

INSERT INTO campaign_schedules (partner_id, campaign_id, done_day, updated_at, revision, shard_count, shard_index) SELECT partner_id, campaign_id, done_day, updated_at, revision, 1, 0 FROM campaign_schedules FINAL WHERE shard_count = 0;

DELETE FROM campaign_schedules WHERE shard_count = 0;
