//! Running campaigns: customer-event triggers, durable waits, system-event fan-outs,
//! schedules, and the channels ([`super::gateways`]; who can receive what:
//! [`super::eligibility`]). The engine runs inside `serve` (the default) or as its own process,
//! `eventline-collector campaigns` ([`super::standalone`]).
//!
//! - **Inputs.** Inside `serve`, the sink hands every commit's newly stored events (never a
//!   duplicate it skipped) to the engine in-process, right after the commit: no polling
//!   delay. Every engine also reads `events` from ClickHouse by `received_at` ([`Tail`]): from
//!   its durable checkpoint minus an overlap at start (so events stored but not advanced when
//!   a process was killed are advanced then), then a round every `EVENTLINE_CAMPAIGN_POLL_MS`
//!   (the only input of a separate engine process; inside `serve` it catches what other
//!   collectors stored, and what the hand-off failed to advance). An event is advanced once
//!   per process; a replay after a restart is harmless (below).
//! - **One writer per state.** Each engine process owns a fixed share `k/N` of the customers
//!   ([`Shard`], `EVENTLINE_CAMPAIGN_SHARD`; `serve` with campaigns is `0/1` unless told
//!   otherwise) and advances, wakes, fans out to, schedules and delivers only their runs and
//!   messages. Within a process the share is split in lanes (`EVENTLINE_CAMPAIGN_LANES`; lane
//!   `j` of `k/N` is the share `(k + j·N)/(N·lanes)`, with its own checkpoint, fan-outs and
//!   schedule progress), and one engine task per lane advances its runs, so reading a
//!   customer's state and writing the next version cannot interleave with another write of
//!   it. Run one process per share, all with the same `N`: two processes on one share (or a
//!   `serve` with campaigns beside `campaigns` processes) would each write the same states.
//! - **Batches.** The events of one hand-off (or one page of the tail) are advanced together:
//!   per campaign, the states of every customer they touch are read in one query and their
//!   profiles in another, each customer's events run through the engine in time order, then the
//!   log is asked which of the new message ids it holds already (a replay), the caps are judged
//!   on one read of the counted messages, the new messages are written in one insert and the
//!   states in another. A fan-out page is the same with one event for many customers.
//! - **Order of writes.** For each batch: the engine runs, assigned events are stored through
//!   the sink, the messages are written to the log (`queued`) under their deterministic ids,
//!   then the states are saved (with their wake-up times), then the wake-ups join the in-memory
//!   timer. A crash between any two steps replays from the old states and produces the same
//!   message ids, which the log already holds: nothing is queued twice. A replayed triggering
//!   event that the state remembers (the last `RECENT_TRIGGERS`) starts no second run. Due
//!   times are read back from `campaign_runs` at start, so a wait survives a restart and one
//!   that fell due while the engine was down fires at once.
//! - **Delivery** is its own task per lane: queued messages (and, at start, every message of
//!   the lane the log holds as queued or failed) are sent in order of their next attempt; a
//!   failure is logged with its reason and retried with backoff ([`messages::backoff`]).
//! - **System events** fan out ([`super::fanout`]): each lane records a durable fan-out per
//!   active campaign whose `system_event` trigger matches, and advances the runs of the
//!   customers of its share that the filters select, a page at a time between its other
//!   inputs (a customer event waits at most one page).
//! - **Schedules** ([`super::schedules`]): each lane also scans the scheduled campaigns (every
//!   `EVENTLINE_CAMPAIGN_SCHEDULE_POLL_MS` and at each one's next due instant) and starts the
//!   day's runs of its customers. **Caps and counters** are counted from the message log
//!   before a message is queued ([`super::caps`]). **`assign_event`** stores its event through
//!   the sink ([`super::assign`]); an event a campaign assigned starts no run, it only reaches
//!   runs in progress (a wait for it, a turn-off), so campaigns cannot trigger each other
//!   forever.
//! - **Time** is the [`Clock`] given at start (the system clock; tests shift it): waits,
//!   schedule scans, fan-out clocks, message times and delivery all read it. The tail reads by
//!   `received_at`, the wall clock of the collectors.
//!
//! Windows: an event that becomes visible in ClickHouse more than the overlap
//! (`EVENTLINE_CAMPAIGN_TAIL_OVERLAP_MS`) minus [`super::tail::FULL_EVERY`] after its
//! `received_at`, while no hand-off gives it to this process, may never be read; a customer
//! who triggers more than `RECENT_TRIGGERS` runs of one campaign version within the replayed
//! span can have an older run started again after a restart: its messages carry the ids the
//! log holds, so nothing is sent twice, but until it ends a new trigger of that customer is
//! ignored. Not handled yet: a fan-out or schedule day in progress when `N` or the lanes change is left
//! unfinished. A paused campaign's due runs are looked at again every `PAUSED_RECHECK_MS` and
//! its fan-outs at each schedule scan, and go on once it is active again. Runs of an older
//! version (an edit leaves them running) are reached by the events of their customers, as a
//! run in progress is, and start no new run.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use event_model::{ContextValue, EventKind};
use eventline_audience::compile;
use eventline_audience::evaluate::StoredEvent;
use eventline_campaigns::content;
use eventline_campaigns::definition::{Status, Trigger};
use eventline_campaigns::engine::{self, Action, Key, Message, State};
use eventline_campaigns::template::{self, CampaignVars, Client, Vars};
use eventline_campaigns::{validate_json, Valid};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::assign::{self, SinkSlot};
use super::branches;
use super::caps;
use super::clock::Clock;
use super::eligibility;
use super::fanout::{self, FanoutRow, Selection};
use super::gateways::Gateways;
use super::messages::{self, MessageRow};
use super::runs::{self, RunKey};
use super::shard::Shard;
use super::standalone::Senders;
use super::tail::{Tail, TailSettings};
use crate::config::Config;
use crate::customers::queries as customer_queries;
use crate::error::StorageError;
use crate::registry::{PartnerEntry, Registry};
use crate::segments::{self, Members};
use crate::sink::Sink;
use crate::store::rows::{CampaignRow, CustomerProfileRow, EventRow};
use crate::store::Store;

/// The sink's side of the hand-off: each commit's newly stored events.
pub type Committed = mpsc::UnboundedSender<Vec<EventRow>>;

/// How long a failed read at start-up (due runs, pending messages) waits before trying again.
const START_RETRY: Duration = Duration::from_secs(1);
/// Events past which waiting hand-offs stop joining a batch (a bound on one batch's queries,
/// whose customer lists travel as parameters).
const HANDOFF_BATCH: usize = 2_000;
/// How often a due run of a paused campaign is looked at again.
const PAUSED_RECHECK_MS: i64 = 30_000;
/// How long a run whose wake-up failed (ClickHouse down) waits before it is tried again.
const DUE_RETRY_MS: i64 = 1_000;

/// The running engine: its hand-off and its two tasks.
pub struct Campaigns {
    /// Give this to the sink.
    pub committed: Committed,
    /// The engine tasks (one per lane, and the router); it ends once every [`Committed`]
    /// sender is dropped and what they sent is advanced. Aborting it aborts them all.
    pub engine: JoinHandle<()>,
    /// The delivery tasks (one per lane); aborting it aborts them all.
    pub delivery: JoinHandle<()>,
    /// Where the engines find the sink, for `assign_event` ([`Campaigns::attach_sink`]).
    sink: SinkSlot,
}

