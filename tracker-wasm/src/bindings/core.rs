//! `Core`, the engine behind one JS `Tracker`, and its exports (`core_new`, `core_call`,
//! `core_op`, `core_free`, `check`), driven by the npm wrapper through npm/src/core.js.
//!
//! Only numbers cross the boundary besides string arguments: the wrapper's host object is known
//! here by its number in the wrapper's table (no externref table), and strings come back as one
//! number (see [`out`]), so the exports need no multi-value returns. Both keep the .wasm smaller
//! and let binaryen's wasm2js translate it for runtimes without WebAssembly (React Native).
//!
//! Errors are returned, not thrown: a failing call answers `"!<n>\x1f<field>"` (`n`: the
//! `ErrorCode`'s number) and the wrapper turns that into an `Error` with `.code` and `.field`
//! and event-model's message (npm/src/rules.js, generated from event-model).
//! Events the queue cap pushes out are handed to `host.reject(id, name)` one by one as they
//! happen (the wrapper reports them as `queue_overflow`).

use crate::wire::cat;
use std::cell::RefCell;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::backoff;
use crate::engine::{Config, Engine, Entropy};
use crate::queue::Entry;
use crate::store::Store;
use crate::validate;
use crate::wire::Value;
use event_model::{rules, ErrorCode, Violation};

// The host object's methods, called with its number. npm/src/core.js provides these imports in
// the package (over its own table of host objects); this inline module serves the Rust test
// suites' generated glue, whose hosts register in `globalThis.eventlineHosts` (tests/common).
#[wasm_bindgen(inline_js = "const h = (n) => globalThis.eventlineHosts[n];
export const get = (n, k) => h(n).get(k);
export const set = (n, k, v) => h(n).set(k, v);
export const remove = (n, k) => h(n).remove(k);
export const keys = (n) => h(n).keys();
export const fill = (n, b) => h(n).fill(b);
export const reject = (n, id, name) => h(n).reject(id, name);")]
extern "C" {
    fn get(host: u32, key: &str) -> Option<String>;
    fn set(host: u32, key: &str, value: &str) -> bool;
    fn remove(host: u32, key: &str);
    /// Every key joined by `\n`, or undefined when the storage cannot list keys.
    fn keys(host: u32) -> Option<String>;
    /// Fills `buf` with random bytes (crypto.getRandomValues, else Math.random).
    fn fill(host: u32, buf: &mut [u8]);
    /// Reports an event the queue cap pushed out (`queue_overflow`).
    fn reject(host: u32, event_id: &str, name: &str);
}

/// The wrapper's host object (storage that never throws, randomness, rejection reports), by its
/// number in the wrapper's table.
#[derive(Debug, Clone, Copy)]
pub struct Host(pub u32);

impl Host {
    fn reject(&self, event_id: &str, name: &str) {
        reject(self.0, event_id, name)
    }
}

impl Store for Host {
    fn get(&self, key: &str) -> Option<String> {
        get(self.0, key)
    }
    fn set(&self, key: &str, value: &str) -> bool {
        set(self.0, key, value)
    }
    fn remove(&self, key: &str) {
        remove(self.0, key)
    }
    fn keys(&self) -> Option<String> {
        keys(self.0)
    }
}

struct Rnd<'a>(&'a Host);

impl Entropy for Rnd<'_> {
    fn bytes(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        fill(self.0 .0, &mut out);
        out
    }
}

/// `!<n>\x1f<field>`, `n` being the code's number (`ErrorCode as u8`): the wrapper's generated
/// table (npm/src/rules.js) gives its name and words, so no code names ship in the .wasm.
fn fail(v: &Violation) -> String {
    let mut out = String::from("!");
    crate::wire::push_int(&mut out, i64::from(v.code as u8));
    out.push('\x1f');
    out.push_str(&v.field);
    out
}

/// `""` when the options' partner id and source pass the collector's rules, else `!code\x1ffield`.
pub fn check(partner_id: &str, source: &str) -> String {
    if rules::parse_event_id(partner_id).is_err() {
        return fail(&Violation::new(ErrorCode::UnknownPartner, "partnerId"));
    }
    match rules::check_source_code(source) {
        Ok(()) => String::new(),
        Err(code) => fail(&Violation::new(code, "source")),
    }
}

/// The engine of one tracker instance. Not a wasm-bindgen class: JavaScript holds a number for
/// it (`core_new`, `core_call`, `core_op`, `core_free` below), which spares the .wasm
/// wasm-bindgen's per-object reference counting, borrow flags and their error texts.
pub struct Core {
    host: Host,
    engine: Engine,
    /// Context entries given with `add` for the next `track`.
    pending: Vec<(String, Value)>,
}

impl Core {
    fn report(&self, dropped: Vec<Entry>) {
        for e in dropped {
            self.host.reject(&e.id, &e.name);
        }
    }
}

