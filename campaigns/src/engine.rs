//! The evaluation: a pure function of (campaign, state, input, now) to (state, actions).
//!
//! One state per (campaign version, customer), serde-serialisable so the collector can store it
//! with a single writer per customer. Inputs: an event ([`on_event`]; one a campaign assigned:
//! [`on_assigned_event`]), the clock reaching a wake-up ([`on_due`]), the answer to a segment
//! check the engine asked for ([`on_answer`]), and a scheduled day ([`on_schedule`]). The engine
//! never reads data: where a run needs a fact about the customer (audience, filters, a branch's
//! `if`), it returns [`Action::Check`] with the condition resolved against the triggering event
//! ([`Action::CheckSegment`] for a branch's saved segment), and waits for the answer. Time is the
//! `now` passed in, so tests drive a controllable clock.
//!
//! Semantics (see `docs/campaigns.md`):
//! - A customer is in at most one run of a campaign version. A trigger while a run is in
//!   progress is ignored, except that a turn-on `off` event ends the run first, and if it is
//!   also an `on` event it then starts the next run (the "purchase → purchase" pair).
//! - Times are logical: a wait ends at (the time its step was reached + its duration), not
//!   when the engine happens to look, so a late wake-up never shifts later steps.
//! - A postponing event restarts the wait in progress from the event's time.
//! - Events dated before the run's point of reference (late arrivals) neither stop, postpone
//!   nor end a wait of it; a redelivered event (same id) changes nothing.
//! - Only an `active` campaign starts runs or advances them; a paused one holds its runs.

use std::collections::BTreeMap;

use event_model::{ContextValue, EventKind};
use eventline_audience::definition::Condition;
use eventline_audience::evaluate::{passes, StoredEvent};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::definition::{Cap, Channel, ChannelCounter, Status, Step, Template, Trigger};
use crate::field_ref::{resolve, resolve_value};
use crate::message_id;
use crate::validate::Valid;

/// How many triggering event ids a state remembers, so a redelivered event starts no second
/// run.
pub const RECENT_TRIGGERS: usize = 16;

/// Whose state this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key<'a> {
    /// The campaign's id.
    pub campaign_id: &'a str,
    /// The campaign version the state belongs to.
    pub version: u64,
    /// The customer.
    pub customer_id: &'a str,
}

/// The state of one customer in one campaign version.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct State {
    /// The run in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Run>,
    /// The last [`RECENT_TRIGGERS`] triggering event ids, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_triggers: Vec<String>,
}

impl State {
    /// When [`on_due`] should next be called, if a run waits.
    pub fn next_wake_ms(&self) -> Option<i64> {
        self.run.as_ref()?.waiting.as_ref().map(|w| w.due_ms)
    }
}

/// A run in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The event that started it (`schedule:YYYY-MM-DD` for a scheduled run).
    pub trigger_event_id: String,
    /// The triggering event's context (templates, `$field_code`).
    pub context: BTreeMap<String, Value>,
    /// The point of reference: the triggering (or last postponing) event's time.
    pub reference_ms: i64,
    /// The pass (0 = first; a turn-on `repeat` adds passes).
    pub round: u32,
    /// The position: an index into each nested step list, outermost first.
    pub cursor: Vec<usize>,
    /// Which list of each enclosing step the cursor is in (one fewer than `cursor`).
    pub arms: Vec<Arm>,
    /// The logical time the step at the cursor was reached.
    pub at_ms: i64,
    /// The wait in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    /// The check asked for and not answered yet (`entry` or a branch's step path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asking: Option<String>,
}

/// A nested step list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// A branch's `then`.
    Then,
    /// A branch's `else`.
    Else,
    /// A wait's `on_timeout`.
    OnTimeout,
}

/// A wait in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// When it ends (the timeout, for a wait until an event).
    pub due_ms: i64,
    /// When it started (or was last postponed).
    pub started_ms: i64,
    /// The event that ends it early, for a wait until an event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_event: Option<String>,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// Deterministic: see [`message_id`].
    pub message_id: Uuid,
    /// The step's path (`steps[1]`, `steps[2].branch.then[0]`).
    pub step: String,
    /// The pass.
    pub round: u32,
    /// The channel.
    pub channel: Channel,
    /// The template to render.
    pub template: Template,
    /// When it is due (logical time; in the past after a catch-up).
    pub due_ms: i64,
    /// The step's own cap, checked against this step's earlier messages to the customer.
    pub cap: Option<Cap>,
    /// The campaign's counter for the channel, checked against every campaign's messages.
    pub counter: Option<ChannelCounter>,
    /// The triggering event's context, for rendering.
    pub context: BTreeMap<String, Value>,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DoneReason {
    /// Every step ran.
    Completed,
    /// A turn-on `off` event came.
    TurnedOff,
    /// A wait for an event timed out with no `on_timeout` steps.
    TimedOut,
    /// The customer is not in the audience or does not pass the filters.
    NotEligible,
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Action {
    /// Answer with [`on_answer`] whether the customer meets `condition` (a segment definition
    /// with every `$field_code` resolved).
    Check {
        /// The check's id.
        check: String,
        /// The condition.
        condition: Condition,
    },
    /// Answer with [`on_answer`] whether the customer is a member of the saved segment
    /// `segment_id` (a branch's `in_segment`), by its definition as it is now.
    CheckSegment {
        /// The check's id.
        check: String,
        /// The segment's id.
        segment_id: String,
    },
    /// Send a message (if the caps admit it), at most once per message id.
    Send(Message),
    /// Record an event of a declared type for the customer (ingest path `campaign`).
    AssignEvent {
        /// Deterministic, like a message id.
        event_id: Uuid,
        /// The step's path.
        step: String,
        /// The event name.
        name: String,
        /// Its context.
        properties: BTreeMap<String, Value>,
        /// Its time (logical).
        occurred_ms: i64,
    },
    /// Call [`on_due`] at this time.
    WakeAt {
        /// When.
        due_ms: i64,
    },
    /// The run ended.
    Done {
        /// Why.
        reason: DoneReason,
    },
}

/// An event's context as JSON (integral numbers as integers, so templates print `1500`, not
/// `1500.0`).
pub fn context_json(context: &BTreeMap<String, ContextValue>) -> BTreeMap<String, Value> {
    context
        .iter()
        .map(|(k, v)| {
            let v = match v {
                ContextValue::String(s) => Value::String(s.clone()),
                ContextValue::Bool(b) => Value::Bool(*b),
                ContextValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
                    Value::from(*n as i64)
                }
                ContextValue::Number(n) => serde_json::Number::from_f64(*n)
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
            };
            (k.clone(), v)
        })
        .collect()
}

