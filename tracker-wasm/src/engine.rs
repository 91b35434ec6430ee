//! The tracker's decisions without any JavaScript: identities, building and queueing events,
//! choosing the next batch, and applying the collector's answer (retry, split, drop, report).
//!
//! The wasm layer (`bindings`) only converts values, runs timers and performs requests; every
//! rule about what happens to an event lives here and is unit-tested natively.

use crate::wire::cat;
use event_model::limits::{MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_CONTEXT_KEYS, MAX_EVENT_BYTES};
use event_model::{rules, ErrorCode, Violation};

use crate::backoff;
use crate::outbox::Outbox;
use crate::queue::{self, Entry, Limits, KEEPALIVE_MAX_BYTES};
use crate::session;
use crate::store::Store;
use crate::uuid;
use crate::wire::{self, EventFields, Value};

/// Settings, already validated (see the JS options in the crate docs for defaults).
#[derive(Debug, Clone)]
pub struct Config {
    /// The ingest endpoint, `{collectorUrl}/v1/events`.
    pub endpoint: String,
    /// The partner's UUID.
    pub partner_id: String,
    /// The source code stamped on every event.
    pub source: String,
    /// Events per request (default 20, at most 500).
    pub batch_events: usize,
    /// Body bytes per request (default 60 000; keepalive sends are capped at 63 KiB anyway).
    pub max_batch_bytes: usize,
    /// How long a partial batch waits for company (default 1000 ms).
    pub linger_ms: f64,
    /// Queue cap; the oldest events are dropped and reported beyond it (default 1000).
    pub max_queue_events: usize,
    /// Inactivity that ends a session (default 30 min).
    pub session_timeout_ms: f64,
    /// Prefix of every storage key (default "eventline").
    pub prefix: String,
}

/// A source of random bytes (crypto.getRandomValues in the browser).
pub trait Entropy {
    /// 16 random bytes.
    fn bytes(&mut self) -> [u8; 16];
    /// A uniform number in [0, 1).
    fn unit(&mut self) -> f64 {
        let b = self.bytes();
        let n = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], 0]) >> 3;
        n as f64 / (1u64 << 53) as f64
    }
}

/// A request to make: the body and which queued events it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Event ids in body order, comma-separated (results refer to them by index).
    pub ids: String,
    /// Their names in the same order, joined by `\x1f` (names hold no control characters), for
    /// the wrapper's rejection reports.
    pub names: String,
    /// How many events.
    pub count: usize,
    /// The JSON body.
    pub body: String,
}

/// The tracker state for one instance.
#[derive(Debug)]
pub struct Engine {
    /// Settings.
    pub cfg: Config,
    /// The persisted queue.
    pub outbox: Outbox,
    /// No (non-forced) send before this time (ms): the backoff after a failure.
    next_try_at: f64,
    /// After a 413, at most this many events per request until one succeeds (0 = no limit).
    split: usize,
}

/// A random 12-hex-digit instance id (48 bits: unique among a browser's tabs).
fn tab_id(rnd: &mut dyn Entropy) -> String {
    uuid::hex(&rnd.bytes()[..6])
}

// Plain loops with `push` rather than `collect()` in the wasm-side modules: each collect over a
// different iterator type is its own copy of the collecting code in the wasm.

impl Engine {
    /// Opens this instance's queue and adopts released or dead queues of earlier pages/tabs.
    pub fn open(
        cfg: Config,
        store: &dyn Store,
        now: f64,
        rnd: &mut dyn Entropy,
    ) -> (Engine, Vec<Entry>) {
        let outbox = Outbox::open(store, &cfg.prefix, tab_id(rnd), cfg.max_queue_events, now);
        let mut engine = Engine {
            cfg,
            outbox,
            next_try_at: 0.0,
            split: 0,
        };
        let dropped = engine.sync(store, now, rnd);
        (engine, dropped)
    }

    fn key(&self, name: &str) -> String {
        cat(&[&self.cfg.prefix, ".", name])
    }

