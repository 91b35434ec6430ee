//! Partner-local calendar periods turned into UTC instants, with `now` injected.
//!
//! Every period becomes a half-open range of instants `[from, to)`. Calendar days are the
//! partner's: a day starts at local midnight (or, on a day whose midnight a daylight-saving jump
//! skips, at the first instant that exists), so a day may last 23 or 25 hours. ClickHouse never
//! sees a time zone: the compiler sends these instants as parameters, so the bundled jiff
//! database is the only time zone database a segment depends on.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::definition::CompareOp;
use crate::error::UnknownTimeZone;

/// A validated period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// From the start of the local day N−1 days ago until now (N ≥ 1).
    LastDays(u32),
    /// From the start of the first date to the end of the second (first ≤ second).
    Between(Date, Date),
    /// From the start of the date until now.
    Since(Date),
}

/// Instants `[from_ms, to_ms)`, Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First instant in.
    pub from_ms: Option<i64>,
    /// First instant out.
    pub to_ms: Option<i64>,
}

impl Range {
    /// Whether `ms` is in the range.
    pub fn contains(&self, ms: i64) -> bool {
        self.from_ms.is_none_or(|from| ms >= from) && self.to_ms.is_none_or(|to| ms < to)
    }
}

/// The partner's time zone and the instant a segment is computed at.
#[derive(Debug, Clone)]
pub struct Clock {
    zone: TimeZone,
    now_ms: i64,
}

impl Clock {
    /// A clock in the IANA time zone `zone` (such as `Europe/Moscow` or `UTC`) at `now_ms`.
    pub fn new(zone: &str, now_ms: i64) -> Result<Clock, UnknownTimeZone> {
        let zone = TimeZone::get(zone).map_err(|_| UnknownTimeZone(zone.to_string()))?;
        Ok(Clock { zone, now_ms })
    }

    /// Now, Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// The local calendar date of an instant.
    pub fn local_date(&self, ms: i64) -> Date {
        let ts = Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
        ts.to_zoned_datetime(self.zone.clone()).date()
    }

    /// Today, locally.
    pub fn today(&self) -> Date {
        self.local_date(self.now_ms)
    }

    /// The first instant of a local date.
    pub fn start_of(&self, date: Date) -> i64 {
        date.to_zoned_datetime(self.zone.clone())
            .and_then(|z| z.start_of_day())
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(i64::MIN)
    }

    /// The first instant of the local date `days` days before today (negative = after).
    fn start_of_days_ago(&self, days: i64) -> i64 {
        self.start_of(shift(self.today(), -days))
    }

    /// The instants of a period.
    pub fn range(&self, period: &Period) -> Range {
        let until_now = Some(self.now_ms + 1);
        match *period {
            Period::LastDays(n) => Range {
                from_ms: Some(self.start_of_days_ago(i64::from(n) - 1)),
                to_ms: until_now,
            },
            Period::Between(from, to) => Range {
                from_ms: Some(self.start_of(from)),
                to_ms: Some(self.start_of(shift(to, 1))),
            },
            Period::Since(from) => Range {
                from_ms: Some(self.start_of(from)),
                to_ms: until_now,
            },
        }
    }

    /// The instants the last event must fall in for "calendar days from the last event's local
    /// day to today `op` `days`". A last event after today counts as negative days.
    pub fn days_since_range(&self, op: CompareOp, days: u32) -> Range {
        let d = i64::from(days);
        // Day count k = today − date(last). date(last) = today − k, and
        // date(last) ≥ today − k ⟺ last ≥ start(today − k); date(last) ≤ today − k ⟺ last < start(today − k + 1).
        let at_most_days = |k: i64| Some(self.start_of_days_ago(k));
        let at_least_days = |k: i64| Some(self.start_of_days_ago(k - 1));
        match op {
            CompareOp::Gte => Range {
                from_ms: None,
                to_ms: at_least_days(d),
            },
            CompareOp::Gt => Range {
                from_ms: None,
                to_ms: at_least_days(d + 1),
            },
            CompareOp::Lte => Range {
                from_ms: at_most_days(d),
                to_ms: None,
            },
            CompareOp::Lt => Range {
                from_ms: at_most_days(d - 1),
                to_ms: None,
            },
            CompareOp::Eq => Range {
                from_ms: at_most_days(d),
                to_ms: at_least_days(d),
            },
        }
    }

