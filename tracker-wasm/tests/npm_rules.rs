//! The npm wrapper's rule words and numbers (npm/src/rules.js) are generated from event-model
//! here, so the tracker's messages are the collector's and cannot drift from them: this test
//! fails when the committed file differs from what event-model says now. After changing the
//! rules, their words or the codes the tracker reports, regenerate it with
//! `EVENTLINE_BLESS=1 cargo test -p eventline-tracker --test npm_rules`.

#![cfg(not(target_arch = "wasm32"))]

use event_model::limits::{MAX_CONTEXT_KEYS, MAX_CONTEXT_STRING_CHARS};
use event_model::{ErrorCode, Violation};

/// Every event-model code the tracker reports: the core's (tracker-wasm/src: option checks,
/// context entries, events, identify) and the ones the wrapper raises itself (`invalid_name`
/// for a name that is not a string, `invalid_context` for a context that is not an object),
/// with any words the tracker adds after event-model's (`detail`).
const TRACKER_CODES: &[(ErrorCode, &str)] = &[
    (ErrorCode::UnknownPartner, "not a UUID"),
    (ErrorCode::InvalidSourceCode, ""),
    (ErrorCode::InvalidName, ""),
    (ErrorCode::NameTooLong, ""),
    (ErrorCode::InvalidId, ""),
    (
        ErrorCode::InvalidTimestamp,
        "the tracker takes a finite number of Unix milliseconds",
    ),
    (ErrorCode::EventTooLarge, ""),
    (ErrorCode::InvalidContext, ""),
    (ErrorCode::TooManyContextKeys, ""),
    (ErrorCode::ContextKeyHyphen, ""),
    (ErrorCode::InvalidContextKey, ""),
    (ErrorCode::ContextKeyTooLong, ""),
    (ErrorCode::InvalidContextValue, ""),
    (ErrorCode::ContextValueTooLong, ""),
    (ErrorCode::ContextNumberOutOfRange, ""),
];

/// The codes the wrapper names in its own source, exported as constants.
const RAISED_BY_THE_WRAPPER: &[ErrorCode] = &[ErrorCode::InvalidName, ErrorCode::InvalidContext];

/// A JS string literal (single quotes) for text made of printable ASCII, `\x01` and `\x02`.
fn js_string(text: &str) -> String {
    let mut out = String::from("'");
    for c in text.chars() {
        match c {
            '\'' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\u{1}' => out.push_str("\\x01"),
            '\u{2}' => out.push_str("\\x02"),
            ' '..='~' => out.push(c),
            other => out.push_str(&format!("\\u{{{:x}}}", other as u32)),
        }
    }
    out.push('\'');
    out
}

/// event-model's message for `code` with the field as `\x01` (a context key: the key alone)
/// and, in the hyphen message's example, the key with `_` for `-` as `\x02`.
fn template(code: ErrorCode, detail: &str) -> String {
    let hyphen = code == ErrorCode::ContextKeyHyphen;
    let field = if hyphen { "context.\u{1}-" } else { "\u{1}" };
    let mut violation = Violation::new(code, field);
    if !detail.is_empty() {
        violation = violation.with_detail(detail);
    }
    let text = violation.message();
    if hyphen {
        text.replace("\u{1}-", "\u{1}").replace("\u{1}_", "\u{2}")
    } else {
        text
    }
}

fn generate() -> String {
    let mut js = String::from(
        "// GENERATED from event-model by tracker-wasm/tests/npm_rules.rs: do not edit. After changing\n\
         // the rules or their words: EVENTLINE_BLESS=1 cargo test -p eventline-tracker --test npm_rules\n\
         //\n\
         // The limits the wrapper applies itself (event_model::limits); CODES: the codes the\n\
         // tracker reports by their number (ErrorCode as u8, what the core answers); MESSAGES: their\n\
         // words, the collector's (Violation::message) with \\x01 for the field (a context key\n\
         // without `context.`) and \\x02 for that key with '_' for '-' (src/messages.js adds the\n\
         // wrapper's own; the embed fetches them only when an error needs words).\n",
    );
    js.push_str(&format!(
        "export const MAX_CONTEXT_KEYS = {MAX_CONTEXT_KEYS};\n"
    ));
    js.push_str(&format!(
        "export const MAX_CONTEXT_STRING_CHARS = {MAX_CONTEXT_STRING_CHARS};\n"
    ));
    for code in RAISED_BY_THE_WRAPPER {
        js.push_str(&format!(
            "export const {} = {};\n",
            code.as_str().to_uppercase(),
            *code as u8
        ));
    }
    let mut sorted = TRACKER_CODES.to_vec();
    sorted.sort_by_key(|(code, _)| *code as u8);
    js.push_str("export const CODES = {\n");
    for (code, _) in &sorted {
        js.push_str(&format!(
            "  {}: {},\n",
            *code as u8,
            js_string(code.as_str())
        ));
    }
    js.push_str("};\nexport const MESSAGES = {\n");
    for (code, detail) in sorted {
        js.push_str(&format!(
            "  {}: {},\n",
            code.as_str(),
            js_string(&template(code, detail))
        ));
    }
    js.push_str("};\n");
    js
}

#[test]
fn the_wrappers_rules_module_is_what_event_model_generates() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../npm/src/rules.js");
    let expected = generate();
    if std::env::var_os("EVENTLINE_BLESS").is_some() {
        std::fs::write(path, &expected).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == expected,
        "npm/src/rules.js is not what event-model generates; run \
         EVENTLINE_BLESS=1 cargo test -p eventline-tracker --test npm_rules\n--- expected:\n{expected}"
    );
}

#[test]
fn code_numbers_are_declaration_order_and_fit_the_table() {
    for (i, code) in ErrorCode::ALL.iter().enumerate() {
        assert_eq!(*code as u8 as usize, i, "{code}");
    }
    for (code, _) in TRACKER_CODES {
        let text = template(*code, "");
        assert!(
            text.contains('\u{1}') || !text.contains('`'),
            "{code}: {text}"
        );
    }
}
