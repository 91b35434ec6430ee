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
    let tz = zone_of(zone)?;
    let now = Timestamp::from_millisecond(now_ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let mut date = now.to_zoned_datetime(tz.clone()).date();
    loop {
        let instant = instant_in(&tz, date, at);
        if instant > now_ms {
            return Ok((instant, date));
        }
        date = date.tomorrow().unwrap_or(date);
    }
}

fn zone_of(zone: &str) -> Result<TimeZone, UnknownTimeZone> {
    TimeZone::get(zone).map_err(|_| UnknownTimeZone(zone.to_string()))
}

/// The instant (Unix ms) the partner-local clock reads `at` on `date`.
fn instant_in(tz: &TimeZone, date: Date, at: Time) -> i64 {
    date.to_datetime(at)
        .to_zoned_datetime(tz.clone())
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(i64::MAX)
}

/// How many past scheduled days a campaign catches up on (after an outage, or a pause): the
/// older ones are not run. A week covers any restart; a campaign paused for a month does not
/// wake up to a month of birthdays.
pub const MAX_CATCH_UP_DAYS: i64 = 7;

/// The scheduled days of a campaign that are due at `now_ms` and not run yet, oldest first,
/// each with the instant it was due: the days after `done` (the last day run) whose `at` has
/// passed, at most the last [`MAX_CATCH_UP_DAYS`] of them. `done` is [`first_done`] for a
/// campaign seen for the first time.
pub fn due_days(
    zone: &str,
    at: Time,
    done: Date,
    now_ms: i64,
) -> Result<Vec<(Date, i64)>, UnknownTimeZone> {
    let tz = zone_of(zone)?;
    let (_, next) = next_run(zone, at, now_ms)?;
    // `next` is the first day not due yet; the due ones lie before it.
    let oldest = next
        .checked_sub(jiff::Span::new().days(MAX_CATCH_UP_DAYS))
        .unwrap_or(next);
    let mut day = done.tomorrow().unwrap_or(done).max(oldest);
    let mut out = Vec::new();
    while day < next {
        out.push((day, instant_in(&tz, day, at)));
        day = day.tomorrow().unwrap_or(next);
    }
    Ok(out)
}

/// The "last day run" of a campaign seen for the first time at `now_ms`: the day before its
/// next run, so a campaign activated after today's time starts tomorrow, not late today.
pub fn first_done(zone: &str, at: Time, now_ms: i64) -> Result<Date, UnknownTimeZone> {
    let (_, next) = next_run(zone, at, now_ms)?;
    Ok(next.yesterday().unwrap_or(next))
}

/// The instant of the day after `done`: when the campaign is next due.
pub fn next_due_ms(zone: &str, at: Time, done: Date) -> Result<i64, UnknownTimeZone> {
    let tz = zone_of(zone)?;
    Ok(instant_in(&tz, done.tomorrow().unwrap_or(done), at))
}

/// The customers' dates whose occasion falls on `day`, as `month * 100 + day` (what the
/// collector's profile query compares): the day itself, and 29 February on 28 February of a
/// year without one.
pub fn occasion_keys(day: Date) -> Vec<u16> {
    let key = |month: i8, d: i8| month as u16 * 100 + d as u16;
    let mut keys = vec![key(day.month(), day.day())];
    if day.month() == 2 && day.day() == 28 && !day.in_leap_year() {
        keys.push(key(2, 29));
    }
    keys
}

/// Whether a customer's date (a birthday) falls on `day`, every year; 29 February falls on
/// 28 February in a year without one ([`occasion_keys`] is the same rule as query values).
pub fn is_occasion(date: Date, day: Date) -> bool {
    occasion_keys(day).contains(&(date.month() as u16 * 100 + date.day() as u16))
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

    #[test]
    fn due_days_are_the_passed_days_after_the_last_run_and_a_restart_catches_up_once() {
        let nine = Time::constant(9, 0, 0, 0);
        let d = |t: &str| -> Date { t.parse().unwrap() };
        let zone = "Europe/Berlin";
        // Seen first at 10:00 local on 1 March: today's 09:00 has passed, so it starts tomorrow.
        let first = first_done(zone, nine, ms("2026-03-01T09:00:00Z")).unwrap();
        assert_eq!(first, d("2026-03-01"));
        assert!(due_days(zone, nine, first, ms("2026-03-02T07:59:59Z"))
            .unwrap()
            .is_empty());
        // 09:00 in Berlin is 08:00Z in winter.
        assert_eq!(
            due_days(zone, nine, first, ms("2026-03-02T08:00:00Z")).unwrap(),
            vec![(d("2026-03-02"), ms("2026-03-02T08:00:00Z"))]
        );
        assert_eq!(
            next_due_ms(zone, nine, d("2026-03-02")).unwrap(),
            ms("2026-03-03T08:00:00Z")
        );
        // Down from the 2nd (run) to the 5th at noon: the 3rd, 4th and 5th, once each.
        let late = due_days(zone, nine, d("2026-03-02"), ms("2026-03-05T11:00:00Z")).unwrap();
        let days: Vec<String> = late.iter().map(|(d, _)| d.to_string()).collect();
        assert_eq!(days, ["2026-03-03", "2026-03-04", "2026-03-05"]);
        // Summer time: 09:00 in Berlin is 07:00Z.
        let summer = due_days(zone, nine, d("2026-06-01"), ms("2026-06-02T07:00:00Z")).unwrap();
        assert_eq!(summer, vec![(d("2026-06-02"), ms("2026-06-02T07:00:00Z"))]);
        // Paused for a month: only the last week is caught up on.
        let long = due_days(zone, nine, d("2026-01-01"), ms("2026-02-01T12:00:00Z")).unwrap();
        assert_eq!(long.len() as i64, MAX_CATCH_UP_DAYS);
        assert_eq!(long.last().unwrap().0, d("2026-02-01"));
    }

    #[test]
    fn occasion_keys_add_29_february_on_28_february_of_a_common_year() {
        let d = |t: &str| -> Date { t.parse().unwrap() };
        assert_eq!(occasion_keys(d("2026-11-30")), vec![1130]);
        assert_eq!(occasion_keys(d("2026-02-28")), vec![228, 229]);
        assert_eq!(occasion_keys(d("2028-02-28")), vec![228]);
        assert_eq!(occasion_keys(d("2028-02-29")), vec![229]);
    }
}
