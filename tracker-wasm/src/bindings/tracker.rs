//! The exported JavaScript class `Tracker` (the API in notes/tracker-contract.md).
//!
//! ```js
//! const t = new Tracker({ collectorUrl, partnerId, source, ...options });
//! t.track("product_viewed", { category: "Jacket", price: 99.5 }); // → event_id
//! t.track("x", { "user-name": 1 }); // throws Error { code: "context_key_hyphen", field: "context.user-name" }
//! await t.flush();
//! ```
//!
//! Delivery runs in one "pump" per tracker: it sends the oldest batch, applies the answer, and
//! repeats until the queue is empty, a partial batch should linger, or a failure backs off; a
//! timer wakes it for the next due time. `flush()` runs it ignoring linger, backoff and offline.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use super::autocontext::AutoContext;
use super::host_store::HostStore;
use super::js::{self, Crypto};
use super::lifecycle::{self, Moment};
use super::{options, timers, transport};
use crate::engine::{Engine, Rejection};
use crate::outbox::HEARTBEAT_MS;
use crate::validate;
use crate::wire::Value;
use event_model::{ErrorCode, Violation};

// TypeScript for the .d.ts only (a custom section wasm-bindgen removes from the .wasm).
#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Context values: flat strings, finite numbers and booleans. Keys: letters, digits, `_`. */
export type EventContext = Record<string, string | number | boolean | undefined>;
/** An event the tracker gave up on (rejected by the collector, or dropped by the queue cap). */
export interface Rejection { eventId: string; name: string; code: string; field: string; message: string }
/** A request for a host-supplied transport. */
export interface TransportRequest { url: string; body: string; keepalive: boolean }
/** What a host-supplied transport resolves to. */
export interface TransportResponse { status: number; retryAfter?: string | null; body?: string }
/** Options of `new Tracker(options)`. */
export interface TrackerOptions {
  collectorUrl: string;
  partnerId: string;
  source: string;
  batchSize?: number;
  maxBatchBytes?: number;
  flushIntervalMs?: number;
  maxQueueEvents?: number;
  sessionTimeoutMs?: number;
  autoContext?: boolean | { url?: boolean; referrer?: boolean; title?: boolean; screen?: boolean; language?: boolean; timeZone?: boolean; utm?: boolean };
  storage?: { getItem(key: string): string | null; setItem(key: string, value: string): void; removeItem(key: string): void; key?(index: number): string | null; readonly length?: number };
  transport?: (request: TransportRequest) => Promise<TransportResponse> | TransportResponse;
  storagePrefix?: string;
  onRejected?: (rejections: Rejection[]) => void;
  lifecycle?: boolean;
}
"#;

/// A tracker instance; create one per page/app and keep it.
#[wasm_bindgen]
pub struct Tracker {
    inner: Rc<Inner>,
}

struct Inner {
    store: HostStore,
    transport: Option<Function>,
    on_rejected: Option<Function>,
    auto: AutoContext,
    state: RefCell<State>,
}

struct State {
    engine: Engine,
    /// A pump is running.
    pumping: bool,
    /// Someone asked for a forced run while the pump was busy: run again when it ends.
    again: Option<bool>,
    /// `flush()` promises waiting for the pump to go idle.
    waiters: Vec<Function>,
    /// Time of the earliest pending wake-up timer (∞ when none).
    wake_at: f64,
    /// The JS object was freed.
    closed: bool,
}

impl Inner {
    fn report(&self, rejections: Vec<Rejection>) {
        js::report(self.on_rejected.as_ref(), rejections);
    }
}

/// Starts the pump unless it runs; a forced request while it runs makes it go once more.
fn kick(inner: &Rc<Inner>, force: bool, keepalive: bool) {
    {
        let mut st = inner.state.borrow_mut();
        if st.closed {
            return;
        }
        if st.pumping {
            if force {
                st.again = Some(keepalive || st.again == Some(true));
            }
            return;
        }
        st.pumping = true;
    }
    pump(inner.clone(), force, keepalive);
}

/// The pump went idle: run again if asked to, else resolve the `flush()` promises.
fn finish(inner: Rc<Inner>) {
    let mut st = inner.state.borrow_mut();
    if let Some(keepalive) = st.again.take() {
        drop(st);
        return pump(inner, true, keepalive);
    }
    st.pumping = false;
    let waiters = std::mem::take(&mut st.waiters);
    drop(st);
    for resolve in waiters {
        let _ = resolve.call0(&JsValue::UNDEFINED);
    }
}

