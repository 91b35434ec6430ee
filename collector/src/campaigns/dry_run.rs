//! A dry run: what a campaign (active, paused or a draft, run as if active) would send one
//! customer, now, for a real stored event, without writing anything. `POST /v1/admin/partners/{id}/campaigns/{cid}/dry-run` (see README,
//! "Campaigns API").
//!
//! - **The event** is the one named (`event_id`), or else the customer's most recent event that
//!   starts the campaign (their last [`RECENT_EVENTS`] events; for a `system_event` trigger, the
//!   partner's last system events, and the customer must be one its filters and audience
//!   select). Schedule campaigns are not dry-run.
//! - **The run** goes through the same pure engine as the real one, from a fresh state: every
//!   wait is passed at its end as if no event came in between (the "nothing happened" path),
//!   branch checks are answered by ClickHouse now, and `assign_event` steps are listed, not
//!   stored. It stops when the run ends, or after [`MAX_MESSAGES`] messages (a repeating
//!   mailing) or [`MAX_INPUTS`] engine inputs.
//! - **Each message** is rendered with the customer's profile as it is now, exactly as the log
//!   row would be written (`would: send`), or with the reason it would be skipped (no email,
//!   consent, a content rule, a template error). Caps and counters are not judged: they depend on
//!   what else is sent until then.

use std::collections::VecDeque;

use eventline_audience::evaluate::StoredEvent;
use eventline_campaigns::definition::{Status, Trigger};
use eventline_campaigns::engine::{self, Action, DoneReason, Key, State};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::branches;
use super::messages;
use super::runner::{check_condition, live, message_row, stored_event};
use super::CampaignError;
use crate::customers::queries as customer_queries;
use crate::error::StorageError;
use crate::registry::PartnerEntry;
use crate::store::rows::{ms_to_datetime, EventRow};
use crate::store::Store;

/// How many of the customer's (or, for a system-event trigger, the partner's system) latest
/// events are looked through for one that starts the campaign.
pub const RECENT_EVENTS: u64 = 500;
/// Most messages one dry run lists (a mailing that repeats would go on for ever).
pub const MAX_MESSAGES: usize = 20;
/// Most engine inputs (the event, wake-ups, answers) one dry run makes.
pub const MAX_INPUTS: usize = 200;

