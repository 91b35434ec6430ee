-- Eventline schema v9: running campaigns. Never edit this file once landed: add a new numbered
-- migration instead. Each statement ends with a semicolon at the end of a line.
-- campaign_runs: the engine's state per (partner, campaign, version, customer), one row version
-- per change (the highest revision wins; read with FINAL). One process writes a customer's
-- state (the `serve` that runs campaigns), so the read-then-write needs no compare-and-set.
-- wake_at is when the run's wait ends (NULL: it waits for nothing); the timer reads the runs that
-- wait at start-up through the minmax index, then keeps their due times in memory.

CREATE TABLE IF NOT EXISTS campaign_runs
(
    partner_id  UUID,
    campaign_id UUID,
    version     UInt32 COMMENT 'the campaign definition version the run belongs to',
    customer_id String,
    state       String COMMENT 'the engine state as JSON (eventline_campaigns::engine::State)',
    wake_at     Nullable(DateTime64(3, 'UTC')) COMMENT 'when on_due is to be called; NULL when the run waits for nothing',
    updated_at  DateTime64(3, 'UTC'),
    revision    UInt64 COMMENT 'write version: the highest of the key wins',
    INDEX wake_at_minmax wake_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY (partner_id, campaign_id, version, customer_id);

-- campaign_messages: the message log. A message is written `queued` before it is sent, under
-- its deterministic id (eventline_campaigns::message_id), so a replay after a crash finds it and
-- sends nothing new, and a retried send carries the same id (email Message-ID). One row version
-- per status change: queued, sent, failed (with the reason and the next attempt; retried with
-- backoff), skipped (not eligible: no email, consent withdrawn).

CREATE TABLE IF NOT EXISTS campaign_messages
(
    partner_id   UUID,
    message_id   UUID COMMENT 'UUIDv5 of (campaign, version, customer, triggering event, pass, step)',
    campaign_id  UUID,
    version      UInt32,
    customer_id  String,
    step         String COMMENT 'the step path, steps[0].wait.on_timeout[0]',
    channel      LowCardinality(String),
    recipient    String COMMENT 'the address it goes to',
    subject      String,
    body         String,
    status       LowCardinality(String) COMMENT 'queued | sent | failed | skipped',
    attempts     UInt32 COMMENT 'send attempts so far',
    error        String COMMENT 'the last failure, or why it was skipped',
    next_attempt_at DateTime64(3, 'UTC') COMMENT 'when a queued or failed message is to be tried',
    created_at   DateTime64(3, 'UTC'),
    updated_at   DateTime64(3, 'UTC'),
    revision     UInt64 COMMENT 'write version: the highest of the key wins'
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY (partner_id, message_id);