/// The triggering event's context as an event the audience crate's [`passes`] judges (only
/// the context is read: `if_trigger` filters name no event and no source).
fn trigger_event(context: &BTreeMap<String, Value>) -> StoredEvent {
    let context = context
        .iter()
        .filter_map(|(k, v)| {
            let v = match v {
                Value::String(s) => ContextValue::String(s.clone()),
                Value::Bool(b) => ContextValue::Bool(*b),
                Value::Number(n) => ContextValue::Number(n.as_f64()?),
                _ => return None,
            };
            Some((k.clone(), v))
        })
        .collect();
    StoredEvent {
        event_id: String::new(),
        kind: EventKind::Customer,
        name: String::new(),
        source: String::new(),
        customer_id: String::new(),
        anonymous_id: String::new(),
        event_time_ms: 0,
        context,
    }
}

/// The condition a customer must meet to enter a run: the audience and the filters resolved
/// against the triggering event. For a system event, the collector selects the customers to
/// notify with it. `None` = everyone; `Err` names a `$field_code` the event lacks (nobody).
pub fn entry_condition(
    valid: &Valid,
    context: &BTreeMap<String, Value>,
) -> Option<Result<Condition, String>> {
    let def = &valid.campaign;
    let filters = def.filters.as_ref().map(|f| resolve(f, context));
    match (def.audience.clone(), filters) {
        (None, None) => None,
        (Some(a), None) => Some(Ok(a)),
        (None, Some(f)) => Some(f),
        (Some(a), Some(f)) => Some(f.map(|f| Condition::All(vec![a, f]))),
    }
}

/// An event for the customer (a system event: once per customer the fan-out selected).
pub fn on_event(
    valid: &Valid,
    key: Key<'_>,
    state: State,
    event: &StoredEvent,
    now_ms: i64,
) -> (State, Vec<Action>) {
    event_input(valid, key, state, event, now_ms, true)
}

/// An event a campaign's `assign_event` step recorded: it reaches the run in progress (ends a
/// wait for it, turns a mailing off) like any event, but starts no run, not even the next
/// mailing of an event that is both `on` and `off`; so campaigns cannot trigger each other (or
/// themselves) forever.
pub fn on_assigned_event(
    valid: &Valid,
    key: Key<'_>,
    state: State,
    event: &StoredEvent,
    now_ms: i64,
) -> (State, Vec<Action>) {
    event_input(valid, key, state, event, now_ms, false)
}

fn event_input(
    valid: &Valid,
    key: Key<'_>,
    mut state: State,
    event: &StoredEvent,
    now_ms: i64,
    may_start: bool,
) -> (State, Vec<Action>) {
    let mut actions = Vec::new();
    if valid.campaign.status != Status::Active || state.recent_triggers.contains(&event.event_id) {
        return (state, actions);
    }
    let def = &valid.campaign;
    if let Some(run) = state.run.as_mut() {
        let after_start = event.event_time_ms >= run.reference_ms;
        let turn_on = match &def.trigger {
            Trigger::TurnOn(t) => Some(t),
            _ => None,
        };
        if turn_on.is_some_and(|t| t.off.contains(&event.name)) && after_start {
            state.run = None;
            actions.push(Action::Done {
                reason: DoneReason::TurnedOff,
            });
        } else {
            let waiting = run.waiting.clone();
            match waiting {
                Some(w)
                    if w.until_event.as_deref() == Some(event.name.as_str())
                        && event.event_time_ms >= w.started_ms =>
                {
                    run.waiting = None;
                    run.at_ms = event.event_time_ms.max(run.at_ms);
                    step_past(run);
                    let finished = advance(valid, key, run, now_ms, &mut actions);
                    finish(&mut state, finished, &mut actions);
                }
                Some(w)
                    if w.until_event.is_none()
                        && event.event_time_ms >= w.started_ms
                        && turn_on.is_some_and(|t| {
                            t.postpone_on.iter().flatten().any(|n| *n == event.name)
                        }) =>
                {
                    let length = w.due_ms - w.started_ms;
                    run.reference_ms = event.event_time_ms;
                    let due_ms = event.event_time_ms + length;
                    run.waiting = Some(Waiting {
                        due_ms,
                        started_ms: event.event_time_ms,
                        until_event: None,
                    });
                    actions.push(Action::WakeAt { due_ms });
                }
                _ => {}
            }
            return (state, actions);
        }
    }
    if may_start && starts(valid, event) {
        let context = context_json(&event.context);
        start(
            valid,
            key,
            &mut state,
            &event.event_id,
            context,
            event.event_time_ms,
            event.kind == EventKind::System,
            now_ms,
            &mut actions,
        );
    }
    (state, actions)
}

/// A scheduled day: the collector found that the customer's date attribute falls on `day`
/// (see [`crate::schedule`]) and calls this at the scheduled instant `at_ms`.
pub fn on_schedule(
    valid: &Valid,
    key: Key<'_>,
    mut state: State,
    day: Date,
    at_ms: i64,
    now_ms: i64,
) -> (State, Vec<Action>) {
    let mut actions = Vec::new();
    let id = format!("schedule:{day}");
    if valid.campaign.status != Status::Active
        || !matches!(valid.campaign.trigger, Trigger::Schedule(_))
        || state.run.is_some()
        || state.recent_triggers.contains(&id)
    {
        return (state, actions);
    }
    start(
        valid,
        key,
        &mut state,
        &id,
        BTreeMap::new(),
        at_ms,
        false,
        now_ms,
        &mut actions,
    );
    (state, actions)
}

/// The clock reached (or passed) the run's wake-up.
pub fn on_due(valid: &Valid, key: Key<'_>, mut state: State, now_ms: i64) -> (State, Vec<Action>) {
    let mut actions = Vec::new();
    if valid.campaign.status != Status::Active {
        return (state, actions);
    }
    let Some(run) = state.run.as_mut() else {
        return (state, actions);
    };
    let Some(w) = run.waiting.clone().filter(|w| w.due_ms <= now_ms) else {
        return (state, actions);
    };
    run.waiting = None;
    run.at_ms = w.due_ms;
    let finished = if w.until_event.is_some() {
        timed_out(valid, key, run, now_ms, &mut actions)
    } else {
        step_past(run);
        advance(valid, key, run, now_ms, &mut actions)
    };
    finish(&mut state, finished, &mut actions);
    (state, actions)
}