impl Campaigns {
    /// Lets `assign_event` steps store their events through `sink` (started after the engine,
    /// since the sink hands its commits to it). Until then, such a step fails and is retried.
    pub fn attach_sink(&self, sink: &Sink) {
        let _ = self.sink.set(sink.downgrade());
    }
}

/// How the engine runs, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Customers per page of a fan-out (`EVENTLINE_CAMPAIGN_FANOUT_PAGE`).
    pub fanout_page: u32,
    /// Time allowed to one selection query (`EVENTLINE_SEGMENT_QUERY_TIMEOUT_SECS`).
    pub segment_timeout: Duration,
    /// How often scheduled campaigns are looked at (`EVENTLINE_CAMPAIGN_SCHEDULE_POLL_MS`, at
    /// least 1 ms).
    pub schedule_poll: Duration,
    /// This process's share and how it reads `events`.
    pub tail: TailSettings,
    /// Lanes of the share (`EVENTLINE_CAMPAIGN_LANES`).
    pub lanes: u32,
}

impl Settings {
    /// The settings of `config`.
    pub fn from_config(config: &Config) -> Settings {
        Settings {
            fanout_page: config.campaign_fanout_page,
            segment_timeout: config.segment_query_timeout(),
            schedule_poll: Duration::from_millis(config.campaign_schedule_poll_ms.max(1)),
            tail: config.campaign_tail(),
            lanes: config.campaign_lanes,
        }
    }
}

/// Starts the engines and deliveries of this process's share `settings.tail.shard` of the
/// customers, on `clock`, in `settings.lanes` lanes: lane `j` of share `k/N` is the share
/// `(k + j·N)/(N·lanes)` (exactly the customers of `k/N` whose hash falls there), with an
/// engine task, a delivery task, a checkpoint, fan-outs and schedule progress of its own, so
/// the lanes advance runs in parallel and each customer's state still has one writer. Each
/// engine reads its inputs from `events` ([`Tail`]) and from [`Campaigns::committed`] (routed
/// to the lane by customer; system events to every lane); without a hand-off (its own
/// process), holding `committed` keeps them running and dropping it stops them.
pub fn spawn(
    store: Store,
    registry: Arc<Registry>,
    senders: &Senders,
    settings: Settings,
    clock: Clock,
) -> Result<Campaigns, String> {
    let shards = settings.tail.shard.lanes(settings.lanes)?;
    let (committed, mut incoming) = mpsc::unbounded_channel::<Vec<EventRow>>();
    let sink = SinkSlot::default();
    let mut engines = tokio::task::JoinSet::new();
    let mut deliveries = tokio::task::JoinSet::new();
    let mut routes = Vec::new();
    let members = Members::new(&store, settings.segment_timeout);
    for shard in &shards {
        let (events, lane_events) = mpsc::unbounded_channel();
        let (to_deliver, to_send) = mpsc::unbounded_channel();
        let engine = Engine {
            store: store.clone(),
            members: members.clone(),
            registry: registry.clone(),
            timer: BinaryHeap::new(),
            fanouts: VecDeque::new(),
            held: Vec::new(),
            fanout_page: settings.fanout_page.max(1),
            to_deliver,
            clock: clock.clone(),
            sink: sink.clone(),
            schedule_poll_ms: settings.schedule_poll.as_millis().max(1) as i64,
            next_scan_ms: i64::MIN,
            tail: TailSettings {
                shard: *shard,
                ..settings.tail
            },
        };
        engines.spawn(engine.run(lane_events));
        deliveries.spawn(deliver(
            store.clone(),
            senders.clone().gateways(store.clone()),
            to_send,
            clock.clone(),
            *shard,
        ));
        routes.push((*shard, events));
    }
    // The router hands each lane its customers' events (system events to every lane); it ends
    // with the hand-off, and its end (dropping the lanes' senders) ends the engines.
    engines.spawn(async move {
        while let Some(rows) = incoming.recv().await {
            if let [(_, lane)] = routes.as_slice() {
                let _ = lane.send(rows);
                continue;
            }
            for (shard, lane) in &routes {
                let mine: Vec<EventRow> = rows
                    .iter()
                    .filter(|r| r.kind == "system" || shard.owns(&r.customer_id))
                    .cloned()
                    .collect();
                if !mine.is_empty() {
                    let _ = lane.send(mine);
                }
            }
        }
    });
    // Dropping (aborting) either handle drops its set, which aborts every task in it.
    Ok(Campaigns {
        committed,
        engine: tokio::spawn(async move { while engines.join_next().await.is_some() {} }),
        delivery: tokio::spawn(async move { while deliveries.join_next().await.is_some() {} }),
        sink,
    })
}

/// How long a graceful stop waits for the engine to advance what it was handed (and save its
/// checkpoint), and then for the send in progress (each; an SMTP send may take
/// `EVENTLINE_SMTP_TIMEOUT_MS`, and one cut short is sent again at the next start under the
/// same Message-ID).
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(3);

/// A graceful end, once every [`Committed`] sender is dropped: the engine advances what it was
/// handed, saves its checkpoint and ends, which closes delivery's queue; delivery finishes the
/// send in progress (so a stop does not cut one between the server's answer and `sent`), then
/// ends. Each gets [`DRAIN_DEADLINE`], then is cut: what was cut is read again at the next
/// start (events from the checkpoint, messages from the log).
pub async fn drain(mut engine: JoinHandle<()>, mut delivery: JoinHandle<()>) {
    if tokio::time::timeout(DRAIN_DEADLINE, &mut engine)
        .await
        .is_err()
    {
        engine.abort();
    }
    if tokio::time::timeout(DRAIN_DEADLINE, &mut delivery)
        .await
        .is_err()
    {
        delivery.abort();
    }
}

/// The wall clock in Unix ms (what `received_at` is written in).
fn wall_ms() -> i64 {
    ms(OffsetDateTime::now_utc())
}

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A campaign version ready to run.
pub(super) struct Live {
    pub(super) row: CampaignRow,
    pub(super) valid: Valid,
}

