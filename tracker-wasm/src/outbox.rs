//! One tracker instance's persisted queue, and how instances (browser tabs, or trackers sharing
//! a host store) hand queues over without losing or doubling events.
//!
//! Why per-instance keys: localStorage has no transactions, so two tabs doing read-modify-write
//! on one shared queue key lose each other's events. Here each instance ("tab") owns
//! `{prefix}.q.{tab}` and `{prefix}.hb.{tab}` and is their only writer while it lives.
//!
//! Heartbeat values (`{prefix}.hb.{tab}`):
//! - `L{ms}`: live, beat at `ms` (every [`HEARTBEAT_MS`]; hidden tabs are throttled to ~1/min).
//! - `R{ms}`: released at page hide/unload; the queue is up for adoption at once.
//! - `A{ms}:{seq}:{adopter}`: adopted by `adopter`, who took the queue as of write number `seq`.
//!
//! A live tab adopts a queue whose owner released it, whose beat is older than [`STALE_MS`], or
//! that has no beat. It first writes a claim (`{prefix}.claim.{tab}`) and reads it back so two
//! adopters don't both take it, merges the entries into its own queue, writes the tombstone, and
//! removes the old queue. An owner checks its beat before every write; if it finds a tombstone
//! (it was frozen, not dead), it keeps only entries written after `seq` and continues under a new
//! tab id, so each event has exactly one live owner.

use crate::queue::{self, Entry};
use crate::store::Store;
use crate::wire::push_int;
use crate::wire::{cat, cut, fields};

/// How often a live instance refreshes its beat (ms).
pub const HEARTBEAT_MS: f64 = 5_000.0;
/// A beat older than this marks a dead (or frozen) instance whose queue may be adopted (ms).
/// Chrome runs timers of long-hidden tabs once a minute, so this allows for two missed beats.
pub const STALE_MS: f64 = 150_000.0;
/// A claim older than this belongs to an adopter that died mid-way and is ignored (ms).
pub const CLAIM_TTL_MS: f64 = 10_000.0;
/// Tombstones are kept this long for owners that wake up from a freeze (ms). An owner that finds
/// no tombstone assumes everything it had written was taken, which is right unless it wrote in
/// the moment of adoption; an hour bounds the keys a busy browser accumulates.
pub const TOMBSTONE_TTL_MS: f64 = 3_600_000.0;

/// One instance's queue and its ownership state.
#[derive(Debug)]
pub struct Outbox {
    prefix: String,
    tab: String,
    /// The beat value this instance last wrote; anything else in storage means it lost the queue.
    beat: String,
    /// Write sequence number of the queue key.
    seq: u64,
    /// Queued events, oldest first (mirrors the queue key).
    pub entries: Vec<Entry>,
    /// Oldest entries beyond this are dropped.
    pub max_entries: usize,
}

fn key(prefix: &str, kind: &str, tab: &str) -> String {
    cat(&[prefix, ".", kind, ".", tab])
}

/// `Vec::retain` through one `dyn` predicate: a single copy of the retain code in the wasm.
fn keep(entries: &mut Vec<Entry>, wanted: &dyn Fn(&Entry) -> bool) {
    entries.retain(wanted);
}

fn ms_text(ms: f64) -> String {
    let mut out = String::new();
    push_int(&mut out, ms as i64);
    out
}

fn parse_num(text: &str) -> Option<f64> {
    crate::wire::digits(text, 19).map(|n| n as f64)
}

/// A parsed heartbeat value.
#[derive(Debug, Clone, PartialEq)]
enum Beat {
    Live(f64),
    Released,
    Adopted { at: f64, seq: u64 },
}

fn parse_beat(text: &str) -> Option<Beat> {
    let (tag, rest) = (text.get(..1)?, text.get(1..)?);
    match tag {
        "L" => Some(Beat::Live(parse_num(rest)?)),
        "R" => Some(Beat::Released),
        "A" => {
            let (at, rest) = cut(rest, b':')?;
            let at = parse_num(at)?;
            let seq = parse_num(cut(rest, b':').map_or(rest, |(seq, _)| seq))? as u64;
            Some(Beat::Adopted { at, seq })
        }
        _ => None,
    }
}