/// Why a dry run could not run.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    /// The campaign (or partner) is not there.
    #[error(transparent)]
    Campaign(#[from] CampaignError),
    /// `event_id` names no event of the partner.
    #[error("the partner has no event `{0}`")]
    EventNotFound(Uuid),
    /// No recent event starts the campaign.
    #[error("{0}; pass `event_id` to dry-run against a given event")]
    NoTriggerEvent(String),
    /// A schedule campaign: not dry-run (its day's customers are chosen by their date).
    #[error("a schedule campaign cannot be dry-run yet: the customers of a day are chosen by their date attribute; its runs show in the message log")]
    Schedule,
    /// The saved definition no longer fits the catalogue.
    #[error("the campaign's saved definition no longer fits the partner's catalogue; validate it")]
    Outdated,
    /// ClickHouse failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The event a dry run used.
#[derive(Debug, Serialize)]
pub struct UsedEvent {
    /// Its id (a schedule's day for a schedule campaign: `schedule:YYYY-MM-DD`).
    pub event_id: String,
    /// Its name.
    pub name: String,
    /// Its time (RFC 3339, UTC).
    pub event_time: String,
}

/// One message the run would send.
#[derive(Debug, Serialize)]
pub struct WouldSend {
    /// The step's path.
    pub step: String,
    /// The channel.
    pub channel: String,
    /// When it would go out (RFC 3339, UTC).
    pub due_at: String,
    /// `send`, or `skip` (with `reason`).
    pub would: &'static str,
    /// Why it would be skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The address (email, phone, token, Viber id); empty for a webhook (the partner's URL).
    pub recipient: String,
    /// Subject (email) or title (push).
    pub subject: String,
    /// The rendered body (HTML for email, plain text otherwise).
    pub body: String,
    /// Push and Viber picture.
    pub image_url: String,
    /// Viber button text.
    pub button_text: String,
    /// Viber button URL.
    pub button_url: String,
}

/// An event an `assign_event` step would record.
#[derive(Debug, Serialize)]
pub struct WouldAssign {
    /// The step's path.
    pub step: String,
    /// The event name.
    pub name: String,
    /// Its properties.
    pub properties: std::collections::BTreeMap<String, Value>,
    /// Its time (RFC 3339, UTC).
    pub occurred_at: String,
}

/// What a dry run found.
#[derive(Debug, Serialize)]
pub struct DryRun {
    /// The campaign version run.
    pub version: u32,
    /// The customer.
    pub customer_id: String,
    /// The triggering event.
    pub event: UsedEvent,
    /// Whether the event starts a run for this customer (its `where`, the filters and audience
    /// answered now); `false` means nothing would be sent.
    pub started: bool,
    /// Messages in the order they would go out.
    pub messages: Vec<WouldSend>,
    /// Events `assign_event` steps would record.
    pub assigned_events: Vec<WouldAssign>,
    /// How the run would end: `done` with the engine's reason, or `cut` at a bound.
    pub ends: String,
}

fn rfc3339(ms: i64) -> String {
    event_model::timestamp::format_rfc3339_ms(ms)
}

/// Runs `campaign_id` for `customer_id` now against `event_id` (or the latest event that starts
/// it), writing nothing.
pub async fn dry_run(
    store: &Store,
    entry: &PartnerEntry,
    campaign_id: Uuid,
    customer_id: &str,
    event_id: Option<Uuid>,
    now: i64,
) -> Result<DryRun, DryRunError> {
    let partner_id = entry.partner.partner_id;
    let row = super::get(store, partner_id, campaign_id).await?;
    let mut campaign = live(entry, row).ok_or(DryRunError::Outdated)?;
    // As if active: a draft or a paused campaign is dry-run to see what it would send.
    campaign.valid.campaign.status = Status::Active;
    let valid = &campaign.valid;
    let id = campaign_id.to_string();
    let key = Key {
        campaign_id: &id,
        version: u64::from(campaign.row.version),
        customer_id,
    };
    let profile = customer_queries::profile(store, partner_id, customer_id).await?;

    let (event, (mut state, first)) = match (&valid.campaign.trigger, event_id) {
        (Trigger::Schedule(_), _) => return Err(DryRunError::Schedule),
        (trigger, given) => {
            let stored = match given {
                Some(id) => event_by_id(store, partner_id, id)
                    .await?
                    .ok_or(DryRunError::EventNotFound(id))?,
                None => {
                    let system = matches!(trigger, Trigger::SystemEvent(_));
                    latest_starting(store, partner_id, customer_id, system, |e| {
                        engine::starts(valid, e)
                    })
                    .await?
                    .ok_or_else(|| {
                        DryRunError::NoTriggerEvent(if system {
                            format!("none of the partner's last {RECENT_EVENTS} system events starts this campaign")
                        } else {
                            format!("none of customer `{customer_id}`'s last {RECENT_EVENTS} events starts this campaign")
                        })
                    })?
                }
            };
            let used = UsedEvent {
                event_id: stored.event_id.clone(),
                name: stored.name.clone(),
                event_time: rfc3339(stored.event_time_ms),
            };
            // A system event reaches the customers its fan-out selects (filters with the
            // event's `$field_code` values, and the audience), asked here for the one customer.
            if matches!(trigger, Trigger::SystemEvent(_)) && engine::starts(valid, &stored) {
                let context = engine::context_json(&stored.context);
                let selected = match engine::entry_condition(valid, &context) {
                    None => true,
                    Some(Err(_missing)) => false,
                    Some(Ok(condition)) => {
                        check_condition(store, entry, customer_id, &condition, now).await?
                    }
                };
                if !selected {
                    return Ok(DryRun {
                        version: campaign.row.version,
                        customer_id: customer_id.to_string(),
                        event: used,
                        started: false,
                        messages: Vec::new(),
                        assigned_events: Vec::new(),
                        ends: "not selected: the campaign's filters or audience leave the customer out"
                            .into(),
                    });
                }
            }
            // The run starts at the event's own time, as the engine would have run it then.
            let at = stored.event_time_ms;
            (
                used,
                engine::on_event(valid, key, State::default(), &stored, at),
            )
        }
    };
    let started = state.run.is_some() || !first.is_empty();
    let mut actions: VecDeque<Action> = first.into();
    let mut sends = Vec::new();
    let mut assigned_events = Vec::new();
    let mut inputs = 1;
    let ends = loop {
        let mut wake = None;
        let mut done = None;
        while let Some(action) = actions.pop_front() {
            match action {
                Action::Check { check, condition } => {
                    let holds = check_condition(store, entry, customer_id, &condition, now).await?;
                    let (next, more) = engine::on_answer(valid, key, state, &check, holds, now);
                    state = next;
                    actions.extend(more);
                    inputs += 1;
                }
                Action::CheckSegment { check, segment_id } => {
                    let holds =
                        match branches::saved_condition(store, partner_id, &segment_id).await? {
                            Some(condition) => {
                                check_condition(store, entry, customer_id, &condition, now).await?
                            }
                            None => false,
                        };
                    let (next, more) = engine::on_answer(valid, key, state, &check, holds, now);
                    state = next;
                    actions.extend(more);
                    inputs += 1;
                }
                Action::Send(message) => sends.push(message),
                Action::AssignEvent {
                    step,
                    name,
                    properties,
                    occurred_ms,
                    ..
                } => assigned_events.push(WouldAssign {
                    step,
                    name,
                    properties,
                    occurred_at: rfc3339(occurred_ms),
                }),
                Action::WakeAt { due_ms } => wake = Some(due_ms),
                Action::Done { reason } => done = Some(reason),
            }
        }
        if let Some(reason) = done {
            break format!("done: {}", done_reason(reason));
        }
        if sends.len() >= MAX_MESSAGES || inputs >= MAX_INPUTS {
            break "cut: the run goes on beyond the dry run's bounds".to_string();
        }
        // The wait ends with nothing having happened: the run's due time, reached.
        match wake.or_else(|| state.next_wake_ms()) {
            Some(due) => {
                let (next, more) = engine::on_due(valid, key, state, due);
                state = next;
                actions = more.into();
                inputs += 1;
            }
            None => {
                break if state.run.is_some() {
                    "waiting".to_string()
                } else {
                    "done".to_string()
                }
            }
        }
    };
    let created = ms_to_datetime(now);
    let messages = sends
        .iter()
        .take(MAX_MESSAGES)
        .map(|m| {
            let row = message_row(&campaign.row, customer_id, m, profile.as_ref(), created);
            let skipped = row.status == messages::SKIPPED;
            WouldSend {
                step: m.step.clone(),
                channel: row.channel,
                due_at: rfc3339(m.due_ms),
                would: if skipped { "skip" } else { "send" },
                reason: skipped.then_some(row.error),
                recipient: row.recipient,
                subject: row.subject,
                body: row.body,
                image_url: row.image_url,
                button_text: row.button_text,
                button_url: row.button_url,
            }
        })
        .collect();
    Ok(DryRun {
        version: campaign.row.version,
        customer_id: customer_id.to_string(),
        event,
        started,
        messages,
        assigned_events,
        ends,
    })
}

fn done_reason(reason: DoneReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The partner's event `event_id`.
async fn event_by_id(
    store: &Store,
    partner_id: Uuid,
    event_id: Uuid,
) -> Result<Option<StoredEvent>, StorageError> {
    let row: Option<EventRow> = store
        .timed(
            store
                .client()
                .query(
                    "SELECT ?fields FROM events \
                     WHERE partner_id = {partner:UUID} AND event_id = {event:UUID} LIMIT 1",
                )
                .param("partner", partner_id.to_string())
                .param("event", event_id.to_string())
                .fetch_optional(),
        )
        .await?;
    Ok(row.as_ref().map(stored_event))
}

/// The most recent of the customer's (or the partner's system) last [`RECENT_EVENTS`] events
/// for which `starts` holds.
async fn latest_starting(
    store: &Store,
    partner_id: Uuid,
    customer_id: &str,
    system: bool,
    starts: impl Fn(&StoredEvent) -> bool,
) -> Result<Option<StoredEvent>, StorageError> {
    let sql = if system {
        "SELECT ?fields FROM events WHERE partner_id = {partner:UUID} AND kind = 'system' \
         ORDER BY event_time DESC LIMIT {n:UInt64}"
    } else {
        "SELECT ?fields FROM events WHERE partner_id = {partner:UUID} \
           AND customer_id = {customer:String} AND kind = 'customer' \
         ORDER BY event_time DESC LIMIT {n:UInt64}"
    };
    let rows: Vec<EventRow> = store
        .timed(
            store
                .client()
                .query(sql)
                .param("partner", partner_id.to_string())
                .param("customer", customer_id)
                .param("n", RECENT_EVENTS)
                .fetch_all(),
        )
        .await?;
    Ok(rows.iter().map(stored_event).find(|e| starts(e)))
}