impl Core {
    /// Opens the queue (adopting earlier pages' queues); options already checked by the wrapper.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        host: Host,
        endpoint: String,
        partner_id: String,
        source: String,
        batch_events: f64,
        max_batch_bytes: f64,
        linger_ms: f64,
        max_queue_events: f64,
        session_timeout_ms: f64,
        prefix: String,
        now: f64,
    ) -> Core {
        let cfg = Config {
            endpoint,
            partner_id,
            source,
            batch_events: batch_events as usize,
            max_batch_bytes: max_batch_bytes as usize,
            linger_ms,
            max_queue_events: max_queue_events as usize,
            session_timeout_ms,
            prefix,
        };
        let (engine, dropped) = Engine::open(cfg, &host, now, &mut Rnd(&host));
        let core = Core {
            host,
            engine,
            pending: Vec::new(),
        };
        core.report(dropped);
        core
    }

    /// The string-answering calls through one export (each export costs its own marshalling code
    /// in the .wasm and the JS): `what` 0 [`Core::add`]`(a, b, x, y)`, 1 [`Core::track`]`(a, x, y)`,
    /// 2 [`Core::batch`]`(x, y != 0, z)`, 3 [`Core::settle`]`(a, x != 0, y, b, z)` (answers `""`),
    /// anything else [`Core::text`]`(x, a, y)`.
    pub fn call(&mut self, what: u8, a: String, b: String, x: f64, y: f64, z: f64) -> String {
        match what {
            0 => self.add(a, b, x, y as u8),
            1 => self.track(&a, x, y),
            2 => self.batch(x as usize, y != 0.0, z),
            3 => {
                self.settle(&a, x != 0.0, y, &b, z);
                String::new()
            }
            _ => self.text(x as u8, &a, y),
        }
    }

    /// One of the small state changes, by number (one export keeps the glue small):
    /// 0 `sync` (ownership, cross-tab opt-out, orphaned queues), 1 `sync` plus heartbeat,
    /// 2 claim (still own the queue), 3 release the queue for adoption, 4 forget the backoff,
    /// 5 opt out (clearing the queue), 6 opt in, 7 reset (forget the customer, new anonymous id
    /// and session), anything else nothing. Answers 8: whether the user opted out (1 or 0);
    /// 10: the class of HTTP status `now` for the tracker ([`backoff::classify`]: 0 answered,
    /// 1 retry, 2 split, 3 permanent), so the retry rule has one home;
    /// every other: when a (non-forced) send is due afterwards, ms, or -1 with an empty queue.
    pub fn op(&mut self, what: u8, now: f64) -> f64 {
        if what == 10 {
            return f64::from(backoff::classify(now as u16) as u8);
        }
        let host = &self.host;
        let rnd = &mut Rnd(host);
        let e = &mut self.engine;
        let dropped = match what {
            0 => e.sync(host, now, rnd),
            1 => e.heartbeat(host, now, rnd),
            2 => {
                e.claim(host, now, rnd);
                Vec::new()
            }
            3 => {
                e.outbox.release(host, now);
                Vec::new()
            }
            4 => {
                e.retry_now();
                Vec::new()
            }
            5 | 6 => {
                e.set_opted_out(host, what == 5);
                Vec::new()
            }
            7 => {
                e.reset(host, rnd);
                Vec::new()
            }
            8 => return f64::from(u8::from(e.opted_out(host))),
            _ => Vec::new(),
        };
        self.report(dropped);
        self.engine.due_at().unwrap_or(-1.0)
    }
}

/// What `call` reaches (and the Rust tests call directly).
impl Core {
    /// Adds one context entry for the next `track`: `kind` 0 undefined (skipped), 1 string
    /// (`text`), 2 number (`n`, with `text` = `String(n)`), 3 true, 4 false, else invalid.
    /// Returns `""` or the error (and forgets the entries added so far).
    pub fn add(&mut self, key: String, text: String, n: f64, kind: u8) -> String {
        let value = validate::check_key(&key).and_then(|()| match kind {
            0 => Ok(None),
            1 => validate::string_value(&key, text).map(Some),
            2 => validate::number_value(&key, n, text).map(Some),
            3 | 4 => Ok(Some(Value::Bool(kind == 3))),
            _ => Err(validate::invalid_value(&key)),
        });
        match value {
            Ok(Some(v)) => self.pending.push((key, v)),
            Ok(None) => {}
            Err(v) => {
                self.pending.clear();
                return fail(&v);
            }
        }
        String::new()
    }

    /// Queues an event with the entries from `add`: its id, `""` while opted out, or an error.
    pub fn track(&mut self, name: &str, occurred_at_ms: f64, now: f64) -> String {
        let context = std::mem::take(&mut self.pending);
        let host = &self.host;
        match self
            .engine
            .track(host, name, &context, occurred_at_ms, now, &mut Rnd(host))
        {
            Ok((id, dropped)) => {
                self.report(dropped);
                id
            }
            Err(v) => fail(&v),
        }
    }