/// What moves a run.
#[derive(Clone, Copy)]
pub(super) enum Input<'a> {
    Event(&'a StoredEvent),
    /// An event a campaign assigned: it reaches a run in progress only.
    Assigned(&'a StoredEvent),
    Due,
    /// A scheduled day whose date falls on the customer's date attribute, due at `at_ms`.
    Schedule {
        day: jiff::civil::Date,
        at_ms: i64,
    },
}

/// A fan-out in progress: its durable row, and what its pages need.
struct Fanout {
    row: FanoutRow,
    /// The page after `row.after`, selected (with its customers' profiles) while the previous
    /// page was advanced.
    ahead: Option<Ahead>,
    /// Whether the next page may have been advanced before, unrecorded: the first page after a
    /// resume. Only such a page asks the log which of its messages it holds; every other page's
    /// customers are new to this fan-out (keyset order), and the message ids include the event.
    replaying: bool,
    event: StoredEvent,
    live: Live,
    selection: Selection,
}

/// What a fan-out page left.
enum Paged {
    /// Customers are left.
    More,
    /// Every selected customer was reached (or the campaign is gone).
    Done,
    /// The campaign is paused: the fan-out waits until it is active again.
    Held,
}

/// A page selected ahead: its customer ids and their profiles.
struct Ahead {
    ids: Vec<String>,
    profiles: HashMap<String, CustomerProfileRow>,
}

/// What a fan-out page leaves to hand on: messages to deliver, wake-ups for the timer.
pub(super) struct Advanced {
    queued: Vec<MessageRow>,
    wakes: Vec<(i64, RunKey)>,
}

/// What one input did to a run: the state after it, the messages to log, and the events its
/// `assign_event` steps assign (stored before the messages and the state).
struct Stepped {
    state: State,
    sends: Vec<Message>,
    assigns: Vec<Assign>,
}

/// An [`Action::AssignEvent`], kept for the writer.
struct Assign {
    event_id: Uuid,
    step: String,
    name: String,
    properties: BTreeMap<String, Value>,
    occurred_ms: i64,
}

impl Assign {
    fn assigned<'a>(&'a self, customer: &'a str) -> assign::Assigned<'a> {
        assign::Assigned {
            customer,
            event_id: self.event_id,
            name: &self.name,
            properties: &self.properties,
            occurred_ms: self.occurred_ms,
        }
    }
}

pub(super) struct Engine {
    pub(super) store: Store,
    members: Members,
    pub(super) registry: Arc<Registry>,
    /// Wake-ups, earliest first. A state rewritten with another wake-up leaves its old entry
    /// here; firing it finds nothing due and changes nothing.
    timer: BinaryHeap<Reverse<(i64, RunKey)>>,
    /// Fan-outs with customers left, taken a page at a time in turn.
    fanouts: VecDeque<Fanout>,
    /// Fan-outs of paused campaigns, looked at again at each schedule scan
    /// (`EVENTLINE_CAMPAIGN_SCHEDULE_POLL_MS`).
    held: Vec<Fanout>,
    fanout_page: u32,
    to_deliver: mpsc::UnboundedSender<MessageRow>,
    clock: Clock,
    sink: SinkSlot,
    schedule_poll_ms: i64,
    /// When the scheduled campaigns are looked at next.
    next_scan_ms: i64,
    /// Where inputs are read from, and this lane's share of the customers.
    tail: TailSettings,
}

impl Engine {
    /// This lane's share of the customers.
    pub(super) fn shard(&self) -> Shard {
        self.tail.shard
    }

    async fn run(mut self, mut events: mpsc::UnboundedReceiver<Vec<EventRow>>) {
        let shard = self.shard();
        loop {
            match runs::waiting(&self.store).await {
                Ok(waiting) => {
                    let mine: Vec<_> = waiting
                        .into_iter()
                        .filter(|(k, _)| shard.owns(&k.customer_id))
                        .collect();
                    tracing::info!(runs = mine.len(), %shard, "campaign runs waiting");
                    self.timer
                        .extend(mine.into_iter().map(|(k, due)| Reverse((due, k))));
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "reading waiting campaign runs failed; retrying");
                    tokio::time::sleep(START_RETRY).await;
                }
            }
        }
        loop {
            match fanout::running(&self.store, shard).await {
                Ok(rows) => {
                    tracing::info!(fanouts = rows.len(), %shard, "campaign fan-outs to resume");
                    for row in rows {
                        self.resume(row).await;
                    }
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "reading running campaign fan-outs failed; retrying");
                    tokio::time::sleep(START_RETRY).await;
                }
            }
        }
        // The tail reads by received_at, the collectors' wall clock (not the engine's clock,
        // which tests shift).
        let mut tail = loop {
            match Tail::open(self.store.clone(), self.tail, wall_ms()).await {
                Ok(tail) => break tail,
                Err(error) => {
                    tracing::warn!(%error, "reading the campaign checkpoint failed; retrying");
                    tokio::time::sleep(START_RETRY).await;
                }
            }
        };
        // The first round at once: it replays what was stored but not advanced before.
        let mut next_round = tokio::time::Instant::now();
        // After each other input, a fan-out page (if any) goes first; after a page, events,
        // wake-ups, tail rounds and schedule scans do. So a customer event waits at most one
        // page behind a fan-out, and a fan-out advances at least one page per other input. A
        // stop leaves the fan-outs recorded, for the next start.
        let mut page_owed = false;
        loop {
            let next = self.timer.peek().map(|Reverse((due, _))| *due);
            let next = next.map_or(self.next_scan_ms, |due| due.min(self.next_scan_ms));
            let fanning = !self.fanouts.is_empty();
            let page_first = fanning && std::mem::take(&mut page_owed);
            tokio::select! {
                biased;
                () = std::future::ready(()), if page_first => self.fanout_page().await,
                batch = events.recv() => match batch {
                    Some(mut rows) => {
                        page_owed = true;
                        // Every hand-off waiting now joins this batch: while one batch is
                        // advanced the next ones queue, so batches grow with the rate and the
                        // round trips per event fall.
                        while rows.len() < HANDOFF_BATCH {
                            match events.try_recv() {
                                Ok(more) => rows.extend(more),
                                Err(_) => break,
                            }
                        }
                        let rows = tail.unseen(rows);
                        let keys = Tail::keys(&rows);
                        // What failed is read again by the tail.
                        if self.on_events(rows).await {
                            tail.handed(keys);
                        }
                    }
                    None => break,
                },
                // Also returns when a test moves the clock: only what is due then is run.
                () = self.clock.sleep_until(Some(next)) => {
                    page_owed = true;
                    self.on_due().await;
                    let now = self.clock.now_ms();
                    if now >= self.next_scan_ms {
                        let next_due = self.on_schedules(now).await;
                        self.next_scan_ms = next_due.min(now + self.schedule_poll_ms);
                        // A held fan-out's next page finds out whether its campaign is active.
                        self.fanouts.extend(self.held.drain(..));
                    }
                }
                () = tokio::time::sleep_until(next_round) => {
                    page_owed = true;
                    next_round = self.on_tail(&mut tail).await;
                }
                () = std::future::ready(()), if fanning => self.fanout_page().await,
            }
        }
        if let Err(error) = tail.save_if_due(true).await {
            tracing::warn!(%error, "saving the campaign checkpoint at the end failed; the next start reads a little more again");
        }
    }

    /// One page of the tail; returns when to read the next.
    async fn on_tail(&mut self, tail: &mut Tail) -> tokio::time::Instant {
        let poll = tail.settings().poll;
        let mut page = match tail.next_page().await {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(%error, "reading events for campaigns failed; retrying");
                return tokio::time::Instant::now() + poll;
            }
        };
        let events = std::mem::take(&mut page.events);
        if !self.on_events(events).await {
            // The page is read again (what it advanced replays harmlessly).
            return tokio::time::Instant::now() + poll;
        }
        let more = page.more;
        tail.advanced(page);
        if let Err(error) = tail.save_if_due(false).await {
            tracing::warn!(%error, "saving the campaign checkpoint failed; retrying later");
        }
        tokio::time::Instant::now() + if more { Duration::ZERO } else { poll }
    }

    /// Advances every run `rows` move: per partner and active campaign, one batch
    /// ([`Self::advance_batch`]) of the customers' events in time order. `false` when a
    /// storage failure left some not advanced (the tail reads them again; what was advanced
    /// replays harmlessly).
    async fn on_events(&mut self, mut rows: Vec<EventRow>) -> bool {
        let shard = self.shard();
        let mut ok = true;
        let system: Vec<EventRow> = rows
            .iter()
            .filter(|r| r.kind == "system")
            .cloned()
            .collect();
        if !system.is_empty() {
            ok &= self.on_system_events(&system).await;
        }
        rows.retain(|r| {
            r.kind == "customer" && !r.customer_id.is_empty() && shard.owns(&r.customer_id)
        });
        // Each partner's events in time order (within what one hand-off or page holds); the
        // sort is stable, so events of one instant keep their order of arrival.
        rows.sort_by_key(|r| (r.partner_id, ms(r.event_time)));
        let assigned_path = crate::ingest::IngestPath::Campaign.as_str();
        for rows in rows.chunk_by(|a, b| a.partner_id == b.partner_id) {
            let partner_id = rows[0].partner_id;
            let Ok(entry) = self.registry.partner(&partner_id) else {
                continue;
            };
            let campaigns = match active_campaigns(&self.store, &entry).await {
                Ok(found) => found,
                Err(error) => {
                    tracing::warn!(%error, partner = %partner_id, "reading active campaigns failed; these events are tried again");
                    ok = false;
                    continue;
                }
            };
            if campaigns.is_empty() {
                continue;
            }
            let events: Vec<(&str, StoredEvent, bool)> = rows
                .iter()
                .map(|r| {
                    (
                        r.customer_id.as_str(),
                        stored_event(r),
                        r.ingest_path == assigned_path,
                    )
                })
                .collect();
            let inputs: Vec<(&str, Input<'_>)> = events
                .iter()
                .map(|(customer, event, assigned)| {
                    let input = if *assigned {
                        Input::Assigned(event)
                    } else {
                        Input::Event(event)
                    };
                    (*customer, input)
                })
                .collect();
            for campaign in &campaigns {
                let now = self.clock.now_ms();
                match self
                    .advance_batch(&entry, campaign, &inputs, None, true, now)
                    .await
                {
                    Ok(advanced) => self.hand_on(advanced),
                    Err(error) => {
                        tracing::warn!(%error, campaign = %campaign.row.campaign_id, events = inputs.len(), "advancing campaign runs on events failed; tried again");
                        ok = false;
                        continue;
                    }
                }
                if let Err(error) = self.advance_older(&entry, campaign, &events, now).await {
                    tracing::warn!(%error, campaign = %campaign.row.campaign_id, "advancing older versions' runs on events failed; tried again");
                    ok = false;
                }
            }
        }
        ok
    }

    /// The runs that older versions of `campaign` still have in progress for these events'
    /// customers (an edit leaves them running to their end): each event reaches them as it
    /// reaches a run in progress (it can end a wait, turn a mailing off, postpone it), but
    /// starts no run of an old version.
    async fn advance_older(
        &mut self,
        entry: &PartnerEntry,
        campaign: &Live,
        events: &[(&str, StoredEvent, bool)],
        now: i64,
    ) -> Result<(), StorageError> {
        let c = &campaign.row;
        if c.version <= 1 {
            return Ok(());
        }
        let mut customers: Vec<String> = events.iter().map(|(c, _, _)| c.to_string()).collect();
        customers.sort_unstable();
        customers.dedup();
        let older = runs::older_in_progress(
            &self.store,
            c.partner_id,
            c.campaign_id,
            c.version,
            &customers,
        )
        .await?;
        for (version, running) in older {
            let row = match super::version(&self.store, c.partner_id, c.campaign_id, version).await
            {
                Ok(row) => row,
                Err(super::CampaignError::Storage(e)) => return Err(e),
                Err(_) => continue,
            };
            let Some(mut old) = live(entry, row) else {
                continue;
            };
            // Only the current version's row says whether the campaign runs.
            old.valid.campaign.status = campaign.valid.campaign.status;
            let inputs: Vec<(&str, Input<'_>)> = events
                .iter()
                .filter(|(customer, _, _)| running.iter().any(|r| r == customer))
                .map(|(customer, event, _)| (*customer, Input::Assigned(event)))
                .collect();
            let advanced = self
                .advance_batch(entry, &old, &inputs, None, true, now)
                .await?;
            self.hand_on(advanced);
        }
        Ok(())
    }

    /// Hands a batch's queued messages to delivery and its wake-ups to the timer.
    pub(super) fn hand_on(&mut self, advanced: Advanced) {
        for row in advanced.queued {
            let _ = self.to_deliver.send(row);
        }
        self.timer.extend(advanced.wakes.into_iter().map(Reverse));
    }

    /// Records this lane's fan-out for each active campaign a system event triggers (once per
    /// campaign version, event and share), and queues it. `false` when a storage failure left
    /// one unrecorded (the tail reads the event again).
    async fn on_system_events(&mut self, rows: &[EventRow]) -> bool {
        let mut ok = true;
        let mut live: HashMap<Uuid, Vec<Live>> = HashMap::new();
        for row in rows {
            let Ok(entry) = self.registry.partner(&row.partner_id) else {
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = live.entry(row.partner_id) {
                slot.insert(match active_campaigns(&self.store, &entry).await {
                    Ok(found) => found,
                    Err(error) => {
                        tracing::warn!(%error, partner = %row.partner_id, "reading active campaigns failed; these system events are tried again");
                        ok = false;
                        Vec::new()
                    }
                });
            }
            let event = stored_event(row);
            for campaign in &live[&row.partner_id] {
                if !matches!(campaign.valid.campaign.trigger, Trigger::SystemEvent(_))
                    || !engine::starts(&campaign.valid, &event)
                {
                    continue;
                }
                if self.fanouts.iter().any(|f| {
                    f.row.campaign_id == campaign.row.campaign_id
                        && f.row.event_id == event.event_id
                        && f.row.version == campaign.row.version
                }) {
                    continue;
                }
                if let Err(error) = self.start_fanout(&entry, campaign, &event).await {
                    tracing::warn!(%error, campaign = %campaign.row.campaign_id, event = %event.event_id, "recording a campaign fan-out failed; tried again");
                    ok = false;
                }
            }
        }
        ok
    }

    async fn start_fanout(
        &mut self,
        entry: &PartnerEntry,
        campaign: &Live,
        event: &StoredEvent,
    ) -> Result<(), StorageError> {
        let c = &campaign.row;
        let shard = self.shard();
        if fanout::get(
            &self.store,
            c.partner_id,
            c.campaign_id,
            c.version,
            &event.event_id,
            shard,
        )
        .await?
        .is_some()
        {
            return Ok(());
        }
        let row = FanoutRow::start(
            c.partner_id,
            c.campaign_id,
            c.version,
            event,
            self.clock.now_ms(),
            shard,
        );
        fanout::write(&self.store, &row).await?;
        tracing::info!(campaign = %c.campaign_id, version = c.version, event = %event.event_id, %shard, "campaign fan-out started");
        self.fanouts.push_back(Fanout {
            row,
            ahead: None,
            replaying: false,
            event: event.clone(),
            selection: fanout::selection(&campaign.valid, entry, event),
            live: Live {
                row: campaign.row.clone(),
                valid: campaign.valid.clone(),
            },
        });
        Ok(())
    }

    /// Queues a fan-out read back at start. One whose campaign version is gone, or no longer
    /// fits the catalogue, is ended.
    async fn resume(&mut self, row: FanoutRow) {
        let entry = self.registry.partner(&row.partner_id).ok();
        let version =
            super::version(&self.store, row.partner_id, row.campaign_id, row.version).await;
        let (entry, campaign, event) = match (entry, version, row.trigger_event()) {
            (_, Err(super::CampaignError::Storage(error)), _) => {
                // Left running in the table: the next start tries again.
                tracing::warn!(%error, campaign = %row.campaign_id, "reading a fan-out's campaign failed; it resumes at the next start");
                return;
            }
            (Some(entry), Ok(version), Some(event)) => match live(&entry, version) {
                Some(campaign) => (entry, campaign, event),
                None => return self.end_fanout(&row).await,
            },
            _ => return self.end_fanout(&row).await,
        };
        tracing::info!(campaign = %row.campaign_id, version = row.version, event = %row.event_id, after = %row.after, "campaign fan-out resumed");
        self.fanouts.push_back(Fanout {
            selection: fanout::selection(&campaign.valid, &entry, &event),
            ahead: None,
            replaying: true,
            row,
            event,
            live: campaign,
        });
    }

    async fn end_fanout(&self, row: &FanoutRow) {
        tracing::info!(campaign = %row.campaign_id, event = %row.event_id, "a fan-out's campaign version is gone or no longer valid; ended");
        if let Err(error) = fanout::write(&self.store, &row.finished()).await {
            tracing::warn!(%error, "ending a fan-out failed; it is looked at again at the next start");
        }
    }

    /// One page of the first fan-out in line; it goes to the back of the line if customers
    /// are left.
    async fn fanout_page(&mut self) {
        let Some(mut f) = self.fanouts.pop_front() else {
            return;
        };
        match self.page_of(&mut f).await {
            Ok(Paged::Done) => {}
            Ok(Paged::More) => self.fanouts.push_back(f),
            Ok(Paged::Held) => self.held.push(f),
            Err(error) => {
                tracing::warn!(%error, campaign = %f.row.campaign_id, event = %f.row.event_id, after = %f.row.after, "a fan-out page failed; retrying");
                // ClickHouse is failing: wait a little before the page is tried again. Some of
                // its writes may have landed (a timed-out insert too): the retry is a replay.
                f.replaying = true;
                tokio::time::sleep(START_RETRY).await;
                self.fanouts.push_back(f);
            }
        }
    }

    /// Advances the runs of the next page of customers.
    async fn page_of(&mut self, f: &mut Fanout) -> Result<Paged, StorageError> {
        let row = &f.row;
        let current = match super::get(&self.store, row.partner_id, row.campaign_id).await {
            Ok(current) => current,
            Err(super::CampaignError::Storage(e)) => return Err(e),
            Err(_) => {
                // Deleted: nothing runs a deleted campaign.
                fanout::write(&self.store, &row.finished()).await?;
                return Ok(Paged::Done);
            }
        };
        if super::row_status(&current) != Status::Active {
            tracing::info!(campaign = %row.campaign_id, "campaign paused mid-fan-out; the fan-out is held until it is active again");
            return Ok(Paged::Held);
        }
        let Ok(entry) = self.registry.partner(&row.partner_id) else {
            fanout::write(&self.store, &row.finished()).await?;
            return Ok(Paged::Done);
        };
        let started = std::time::Instant::now();
        let (ids, profiles) = match f.ahead.take() {
            Some(Ahead { ids, profiles }) => (ids, Some(profiles)),
            None => {
                let ids = fanout::page(
                    &self.members,
                    &entry,
                    &f.selection,
                    row.clock_ms,
                    &row.after,
                    self.fanout_page,
                    self.tail.shard,
                )
                .await?;
                (ids, None)
            }
        };
        let next = row.after_page(&ids, self.fanout_page);
        // The next page, and its customers' profiles, are read while this one is advanced:
        // the page depends only on this page's last id (and the fixed clock), and is only kept
        // in memory. (States are not read ahead: another input may change one in between.)
        let select_ahead = async {
            if next.status == fanout::DONE {
                return Ok::<_, StorageError>(None);
            }
            let (selection, clock_ms, after) = (&f.selection, next.clock_ms, &next.after);
            let ids = fanout::page(
                &self.members,
                &entry,
                selection,
                clock_ms,
                after,
                self.fanout_page,
                self.tail.shard,
            )
            .await?;
            let profiles =
                by_customer(customer_queries::profiles(&self.store, row.partner_id, &ids).await?);
            Ok(Some(Ahead { ids, profiles }))
        };
        let inputs: Vec<(&str, Input<'_>)> = ids
            .iter()
            .map(|id| (id.as_str(), Input::Event(&f.event)))
            .collect();
        let (advanced, ahead) = tokio::join!(
            self.advance_batch(
                &entry,
                &f.live,
                &inputs,
                profiles,
                f.replaying,
                self.clock.now_ms()
            ),
            select_ahead
        );
        self.hand_on(advanced?);
        // Only after the page's messages and states are written.
        fanout::write(&self.store, &next).await?;
        f.replaying = false;
        f.ahead = ahead.ok().flatten();
        tracing::debug!(
            campaign = %next.campaign_id,
            customers = ids.len(),
            page_ms = started.elapsed().as_millis() as u64,
            "campaign fan-out page"
        );
        let done = next.status == fanout::DONE;
        if done {
            tracing::info!(campaign = %next.campaign_id, event = %next.event_id, customers = next.customers, "campaign fan-out done");
        }
        f.row = next;
        Ok(if done { Paged::Done } else { Paged::More })
    }

    /// Inputs for many customers' runs of one campaign version, in the order given (a
    /// customer's inputs in time order): their states read in one query (and their profiles,
    /// unless `profiles` has them), the engine run for each input, the events its
    /// `assign_event` steps assign stored through the sink, then, together, the log asked which
    /// message ids it holds already (when the batch may be a replay), the profiles of whom a
    /// message goes to and the counts the caps need; then the new messages written in one
    /// insert and the changed states in another. Returns what to hand on: the queued messages
    /// and the wake-ups. A fan-out's page is one system event for many customers; a hand-off
    /// is many customers' events.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn advance_batch(
        &self,
        entry: &PartnerEntry,
        campaign: &Live,
        inputs: &[(&str, Input<'_>)],
        profiles: Option<HashMap<String, CustomerProfileRow>>,
        replaying: bool,
        now: i64,
    ) -> Result<Advanced, StorageError> {
        let c = &campaign.row;
        let started = std::time::Instant::now();
        let mut customers: Vec<String> = inputs.iter().map(|(c, _)| c.to_string()).collect();
        customers.sort_unstable();
        customers.dedup();
        let mut loaded = runs::load_many(
            &self.store,
            c.partner_id,
            c.campaign_id,
            c.version,
            &customers,
        )
        .await?;
        let read = started.elapsed();
        // Each customer's state as read (with its revision), and as its inputs move it.
        let mut states: HashMap<&str, (State, u64, State)> = HashMap::new();
        let mut sends: Vec<(&str, Message)> = Vec::new();
        let mut assigns = Vec::new();
        for &(customer, input) in inputs {
            let (_, _, state) = states.entry(customer).or_insert_with(|| {
                let before = loaded.remove(customer).unwrap_or_default();
                (before.state.clone(), before.revision, before.state)
            });
            let stepped = self
                .step(entry, campaign, customer, input, state, now)
                .await?;
            assigns.extend(stepped.assigns.into_iter().map(|a| (customer, a)));
            if stepped.state == *state {
                continue;
            }
            sends.extend(stepped.sends.into_iter().map(|m| (customer, m)));
            *state = stepped.state;
        }
        self.record_many(entry, campaign, &assigns, now).await?;
        let stepped = started.elapsed();
        let ids: Vec<Uuid> = sends.iter().map(|(_, m)| m.message_id).collect();
        let window = caps::window_start(sends.iter().map(|(_, m)| m), now);
        let mut to: Vec<String> = sends.iter().map(|(c, _)| c.to_string()).collect();
        to.sort_unstable();
        to.dedup();
        let held = async {
            if replaying && !ids.is_empty() {
                messages::held(&self.store, c.partner_id, &ids).await
            } else {
                Ok(std::collections::HashSet::new())
            }
        };
        let profiles = async {
            match profiles {
                Some(profiles) => Ok(profiles),
                None if to.is_empty() => Ok(HashMap::new()),
                None => customer_queries::profiles(&self.store, c.partner_id, &to)
                    .await
                    .map(by_customer),
            }
        };
        let counted = async {
            match window {
                Some(from) => {
                    let who: Vec<&str> = to.iter().map(String::as_str).collect();
                    caps::counted(&self.store, c.partner_id, &who, from)
                        .await
                        .map(Some)
                }
                None => Ok(None),
            }
        };
        let (held, profiles, counted) = tokio::try_join!(held, profiles, counted)?;
        let looked_up = started.elapsed();
        let mut seen = std::collections::HashSet::new();
        let fresh: Vec<&(&str, Message)> = sends
            .iter()
            .filter(|(_, m)| !held.contains(&m.message_id) && seen.insert(m.message_id))
            .collect();
        let created = self.clock.now();
        let mut rows: Vec<MessageRow> = fresh
            .iter()
            .map(|(customer, m)| message_row(c, customer, m, profiles.get(*customer), created))
            .collect();
        // Caps: every message here is new to the log (held ones are left out above, and the
        // counts include them), so each one admitted counts for the next of the same customer.
        if let Some(mut counted) = counted {
            for ((customer, m), row) in fresh.iter().zip(rows.iter_mut()) {
                if row.status != messages::QUEUED {
                    continue;
                }
                match counted.refusal(c.campaign_id, customer, m, now) {
                    Some(why) => {
                        row.status = messages::SKIPPED.into();
                        row.error = why;
                    }
                    None => counted.count(c.campaign_id, customer, m, now),
                }
            }
        }
        let rendered = started.elapsed();
        messages::write_many(&self.store, &rows).await?;
        let logged = started.elapsed();
        let changed: Vec<(RunKey, State, u64)> = states
            .into_iter()
            .filter(|(_, (before, _, after))| before != after)
            .map(|(customer, (_, revision, after))| (run_key(c, customer), after, revision))
            .collect();
        runs::save_many(&self.store, &changed).await?;
        tracing::debug!(
            inputs = inputs.len(),
            read_ms = read.as_millis() as u64,
            engine_ms = (stepped - read).as_millis() as u64,
            lookups_ms = (looked_up - stepped).as_millis() as u64,
            render_ms = (rendered - looked_up).as_millis() as u64,
            log_insert_ms = (logged - rendered).as_millis() as u64,
            state_insert_ms = (started.elapsed() - logged).as_millis() as u64,
            "campaign batch phases"
        );
        Ok(Advanced {
            queued: rows
                .into_iter()
                .filter(|r| r.status == messages::QUEUED)
                .collect(),
            wakes: changed
                .into_iter()
                .filter_map(|(key, state, _)| Some((state.next_wake_ms()?, key)))
                .collect(),
        })
    }

    async fn on_due(&mut self) {
        let now = self.clock.now_ms();
        // Campaigns as read in this round: many runs of one campaign falling due together
        // (a paused campaign's runs, looked at again) cost one read.
        let mut current = HashMap::new();
        while let Some(Reverse((due, _))) = self.timer.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((due, key))) = self.timer.pop() else {
                break;
            };
            // The timer fired at `due`: the engine sees it reached even if the wall clock
            // lags the monotonic one by a few milliseconds.
            if let Err(error) = self.fire(&key, now.max(due), &mut current).await {
                tracing::warn!(%error, ?key, "a campaign wake-up failed; retrying");
                self.timer.push(Reverse((now + DUE_RETRY_MS, key)));
            }
        }
    }

    async fn fire(
        &mut self,
        key: &RunKey,
        now: i64,
        read: &mut HashMap<(Uuid, Uuid), Option<CampaignRow>>,
    ) -> Result<(), StorageError> {
        let Ok(entry) = self.registry.partner(&key.partner_id) else {
            return Ok(());
        };
        let slot = (key.partner_id, key.campaign_id);
        let current = match read.get(&slot) {
            Some(row) => row.clone(),
            None => {
                let row = match super::get(&self.store, key.partner_id, key.campaign_id).await {
                    Ok(row) => Some(row),
                    Err(super::CampaignError::Storage(e)) => return Err(e),
                    Err(_) => None,
                };
                read.insert(slot, row.clone());
                row
            }
        };
        // Deleted: nothing runs a deleted campaign.
        let Some(current) = current else {
            return Ok(());
        };
        let row = if current.version == key.version {
            current.clone()
        } else {
            match super::version(&self.store, key.partner_id, key.campaign_id, key.version).await {
                Ok(row) => row,
                Err(super::CampaignError::Storage(e)) => return Err(e),
                Err(_) => return Ok(()),
            }
        };
        let Some(mut live) = live(&entry, row) else {
            return Ok(());
        };
        // Pausing rewrites the current version's row only; it holds the older versions' runs.
        live.valid.campaign.status = super::row_status(&current);
        if live.valid.campaign.status != Status::Active {
            // Paused: the run waits; it is looked at again, and goes on once the campaign is
            // active again (late by at most this).
            self.timer
                .push(Reverse((now + PAUSED_RECHECK_MS, key.clone())));
            return Ok(());
        }
        // One run's wake-up is a batch of one input: the same path as events and pages.
        let inputs = [(key.customer_id.as_str(), Input::Due)];
        let advanced = self
            .advance_batch(&entry, &live, &inputs, None, true, now)
            .await?;
        self.hand_on(advanced);
        Ok(())
    }

    /// The engine on one input for one customer, with its segment checks answered: the state
    /// after it, the messages it sends and the events it assigns. Writes nothing.
    async fn step(
        &self,
        entry: &PartnerEntry,
        campaign: &Live,
        customer: &str,
        input: Input<'_>,
        state: &State,
        now: i64,
    ) -> Result<Stepped, StorageError> {
        let campaign_id = campaign.row.campaign_id.to_string();
        let engine_key = Key {
            campaign_id: &campaign_id,
            version: u64::from(campaign.row.version),
            customer_id: customer,
        };
        let valid = &campaign.valid;
        let (mut state, actions) = match input {
            Input::Event(event) => engine::on_event(valid, engine_key, state.clone(), event, now),
            Input::Assigned(event) => {
                engine::on_assigned_event(valid, engine_key, state.clone(), event, now)
            }
            Input::Due => engine::on_due(valid, engine_key, state.clone(), now),
            Input::Schedule { day, at_ms } => {
                engine::on_schedule(valid, engine_key, state.clone(), day, at_ms, now)
            }
        };
        let mut actions: VecDeque<Action> = actions.into();
        let mut sends = Vec::new();
        let mut assigns = Vec::new();
        while let Some(action) = actions.pop_front() {
            match action {
                Action::Check { check, condition } => {
                    let holds = self.check(entry, customer, &condition, now).await?;
                    let (next, more) =
                        engine::on_answer(valid, engine_key, state, &check, holds, now);
                    state = next;
                    actions.extend(more);
                }
                Action::CheckSegment { check, segment_id } => {
                    let holds = match branches::saved_condition(
                        &self.store,
                        campaign.row.partner_id,
                        &segment_id,
                    )
                    .await?
                    {
                        Some(condition) => self.check(entry, customer, &condition, now).await?,
                        None => {
                            tracing::warn!(campaign = %campaign_id, segment = %segment_id, "a branch's segment is gone; it does not hold");
                            false
                        }
                    };
                    let (next, more) =
                        engine::on_answer(valid, engine_key, state, &check, holds, now);
                    state = next;
                    actions.extend(more);
                }
                Action::Send(message) => sends.push(message),
                Action::AssignEvent {
                    event_id,
                    step,
                    name,
                    properties,
                    occurred_ms,
                } => assigns.push(Assign {
                    event_id,
                    step,
                    name,
                    properties,
                    occurred_ms,
                }),
                Action::WakeAt { .. } | Action::Done { .. } => {}
            }
        }
        Ok(Stepped {
            state,
            sends,
            assigns,
        })
    }

    /// Stores a batch's assigned events through the sink, [`assign::BATCH`] per submit (a
    /// replay submits the same event ids, which the sink skips). One the ingest rules refuse is
    /// skipped: retrying could not change the verdict.
    async fn record_many(
        &self,
        entry: &PartnerEntry,
        campaign: &Live,
        assigns: &[(&str, Assign)],
        now: i64,
    ) -> Result<(), StorageError> {
        if assigns.is_empty() {
            return Ok(());
        }
        let events = assigns.iter().map(|(customer, a)| a.assigned(customer));
        for (refused, error) in
            assign::record_many(&self.sink, &self.registry, entry, events, now).await?
        {
            let a = &assigns[refused].1;
            tracing::warn!(campaign = %campaign.row.campaign_id, step = %a.step, name = %a.name, %error, "an assigned event was refused; the step is skipped");
        }
        Ok(())
    }

    /// Whether the customer meets `condition` ([`check_condition`]).
    async fn check(
        &self,
        entry: &PartnerEntry,
        customer: &str,
        condition: &eventline_audience::Condition,
        now: i64,
    ) -> Result<bool, StorageError> {
        check_condition(&self.store, entry, customer, condition, now).await
    }
}

/// Whether the customer meets `condition`, asked of ClickHouse with the audience compiler's SQL
/// narrowed to the one customer. A condition the partner's catalogue no longer admits cannot
/// hold.
pub(super) async fn check_condition(
    store: &Store,
    entry: &PartnerEntry,
    customer: &str,
    condition: &eventline_audience::Condition,
    now: i64,
) -> Result<bool, StorageError> {
    let segment = match eventline_audience::validate(condition, &segments::catalogue(entry)) {
        Ok(segment) => segment,
        Err(errors) => {
            tracing::warn!(
                ?errors,
                "a campaign check no longer fits the catalogue; it does not hold"
            );
            return Ok(false);
        }
    };
    let Ok(clock) = segments::clock(entry, now) else {
        return Ok(false);
    };
    let query = compile::members(&segment, &clock);
    let sql = format!(
        "SELECT count() FROM ({}) WHERE customer_id = {{campaign_customer:String}}",
        query.sql
    );
    let mut q = store
        .client()
        .query(&sql)
        .param("partner", entry.partner.partner_id.to_string())
        .param("campaign_customer", customer);
    for p in &query.params {
        q = q.param(&p.name, &p.value);
    }
    let found: u64 = store.timed(q.fetch_one()).await?;
    Ok(found > 0)
}

/// The partner's active campaigns at their current versions, validated against its catalogue
/// as it is now (one that no longer fits is left out, with a warning).
async fn active_campaigns(store: &Store, entry: &PartnerEntry) -> Result<Vec<Live>, StorageError> {
    let rows: Vec<CampaignRow> = store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM ( \
                       SELECT * FROM campaigns FINAL WHERE partner_id = {partner:UUID} \
                       ORDER BY campaign_id, version DESC LIMIT 1 BY campaign_id) \
                     WHERE is_deleted = 0 AND status = 'active'",
                )
                .param("partner", entry.partner.partner_id.to_string())
                .fetch_all(),
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| live(entry, row))
        .collect())
}

