//! The persisted queue model: entries (pre-serialised event JSON + id + attempt count), their
//! storage encoding, batching by count / bytes / linger time, and the size cap.
//!
//! Events are serialised once, when tracked, and stored as that text: a retry or a page reload
//! resends byte-identical events with the same `event_id`, which the collector deduplicates.

use crate::wire;

/// One queued event.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The event's `event_id`.
    pub id: String,
    /// The event name, for rejection reports.
    pub name: String,
    /// The event as wire JSON text.
    pub json: String,
    /// Failed delivery attempts so far (drives the backoff).
    pub attempts: u32,
    /// When it was queued here (ms); not persisted, adopted entries count as overdue (0).
    pub queued_at: f64,
    /// The owner's write sequence number that first stored it (see `outbox`); not persisted.
    pub stored_seq: u64,
}

/// Batch limits for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most events per request.
    pub max_events: usize,
    /// Most body bytes per request.
    pub max_bytes: usize,
}

/// Largest body sent with fetch keepalive or sendBeacon. Browsers refuse more than 64 KiB in
/// flight per page for those; a little headroom covers headers some browsers count too.
pub const KEEPALIVE_MAX_BYTES: usize = 63 * 1024;

const HEADER: &str = "eventline-queue 1 ";

/// Encodes entries for storage: a header line with the write sequence number, then one line per
/// entry, `id \t attempts \t name \t json`. Names have no control characters (rule-checked) and
/// the JSON writer escapes them, so tabs and newlines are unambiguous separators.
pub fn encode(seq: u64, entries: &[Entry]) -> String {
    let bytes: usize = entries
        .iter()
        .map(|e| e.json.len() + e.name.len() + 48)
        .sum();
    let mut out = String::with_capacity(bytes + 32);
    out.push_str(HEADER);
    wire::push_int(&mut out, seq as i64);
    for e in entries {
        out.push('\n');
        out.push_str(&e.id);
        out.push('\t');
        wire::push_int(&mut out, i64::from(e.attempts));
        out.push('\t');
        out.push_str(&e.name);
        out.push('\t');
        out.push_str(&e.json);
    }
    out
}

fn parse_u64(text: &str) -> Option<u64> {
    wire::digits(text, 19)
}

fn decode_line(line: &str) -> Option<Entry> {
    let (id, rest) = wire::cut(line, b'\t')?;
    let (attempts, rest) = wire::cut(rest, b'\t')?;
    let (name, json) = wire::cut(rest, b'\t')?;
    if id.len() != 36 || !json.starts_with('{') || !json.ends_with('}') {
        return None;
    }
    Some(Entry {
        id: id.into(),
        name: name.into(),
        json: json.into(),
        attempts: parse_u64(attempts)?.min(u64::from(u32::MAX)) as u32,
        queued_at: 0.0,
        stored_seq: 0,
    })
}

/// Decodes what [`encode`] wrote: the sequence number and the entries. Malformed lines are
/// skipped (a truncated write must not poison the rest); a foreign value yields `None`.
pub fn decode(text: &str) -> Option<(u64, Vec<Entry>)> {
    let mut lines = wire::fields(text, b'\n');
    let seq = parse_u64(lines.next()?.strip_prefix(HEADER)?)?;
    let mut entries = Vec::new();
    for line in lines {
        if let Some(entry) = decode_line(line) {
            entries.push(entry);
        }
    }
    Some((seq, entries))
}

/// How many entries from the front make the next request: at most `max_events`, and within
/// `max_bytes` of body, but always at least one (a single event is ≤ 32 KiB by the rules).
pub fn take_batch(entries: &[Entry], partner_id: &str, limits: Limits) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for e in entries.iter().take(limits.max_events.max(1)) {
        if n > 0 && wire::batch_size(partner_id, bytes + e.json.len(), n + 1) > limits.max_bytes {
            break;
        }
        bytes += e.json.len();
        n += 1;
    }
    n
}

/// When the queue should next be sent (ms): now if a full batch waits or anything was retried
/// or adopted, else when the oldest entry has lingered `linger_ms`. `None` when empty.
pub fn due_at(entries: &[Entry], batch_events: usize, linger_ms: f64) -> Option<f64> {
    let first = entries.first()?;
    if entries.len() >= batch_events || first.attempts > 0 {
        return Some(0.0);
    }
    Some(first.queued_at + linger_ms)
}

