-- Eventline schema v2: partner API keys, partner settings (retention), the admin audit log and
-- erasure jobs. Never edit this file once landed: add a new numbered migration instead.
-- Each statement ends with a semicolon at the end of a line.

-- Partner API keys for /v1/server/events. Keys created before this migration live on as
-- partners.api_key_sha256 until a row here with the same hash (e.g. its revocation) overrides it.
CREATE TABLE IF NOT EXISTS partner_api_keys
(
    partner_id  UUID,
    key_id      String COMMENT 'first 16 hex digits of key_sha256: names the key in the API and the audit log',
    key_sha256  String COMMENT 'hex SHA-256 of the key; the key itself is never stored',
    created_at  DateTime64(3, 'UTC'),
    revoked_at  Nullable(DateTime64(3, 'UTC')) COMMENT 'NULL while the key is active',
    version     UInt64,
    is_deleted  UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (partner_id, key_id);

-- Per-partner settings; a partner without a row has the defaults.
CREATE TABLE IF NOT EXISTS partner_settings
(
    partner_id      UUID,
    retention_days  Nullable(UInt32) COMMENT 'events older than this (by event_time) are deleted; NULL = kept',
    updated_at      DateTime64(3, 'UTC'),
    version         UInt64,
    is_deleted      UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY partner_id;

-- Every admin write: who (token id, never the token), what, on which partner and object.
CREATE TABLE IF NOT EXISTS admin_audit
(
    at          DateTime64(3, 'UTC'),
    actor       String COMMENT 'token id: first 12 hex digits of the SHA-256 of the admin token used',
    action      LowCardinality(String),
    partner_id  UUID COMMENT 'nil UUID when the action concerns no partner',
    target_id   String COMMENT 'id of the object acted on (source, key, job); never a customer id',
    details     String COMMENT 'small JSON object; never secrets or erased identifiers'
)
ENGINE = MergeTree
ORDER BY (at, partner_id);

-- Erasure jobs (one customer, or a whole deleted partner). Status rows are versioned; readers
-- take the latest with FINAL. The customer id is kept only as its SHA-256.
CREATE TABLE IF NOT EXISTS erasure_jobs
(
    job_id            UUID,
    partner_id        UUID,
    scope             LowCardinality(String) COMMENT 'customer | partner',
    subject_sha256    String COMMENT 'hex SHA-256 of the customer id; empty for scope partner',
    status            LowCardinality(String) COMMENT 'queued | running | done | failed',
    requested_by      String COMMENT 'admin token id',
    requested_at      DateTime64(3, 'UTC'),
    not_before        DateTime64(3, 'UTC') COMMENT 'the job waits until then (partner deletion waits for other instances to refresh)',
    started_at        Nullable(DateTime64(3, 'UTC')),
    finished_at       Nullable(DateTime64(3, 'UTC')),
    events_removed    UInt64,
    rejected_removed  UInt64,
    error             String,
    version           UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY job_id;
