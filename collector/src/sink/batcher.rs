//! Grouping requests into commits: the loop, its limits, and the hand-off to requests.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Batch, BatchWriter, EventKey};
use crate::error::StorageError;
use crate::metrics::Metrics;
use crate::store::rows::EventRow;

/// When a commit is started.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Commit once this many rows are waiting.
    pub max_rows: usize,
    /// Commit once this many (approximate) bytes are waiting.
    pub max_bytes: usize,
    /// Commit at the latest this long after the first waiting request arrived.
    pub linger: Duration,
    /// Requests that may wait (per lane) before new ones are refused with 429.
    pub queue: usize,
    /// (Approximate) bytes of events a lane may hold, waiting or being committed, before new
    /// requests are refused with 429. A lane holding nothing admits one request of any size.
    pub queue_bytes: usize,
    /// Independent commit lanes; an event's lane is fixed by its `event_id`.
    pub lanes: usize,
}

/// Why a commit failed, as far as the lane must know.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Nothing of the commit can still be running in ClickHouse (the look-up failed, or the
    /// insert was never sent).
    #[error(transparent)]
    Failed(StorageError),
    /// The insert of events was sent and no definite answer came back (timeout, dropped
    /// connection, an error from anything between us and ClickHouse): it may still be running,
    /// and may commit. The lane settles it before its next look-up.
    #[error("insert outcome unknown: {0}")]
    InDoubt(StorageError),
}

/// Why a submission was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The queue is full.
    #[error("sink queue is full")]
    Overloaded,
    /// A commit failed: the submission's events were not all stored (another lane's share, or
    /// an insert whose answer was lost, may be). A resend stores each event once.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

struct Job {
    events: Vec<EventRow>,
    reply: oneshot::Sender<Result<Arc<HashSet<EventKey>>, StorageError>>,
    held: Held,
}

impl Job {
    fn rows(&self) -> usize {
        self.events.len()
    }

    fn bytes(&self) -> usize {
        self.held.bytes
    }
}

/// Bytes of one job counted against its lane's `queue_bytes`; given back when dropped (the
/// job's commit is over, or the job never reached the lane).
struct Held {
    lane: Arc<AtomicUsize>,
    bytes: usize,
}