impl Outbox {
    /// Starts a new instance `tab` (a fresh random id per page load) and announces it.
    pub fn open(
        store: &dyn Store,
        prefix: &str,
        tab: String,
        max_entries: usize,
        now: f64,
    ) -> Outbox {
        let mut outbox = Outbox {
            prefix: prefix.into(),
            tab,
            beat: String::new(),
            seq: 0,
            entries: Vec::new(),
            max_entries,
        };
        outbox.write_beat(store, cat(&["L", &ms_text(now)]));
        outbox.persist(store);
        outbox.register(store);
        outbox
    }

    /// This instance's current tab id.
    pub fn tab(&self) -> &str {
        &self.tab
    }

    fn write_beat(&mut self, store: &dyn Store, value: String) {
        if store.set(&key(&self.prefix, "hb", &self.tab), &value) {
            self.beat = value;
        }
    }

    /// Hosts whose store cannot list keys get an index of tab ids instead (re-asserted on every
    /// beat, since concurrent index writers may lose each other's additions).
    fn register(&self, store: &dyn Store) {
        if store.keys().is_some() {
            return;
        }
        let index_key = cat(&[&self.prefix, ".tabs"]);
        let index = store.get(&index_key).unwrap_or_default();
        if !fields(&index, b' ').any(|t| t == self.tab) {
            let updated = if index.is_empty() {
                self.tab.clone()
            } else {
                cat(&[&index, " ", &self.tab])
            };
            store.set(&index_key, &updated);
        }
    }

    fn unregister(&self, store: &dyn Store, tab: &str) {
        let index_key = cat(&[&self.prefix, ".tabs"]);
        if let Some(index) = store.get(&index_key) {
            let mut kept = String::new();
            for t in fields(&index, b' ').filter(|t| *t != tab && !t.is_empty()) {
                if !kept.is_empty() {
                    kept.push(' ');
                }
                kept.push_str(t);
            }
            store.set(&index_key, &kept);
        }
    }

    /// Writes the queue key; `false` if the store refused (the entries stay in memory).
    pub fn persist(&mut self, store: &dyn Store) -> bool {
        self.seq += 1;
        store.set(
            &key(&self.prefix, "q", &self.tab),
            &queue::encode(self.seq, &self.entries),
        )
    }

    /// Checks that this instance still owns its queue; if another adopted it (this tab was frozen
    /// or released, then came back), keeps only entries written after the adoption and continues
    /// under `fresh_tab`. Returns `true` if it had to switch ids.
    pub fn ensure_owned(
        &mut self,
        store: &dyn Store,
        now: f64,
        fresh_tab: impl FnOnce() -> String,
    ) -> bool {
        let current = store.get(&key(&self.prefix, "hb", &self.tab));
        if current.as_deref() == Some(self.beat.as_str()) {
            return false;
        }
        // Without a tombstone (storage cleared, or tombstone expired) the adopter is unknown:
        // everything written so far is assumed taken.
        let taken_up_to = match current.as_deref().and_then(parse_beat) {
            Some(Beat::Adopted { seq, .. }) => seq,
            _ => self.seq,
        };
        keep(&mut self.entries, &|e| e.stored_seq > taken_up_to);
        self.tab = fresh_tab();
        self.seq = 0;
        for e in &mut self.entries {
            e.stored_seq = 1;
        }
        self.write_beat(store, cat(&["L", &ms_text(now)]));
        self.persist(store);
        self.register(store);
        true
    }

    /// Refreshes the beat (and the index registration); call every [`HEARTBEAT_MS`].
    pub fn heartbeat(&mut self, store: &dyn Store, now: f64) {
        self.write_beat(store, cat(&["L", &ms_text(now)]));
        self.register(store);
    }

    /// Marks the queue released so the next page load (or another tab) adopts it at once.
    pub fn release(&mut self, store: &dyn Store, now: f64) {
        self.write_beat(store, cat(&["R", &ms_text(now)]));
    }

    /// Queues `entry` and persists; returns entries dropped because the queue was full.
    pub fn push(&mut self, store: &dyn Store, mut entry: Entry) -> Vec<Entry> {
        entry.stored_seq = self.seq + 1;
        let dropped = queue::push_capped(&mut self.entries, entry, self.max_entries);
        self.persist(store);
        dropped
    }