    /// Whether the user opted out (persisted, shared by all tabs).
    pub fn opted_out(&self, store: &dyn Store) -> bool {
        store.get(&self.key("optout")).is_some()
    }

    /// Opts out (clearing the queue) or back in.
    pub fn set_opted_out(&mut self, store: &dyn Store, out: bool) {
        if out {
            store.set(&self.key("optout"), "1");
            self.outbox.clear(store);
        } else {
            store.remove(&self.key("optout"));
        }
    }

    /// The persisted anonymous id, created on first use.
    pub fn anonymous_id(&self, store: &dyn Store, rnd: &mut dyn Entropy) -> String {
        let key = self.key("aid");
        match store.get(&key) {
            Some(id) if rules::check_id(&id).is_ok() => id,
            _ => {
                let id = uuid::v4(&rnd.bytes());
                store.set(&key, &id);
                id
            }
        }
    }

    /// The current session id; `touch` records activity (and starts a new session after the timeout).
    pub fn session_id(
        &self,
        store: &dyn Store,
        now: f64,
        rnd: &mut dyn Entropy,
        touch: bool,
    ) -> String {
        let key = self.key("sid");
        let stored = store.get(&key);
        let (s, new) = session::touch(stored.as_deref(), now, self.cfg.session_timeout_ms, || {
            uuid::v4(&rnd.bytes())
        });
        if touch || new {
            store.set(&key, &s.encode());
        }
        s.id
    }

    /// The identified customer, if any.
    pub fn customer_id(&self, store: &dyn Store) -> Option<String> {
        store.get(&self.key("cid"))
    }

    /// Remembers the customer id for later events.
    pub fn identify(&self, store: &dyn Store, id: &str) -> Result<(), Violation> {
        rules::check_id(id).map_err(|code| Violation::new(code, "customer_id"))?;
        store.set(&self.key("cid"), id);
        Ok(())
    }

    /// Forgets the customer; new anonymous id and session (a shared device changed hands).
    pub fn reset(&self, store: &dyn Store, rnd: &mut dyn Entropy) {
        store.remove(&self.key("cid"));
        store.set(&self.key("aid"), &uuid::v4(&rnd.bytes()));
        store.remove(&self.key("sid"));
    }

    /// Makes sure this instance still owns its queue (see `outbox`), switching ids if not.
    pub fn claim(&mut self, store: &dyn Store, now: f64, rnd: &mut dyn Entropy) {
        self.outbox.ensure_owned(store, now, || tab_id(rnd));
    }

    /// Re-checks ownership, applies a cross-tab opt-out, and adopts orphaned queues.
    /// Returns the events the queue cap pushed out (reported as `queue_overflow`).
    pub fn sync(&mut self, store: &dyn Store, now: f64, rnd: &mut dyn Entropy) -> Vec<Entry> {
        self.claim(store, now, rnd);
        let out = self.opted_out(store);
        if out && !self.outbox.entries.is_empty() {
            self.outbox.clear(store);
        }
        self.outbox.adopt_orphans(store, now, out)
    }

    /// Refreshes this instance's heartbeat.
    pub fn heartbeat(&mut self, store: &dyn Store, now: f64, rnd: &mut dyn Entropy) -> Vec<Entry> {
        let dropped = self.sync(store, now, rnd);
        self.outbox.heartbeat(store, now);
        dropped
    }

