//! Rejected rows: recorded best-effort, apart from the events, so that a request's answer never
//! depends on whether its rejections could be written.
//!
//! Requests hand rows over without waiting ([`Quarantine::record`] never blocks and never
//! fails). One task groups them into `rejected_events` inserts and retries a failed insert with
//! backoff for a bounded time. What is held in memory (waiting or being written) is bounded by
//! rows and bytes; rows beyond the bound, rows whose retries ran out and rows still held when a
//! shutdown deadline passes are dropped and counted in `eventline_quarantine_dropped_total`.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::StorageError;
use crate::metrics::Metrics;
use crate::store::rows::RejectedRow;

/// Most rows in one `rejected_events` insert.
const BATCH_ROWS: usize = 10_000;
/// How long the first waiting row waits for others to join its insert. Rejections are not on
/// any request's path, so a longer linger than the event sink's only makes inserts fewer.
const LINGER: Duration = Duration::from_millis(100);
/// The longest wait between two attempts of the same insert.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why rejected rows were dropped (the `reason` label of the dropped counter).
pub mod dropped {
    /// The queue held its most rows or bytes.
    pub const FULL: &str = "full";
    /// Every attempt failed during the retry window.
    pub const STORAGE: &str = "storage";
    /// Still held when the shutdown deadline passed, or handed over after the task ended.
    pub const SHUTDOWN: &str = "shutdown";
}

/// Bounds of the quarantine path.
#[derive(Debug, Clone, Copy)]
pub struct QuarantineLimits {
    /// Most rows held (waiting or being written).
    pub max_rows: usize,
    /// Most (approximate) bytes held (waiting or being written).
    pub max_bytes: usize,
    /// How long one insert is retried before its rows are dropped.
    pub retry_for: Duration,
    /// The wait before the first retry; it doubles up to 5 s.
    pub first_backoff: Duration,
}

/// Writes rejected rows; the ClickHouse implementation is
/// [`ClickHouseWriter`](super::ClickHouseWriter).
pub trait QuarantineWriter: Send + Sync + 'static {
    /// Inserts the rows into `rejected_events`.
    fn write(&self, rows: &[RejectedRow]) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// Rows and bytes held, for the bound.
#[derive(Debug, Default)]
struct Held {
    rows: usize,
    bytes: usize,
}

struct Shared {
    held: Mutex<Held>,
    limits: QuarantineLimits,
    metrics: Metrics,
}

impl Shared {
    fn reserve(&self, bytes: usize) -> bool {
        let mut held = self.held.lock().expect("quarantine lock");
        if held.rows >= self.limits.max_rows || held.bytes + bytes > self.limits.max_bytes {
            return false;
        }
        held.rows += 1;
        held.bytes += bytes;
        true
    }

    fn release(&self, rows: &[RejectedRow]) {
        let bytes: usize = rows.iter().map(RejectedRow::approx_bytes).sum();
        let mut held = self.held.lock().expect("quarantine lock");
        held.rows = held.rows.saturating_sub(rows.len());
        held.bytes = held.bytes.saturating_sub(bytes);
    }

    fn drop_rows(&self, reason: &str, rows: usize) {
        self.metrics
            .quarantine_dropped
            .with_label_values(&[reason])
            .inc_by(rows as u64);
    }
}

/// The requests' side of the quarantine path. Cloneable; the task ends when every clone is
/// dropped, after writing what it holds.
#[derive(Clone)]
pub struct Quarantine {
    tx: mpsc::UnboundedSender<RejectedRow>,
    shared: Arc<Shared>,
}

impl Quarantine {
    /// Hands rows over to be written; never waits. Rows beyond the bound are dropped and
    /// counted (`reason="full"`).
    pub fn record(&self, rows: Vec<RejectedRow>) {
        let mut full = 0;
        for row in rows {
            if !self.shared.reserve(row.approx_bytes()) {
                full += 1;
                continue;
            }
            if let Err(mpsc::error::SendError(row)) = self.tx.send(row) {
                self.shared.release(std::slice::from_ref(&row));
                self.shared.drop_rows(dropped::SHUTDOWN, 1);
            }
        }
        if full > 0 {
            self.shared.drop_rows(dropped::FULL, full);
            tracing::warn!(
                rows = full,
                "quarantine queue is full; rejected rows dropped"
            );
        }
    }
}

