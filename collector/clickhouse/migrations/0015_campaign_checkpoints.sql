-- Eventline schema v15: where each campaign engine share has read `events` up to. Never edit
-- this file once landed: add a new numbered migration instead. Each statement ends with a
-- semicolon at the end of a line.
--
-- An engine process (inside `serve`, or `eventline-collector campaigns`) owns the share k/N of
-- customers (EVENTLINE_CAMPAIGN_SHARD) and tails `events` by received_at. Its checkpoint says
-- that every event received before `received_before` that was visible when it was read has
-- been advanced; at start the share reads again from `received_before` minus the overlap
-- (EVENTLINE_CAMPAIGN_TAIL_OVERLAP_MS), so events stored but not advanced when a process was
-- killed are advanced then (replays are harmless: deterministic message ids, and a run
-- remembers its recent triggering events). One row version per save; the highest revision of
-- a share wins. A share of another N (after re-sharding) is not this one: a share without a
-- checkpoint of its own starts from the oldest checkpoint of any share.

CREATE TABLE IF NOT EXISTS campaign_checkpoints
(
    shard_count     UInt32 COMMENT 'N of the share k/N',
    shard_index     UInt32 COMMENT 'k of the share k/N',
    received_before DateTime64(3, 'UTC') COMMENT 'events received before this were advanced, up to the overlap',
    updated_at      DateTime64(3, 'UTC'),
    revision        UInt64 COMMENT 'write version: the highest of the key wins'
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY (shard_count, shard_index);

-- The tail reads `events` by received_at, which is not in its sort key: a minmax index per
-- granule lets it skip every part written before the window (parts hold contiguous ranges of
-- inserts, and merges join only neighbouring parts), instead of reading received_at of every
-- stored event at each poll.
ALTER TABLE events ADD INDEX IF NOT EXISTS idx_received_at received_at TYPE minmax GRANULARITY 1;

ALTER TABLE events MATERIALIZE INDEX idx_received_at;
