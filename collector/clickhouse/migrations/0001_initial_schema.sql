-- Eventline schema v1. Never edit this file once landed: add a new numbered migration instead.
-- Each statement ends with a semicolon at the end of a line.

-- Partners (tenants). Mutable rows are versioned: readers take the latest version with FINAL.
CREATE TABLE IF NOT EXISTS partners
(
    partner_id      UUID,
    name            String,
    api_key_sha256  String COMMENT 'hex SHA-256 of the partner API key; the key itself is never stored',
    created_at      DateTime64(3, 'UTC'),
    version         UInt64 COMMENT 'monotonic write version; the highest wins',
    is_deleted      UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY partner_id;

-- Event sources of each partner: the site or app an event came from.
CREATE TABLE IF NOT EXISTS sources
(
    partner_id  UUID,
    source_id   UUID,
    code        String COMMENT 'what the tracker sends; unique per partner',
    name        String,
    domain      String COMMENT 'host that browser requests must come from; empty = no browser origin allowed',
    active      Bool,
    is_system   Bool COMMENT 'created with the partner (Online Store); cannot be deleted',
    created_at  DateTime64(3, 'UTC'),
    updated_at  DateTime64(3, 'UTC'),
    version     UInt64,
    is_deleted  UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (partner_id, source_id);

-- Accepted events. The sort key holds only fields a retry repeats unchanged, so if two
-- collector instances ever race on the same retry, merges collapse the copies.
CREATE TABLE IF NOT EXISTS events
(
    partner_id        UUID,
    event_id          UUID,
    kind              LowCardinality(String) COMMENT 'customer | system',
    name              LowCardinality(String),
    source            LowCardinality(String) COMMENT 'source code as sent',
    source_id         UUID COMMENT 'stable id of the source; codes can be renamed',
    customer_id       String COMMENT 'empty when not sent',
    anonymous_id      String COMMENT 'empty when not sent',
    session_id        String COMMENT 'empty when not sent',
    occurred_at       DateTime64(3, 'UTC') COMMENT 'as sent, on the client clock',
    sent_at           DateTime64(3, 'UTC') COMMENT 'batch send time, on the client clock',
    received_at       DateTime64(3, 'UTC') COMMENT 'collector clock',
    event_time        DateTime64(3, 'UTC') COMMENT 'skew-corrected: received_at - (sent_at - occurred_at)',
    context_strings   Map(String, String),
    context_numbers   Map(String, Float64),
    context_booleans  Map(String, Bool),
    ingest_path       LowCardinality(String) COMMENT 'client (browser/app) | server (partner API key)',
    user_agent        String,
    client_ip         String COMMENT 'empty when the collector is told not to keep it',
    INDEX idx_event_id event_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_customer customer_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_anonymous anonymous_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_event_time event_time TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (partner_id, name, customer_id, event_id);

-- Everything the collector refused, with the raw payload, so nothing is dropped silently.
CREATE TABLE IF NOT EXISTS rejected_events
(
    received_at     DateTime64(3, 'UTC'),
    partner_id      UUID COMMENT 'nil UUID when the partner could not be determined',
    source          String COMMENT 'source code as sent, when readable',
    event_id        String COMMENT 'as sent, when readable; may be malformed',
    event_index     Int32 COMMENT 'position in the batch; -1 when the whole request was rejected',
    reason_code     LowCardinality(String),
    reason_field    String,
    reason_message  String,
    payload         String COMMENT 'the event JSON, or the request body (first 64 KiB) for request-level errors',
    ingest_path     LowCardinality(String),
    user_agent      String,
    client_ip       String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (partner_id, received_at);
