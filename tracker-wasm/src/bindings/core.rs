//! The exported `Core`: the engine behind one JS `Tracker`, driven by the npm wrapper.
//!
//! Errors are returned, not thrown: a failing call answers `"!<code>\x1f<field>"` and the
//! wrapper turns that into an `Error` with `.code` and `.field` (see [`message`] for its text).
//! Events given up on are handed to `host.reject(...)` one by one as they happen.

use wasm_bindgen::prelude::wasm_bindgen;

use crate::engine::{Config, Engine, Entropy, Rejection};
use crate::response::{Answer, EventResult, Problem, Reply};
use crate::store::Store;
use crate::validate;
use crate::wire::Value;
use event_model::{rules, ErrorCode, Violation};

#[wasm_bindgen]
extern "C" {
    /// The wrapper's host object: storage (never throwing), randomness and rejection reports.
    pub type Host;
    #[wasm_bindgen(method, js_name = get)]
    fn host_get(this: &Host, key: &str) -> Option<String>;
    #[wasm_bindgen(method, js_name = set)]
    fn host_set(this: &Host, key: &str, value: &str) -> bool;
    #[wasm_bindgen(method, js_name = remove)]
    fn host_remove(this: &Host, key: &str);
    /// Every key joined by `\n`, or undefined when the storage cannot list keys.
    #[wasm_bindgen(method, js_name = keys)]
    fn host_keys(this: &Host) -> Option<String>;
    /// Fills `buf` with random bytes (crypto.getRandomValues, else Math.random).
    #[wasm_bindgen(method)]
    fn fill(this: &Host, buf: &mut [u8]);
    #[wasm_bindgen(method)]
    fn reject(this: &Host, event_id: &str, name: &str, code: &str, field: &str, message: &str);
}

impl Store for Host {
    fn get(&self, key: &str) -> Option<String> {
        self.host_get(key)
    }
    fn set(&self, key: &str, value: &str) -> bool {
        self.host_set(key, value)
    }
    fn remove(&self, key: &str) {
        self.host_remove(key)
    }
    fn keys(&self) -> Option<Vec<String>> {
        let all = self.host_keys()?;
        Some(
            all.split('\n')
                .filter(|k| !k.is_empty())
                .map(String::from)
                .collect(),
        )
    }
}

struct Rnd<'a>(&'a Host);

impl Entropy for Rnd<'_> {
    fn bytes(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        self.0.fill(&mut out);
        out
    }
}

fn fail(v: &Violation) -> String {
    ["!", v.code.as_str(), "\x1f", &v.field].concat()
}

/// `""` when the options' partner id and source pass the collector's rules, else `!code\x1ffield`.
#[wasm_bindgen]
pub fn check(partner_id: &str, source: &str) -> String {
    if rules::parse_event_id(partner_id).is_err() {
        return fail(&Violation::new(ErrorCode::UnknownPartner, "partnerId"));
    }
    match rules::check_source_code(source) {
        Ok(()) => String::new(),
        Err(code) => fail(&Violation::new(code, "source")),
    }
}

/// The human message for an error code and field.
#[wasm_bindgen]
pub fn message(code: &str, field: &str) -> String {
    validate::message(code, field)
}

/// Digits to a number (anything else gives `usize::MAX`, an index that matches no event).
fn index(text: &str) -> usize {
    let mut n: usize = 0;
    for b in text.bytes() {
        if !b.is_ascii_digit() {
            return usize::MAX;
        }
        n = n.saturating_mul(10).saturating_add(usize::from(b - b'0'));
    }
    n
}

/// Reads the answer as the wrapper flattened it from the body's JSON: records separated by
/// `\x1e`, fields by `\x1f`; `E,code,field,message` for `error`, `index,1|0,code,field,message`
/// for each result.
fn answer(flat: &str) -> Answer {
    let mut a = Answer::default();
    for record in flat.split('\x1e') {
        let mut f = record.split('\x1f');
        let head = f.next().unwrap_or_default();
        let mut next = || f.next().unwrap_or_default().to_string();
        if head == "E" {
            a.error = Some(Problem {
                code: next(),
                field: next(),
                message: next(),
            });
        } else if !head.is_empty() {
            let accepted = next() == "1";
            a.results.push(EventResult {
                index: index(head),
                event_id: None,
                accepted,
                code: next(),
                field: next(),
                message: next(),
            });
        }
    }
    a
}

/// The engine of one tracker instance.
#[wasm_bindgen]
pub struct Core {
    host: Host,
    engine: Engine,
    /// Context entries given with `add` for the next `track`.
    pending: Vec<(String, Value)>,
    /// Ids of the last batch built, comma-separated.
    ids: String,
}

impl Core {
    fn report(&self, rejections: Vec<Rejection>) {
        for r in rejections {
            self.host
                .reject(&r.event_id, &r.name, &r.code, &r.field, &r.message);
        }
    }
}

