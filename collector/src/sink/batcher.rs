//! Grouping requests into commits: the loop, its limits, and the hand-off to requests.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinError, JoinHandle};

use super::{sort_key, BatchWriter, EventKey, SortKey};
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
    /// Inserts each lane may have running at once (at least 1). The next batch's duplicate
    /// look-up runs while they do.
    pub inserts_in_flight: usize,
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

/// An insert of a lane that is running: its keys, until its outcome is known.
struct InFlight {
    insert_id: String,
    keys: HashSet<SortKey>,
    /// Answers the insert's requests itself; `true` once the rows are stored, `false` when the
    /// outcome is open (the requests were answered 503).
    task: JoinHandle<bool>,
}

/// One lane: the only writer of its share of event ids in this process.
struct Lane<W> {
    writer: Arc<W>,
    limits: BatchLimits,
    metrics: Metrics,
    listener: Option<CommitListener>,
    /// Oldest first.
    in_flight: VecDeque<InFlight>,
    /// Inserts of this lane whose outcome is unknown. Until they are settled, a look-up could
    /// miss rows they are still committing, and the events would be stored twice.
    in_doubt: Vec<String>,
}

/// The requests of a batch being prepared, and what answering them needs.
struct Prepared {
    events: Vec<EventRow>,
    replies: Vec<oneshot::Sender<Reply>>,
    held: Vec<Held>,
    rows: usize,
}

impl Prepared {
    fn new(jobs: Vec<Job>) -> Prepared {
        let mut prepared = Prepared {
            events: Vec::new(),
            replies: Vec::with_capacity(jobs.len()),
            held: Vec::with_capacity(jobs.len()),
            rows: 0,
        };
        for job in jobs {
            prepared.rows += job.rows();
            prepared.events.extend(job.events);
            prepared.replies.push(job.reply);
            prepared.held.push(job.held);
        }
        prepared
    }

    /// Answers every request 503 with `message`; nothing of the batch was sent.
    fn fail(self, metrics: &Metrics, message: String) {
        metrics.sink_failures.inc();
        tracing::warn!(error = %message, rows = self.rows, "commit failed; answering 503 to its requests");
        drop(self.held);
        for reply in self.replies {
            let _ = reply.send(Err(StorageError::Commit(message.clone())));
        }
    }
}

async fn run<W: BatchWriter>(
    writer: Arc<W>,
    limits: BatchLimits,
    metrics: Metrics,
    mut rx: mpsc::Receiver<Job>,
    listener: Option<CommitListener>,
) {
    let mut lane = Lane {
        writer,
        limits,
        metrics,
        listener,
        in_flight: VecDeque::new(),
        in_doubt: Vec::new(),
    };
    loop {
        // Wait for a request; an insert that ends meanwhile is recorded at once.
        let first = loop {
            let Some(oldest) = lane.in_flight.front_mut() else {
                break rx.recv().await;
            };
            tokio::select! {
                job = rx.recv() => break job,
                outcome = &mut oldest.task => {
                    let ended = lane.in_flight.pop_front().expect("the oldest insert");
                    lane.record(ended.insert_id, outcome);
                }
            }
        };
        let Some(first) = first else { break };
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
        lane.commit(Prepared::new(jobs)).await;
    }
    // Closed: every request still waiting is answered by its insert.
    while let Some(ended) = lane.in_flight.pop_front() {
        let outcome = ended.task.await;
        lane.record(ended.insert_id, outcome);
    }
}

impl<W: BatchWriter> Lane<W> {
    /// Notes how an insert ended: one whose outcome is open must be settled before a look-up.
    fn record(&mut self, insert_id: String, outcome: Result<bool, JoinError>) {
        if !matches!(outcome, Ok(true)) {
            self.in_doubt.push(insert_id);
        }
    }

    /// Waits for the insert at `index` of `in_flight` and records how it ended; `true` when
    /// its rows are stored.
    async fn finish(&mut self, index: usize) -> bool {
        let ended = self.in_flight.remove(index).expect("an insert in flight");
        let outcome = ended.task.await;
        let stored = matches!(outcome, Ok(true));
        self.record(ended.insert_id, outcome);
        stored
    }

    /// Settles every insert in doubt, or says which one could not be.
    async fn settle(&mut self) -> Result<(), String> {
        while let Some(id) = self.in_doubt.last() {
            if let Err(error) = self.writer.settle(id).await {
                tracing::warn!(%error, insert_id = %id, "an earlier insert is not settled; answering 503 without inserting");
                return Err(StorageError::Unsettled(id.clone()).to_string());
            }
            tracing::info!(insert_id = %id, "insert in doubt settled: no longer running");
            self.in_doubt.pop();
        }
        Ok(())
    }

