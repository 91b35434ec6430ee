-- Eventline schema v13: the parts of a push or Viber message besides its subject and body, so
-- a retry sends exactly what was rendered when the message was queued. Never edit this file
-- once landed: add a new numbered migration instead. Each statement ends with a semicolon at
-- the end of a line. (Number 12 is left to the parallel campaigns work; versions need not be
-- consecutive.)

ALTER TABLE campaign_messages
    ADD COLUMN IF NOT EXISTS image_url String DEFAULT '' COMMENT 'rendered image URL (push, Viber); empty when none' AFTER body,
    ADD COLUMN IF NOT EXISTS button_text String DEFAULT '' COMMENT 'rendered Viber button caption; empty when none' AFTER image_url,
    ADD COLUMN IF NOT EXISTS button_url String DEFAULT '' COMMENT 'rendered Viber button link; empty when none' AFTER button_text;