/// Wakes the pump at `at` (ms) unless an earlier wake-up is already pending.
fn wake_at(inner: &Rc<Inner>, st: &mut State, at: f64) {
    if at >= st.wake_at {
        return;
    }
    st.wake_at = at;
    let weak = Rc::downgrade(inner);
    timers::after(
        at - js::now(),
        Box::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.state.borrow_mut().wake_at = f64::INFINITY;
                kick(&inner, false, false);
            }
        }),
    );
}

/// One step of the pump: send the next batch if one is due, and continue from its answer.
fn pump(inner: Rc<Inner>, force: bool, keepalive: bool) {
    let now = js::now();
    let (batch, dropped) = {
        let mut st = inner.state.borrow_mut();
        if st.closed {
            return;
        }
        let dropped = st.engine.sync(&inner.store, now, &mut Crypto);
        let batch = match st.engine.due_at() {
            None => None,
            Some(_) if !force && transport::offline() => None,
            Some(due) if !force && due > now => {
                wake_at(&inner, &mut st, due);
                None
            }
            Some(_) => st.engine.batch(0, keepalive, now),
        };
        (batch, dropped)
    };
    inner.report(dropped);
    let Some(batch) = batch else {
        return finish(inner);
    };
    let endpoint = inner.state.borrow().engine.cfg.endpoint.clone();
    let transport = inner.transport.clone();
    transport::send(
        transport.as_ref(),
        &endpoint,
        &batch.body,
        keepalive,
        Box::new(move |reply| {
            let (rejections, go_on) = {
                let mut st = inner.state.borrow_mut();
                if st.closed {
                    // Freed meanwhile: its queue is released and may be adopted already, so
                    // leave storage alone (the adopter resends; the collector deduplicates).
                    return;
                }
                let outcome =
                    st.engine
                        .settle(&inner.store, &batch.ids, &reply, js::now(), &mut Crypto);
                if !outcome.1 {
                    if let Some(due) = st.engine.due_at() {
                        wake_at(&inner, &mut st, due);
                    }
                }
                outcome
            };
            inner.report(rejections);
            if go_on {
                pump(inner, force, keepalive)
            } else {
                finish(inner)
            }
        }),
    );
}

/// Beacons the whole queue in keepalive-sized chunks, then releases it for adoption.
fn hide(inner: &Rc<Inner>) {
    let mut st = inner.state.borrow_mut();
    let now = js::now();
    st.engine.claim(&inner.store, now, &mut Crypto);
    let endpoint = st.engine.cfg.endpoint.clone();
    let mut skip = 0;
    while let Some(batch) = st.engine.batch(skip, true, now) {
        skip += batch.ids.len();
        if !transport::beacon(inner.transport.as_ref(), &endpoint, &batch.body) {
            break;
        }
    }
    st.engine.outbox.release(&inner.store, now);
}

fn on_moment(inner: &Rc<Inner>, moment: Moment) {
    match moment {
        Moment::Hidden => {
            if !inner.state.borrow().pumping {
                kick(inner, true, true);
            }
        }
        Moment::Visible => kick(inner, false, false),
        Moment::PageHide => hide(inner),
        Moment::PageShowPersisted => {
            let dropped =
                inner
                    .state
                    .borrow_mut()
                    .engine
                    .heartbeat(&inner.store, js::now(), &mut Crypto);
            inner.report(dropped);
            kick(inner, false, false);
        }
        Moment::Online => {
            inner.state.borrow_mut().engine.retry_now();
            kick(inner, false, false);
        }
    }
}

fn heartbeat(weak: Weak<Inner>) {
    timers::after(
        HEARTBEAT_MS,
        Box::new(move || {
            let Some(inner) = weak.upgrade() else { return };
            let (dropped, idle) = {
                let mut st = inner.state.borrow_mut();
                if st.closed {
                    return;
                }
                let dropped = st.engine.heartbeat(&inner.store, js::now(), &mut Crypto);
                let idle =
                    !st.pumping && st.wake_at.is_infinite() && !st.engine.outbox.entries.is_empty();
                (dropped, idle)
            };
            inner.report(dropped);
            if idle {
                kick(&inner, false, false);
            }
            heartbeat(weak);
        }),
    );
}