/// The answer to [`Action::Check`] `check`. An answer to another check than the one asked
/// (stale, or repeated) changes nothing.
pub fn on_answer(
    valid: &Valid,
    key: Key<'_>,
    mut state: State,
    check: &str,
    holds: bool,
    now_ms: i64,
) -> (State, Vec<Action>) {
    let mut actions = Vec::new();
    if valid.campaign.status != Status::Active {
        // Held: the check stays asked; [`pending_check`] asks it again on resume.
        return (state, actions);
    }
    let Some(run) = state.run.as_mut() else {
        return (state, actions);
    };
    if run.asking.as_deref() != Some(check) {
        return (state, actions);
    }
    run.asking = None;
    let finished = if check == "entry" {
        if holds {
            advance(valid, key, run, now_ms, &mut actions)
        } else {
            Some(DoneReason::NotEligible)
        }
    } else {
        take_branch(valid, run, holds);
        advance(valid, key, run, now_ms, &mut actions)
    };
    finish(&mut state, finished, &mut actions);
    (state, actions)
}

/// The check a run waits for, asked again: after a restart that lost the answer, or when a
/// paused campaign is active again. `None` when the run asks nothing.
pub fn pending_check(valid: &Valid, state: &State) -> Option<Action> {
    let run = state.run.as_ref()?;
    let check = run.asking.clone()?;
    let condition = if check == "entry" {
        entry_condition(valid, &run.context)?.ok()?
    } else {
        let list = current_list(&valid.campaign.steps, run);
        match run.cursor.last().and_then(|i| list.get(*i)) {
            Some(Step::Branch(b)) => match (&b.condition, &b.in_segment) {
                (_, Some(segment_id)) => {
                    return Some(Action::CheckSegment {
                        check,
                        segment_id: segment_id.clone(),
                    })
                }
                (Some(condition), None) => resolve(condition, &run.context).ok()?,
                (None, None) => return None,
            },
            _ => return None,
        }
    };
    Some(Action::Check { check, condition })
}

/// Whether `event` starts a run of the campaign (its trigger's kind, name and `where`; for a
/// turn-on campaign, an `on` event). For a system event, the collector fans out to the
/// customers the filters select when this holds.
pub fn starts(valid: &Valid, event: &StoredEvent) -> bool {
    let filter_passes = || {
        valid
            .trigger_filter
            .as_ref()
            .is_none_or(|f| passes(f, event))
    };
    match &valid.campaign.trigger {
        Trigger::Event(t) => {
            event.kind == EventKind::Customer && event.name == t.name && filter_passes()
        }
        Trigger::SystemEvent(t) => {
            event.kind == EventKind::System && event.name == t.name && filter_passes()
        }
        Trigger::TurnOn(t) => event.kind == EventKind::Customer && t.on.contains(&event.name),
        Trigger::Schedule(_) => false,
    }
}

#[allow(clippy::too_many_arguments)]
fn start(
    valid: &Valid,
    key: Key<'_>,
    state: &mut State,
    trigger_event_id: &str,
    context: BTreeMap<String, Value>,
    at_ms: i64,
    selected_by_fan_out: bool,
    now_ms: i64,
    actions: &mut Vec<Action>,
) {
    state.recent_triggers.push(trigger_event_id.to_string());
    if state.recent_triggers.len() > RECENT_TRIGGERS {
        state.recent_triggers.remove(0);
    }
    let entry = if selected_by_fan_out {
        None
    } else {
        entry_condition(valid, &context)
    };
    let mut run = Run {
        trigger_event_id: trigger_event_id.to_string(),
        context,
        reference_ms: at_ms,
        round: 0,
        cursor: vec![0],
        arms: Vec::new(),
        at_ms,
        waiting: None,
        asking: None,
    };
    let finished = match entry {
        Some(Err(_missing)) => {
            actions.push(Action::Done {
                reason: DoneReason::NotEligible,
            });
            return;
        }
        Some(Ok(condition)) => {
            run.asking = Some("entry".to_string());
            actions.push(Action::Check {
                check: "entry".to_string(),
                condition,
            });
            None
        }
        None => advance(valid, key, &mut run, now_ms, actions),
    };
    state.run = Some(run);
    finish(state, finished, actions);
}

fn finish(state: &mut State, finished: Option<DoneReason>, actions: &mut Vec<Action>) {
    if let Some(reason) = finished {
        state.run = None;
        actions.push(Action::Done { reason });
    }
}

/// The list the cursor's last index points into.
fn current_list<'a>(steps: &'a [Step], run: &Run) -> &'a [Step] {
    let mut list = steps;
    for (i, arm) in run.cursor.iter().zip(&run.arms) {
        list = match (&list[*i], arm) {
            (Step::Branch(b), Arm::Then) => &b.then,
            (Step::Branch(b), Arm::Else) => &b.otherwise,
            (Step::Wait(w), Arm::OnTimeout) => w.on_timeout.as_deref().unwrap_or(&[]),
            _ => &[],
        };
    }
    list
}

/// The cursor's step path, as validation errors name steps.
fn path(steps: &[Step], run: &Run) -> String {
    let mut out = String::from("steps");
    let mut list = steps;
    for (depth, i) in run.cursor.iter().enumerate() {
        out.push_str(&format!("[{i}]"));
        if let Some(arm) = run.arms.get(depth) {
            let (kind, word, next): (&str, &str, &[Step]) = match (&list[*i], arm) {
                (Step::Branch(b), Arm::Then) => ("branch", "then", &b.then),
                (Step::Branch(b), Arm::Else) => ("branch", "else", &b.otherwise),
                (Step::Wait(w), _) => {
                    ("wait", "on_timeout", w.on_timeout.as_deref().unwrap_or(&[]))
                }
                _ => ("", "", &[]),
            };
            out.push_str(&format!(".{kind}.{word}"));
            list = next;
        }
    }
    out
}

fn step_past(run: &mut Run) {
    if let Some(last) = run.cursor.last_mut() {
        *last += 1;
    }
}

fn take_branch(valid: &Valid, run: &mut Run, holds: bool) {
    let list = current_list(&valid.campaign.steps, run);
    let Some(Step::Branch(b)) = run.cursor.last().and_then(|i| list.get(*i)) else {
        return;
    };
    let arm = if holds { Arm::Then } else { Arm::Else };
    let arm_steps = if holds { &b.then } else { &b.otherwise };
    if arm_steps.is_empty() {
        step_past(run);
    } else {
        run.arms.push(arm);
        run.cursor.push(0);
    }
}

fn timed_out(
    valid: &Valid,
    key: Key<'_>,
    run: &mut Run,
    now_ms: i64,
    actions: &mut Vec<Action>,
) -> Option<DoneReason> {
    let list = current_list(&valid.campaign.steps, run);
    let Some(Step::Wait(w)) = run.cursor.last().and_then(|i| list.get(*i)) else {
        return Some(DoneReason::TimedOut);
    };
    if w.on_timeout.as_ref().is_none_or(Vec::is_empty) {
        return Some(DoneReason::TimedOut);
    }
    run.arms.push(Arm::OnTimeout);
    run.cursor.push(0);
    advance(valid, key, run, now_ms, actions)
}

