//! Source domains and browser origins: what a source may be configured with, and which
//! `Origin` headers it accepts.

/// Normalises and checks a source domain: a host name such as `shop.example.com` or
/// `localhost`, no scheme, port or path. Empty means "no browser origin is allowed".
pub fn normalize_domain(domain: &str) -> Result<String, &'static str> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() {
        return Ok(d);
    }
    if d.contains("://") || d.contains('/') || d.contains(':') {
        return Err("give a host name such as shop.example.com, without scheme, port or path");
    }
    let labels_ok = d.len() <= 253
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if labels_ok {
        Ok(d)
    } else {
        Err("a domain is dot-separated labels of ASCII letters, digits and hyphens")
    }
}

/// The host of an `Origin` header (`scheme://host[:port]`), lowercased; `None` for `null` or junk.
pub fn origin_host(origin: &str) -> Option<String> {
    let (_, rest) = origin.split_once("://")?;
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split_once(']')?.0
    } else {
        rest.split(':').next()?
    };
    (!host.is_empty() && !rest.contains('/')).then(|| host.to_ascii_lowercase())
}

/// Whether a browser at `origin` may send events for a source with `domain`:
/// the origin's host is the domain itself or one of its subdomains (`www.shop.example`).
pub fn origin_allowed(origin: &str, domain: &str) -> bool {
    if domain.is_empty() {
        return false;
    }
    match origin_host(origin) {
        Some(host) => {
            host == domain
                || (host.len() > domain.len()
                    && host.ends_with(domain)
                    && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalised_host_names() {
        assert_eq!(
            normalize_domain(" Shop.Example.COM. ").unwrap(),
            "shop.example.com"
        );
        assert_eq!(normalize_domain("localhost").unwrap(), "localhost");
        assert_eq!(normalize_domain("").unwrap(), "");
        for bad in [
            "https://shop.example",
            "shop.example/path",
            "shop.example:8080",
            "-a.com",
            "a..com",
            "ма.рф",
        ] {
            assert!(normalize_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins_match_the_domain_and_its_subdomains_only() {
        assert!(origin_allowed("https://shop.example", "shop.example"));
        assert!(origin_allowed(
            "http://www.shop.example:8443",
            "shop.example"
        ));
        assert!(origin_allowed("http://localhost:5173", "localhost"));
        assert!(!origin_allowed("https://evilshop.example", "shop.example"));
        assert!(!origin_allowed(
            "https://shop.example.evil.com",
            "shop.example"
        ));
        assert!(!origin_allowed("null", "shop.example"));
        assert!(!origin_allowed("https://shop.example", ""));
        // An IPv6 literal origin has its own host, which no configurable domain names.
        assert_eq!(origin_host("http://[::1]:8080").as_deref(), Some("::1"));
        assert!(!origin_allowed("http://[::1]:8080", "localhost"));
        assert!(normalize_domain("::1").is_err());
    }
}