/// The quarantine task, to be finished at shutdown.
pub struct QuarantineTask {
    handle: JoinHandle<()>,
    shared: Arc<Shared>,
}

impl QuarantineTask {
    /// Waits until the task has written what it holds (every [`Quarantine`] clone must be
    /// dropped first), at most `deadline`; rows still held then are dropped and counted
    /// (`reason="shutdown"`).
    pub async fn finish(mut self, deadline: Duration) {
        if tokio::time::timeout(deadline, &mut self.handle)
            .await
            .is_ok()
        {
            return;
        }
        self.handle.abort();
        let rows = std::mem::take(&mut *self.shared.held.lock().expect("quarantine lock")).rows;
        self.shared.drop_rows(dropped::SHUTDOWN, rows);
        tracing::warn!(
            rows,
            ?deadline,
            "rejected rows still unwritten at the shutdown deadline were dropped"
        );
    }
}

/// Starts the quarantine task.
pub fn spawn<W: QuarantineWriter>(
    writer: W,
    limits: QuarantineLimits,
    metrics: Metrics,
) -> (Quarantine, QuarantineTask) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        held: Mutex::new(Held::default()),
        limits,
        metrics,
    });
    let handle = tokio::spawn(run(writer, shared.clone(), rx));
    (
        Quarantine {
            tx,
            shared: shared.clone(),
        },
        QuarantineTask { handle, shared },
    )
}

async fn run<W: QuarantineWriter>(
    writer: W,
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<RejectedRow>,
) {
    // Queued rows are received before the channel reports closed, so a shutdown writes them all.
    while let Some(first) = rx.recv().await {
        let deadline = Instant::now() + LINGER;
        let mut rows = vec![first];
        while rows.len() < BATCH_ROWS {
            let next = match rx.try_recv() {
                Ok(row) => Some(row),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        None
                    } else {
                        tokio::time::timeout(left, rx.recv()).await.ok().flatten()
                    }
                }
            };
            let Some(row) = next else { break };
            rows.push(row);
        }
        write_with_retries(&writer, &shared, &rows).await;
        shared.release(&rows);
    }
}

