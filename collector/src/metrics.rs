//! Prometheus metrics served at `/metrics`.

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts,
    Registry, TextEncoder,
};

/// Every metric the collector exports, registered in its own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Events stored, by ingest path (`client`, `server`).
    pub accepted: IntCounterVec,
    /// Events rejected, by reason code.
    pub rejected: IntCounterVec,
    /// Retried events that were already stored and so were not stored again.
    pub duplicates: IntCounter,
    /// Rows per ClickHouse insert.
    pub batch_rows: Histogram,
    /// Seconds per sink commit (dedup look-up plus inserts).
    pub insert_seconds: Histogram,
    /// Sink commits that failed (answered 503).
    pub sink_failures: IntCounter,
    /// Inserts of events whose outcome was unknown (timeout, dropped connection), settled
    /// (killed or seen finished) before the lane's next look-up.
    pub sink_inserts_in_doubt: IntCounter,
    /// Rejected rows dropped instead of written to `rejected_events`, by reason
    /// (`full`, `storage`, `shutdown`).
    pub quarantine_dropped: IntCounterVec,
    /// Rejected rows written to `rejected_events`.
    pub quarantine_written: IntCounter,
    /// Requests answered 429 `rate_limited`, by limit (`ip`, `partner`).
    pub rate_limited: IntCounterVec,
    /// Refused requests of no established partner, counted here instead of being stored in
    /// `rejected_events`, by code.
    pub requests_not_stored: IntCounterVec,
}

impl Metrics {
    /// Creates and registers all metrics.
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("eventline".into()), None).expect("valid prefix");
        let accepted = IntCounterVec::new(
            Opts::new("events_accepted_total", "Events stored in ClickHouse"),
            &["ingest_path"],
        )
        .expect("valid metric");
        let rejected = IntCounterVec::new(
            Opts::new("events_rejected_total", "Events rejected, by reason code"),
            &["code"],
        )
        .expect("valid metric");
        let duplicates = IntCounter::new(
            "events_duplicate_total",
            "Retried events already stored, acknowledged without storing again",
        )
        .expect("valid metric");
        let batch_rows = Histogram::with_opts(
            HistogramOpts::new("sink_batch_rows", "Rows per ClickHouse insert")
                .buckets(exponential_buckets(1.0, 4.0, 9).expect("valid buckets")),
        )
        .expect("valid metric");
        let insert_seconds = Histogram::with_opts(
            HistogramOpts::new("sink_commit_seconds", "Seconds per sink commit")
                .buckets(exponential_buckets(0.001, 2.0, 14).expect("valid buckets")),
        )
        .expect("valid metric");
        let sink_failures = IntCounter::new("sink_failures_total", "Sink commits that failed")
            .expect("valid metric");
        let sink_inserts_in_doubt = IntCounter::new(
            "sink_inserts_in_doubt_total",
            "Inserts of events with an unknown outcome, settled before the next duplicate look-up",
        )
        .expect("valid metric");
        let quarantine_dropped = IntCounterVec::new(
            Opts::new(
                "quarantine_dropped_total",
                "Rejected rows dropped instead of stored, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        // Every reason shows from the start, so a rate over it is defined before the first drop.
        for reason in [
            crate::sink::quarantine_dropped::FULL,
            crate::sink::quarantine_dropped::STORAGE,
            crate::sink::quarantine_dropped::SHUTDOWN,
        ] {
            quarantine_dropped.with_label_values(&[reason]);
        }
        let quarantine_written = IntCounter::new(
            "quarantine_written_total",
            "Rejected rows written to rejected_events",
        )
        .expect("valid metric");
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "rate_limited_total",
                "Ingest requests refused by a rate limit, by limit",
            ),
            &["scope"],
        )
        .expect("valid metric");
        let requests_not_stored = IntCounterVec::new(
            Opts::new(
                "requests_not_stored_total",
                "Refused ingest requests of no known partner, counted instead of stored, by code",
            ),
            &["code"],
        )
        .expect("valid metric");
        for c in [
            Box::new(accepted.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(rejected.clone()),
            Box::new(duplicates.clone()),
            Box::new(batch_rows.clone()),
            Box::new(insert_seconds.clone()),
            Box::new(sink_failures.clone()),
            Box::new(sink_inserts_in_doubt.clone()),
            Box::new(quarantine_dropped.clone()),
            Box::new(quarantine_written.clone()),
            Box::new(rate_limited.clone()),
            Box::new(requests_not_stored.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Metrics {
            registry,
            accepted,
            rejected,
            duplicates,
            batch_rows,
            insert_seconds,
            sink_failures,
            sink_inserts_in_doubt,
            quarantine_dropped,
            quarantine_written,
            rate_limited,
            requests_not_stored,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