pub(super) fn live(entry: &PartnerEntry, row: CampaignRow) -> Option<Live> {
    match validate_json(&row.definition, &segments::catalogue(entry)) {
        Ok(valid) => Some(Live { row, valid }),
        Err(errors) => {
            tracing::warn!(campaign = %row.campaign_id, version = row.version, ?errors, "a saved campaign no longer fits the catalogue; not run");
            None
        }
    }
}

fn by_customer(profiles: Vec<CustomerProfileRow>) -> HashMap<String, CustomerProfileRow> {
    profiles
        .into_iter()
        .map(|p| (p.customer_id.clone(), p))
        .collect()
}

fn run_key(campaign: &CampaignRow, customer: &str) -> RunKey {
    RunKey {
        partner_id: campaign.partner_id,
        campaign_id: campaign.campaign_id,
        version: campaign.version,
        customer_id: customer.to_string(),
    }
}

/// A stored event as the engine reads it.
pub(super) fn stored_event(row: &EventRow) -> StoredEvent {
    let mut context = BTreeMap::new();
    for (k, v) in &row.context_strings {
        context.insert(k.clone(), ContextValue::String(v.clone()));
    }
    for (k, v) in &row.context_numbers {
        context.insert(k.clone(), ContextValue::Number(*v));
    }
    for (k, v) in &row.context_booleans {
        context.insert(k.clone(), ContextValue::Bool(*v));
    }
    StoredEvent {
        event_id: row.event_id.to_string(),
        kind: if row.kind == "system" {
            EventKind::System
        } else {
            EventKind::Customer
        },
        name: row.name.clone(),
        source: row.source.clone(),
        customer_id: row.customer_id.clone(),
        anonymous_id: row.anonymous_id.clone(),
        event_time_ms: ms(row.event_time),
        context,
    }
}

