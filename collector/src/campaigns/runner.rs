//! Running campaigns inside `serve`: customer-event triggers, durable waits, and the channels
//! ([`super::gateways`]; who can receive what: [`super::eligibility`]).
//!
//! - **Hand-off.** The sink hands every commit's newly stored events (never a duplicate it
//!   skipped) to the engine task in-process, right after the commit: no polling delay.
//! - **One writer per state.** One engine task in this process advances every run, one input
//!   at a time, so reading a customer's state and writing the next version cannot interleave
//!   with another write of it. Exactly one `serve` process may run campaigns on one ClickHouse
//!   database (two would each write the same states: not supported yet).
//! - **Order of writes.** For each input: the engine runs, its messages are written to the log
//!   (`queued`) under their deterministic ids, then the state is saved (with its wake-up time),
//!   then the wake-up joins the in-memory timer. A crash between any two steps replays from the
//!   old state and produces the same message ids, which the log already holds: nothing is
//!   queued twice. Due times are read back from `campaign_runs` at start, so a wait survives a
//!   restart and one that fell due while the collector was down fires at once.
//! - **Delivery** is its own task: queued messages (and, at start, every message the log holds
//!   as queued or failed) are sent in order of their next attempt; a failure is logged with its
//!   reason and retried with backoff ([`messages::backoff`]).
//!
//! - **Schedules** ([`super::schedules`]): the engine task also scans the scheduled campaigns
//!   (every `EVENTLINE_CAMPAIGN_SCHEDULE_POLL_MS` and at each one's next due instant) and starts
//!   the day's runs. **Caps and counters** are counted from the message log before a message is
//!   queued ([`super::caps`]). **`assign_event`** stores its event through the sink
//!   ([`super::assign`]); an event a campaign assigned starts no run, it only reaches runs in
//!   progress (a wait for it, a turn-off), so campaigns cannot trigger each other forever.
//! - **Time** is the [`Clock`] given at start (the system clock; tests shift it).
//!
//! Not handled yet: events stored but not yet advanced when the process stops abruptly are not
//! replayed (a graceful stop advances them first); system-event triggers; runs of an older
//! version of a campaign (only the current version sees events); a paused campaign's due runs
//! resume at the next start.

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

use super::assign::{self, AssignError, SinkSlot};
use super::branches;
use super::caps;
use super::clock::Clock;
use super::eligibility;
use super::gateways::Gateways;
use super::messages::{self, MessageRow};
use super::runs::{self, RunKey};
use crate::customers::queries as customer_queries;
use crate::error::StorageError;
use crate::registry::{PartnerEntry, Registry};
use crate::segments;
use crate::sink::Sink;
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
    /// The engine task; it ends once every [`Committed`] sender is dropped and what they sent
    /// is advanced.
    pub engine: JoinHandle<()>,
    /// The delivery task.
    pub delivery: JoinHandle<()>,
    /// Where the engine finds the sink, for `assign_event` ([`Campaigns::attach_sink`]).
    sink: SinkSlot,
}

impl Campaigns {
    /// Lets `assign_event` steps store their events through `sink` (started after the engine,
    /// since the sink hands its commits to it). Until then, such a step fails and is retried.
    pub fn attach_sink(&self, sink: &Sink) {
        let _ = self.sink.set(sink.downgrade());
    }
}

