//! The rules admin input must follow: names, source codes, domains, retention periods.

use super::{origin, RegistryError, MAX_DISPLAY_NAME_CHARS, MAX_RETENTION_DAYS};

/// A display name, trimmed: 1 to [`MAX_DISPLAY_NAME_CHARS`] characters, no control characters.
pub fn display_name(name: &str, field: &'static str) -> Result<String, RegistryError> {
    let trimmed = name.trim();
    if trimmed.is_empty()
        || trimmed.chars().count() > MAX_DISPLAY_NAME_CHARS
        || trimmed.chars().any(char::is_control)
    {
        return Err(RegistryError::InvalidName { field });
    }
    Ok(trimmed.to_string())
}

/// A source code, by the event-model rule the tracker is held to.
pub fn code(code: &str) -> Result<(), RegistryError> {
    event_model::rules::check_source_code(code)
        .map_err(|c| RegistryError::InvalidCode(event_model::Violation::new(c, "code")))
}

/// A source domain, normalised (see [`origin::normalize_domain`]).
pub fn domain(domain: &str) -> Result<String, RegistryError> {
    origin::normalize_domain(domain).map_err(RegistryError::InvalidDomain)
}

/// A retention period: `None` (keep forever) or 1 to [`MAX_RETENTION_DAYS`] days.
pub fn retention_days(days: Option<u32>) -> Result<Option<u32>, RegistryError> {
    match days {
        Some(d) if d == 0 || d > MAX_RETENTION_DAYS => Err(RegistryError::InvalidRetention),
        other => Ok(other),
    }
}

/// An IANA time zone name that the bundled time-zone database knows (`UTC`, `Europe/Prague`).
pub fn time_zone(name: &str) -> Result<String, RegistryError> {
    if name.is_empty() || name.len() > 64 {
        return Err(RegistryError::InvalidTimeZone);
    }
    jiff::tz::TimeZone::get(name)
        .map(|_| name.to_string())
        .map_err(|_| RegistryError::InvalidTimeZone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(display_name("  Acme  ", "name").unwrap(), "Acme");
        assert_eq!(
            display_name(&"é".repeat(MAX_DISPLAY_NAME_CHARS), "name")
                .unwrap()
                .chars()
                .count(),
            MAX_DISPLAY_NAME_CHARS
        );
        for bad in [
            "",
            "   ",
            "a\nb",
            "tab\there",
            &"x".repeat(MAX_DISPLAY_NAME_CHARS + 1),
        ] {
            assert!(
                matches!(
                    display_name(bad, "name"),
                    Err(RegistryError::InvalidName { field: "name" })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn codes_follow_the_tracker_rule() {
        assert!(code("mobile_app").is_ok());
        for bad in ["", "bad code", "_lead", "a/b"] {
            match code(bad) {
                Err(RegistryError::InvalidCode(v)) => {
                    assert_eq!(v.code.as_str(), "invalid_source_code", "{bad:?}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn domains_are_normalised_and_junk_is_refused() {
        assert_eq!(domain(" Shop.Example. ").unwrap(), "shop.example");
        assert_eq!(domain("").unwrap(), "");
        assert!(matches!(
            domain("https://shop.example"),
            Err(RegistryError::InvalidDomain(_))
        ));
    }

    #[test]
    fn time_zones_are_iana_names() {
        for ok in ["UTC", "Europe/Prague", "America/New_York", "Asia/Kolkata"] {
            assert_eq!(time_zone(ok).unwrap(), ok);
        }
        for bad in ["", "Mars/Olympus", "+02:00", "Europe/Prague/x"] {
            assert!(
                matches!(time_zone(bad), Err(RegistryError::InvalidTimeZone)),
                "{bad}"
            );
        }
    }

    #[test]
    fn retention_is_none_or_one_day_to_the_maximum() {
        assert_eq!(retention_days(None).unwrap(), None);
        assert_eq!(retention_days(Some(1)).unwrap(), Some(1));
        assert_eq!(
            retention_days(Some(MAX_RETENTION_DAYS)).unwrap(),
            Some(MAX_RETENTION_DAYS)
        );
        for bad in [0, MAX_RETENTION_DAYS + 1] {
            assert!(matches!(
                retention_days(Some(bad)),
                Err(RegistryError::InvalidRetention)
            ));
        }
    }
}
