//! Sending a batch: the host's `transport` function, else `fetch`; `sendBeacon` at unload.
//!
//! Bodies go as `text/plain;charset=UTF-8`, a CORS-safelisted type, so cross-origin sends need
//! no preflight (the collector accepts it, and it is what sendBeacon sends anyway).
//!
//! Promises are followed with one callback each through `Promise.allSettled`, which resolves
//! either way: no async runtime in the wasm (wasm-bindgen-futures costs kilobytes).

use js_sys::{Array, Function, Promise};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsValue;

use super::js;
use crate::response::{Answer, EventResult, Problem, Reply};

/// Calls `then(Ok(value))` or `then(Err(reason))` once `value` (a promise or not) settles.
fn when_settled(
    value: Result<JsValue, JsValue>,
    then: impl FnOnce(Result<JsValue, JsValue>) + 'static,
) {
    let value = match value {
        Ok(v) => v,
        Err(e) => return then(Err(e)),
    };
    let settled = Promise::all_settled(&Array::of1(&Promise::resolve(&value)));
    let callback = Closure::once_into_js(move |outcomes: JsValue| {
        let outcome = js::get(&outcomes, "0");
        if js::get(&outcome, "status").as_string().as_deref() == Some("fulfilled") {
            then(Ok(js::get(&outcome, "value")))
        } else {
            then(Err(js::get(&outcome, "reason")))
        }
    });
    let _ = js::call(&settled, "then", &[&callback]);
}

fn text(value: &JsValue, key: &str) -> String {
    js::get(value, key).as_string().unwrap_or_default()
}

/// Reads the collector's answer (`results`, `error`) from its JSON text.
fn answer(body: &str) -> Answer {
    let Ok(json) = js_sys::JSON::parse(body) else {
        return Answer::default();
    };
    let mut answer = Answer::default();
    let results = js::get(&json, "results");
    if Array::is_array(&results) {
        for item in Array::from(&results).iter() {
            let Some(index) = js::get(&item, "index").as_f64() else {
                continue;
            };
            answer.results.push(EventResult {
                index: index as usize,
                event_id: js::get(&item, "event_id").as_string(),
                accepted: text(&item, "status") == "accepted",
                code: text(&item, "code"),
                field: text(&item, "field"),
                message: text(&item, "message"),
            });
        }
    }
    let error = js::get(&json, "error");
    if error.is_object() {
        answer.error = Some(Problem {
            code: text(&error, "code"),
            field: text(&error, "field"),
            message: text(&error, "message"),
        });
    }
    answer
}

fn fetch_init(body: &str, keepalive: bool) -> JsValue {
    js::object(&[
        ("method", "POST".into()),
        ("body", body.into()),
        ("keepalive", keepalive.into()),
        ("credentials", "omit".into()),
        (
            "headers",
            js::object(&[("Content-Type", "text/plain;charset=UTF-8".into())]),
        ),
    ])
}

fn reply(status: &JsValue, retry_after: Option<String>, body: &str) -> Reply {
    Reply {
        status: status.as_f64().unwrap_or(0.0) as u16,
        retry_after,
        answer: answer(body),
    }
}

const NO_ANSWER: Reply = Reply {
    status: 0,
    retry_after: None,
    answer: Answer {
        results: Vec::new(),
        error: None,
    },
};

/// POSTs `body` to `url`, then calls `done` with the answer (status 0 if there was none).
pub fn send(
    host: Option<&Function>,
    url: &str,
    body: &str,
    keepalive: bool,
    done: Box<dyn FnOnce(Reply)>,
) {
    if let Some(transport) = host {
        let request = js::object(&[
            ("url", url.into()),
            ("body", body.into()),
            ("keepalive", keepalive.into()),
        ]);
        when_settled(
            transport.call1(&JsValue::UNDEFINED, &request),
            Box::new(move |res: Result<JsValue, JsValue>| match res {
                Ok(res) => done(reply(
                    &js::get(&res, "status"),
                    js::get(&res, "retryAfter").as_string(),
                    &text(&res, "body"),
                )),
                Err(_) => done(NO_ANSWER),
            }),
        );
        return;
    }
    let fetched = js::call(
        &js::global(),
        "fetch",
        &[&url.into(), &fetch_init(body, keepalive)],
    );
    when_settled(
        fetched,
        Box::new(move |res: Result<JsValue, JsValue>| {
            let Ok(res) = res else { return done(NO_ANSWER) };
            let retry_after = js::call(&js::get(&res, "headers"), "get", &[&"Retry-After".into()])
                .ok()
                .and_then(|v| v.as_string());
            let status = js::get(&res, "status");
            when_settled(
                js::call(&res, "text", &[]),
                Box::new(move |body: Result<JsValue, JsValue>| {
                    let body = body.ok().and_then(|b| b.as_string()).unwrap_or_default();
                    done(reply(&status, retry_after, &body))
                }),
            );
        }),
    );
}

/// Hands `body` to the browser to deliver even if the page goes away; the answer is never seen.
/// Returns `false` when the browser refused (over its 64 KiB in-flight budget): stop sending.
pub fn beacon(host: Option<&Function>, url: &str, body: &str) -> bool {
    if let Some(transport) = host {
        let request = js::object(&[
            ("url", url.into()),
            ("body", body.into()),
            ("keepalive", true.into()),
        ]);
        let _ = transport.call1(&JsValue::UNDEFINED, &request);
        return true;
    }
    let global = js::global();
    let navigator = js::get(&global, "navigator");
    if js::method(&navigator, "sendBeacon").is_some() {
        return js::call(&navigator, "sendBeacon", &[&url.into(), &body.into()])
            .ok()
            .and_then(|ok| ok.as_bool())
            .unwrap_or(false);
    }
    js::call(&global, "fetch", &[&url.into(), &fetch_init(body, true)]).is_ok()
}

/// `navigator.onLine === false` (unknown counts as online).
pub fn offline() -> bool {
    js::get(&js::get(&js::global(), "navigator"), "onLine").as_bool() == Some(false)
}
