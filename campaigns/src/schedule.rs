//! Scheduled campaigns: a partner-local time of day, and the instant of the next run.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use eventline_audience::UnknownTimeZone;

/// Parses a strict `HH:MM` (24 hours).
pub fn parse_time_of_day(text: &str) -> Option<Time> {
    let b = text.as_bytes();
    if b.len() != 5 || b[2] != b':' || !b[..2].iter().chain(&b[3..]).all(u8::is_ascii_digit) {
        return None;
    }
    let hour = (b[0] - b'0') * 10 + (b[1] - b'0');
    let minute = (b[3] - b'0') * 10 + (b[4] - b'0');
    Time::new(i8::try_from(hour).ok()?, i8::try_from(minute).ok()?, 0, 0).ok()
}

/// The first instant after `now_ms` at which the partner-local clock of `zone` reads `at`,
/// with the local date it falls on. On a day whose `at` a daylight-saving jump skips, the run
/// is at the first instant after the gap; on a day that repeats it, at the first of the two.
pub fn next_run(zone: &str, at: Time, now_ms: i64) -> Result<(i64, Date), UnknownTimeZone> {
    let tz = TimeZone::get(zone).map_err(|_| UnknownTimeZone(zone.to_string()))?;
    let now = Timestamp::from_millisecond(now_ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let mut date = now.to_zoned_datetime(tz.clone()).date();
    loop {
        let instant = date
            .to_datetime(at)
            .to_zoned_datetime(tz.clone())
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(i64::MAX);
        if instant > now_ms {
            return Ok((instant, date));
        }
        date = date.tomorrow().unwrap_or(date);
    }
}

/// Whether a customer's date (a birthday) falls on `day`, every year; 29 February falls on
/// 28 February in a year without one.
pub fn is_occasion(date: Date, day: Date) -> bool {
    if date.month() == 2 && date.day() == 29 && !day.in_leap_year() {
        return day.month() == 2 && day.day() == 28;
    }
    date.month() == day.month() && date.day() == day.day()
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_model::timestamp::parse_rfc3339_ms;

    fn ms(t: &str) -> i64 {
        parse_rfc3339_ms(t).unwrap()
    }

    #[test]
    fn times_of_day_are_strict_hh_mm() {
        assert_eq!(
            parse_time_of_day("10:00"),
            Some(Time::constant(10, 0, 0, 0))
        );
        for bad in ["24:00", "9:00", "10:60", "10-00", "10:00:00", ""] {
            assert_eq!(parse_time_of_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_next_run_is_the_next_local_ten_oclock_across_daylight_saving() {
        let ten = Time::constant(10, 0, 0, 0);
        // 09:00 in Moscow (UTC+3): today at 10:00.
        let (at, day) = next_run("Europe/Moscow", ten, ms("2026-11-30T06:00:00Z")).unwrap();
        assert_eq!(
            (at, day.to_string().as_str()),
            (ms("2026-11-30T07:00:00Z"), "2026-11-30")
        );
        // Exactly at 10:00: the next day.
        let (at, _) = next_run("Europe/Moscow", ten, ms("2026-11-30T07:00:00Z")).unwrap();
        assert_eq!(at, ms("2026-12-01T07:00:00Z"));
        // New York leaves daylight saving on 2026-11-01: 10:00 is 14:00Z before, 15:00Z after.
        let (at, _) = next_run("America/New_York", ten, ms("2026-10-31T15:00:00Z")).unwrap();
        assert_eq!(at, ms("2026-11-01T15:00:00Z"));
        assert!(next_run("Mars/Olympus", ten, 0).is_err());
    }

    #[test]
    fn a_birthday_falls_on_its_day_every_year_and_29_february_on_the_28th() {
        let d = |t: &str| -> Date { t.parse().unwrap() };
        assert!(is_occasion(d("1990-11-30"), d("2026-11-30")));
        assert!(!is_occasion(d("1990-11-30"), d("2026-11-29")));
        assert!(is_occasion(d("2000-02-29"), d("2026-02-28")));
        assert!(is_occasion(d("2000-02-29"), d("2028-02-29")));
        assert!(!is_occasion(d("2000-02-29"), d("2028-02-28")));
    }
}