    /// Removes the entries with these ids (delivered or permanently rejected) and persists.
    pub fn remove(&mut self, store: &dyn Store, ids: &[&str]) {
        let before = self.entries.len();
        keep(&mut self.entries, &|e| !ids.contains(&e.id.as_str()));
        if self.entries.len() != before {
            self.persist(store);
        }
    }

    /// Counts a failed attempt for the entries with these ids and persists.
    pub fn count_attempt(&mut self, store: &dyn Store, ids: &[&str]) {
        for e in self
            .entries
            .iter_mut()
            .filter(|e| ids.contains(&e.id.as_str()))
        {
            e.attempts = e.attempts.saturating_add(1);
        }
        self.persist(store);
    }

    /// Forgets every queued event (opt-out).
    pub fn clear(&mut self, store: &dyn Store) {
        self.entries.clear();
        self.persist(store);
    }

    fn other_tabs(&self, store: &dyn Store) -> Vec<String> {
        // Each tab appears twice (queue and beat); no sort, which would cost kilobytes of wasm.
        let mut tabs: Vec<String> = Vec::new();
        let mut consider = |name: &str| {
            if !name.is_empty() && name != self.tab && !tabs.iter().any(|t| t == name) {
                tabs.push(name.into());
            }
        };
        match store.keys() {
            Some(keys) => {
                let q = cat(&[&self.prefix, ".q."]);
                let hb = cat(&[&self.prefix, ".hb."]);
                for k in fields(&keys, b'\n') {
                    if let Some(name) = k
                        .strip_prefix(q.as_str())
                        .or_else(|| k.strip_prefix(hb.as_str()))
                    {
                        consider(name);
                    }
                }
            }
            None => {
                let index = store
                    .get(&cat(&[&self.prefix, ".tabs"]))
                    .unwrap_or_default();
                for name in fields(&index, b' ') {
                    consider(name);
                }
            }
        }
        tabs
    }