/// Appends `entry` unless its id is already queued, then drops the oldest entries beyond
/// `max_entries`; returns the dropped ones so they can be reported.
pub fn push_capped(entries: &mut Vec<Entry>, entry: Entry, max_entries: usize) -> Vec<Entry> {
    if !entries.iter().any(|e| e.id == entry.id) {
        entries.push(entry);
    }
    let excess = entries.len().saturating_sub(max_entries.max(1));
    let mut dropped = Vec::new();
    if excess > 0 {
        // One pass over the old list instead of `split_off`, whose bounds assertion would bring
        // panic message formatting into the stable wasm build.
        for (i, e) in std::mem::take(entries).into_iter().enumerate() {
            if i < excess {
                dropped.push(e);
            } else {
                entries.push(e);
            }
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u32, json_len: usize) -> Entry {
        let id = crate::uuid::v7(1_795_600_800_000 + u64::from(n), &[n as u8; 16]);
        // {"k":"xxx…"} is 8 bytes plus the filler.
        let filler = "x".repeat(json_len.saturating_sub(8));
        Entry {
            json: ["{\"k\":\"", &filler, "\"}"].concat(),
            id,
            name: "product_viewed".into(),
            attempts: 0,
            queued_at: f64::from(n),
            stored_seq: 0,
        }
    }

    #[test]
    fn storage_encoding_round_trips() {
        let mut entries = vec![entry(1, 40), entry(2, 60)];
        entries[0].json = r#"{"event_id":"x","context":{"a":"tab\there\nnewline"}}"#
            .replace('\t', "\\t")
            .replace('\n', "\\n");
        entries[1].attempts = 3;
        entries[1].name = "Order Completed".into();
        let text = encode(42, &entries);
        let (seq, back) = decode(&text).unwrap();
        assert_eq!(seq, 42);
        assert_eq!(back.len(), 2);
        for (a, b) in entries.iter().zip(&back) {
            assert_eq!(
                (&a.id, &a.name, &a.json, a.attempts),
                (&b.id, &b.name, &b.json, b.attempts)
            );
            assert_eq!(b.queued_at, 0.0, "adopted entries are overdue");
        }
        assert_eq!(decode(&encode(7, &[])).unwrap(), (7, vec![]));
    }

    #[test]
    fn decoding_skips_damaged_lines_and_refuses_foreign_values() {
        let good = encode(1, &[entry(1, 30), entry(2, 30)]);
        let damaged = good.replacen("\t0\t", "\t", 1); // first entry loses a column
        assert_eq!(decode(&damaged).unwrap().1.len(), 1);
        let truncated = &good[..good.len() - 3];
        assert_eq!(decode(truncated).unwrap().1.len(), 1);
        assert!(decode("[]").is_none());
        assert!(decode("").is_none());
    }

    const P: &str = "5f0c7c1e-7d7a-4c1b-9a57-2f1d3c4b5a69";

    #[test]
    fn batches_stop_at_the_event_count() {
        let entries: Vec<Entry> = (0..30).map(|n| entry(n, 100)).collect();
        let limits = Limits {
            max_events: 20,
            max_bytes: 1 << 20,
        };
        assert_eq!(take_batch(&entries, P, limits), 20);
        assert_eq!(take_batch(&entries[20..], P, limits), 10);
        assert_eq!(take_batch(&[], P, limits), 0);
    }

    #[test]
    fn batches_stop_before_the_byte_limit() {
        let entries: Vec<Entry> = (0..100).map(|n| entry(n, 1000)).collect();
        let limits = Limits {
            max_events: 500,
            max_bytes: KEEPALIVE_MAX_BYTES,
        };
        let n = take_batch(&entries, P, limits);
        let body = wire::write_batch(P, 0, entries[..n].iter().map(|e| e.json.as_str()));
        assert!(body.len() <= KEEPALIVE_MAX_BYTES, "{}", body.len());
        let one_more = wire::write_batch(P, 0, entries[..=n].iter().map(|e| e.json.as_str()));
        assert!(one_more.len() > KEEPALIVE_MAX_BYTES);
    }

    #[test]
    fn an_oversized_single_event_still_goes_alone() {
        let entries = vec![entry(1, 5000), entry(2, 10)];
        let limits = Limits {
            max_events: 20,
            max_bytes: 1000,
        };
        assert_eq!(take_batch(&entries, P, limits), 1);
    }

    #[test]
    fn partial_batches_linger_full_or_retried_ones_go_now() {
        let mut entries: Vec<Entry> = (5..8).map(|n| entry(n, 20)).collect();
        assert_eq!(due_at(&entries, 20, 1000.0), Some(1005.0));
        assert_eq!(due_at(&entries, 3, 1000.0), Some(0.0));
        entries[0].attempts = 1;
        assert_eq!(due_at(&entries, 20, 1000.0), Some(0.0));
        assert_eq!(due_at(&[], 20, 1000.0), None);
    }

    #[test]
    fn the_cap_drops_the_oldest_and_ignores_repeats() {
        let mut entries = Vec::new();
        for n in 0..5 {
            assert!(push_capped(&mut entries, entry(n, 20), 3).len() <= 1);
        }
        let ids: Vec<_> = entries.iter().map(|e| e.queued_at).collect();
        assert_eq!(ids, [2.0, 3.0, 4.0]);
        let dropped = push_capped(&mut entries, entry(4, 20), 3);
        assert!(dropped.is_empty());
        assert_eq!(entries.len(), 3);
    }
}