    /// Whole local calendar days from the local date of `ms` to today (negative when `ms` is on
    /// a later day). Computed from dates, not from instants: the reference evaluator's way.
    pub fn days_since(&self, ms: i64) -> i64 {
        day_number(self.today()) - day_number(self.local_date(ms))
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn day_number(date: Date) -> i64 {
    let (y, m, d) = (
        i64::from(date.year()),
        i64::from(date.month()),
        i64::from(date.day()),
    );
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn shift(date: Date, days: i64) -> Date {
    date.checked_add(jiff::Span::new().days(days))
        .unwrap_or(date)
}

/// Parses a strict `YYYY-MM-DD` date.
pub fn parse_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |acc, c| acc * 10 + i64::from(c - b'0')))
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    Date::new(
        i16::try_from(y).ok()?,
        i8::try_from(m).ok()?,
        i8::try_from(d).ok()?,
    )
    .ok()
    .filter(|_| y >= 1900)
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_model::timestamp::parse_rfc3339_ms;

    fn ms(text: &str) -> i64 {
        parse_rfc3339_ms(text).unwrap()
    }

    fn date(text: &str) -> Date {
        parse_date(text).unwrap()
    }

    #[test]
    fn last_days_starts_at_local_midnight_n_minus_one_days_ago_and_ends_now() {
        let clock = Clock::new("Europe/Moscow", ms("2026-11-30T01:30:00Z")).unwrap();
        // 04:30 in Moscow on the 30th: today is the 30th, so 30 days reach back to the 1st.
        let range = clock.range(&Period::LastDays(30));
        assert_eq!(range.from_ms, Some(ms("2026-10-31T21:00:00Z")));
        assert_eq!(range.to_ms, Some(ms("2026-11-30T01:30:00.001Z")));
        assert_eq!(
            clock.range(&Period::LastDays(1)).from_ms,
            Some(ms("2026-11-29T21:00:00Z"))
        );
    }

    #[test]
    fn between_covers_both_local_days_whole() {
        let clock = Clock::new("America/New_York", ms("2026-12-15T12:00:00Z")).unwrap();
        let range = clock.range(&Period::Between(date("2026-11-01"), date("2026-11-30")));
        // Daylight saving ends on 2026-11-01 in New York: the 1st starts at UTC−4, the 30th ends at UTC−5.
        assert_eq!(range.from_ms, Some(ms("2026-11-01T04:00:00Z")));
        assert_eq!(range.to_ms, Some(ms("2026-12-01T05:00:00Z")));
        assert!(range.contains(ms("2026-12-01T04:59:59.999Z")));
        assert!(!range.contains(ms("2026-12-01T05:00:00Z")));
        assert!(!range.contains(ms("2026-11-01T03:59:59.999Z")));
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_at_its_first_instant() {
        // Santiago skipped 2026-09-06 00:00 (clocks went from 00:00 to 01:00).
        let clock = Clock::new("America/Santiago", ms("2026-09-10T12:00:00Z")).unwrap();
        let start = clock.start_of(date("2026-09-06"));
        assert_eq!(clock.local_date(start), date("2026-09-06"));
        assert_eq!(clock.local_date(start - 1), date("2026-09-05"));
    }

    #[test]
    fn days_since_ranges_agree_with_counting_dates_across_daylight_saving() {
        for zone in ["Europe/Moscow", "America/New_York", "Europe/Berlin", "UTC"] {
            // New York and Berlin change clocks in late March and early November 2026.
            let now = ms("2026-11-10T03:30:00Z");
            let clock = Clock::new(zone, now).unwrap();
            let mut t = ms("2026-10-01T00:00:00Z");
            while t < now + 2 * 86_400_000 {
                let days = clock.days_since(t);
                for op in [
                    CompareOp::Eq,
                    CompareOp::Gt,
                    CompareOp::Gte,
                    CompareOp::Lt,
                    CompareOp::Lte,
                ] {
                    for v in [0u32, 1, 9, 14, 30] {
                        let v64 = i64::from(v);
                        let expected = match op {
                            CompareOp::Eq => days == v64,
                            CompareOp::Gt => days > v64,
                            CompareOp::Gte => days >= v64,
                            CompareOp::Lt => days < v64,
                            CompareOp::Lte => days <= v64,
                        };
                        assert_eq!(
                            clock.days_since_range(op, v).contains(t),
                            expected,
                            "{zone} {op:?} {v} at {t}"
                        );
                    }
                }
                t += 37 * 60_000;
            }
        }
    }

    #[test]
    fn dates_are_strict_iso_days() {
        assert_eq!(date("2026-02-28").day(), 28);
        for bad in [
            "2026-02-30",
            "2026-2-01",
            "20260201",
            "2026-02-01T00:00",
            "",
            "0000-01-01",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_unknown_time_zone_is_refused_by_name() {
        let err = Clock::new("Mars/Olympus", 0).unwrap_err();
        assert!(err.to_string().contains("Mars/Olympus"));
    }
}