    /// Looks up the batch's duplicates (while earlier inserts run) and starts its insert.
    async fn commit(&mut self, batch: Prepared) {
        let started = Instant::now();
        // A free insert slot first, so that the look-up is as late (and the batch as large)
        // as the slots allow.
        while self.in_flight.len() >= self.limits.inserts_in_flight.max(1) {
            self.finish(0).await;
        }
        while let Some(index) = self.in_flight.iter().position(|f| f.task.is_finished()) {
            self.finish(index).await;
        }
        if let Err(message) = self.settle().await {
            return batch.fail(&self.metrics, message);
        }
        let keys: HashSet<SortKey> = batch.events.iter().map(sort_key).collect();
        let mut stored = match self.lookup(&keys).await {
            Ok(stored) => stored,
            Err(message) => return batch.fail(&self.metrics, message),
        };
        // A key that an insert running during the look-up holds may be missed by it: that
        // insert decides. Stored: a duplicate. Outcome open: settled, and looked up again.
        let mut again = HashSet::new();
        while let Some(index) = self
            .in_flight
            .iter()
            .position(|f| !f.keys.is_disjoint(&keys))
        {
            let shared: Vec<SortKey> = self.in_flight[index]
                .keys
                .intersection(&keys)
                .cloned()
                .collect();
            if self.finish(index).await {
                stored.extend(shared);
            } else {
                again.extend(shared);
            }
        }
        if !again.is_empty() {
            if let Err(message) = self.settle().await {
                return batch.fail(&self.metrics, message);
            }
            match self.lookup(&again).await {
                Ok(found) => stored.extend(found),
                Err(message) => return batch.fail(&self.metrics, message),
            }
        }
        self.insert(batch, &stored, started);
    }

    async fn lookup(&self, keys: &HashSet<SortKey>) -> Result<HashSet<SortKey>, String> {
        if keys.is_empty() {
            return Ok(HashSet::new());
        }
        self.writer.stored(keys).await.map_err(|e| e.to_string())
    }

    /// Starts inserting the batch's events that `stored` does not hold (each once); its task
    /// answers the requests when the insert ends.
    fn insert(&mut self, batch: Prepared, stored: &HashSet<SortKey>, started: Instant) {
        let Prepared {
            events,
            replies,
            held,
            rows,
        } = batch;
        let mut skipped = HashSet::new();
        let mut repeats = 0u64;
        let mut fresh = Vec::with_capacity(events.len());
        let mut keys = HashSet::with_capacity(events.len());
        for row in events {
            let key = sort_key(&row);
            if stored.contains(&key) {
                skipped.insert((row.partner_id, row.event_id));
                repeats += 1;
            } else if keys.insert(key) {
                fresh.push(row);
            } else {
                // The same event twice in one commit (a retry racing its original): the
                // first copy is stored now, so neither request is told "duplicate".
                repeats += 1;
            }
        }
        self.metrics.duplicates.inc_by(repeats);
        let skipped = Arc::new(skipped);
        let insert_id = format!("eventline-insert-{}", uuid::Uuid::new_v4());
        let (writer, metrics, listener) = (
            self.writer.clone(),
            self.metrics.clone(),
            self.listener.clone(),
        );
        let id = insert_id.clone();
        let task = tokio::spawn(async move {
            // Any failure once the insert is sent leaves its outcome open: a timeout or a reset
            // can come after ClickHouse committed, and a 5xx can come from a proxy while the
            // insert still runs. Settling an insert that had ended costs two short queries.
            let result = if fresh.is_empty() {
                Ok(())
            } else {
                writer.insert(&fresh, &id).await
            };
            // The rows are gone with the insert: their bytes are free before anyone hears.
            drop(held);
            metrics
                .insert_seconds
                .observe(started.elapsed().as_secs_f64());
            metrics.batch_rows.observe(rows as f64);
            match result {
                Ok(()) => {
                    for row in &fresh {
                        metrics
                            .accepted
                            .with_label_values(&[row.ingest_path.as_str()])
                            .inc();
                    }
                    if let Some(listener) = listener {
                        let stored = newly_stored(fresh, &skipped);
                        if !stored.is_empty() {
                            // A listener that has ended (shutdown) has nothing more to learn.
                            let _ = listener.send(stored);
                        }
                    }
                    for reply in replies {
                        // A request that gave up waiting has nothing to learn; its rows are
                        // stored.
                        let _ = reply.send(Ok(skipped.clone()));
                    }
                    true
                }
                Err(error) => {
                    metrics.sink_inserts_in_doubt.inc();
                    metrics.sink_failures.inc();
                    tracing::warn!(%error, rows, "insert outcome unknown; answering 503 to its requests");
                    let message = format!("insert outcome unknown: {error}");
                    for reply in replies {
                        let _ = reply.send(Err(StorageError::Commit(message.clone())));
                    }
                    false
                }
            }
        });
        self.in_flight.push_back(InFlight {
            insert_id,
            keys,
            task,
        });
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
        /// Reports `old` as stored before.
        struct Stored(SortKey);
        impl BatchWriter for Stored {
            async fn stored(
                &self,
                keys: &HashSet<SortKey>,
            ) -> Result<HashSet<SortKey>, StorageError> {
                Ok(keys.iter().filter(|k| **k == self.0).cloned().collect())
            }
            async fn insert(&self, _: &[EventRow], _: &str) -> Result<(), StorageError> {
                Ok(())
            }
            async fn settle(&self, _: &str) -> Result<(), StorageError> {
                Ok(())
            }
        }
        let (old, new) = (row(), row());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (sink, _task) = spawn_with_listener(
            Stored(sort_key(&old)),
            limits(1000, 0),
            Metrics::new(),
            Some(tx),
        );
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
        async fn stored(&self, _: &HashSet<SortKey>) -> Result<HashSet<SortKey>, StorageError> {
            if *self.fail.lock().unwrap() {
                return Err(StorageError::Commit("down".into()));
            }
            Ok(HashSet::new())
        }

        async fn insert(&self, rows: &[EventRow], _: &str) -> Result<(), StorageError> {
            self.commits.lock().unwrap().push(rows.len());
            Ok(())
        }

        async fn settle(&self, _: &str) -> Result<(), StorageError> {
            panic!("nothing was in doubt")
        }
    }

