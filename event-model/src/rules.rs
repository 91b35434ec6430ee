//! Field rules: the one place that says what a valid name, source code, id or context key is.
//!
//! Each check is pure and returns the error code only, so the tracker can use it without pulling
//! in message formatting; [`crate::Violation`] adds the field and the human message.

use crate::codes::ErrorCode;
use crate::limits::*;

fn char_count_exceeds(s: &str, max: usize) -> bool {
    // Cheap upper bound first: a string with at most `max` bytes has at most `max` chars.
    // Chars counted as non-continuation bytes: same result as `chars().count()` on a str, and
    // a plain loop (the browser tracker's wasm would otherwise carry core's unrolled counter).
    s.len() > max && s.bytes().filter(|b| b & 0xC0 != 0x80).count() > max
}

/// A context key ("field code"): ASCII letter or `_` first, then letters, digits or `_`.
///
/// Keys are later written as `$field_code` in campaign filters and as
/// `{{client.eventContext.field_code}}` in templates, where a hyphen would read as subtraction;
/// that is why the hyphen has its own code.
pub fn check_context_key(key: &str) -> Result<(), ErrorCode> {
    if key.contains('-') {
        return Err(ErrorCode::ContextKeyHyphen);
    }
    if char_count_exceeds(key, MAX_CONTEXT_KEY_CHARS) {
        return Err(ErrorCode::ContextKeyTooLong);
    }
    let mut bytes = key.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return Err(ErrorCode::InvalidContextKey),
    }
    if bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(())
    } else {
        Err(ErrorCode::InvalidContextKey)
    }
}

/// An event name: 1 to [`MAX_NAME_CHARS`] characters, no control characters, no surrounding
/// whitespace ("Order Completed", "product_viewed" and "Заказ оформлен" are all fine).
pub fn check_event_name(name: &str) -> Result<(), ErrorCode> {
    if char_count_exceeds(name, MAX_NAME_CHARS) {
        return Err(ErrorCode::NameTooLong);
    }
    if name.is_empty()
        || name.starts_with(char::is_whitespace)
        || name.ends_with(char::is_whitespace)
        || name.chars().any(char::is_control)
    {
        return Err(ErrorCode::InvalidName);
    }
    Ok(())
}

/// A source code, what the tracker sends to say which site or app an event came from:
/// 1 to [`MAX_SOURCE_CODE_CHARS`] ASCII letters, digits, `_`, `.` or `-`, starting with a letter or digit.
pub fn check_source_code(code: &str) -> Result<(), ErrorCode> {
    let bytes = code.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= MAX_SOURCE_CODE_CHARS
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ErrorCode::InvalidSourceCode)
    }
}

/// A customer, anonymous or session id: 1 to [`MAX_ID_CHARS`] characters, no control characters,
/// no surrounding whitespace (ids are compared byte for byte, so " 42" would be another customer).
pub fn check_id(id: &str) -> Result<(), ErrorCode> {
    if id.is_empty()
        || char_count_exceeds(id, MAX_ID_CHARS)
        || id.starts_with(char::is_whitespace)
        || id.ends_with(char::is_whitespace)
        || id.chars().any(char::is_control)
    {
        Err(ErrorCode::InvalidId)
    } else {
        Ok(())
    }
}

/// A context string value: at most [`MAX_CONTEXT_STRING_CHARS`] characters.
pub fn check_context_string(value: &str) -> Result<(), ErrorCode> {
    if char_count_exceeds(value, MAX_CONTEXT_STRING_CHARS) {
        Err(ErrorCode::ContextValueTooLong)
    } else {
        Ok(())
    }
}

/// A context number: finite, and if it is an integer, within ±2^53 so Float64 stores it exactly.
pub fn check_context_number(value: f64) -> Result<(), ErrorCode> {
    // Every f64 beyond 2^53 is an integer, so the magnitude check covers fractions too.
    if value.is_finite() && value.abs() <= MAX_SAFE_INTEGER {
        Ok(())
    } else {
        Err(ErrorCode::ContextNumberOutOfRange)
    }
}