/// Reads a context object into checked entries (explicit keys, in their order).
fn context_entries(context: &JsValue) -> Result<Vec<(String, Value)>, Violation> {
    if context.is_undefined() || context.is_null() {
        return Ok(Vec::new());
    }
    if !context.is_object() || js_sys::Array::is_array(context) {
        return Err(Violation::new(ErrorCode::InvalidContext, "context"));
    }
    let keys = js_sys::Object::keys(context.unchecked_ref::<js_sys::Object>());
    let mut out = Vec::with_capacity(keys.length() as usize);
    for key in keys.iter() {
        let key = key.as_string().unwrap_or_default();
        validate::check_key(&key)?;
        let value = js::get(context, &key);
        let value = if value.is_undefined() {
            // Like JSON.stringify: an undefined property is simply absent.
            continue;
        } else if let Some(s) = value.as_string() {
            validate::string_value(&key, s)?
        } else if let Some(n) = value.as_f64() {
            validate::number_value(&key, n, js::number_text)?
        } else if let Some(b) = value.as_bool() {
            Value::Bool(b)
        } else {
            return Err(validate::invalid_value(&key));
        };
        out.push((key, value));
    }
    Ok(out)
}

use wasm_bindgen::JsCast;

impl Tracker {
    fn record(
        &self,
        name: &JsValue,
        context: &JsValue,
        occurred_at_ms: f64,
        page: bool,
    ) -> Result<String, JsValue> {
        let inner = &self.inner;
        let name = name
            .as_string()
            .ok_or_else(|| js::error(ErrorCode::InvalidName.as_str(), "name"))?;
        let mut entries = context_entries(context).map_err(|v| js::violation(&v))?;
        inner.auto.add_to(&mut entries, page);
        let now = js::now();
        let (id, dropped, due) = {
            let mut st = inner.state.borrow_mut();
            let (id, dropped) = st
                .engine
                .track(
                    &inner.store,
                    &name,
                    &entries,
                    occurred_at_ms,
                    now,
                    &mut Crypto,
                )
                .map_err(|v| js::violation(&v))?;
            (id, dropped, st.engine.due_at())
        };
        inner.report(dropped);
        match due {
            Some(due) if due <= now => kick(inner, false, false),
            Some(due) => wake_at(inner, &mut inner.state.borrow_mut(), due),
            None => {}
        }
        Ok(id)
    }
}