/// What a template reads about the customer.
fn client(customer: &str, profile: Option<&CustomerProfileRow>, message: &Message) -> Client {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let mut client = Client {
        customer_id: customer.to_string(),
        event_context: message.context.clone(),
        ..Client::default()
    };
    if let Some(p) = profile {
        client.first_name = some(&p.first_name);
        client.last_name = some(&p.last_name);
        client.email = some(&p.email);
        client.phone = some(&p.phone);
        client.birthday = p.birthday.map(|d| d.to_string());
        for (k, v) in &p.attributes_strings {
            client.attributes.insert(k.clone(), Value::from(v.clone()));
        }
        for (k, v) in &p.attributes_numbers {
            client.attributes.insert(k.clone(), Value::from(*v));
        }
        for (k, v) in &p.attributes_booleans {
            client.attributes.insert(k.clone(), Value::from(*v));
        }
    }
    client
}

/// The log row of a message: queued, or skipped with the reason.
pub(super) fn message_row(
    campaign: &CampaignRow,
    customer: &str,
    message: &Message,
    profile: Option<&CustomerProfileRow>,
    now: OffsetDateTime,
) -> MessageRow {
    let mut row = MessageRow {
        partner_id: campaign.partner_id,
        message_id: message.message_id,
        campaign_id: campaign.campaign_id,
        version: campaign.version,
        customer_id: customer.to_string(),
        step: message.step.clone(),
        channel: message.channel.as_str().to_string(),
        recipient: String::new(),
        subject: String::new(),
        body: String::new(),
        image_url: String::new(),
        button_text: String::new(),
        button_url: String::new(),
        status: messages::QUEUED.into(),
        attempts: 0,
        error: String::new(),
        next_attempt_at: now,
        created_at: now,
        updated_at: now,
        revision: messages::revision_after(0),
    };
    let skip = |mut row: MessageRow, why: String| {
        row.status = messages::SKIPPED.into();
        row.error = why;
        row
    };
    // A webhook's recipient is the partner's URL, set at send.
    let recipient = match eligibility::recipient(message.channel, profile) {
        Ok(recipient) => recipient,
        Err(why) => return skip(row, why.reason()),
    };
    let vars = Vars {
        client: client(customer, profile, message),
        campaign: CampaignVars {
            name: campaign.name.clone(),
        },
    };
    match template::render_message(&message.template, message.channel, &vars) {
        Ok(rendered) => {
            if let Some(why) = content::rendered_error(message.channel, &rendered) {
                return skip(row, why);
            }
            row.recipient = recipient;
            row.subject = rendered.subject.unwrap_or_default();
            row.body = rendered.body.unwrap_or_default();
            row.image_url = rendered.image_url.unwrap_or_default();
            if let Some((text, url)) = rendered.button {
                row.button_text = text;
                row.button_url = url;
            }
            row
        }
        Err(error) => skip(row, format!("template: {error}")),
    }
}