/// Parses a UUID in its canonical 8-4-4-4-12 hex form; rejects the nil UUID.
pub fn parse_event_id(text: &str) -> Result<[u8; 16], ErrorCode> {
    let b = text.as_bytes();
    if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return Err(ErrorCode::InvalidEventId);
    }
    let mut out = [0u8; 16];
    let mut nibbles = b
        .iter()
        .enumerate()
        .filter(|(i, _)| !matches!(i, 8 | 13 | 18 | 23))
        .map(|(_, c)| (*c as char).to_digit(16));
    for byte in out.iter_mut() {
        match (nibbles.next().flatten(), nibbles.next().flatten()) {
            (Some(hi), Some(lo)) => *byte = (hi * 16 + lo) as u8,
            _ => return Err(ErrorCode::InvalidEventId),
        }
    }
    if out == [0u8; 16] {
        return Err(ErrorCode::InvalidEventId);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keys_are_identifiers() {
        for ok in ["a", "_", "category", "field_code", "Points2", "_x_1"] {
            assert_eq!(check_context_key(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            check_context_key("user-name"),
            Err(ErrorCode::ContextKeyHyphen)
        );
        assert_eq!(check_context_key("-"), Err(ErrorCode::ContextKeyHyphen));
        for bad in ["", "1abc", "a b", "a.b", "ключ", "a$", "$a"] {
            assert_eq!(
                check_context_key(bad),
                Err(ErrorCode::InvalidContextKey),
                "{bad}"
            );
        }
        assert_eq!(check_context_key(&"k".repeat(64)), Ok(()));
        assert_eq!(
            check_context_key(&"k".repeat(65)),
            Err(ErrorCode::ContextKeyTooLong)
        );
    }

    #[test]
    fn hyphen_wins_over_other_key_errors() {
        // The hyphen is the mistake users make most; name it even when the key is wrong twice.
        assert_eq!(check_context_key("1-a"), Err(ErrorCode::ContextKeyHyphen));
        assert_eq!(
            check_context_key(&"a-".repeat(40)),
            Err(ErrorCode::ContextKeyHyphen)
        );
    }

    #[test]
    fn event_names() {
        for ok in ["purchase", "Order Completed", "Заказ оформлен", "a:b/c-d"] {
            assert_eq!(check_event_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", " x", "x ", "a\nb", "\u{7}"] {
            assert_eq!(
                check_event_name(bad),
                Err(ErrorCode::InvalidName),
                "{bad:?}"
            );
        }
        assert_eq!(check_event_name(&"я".repeat(128)), Ok(()));
        assert_eq!(
            check_event_name(&"я".repeat(129)),
            Err(ErrorCode::NameTooLong)
        );
    }

    #[test]
    fn source_codes() {
        for ok in ["online_store", "mobile-app", "promo.site", "A1"] {
            assert_eq!(check_source_code(ok), Ok(()), "{ok}");
        }
        for bad in ["", "_x", "-x", "a b", "магазин", "a/b"] {
            assert_eq!(
                check_source_code(bad),
                Err(ErrorCode::InvalidSourceCode),
                "{bad}"
            );
        }
        assert_eq!(check_source_code(&"s".repeat(64)), Ok(()));
        assert_eq!(
            check_source_code(&"s".repeat(65)),
            Err(ErrorCode::InvalidSourceCode)
        );
    }

    #[test]
    fn ids() {
        for ok in ["42", "c-1", "user@example.com", "Иван"] {
            assert_eq!(check_id(ok), Ok(()), "{ok}");
        }
        for bad in ["", " 42", "42 ", "4\t2"] {
            assert_eq!(check_id(bad), Err(ErrorCode::InvalidId), "{bad:?}");
        }
        assert_eq!(check_id(&"x".repeat(128)), Ok(()));
        assert_eq!(check_id(&"x".repeat(129)), Err(ErrorCode::InvalidId));
    }

    #[test]
    fn context_values() {
        assert_eq!(check_context_string(&"v".repeat(2048)), Ok(()));
        assert_eq!(
            check_context_string(&"v".repeat(2049)),
            Err(ErrorCode::ContextValueTooLong)
        );
        assert_eq!(check_context_number(100.5), Ok(()));
        assert_eq!(check_context_number(-9_007_199_254_740_991.0), Ok(()));
        assert_eq!(
            check_context_number(9_007_199_254_740_993.0),
            Err(ErrorCode::ContextNumberOutOfRange)
        );
        assert_eq!(
            check_context_number(f64::NAN),
            Err(ErrorCode::ContextNumberOutOfRange)
        );
        assert_eq!(
            check_context_number(f64::INFINITY),
            Err(ErrorCode::ContextNumberOutOfRange)
        );
    }

    #[test]
    fn event_ids() {
        let id = parse_event_id("0192f0c6-3b7a-7cde-8f00-0123456789ab").unwrap();
        assert_eq!(id[0], 0x01);
        assert_eq!(id[15], 0xab);
        assert!(parse_event_id("0192F0C6-3B7A-7CDE-8F00-0123456789AB").is_ok());
        for bad in [
            "",
            "00000000-0000-0000-0000-000000000000",
            "0192f0c63b7a7cde8f000123456789ab",
            "0192f0c6-3b7a-7cde-8f00-0123456789ag",
            "0192f0c6-3b7a-7cde-8f00-0123456789abc",
            "0192f0c6+3b7a-7cde-8f00-0123456789ab",
        ] {
            assert_eq!(parse_event_id(bad), Err(ErrorCode::InvalidEventId), "{bad}");
        }
    }
}