/// Starts the engine and delivery tasks, on `clock`, scanning scheduled campaigns every
/// `schedule_poll`.
pub fn spawn(
    store: Store,
    registry: Arc<Registry>,
    gateways: Gateways,
    clock: Clock,
    schedule_poll: Duration,
) -> Campaigns {
    let (committed, events) = mpsc::unbounded_channel();
    let (to_deliver, deliveries) = mpsc::unbounded_channel();
    let sink = SinkSlot::default();
    let engine = Engine {
        store: store.clone(),
        registry,
        timer: BinaryHeap::new(),
        to_deliver,
        clock: clock.clone(),
        sink: sink.clone(),
        schedule_poll_ms: schedule_poll.as_millis().max(1) as i64,
        next_scan_ms: i64::MIN,
    };
    Campaigns {
        committed,
        engine: tokio::spawn(engine.run(events)),
        delivery: tokio::spawn(deliver(store, gateways, deliveries, clock)),
        sink,
    }
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

pub(super) struct Engine {
    pub(super) store: Store,
    pub(super) registry: Arc<Registry>,
    /// Wake-ups, earliest first. A state rewritten with another wake-up leaves its old entry
    /// here; firing it finds nothing due and changes nothing.
    timer: BinaryHeap<Reverse<(i64, RunKey)>>,
    to_deliver: mpsc::UnboundedSender<MessageRow>,
    clock: Clock,
    sink: SinkSlot,
    schedule_poll_ms: i64,
    /// When the scheduled campaigns are looked at next.
    next_scan_ms: i64,
}

impl Engine {
    async fn run(mut self, mut events: mpsc::UnboundedReceiver<Vec<EventRow>>) {
        loop {
            match runs::waiting(&self.store).await {
                Ok(waiting) => {
                    tracing::info!(runs = waiting.len(), "campaign runs waiting");
                    self.timer
                        .extend(waiting.into_iter().map(|(k, due)| Reverse((due, k))));
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "reading waiting campaign runs failed; retrying");
                    tokio::time::sleep(START_RETRY).await;
                }
            }
        }
        loop {
            let next = self.timer.peek().map(|Reverse((due, _))| *due);
            let next = next.map_or(self.next_scan_ms, |due| due.min(self.next_scan_ms));
            tokio::select! {
                batch = events.recv() => match batch {
                    Some(rows) => self.on_events(rows).await,
                    None => break,
                },
                () = self.clock.sleep_until(Some(next)) => {
                    self.on_due().await;
                    if self.clock.now_ms() >= self.next_scan_ms {
                        let now = self.clock.now_ms();
                        let next_due = self.on_schedules(now).await;
                        self.next_scan_ms = next_due.min(now + self.schedule_poll_ms);
                    }
                }
            }
        }
    }

    async fn on_events(&mut self, mut rows: Vec<EventRow>) {
        rows.retain(|r| r.kind == "customer" && !r.customer_id.is_empty());
        let assigned_path = crate::ingest::IngestPath::Campaign.as_str();
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
                        tracing::warn!(%error, partner = %row.partner_id, "reading active campaigns failed; these events start no campaign");
                        Vec::new()
                    }
                });
            }
            let event = stored_event(row);
            for campaign in &live[&row.partner_id] {
                let now = self.clock.now_ms();
                let input = if row.ingest_path == assigned_path {
                    Input::Assigned(&event)
                } else {
                    Input::Event(&event)
                };
                if let Err(error) = self
                    .advance(&entry, campaign, &row.customer_id, input, now)
                    .await
                {
                    tracing::warn!(%error, campaign = %campaign.row.campaign_id, customer = %row.customer_id, "advancing a campaign run on an event failed");
                }
            }
        }
    }

    async fn on_due(&mut self) {
        let now = self.clock.now_ms();
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
    pub(super) async fn advance(
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
            Input::Assigned(event) => {
                engine::on_assigned_event(valid, engine_key, loaded.state.clone(), event, now)
            }
            Input::Due => engine::on_due(valid, engine_key, loaded.state.clone(), now),
            Input::Schedule { day, at_ms } => {
                engine::on_schedule(valid, engine_key, loaded.state.clone(), day, at_ms, now)
            }
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
                Action::CheckSegment { check, segment_id } => {
                    let holds = match branches::saved_condition(
                        &self.store,
                        key.partner_id,
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
                } => {
                    let assigned = assign::Assigned {
                        customer,
                        event_id,
                        name: &name,
                        properties: &properties,
                        occurred_ms,
                    };
                    match assign::record(&self.sink, &self.registry, entry, assigned, now).await {
                        Ok(()) => {}
                        Err(AssignError::Storage(e)) => return Err(e),
                        // Judged like ingest and refused (a type retired since the save): the
                        // step is skipped; retrying could not change the verdict.
                        Err(error @ AssignError::Refused(_)) => {
                            tracing::warn!(campaign = %campaign_id, %step, %name, %error, "an assigned event was refused; the step is skipped");
                        }
                    }
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
            let mut row = message_row(
                &campaign.row,
                customer,
                message,
                profile.as_ref().and_then(Option::as_ref),
                self.clock.now(),
            );
            if row.status == messages::QUEUED {
                if let Some(why) = caps::refusal(
                    &self.store,
                    key.partner_id,
                    key.campaign_id,
                    customer,
                    message,
                    now,
                )
                .await?
                {
                    row.status = messages::SKIPPED.into();
                    row.error = why;
                }
            }
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

pub(super) fn live(entry: &PartnerEntry, row: CampaignRow) -> Option<Live> {
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

/// The delivery task: sends queued messages in order of their next attempt, retrying failures
/// with backoff; at start, picks up every message the log holds as queued or failed.
async fn deliver(
    store: Store,
    gateways: Gateways,
    mut incoming: mpsc::UnboundedReceiver<MessageRow>,
    clock: Clock,
) {
    let mut outbox = Outbox::default();
    loop {
        match messages::pending(&store).await {
            Ok(pending) => {
                for row in pending {
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
                if outbox.next_ms().is_none_or(|at| at > clock.now_ms()) {
                    continue;
                }
                let Some(row) = outbox.take_next() else { continue };
                if let Some(retry) = attempt(&store, &gateways, row, &clock).await {
                    outbox.add(retry);
                }
            }
        }
    }
}

/// One send; returns the row to try again (failed, or sent but not logged as sent).
async fn attempt(
    store: &Store,
    gateways: &Gateways,
    mut row: MessageRow,
    clock: &Clock,
) -> Option<MessageRow> {
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
            next.next_attempt_at = clock.now() + wait;
            tracing::warn!(message = %next.message_id, attempts = next.attempts, error = %next.error, "campaign message failed; retrying");
            if let Err(error) = messages::write(store, &next).await {
                tracing::warn!(%error, message = %next.message_id, "a failed message could not be logged; retrying anyway");
            }
            Some(next)
        }
    }
}