/// Messages to send, by their next attempt.
#[derive(Default)]
struct Outbox {
    due: BinaryHeap<Reverse<(i64, Uuid)>>,
    rows: HashMap<Uuid, MessageRow>,
}

impl Outbox {
    fn add(&mut self, row: MessageRow) {
        self.due
            .push(Reverse((row.next_attempt_ms(), row.message_id)));
        self.rows.insert(row.message_id, row);
    }

    fn next_ms(&self) -> Option<i64> {
        self.due.peek().map(|Reverse((at, _))| *at)
    }

    fn take_next(&mut self) -> Option<MessageRow> {
        let Reverse((_, id)) = self.due.pop()?;
        self.rows.remove(&id)
    }
}

/// A lane's delivery task: sends queued messages in order of their next attempt, retrying
/// failures with backoff; at start, picks up every message of the lane's share the log holds
/// as queued or failed.
async fn deliver(
    store: Store,
    gateways: Gateways,
    mut incoming: mpsc::UnboundedReceiver<MessageRow>,
    clock: Clock,
    shard: Shard,
) {
    let mut outbox = Outbox::default();
    loop {
        match messages::pending(&store).await {
            Ok(pending) => {
                // Another lane's (or share's) messages are its delivery's to send.
                for row in pending.into_iter().filter(|r| shard.owns(&r.customer_id)) {
                    outbox.add(row);
                }
                break;
            }
            Err(error) => {
                tracing::warn!(%error, "reading pending campaign messages failed; retrying");
                tokio::time::sleep(START_RETRY).await;
            }
        }
    }
    loop {
        tokio::select! {
            row = incoming.recv() => match row {
                Some(row) => outbox.add(row),
                None => break,
            },
            () = clock.sleep_until(outbox.next_ms()) => {
                // Also returns when a test moves the clock: only what is due then is sent.
                if outbox.next_ms().is_none_or(|at| at > clock.now_ms()) {
                    continue;
                }
                let now = clock.now_ms();
                let mut due = Vec::new();
                while due.len() < DELIVERY_BATCH && outbox.next_ms().is_some_and(|at| at <= now) {
                    match outbox.take_next() {
                        Some(row) => due.push(row),
                        None => break,
                    }
                }
                for retry in attempt_many(&store, &gateways, due, &clock).await {
                    outbox.add(retry);
                }
            }
        }
    }
}