/// Runs steps from the cursor until the run waits, asks, or ends (`Some(reason)`).
fn advance(
    valid: &Valid,
    key: Key<'_>,
    run: &mut Run,
    now_ms: i64,
    actions: &mut Vec<Action>,
) -> Option<DoneReason> {
    let def = &valid.campaign;
    loop {
        let list = current_list(&def.steps, run);
        let index = *run.cursor.last()?;
        let Some(step) = list.get(index) else {
            if run.cursor.len() == 1 {
                let repeat = match &def.trigger {
                    Trigger::TurnOn(t) => t.repeat.unwrap_or(0),
                    _ => 0,
                };
                if run.round < repeat {
                    run.round += 1;
                    run.cursor = vec![0];
                    continue;
                }
                return Some(DoneReason::Completed);
            }
            run.cursor.pop();
            run.arms.pop();
            step_past(run);
            continue;
        };
        let here = path(&def.steps, run);
        let id = || {
            message_id::derive(
                key.campaign_id,
                key.version,
                key.customer_id,
                &run.trigger_event_id,
                run.round,
                &here,
            )
        };
        match step {
            Step::Send(s) => {
                actions.push(Action::Send(Message {
                    message_id: id(),
                    step: here.clone(),
                    round: run.round,
                    channel: s.channel,
                    template: s.template.clone(),
                    due_ms: run.at_ms,
                    cap: s.cap,
                    counter: def
                        .counters
                        .iter()
                        .find(|c| c.channel == s.channel)
                        .copied(),
                    context: run.context.clone(),
                }));
                step_past(run);
            }
            Step::AssignEvent(a) => {
                // A property whose `$field_code` the event lacks is left out, not guessed.
                let properties = a
                    .properties
                    .iter()
                    .filter_map(|(k, v)| {
                        resolve_value(v, &run.context).ok().map(|v| (k.clone(), v))
                    })
                    .collect();
                actions.push(Action::AssignEvent {
                    event_id: id(),
                    step: here.clone(),
                    name: a.name.clone(),
                    properties,
                    occurred_ms: run.at_ms,
                });
                step_past(run);
            }
            Step::Branch(b) if b.if_trigger.is_some() => {
                // Judged here, on the context the run started with: no query.
                let holds = valid
                    .branch_filters
                    .get(&here)
                    .is_some_and(|f| passes(f, &trigger_event(&run.context)));
                take_branch(valid, run, holds);
            }
            Step::Branch(b) if b.in_segment.is_some() => {
                run.asking = Some(here.clone());
                actions.push(Action::CheckSegment {
                    check: here,
                    segment_id: b.in_segment.clone().unwrap_or_default(),
                });
                return None;
            }
            Step::Branch(b) => match b
                .condition
                .as_ref()
                .map(|c| resolve(c, &run.context))
                .unwrap_or(Err(String::new()))
            {
                Ok(condition) => {
                    run.asking = Some(here.clone());
                    actions.push(Action::Check {
                        check: here,
                        condition,
                    });
                    return None;
                }
                // A `$field_code` the event lacks: the condition cannot hold.
                Err(_) => take_branch(valid, run, false),
            },
            Step::Wait(w) => {
                let (length, until_event) = match &w.until_event {
                    Some(name) => (w.timeout.unwrap_or_default().as_ms(), Some(name.clone())),
                    None => (w.duration().as_ms(), None),
                };
                let due_ms = run.at_ms + length;
                if due_ms <= now_ms && until_event.is_none() {
                    // Catching up (the engine was down): the wait is over already.
                    run.at_ms = due_ms;
                    step_past(run);
                    continue;
                }
                run.waiting = Some(Waiting {
                    due_ms,
                    started_ms: run.at_ms,
                    until_event,
                });
                actions.push(Action::WakeAt { due_ms });
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::shop;
    use crate::validate::validate_json;
    use serde_json::json;

    const DAY: i64 = 86_400_000;
    const HOUR: i64 = 3_600_000;
    /// 2026-11-02T00:00:00Z: day 0 of every story.
    const T0: i64 = 1_793_577_600_000;

    /// One customer in one campaign, on a clock the test moves.
    struct Story {
        valid: Valid,
        state: State,
        now: i64,
        sent: Vec<(i64, Message)>,
        assigned: Vec<Action>,
        done: Vec<DoneReason>,
        checks: Vec<Condition>,
        /// The segment ids asked about; the customer is a member of [`MEMBER_OF`] only.
        segments: Vec<String>,
        /// How checks are answered.
        answer: fn(&Condition) -> bool,
        next_event: u32,
    }

    impl Story {
        fn new(json: serde_json::Value) -> Story {
            let valid = validate_json(&json.to_string(), &shop()).expect("valid campaign");
            Story {
                valid,
                state: State::default(),
                now: T0,
                sent: Vec::new(),
                assigned: Vec::new(),
                done: Vec::new(),
                checks: Vec::new(),
                segments: Vec::new(),
                answer: |_| true,
                next_event: 0,
            }
        }

        fn key(&self) -> Key<'static> {
            Key {
                campaign_id: "camp1",
                version: 1,
                customer_id: "cust1",
            }
        }

        fn apply(&mut self, (state, actions): (State, Vec<Action>)) {
            self.state = state;
            for action in actions {
                match action {
                    Action::Send(m) => self.sent.push((self.now, m)),
                    Action::Done { reason } => self.done.push(reason),
                    Action::Check { check, condition } => {
                        let holds = (self.answer)(&condition);
                        self.checks.push(condition);
                        let key = self.key();
                        let out = on_answer(
                            &self.valid,
                            key,
                            self.state.clone(),
                            &check,
                            holds,
                            self.now,
                        );
                        self.apply(out);
                    }
                    Action::CheckSegment { check, segment_id } => {
                        let holds = segment_id == MEMBER_OF;
                        self.segments.push(segment_id);
                        let key = self.key();
                        let out = on_answer(
                            &self.valid,
                            key,
                            self.state.clone(),
                            &check,
                            holds,
                            self.now,
                        );
                        self.apply(out);
                    }
                    a @ Action::AssignEvent { .. } => self.assigned.push(a),
                    Action::WakeAt { .. } => {}
                }
            }
        }

        /// Moves the clock to `t`, firing every wake-up on the way at its own time.
        fn until(&mut self, t: i64) {
            while let Some(due) = self.state.next_wake_ms().filter(|d| *d <= t) {
                self.now = due.max(self.now);
                let out = on_due(&self.valid, self.key(), self.state.clone(), self.now);
                if out.0 == self.state && out.1.is_empty() {
                    break; // held (a paused campaign)
                }
                self.apply(out);
            }
            self.now = t.max(self.now);
        }

        fn event_with(
            &mut self,
            name: &str,
            at: i64,
            kind: EventKind,
            context: &[(&str, ContextValue)],
        ) -> String {
            self.until(at);
            self.next_event += 1;
            let event = StoredEvent {
                event_id: format!("ev{}", self.next_event),
                kind,
                name: name.to_string(),
                source: "online_store".into(),
                customer_id: "cust1".into(),
                anonymous_id: String::new(),
                event_time_ms: at,
                context: context
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            };
            let out = on_event(
                &self.valid,
                self.key(),
                self.state.clone(),
                &event,
                self.now,
            );
            self.apply(out);
            event.event_id
        }

        fn event(&mut self, name: &str, at: i64) {
            self.event_with(name, at, EventKind::Customer, &[]);
        }

        fn sent_days(&self) -> Vec<f64> {
            self.sent
                .iter()
                .map(|(at, _)| (at - T0) as f64 / DAY as f64)
                .collect()
        }
    }

    fn email(subject: &str) -> serde_json::Value {
        json!({"send": {"channel": "email", "template": {"subject": subject, "body": "Hi {{ client.first_name | default('friend') }}"}}})
    }

    fn turn_on(on: &str, off: &str, steps: serde_json::Value) -> serde_json::Value {
        json!({"name": format!("{on} until {off}"), "status": "active",
               "trigger": {"turn_on": {"on": [on], "off": [off]}}, "steps": steps})
    }

    /// Example 1 of the issue (docs/campaigns.md): registered (the point of reference), no
    /// purchase within two weeks → an invitation; still none → another message two weeks later.
    fn registered_without_a_purchase() -> serde_json::Value {
        crate::testing::docs_example(1)
    }

    #[test]
    fn example_1_no_purchase_within_two_weeks_sends_an_invitation_and_another_two_weeks_later() {
        let mut s = Story::new(registered_without_a_purchase());
        s.event("registration_completed", T0);
        s.until(T0 + 14 * DAY - 1);
        assert!(s.sent.is_empty());
        s.until(T0 + 60 * DAY);
        assert_eq!(s.sent_days(), [14.0, 28.0]);
        assert_eq!(
            (s.sent[0].1.channel, s.sent[0].1.template.subject.as_deref()),
            (Channel::Email, Some("Come and see"))
        );
        assert_eq!(s.sent[1].1.channel, Channel::Sms);
        assert_eq!(s.done, [DoneReason::Completed]);
        assert_eq!(s.state.run, None);
    }

    #[test]
    fn example_1_a_purchase_within_two_weeks_sends_nothing() {
        let mut s = Story::new(registered_without_a_purchase());
        s.event("registration_completed", T0);
        s.event("purchase_completed", T0 + 3 * DAY);
        s.until(T0 + 60 * DAY);
        assert!(s.sent.is_empty());
        assert_eq!(s.done, [DoneReason::TurnedOff]);
    }

    #[test]
    fn example_1_a_purchase_between_the_two_messages_stops_the_second() {
        let mut s = Story::new(registered_without_a_purchase());
        s.event("registration_completed", T0);
        s.event("purchase_completed", T0 + 20 * DAY);
        s.until(T0 + 60 * DAY);
        assert_eq!(s.sent_days(), [14.0]);
        assert_eq!(s.done, [DoneReason::TurnedOff]);
    }

    /// Example 2 of the issue (docs/campaigns.md): purchases postpone instead of stopping.
    fn registered_with_postponing_purchases() -> serde_json::Value {
        crate::testing::docs_example(2)
    }

    #[test]
    fn example_2_a_purchase_on_day_5_postpones_sending_for_two_weeks_from_that_purchase() {
        let mut s = Story::new(registered_with_postponing_purchases());
        s.event("registration_completed", T0);
        s.event("purchase_completed", T0 + 5 * DAY);
        s.until(T0 + 19 * DAY - 1);
        assert!(s.sent.is_empty(), "nothing on day 14: {:?}", s.sent_days());
        s.until(T0 + 40 * DAY);
        assert_eq!(s.sent_days(), [19.0]);
        assert_eq!(s.state.run, None);
    }

    #[test]
    fn example_2_without_a_purchase_it_sends_on_day_14_and_a_late_arriving_older_purchase_does_not_postpone(
    ) {
        let mut s = Story::new(registered_with_postponing_purchases());
        s.event("registration_completed", T0 + DAY);
        // A purchase made before the registration, delivered late: not a postponement.
        s.event("purchase_completed", T0 + 2 * HOUR);
        s.until(T0 + 40 * DAY);
        assert_eq!(s.sent_days(), [15.0]);
    }

    #[test]
    fn example_2_each_purchase_postpones_again_and_a_status_change_stops_the_mailing() {
        let mut s = Story::new(registered_with_postponing_purchases());
        s.event("registration_completed", T0);
        s.event("purchase_completed", T0 + 5 * DAY);
        s.event("purchase_completed", T0 + 12 * DAY);
        s.until(T0 + 26 * DAY - 1);
        assert!(
            s.sent.is_empty(),
            "nothing before day 26: {:?}",
            s.sent_days()
        );
        s.until(T0 + 40 * DAY);
        assert_eq!(s.sent_days(), [26.0]);

        let mut s = Story::new(registered_with_postponing_purchases());
        s.event("registration_completed", T0);
        s.event("customer_status_changed", T0 + 10 * DAY);
        s.until(T0 + 40 * DAY);
        assert!(s.sent.is_empty(), "{:?}", s.sent_days());
    }

    /// One on → off pair of the catalogue: the mailing goes a day after the on-event unless the
    /// off-event comes first.
    fn pair(on: &str, off: &str) {
        let def = turn_on(on, off, json!([{"wait": {"days": 1}}, email("Hello")]));
        let mut s = Story::new(def.clone());
        s.event(on, T0);
        s.until(T0 + 10 * DAY);
        assert_eq!(s.sent_days(), [1.0], "{on} → {off}: sent a day after");

        let mut s = Story::new(def);
        s.event(on, T0);
        s.event(off, T0 + 12 * HOUR);
        s.until(T0 + 10 * DAY);
        if on == off {
            // The off-event stopped the first mailing and, being an on-event too, started the next.
            assert_eq!(
                s.sent_days(),
                [1.5],
                "{on} → {off}: only from the second reference"
            );
            assert_eq!(s.done, [DoneReason::TurnedOff, DoneReason::Completed]);
        } else {
            assert!(s.sent.is_empty(), "{on} → {off}: turned off before sending");
            assert_eq!(s.done, [DoneReason::TurnedOff]);
        }
    }

    #[test]
    fn pair_completion_of_purchase_until_completion_of_purchase() {
        pair("purchase_completed", "purchase_completed");
    }

    #[test]
    fn pair_phone_attaching_until_application_form_change() {
        pair("contact_bound", "application_form_changed");
    }

    #[test]
    fn pair_completion_of_purchase_until_payment_by_bonuses() {
        pair("purchase_completed", "bonus_payment");
    }

    #[test]
    fn pair_social_network_profile_attaching_until_social_network_activity() {
        pair("social_profile_linked", "social_activity");
    }

    #[test]
    fn pair_registration_completion_until_friend_inviting() {
        pair("registration_completed", "friend_invited");
    }

    #[test]
    fn pair_install_mobile_app_until_finish_registration() {
        pair("mobile_app_installed", "registration_completed");
    }

    #[test]
    fn an_off_event_before_the_on_event_does_not_turn_the_mailing_off() {
        let mut s = Story::new(turn_on(
            "contact_bound",
            "application_form_changed",
            json!([{"wait": {"days": 1}}, email("x")]),
        ));
        s.event("application_form_changed", T0);
        s.event("contact_bound", T0 + HOUR);
        s.until(T0 + 3 * DAY);
        assert_eq!(s.sent.len(), 1);
    }

    #[test]
    fn repeat_runs_the_steps_again_until_the_off_event() {
        let mut def = turn_on(
            "registration_completed",
            "purchase_completed",
            json!([{"wait": {"days": 14}}, email("Come")]),
        );
        def["trigger"]["turn_on"]["repeat"] = json!(2);
        let mut s = Story::new(def.clone());
        s.event("registration_completed", T0);
        s.until(T0 + 100 * DAY);
        assert_eq!(s.sent_days(), [14.0, 28.0, 42.0]);
        let ids: std::collections::BTreeSet<Uuid> =
            s.sent.iter().map(|(_, m)| m.message_id).collect();
        assert_eq!(ids.len(), 3, "each pass has its own message id");
        let mut s = Story::new(def);
        s.event("registration_completed", T0);
        s.event("purchase_completed", T0 + 30 * DAY);
        s.until(T0 + 100 * DAY);
        assert_eq!(s.sent_days(), [14.0, 28.0]);
    }

    #[test]
    fn message_ids_are_deterministic_so_a_replay_after_a_crash_carries_the_same_ids() {
        let mut s = Story::new(registered_without_a_purchase());
        s.event("registration_completed", T0);
        let saved = serde_json::to_string(&s.state).unwrap();
        s.until(T0 + 60 * DAY);
        let first: Vec<Uuid> = s.sent.iter().map(|(_, m)| m.message_id).collect();
        // The process died after sending, before saving: replay from the saved state.
        let mut replay = Story::new(registered_without_a_purchase());
        replay.state = serde_json::from_str(&saved).unwrap();
        replay.until(T0 + 60 * DAY);
        let again: Vec<Uuid> = replay.sent.iter().map(|(_, m)| m.message_id).collect();
        assert_eq!(first, again);
        assert_eq!(
            first[0],
            message_id::derive("camp1", 1, "cust1", "ev1", 0, "steps[1]")
        );
        assert_ne!(first[0], first[1]);
    }

    #[test]
    fn a_redelivered_trigger_event_starts_no_second_run() {
        let mut s = Story::new(json!({"name": "Thanks", "status": "active",
            "trigger": {"event": {"name": "purchase_completed"}}, "steps": [email("Thanks")]}));
        s.event("purchase_completed", T0);
        assert_eq!(s.sent.len(), 1);
        let event = StoredEvent {
            event_id: "ev1".into(),
            kind: EventKind::Customer,
            name: "purchase_completed".into(),
            source: "online_store".into(),
            customer_id: "cust1".into(),
            anonymous_id: String::new(),
            event_time_ms: T0,
            context: BTreeMap::new(),
        };
        let (_, actions) = on_event(&s.valid, s.key(), s.state.clone(), &event, T0 + HOUR);
        assert!(actions.is_empty());
    }

    #[test]
    fn an_event_trigger_judges_its_where_on_the_events_context() {
        let mut s = Story::new(json!({"name": "Big spender", "status": "active",
            "trigger": {"event": {"name": "purchase_completed", "where": [{"key": "total_price", "op": "gte", "value": 1000}]}},
            "steps": [{"send": {"channel": "sms", "template": {"body": "Thanks for {{ client.eventContext.total_price }}"}}}]}));
        s.event_with(
            "purchase_completed",
            T0,
            EventKind::Customer,
            &[("total_price", ContextValue::Number(999.0))],
        );
        assert!(s.sent.is_empty());
        s.event_with(
            "purchase_completed",
            T0 + HOUR,
            EventKind::Customer,
            &[("total_price", ContextValue::Number(1500.0))],
        );
        assert_eq!(s.sent.len(), 1);
        assert_eq!(s.sent[0].1.context["total_price"], json!(1500));
    }

    #[test]
    fn a_system_event_runs_for_the_customer_the_fan_out_selected_with_its_context() {
        let valid = validate_json(&crate::testing::docs_example(0).to_string(), &shop()).unwrap();
        let ctx = BTreeMap::from([("product".to_string(), json!("Boots"))]);
        // The collector selects the interested customers with the resolved filters.
        let entry = entry_condition(&valid, &ctx).unwrap().unwrap();
        let entry = serde_json::to_value(entry).unwrap();
        assert_eq!(entry["event"]["where"][0]["value"], "Boots");
        let mut s = Story::new(crate::testing::docs_example(0));
        s.event_with(
            "back_in_stock",
            T0,
            EventKind::System,
            &[("product", ContextValue::String("Boots".into()))],
        );
        assert!(
            s.checks.is_empty(),
            "no second check: the fan-out selected the customer"
        );
        assert_eq!(s.sent.len(), 1);
        assert_eq!(s.sent[0].1.context["product"], json!("Boots"));
    }

    #[test]
    fn the_audience_is_checked_on_entry_and_a_customer_outside_gets_nothing() {
        let mut def = registered_without_a_purchase();
        def["audience"] =
            json!({"profile": {"field": "consents.email", "op": "eq", "value": true}});
        let mut s = Story::new(def);
        s.answer = |_| false;
        s.event("registration_completed", T0);
        s.until(T0 + 60 * DAY);
        assert_eq!(s.checks.len(), 1);
        assert!(s.sent.is_empty());
        assert_eq!(s.done, [DoneReason::NotEligible]);
    }

    fn abandoned_cart() -> serde_json::Value {
        json!({"name": "Cart", "status": "active",
        "trigger": {"event": {"name": "added_to_cart"}},
        "steps": [
            {"wait": {"until_event": "purchase_completed", "timeout": {"minutes": 1},
                      "on_timeout": [{"send": {"channel": "email", "template": {
                          "subject": "Forgot {{ client.eventContext.product }}?", "body": "b"}}}]}},
            {"assign_event": {"name": "purchase_completed", "properties": {"cart_content": "$product", "total_price": 1}}}
        ]})
    }

    #[test]
    fn a_wait_for_an_event_times_out_into_its_on_timeout_steps() {
        let mut s = Story::new(abandoned_cart());
        s.event_with(
            "added_to_cart",
            T0,
            EventKind::Customer,
            &[("product", ContextValue::String("Bag".into()))],
        );
        s.until(T0 + 60_000 - 1);
        assert!(s.sent.is_empty());
        s.until(T0 + 2 * 60_000);
        assert_eq!(s.sent.len(), 1);
        assert_eq!(s.sent[0].0, T0 + 60_000);
        assert_eq!(s.sent[0].1.step, "steps[0].wait.on_timeout[0]");
        // After the on_timeout steps the run goes on after the wait.
        assert_eq!(s.assigned.len(), 1);
        assert_eq!(s.done, [DoneReason::Completed]);
    }

    #[test]
    fn a_wait_for_an_event_ends_early_when_it_comes_and_assigns_with_field_values() {
        let mut s = Story::new(abandoned_cart());
        s.event_with(
            "added_to_cart",
            T0,
            EventKind::Customer,
            &[("product", ContextValue::String("Bag".into()))],
        );
        s.event("purchase_completed", T0 + 30_000);
        s.until(T0 + DAY);
        assert!(s.sent.is_empty());
        let Action::AssignEvent {
            name,
            properties,
            occurred_ms,
            ..
        } = &s.assigned[0]
        else {
            panic!()
        };
        assert_eq!(name, "purchase_completed");
        assert_eq!(properties["cart_content"], json!("Bag"));
        assert_eq!(*occurred_ms, T0 + 30_000);
    }

    #[test]
    fn a_branch_asks_its_condition_with_field_codes_resolved_and_follows_the_answer() {
        let def = json!({"name": "Viewed", "status": "active",
            "trigger": {"event": {"name": "added_to_cart"}},
            "steps": [{"branch": {
                "if": {"event": {"name": "product_viewed", "where": [{"key": "product", "op": "eq", "value": "$product"}]}},
                "then": [{"send": {"channel": "sms", "template": {"body": "then"}}}],
                "else": [{"send": {"channel": "sms", "template": {"body": "else"}}}]}},
                {"send": {"channel": "push", "template": {"body": "after"}}}]});
        for (holds, first) in [(true, "then"), (false, "else")] {
            let mut s = Story::new(def.clone());
            s.answer = if holds { |_| true } else { |_| false };
            s.event_with(
                "added_to_cart",
                T0,
                EventKind::Customer,
                &[("product", ContextValue::String("Bag".into()))],
            );
            let asked = serde_json::to_value(&s.checks[0]).unwrap();
            assert_eq!(asked["event"]["where"][0]["value"], "Bag");
            let bodies: Vec<&str> = s
                .sent
                .iter()
                .map(|(_, m)| m.template.body.as_deref().unwrap())
                .collect();
            assert_eq!(bodies, [first, "after"]);
            assert_eq!(
                s.sent[0].1.step,
                format!("steps[0].branch.{}[0]", if holds { "then" } else { "else" })
            );
        }
    }

    #[test]
    fn an_assigned_event_turns_a_mailing_off_but_starts_none() {
        let mut s = Story::new(turn_on(
            "purchase_completed",
            "purchase_completed",
            json!([{"wait": {"days": 1}}, {"send": {"channel": "sms", "template": {"body": "x"}}}]),
        ));
        let assigned = |id: &str, at: i64| StoredEvent {
            event_id: id.into(),
            kind: EventKind::Customer,
            name: "purchase_completed".into(),
            source: "system".into(),
            customer_id: "cust1".into(),
            anonymous_id: String::new(),
            event_time_ms: at,
            context: BTreeMap::new(),
        };
        // No run: an assigned `on` event starts none.
        let (state, actions) =
            on_assigned_event(&s.valid, s.key(), State::default(), &assigned("a1", T0), T0);
        assert_eq!((state, actions), (State::default(), vec![]));
        // A run: the assigned event (both `on` and `off`) ends it and starts no next one.
        s.event("purchase_completed", T0);
        assert!(s.state.run.is_some());
        let (state, actions) = on_assigned_event(
            &s.valid,
            s.key(),
            s.state.clone(),
            &assigned("a2", T0 + HOUR),
            T0 + HOUR,
        );
        assert_eq!(state.run, None);
        assert_eq!(
            actions,
            [Action::Done {
                reason: DoneReason::TurnedOff
            }]
        );
    }

    const MEMBER_OF: &str = "5a4b7c1e-0d2f-4e6a-9b3c-8d7e6f5a4b3c";

    #[test]
    fn a_branch_on_a_saved_segment_asks_for_membership_and_follows_the_answer() {
        for (segment, first) in [(MEMBER_OF, "then"), (T0_SEGMENT_OTHER, "else")] {
            let def = json!({"name": "VIP", "status": "active",
                "trigger": {"event": {"name": "added_to_cart"}},
                "steps": [{"branch": {"in_segment": segment,
                    "then": [{"send": {"channel": "sms", "template": {"body": "then"}}}],
                    "else": [{"send": {"channel": "sms", "template": {"body": "else"}}}]}}]});
            let mut s = Story::new(def);
            s.event("added_to_cart", T0);
            assert_eq!(s.segments, [segment]);
            assert!(s.checks.is_empty(), "no inline condition asked");
            assert_eq!(s.sent[0].1.template.body.as_deref(), Some(first));
            assert_eq!(s.done, [DoneReason::Completed]);
        }
        // A lost answer is asked again as the same segment check.
        let def = json!({"name": "VIP", "status": "active",
            "trigger": {"event": {"name": "added_to_cart"}},
            "steps": [{"branch": {"in_segment": MEMBER_OF,
                "then": [{"send": {"channel": "sms", "template": {"body": "then"}}}]}}]});
        let valid = validate_json(&def.to_string(), &shop()).unwrap();
        let key = Key {
            campaign_id: "c",
            version: 1,
            customer_id: "u",
        };
        let event = StoredEvent {
            event_id: "e1".into(),
            kind: EventKind::Customer,
            name: "added_to_cart".into(),
            source: "s".into(),
            customer_id: "u".into(),
            anonymous_id: String::new(),
            event_time_ms: T0,
            context: BTreeMap::new(),
        };
        let (state, _) = on_event(&valid, key, State::default(), &event, T0);
        assert_eq!(
            pending_check(&valid, &state),
            Some(Action::CheckSegment {
                check: "steps[0]".into(),
                segment_id: MEMBER_OF.into()
            })
        );
    }

    #[test]
    fn a_branch_on_the_triggering_events_values_is_judged_without_a_query() {
        let def = json!({"name": "Big cart", "status": "active",
            "trigger": {"event": {"name": "added_to_cart"}},
            "steps": [{"wait": {"hours": 1}},
                {"branch": {"if_trigger": [{"key": "size", "op": "in", "value": ["XL", "XXL"]}],
                "then": [{"send": {"channel": "sms", "template": {"body": "big"}}}],
                "else": [{"send": {"channel": "sms", "template": {"body": "small"}}}]}}]});
        for (size, body) in [("XL", "big"), ("S", "small")] {
            let mut s = Story::new(def.clone());
            s.event_with(
                "added_to_cart",
                T0,
                EventKind::Customer,
                &[("size", ContextValue::String(size.into()))],
            );
            s.until(T0 + HOUR);
            assert!(
                s.checks.is_empty() && s.segments.is_empty(),
                "nothing asked"
            );
            assert_eq!(s.sent[0].1.template.body.as_deref(), Some(body), "{size}");
            assert_eq!(s.done, [DoneReason::Completed]);
        }
        // A field the trigger does not carry, or a `$field_code`, is refused on save.
        let bad = def
            .to_string()
            .replace("\"key\":\"size\"", "\"key\":\"colour\"");
        let errors = validate_json(&bad, &shop()).unwrap_err();
        assert_eq!(
            (errors[0].code.as_str(), errors[0].path.as_str()),
            ("unknown_field", "steps[1].branch.if_trigger[0].key")
        );
        let bad = def.to_string().replace("[\"XL\",\"XXL\"]", "\"$product\"");
        assert_ne!(bad, def.to_string());
        let errors = validate_json(&bad, &shop()).unwrap_err();
        assert_eq!(
            (errors[0].code.as_str(), errors[0].path.as_str()),
            ("invalid_value", "steps[1].branch.if_trigger[0].value")
        );
    }

    const T0_SEGMENT_OTHER: &str = "0e1d2c3b-4a59-4687-9a8b-7c6d5e4f3a2b";

    #[test]
    fn a_branch_takes_if_or_in_segment_and_the_segment_is_a_uuid() {
        let with = |branch: serde_json::Value| {
            let def = json!({"name": "B", "status": "active",
                "trigger": {"event": {"name": "added_to_cart"}},
                "steps": [{"branch": branch}]});
            validate_json(&def.to_string(), &shop()).err().map(|e| {
                e.iter()
                    .map(|e| (e.code.as_str(), e.path.clone()))
                    .collect::<Vec<_>>()
            })
        };
        let then = json!([{"send": {"channel": "sms", "template": {"body": "x"}}}]);
        assert_eq!(
            with(json!({"in_segment": "vip", "then": then})),
            Some(vec![(
                "unknown_segment",
                "steps[0].branch.in_segment".into()
            )])
        );
        assert_eq!(
            with(json!({"then": then})),
            Some(vec![("empty", "steps[0].branch".into())])
        );
        assert_eq!(
            with(
                json!({"in_segment": MEMBER_OF, "if": {"profile": {"field": "email", "op": "exists"}}, "then": then})
            ),
            Some(vec![("invalid_value", "steps[0].branch".into())])
        );
        assert_eq!(with(json!({"in_segment": MEMBER_OF, "then": then})), None);
    }

    #[test]
    fn a_paused_campaign_starts_nothing_and_holds_its_runs() {
        let mut s = Story::new(registered_without_a_purchase());
        s.event("registration_completed", T0);
        s.valid.campaign.status = Status::Paused;
        s.until(T0 + 20 * DAY);
        assert!(s.sent.is_empty());
        s.valid.campaign.status = Status::Active;
        s.until(T0 + 21 * DAY);
        // Resumed: the overdue invitation goes at once (day 20, when the clock next looked), due
        // since day 14; the next wait counts from its due time, not from the resume.
        assert_eq!(s.sent_days(), [20.0]);
        assert_eq!(s.sent[0].1.due_ms, T0 + 14 * DAY);
        assert_eq!(s.state.next_wake_ms(), Some(T0 + 28 * DAY));
    }

    #[test]
    fn a_lost_answer_is_asked_again_and_a_paused_campaign_holds_its_check() {
        let mut def = registered_without_a_purchase();
        def["audience"] =
            json!({"profile": {"field": "consents.email", "op": "eq", "value": true}});
        let valid = validate_json(&def.to_string(), &shop()).unwrap();
        let key = Key {
            campaign_id: "camp1",
            version: 1,
            customer_id: "cust1",
        };
        let event = StoredEvent {
            event_id: "ev1".into(),
            kind: EventKind::Customer,
            name: "registration_completed".into(),
            source: "online_store".into(),
            customer_id: "cust1".into(),
            anonymous_id: String::new(),
            event_time_ms: T0,
            context: BTreeMap::new(),
        };
        let (state, actions) = on_event(&valid, key, State::default(), &event, T0);
        let asked = actions[0].clone();
        assert!(matches!(&asked, Action::Check { check, .. } if check == "entry"));
        // The answer was lost in a crash: the saved state asks the same again.
        assert_eq!(pending_check(&valid, &state), Some(asked));
        let mut paused = valid.clone();
        paused.campaign.status = Status::Paused;
        let (held, actions) = on_answer(&paused, key, state.clone(), "entry", true, T0);
        assert_eq!((held.clone(), actions), (state, vec![]));
        let (state, _) = on_answer(&valid, key, held, "entry", true, T0);
        assert_eq!(pending_check(&valid, &state), None);
        assert_eq!(state.next_wake_ms(), Some(T0 + 14 * DAY));
    }

    #[test]
    fn a_scheduled_birthday_run_starts_once_per_day() {
        let mut s = Story::new(json!({"name": "Birthday", "status": "active",
            "trigger": {"schedule": {"date_attribute": "birthday", "at": "10:00"}},
            "steps": [{"send": {"channel": "sms", "template": {"body": "Happy birthday, {{ client.first_name | default('friend') }}"}}}]}));
        let day: Date = "2026-11-02".parse().unwrap();
        let out = on_schedule(
            &s.valid,
            s.key(),
            s.state.clone(),
            day,
            T0 + 10 * HOUR,
            T0 + 10 * HOUR,
        );
        s.apply(out);
        let out = on_schedule(
            &s.valid,
            s.key(),
            s.state.clone(),
            day,
            T0 + 10 * HOUR,
            T0 + 11 * HOUR,
        );
        s.apply(out);
        assert_eq!(s.sent.len(), 1);
        assert_eq!(s.sent[0].1.due_ms, T0 + 10 * HOUR);
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut s = Story::new(abandoned_cart());
        s.event_with(
            "added_to_cart",
            T0,
            EventKind::Customer,
            &[("product", ContextValue::String("Bag".into()))],
        );
        let json = serde_json::to_string(&s.state).unwrap();
        let back: State = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s.state);
        assert!(back.run.unwrap().waiting.unwrap().until_event.is_some());
    }
}
