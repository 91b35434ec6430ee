//! Turning JavaScript-side input into checked wire values, with the collector's own rules and
//! codes (event_model::rules). The human messages for these codes are worded by the npm wrapper
//! (npm/src/tracker.js), so their text does not ship in the wasm.

use crate::wire::cat;
use event_model::limits::MAX_SAFE_INTEGER;
use event_model::{rules, ErrorCode, Violation};

use crate::wire::{push_int, Value};

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

/// A checked number context value; integers are written here, other numbers by `format`
/// (the browser's `String(n)` in the wasm build, so no float formatting code ships).
pub fn number_value(
    key: &str,
    n: f64,
    format: impl FnOnce(f64) -> String,
) -> Result<Value, Violation> {
    rules::check_context_number(n).map_err(|code| Violation::new(code, &context_field(key)))?;
    let text = if n == (n as i64) as f64 && n.abs() <= MAX_SAFE_INTEGER {
        let mut out = String::new();
        push_int(&mut out, n as i64);
        out
    } else {
        format(n)
    };
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
    fn numbers_are_checked_and_integers_written_without_the_formatter() {
        let never = |_: f64| -> String { panic!("integers need no formatter") };
        assert_eq!(
            number_value("n", 42.0, never).unwrap(),
            Value::Num("42".into())
        );
        assert_eq!(
            number_value("n", -0.0, never).unwrap(),
            Value::Num("0".into())
        );
        assert_eq!(
            number_value("n", 99.5, |n| n.to_string()).unwrap(),
            Value::Num("99.5".into())
        );
        let v = number_value("n", f64::NAN, never).unwrap_err();
        assert_eq!(
            (v.code, v.field.as_str()),
            (ErrorCode::ContextNumberOutOfRange, "context.n")
        );
        assert!(number_value("n", 2f64.powi(60), never).is_err());
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