/// Most due messages one delivery round takes; their outcomes are logged in one insert.
const DELIVERY_BATCH: usize = 256;
/// Sends in flight at once within a round: SMTP servers and gateways answer in parallel, and
/// one slow receiver does not hold the others back for long.
const DELIVERY_CONCURRENCY: usize = 16;

/// Sends `rows` (up to [`DELIVERY_CONCURRENCY`] at a time), then logs every outcome in one
/// insert: `sent`, or `failed` with the reason and the next attempt after backoff. Returns the
/// rows to try again. A sent message whose `sent` row cannot be written is not sent again by
/// this process; a restart before the write lands sends it once more under the same id (the
/// documented window). A failed one is retried whether or not its row was written.
async fn attempt_many(
    store: &Store,
    gateways: &Gateways,
    rows: Vec<MessageRow>,
    clock: &Clock,
) -> Vec<MessageRow> {
    use futures_util::StreamExt;
    if rows.is_empty() {
        return Vec::new();
    }
    let sent: Vec<(MessageRow, Result<(), String>)> = futures_util::stream::iter(rows)
        .map(|mut row| async move {
            // A webhook's URL becomes the row's recipient here.
            let result = gateways.send(&mut row).await;
            (row, result)
        })
        .buffer_unordered(DELIVERY_CONCURRENCY)
        .collect()
        .await;
    let mut logged = Vec::with_capacity(sent.len());
    let mut retries = Vec::new();
    for (row, result) in sent {
        let mut next = row.next();
        next.attempts += 1;
        match result {
            Ok(()) => {
                next.status = messages::SENT.into();
                next.error = String::new();
            }
            Err(reason) => {
                let wait = messages::backoff(next.attempts);
                next.status = messages::FAILED.into();
                next.error = reason;
                next.next_attempt_at = clock.now() + wait;
                tracing::warn!(message = %next.message_id, attempts = next.attempts, error = %next.error, "campaign message failed; retrying");
                retries.push(next.clone());
            }
        }
        logged.push(next);
    }
    if let Err(error) = messages::write_many(store, &logged).await {
        tracing::warn!(%error, messages = logged.len(), "message outcomes could not be logged; sent ones are not sent again by this process, failed ones are retried");
    }
    retries
}
