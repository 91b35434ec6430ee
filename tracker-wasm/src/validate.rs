//! Turning JavaScript-side input into checked wire values, with the collector's own rules and
//! codes (event_model::rules). The human messages for these codes are worded by the npm wrapper
//! (npm/src/tracker.js), so their text does not ship in the wasm.

use crate::wire::cat;
use event_model::{rules, ErrorCode, Violation};

use crate::wire::Value;

fn context_field(key: &str) -> String {
    cat(&["context.", key])
}

/// Checks a context key; the field is `context.<key>`, e.g. `context_key_hyphen` on `context.user-name`.
pub fn check_key(key: &str) -> Result<(), Violation> {
    rules::check_context_key(key).map_err(|code| Violation::new(code, &context_field(key)))
}

/// A checked string context value.
pub fn string_value(key: &str, s: String) -> Result<Value, Violation> {
    rules::check_context_string(&s).map_err(|code| Violation::new(code, &context_field(key)))?;
    Ok(Value::Str(s))
}

/// A checked number context value, written as `text`: the JSON number text of `n`, which the
/// wasm build takes from the browser's `String(n)` (plain digits for every integer the rules
/// allow, `-0` as `0`), so no integer or float formatting code ships.
pub fn number_value(key: &str, n: f64, text: String) -> Result<Value, Violation> {
    rules::check_context_number(n).map_err(|code| Violation::new(code, &context_field(key)))?;
    Ok(Value::Num(text))
}

/// The violation for null, arrays, objects and other non-scalar context values.
pub fn invalid_value(key: &str) -> Violation {
    Violation::new(ErrorCode::InvalidContextValue, &context_field(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fail_with_the_servers_code_and_field() {
        let v = check_key("user-name").unwrap_err();
        assert_eq!(v.code.as_str(), "context_key_hyphen");
        assert_eq!(v.field, "context.user-name");
        assert_eq!(
            check_key("1a").unwrap_err().code,
            ErrorCode::InvalidContextKey
        );
        assert!(check_key("user_name").is_ok());
    }

    #[test]
    fn numbers_are_checked_and_written_as_given() {
        assert_eq!(
            number_value("n", 99.5, "99.5".into()).unwrap(),
            Value::Num("99.5".into())
        );
        let v = number_value("n", f64::NAN, "NaN".into()).unwrap_err();
        assert_eq!(
            (v.code, v.field.as_str()),
            (ErrorCode::ContextNumberOutOfRange, "context.n")
        );
        assert!(number_value("n", 2f64.powi(60), "1152921504606846976".into()).is_err());
    }

    #[test]
    fn strings_are_limited() {
        assert!(string_value("s", "x".repeat(2048)).is_ok());
        assert_eq!(
            string_value("s", "x".repeat(2049)).unwrap_err().code,
            ErrorCode::ContextValueTooLong
        );
    }
}