async fn write_with_retries<W: QuarantineWriter>(
    writer: &W,
    shared: &Shared,
    rows: &[RejectedRow],
) {
    let give_up = Instant::now() + shared.limits.retry_for;
    let mut backoff = shared.limits.first_backoff;
    loop {
        match writer.write(rows).await {
            Ok(()) => {
                shared.metrics.quarantine_written.inc_by(rows.len() as u64);
                return;
            }
            Err(error) if Instant::now() + backoff < give_up => {
                tracing::warn!(%error, rows = rows.len(), ?backoff, "rejected rows not written; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(error) => {
                tracing::error!(%error, rows = rows.len(), "rejected rows dropped after retrying");
                shared.drop_rows(dropped::STORAGE, rows.len());
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rows::ms_to_datetime;
    use tokio::sync::Notify;
    use uuid::Uuid;

    /// Records what it wrote; fails while `failures` is above zero (counting down), or forever
    /// when `stuck`; notifies `attempted` on every attempt.
    #[derive(Clone, Default)]
    struct Fake {
        written: Arc<Mutex<Vec<String>>>,
        failures: Arc<Mutex<usize>>,
        stuck: bool,
        attempted: Arc<Notify>,
    }

    impl QuarantineWriter for Fake {
        async fn write(&self, rows: &[RejectedRow]) -> Result<(), StorageError> {
            self.attempted.notify_one();
            if self.stuck {
                std::future::pending::<()>().await;
            }
            {
                let mut failures = self.failures.lock().unwrap();
                if *failures > 0 {
                    *failures -= 1;
                    return Err(StorageError::Commit("down".into()));
                }
            }
            let mut written = self.written.lock().unwrap();
            written.extend(rows.iter().map(|r| r.event_id.clone()));
            Ok(())
        }
    }

    fn row(id: &str, payload_bytes: usize) -> RejectedRow {
        RejectedRow {
            received_at: ms_to_datetime(0),
            partner_id: Uuid::nil(),
            source: String::new(),
            event_id: id.into(),
            event_index: 0,
            reason_code: "invalid_json".into(),
            reason_field: String::new(),
            reason_message: String::new(),
            payload: "x".repeat(payload_bytes),
            payload_bytes: payload_bytes as u32,
            ingest_path: "client".into(),
            user_agent: String::new(),
            client_ip: String::new(),
        }
    }

    fn limits(max_rows: usize, max_bytes: usize, retry_ms: u64) -> QuarantineLimits {
        QuarantineLimits {
            max_rows,
            max_bytes,
            retry_for: Duration::from_millis(retry_ms),
            first_backoff: Duration::from_millis(1),
        }
    }

    fn dropped(metrics: &Metrics, reason: &str) -> u64 {
        metrics
            .quarantine_dropped
            .with_label_values(&[reason])
            .get()
    }

    const DEADLINE: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn recorded_rows_are_written_and_counted() {
        let writer = Fake::default();
        let metrics = Metrics::new();
        let (q, task) = spawn(writer.clone(), limits(100, 1 << 20, 1_000), metrics.clone());
        q.record(vec![row("a", 10), row("b", 10)]);
        drop(q);
        task.finish(DEADLINE).await;
        assert_eq!(*writer.written.lock().unwrap(), vec!["a", "b"]);
        assert_eq!(metrics.quarantine_written.get(), 2);
    }

    #[tokio::test]
    async fn a_failed_insert_is_retried_until_it_succeeds() {
        let writer = Fake {
            failures: Arc::new(Mutex::new(3)),
            ..Fake::default()
        };
        let metrics = Metrics::new();
        let (q, task) = spawn(
            writer.clone(),
            limits(100, 1 << 20, 60_000),
            metrics.clone(),
        );
        q.record(vec![row("a", 10)]);
        drop(q);
        task.finish(DEADLINE).await;
        assert_eq!(*writer.written.lock().unwrap(), vec!["a"]);
        assert_eq!(dropped(&metrics, dropped::STORAGE), 0);
    }

    #[tokio::test]
    async fn rows_whose_retries_run_out_are_dropped_and_counted() {
        let writer = Fake {
            failures: Arc::new(Mutex::new(usize::MAX)),
            ..Fake::default()
        };
        let metrics = Metrics::new();
        let (q, task) = spawn(writer.clone(), limits(100, 1 << 20, 20), metrics.clone());
        q.record(vec![row("a", 10), row("b", 10)]);
        drop(q);
        task.finish(DEADLINE).await;
        assert!(writer.written.lock().unwrap().is_empty());
        assert_eq!(dropped(&metrics, dropped::STORAGE), 2);
        assert_eq!(metrics.quarantine_written.get(), 0);
    }

    #[tokio::test]
    async fn rows_beyond_the_row_or_byte_bound_are_dropped_without_waiting() {
        let writer = Fake {
            stuck: true,
            ..Fake::default()
        };
        let metrics = Metrics::new();
        let approx = row("a", 1_000).approx_bytes();
        // Room for three rows by count, but only for two by bytes.
        let (q, _task) = spawn(
            writer.clone(),
            limits(3, 2 * approx, 60_000),
            metrics.clone(),
        );
        q.record(vec![row("a", 1_000)]);
        // The task holds "a" in a stuck insert: still counted against the bound.
        tokio::time::timeout(DEADLINE, writer.attempted.notified())
            .await
            .expect("the first insert started");
        q.record(vec![row("b", 1_000), row("c", 1_000)]);
        assert_eq!(dropped(&metrics, dropped::FULL), 1, "bytes bound");
        // Even the smallest row no longer fits the bytes; the row count would still allow one.
        q.record(vec![row("d", 1)]);
        assert_eq!(dropped(&metrics, dropped::FULL), 2);

        let (q, _task) = spawn(
            writer.clone(),
            limits(2, usize::MAX, 60_000),
            metrics.clone(),
        );
        q.record(vec![row("f", 1), row("g", 1), row("h", 1)]);
        assert_eq!(dropped(&metrics, dropped::FULL), 3, "rows bound");
    }

    #[tokio::test]
    async fn a_stuck_insert_holds_shutdown_only_until_the_deadline() {
        let writer = Fake {
            stuck: true,
            ..Fake::default()
        };
        let metrics = Metrics::new();
        let (q, task) = spawn(
            writer.clone(),
            limits(100, 1 << 20, 60_000),
            metrics.clone(),
        );
        q.record(vec![row("a", 10), row("b", 10)]);
        drop(q);
        let started = Instant::now();
        task.finish(Duration::from_millis(200)).await;
        assert!(started.elapsed() < DEADLINE);
        assert_eq!(dropped(&metrics, dropped::SHUTDOWN), 2);
    }
}
