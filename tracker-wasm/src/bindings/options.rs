//! Reading the `new Tracker(options)` object into a checked engine configuration.

use event_model::{rules, ErrorCode};
use js_sys::Function;
use wasm_bindgen::{JsCast, JsValue};

use super::js;
use crate::engine::Config;
use crate::session::DEFAULT_TIMEOUT_MS;

/// The options besides the engine configuration.
pub struct Options {
    /// Engine settings.
    pub config: Config,
    /// `storage` as given (undefined when absent).
    pub storage: JsValue,
    /// `transport` function.
    pub transport: Option<Function>,
    /// `onRejected` callback.
    pub on_rejected: Option<Function>,
    /// `autoContext` as given.
    pub auto_context: JsValue,
    /// `lifecycle` (default true).
    pub lifecycle: bool,
}

fn invalid(field: &str) -> JsValue {
    js::error("invalid_option", field)
}

fn number(options: &JsValue, name: &str, default: f64, min: f64, max: f64) -> Result<f64, JsValue> {
    let value = js::get(options, name);
    if value.is_undefined() || value.is_null() {
        return Ok(default);
    }
    match value.as_f64() {
        Some(n) if n >= min && n <= max => Ok(n),
        _ => Err(invalid(name)),
    }
}

fn function(options: &JsValue, name: &str) -> Result<Option<Function>, JsValue> {
    let value = js::get(options, name);
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .dyn_into::<Function>()
        .map(Some)
        .map_err(|_| invalid(name))
}

/// Checks every option; the error carries `.code` and `.field` (the option's name).
pub fn read(options: &JsValue) -> Result<Options, JsValue> {
    if !options.is_object() {
        return Err(invalid("options"));
    }
    let url = js::get(options, "collectorUrl")
        .as_string()
        .unwrap_or_default();
    let url = url.trim_end_matches('/');
    if url.is_empty() {
        return Err(invalid("collectorUrl"));
    }
    let partner_id = js::get(options, "partnerId")
        .as_string()
        .unwrap_or_default();
    if rules::parse_event_id(&partner_id).is_err() {
        return Err(js::error(ErrorCode::UnknownPartner.as_str(), "partnerId"));
    }
    let source = js::get(options, "source").as_string().unwrap_or_default();
    rules::check_source_code(&source).map_err(|code| js::error(code.as_str(), "source"))?;
    let prefix = match js::get(options, "storagePrefix") {
        v if v.is_undefined() => "eventline".to_string(),
        v => v
            .as_string()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| invalid("storagePrefix"))?,
    };
    let storage = js::get(options, "storage");
    if !storage.is_undefined()
        && ["getItem", "setItem", "removeItem"]
            .iter()
            .any(|m| js::method(&storage, m).is_none())
    {
        return Err(invalid("storage"));
    }
    let lifecycle = match js::get(options, "lifecycle") {
        v if v.is_undefined() => true,
        v => v.as_bool().ok_or_else(|| invalid("lifecycle"))?,
    };
    Ok(Options {
        config: Config {
            endpoint: [url, "/v1/events"].concat(),
            partner_id,
            source,
            batch_events: number(options, "batchSize", 20.0, 1.0, 500.0)? as usize,
            max_batch_bytes: number(options, "maxBatchBytes", 60_000.0, 1024.0, 1_048_576.0)?
                as usize,
            linger_ms: number(options, "flushIntervalMs", 1000.0, 0.0, 3_600_000.0)?,
            max_queue_events: number(options, "maxQueueEvents", 1000.0, 1.0, 100_000.0)? as usize,
            session_timeout_ms: number(
                options,
                "sessionTimeoutMs",
                DEFAULT_TIMEOUT_MS,
                1000.0,
                8.64e10,
            )?,
            prefix,
        },
        storage,
        transport: function(options, "transport")?,
        on_rejected: function(options, "onRejected")?,
        auto_context: js::get(options, "autoContext"),
        lifecycle,
    })
}
