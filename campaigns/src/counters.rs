//! Caps on repeats ("at most N per day"): whether one more message fits.
//!
//! A step's `cap` counts that step's earlier messages to the customer (every run of the
//! campaign); a campaign's channel `counters` count every campaign's messages of the channel to
//! the customer. The collector reads the send times from the message log and asks here before
//! sending; a message a cap refuses is logged as skipped, not retried. Windows are rolling
//! (the `per` duration back from now), not calendar days.

use crate::definition::{Cap, ChannelCounter};

/// Whether a message may go at `now_ms`, given the send times of the messages the cap counts.
pub fn admits(cap: &Cap, sent_ms: &[i64], now_ms: i64) -> bool {
    let from = now_ms - cap.per.as_ms();
    let in_window = sent_ms
        .iter()
        .filter(|t| **t > from && **t <= now_ms)
        .count();
    in_window < cap.max as usize
}

/// [`admits`] for a channel counter.
pub fn counter_admits(counter: &ChannelCounter, sent_ms: &[i64], now_ms: i64) -> bool {
    admits(
        &Cap {
            max: counter.max,
            per: counter.per,
        },
        sent_ms,
        now_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::{Channel, Duration};

    const DAY: i64 = 86_400_000;

    fn per_day(max: u32) -> Cap {
        Cap {
            max,
            per: Duration {
                days: Some(1),
                ..Duration::default()
            },
        }
    }

    #[test]
    fn at_most_n_per_day_counts_the_last_24_hours() {
        let now = 10 * DAY;
        assert!(admits(&per_day(2), &[], now));
        assert!(admits(&per_day(2), &[now - 1000], now));
        assert!(!admits(&per_day(2), &[now - 1000, now - DAY + 1], now));
        // A message exactly a day old has left the window.
        assert!(admits(&per_day(2), &[now - 1000, now - DAY], now));
    }

    #[test]
    fn a_channel_counter_is_a_cap_across_campaigns() {
        let counter = ChannelCounter {
            channel: Channel::Sms,
            max: 1,
            per: per_day(1).per,
        };
        assert!(!counter_admits(&counter, &[5 * DAY - 10], 5 * DAY));
        assert!(counter_admits(&counter, &[3 * DAY], 5 * DAY));
    }
}
