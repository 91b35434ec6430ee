-- Eventline schema v14: scheduled campaigns. Never edit this file once landed: add a new numbered
-- migration instead. Each statement ends with a semicolon at the end of a line.
-- campaign_schedules: per scheduled campaign (every version), the last partner-local day whose
-- run has been done for every selected customer. The engine writes it after the day's last
-- customer, so a restart runs a due day that was not finished (late, once: each customer's run
-- state remembers the day, and message ids include it) and never a finished one again.

CREATE TABLE IF NOT EXISTS campaign_schedules
(
    partner_id  UUID,
    campaign_id UUID,
    done_day    Date32 COMMENT 'the last partner-local day run for every customer',
    updated_at  DateTime64(3, 'UTC'),
    revision    UInt64 COMMENT 'write version: the highest of the key wins'
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY (partner_id, campaign_id);
