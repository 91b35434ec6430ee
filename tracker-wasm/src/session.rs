//! Sessions: a session id that rolls over after a stretch of inactivity, stored with its last
//! activity time so every tab and the next page load continue the same session.

use crate::wire::push_int;

/// Default inactivity after which the next event starts a new session (30 minutes).
pub const DEFAULT_TIMEOUT_MS: f64 = 30.0 * 60.0 * 1000.0;

/// A session as stored: `id|last_activity_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The session id (a UUID).
    pub id: String,
    /// Unix ms of the last event in it.
    pub last_activity_ms: f64,
}

impl Session {
    /// Parses the stored form; `None` for anything else.
    pub fn parse(text: &str) -> Option<Session> {
        let (id, ms) = crate::wire::cut(text, b'|')?;
        if id.is_empty() {
            return None;
        }
        let ms = crate::wire::digits(ms, 16)? as f64;
        Some(Session {
            id: id.into(),
            last_activity_ms: ms,
        })
    }

    /// The stored form.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.id.len() + 16);
        out.push_str(&self.id);
        out.push('|');
        push_int(&mut out, self.last_activity_ms as i64);
        out
    }

    /// Whether activity at `now_ms` belongs to a new session. A clock that jumped backwards
    /// keeps the session (the gap is unknown, not long).
    pub fn expired(&self, now_ms: f64, timeout_ms: f64) -> bool {
        now_ms - self.last_activity_ms > timeout_ms
    }
}

/// The session for activity at `now_ms`: the stored one, touched, if it is still live; otherwise
/// a new one with `fresh_id`. Returns the session and whether it is new.
pub fn touch(
    stored: Option<&str>,
    now_ms: f64,
    timeout_ms: f64,
    fresh_id: impl FnOnce() -> String,
) -> (Session, bool) {
    match stored.and_then(Session::parse) {
        Some(mut s) if !s.expired(now_ms, timeout_ms) => {
            s.last_activity_ms = s.last_activity_ms.max(now_ms);
            (s, false)
        }
        _ => (
            Session {
                id: fresh_id(),
                last_activity_ms: now_ms,
            },
            true,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: f64 = 1_795_600_800_000.0;

    #[test]
    fn stored_form_round_trips() {
        let s = Session {
            id: "0192f0c6-3b7a-4cde-8f00-0123456789ab".into(),
            last_activity_ms: T0,
        };
        assert_eq!(
            s.encode(),
            "0192f0c6-3b7a-4cde-8f00-0123456789ab|1795600800000"
        );
        assert_eq!(Session::parse(&s.encode()), Some(s));
        for bad in ["", "x", "|1", "x|", "x|1.5", "x|-1"] {
            assert_eq!(Session::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn activity_within_the_timeout_continues_the_session() {
        let stored = "s1|1795600800000";
        let (s, new) = touch(
            Some(stored),
            T0 + DEFAULT_TIMEOUT_MS,
            DEFAULT_TIMEOUT_MS,
            || "s2".into(),
        );
        assert!(!new);
        assert_eq!(s.id, "s1");
        assert_eq!(s.last_activity_ms, T0 + DEFAULT_TIMEOUT_MS);
    }

    #[test]
    fn thirty_minutes_of_inactivity_starts_a_new_session() {
        let stored = "s1|1795600800000";
        let (s, new) = touch(
            Some(stored),
            T0 + DEFAULT_TIMEOUT_MS + 1.0,
            DEFAULT_TIMEOUT_MS,
            || "s2".into(),
        );
        assert!(new);
        assert_eq!(s.id, "s2");
        let (s, new) = touch(None, T0, DEFAULT_TIMEOUT_MS, || "s3".into());
        assert!(new);
        assert_eq!(s.id, "s3");
    }

    #[test]
    fn a_clock_that_went_backwards_keeps_the_session_and_its_latest_time() {
        let (s, new) = touch(
            Some("s1|1795600800000"),
            T0 - 60_000.0,
            DEFAULT_TIMEOUT_MS,
            || "s2".into(),
        );
        assert!(!new);
        assert_eq!(s.last_activity_ms, T0);
    }
}