    /// What a [`Scripted`] writer was asked, in order.
    #[derive(Debug, Clone, PartialEq)]
    enum Call {
        Lookup,
        Commit(String),
        Settle(String),
    }

    /// Answers look-ups, inserts and settles from scripts (then succeeds, finding nothing
    /// stored), recording every call.
    #[derive(Clone, Default)]
    struct Scripted {
        calls: Arc<Mutex<Vec<Call>>>,
        lookups: Arc<Mutex<Vec<Result<(), StorageError>>>>,
        commits: Arc<Mutex<Vec<Result<(), StorageError>>>>,
        settles: Arc<Mutex<Vec<Result<(), StorageError>>>>,
    }

    impl Scripted {
        fn calls(&self) -> Vec<Call> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl BatchWriter for Scripted {
        async fn stored(&self, _: &HashSet<SortKey>) -> Result<HashSet<SortKey>, StorageError> {
            self.calls.lock().unwrap().push(Call::Lookup);
            let mut script = self.lookups.lock().unwrap();
            match (!script.is_empty()).then(|| script.remove(0)) {
                Some(Err(e)) => Err(e),
                _ => Ok(HashSet::new()),
            }
        }

        async fn insert(&self, _: &[EventRow], id: &str) -> Result<(), StorageError> {
            self.calls.lock().unwrap().push(Call::Commit(id.into()));
            let mut script = self.commits.lock().unwrap();
            match (!script.is_empty()).then(|| script.remove(0)) {
                Some(Err(e)) => Err(e),
                _ => Ok(()),
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
        writer.commits.lock().unwrap().push(Err(timeout()));
        let metrics = Metrics::new();
        let (sink, _task) = spawn(writer.clone(), limits(1000, 0), metrics.clone());
        assert!(sink.submit(vec![row()]).await.is_err());
        sink.submit(vec![row()]).await.unwrap();
        sink.submit(vec![row()]).await.unwrap();
        let calls: Vec<Call> = writer
            .calls()
            .into_iter()
            .filter(|c| *c != Call::Lookup)
            .collect();
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
        writer.commits.lock().unwrap().push(Err(timeout()));
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
                Call::Lookup => "lookup",
                Call::Commit(_) => "commit",
                Call::Settle(_) => "settle",
            })
            .collect();
        assert_eq!(
            kinds,
            ["lookup", "commit", "settle", "settle", "settle", "lookup", "commit"],
            "no look-up and no insert while the first is unsettled"
        );
    }