impl Held {
    /// Counts `bytes` against the lane, or `None` when they do not fit. A lane holding nothing
    /// admits any size, so a request larger than the bound is not refused forever.
    fn reserve(lane: &Arc<AtomicUsize>, bytes: usize, max: usize) -> Option<Held> {
        lane.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
            (held == 0 || held.saturating_add(bytes) <= max).then(|| held.saturating_add(bytes))
        })
        .ok()?;
        Some(Held {
            lane: lane.clone(),
            bytes,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.lane.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// One lane as the requests see it.
struct LaneHandle {
    jobs: mpsc::Sender<Job>,
    held_bytes: Arc<AtomicUsize>,
}

/// The requests' side of the sink. Cloneable; the lane tasks end when every clone is dropped,
/// after committing what is waiting.
///
/// Each lane is the only writer for its share of event ids, so every copy of one event (a
/// retry racing its original) meets the same duplicate look-up, while lanes commit in parallel.
#[derive(Clone)]
pub struct Sink {
    lanes: Arc<[LaneHandle]>,
    queue_bytes: usize,
}

/// A [`Sink`] handle that does not keep the lanes open. The campaign engine holds one: the
/// lanes hand their commits to the engine, so a strong handle there would keep both alive
/// forever at shutdown.
#[derive(Clone)]
pub struct WeakSink {
    lanes: Weak<[LaneHandle]>,
    queue_bytes: usize,
}

impl WeakSink {
    /// The sink, while anything else still holds it.
    pub fn upgrade(&self) -> Option<Sink> {
        Some(Sink {
            lanes: self.lanes.upgrade()?,
            queue_bytes: self.queue_bytes,
        })
    }
}

impl Sink {
    /// A handle that does not keep the sink open.
    pub fn downgrade(&self) -> WeakSink {
        WeakSink {
            lanes: Arc::downgrade(&self.lanes),
            queue_bytes: self.queue_bytes,
        }
    }

    fn lane_of(&self, row: &EventRow) -> usize {
        // UUIDv4 and v7 both end in random bits, so the low bits spread evenly.
        (row.event_id.as_u128() % self.lanes.len() as u128) as usize
    }

    /// Hands events over and waits for their commit; returns the events that were already
    /// stored. No events: answered at once.
    ///
    /// If one lane fails after another committed, the request still fails (503) and its retry
    /// finds the committed part as duplicates: nothing is stored twice.
    pub async fn submit(
        &self,
        events: Vec<EventRow>,
    ) -> Result<Arc<HashSet<EventKey>>, SubmitError> {
        let waiting = self.enqueue(events)?;
        let mut already = HashSet::new();
        let mut failure = None;
        for done in waiting {
            match done.await {
                Ok(Ok(keys)) => already.extend(keys.iter().copied()),
                Ok(Err(e)) => failure = Some(e),
                Err(_) => failure = Some(StorageError::SinkClosed),
            }
        }
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(Arc::new(already)),
        }
    }

    /// Queues each lane's share of the events, all or none: when one lane is full (by
    /// requests or bytes) nothing is queued and the answer is `Overloaded`.
    fn enqueue(&self, events: Vec<EventRow>) -> Result<Vec<oneshot::Receiver<Reply>>, SubmitError> {
        let mut parts: Vec<Vec<EventRow>> = (0..self.lanes.len()).map(|_| Vec::new()).collect();
        for row in events {
            let lane = self.lane_of(&row);
            parts[lane].push(row);
        }
        let mut ready = Vec::with_capacity(parts.len());
        for (lane, events) in parts.into_iter().enumerate() {
            if events.is_empty() {
                continue;
            }
            let handle = &self.lanes[lane];
            let bytes = events.iter().map(EventRow::approx_bytes).sum();
            let held = Held::reserve(&handle.held_bytes, bytes, self.queue_bytes)
                .ok_or(SubmitError::Overloaded)?;
            let permit = handle.jobs.try_reserve().map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => SubmitError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => StorageError::SinkClosed.into(),
            })?;
            ready.push((permit, events, held));
        }
        Ok(ready
            .into_iter()
            .map(|(permit, events, held)| {
                let (reply, done) = oneshot::channel();
                permit.send(Job {
                    events,
                    reply,
                    held,
                });
                done
            })
            .collect())
    }
}

type Reply = Result<Arc<HashSet<EventKey>>, StorageError>;

/// Starts the sink's lane tasks; the handle completes when all of them have ended.
pub fn spawn<W: BatchWriter>(
    writer: W,
    limits: BatchLimits,
    metrics: Metrics,
) -> (Sink, JoinHandle<()>) {
    spawn_with_listener(writer, limits, metrics, None)
}

/// Receives, after each commit, the events it stored: no event the commit found already
/// stored, and one copy of an event the batch held twice.
pub type CommitListener = mpsc::UnboundedSender<Vec<EventRow>>;

/// [`spawn`], handing each commit's newly stored events to `listener` (the campaign engine).
pub fn spawn_with_listener<W: BatchWriter>(
    writer: W,
    limits: BatchLimits,
    metrics: Metrics,
    listener: Option<CommitListener>,
) -> (Sink, JoinHandle<()>) {
    let writer = Arc::new(writer);
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..limits.lanes.max(1) {
        let (tx, rx) = mpsc::channel(limits.queue.max(1));
        senders.push(LaneHandle {
            jobs: tx,
            held_bytes: Arc::new(AtomicUsize::new(0)),
        });
        tasks.push(tokio::spawn(run(
            writer.clone(),
            limits,
            metrics.clone(),
            rx,
            listener.clone(),
        )));
    }
    let all = tokio::spawn(async move {
        for task in tasks {
            let _ = task.await;
        }
    });
    (
        Sink {
            lanes: senders.into(),
            queue_bytes: limits.queue_bytes,
        },
        all,
    )
}

