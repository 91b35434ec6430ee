//! Context the tracker adds by itself (page, screen, language, time zone, UTM parameters),
//! read from whatever host objects exist. Explicit context always wins.

use event_model::limits::{MAX_CONTEXT_KEYS, MAX_CONTEXT_STRING_CHARS};
use wasm_bindgen::JsValue;

use super::js;
use crate::wire::{push_int, Value};

/// Which groups of automatic context to collect (`autoContext` option; all on by default).
#[derive(Clone, Copy)]
pub struct AutoContext {
    url: bool,
    referrer: bool,
    title: bool,
    screen: bool,
    language: bool,
    time_zone: bool,
    utm: bool,
}

impl AutoContext {
    /// `true`/absent: everything; `false`: nothing; an object: each group unless set to false.
    pub fn from_option(option: &JsValue) -> AutoContext {
        let all = option.as_bool().unwrap_or(true);
        let flag = |name: &str| js::get(option, name).as_bool().unwrap_or(all);
        AutoContext {
            url: flag("url"),
            referrer: flag("referrer"),
            title: flag("title"),
            screen: flag("screen"),
            language: flag("language"),
            time_zone: flag("timeZone"),
            utm: flag("utm"),
        }
    }

    /// Adds the enabled keys that `context` does not have yet, while room remains.
    /// `page` forces page_url, page_referrer and page_title (the `page_view` event).
    pub fn add_to(&self, context: &mut Vec<(String, Value)>, page: bool) {
        let global = js::global();
        let location = js::get(&global, "location");
        let document = js::get(&global, "document");
        let navigator = js::get(&global, "navigator");
        let screen = js::get(&global, "screen");
        let mut add = |key: &str, value: JsValue| {
            if context.len() >= MAX_CONTEXT_KEYS || context.iter().any(|(k, _)| k == key) {
                return;
            }
            if let Some(s) = value.as_string() {
                if !s.is_empty() {
                    // Long URLs are cut rather than making the whole event invalid.
                    let mut s = s;
                    if let Some((cut, _)) = s.char_indices().nth(MAX_CONTEXT_STRING_CHARS) {
                        s.truncate(cut);
                    }
                    context.push((key.into(), Value::Str(s)));
                }
            } else if let Some(n) = value.as_f64() {
                if (0.0..1e9).contains(&n) {
                    let mut text = String::new();
                    push_int(&mut text, n as i64);
                    context.push((key.into(), Value::Num(text)));
                }
            }
        };
        if self.url || page {
            add("page_url", js::get(&location, "href"));
        }
        if self.url {
            add("page_path", js::get(&location, "pathname"));
        }
        if self.referrer || page {
            add("page_referrer", js::get(&document, "referrer"));
        }
        if self.title || page {
            add("page_title", js::get(&document, "title"));
        }
        if self.screen {
            add("screen_width", js::get(&screen, "width"));
            add("screen_height", js::get(&screen, "height"));
        }
        if self.language {
            add("language", js::get(&navigator, "language"));
        }
        if self.time_zone {
            add("time_zone", time_zone());
        }
        if self.utm {
            if let Some(search) = js::get(&location, "search").as_string() {
                for (key, value) in utm_parameters(&search) {
                    add(key, value.into());
                }
            }
        }
    }
}

/// `Intl.DateTimeFormat().resolvedOptions().timeZone`, if the runtime has Intl.
fn time_zone() -> JsValue {
    let intl = js::get(&js::global(), "Intl");
    match js::call(&intl, "DateTimeFormat", &[]) {
        Ok(format) => js::call(&format, "resolvedOptions", &[])
            .map(|o| js::get(&o, "timeZone"))
            .unwrap_or(JsValue::UNDEFINED),
        Err(_) => JsValue::UNDEFINED,
    }
}

const UTM_KEYS: [&str; 5] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
];

/// The UTM parameters of a query string (`?utm_source=x&...`), percent-decoded.
fn utm_parameters(search: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for pair in search.trim_start_matches('?').split('&') {
        let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(key) = UTM_KEYS.iter().find(|k| **k == name) else {
            continue;
        };
        let plus_decoded = raw.replace('+', " ");
        let value = js_sys::decode_uri_component(&plus_decoded)
            .map(String::from)
            .unwrap_or(plus_decoded);
        out.push((*key, value));
    }
    out
}
