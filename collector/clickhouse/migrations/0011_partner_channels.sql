-- Eventline schema v11: channel and gateway settings per partner. Never edit this file once
-- landed: add a new numbered migration instead. Each statement ends with a semicolon at the end
-- of a line. (Number 10 is left to the parallel campaigns work; versions need not be
-- consecutive.)
-- partner_channels: one row version per change of a partner's settings of one channel (the
-- highest revision wins; read with FINAL). `settings` is the channel's non-secret settings as
-- JSON (webhook: {"url"}; email: {"from"}); `secret` is the write-only secret (the webhook
-- signing secret), kept as given because signing needs it, and never returned by the API.
-- is_deleted = 1 is a removed setting. Erased with the partner.

CREATE TABLE IF NOT EXISTS partner_channels
(
    partner_id UUID,
    channel    LowCardinality(String) COMMENT 'webhook | email',
    settings   String COMMENT 'the non-secret settings as JSON',
    secret     String COMMENT 'write-only: the webhook signing secret; empty when none',
    updated_at DateTime64(3, 'UTC'),
    revision   UInt64 COMMENT 'write version: the highest of the key wins',
    is_deleted UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY (partner_id, channel);