#[wasm_bindgen]
impl Tracker {
    /// Creates a tracker; throws an Error with `.code`/`.field` on a bad option.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "TrackerOptions")] options: JsValue,
    ) -> Result<Tracker, JsValue> {
        let opts = options::read(&options)?;
        let store = HostStore::pick(&opts.storage);
        let (engine, dropped) = Engine::open(opts.config, &store, js::now(), &mut Crypto);
        let inner = Rc::new(Inner {
            store,
            transport: opts.transport,
            on_rejected: opts.on_rejected,
            auto: AutoContext::from_option(&opts.auto_context),
            state: RefCell::new(State {
                engine,
                pumping: false,
                again: None,
                waiters: Vec::new(),
                wake_at: f64::INFINITY,
                closed: false,
            }),
        });
        inner.report(dropped);
        heartbeat(Rc::downgrade(&inner));
        if opts.lifecycle {
            let weak = Rc::downgrade(&inner);
            lifecycle::watch(move |moment| {
                if let Some(inner) = weak.upgrade() {
                    on_moment(&inner, moment);
                }
            });
        }
        // Adopted events from an earlier page load go out now.
        kick(&inner, false, false);
        Ok(Tracker { inner })
    }

    /// Queues an event and returns its id; `context` is an `EventContext` (flat object).
    /// Throws Error{code, field} on a rule violation, and queues nothing then.
    /// Returns "" (and stores nothing) while opted out.
    pub fn track(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] name: JsValue,
        context: Option<JsValue>,
    ) -> Result<String, JsValue> {
        self.record(&name, &context.unwrap_or_default(), js::now(), false)
    }

    /// Like `track`, with the time it happened (Unix ms), e.g. replayed from the loader snippet.
    #[wasm_bindgen(js_name = trackAt)]
    pub fn track_at(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] name: JsValue,
        #[wasm_bindgen(unchecked_param_type = "EventContext | null | undefined")] context: JsValue,
        #[wasm_bindgen(js_name = "occurredAtMs")] occurred_at_ms: f64,
    ) -> Result<String, JsValue> {
        self.record(&name, &context, occurred_at_ms, false)
    }

    /// Queues a `page_view` event with page_url, page_referrer and page_title (plus `context`).
    pub fn page(&self, context: Option<JsValue>) -> Result<String, JsValue> {
        self.record(
            &JsValue::from_str("page_view"),
            &context.unwrap_or_default(),
            js::now(),
            true,
        )
    }

    /// Remembers the customer id (a string, or an integer number) for later events.
    pub fn identify(
        &self,
        #[wasm_bindgen(js_name = "customerId", unchecked_param_type = "string | number")]
        customer_id: JsValue,
    ) -> Result<(), JsValue> {
        let id = match customer_id.as_f64() {
            Some(n) if n.fract() == 0.0 && n.abs() < 9.007e15 => js::number_text(n),
            _ => customer_id.as_string().unwrap_or_default(),
        };
        let st = self.inner.state.borrow();
        st.engine
            .identify(&self.inner.store, &id)
            .map_err(|v| js::violation(&v))
    }

    /// Forgets the customer and starts a new anonymous id and session.
    pub fn reset(&self) {
        let st = self.inner.state.borrow();
        st.engine.reset(&self.inner.store, &mut Crypto);
    }

    /// Sends everything queued now (ignoring linger, backoff and offline state); resolves when
    /// the queue is empty or a send failed (the events then stay queued for a later retry).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn flush(&self) -> Promise {
        let inner = self.inner.clone();
        let promise =
            Promise::new(&mut |resolve, _reject| inner.state.borrow_mut().waiters.push(resolve));
        if self.inner.state.borrow().closed {
            let waiters = std::mem::take(&mut self.inner.state.borrow_mut().waiters);
            for resolve in waiters {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        }
        kick(&self.inner, true, false);
        promise
    }

    /// Stops tracking (persisted for every tab): clears the queue; `track` returns "" until `optIn`.
    #[wasm_bindgen(js_name = optOut)]
    pub fn opt_out(&self) {
        self.inner
            .state
            .borrow_mut()
            .engine
            .set_opted_out(&self.inner.store, true);
    }

    /// Resumes tracking after `optOut`.
    #[wasm_bindgen(js_name = optIn)]
    pub fn opt_in(&self) {
        self.inner
            .state
            .borrow_mut()
            .engine
            .set_opted_out(&self.inner.store, false);
    }

    /// Whether the user opted out.
    #[wasm_bindgen(getter, js_name = optedOut)]
    pub fn opted_out(&self) -> bool {
        self.inner
            .state
            .borrow()
            .engine
            .opted_out(&self.inner.store)
    }

    /// The persisted anonymous (device) id.
    #[wasm_bindgen(getter, js_name = anonymousId)]
    pub fn anonymous_id(&self) -> String {
        self.inner
            .state
            .borrow()
            .engine
            .anonymous_id(&self.inner.store, &mut Crypto)
    }

    /// The current session id (a new one if the last session timed out).
    #[wasm_bindgen(getter, js_name = sessionId)]
    pub fn session_id(&self) -> String {
        self.inner.state.borrow().engine.session_id(
            &self.inner.store,
            js::now(),
            &mut Crypto,
            false,
        )
    }

    /// The identified customer id, or undefined.
    #[wasm_bindgen(getter, js_name = customerId)]
    pub fn customer_id(&self) -> Option<String> {
        self.inner
            .state
            .borrow()
            .engine
            .customer_id(&self.inner.store)
    }

    /// Whether events survive a page reload here (localStorage or a host storage).
    #[wasm_bindgen(getter)]
    pub fn persistent(&self) -> bool {
        self.inner.store.persistent()
    }
}

impl Drop for Tracker {
    /// `free()`: stop timers and hooks, and release the queue so the next instance adopts it.
    fn drop(&mut self) {
        if let Ok(mut st) = self.inner.state.try_borrow_mut() {
            st.closed = true;
            st.engine.outbox.release(&self.inner.store, js::now());
        }
    }
}
