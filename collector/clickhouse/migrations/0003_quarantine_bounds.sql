-- Bounds on rejected_events: payloads are stored cut to 8 KiB, so the size as received is
-- recorded beside them. Rows written before this migration get their stored length.
-- The table's TTL is not set here: it comes from EVENTLINE_REJECTED_TTL_DAYS at start-up.
ALTER TABLE rejected_events
    ADD COLUMN IF NOT EXISTS payload_bytes UInt32 DEFAULT length(payload)
    COMMENT 'byte size of the event JSON or body as received; payload holds at most its first 8 KiB'
    AFTER payload;
ALTER TABLE rejected_events
    COMMENT COLUMN payload 'the event JSON, or the request body for request-level errors, cut to its first 8 KiB';