async fn run<W: BatchWriter>(
    writer: Arc<W>,
    limits: BatchLimits,
    metrics: Metrics,
    mut rx: mpsc::Receiver<Job>,
    listener: Option<CommitListener>,
) {
    // An insert of this lane whose outcome is unknown. Until it is settled, a look-up could
    // miss rows it is still committing, and the events would be stored twice.
    let mut in_doubt: Option<String> = None;
    while let Some(first) = rx.recv().await {
        let deadline = Instant::now() + limits.linger;
        let (mut rows, mut bytes) = (first.rows(), first.bytes());
        let mut jobs = vec![first];
        while rows < limits.max_rows && bytes < limits.max_bytes {
            // Take what is already queued without waiting; wait only while the linger lasts.
            let next = match rx.try_recv() {
                Ok(job) => Some(job),
                Err(_) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        None
                    } else {
                        tokio::time::timeout(left, rx.recv()).await.ok().flatten()
                    }
                }
            };
            let Some(job) = next else { break };
            rows += job.rows();
            bytes += job.bytes();
            jobs.push(job);
        }
        commit(
            &*writer,
            &metrics,
            &mut in_doubt,
            jobs,
            rows,
            listener.as_ref(),
        )
        .await;
    }
}

async fn commit<W: BatchWriter>(
    writer: &W,
    metrics: &Metrics,
    in_doubt: &mut Option<String>,
    jobs: Vec<Job>,
    rows: usize,
    listener: Option<&CommitListener>,
) {
    let mut batch = Batch::default();
    let mut replies = Vec::with_capacity(jobs.len());
    let mut held = Vec::with_capacity(jobs.len());
    for job in jobs {
        batch.events.extend(job.events);
        replies.push(job.reply);
        held.push(job.held);
    }
    if let Some(id) = in_doubt.as_deref() {
        if let Err(error) = writer.settle(id).await {
            metrics.sink_failures.inc();
            tracing::warn!(%error, insert_id = id, rows, "an earlier insert is not settled; answering 503 without inserting");
            let message = StorageError::Unsettled(id.to_string()).to_string();
            drop((batch, held));
            for reply in replies {
                let _ = reply.send(Err(StorageError::Commit(message.clone())));
            }
            return;
        }
        tracing::info!(insert_id = id, "insert in doubt settled: no longer running");
        *in_doubt = None;
    }
    let insert_id = format!("eventline-insert-{}", uuid::Uuid::new_v4());
    // Kept only when someone listens: the writer consumes the batch.
    let events = listener.map(|_| batch.events.clone());
    let started = Instant::now();
    let result = writer.commit(batch, &insert_id).await;
    // The rows are gone with the batch: their bytes are free before anyone hears the answer.
    drop(held);
    metrics
        .insert_seconds
        .observe(started.elapsed().as_secs_f64());
    metrics.batch_rows.observe(rows as f64);
    match result {
        Ok(skipped) => {
            if let (Some(listener), Some(events)) = (listener, events) {
                let stored = newly_stored(events, &skipped);
                if !stored.is_empty() {
                    // A listener that has ended (shutdown) has nothing more to learn.
                    let _ = listener.send(stored);
                }
            }
            let skipped = Arc::new(skipped);
            for reply in replies {
                // A request that gave up waiting has nothing to learn; its rows are stored.
                let _ = reply.send(Ok(skipped.clone()));
            }
        }
        Err(error) => {
            if let CommitError::InDoubt(_) = &error {
                metrics.sink_inserts_in_doubt.inc();
                *in_doubt = Some(insert_id);
            }
            metrics.sink_failures.inc();
            tracing::warn!(%error, rows, "commit failed; answering 503 to its requests");
            let message = error.to_string();
            for reply in replies {
                let _ = reply.send(Err(StorageError::Commit(message.clone())));
            }
        }
    }
}

