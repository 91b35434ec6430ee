//! Size, count and time limits of wire format v1. Tracker and collector read the same numbers.

/// Largest accepted request body after decompression, in bytes.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 500;
/// Largest single event, as its JSON text, in bytes.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// Longest event name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest source code, in characters.
pub const MAX_SOURCE_CODE_CHARS: usize = 64;
/// Longest customer, anonymous or session id, in characters.
pub const MAX_ID_CHARS: usize = 128;
/// Most keys in one event's context.
pub const MAX_CONTEXT_KEYS: usize = 100;
/// Longest context key, in characters.
pub const MAX_CONTEXT_KEY_CHARS: usize = 64;
/// Longest context string value, in characters.
pub const MAX_CONTEXT_STRING_CHARS: usize = 2048;
/// Largest integer magnitude a context number may have and still be stored exactly as Float64.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;
/// How far `occurred_at` may be later than the batch's `sent_at` (clock jitter inside one device).
pub const MAX_FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;
/// Oldest accepted event, measured on the collector's clock after skew correction.
/// Long enough for a device that was offline for weeks, short enough to keep old partitions closed.
pub const MAX_EVENT_AGE_MS: i64 = 31 * 24 * 60 * 60 * 1000;