    /// Builds the event, stores it, and returns its id plus any events the cap pushed out.
    /// Returns an empty id and stores nothing while opted out. `context` entries are already
    /// checked one by one (see `validate`); the whole event is checked here.
    pub fn track(
        &mut self,
        store: &dyn Store,
        name: &str,
        context: &[(String, Value)],
        occurred_at_ms: f64,
        now: f64,
        rnd: &mut dyn Entropy,
    ) -> Result<(String, Vec<Entry>), Violation> {
        rules::check_event_name(name).map_err(|code| Violation::new(code, "name"))?;
        if context.len() > MAX_CONTEXT_KEYS {
            return Err(Violation::new(ErrorCode::TooManyContextKeys, "context"));
        }
        if !occurred_at_ms.is_finite() || occurred_at_ms < 0.0 {
            return Err(Violation::new(ErrorCode::InvalidTimestamp, "occurred_at"));
        }
        if self.opted_out(store) {
            return Ok((String::new(), Vec::new()));
        }
        let id = uuid::v7(now as u64, &rnd.bytes());
        let customer = self.customer_id(store);
        let json = wire::write_event(&EventFields {
            event_id: &id,
            name,
            source: &self.cfg.source,
            customer_id: customer.as_deref(),
            anonymous_id: &self.anonymous_id(store, rnd),
            session_id: &self.session_id(store, now, rnd, true),
            occurred_at_ms: occurred_at_ms as i64,
            context,
        });
        if json.len() > MAX_EVENT_BYTES {
            return Err(Violation::new(ErrorCode::EventTooLarge, ""));
        }
        self.claim(store, now, rnd);
        let dropped = self.outbox.push(
            store,
            Entry {
                id: id.clone(),
                name: name.into(),
                json,
                attempts: 0,
                queued_at: now,
                stored_seq: 0,
            },
        );
        Ok((id, dropped))
    }

    /// When the queue wants a (non-forced) send: linger for partial batches, backoff after
    /// failures. `None` when the queue is empty.
    pub fn due_at(&self) -> Option<f64> {
        let due = queue::due_at(
            &self.outbox.entries,
            self.cfg.batch_events,
            self.cfg.linger_ms,
        )?;
        Some(due.max(self.next_try_at))
    }

    /// Forgets the backoff (the network came back, or the user asked to flush).
    pub fn retry_now(&mut self) {
        self.next_try_at = 0.0;
    }

    /// The next request: the oldest events within the count and byte limits (keepalive and
    /// beacon requests within 63 KiB). `skip` leaves out that many events from the front,
    /// for cutting a whole queue into beacon-sized chunks.
    pub fn batch(&self, skip: usize, keepalive: bool, now: f64) -> Option<Batch> {
        let entries = self.outbox.entries.get(skip..)?;
        let mut max_events = self.cfg.batch_events.min(MAX_BATCH_EVENTS);
        if self.split > 0 {
            max_events = max_events.min(self.split);
        }
        let mut max_bytes = self.cfg.max_batch_bytes.min(MAX_BATCH_BYTES);
        if keepalive {
            max_bytes = max_bytes.min(KEEPALIVE_MAX_BYTES);
        }
        let n = queue::take_batch(
            entries,
            &self.cfg.partner_id,
            Limits {
                max_events,
                max_bytes,
            },
        );
        if n == 0 {
            return None;
        }
        let chosen = entries.get(..n)?;
        let (mut ids, mut names) = (String::new(), String::new());
        for e in chosen {
            if !ids.is_empty() {
                ids.push(',');
                names.push('\x1f');
            }
            ids.push_str(&e.id);
            names.push_str(&e.name);
        }
        Some(Batch {
            ids,
            names,
            count: n,
            body: wire::write_batch(
                &self.cfg.partner_id,
                now as i64,
                chosen.iter().map(|e| e.json.as_str()),
            ),
        })
    }

