//! The retention of `rejected_events`, set from `EVENTLINE_REJECTED_TTL_DAYS` at start-up.
//!
//! `ALTER TABLE … MODIFY TTL` rewrites every part of the table to apply the new rule, so it runs
//! only when the table's TTL differs from the setting, not at every start.

use crate::error::StorageError;
use crate::store::Store;

/// The day count of a `rejected_events` TTL as ClickHouse prints it in `engine_full`
/// (`… TTL received_at + toIntervalDay(30) …`, or `toIntervalDay(_CAST(30, 'UInt32'))` when it
/// was set with a bound parameter); `None` when the table has no such TTL.
pub fn ttl_days_in(engine_full: &str) -> Option<u32> {
    let ttl = &engine_full[engine_full.find(" TTL ")? + 5..];
    let interval = &ttl[ttl.find("toIntervalDay(")? + "toIntervalDay(".len()..];
    let digits = interval.trim_start_matches(|c: char| !c.is_ascii_digit() && c != ')');
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// Makes the table's TTL `days` days after `received_at` (0: no TTL). Returns whether it
/// changed anything.
pub async fn apply(store: &Store, days: u32) -> Result<bool, StorageError> {
    let client = store.client();
    let engine: String = store
        .timed(
            client
                .query(
                    "SELECT engine_full FROM system.tables \
                     WHERE database = currentDatabase() AND name = 'rejected_events'",
                )
                .fetch_one(),
        )
        .await?;
    let current = ttl_days_in(&engine);
    let has_ttl = engine.contains(" TTL ");
    let statement = match (days, current) {
        (0, _) if !has_ttl => return Ok(false),
        (0, _) => client.query("ALTER TABLE rejected_events REMOVE TTL"),
        (days, Some(now)) if now == days => return Ok(false),
        // The day count is a bound parameter; ClickHouse stores it as `_CAST(days, 'UInt32')`.
        (days, _) => client
            .query(
                "ALTER TABLE rejected_events MODIFY TTL received_at + toIntervalDay({days:UInt32})",
            )
            .param("days", days),
    };
    store.timed(statement.execute()).await?;
    tracing::info!(days, "rejected_events TTL set (0 = none)");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_count_is_read_back_from_either_spelling() {
        let plain = "MergeTree PARTITION BY toYYYYMM(received_at) ORDER BY (partner_id, received_at) TTL received_at + toIntervalDay(30) SETTINGS index_granularity = 8192";
        assert_eq!(ttl_days_in(plain), Some(30));
        let bound = "MergeTree ORDER BY received_at TTL received_at + toIntervalDay(_CAST(7, 'UInt32')) SETTINGS index_granularity = 8192";
        assert_eq!(ttl_days_in(bound), Some(7));
        assert_eq!(
            ttl_days_in("MergeTree ORDER BY x SETTINGS index_granularity = 8192"),
            None
        );
        assert_eq!(
            ttl_days_in("MergeTree ORDER BY x TTL received_at + toIntervalHour(3)"),
            None
        );
    }
}
