//! Running campaigns: customer-event triggers, durable waits, and the channels
//! ([`super::gateways`]; who can receive what: [`super::eligibility`]). The engine runs inside
//! `serve` (the default) or as its own process, `eventline-collector campaigns`
//! ([`super::standalone`]).
//!
//! - **Inputs.** Inside `serve`, the sink hands every commit's newly stored events (never a
//!   duplicate it skipped) to the engine task in-process, right after the commit: no polling
//!   delay. Every engine also reads `events` from ClickHouse by `received_at` ([`Tail`]): from
//!   its durable checkpoint minus an overlap at start (so events stored but not advanced when
//!   a process was killed are advanced then), then a round every
//!   `EVENTLINE_CAMPAIGN_POLL_MS` (the only input of a separate engine process; inside `serve`
//!   it catches what other collectors stored, and what the hand-off failed to advance). An
//!   event is advanced once per process; a replay after a restart is harmless (below).
//! - **One writer per state.** Each engine process owns a fixed share `k/N` of the customers
//!   ([`Shard`], `EVENTLINE_CAMPAIGN_SHARD`; `serve` with campaigns is `0/1` unless told
//!   otherwise) and advances, wakes and delivers only their runs and messages. Within a
//!   process the share is split in lanes (`EVENTLINE_CAMPAIGN_LANES`; lane `j` of `k/N` is
//!   the share `(k + j·N)/(N·lanes)`, with its own checkpoint), and one engine task per lane
//!   advances its runs one input at a time, so reading a customer's state and writing the
//!   next version cannot interleave with another write of it. Run one process per share, all
//!   with the same `N`: two processes on one share (or a `serve` with campaigns beside
//!   `campaigns` processes) would each write the same states.
//! - **Order of writes.** For each input: the engine runs, its messages are written to the log
//!   (`queued`) under their deterministic ids, then the state is saved (with its wake-up time),
//!   then the wake-up joins the in-memory timer. A crash between any two steps replays from the
//!   old state and produces the same message ids, which the log already holds: nothing is
//!   queued twice. A replayed triggering event that the state remembers (the last
//!   `RECENT_TRIGGERS`) starts no second run. Due times are read back from `campaign_runs` at
//!   start, so a wait survives a restart and one that fell due while the engine was down
//!   fires at once.
//! - **Delivery** is its own task: queued messages (and, at start, every message of the share
//!   the log holds as queued or failed) are sent in order of their next attempt; a failure is
//!   logged with its reason and retried with backoff ([`messages::backoff`]).
//!
//! Windows: an event that becomes visible in ClickHouse more than the overlap
//! (`EVENTLINE_CAMPAIGN_TAIL_OVERLAP_MS`) minus [`super::tail::FULL_EVERY`] after its
//! `received_at`, while no hand-off gives it to this process, may never be read; a customer who triggers more than `RECENT_TRIGGERS` runs of
//! one campaign version within the replayed span can have an older run started again after a
//! restart: its messages carry the ids the log holds, so nothing is sent twice, but until it
//! ends a new trigger of that customer is ignored. Not handled yet: system-event triggers, schedules,
//! caps and counters, `assign_event`; runs of an older version of a campaign (only the current
//! version sees events); a paused campaign's due runs resume at the next start.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use event_model::{ContextValue, EventKind};
use eventline_audience::compile;
use eventline_audience::evaluate::StoredEvent;
use eventline_campaigns::content;
use eventline_campaigns::definition::Status;
use eventline_campaigns::engine::{self, Action, Key, Message};
use eventline_campaigns::template::{self, CampaignVars, Client, Vars};
use eventline_campaigns::{validate_json, Valid};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::eligibility;
use super::gateways::Gateways;
use super::messages::{self, MessageRow};
use super::runs::{self, RunKey};
use super::shard::Shard;
use super::standalone::Senders;
use super::tail::{Tail, TailSettings};
use crate::customers::queries as customer_queries;
use crate::error::StorageError;
use crate::registry::{PartnerEntry, Registry};
use crate::segments;
use crate::store::rows::{CampaignRow, CustomerProfileRow, EventRow};
use crate::store::Store;

/// The sink's side of the hand-off: each commit's newly stored events.
pub type Committed = mpsc::UnboundedSender<Vec<EventRow>>;

