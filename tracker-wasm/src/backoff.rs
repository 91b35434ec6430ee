//! What to do after a delivery attempt, and how long to wait before the next one.
//!
//! The grouping follows the collector's status classes (README "Answers"): network errors, 429
//! and 5xx are retried with exponential backoff and full jitter, honouring `Retry-After` as a
//! floor; 413 means split the batch; every other 4xx is permanent (drop and report).

/// First retry waits up to this long (ms).
pub const BASE_MS: f64 = 1_000.0;
/// No retry waits longer than this (ms), however many attempts failed.
pub const CAP_MS: f64 = 300_000.0;

use event_model::ErrorClass;

/// The class of an HTTP answer, from the tracker's point of view.
/// The discriminants are what `Core::op(10, status)` answers the JS wrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: the collector judged every event; apply the per-event results.
    Answered = 0,
    /// Network error (status 0), 408, 429, 5xx, or anything unexpected: keep and retry later.
    Retry = 1,
    /// 413 without per-event results: the body was too large, send halves.
    Split = 2,
    /// Any other 4xx: resending unchanged can never succeed; drop and report.
    Permanent = 3,
}

/// Classifies an HTTP status; `0` stands for a network error (fetch rejected, no answer).
/// Built on event-model's [`ErrorClass`] table, so the two cannot disagree: a status with a
/// class is split (413), retried (the retryable classes: 408, 429, 5xx) or dropped; of the
/// statuses without one, another 4xx is dropped too, and 0, 1xx, 3xx (fetch follows redirects,
/// so a 3xx is odd) or anything else unexpected is retried.
pub fn classify(status: u16) -> Verdict {
    match ErrorClass::from_http_status(status) {
        Some(ErrorClass::TooLarge) => Verdict::Split,
        Some(class) if class.is_retryable() => Verdict::Retry,
        Some(_) => Verdict::Permanent,
        None => match status {
            200..=299 => Verdict::Answered,
            400..=499 => Verdict::Permanent,
            _ => Verdict::Retry,
        },
    }
}

/// Delay before attempt number `attempts + 1` (ms): uniform in `[0, min(CAP, BASE·2^attempts))`
/// ("full jitter", which spreads a crowd of recovering clients), but never below `retry_after_ms`.
/// `random01` is a uniform random number in `[0, 1)`.
pub fn delay_ms(attempts: u32, random01: f64, retry_after_ms: Option<f64>) -> f64 {
    let ceiling = (BASE_MS * f64::from(1u32 << attempts.min(20))).min(CAP_MS);
    let jittered = ceiling * random01.clamp(0.0, 1.0);
    jittered.max(retry_after_ms.unwrap_or(0.0).min(CAP_MS))
}

/// Parses a `Retry-After` header in its delta-seconds form to ms. The HTTP-date form (which some
/// proxies send) is turned into seconds by the JS wrapper first (`Date.parse` reads all three
/// HTTP-date forms; npm/src/tracker.js), which costs far fewer bytes than a date parser here.
pub fn parse_retry_after(header: &str) -> Option<f64> {
    // HTTP's optional whitespace is ASCII (space, tab); `trim_ascii` is a plain byte loop.
    let secs = crate::wire::digits(header.trim_ascii(), 9)?;
    Some(secs as f64 * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_code_is_classified_as_event_models_error_class_table_says() {
        for status in 0..=u16::MAX {
            let expected = match ErrorClass::from_http_status(status) {
                Some(ErrorClass::TooLarge) => Verdict::Split,
                Some(class) if class.is_retryable() => Verdict::Retry,
                Some(_) => Verdict::Permanent,
                None if (200..300).contains(&status) => Verdict::Answered,
                None if (400..500).contains(&status) => Verdict::Permanent,
                None => Verdict::Retry,
            };
            assert_eq!(classify(status), expected, "{status}");
        }
    }

    #[test]
    fn every_error_code_is_retried_split_or_dropped_as_its_class_says() {
        use event_model::ErrorCode;
        for code in ErrorCode::ALL {
            let class = code.class();
            let expected = match class {
                ErrorClass::TooLarge => Verdict::Split,
                c if c.is_retryable() => Verdict::Retry,
                _ => Verdict::Permanent,
            };
            assert_eq!(
                classify(class.http_status()),
                expected,
                "{code} ({class:?})"
            );
        }
    }

    #[test]
    fn statuses_group_like_the_collector_documents() {
        for s in [200, 201, 204] {
            assert_eq!(classify(s), Verdict::Answered);
        }
        for s in [0, 429, 500, 502, 503, 504, 302] {
            assert_eq!(classify(s), Verdict::Retry, "{s}");
        }
        for s in [400, 401, 403, 404, 409, 415, 422, 499] {
            assert_eq!(classify(s), Verdict::Permanent, "{s}");
        }
        assert_eq!(classify(413), Verdict::Split);
    }

    #[test]
    fn the_ceiling_doubles_from_one_second_up_to_five_minutes() {
        assert_eq!(delay_ms(0, 0.999_999, None).round(), 1000.0);
        assert_eq!(delay_ms(1, 0.5, None), 1000.0);
        assert_eq!(delay_ms(3, 0.5, None), 4000.0);
        assert!(delay_ms(30, 0.999_999, None) <= CAP_MS);
        assert!(delay_ms(30, 0.999_999, None) > CAP_MS - 1.0);
        assert_eq!(delay_ms(5, 0.0, None), 0.0, "full jitter reaches zero");
    }

    #[test]
    fn retry_after_is_a_floor_and_capped() {
        assert_eq!(delay_ms(0, 0.5, Some(30_000.0)), 30_000.0);
        assert_eq!(delay_ms(10, 0.9, Some(1_000.0)), 0.9 * 300_000.0);
        assert_eq!(delay_ms(0, 0.1, Some(86_400_000.0)), CAP_MS);
    }

    #[test]
    fn retry_after_takes_seconds_only() {
        assert_eq!(parse_retry_after("5"), Some(5000.0));
        assert_eq!(parse_retry_after(" 120 "), Some(120_000.0));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after(""), None);
    }
}