    #[tokio::test]
    async fn a_failure_before_the_insert_needs_no_settling() {
        let writer = Scripted::default();
        writer.lookups.lock().unwrap().push(Err(timeout()));
        let (sink, _task) = spawn(writer.clone(), limits(1000, 0), Metrics::new());
        assert!(sink.submit(vec![row()]).await.is_err());
        sink.submit(vec![row()]).await.unwrap();
        assert!(
            !writer.calls().iter().any(|c| matches!(c, Call::Settle(_))),
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
            inserts_in_flight: 1,
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
        async fn stored(&self, _: &HashSet<SortKey>) -> Result<HashSet<SortKey>, StorageError> {
            Ok(HashSet::new())
        }

        async fn insert(&self, _: &[EventRow], _: &str) -> Result<(), StorageError> {
            self.started.notify_one();
            self.gate.acquire().await.expect("gate open").forget();
            Ok(())
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

#[cfg(test)]
mod pipeline_tests {
    //! Exactly-once while the next batch is looked up during an insert.

    use super::*;
    use crate::store::rows::ms_to_datetime;
    use std::sync::Mutex;
    use uuid::Uuid;

    /// How one insert of [`Memory`] ends: whether its rows land, and what the caller hears.
    #[derive(Clone, Copy)]
    struct Outcome {
        stores: bool,
        answers: bool,
    }

    /// A store in memory: look-ups see the rows of inserts that have landed. Each insert waits
    /// for a permit of `gate`, then ends as the next scripted [`Outcome`] says (default: stored
    /// and answered).
    #[derive(Clone)]
    struct Memory {
        rows: Arc<Mutex<Vec<SortKey>>>,
        script: Arc<Mutex<Vec<Outcome>>>,
        calls: Arc<Mutex<Vec<String>>>,
        called: Arc<tokio::sync::Notify>,
        gate: Arc<tokio::sync::Semaphore>,
    }

    impl Memory {
        fn new() -> Memory {
            Memory {
                rows: Arc::default(),
                script: Arc::default(),
                calls: Arc::default(),
                called: Arc::default(),
                gate: Arc::new(tokio::sync::Semaphore::new(0)),
            }
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }

        /// Waits (at most 10 s) until `n` calls start with `call`.
        async fn called(&self, call: &str, n: usize) {
            let count = || self.calls().iter().filter(|c| c.starts_with(call)).count();
            tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    // Registered before the check, so a call in between is not missed.
                    let notified = self.called.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    if count() >= n {
                        return;
                    }
                    notified.await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{n} calls {call} within 10 s: {:?}", self.calls()));
        }

        async fn inserts_started(&self, n: usize) {
            self.called("insert", n).await
        }

        async fn lookups_done(&self, n: usize) {
            self.called("lookup", n).await
        }
    }

    impl BatchWriter for Memory {
        async fn stored(&self, keys: &HashSet<SortKey>) -> Result<HashSet<SortKey>, StorageError> {
            let found = self
                .rows
                .lock()
                .unwrap()
                .iter()
                .filter(|k| keys.contains(*k))
                .cloned()
                .collect();
            self.calls.lock().unwrap().push("lookup".into());
            self.called.notify_waiters();
            Ok(found)
        }

        async fn insert(&self, rows: &[EventRow], _: &str) -> Result<(), StorageError> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("insert {}", rows.len()));
            self.called.notify_waiters();
            self.gate.acquire().await.expect("gate open").forget();
            let outcome = {
                let mut script = self.script.lock().unwrap();
                (!script.is_empty()).then(|| script.remove(0))
            }
            .unwrap_or(Outcome {
                stores: true,
                answers: true,
            });
            if outcome.stores {
                self.rows.lock().unwrap().extend(rows.iter().map(sort_key));
            }
            if outcome.answers {
                Ok(())
            } else {
                Err(StorageError::Timeout(Duration::from_secs(1)))
            }
        }

        async fn settle(&self, _: &str) -> Result<(), StorageError> {
            self.calls.lock().unwrap().push("settle".into());
            Ok(())
        }
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

    fn limits() -> BatchLimits {
        BatchLimits {
            max_rows: 1000,
            max_bytes: usize::MAX,
            linger: Duration::ZERO,
            queue: 100,
            queue_bytes: usize::MAX,
            lanes: 1,
            inserts_in_flight: 2,
        }
    }

    /// Submits `rows` in a task of its own (it waits for its commit).
    fn submit(
        sink: &Sink,
        rows: Vec<EventRow>,
    ) -> JoinHandle<Result<Arc<HashSet<EventKey>>, SubmitError>> {
        let sink = sink.clone();
        tokio::spawn(async move { sink.submit(rows).await })
    }

    async fn answer(
        request: JoinHandle<Result<Arc<HashSet<EventKey>>, SubmitError>>,
    ) -> Result<Arc<HashSet<EventKey>>, SubmitError> {
        tokio::time::timeout(Duration::from_secs(10), request)
            .await
            .expect("answered within 10 s")
            .expect("the request task ends")
    }

    #[tokio::test]
    async fn the_next_batch_is_looked_up_while_an_insert_runs() {
        let store = Memory::new();
        let (sink, _task) = spawn(store.clone(), limits(), Metrics::new());
        let first = submit(&sink, vec![row()]);
        store.inserts_started(1).await;
        let second = submit(&sink, vec![row()]);
        // The first insert is held; the second batch is looked up and inserted meanwhile.
        store.inserts_started(2).await;
        assert_eq!(store.calls(), ["lookup", "insert 1", "lookup", "insert 1"]);
        store.gate.add_permits(2);
        answer(first).await.unwrap();
        answer(second).await.unwrap();
        assert_eq!(store.rows.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_copy_arriving_while_its_original_is_inserted_is_answered_duplicate_and_stored_once()
    {
        let store = Memory::new();
        let (sink, _task) = spawn(store.clone(), limits(), Metrics::new());
        let event = row();
        let original = submit(&sink, vec![event.clone()]);
        store.inserts_started(1).await;
        let other = row();
        let retry = submit(&sink, vec![event.clone(), other.clone()]);
        // The retry's look-up runs while the original's insert is held: it cannot see it yet.
        store.lookups_done(2).await;
        store.gate.add_permits(2);
        assert!(answer(original).await.unwrap().is_empty());
        let already = answer(retry).await.unwrap();
        assert_eq!(
            *already,
            HashSet::from([(event.partner_id, event.event_id)])
        );
        let rows = store.rows.lock().unwrap().clone();
        assert_eq!(rows, vec![sort_key(&event), sort_key(&other)]);
        assert_eq!(store.calls()[3], "insert 1", "{:?}", store.calls());
    }

    #[tokio::test]
    async fn a_copy_of_an_insert_whose_answer_is_lost_waits_for_its_settling_and_is_found_stored() {
        let store = Memory::new();
        // The original lands, but its answer is lost.
        store.script.lock().unwrap().push(Outcome {
            stores: true,
            answers: false,
        });
        let (sink, _task) = spawn(store.clone(), limits(), Metrics::new());
        let event = row();
        let original = submit(&sink, vec![event.clone()]);
        store.inserts_started(1).await;
        let retry = submit(&sink, vec![event.clone()]);
        store.lookups_done(2).await;
        store.gate.add_permits(1);
        assert!(answer(original).await.is_err(), "an open outcome is a 503");
        let already = answer(retry).await.unwrap();
        assert_eq!(
            *already,
            HashSet::from([(event.partner_id, event.event_id)])
        );
        assert_eq!(store.rows.lock().unwrap().len(), 1, "stored once");
        assert_eq!(
            store.calls(),
            ["lookup", "insert 1", "lookup", "settle", "lookup"],
            "settled before the key is looked up again, and nothing inserted twice"
        );
    }

    #[tokio::test]
    async fn a_copy_of_an_insert_that_did_not_land_is_stored_after_the_settling() {
        let store = Memory::new();
        store.script.lock().unwrap().push(Outcome {
            stores: false,
            answers: false,
        });
        let (sink, _task) = spawn(store.clone(), limits(), Metrics::new());
        let event = row();
        let original = submit(&sink, vec![event.clone()]);
        store.inserts_started(1).await;
        let retry = submit(&sink, vec![event.clone()]);
        store.lookups_done(2).await;
        store.gate.add_permits(2);
        assert!(answer(original).await.is_err());
        assert!(
            answer(retry).await.unwrap().is_empty(),
            "stored now, not a duplicate"
        );
        assert_eq!(*store.rows.lock().unwrap(), vec![sort_key(&event)]);
        assert_eq!(
            store.calls(),
            ["lookup", "insert 1", "lookup", "settle", "lookup", "insert 1"]
        );
    }
}