/// The events of a commit that it stored: not those found already stored, and each event once.
fn newly_stored(events: Vec<EventRow>, skipped: &HashSet<EventKey>) -> Vec<EventRow> {
    let mut seen = HashSet::new();
    events
        .into_iter()
        .filter(|e| {
            let key = (e.partner_id, e.event_id);
            !skipped.contains(&key) && seen.insert(key)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn the_listener_hears_each_stored_event_once_and_no_event_stored_before() {
        /// Reports the first row's key as stored before.
        struct FirstWasStored;
        impl BatchWriter for FirstWasStored {
            async fn commit(
                &self,
                batch: Batch,
                _: &str,
            ) -> Result<HashSet<EventKey>, CommitError> {
                let first = &batch.events[0];
                Ok([(first.partner_id, first.event_id)].into())
            }
            async fn settle(&self, _: &str) -> Result<(), StorageError> {
                Ok(())
            }
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (sink, _task) =
            spawn_with_listener(FirstWasStored, limits(1000, 0), Metrics::new(), Some(tx));
        let (old, new) = (row(), row());
        sink.submit(vec![old.clone(), new.clone(), new.clone()])
            .await
            .unwrap();
        let heard = rx.recv().await.expect("the commit is handed over");
        let ids: Vec<Uuid> = heard.iter().map(|e| e.event_id).collect();
        assert_eq!(ids, vec![new.event_id]);
    }

    use crate::store::rows::ms_to_datetime;
    use uuid::Uuid;

    #[derive(Clone, Default)]
    struct Recorder {
        commits: Arc<Mutex<Vec<usize>>>,
        fail: Arc<Mutex<bool>>,
    }

    impl BatchWriter for Recorder {
        async fn commit(&self, batch: Batch, _: &str) -> Result<HashSet<EventKey>, CommitError> {
            if *self.fail.lock().unwrap() {
                return Err(CommitError::Failed(StorageError::Commit("down".into())));
            }
            self.commits.lock().unwrap().push(batch.events.len());
            Ok(HashSet::new())
        }

        async fn settle(&self, _: &str) -> Result<(), StorageError> {
            panic!("nothing was in doubt")
        }
    }

    /// What a [`Scripted`] writer was asked, in order.
    #[derive(Debug, Clone, PartialEq)]
    enum Call {
        Commit(String),
        Settle(String),
    }

    /// Answers commits and settles from scripts (then succeeds), recording every call.
    #[derive(Clone, Default)]
    struct Scripted {
        calls: Arc<Mutex<Vec<Call>>>,
        commits: Arc<Mutex<Vec<Result<(), CommitError>>>>,
        settles: Arc<Mutex<Vec<Result<(), StorageError>>>>,
    }

    impl Scripted {
        fn calls(&self) -> Vec<Call> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl BatchWriter for Scripted {
        async fn commit(&self, _: Batch, id: &str) -> Result<HashSet<EventKey>, CommitError> {
            self.calls.lock().unwrap().push(Call::Commit(id.into()));
            let mut script = self.commits.lock().unwrap();
            match (!script.is_empty()).then(|| script.remove(0)) {
                Some(Err(e)) => Err(e),
                _ => Ok(HashSet::new()),
            }
        }

        async fn settle(&self, id: &str) -> Result<(), StorageError> {
            self.calls.lock().unwrap().push(Call::Settle(id.into()));
            let mut script = self.settles.lock().unwrap();
            if script.is_empty() {
                Ok(())
            } else {
                script.remove(0)
            }
        }
    }

    fn timeout() -> StorageError {
        StorageError::Timeout(Duration::from_secs(1))
    }

    #[tokio::test]
    async fn after_an_insert_in_doubt_the_lane_settles_it_before_its_next_commit() {
        let writer = Scripted::default();
        writer
            .commits
            .lock()
            .unwrap()
            .push(Err(CommitError::InDoubt(timeout())));
        let metrics = Metrics::new();
        let (sink, _task) = spawn(writer.clone(), limits(1000, 0), metrics.clone());
        assert!(sink.submit(vec![row()]).await.is_err());
        sink.submit(vec![row()]).await.unwrap();
        sink.submit(vec![row()]).await.unwrap();
        let calls = writer.calls();
        let Call::Commit(first) = &calls[0] else {
            panic!("{calls:?}")
        };
        assert_eq!(calls.len(), 4, "{calls:?}");
        assert_eq!(calls[1], Call::Settle(first.clone()), "{calls:?}");
        assert!(
            matches!((&calls[2], &calls[3]), (Call::Commit(a), Call::Commit(b)) if a != first && b != a),
            "every insert has its own id, and a settled insert is not settled again: {calls:?}"
        );
        assert_eq!(metrics.sink_inserts_in_doubt.get(), 1);
    }

    #[tokio::test]
    async fn until_an_insert_in_doubt_is_settled_commits_are_answered_503_without_inserting() {
        let writer = Scripted::default();
        writer
            .commits
            .lock()
            .unwrap()
            .push(Err(CommitError::InDoubt(timeout())));
        writer
            .settles
            .lock()
            .unwrap()
            .extend([Err(timeout()), Err(timeout())]);
        let (sink, _task) = spawn(writer.clone(), limits(1000, 0), Metrics::new());
        assert!(sink.submit(vec![row()]).await.is_err());
        for _ in 0..2 {
            let err = sink.submit(vec![row()]).await.unwrap_err();
            assert!(matches!(err, SubmitError::Storage(_)), "{err:?}");
        }
        sink.submit(vec![row()]).await.unwrap();
        let kinds: Vec<&str> = writer
            .calls()
            .iter()
            .map(|c| match c {
                Call::Commit(_) => "commit",
                Call::Settle(_) => "settle",
            })
            .collect();
        assert_eq!(
            kinds,
            ["commit", "settle", "settle", "settle", "commit"],
            "no insert while the first is unsettled"
        );
    }

    #[tokio::test]
    async fn a_failure_before_the_insert_needs_no_settling() {
        let writer = Scripted::default();
        writer
            .commits
            .lock()
            .unwrap()
            .push(Err(CommitError::Failed(timeout())));
        let (sink, _task) = spawn(writer.clone(), limits(1000, 0), Metrics::new());
        assert!(sink.submit(vec![row()]).await.is_err());
        sink.submit(vec![row()]).await.unwrap();
        assert!(
            writer.calls().iter().all(|c| matches!(c, Call::Commit(_))),
            "{:?}",
            writer.calls()
        );
    }

    fn row() -> EventRow {
        EventRow {
            partner_id: Uuid::nil(),
            event_id: Uuid::now_v7(),
            kind: "customer".into(),
            name: "n".into(),
            source: "s".into(),
            source_id: Uuid::nil(),
            customer_id: "c".into(),
            anonymous_id: String::new(),
            session_id: String::new(),
            occurred_at: ms_to_datetime(0),
            sent_at: ms_to_datetime(0),
            received_at: ms_to_datetime(0),
            event_time: ms_to_datetime(0),
            context_strings: vec![],
            context_numbers: vec![],
            context_booleans: vec![],
            ingest_path: "client".into(),
            user_agent: String::new(),
            client_ip: String::new(),
        }
    }

    fn limits(max_rows: usize, linger_ms: u64) -> BatchLimits {
        BatchLimits {
            max_rows,
            max_bytes: usize::MAX,
            linger: Duration::from_millis(linger_ms),
            queue: 100,
            queue_bytes: usize::MAX,
            lanes: 1,
        }
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_commit_within_the_linger() {
        let writer = Recorder::default();
        let (sink, _task) = spawn(writer.clone(), limits(1000, 200), Metrics::new());
        let submits = (0..5).map(|_| {
            let sink = sink.clone();
            tokio::spawn(async move { sink.submit(vec![row(), row()]).await })
        });
        for s in submits.collect::<Vec<_>>() {
            s.await.unwrap().unwrap();
        }
        assert_eq!(*writer.commits.lock().unwrap(), vec![10]);
    }

    #[tokio::test]
    async fn the_row_limit_starts_a_commit_without_waiting_for_the_linger() {
        let writer = Recorder::default();
        let (sink, _task) = spawn(writer.clone(), limits(3, 60_000), Metrics::new());
        let started = Instant::now();
        sink.submit(vec![row(), row(), row()]).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(*writer.commits.lock().unwrap(), vec![3]);
    }

    #[tokio::test]
    async fn a_failed_commit_reaches_every_waiting_request_as_an_error() {
        let writer = Recorder::default();
        *writer.fail.lock().unwrap() = true;
        let (sink, _task) = spawn(writer.clone(), limits(1000, 0), Metrics::new());
        let err = sink.submit(vec![row()]).await.unwrap_err();
        assert!(matches!(err, SubmitError::Storage(_)));
        *writer.fail.lock().unwrap() = false;
        sink.submit(vec![row()]).await.unwrap();
        assert_eq!(*writer.commits.lock().unwrap(), vec![1]);
    }

    #[tokio::test]
    async fn every_copy_of_an_event_goes_to_the_same_lane_and_ids_spread_over_lanes() {
        let writer = Recorder::default();
        let (sink, _task) = spawn(
            writer.clone(),
            BatchLimits {
                lanes: 4,
                ..limits(1000, 0)
            },
            Metrics::new(),
        );
        let rows: Vec<EventRow> = (0..64).map(|_| row()).collect();
        let lanes: HashSet<usize> = rows.iter().map(|r| sink.lane_of(r)).collect();
        // 64 random ids miss one of four lanes with a probability of about 4 in 100 million.
        assert_eq!(lanes.len(), 4, "ids spread over every lane");
        for original in &rows {
            // A retry racing its original: the same event_id, received at another time, from
            // another client; only the id decides the lane.
            let retry = EventRow {
                received_at: ms_to_datetime(86_400_000),
                user_agent: "another browser".into(),
                client_ip: "192.0.2.1".into(),
                ..row()
            };
            let retry = EventRow {
                event_id: original.event_id,
                ..retry
            };
            assert_eq!(sink.lane_of(&retry), sink.lane_of(original));
        }
        sink.submit(rows).await.unwrap();
        assert_eq!(writer.commits.lock().unwrap().iter().sum::<usize>(), 64);
    }

    /// Commits one batch per permit of `gate`; notifies `started` when a commit begins.
    #[derive(Clone)]
    struct Gated {
        started: Arc<tokio::sync::Notify>,
        gate: Arc<tokio::sync::Semaphore>,
    }

    impl Gated {
        fn new() -> Gated {
            Gated {
                started: Arc::default(),
                gate: Arc::new(tokio::sync::Semaphore::new(0)),
            }
        }

        async fn commit_started(&self) {
            tokio::time::timeout(Duration::from_secs(10), self.started.notified())
                .await
                .expect("a commit started within 10 s");
        }
    }

    impl BatchWriter for Gated {
        async fn commit(&self, _: Batch, _: &str) -> Result<HashSet<EventKey>, CommitError> {
            self.started.notify_one();
            self.gate.acquire().await.expect("gate open").forget();
            Ok(HashSet::new())
        }

        async fn settle(&self, _: &str) -> Result<(), StorageError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_lane_holding_its_bytes_answers_overloaded_until_a_commit_frees_them() {
        let writer = Gated::new();
        let one = row().approx_bytes();
        let (sink, _task) = spawn(
            writer.clone(),
            BatchLimits {
                queue_bytes: 2 * one,
                ..limits(1, 0)
            },
            Metrics::new(),
        );
        let mut first = sink.enqueue(vec![row()]).unwrap();
        // Being committed still counts: the rows are in memory until the commit ends.
        writer.commit_started().await;
        let _second = sink.enqueue(vec![row()]).unwrap();
        assert!(matches!(
            sink.enqueue(vec![row()]),
            Err(SubmitError::Overloaded)
        ));
        writer.gate.add_permits(1);
        let done = tokio::time::timeout(Duration::from_secs(10), first.remove(0))
            .await
            .expect("the first commit ends");
        assert!(matches!(done, Ok(Ok(_))));
        sink.enqueue(vec![row()])
            .expect("the first request's bytes were given back");

        // A lane holding nothing admits a request larger than the bound, once.
        let writer = Gated::new();
        let (sink, _task) = spawn(
            writer.clone(),
            BatchLimits {
                queue_bytes: 1,
                ..limits(1, 0)
            },
            Metrics::new(),
        );
        sink.enqueue(vec![row(), row()]).unwrap();
        assert!(matches!(
            sink.enqueue(vec![row()]),
            Err(SubmitError::Overloaded)
        ));
    }

    #[tokio::test]
    async fn a_full_queue_answers_overloaded() {
        let writer = Gated::new();
        let (sink, _task) = spawn(
            writer.clone(),
            BatchLimits {
                queue: 1,
                ..limits(1, 0)
            },
            Metrics::new(),
        );
        let _first = sink.enqueue(vec![row()]).unwrap();
        // The lane has taken the first request into a commit that does not end: the queue's
        // one place is free again, and the next request fills it.
        writer.commit_started().await;
        let _second = sink.enqueue(vec![row()]).unwrap();
        let err = sink.submit(vec![row()]).await.unwrap_err();
        assert!(matches!(err, SubmitError::Overloaded), "{err:?}");
    }
}