    /// The next request as `ids\x1enames\x1ebody` (the queued event ids, comma-separated, to
    /// give back to `settle`; their names joined by `\x1f`; the JSON body); `""` when nothing is
    /// queued past `skip`.
    pub fn batch(&self, skip: usize, keepalive: bool, now: f64) -> String {
        match self.engine.batch(skip, keepalive, now) {
            Some(b) => cat(&[&b.ids, "\x1e", &b.names, "\x1e", &b.body]),
            None => String::new(),
        }
    }

    /// Applies an answer to the request that carried `ids`, as classified by `op(10, status)`:
    /// `retry` keeps them and backs off, for at least the `retry_after` header's delay; else they
    /// leave the queue and `n` (when not negative) sets the events per request after a 413 (see
    /// `Engine::settle`).
    pub fn settle(&mut self, ids: &str, retry: bool, n: f64, retry_after: &str, now: f64) {
        let host = &self.host;
        let n = if retry {
            backoff::parse_retry_after(retry_after).unwrap_or(0.0)
        } else {
            n
        };
        self.engine.settle(host, ids, retry, n, now, &mut Rnd(host));
    }

    /// Identity text by number: 0 anonymous id, 1 session id, 2 customer id (`""` when none),
    /// 3 identify as `arg` (`""` or the error).
    pub fn text(&self, what: u8, arg: &str, now: f64) -> String {
        let (host, e) = (&self.host, &self.engine);
        match what {
            0 => e.anonymous_id(host, &mut Rnd(host)),
            1 => e.session_id(host, now, &mut Rnd(host), false),
            2 => e.customer_id(host).unwrap_or_default(),
            _ => match e.identify(host, arg) {
                Ok(()) => String::new(),
                Err(v) => fail(&v),
            },
        }
    }
}

thread_local! {
    /// The live cores; JavaScript's number for one is its index + 1 (0: none).
    static CORES: RefCell<Vec<Option<Core>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on core `id`, if it is live. Core code calls back into JavaScript only for storage,
/// randomness and rejection reports, none of which re-enters here, so the borrow never nests.
fn with_core<R>(id: u32, f: impl FnOnce(&mut Core) -> R) -> Option<R> {
    CORES.with(|cores| {
        let mut cores = cores.borrow_mut();
        let core = cores.get_mut((id as usize).checked_sub(1)?)?.as_mut()?;
        Some(f(core))
    })
}

thread_local! {
    /// The last string answered to JavaScript (see [`out`]).
    static OUT: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A string for JavaScript as one number, `length * 2^32 + address` of its UTF-8 bytes in
/// memory, valid until the next export call: JavaScript reads it at once, and nothing needs
/// freeing (the string lives in [`OUT`] until replaced).
fn out(text: String) -> f64 {
    OUT.with(|o| {
        let mut o = o.borrow_mut();
        *o = text;
        o.len() as f64 * 4_294_967_296.0 + o.as_ptr() as usize as f64
    })
}

/// [`Core::new`] with the host object's number; answers the core's number.
#[wasm_bindgen]
#[allow(clippy::too_many_arguments)]
pub fn core_new(
    host: u32,
    endpoint: String,
    partner_id: String,
    source: String,
    batch_events: f64,
    max_batch_bytes: f64,
    linger_ms: f64,
    max_queue_events: f64,
    session_timeout_ms: f64,
    prefix: String,
    now: f64,
) -> u32 {
    let core = Core::new(
        Host(host),
        endpoint,
        partner_id,
        source,
        batch_events,
        max_batch_bytes,
        linger_ms,
        max_queue_events,
        session_timeout_ms,
        prefix,
        now,
    );
    CORES.with(|cores| {
        let mut cores = cores.borrow_mut();
        let free = cores.iter().position(Option::is_none);
        let index = match free {
            Some(i) => i,
            None => {
                cores.push(None);
                cores.len() - 1
            }
        };
        if let Some(slot) = cores.get_mut(index) {
            *slot = Some(core);
        }
        index as u32 + 1
    })
}

/// [`Core::call`] on core `id` (`""` for a freed one), as [`out`] gives strings.
#[wasm_bindgen]
pub fn core_call(id: u32, what: u8, a: String, b: String, x: f64, y: f64, z: f64) -> f64 {
    out(with_core(id, |c| c.call(what, a, b, x, y, z)).unwrap_or_default())
}

/// [`check`], as [`out`] gives strings.
#[wasm_bindgen(js_name = check)]
pub fn check_options(partner_id: &str, source: &str) -> f64 {
    out(check(partner_id, source))
}

/// [`Core::op`] on core `id` (-1 for a freed one).
#[wasm_bindgen]
pub fn core_op(id: u32, what: u8, now: f64) -> f64 {
    with_core(id, |c| c.op(what, now)).unwrap_or(-1.0)
}

/// Drops core `id` (its queue stays in storage).
#[wasm_bindgen]
pub fn core_free(id: u32) {
    let core = CORES.with(|cores| {
        let mut cores = cores.borrow_mut();
        cores
            .get_mut((id as usize).checked_sub(1)?)
            .and_then(Option::take)
    });
    // Dropped outside the borrow: dropping runs no core code, but stay safe.
    drop(core);
}