#[wasm_bindgen]
impl Core {
    /// Opens the queue (adopting earlier pages' queues); options already checked by the wrapper.
    #[wasm_bindgen(constructor)]
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
            ids: String::new(),
        };
        core.report(dropped);
        core
    }

    /// Adds one context entry for the next `track`: `kind` 0 undefined (skipped), 1 string
    /// (`text`), 2 number (`n`, with `text` = `String(n)`), 3 true, 4 false, else invalid.
    /// Returns `""` or the error (and forgets the entries added so far).
    pub fn add(&mut self, key: String, text: String, n: f64, kind: u8) -> String {
        let value = validate::check_key(&key).and_then(|()| match kind {
            0 => Ok(None),
            1 => validate::string_value(&key, text).map(Some),
            2 => validate::number_value(&key, n, |_| text).map(Some),
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

    /// When a (non-forced) send is due, ms; -1 with an empty queue.
    pub fn due(&self) -> f64 {
        self.engine.due_at().unwrap_or(-1.0)
    }

    /// Whether events are queued.
    pub fn pending(&self) -> bool {
        !self.engine.outbox.entries.is_empty()
    }

    /// The next request body (`""` when nothing is queued past `skip`); see [`Core::ids`].
    pub fn batch(&mut self, skip: usize, keepalive: bool, now: f64) -> String {
        match self.engine.batch(skip, keepalive, now) {
            Some(b) => {
                self.ids = b.ids.join(",");
                b.body
            }
            None => String::new(),
        }
    }

    /// The event ids of the last `batch`, comma-separated (give them back to `settle`).
    pub fn ids(&self) -> String {
        self.ids.clone()
    }

    /// Applies an answer (status 0: none; `answer` flattened by the wrapper); `false`: back off.
    pub fn settle(
        &mut self,
        ids: &str,
        status: f64,
        retry_after: Option<String>,
        answer_text: &str,
        now: f64,
    ) -> bool {
        let ids: Vec<String> = ids.split(',').map(String::from).collect();
        let reply = Reply {
            status: status as u16,
            retry_after,
            answer: answer(answer_text),
        };
        let host = &self.host;
        let (rejections, go_on) = self.engine.settle(host, &ids, &reply, now, &mut Rnd(host));
        self.report(rejections);
        go_on
    }

    /// Re-checks queue ownership, a cross-tab opt-out and orphaned queues.
    pub fn sync(&mut self, now: f64) {
        let host = &self.host;
        let dropped = self.engine.sync(host, now, &mut Rnd(host));
        self.report(dropped);
    }

    /// `sync` plus this instance's heartbeat.
    pub fn heartbeat(&mut self, now: f64) {
        let host = &self.host;
        let dropped = self.engine.heartbeat(host, now, &mut Rnd(host));
        self.report(dropped);
    }

    /// Makes sure this instance still owns its queue.
    pub fn claim(&mut self, now: f64) {
        let host = &self.host;
        self.engine.claim(host, now, &mut Rnd(host));
    }

    /// Releases the queue for adoption (page hidden for good, or `free()`).
    pub fn release(&mut self, now: f64) {
        self.engine.outbox.release(&self.host, now);
    }

    /// Forgets the backoff.
    #[wasm_bindgen(js_name = retryNow)]
    pub fn retry_now(&mut self) {
        self.engine.retry_now();
    }

    /// Remembers the customer id; `""` or the error.
    pub fn identify(&self, id: &str) -> String {
        match self.engine.identify(&self.host, id) {
            Ok(()) => String::new(),
            Err(v) => fail(&v),
        }
    }

    /// Forgets the customer; new anonymous id and session.
    pub fn reset(&self) {
        self.engine.reset(&self.host, &mut Rnd(&self.host));
    }

    /// Opts out (clearing the queue) or back in.
    pub fn opt(&mut self, out: bool) {
        self.engine.set_opted_out(&self.host, out);
    }

    /// Whether the user opted out.
    #[wasm_bindgen(js_name = optedOut)]
    pub fn opted_out(&self) -> bool {
        self.engine.opted_out(&self.host)
    }

    /// The persisted anonymous id.
    #[wasm_bindgen(js_name = anonymousId)]
    pub fn anonymous_id(&self) -> String {
        self.engine.anonymous_id(&self.host, &mut Rnd(&self.host))
    }

    /// The current session id.
    #[wasm_bindgen(js_name = sessionId)]
    pub fn session_id(&self, now: f64) -> String {
        self.engine
            .session_id(&self.host, now, &mut Rnd(&self.host), false)
    }

    /// The identified customer id, if any.
    #[wasm_bindgen(js_name = customerId)]
    pub fn customer_id(&self) -> Option<String> {
        self.engine.customer_id(&self.host)
    }
}