    /// Applies the wrapper's reading of the answer to a request that carried `ids`
    /// (comma-separated, as in [`Batch`]). The wrapper classifies the status (see
    /// [`backoff::classify`]) and reports rejections itself. `retry`: the events stay, an attempt
    /// is counted and sends back off, for at least `n` ms (the `Retry-After`). Otherwise the
    /// events with these ids leave the queue (delivered or reported) and `n` sets how many events
    /// a request may carry after a 413 (0: no limit again; negative: unchanged).
    pub fn settle(
        &mut self,
        store: &dyn Store,
        ids: &str,
        retry: bool,
        n: f64,
        now: f64,
        rnd: &mut dyn Entropy,
    ) {
        let mut list: Vec<&str> = Vec::new();
        for id in crate::wire::fields(ids, b',') {
            if !id.is_empty() {
                list.push(id);
            }
        }
        if retry {
            self.outbox.count_attempt(store, &list);
            let attempts = self.outbox.entries.first().map_or(1, |e| e.attempts.max(1));
            self.next_try_at = now + backoff::delay_ms(attempts - 1, rnd.unit(), Some(n));
            return;
        }
        if n >= 0.0 {
            self.split = n as usize;
        }
        self.next_try_at = 0.0;
        self.outbox.remove(store, &list);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use event_model::json::{decode_envelope, decode_event};
    use event_model::{validate_event, BatchTimes};

    struct Counter(u8);
    impl Entropy for Counter {
        fn bytes(&mut self) -> [u8; 16] {
            self.0 = self.0.wrapping_add(1);
            [self.0; 16]
        }
    }

    const T: f64 = 1_795_600_800_000.0;
    const PARTNER: &str = "5f0c7c1e-7d7a-4c1b-9a57-2f1d3c4b5a69";

    fn config() -> Config {
        Config {
            endpoint: "http://c/v1/events".into(),
            partner_id: PARTNER.into(),
            source: "online_store".into(),
            batch_events: 3,
            max_batch_bytes: 60_000,
            linger_ms: 1000.0,
            max_queue_events: 1000,
            session_timeout_ms: session::DEFAULT_TIMEOUT_MS,
            prefix: "ev".into(),
        }
    }

    fn open(store: &MemoryStore, rnd: &mut Counter) -> Engine {
        Engine::open(config(), store, T, rnd).0
    }

    fn ctx() -> Vec<(String, Value)> {
        vec![
            ("category".into(), Value::Str("Jacket".into())),
            ("price".into(), Value::Num("99.5".into())),
        ]
    }

    #[test]
    fn tracked_events_are_stored_before_track_returns_and_accepted_by_the_collector_rules() {
        let store = MemoryStore::default();
        let mut rnd = Counter(0);
        let mut e = open(&store, &mut rnd);
        e.identify(&store, "42").unwrap();
        let (id, dropped) = e
            .track(&store, "product_viewed", &ctx(), T, T, &mut rnd)
            .unwrap();
        assert!(dropped.is_empty());
        let stored = store.get(&["ev.q.", e.outbox.tab()].concat()).unwrap();
        assert!(stored.contains(&id));

        let batch = e.batch(0, false, T + 500.0).unwrap();
        assert_eq!(batch.ids, id);
        let env = decode_envelope(&batch.body).unwrap();
        let times = BatchTimes {
            sent_at_ms: env.sent_at_ms,
            received_at_ms: env.sent_at_ms,
        };
        let event = validate_event(decode_event(env.events[0].get()).unwrap(), times).unwrap();
        assert_eq!(event.customer_id.as_deref(), Some("42"));
        assert_eq!(
            event.anonymous_id.as_deref(),
            Some(e.anonymous_id(&store, &mut rnd).as_str())
        );
        assert_eq!(event.source, "online_store");
    }

    #[test]
    fn whole_event_rules_throw_and_queue_nothing() {
        let store = MemoryStore::default();
        let mut rnd = Counter(0);
        let mut e = open(&store, &mut rnd);
        let err = e.track(&store, " bad", &[], T, T, &mut rnd).unwrap_err();
        assert_eq!(
            (err.code, err.field.as_str()),
            (ErrorCode::InvalidName, "name")
        );
        let many: Vec<(String, Value)> = (0..101)
            .map(|i| (["k", &i.to_string()].concat(), Value::Bool(true)))
            .collect();
        assert_eq!(
            e.track(&store, "x", &many, T, T, &mut rnd)
                .unwrap_err()
                .code,
            ErrorCode::TooManyContextKeys
        );
        let big: Vec<(String, Value)> = (0..20)
            .map(|i| (["k", &i.to_string()].concat(), Value::Str("v".repeat(2000))))
            .collect();
        assert_eq!(
            e.track(&store, "x", &big, T, T, &mut rnd).unwrap_err().code,
            ErrorCode::EventTooLarge
        );
        assert!(e.outbox.entries.is_empty());
    }

    #[test]
    fn partial_batches_linger_and_full_ones_are_due_now() {
        let store = MemoryStore::default();
        let mut rnd = Counter(0);
        let mut e = open(&store, &mut rnd);
        assert_eq!(e.due_at(), None);
        e.track(&store, "a", &[], T, T, &mut rnd).unwrap();
        assert_eq!(e.due_at(), Some(T + 1000.0));
        e.track(&store, "b", &[], T, T + 10.0, &mut rnd).unwrap();
        e.track(&store, "c", &[], T, T + 20.0, &mut rnd).unwrap();
        assert_eq!(e.due_at(), Some(0.0));
    }

    #[test]
    fn settled_events_leave_the_queue_and_batches_name_their_events() {
        let store = MemoryStore::default();
        let mut rnd = Counter(0);
        let mut e = open(&store, &mut rnd);
        for n in ["a", "b", "c", "d"] {
            e.track(&store, n, &[], T, T, &mut rnd).unwrap();
        }
        let batch = e.batch(0, false, T).unwrap();
        assert_eq!(batch.count, 3);
        assert_eq!(batch.names, "a\x1fb\x1fc");
        assert_eq!(batch.ids.split(',').count(), 3);
        e.settle(&store, &batch.ids, false, -1.0, T, &mut rnd);
        assert_eq!(e.outbox.entries.len(), 1);
        assert_eq!(e.outbox.entries[0].name, "d");
        let stored = store.get(&["ev.q.", e.outbox.tab()].concat()).unwrap();
        assert!(!stored.contains(batch.ids.split(',').next().unwrap()));
    }

    #[test]
    fn a_retry_keeps_everything_and_backs_off_with_retry_after_as_floor() {
        let store = MemoryStore::default();
        let mut rnd = Counter(0);
        let mut e = open(&store, &mut rnd);
        e.track(&store, "a", &[], T, T, &mut rnd).unwrap();
        let batch = e.batch(0, false, T).unwrap();
        e.settle(&store, &batch.ids, true, 7000.0, T, &mut rnd);
        assert_eq!(e.outbox.entries[0].attempts, 1);
        let due = e.due_at().unwrap();
        assert!(
            (T + 7000.0..=T + 7000.0 + backoff::BASE_MS).contains(&due),
            "{due}"
        );
        // Without Retry-After: also kept, the attempt count grows the ceiling.
        e.settle(&store, &batch.ids, true, 0.0, T, &mut rnd);
        assert_eq!(e.outbox.entries[0].attempts, 2);
        assert!(e.due_at().unwrap() <= T + 2.0 * backoff::BASE_MS);
        e.retry_now();
        assert_eq!(e.due_at(), Some(0.0));
        // A settled request forgets the backoff too.
        e.settle(&store, "", true, 60_000.0, T, &mut rnd);
        assert!(e.due_at().unwrap() >= T + 60_000.0);
        e.settle(&store, "", false, -1.0, T, &mut rnd);
        assert_eq!(e.due_at(), Some(0.0));
    }

    #[test]
    fn a_split_limits_batches_until_an_answered_request_clears_it() {
        let store = MemoryStore::default();
        let mut rnd = Counter(0);
        let mut e = open(&store, &mut rnd);
        e.cfg.batch_events = 4;
        for n in ["a", "b", "c", "d"] {
            e.track(&store, n, &[], T, T, &mut rnd).unwrap();
        }
        assert_eq!(e.batch(0, false, T).unwrap().count, 4);
        e.settle(&store, "", false, 2.0, T, &mut rnd);
        let half = e.batch(0, false, T).unwrap();
        assert_eq!(half.count, 2);
        e.settle(&store, "", false, 1.0, T, &mut rnd);
        let single = e.batch(0, false, T).unwrap();
        assert_eq!(single.count, 1);
        // A dropped (reported) request leaves the limit as it is.
        e.settle(&store, &single.ids, false, -1.0, T, &mut rnd);
        assert_eq!(e.outbox.entries.len(), 3);
        assert_eq!(e.batch(0, false, T).unwrap().count, 1);
        // An answered one clears it.
        e.settle(&store, "", false, 0.0, T, &mut rnd);
        assert_eq!(e.batch(0, false, T).unwrap().count, 3);
    }

    #[test]
    fn keepalive_batches_stay_under_64_kib() {
        let store = MemoryStore::default();
        let mut rnd = Counter(0);
        let mut e = open(&store, &mut rnd);
        e.cfg.batch_events = 500;
        e.cfg.max_batch_bytes = 1 << 20;
        let c = vec![("text".to_string(), Value::Str("x".repeat(2000)))];
        for _ in 0..100 {
            e.track(&store, "big", &c, T, T, &mut rnd).unwrap();
        }
        let mut skip = 0;
        while let Some(b) = e.batch(skip, true, T) {
            assert!(b.body.len() <= 64 * 1024, "{}", b.body.len());
            skip += b.count;
        }
        assert_eq!(skip, 100);
        assert!(e.batch(0, false, T).unwrap().body.len() > 64 * 1024);
    }

    #[test]
    fn opting_out_clears_the_queue_and_stores_nothing() {
        let store = MemoryStore::default();
        let mut rnd = Counter(0);
        let mut e = open(&store, &mut rnd);
        e.track(&store, "a", &[], T, T, &mut rnd).unwrap();
        e.set_opted_out(&store, true);
        assert!(e.outbox.entries.is_empty());
        let (id, _) = e.track(&store, "b", &[], T, T, &mut rnd).unwrap();
        assert_eq!(id, "");
        assert!(e.outbox.entries.is_empty());
        // Another tab opened meanwhile sees the flag and clears too.
        let mut other = open(&store, &mut rnd);
        assert!(other.opted_out(&store));
        e.set_opted_out(&store, false);
        assert!(!other
            .track(&store, "c", &[], T, T, &mut rnd)
            .unwrap()
            .0
            .is_empty());
    }

    #[test]
    fn sessions_and_identities_persist_across_page_loads() {
        let store = MemoryStore::default();
        let mut rnd = Counter(0);
        let e = open(&store, &mut rnd);
        let aid = e.anonymous_id(&store, &mut rnd);
        let sid = e.session_id(&store, T, &mut rnd, true);
        let reloaded = open(&store, &mut rnd);
        assert_eq!(reloaded.anonymous_id(&store, &mut rnd), aid);
        assert_eq!(
            reloaded.session_id(&store, T + 60_000.0, &mut rnd, true),
            sid
        );
        let later = reloaded.session_id(
            &store,
            T + 60_000.0 + session::DEFAULT_TIMEOUT_MS + 1.0,
            &mut rnd,
            true,
        );
        assert_ne!(later, sid);
        reloaded.identify(&store, "42").unwrap();
        assert_eq!(e.customer_id(&store).as_deref(), Some("42"));
        assert_eq!(e.identify(&store, " 42").unwrap_err().field, "customer_id");
        reloaded.reset(&store, &mut rnd);
        assert_eq!(e.customer_id(&store), None);
        assert_ne!(e.anonymous_id(&store, &mut rnd), aid);
    }

    #[test]
    fn a_reload_adopts_the_released_queue_and_resends_the_same_events() {
        let store = MemoryStore::default();
        let mut rnd = Counter(0);
        let mut first = open(&store, &mut rnd);
        first.track(&store, "a", &[], T, T, &mut rnd).unwrap();
        let sent = first.batch(0, true, T).unwrap();
        first.outbox.release(&store, T);
        let (second, _) = Engine::open(config(), &store, T + 100.0, &mut rnd);
        let resent = second.batch(0, false, T + 200.0).unwrap();
        assert_eq!(resent.ids, sent.ids);
    }
}