    /// Adopts the queues of released, dead or frozen instances (or deletes them when `discard`,
    /// i.e. opted out) and sweeps old tombstones. Returns the entries dropped by the size cap.
    pub fn adopt_orphans(&mut self, store: &dyn Store, now: f64, discard: bool) -> Vec<Entry> {
        let mut dropped = Vec::new();
        for tab in self.other_tabs(store) {
            let (hb_key, q_key) = (key(&self.prefix, "hb", &tab), key(&self.prefix, "q", &tab));
            let beat = store.get(&hb_key);
            match beat.as_deref().map(parse_beat) {
                Some(Some(Beat::Live(at))) if now - at <= STALE_MS => continue,
                Some(Some(Beat::Adopted { at, .. })) => {
                    // A queue next to a tombstone is the remains of an adopter that stopped
                    // between merging and deleting; the entries are already merged.
                    if now - at > CLAIM_TTL_MS {
                        store.remove(&q_key);
                    }
                    if now - at > TOMBSTONE_TTL_MS {
                        store.remove(&hb_key);
                        self.unregister(store, &tab);
                    }
                    continue;
                }
                _ => {}
            }
            let Some(text) = store.get(&q_key) else {
                // A beat without a queue: nothing to take, just tidy up.
                if beat.is_some() {
                    store.remove(&hb_key);
                }
                self.unregister(store, &tab);
                continue;
            };
            let claim_key = key(&self.prefix, "claim", &tab);
            if let Some((at, who)) = store.get(&claim_key).as_deref().and_then(|c| cut(c, b':')) {
                if who != self.tab && parse_num(at).is_some_and(|at| now - at < CLAIM_TTL_MS) {
                    continue;
                }
            }
            let claim = cat(&[&ms_text(now), ":", self.tab.as_str()]);
            if !store.set(&claim_key, &claim) || store.get(&claim_key).as_deref() != Some(&claim) {
                continue;
            }
            let (seq, entries) = queue::decode(&text).unwrap_or_default();
            if !discard {
                for mut e in entries {
                    e.stored_seq = self.seq + 1;
                    dropped.extend(queue::push_capped(&mut self.entries, e, self.max_entries));
                }
                // Persist before the old queue disappears, so a crash here duplicates, never loses.
                self.persist(store);
            }
            let mut tomb = cat(&["A", &ms_text(now), ":"]);
            push_int(&mut tomb, seq as i64);
            tomb.push(':');
            tomb.push_str(&self.tab);
            store.set(&hb_key, &tomb);
            store.remove(&q_key);
            store.remove(&claim_key);
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn entry(n: u8) -> Entry {
        Entry {
            id: crate::uuid::v7(1_795_600_800_000, &[n; 16]),
            name: "e".into(),
            json: ["{\"n\":", &n.to_string(), "}"].concat(),
            attempts: 0,
            queued_at: 0.0,
            stored_seq: 0,
        }
    }

    fn ids(o: &Outbox) -> Vec<u8> {
        o.entries
            .iter()
            .map(|e| e.json[5..e.json.len() - 1].parse().unwrap())
            .collect()
    }

    const T: f64 = 1_795_600_800_000.0;

    #[test]
    fn each_tab_writes_only_its_own_keys() {
        let store = MemoryStore::default();
        let mut a = Outbox::open(&store, "ev", "a".into(), 100, T);
        let mut b = Outbox::open(&store, "ev", "b".into(), 100, T);
        a.push(&store, entry(1));
        b.push(&store, entry(2));
        a.push(&store, entry(3));
        let (_, qa) = queue::decode(&store.get("ev.q.a").unwrap()).unwrap();
        let (_, qb) = queue::decode(&store.get("ev.q.b").unwrap()).unwrap();
        assert_eq!((qa.len(), qb.len()), (2, 1));
        // Both live: neither adopts the other.
        assert!(a.adopt_orphans(&store, T + 1000.0, false).is_empty());
        assert_eq!(ids(&a), [1, 3]);
        assert_eq!(ids(&b), [2]);
    }

    #[test]
    fn a_released_queue_is_adopted_at_once_by_the_next_page() {
        let store = MemoryStore::default();
        let mut old = Outbox::open(&store, "ev", "old".into(), 100, T);
        old.push(&store, entry(1));
        old.push(&store, entry(2));
        old.release(&store, T + 10.0);
        let mut new = Outbox::open(&store, "ev", "new".into(), 100, T + 20.0);
        new.adopt_orphans(&store, T + 20.0, false);
        assert_eq!(ids(&new), [1, 2]);
        assert!(store.get("ev.q.old").is_none());
        assert!(store.get("ev.hb.old").unwrap().starts_with('A'));
        // Persisted in the adopter's own key.
        assert_eq!(
            queue::decode(&store.get("ev.q.new").unwrap())
                .unwrap()
                .1
                .len(),
            2
        );
        // A third tab finds nothing left to take.
        let mut third = Outbox::open(&store, "ev", "third".into(), 100, T + 30.0);
        third.adopt_orphans(&store, T + 30.0, false);
        assert!(third.entries.is_empty());
    }

    #[test]
    fn a_dead_tab_is_adopted_only_after_its_beat_goes_stale() {
        let store = MemoryStore::default();
        let mut dead = Outbox::open(&store, "ev", "dead".into(), 100, T);
        dead.push(&store, entry(1));
        let mut live = Outbox::open(&store, "ev", "live".into(), 100, T);
        live.adopt_orphans(&store, T + STALE_MS, false);
        assert!(live.entries.is_empty());
        live.adopt_orphans(&store, T + STALE_MS + 1.0, false);
        assert_eq!(ids(&live), [1]);
    }

    #[test]
    fn a_frozen_tab_that_wakes_keeps_only_what_it_wrote_after_adoption() {
        let store = MemoryStore::default();
        let mut frozen = Outbox::open(&store, "ev", "f".into(), 100, T);
        frozen.push(&store, entry(1));
        frozen.push(&store, entry(2));
        let mut other = Outbox::open(&store, "ev", "o".into(), 100, T);
        other.adopt_orphans(&store, T + STALE_MS + 1.0, false);
        assert_eq!(ids(&other), [1, 2]);
        // The frozen tab wakes: before its next write it notices and moves to a new id, empty.
        assert!(frozen.ensure_owned(&store, T + STALE_MS + 2.0, || "f2".into()));
        assert!(frozen.entries.is_empty());
        assert_eq!(frozen.tab(), "f2");
        frozen.push(&store, entry(3));
        assert!(!frozen.ensure_owned(&store, T + STALE_MS + 3.0, || "f3".into()));
        assert_eq!(ids(&frozen), [3]);
    }

    #[test]
    fn an_event_written_during_adoption_stays_with_its_writer() {
        let store = MemoryStore::default();
        let mut a = Outbox::open(&store, "ev", "a".into(), 100, T);
        a.push(&store, entry(1));
        // Simulate the cross-process race: the adopter read seq 2 (open + one push)...
        let mut b = Outbox::open(&store, "ev", "b".into(), 100, T);
        b.adopt_orphans(&store, T + STALE_MS + 1.0, false);
        // ...while `a`, not yet seeing the tombstone, had written entry 2 in memory as seq 3.
        let mut late = entry(2);
        late.stored_seq = 3;
        a.entries.push(late);
        assert!(a.ensure_owned(&store, T + STALE_MS + 2.0, || "a2".into()));
        assert_eq!(ids(&a), [2]);
        assert_eq!(ids(&b), [1]);
    }

    #[test]
    fn opted_out_adoption_discards() {
        let store = MemoryStore::default();
        let mut old = Outbox::open(&store, "ev", "old".into(), 100, T);
        old.push(&store, entry(1));
        old.release(&store, T);
        let mut new = Outbox::open(&store, "ev", "new".into(), 100, T);
        new.adopt_orphans(&store, T, true);
        assert!(new.entries.is_empty());
        assert!(store.get("ev.q.old").is_none());
    }

    #[test]
    fn adoption_respects_the_size_cap_and_reports_drops() {
        let store = MemoryStore::default();
        let mut old = Outbox::open(&store, "ev", "old".into(), 100, T);
        for n in 0..5 {
            old.push(&store, entry(n));
        }
        old.release(&store, T);
        let mut new = Outbox::open(&store, "ev", "new".into(), 3, T);
        let dropped = new.adopt_orphans(&store, T, false);
        assert_eq!(dropped.len(), 2);
        assert_eq!(ids(&new), [2, 3, 4]);
    }

    #[test]
    fn a_fresh_claim_by_another_adopter_is_respected() {
        let store = MemoryStore::default();
        let mut old = Outbox::open(&store, "ev", "old".into(), 100, T);
        old.push(&store, entry(1));
        old.release(&store, T);
        store.set("ev.claim.old", &[&ms_text(T), ":zzz"].concat());
        let mut new = Outbox::open(&store, "ev", "new".into(), 100, T);
        new.adopt_orphans(&store, T + 1.0, false);
        assert!(new.entries.is_empty());
        new.adopt_orphans(&store, T + CLAIM_TTL_MS + 1.0, false);
        assert_eq!(ids(&new), [1]);
    }

    /// A host store without key listing: discovery goes through the index key.
    struct NoListing(MemoryStore);
    impl Store for NoListing {
        fn get(&self, k: &str) -> Option<String> {
            self.0.get(k)
        }
        fn set(&self, k: &str, v: &str) -> bool {
            self.0.set(k, v)
        }
        fn remove(&self, k: &str) {
            self.0.remove(k)
        }
        fn keys(&self) -> Option<String> {
            None
        }
    }

    #[test]
    fn stores_without_listing_use_the_index() {
        let store = NoListing(MemoryStore::default());
        let mut old = Outbox::open(&store, "ev", "old".into(), 100, T);
        old.push(&store, entry(1));
        old.release(&store, T);
        let mut new = Outbox::open(&store, "ev", "new".into(), 100, T);
        assert_eq!(store.get("ev.tabs").unwrap(), "old new");
        new.adopt_orphans(&store, T, false);
        assert_eq!(ids(&new), [1]);
        new.adopt_orphans(&store, T + TOMBSTONE_TTL_MS + 1.0, false);
        assert_eq!(store.get("ev.tabs").unwrap(), "new");
    }
}