/// How long a failed read at start-up (due runs, pending messages) waits before trying again.
const START_RETRY: Duration = Duration::from_secs(1);
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
}

/// Starts the engines and deliveries of this process's share `tail.shard` of the customers,
/// in `lanes` lanes: lane `j` of share `k/N` is the share `(k + j·N)/(N·lanes)` (exactly the
/// customers of `k/N` whose hash falls there), with an engine task, a delivery task and a
/// checkpoint of its own, so the lanes advance runs in parallel and each customer's state
/// still has one writer. Each engine reads its inputs from `events` ([`Tail`]) and from
/// [`Campaigns::committed`] (routed to the lane by customer); without a hand-off (its own
/// process), holding `committed` keeps them running and dropping it stops them.
pub fn spawn(
    store: Store,
    registry: Arc<Registry>,
    senders: &Senders,
    tail: TailSettings,
    lanes: u32,
) -> Result<Campaigns, String> {
    let shards = tail.shard.lanes(lanes)?;
    let (committed, mut incoming) = mpsc::unbounded_channel::<Vec<EventRow>>();
    let mut engines = tokio::task::JoinSet::new();
    let mut deliveries = tokio::task::JoinSet::new();
    let mut routes = Vec::new();
    for shard in &shards {
        let (events, lane_events) = mpsc::unbounded_channel();
        let (to_deliver, to_send) = mpsc::unbounded_channel();
        let engine = Engine {
            store: store.clone(),
            registry: registry.clone(),
            timer: BinaryHeap::new(),
            to_deliver,
            tail: TailSettings {
                shard: *shard,
                ..tail
            },
        };
        engines.spawn(engine.run(lane_events));
        deliveries.spawn(deliver(
            store.clone(),
            senders.clone().gateways(store.clone()),
            to_send,
            *shard,
        ));
        routes.push((*shard, events));
    }
    // The router hands each lane its customers' events (system events to every lane); it ends
    // with the hand-off, and its end (dropping the lanes' senders) ends the engines.
    engines.spawn(async move {
        while let Some(rows) = incoming.recv().await {
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

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

async fn sleep_until_ms(due: Option<i64>) {
    match due {
        Some(due) => {
            let left = (due - now_ms()).max(0) as u64;
            tokio::time::sleep(Duration::from_millis(left)).await;
        }
        None => std::future::pending().await,
    }
}

/// A campaign version ready to run.
struct Live {
    row: CampaignRow,
    valid: Valid,
}

/// What moves a run.
enum Input<'a> {
    Event(&'a StoredEvent),
    Due,
}

struct Engine {
    store: Store,
    registry: Arc<Registry>,
    /// Wake-ups, earliest first. A state rewritten with another wake-up leaves its old entry
    /// here; firing it finds nothing due and changes nothing.
    timer: BinaryHeap<Reverse<(i64, RunKey)>>,
    to_deliver: mpsc::UnboundedSender<MessageRow>,
    /// Where inputs are read from, and this process's share of the customers.
    tail: TailSettings,
}

impl Engine {
    fn shard(&self) -> Shard {
        self.tail.shard
    }

    async fn run(mut self, mut events: mpsc::UnboundedReceiver<Vec<EventRow>>) {
        loop {
            match runs::waiting(&self.store).await {
                Ok(waiting) => {
                    let shard = self.shard();
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
        let mut tail = loop {
            match Tail::open(self.store.clone(), self.tail, now_ms()).await {
                Ok(tail) => break tail,
                Err(error) => {
                    tracing::warn!(%error, "reading the campaign checkpoint failed; retrying");
                    tokio::time::sleep(START_RETRY).await;
                }
            }
        };
        // The first round at once: it replays what was stored but not advanced before.
        let mut next_round = tokio::time::Instant::now();
        loop {
            let next = self.timer.peek().map(|Reverse((due, _))| *due);
            tokio::select! {
                batch = events.recv() => match batch {
                    Some(rows) => {
                        let keys = Tail::keys(&rows);
                        // What failed is read again by the tail.
                        if self.on_events(rows).await {
                            tail.handed(keys);
                        }
                    }
                    None => break,
                },
                () = sleep_until_ms(next) => self.on_due().await,
                () = tokio::time::sleep_until(next_round) => {
                    next_round = self.on_tail(&mut tail).await;
                }
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

    /// Advances every run `rows` move; `false` when a storage failure left some not advanced.
    async fn on_events(&mut self, mut rows: Vec<EventRow>) -> bool {
        let mut ok = true;
        let shard = self.shard();
        rows.retain(|r| {
            r.kind == "customer" && !r.customer_id.is_empty() && shard.owns(&r.customer_id)
        });
        // A customer's events in time order (within what one commit holds).
        rows.sort_by_key(|r| (r.partner_id, ms(r.event_time)));
        let mut live: HashMap<Uuid, Vec<Live>> = HashMap::new();
        for row in &rows {
            let Ok(entry) = self.registry.partner(&row.partner_id) else {
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = live.entry(row.partner_id) {
                slot.insert(match active_campaigns(&self.store, &entry).await {
                    Ok(found) => found,
                    Err(error) => {
                        tracing::warn!(%error, partner = %row.partner_id, "reading active campaigns failed; these events are tried again");
                        ok = false;
                        Vec::new()
                    }
                });
            }
            let event = stored_event(row);
            for campaign in &live[&row.partner_id] {
                let now = now_ms();
                if let Err(error) = self
                    .advance(
                        &entry,
                        campaign,
                        &row.customer_id,
                        Input::Event(&event),
                        now,
                    )
                    .await
                {
                    tracing::warn!(%error, campaign = %campaign.row.campaign_id, customer = %row.customer_id, "advancing a campaign run on an event failed; tried again");
                    ok = false;
                }
            }
        }
        ok
    }

    async fn on_due(&mut self) {
        let now = now_ms();
        while let Some(Reverse((due, _))) = self.timer.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((due, key))) = self.timer.pop() else {
                break;
            };
            // The timer fired at `due`: the engine sees it reached even if the wall clock
            // lags the monotonic one by a few milliseconds.
            if let Err(error) = self.fire(&key, now.max(due)).await {
                tracing::warn!(%error, ?key, "a campaign wake-up failed; retrying");
                self.timer.push(Reverse((now + DUE_RETRY_MS, key)));
            }
        }
    }

    async fn fire(&mut self, key: &RunKey, now: i64) -> Result<(), StorageError> {
        let Ok(entry) = self.registry.partner(&key.partner_id) else {
            return Ok(());
        };
        let current = match super::get(&self.store, key.partner_id, key.campaign_id).await {
            Ok(row) => row,
            Err(super::CampaignError::Storage(e)) => return Err(e),
            // Deleted: nothing runs a deleted campaign.
            Err(_) => return Ok(()),
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
            return Ok(());
        }
        let customer = key.customer_id.clone();
        self.advance(&entry, &live, &customer, Input::Due, now)
            .await
    }

    /// One input for one customer's run: engine, checks, message log, state, timer.
    async fn advance(
        &mut self,
        entry: &PartnerEntry,
        campaign: &Live,
        customer: &str,
        input: Input<'_>,
        now: i64,
    ) -> Result<(), StorageError> {
        let key = RunKey {
            partner_id: campaign.row.partner_id,
            campaign_id: campaign.row.campaign_id,
            version: campaign.row.version,
            customer_id: customer.to_string(),
        };
        let campaign_id = campaign.row.campaign_id.to_string();
        let engine_key = Key {
            campaign_id: &campaign_id,
            version: u64::from(campaign.row.version),
            customer_id: customer,
        };
        let valid = &campaign.valid;
        let loaded = runs::load(&self.store, &key).await?;
        let (mut state, actions) = match input {
            Input::Event(event) => {
                engine::on_event(valid, engine_key, loaded.state.clone(), event, now)
            }
            Input::Due => engine::on_due(valid, engine_key, loaded.state.clone(), now),
        };
        let mut actions: VecDeque<Action> = actions.into();
        let mut sends = Vec::new();
        while let Some(action) = actions.pop_front() {
            match action {
                Action::Check { check, condition } => {
                    let holds = self.check(entry, customer, &condition, now).await?;
                    let (next, more) =
                        engine::on_answer(valid, engine_key, state, &check, holds, now);
                    state = next;
                    actions.extend(more);
                }
                Action::Send(message) => sends.push(message),
                Action::AssignEvent { name, step, .. } => {
                    tracing::warn!(campaign = %campaign_id, %step, %name, "assign_event is not run in this version; skipped");
                }
                Action::WakeAt { .. } | Action::Done { .. } => {}
            }
        }
        if state == loaded.state {
            return Ok(());
        }
        let mut profile: Option<Option<CustomerProfileRow>> = None;
        for message in &sends {
            if profile.is_none() {
                profile =
                    Some(customer_queries::profile(&self.store, key.partner_id, customer).await?);
            }
            let row = message_row(
                &campaign.row,
                customer,
                message,
                profile.as_ref().and_then(Option::as_ref),
            );
            if messages::queue(&self.store, &row).await? && row.status == messages::QUEUED {
                let _ = self.to_deliver.send(row);
            }
        }
        runs::save(&self.store, &key, &state, loaded.revision).await?;
        if let Some(due) = state.next_wake_ms() {
            self.timer.push(Reverse((due, key)));
        }
        Ok(())
    }

    /// Whether the customer meets `condition`, asked of ClickHouse with the audience
    /// compiler's SQL narrowed to the one customer. A condition the partner's catalogue no
    /// longer admits cannot hold.
    async fn check(
        &self,
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
        let mut q = self
            .store
            .client()
            .query(&sql)
            .param("partner", entry.partner.partner_id.to_string())
            .param("campaign_customer", customer);
        for p in &query.params {
            q = q.param(&p.name, &p.value);
        }
        let found: u64 = self.store.timed(q.fetch_one()).await?;
        Ok(found > 0)
    }
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

fn live(entry: &PartnerEntry, row: CampaignRow) -> Option<Live> {
    match validate_json(&row.definition, &segments::catalogue(entry)) {
        Ok(valid) => Some(Live { row, valid }),
        Err(errors) => {
            tracing::warn!(campaign = %row.campaign_id, version = row.version, ?errors, "a saved campaign no longer fits the catalogue; not run");
            None
        }
    }
}

/// A stored event as the engine reads it.
fn stored_event(row: &EventRow) -> StoredEvent {
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
fn message_row(
    campaign: &CampaignRow,
    customer: &str,
    message: &Message,
    profile: Option<&CustomerProfileRow>,
) -> MessageRow {
    let now = OffsetDateTime::now_utc();
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

/// The delivery task: sends queued messages in order of their next attempt, retrying failures
/// with backoff; at start, picks up every message the log holds as queued or failed.
async fn deliver(
    store: Store,
    gateways: Gateways,
    mut incoming: mpsc::UnboundedReceiver<MessageRow>,
    shard: Shard,
) {
    let mut outbox = Outbox::default();
    loop {
        match messages::pending(&store).await {
            Ok(pending) => {
                // Another share's messages are its delivery's to send.
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
            () = sleep_until_ms(outbox.next_ms()) => {
                let Some(row) = outbox.take_next() else { continue };
                if let Some(retry) = attempt(&store, &gateways, row).await {
                    outbox.add(retry);
                }
            }
        }
    }
}

/// One send; returns the row to try again (failed, or sent but not logged as sent).
async fn attempt(store: &Store, gateways: &Gateways, mut row: MessageRow) -> Option<MessageRow> {
    // A webhook's URL becomes the row's recipient here.
    let result = gateways.send(&mut row).await;
    let mut next = row.next();
    next.attempts += 1;
    match result {
        Ok(()) => {
            next.status = messages::SENT.into();
            next.error = String::new();
            if let Err(error) = messages::write(store, &next).await {
                // Sent: not sent again by this process. A restart before the write lands
                // sends it once more under the same Message-ID (the documented window).
                tracing::warn!(%error, message = %next.message_id, "a sent message could not be logged as sent");
            }
            None
        }
        Err(reason) => {
            let wait = messages::backoff(next.attempts);
            next.status = messages::FAILED.into();
            next.error = reason;
            next.next_attempt_at = next.updated_at + wait;
            tracing::warn!(message = %next.message_id, attempts = next.attempts, error = %next.error, "campaign message failed; retrying");
            if let Err(error) = messages::write(store, &next).await {
                tracing::warn!(%error, message = %next.message_id, "a failed message could not be logged; retrying anyway");
            }
            Some(next)
        }
    }
}
