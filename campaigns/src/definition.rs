//! A campaign definition as marketers write it: the JSON shape and nothing else.
//!
//! Every struct refuses unknown fields, so a typo (`"subjet"`) is an error, not a part silently
//! dropped. Each save of a campaign is a new version (the collector stores them); messages and
//! states are keyed by (campaign id, version), so editing an active campaign never changes what
//! a run already in progress does. Meaning (names, types, limits) is checked in `validate`; the
//! language is described in `docs/campaigns.md`.

use std::collections::BTreeMap;

use eventline_audience::definition::{Condition, Predicate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A campaign definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Display name, 1 to [`crate::validate::MAX_NAME_CHARS`] characters.
    pub name: String,
    /// Only an `active` campaign starts runs.
    pub status: Status,
    /// What starts a run for a customer.
    pub trigger: Trigger,
    /// Who may enter: a segment definition (the audience crate's language). Absent = everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Condition>,
    /// Customer filter conditions in the segment language whose string and number values may be
    /// `"$field_code"`, read from the triggering event's context. For a system event they
    /// select the customers to notify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Condition>,
    /// What a run does, in order. Must not be empty.
    pub steps: Vec<Step>,
    /// Per customer per channel caps, counted across every campaign of the partner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counters: Vec<ChannelCounter>,
}

/// A campaign's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being written: saved and validated, never run.
    Draft,
    /// Running: triggers start runs, runs advance.
    Active,
    /// Stopped: no new runs start; runs in progress hold until the campaign is active again.
    Paused,
}

/// What starts a run. The JSON is an object with exactly one key naming the trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// A customer event of this name (whose context passes `where`) starts a run for that customer.
    Event(EventTrigger),
    /// A system event of this name (whose context passes `where`) starts a run for each customer
    /// the `filters` (and `audience`) select.
    SystemEvent(EventTrigger),
    /// An event communication: an `on` event starts the mailing (the point of reference), an
    /// `off` event stops it, a `postpone_on` event moves the reference to its own time.
    TurnOn(TurnOn),
    /// Daily at a partner-local time, for customers whose date attribute falls on that day.
    Schedule(Schedule),
}

/// `{"event": {"name": ..., "where": [...]}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTrigger {
    /// The event name (an event type's code).
    pub name: String,
    /// Context predicates of the segment language, all on the triggering event.
    #[serde(rename = "where", default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Vec<Predicate>>,
}

/// `{"turn_on": {"on": [...], "off": [...], "postpone_on": [...], "repeat": n}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnOn {
    /// Events that start the mailing; the event's time is the point of reference.
    pub on: Vec<String>,
    /// Events that stop it (at least one). An event both `on` and `off` restarts it.
    pub off: Vec<String>,
    /// Events that move the reference to their own time: the wait in progress restarts from
    /// the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postpone_on: Option<Vec<String>>,
    /// How many more times the steps run after the first pass (0 = once), each pass starting
    /// where the previous one ended, until an `off` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
}

/// `{"schedule": {"date_attribute": "birthday", "at": "10:00"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// `birthday` or `attributes.<code>` of a datetime attribute: a run starts on the day whose
    /// month and day match it, every year.
    pub date_attribute: String,
    /// Partner-local time of day, `HH:MM` (24 hours).
    pub at: String,
}

/// One step. The JSON is an object with exactly one key naming the step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Send a message.
    Send(Send),
    /// Wait a duration, or until an event (with a timeout).
    Wait(Wait),
    /// Go on with `then` or `else`, by a condition.
    Branch(Branch),
    /// Record an event of a declared type for the customer.
    AssignEvent(AssignEvent),
}

/// `{"send": {"channel": "email", "template": {...}, "cap": {...}}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Send {
    /// The channel.
    pub channel: Channel,
    /// The content; which parts a channel takes is in [`Channel::rules`].
    pub template: Template,
    /// At most `max` messages of this step per customer per window, whatever the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<Cap>,
}

/// A message channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Formatted text (HTML), pictures, links.
    Email,
    /// Plain text only.
    Sms,
    /// Text, an image, or both; only customers with the app.
    Push,
    /// Text, image and button combinations; only registered messenger members.
    Viber,
    /// A JSON POST to the partner's endpoint.
    Webhook,
}

impl Channel {
    /// Every channel.
    pub const ALL: &'static [Channel] = &[
        Channel::Email,
        Channel::Sms,
        Channel::Push,
        Channel::Viber,
        Channel::Webhook,
    ];

    /// The JSON spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
            Channel::Viber => "viber",
            Channel::Webhook => "webhook",
        }
    }

    /// What the channel's content may hold.
    pub const fn rules(self) -> ContentRules {
        match self {
            Channel::Email => ContentRules {
                subject: Part::Required,
                image: Part::Forbidden,
                button: Part::Forbidden,
                html: true,
                max_body_chars: 100_000,
            },
            Channel::Sms => ContentRules {
                subject: Part::Forbidden,
                image: Part::Forbidden,
                button: Part::Forbidden,
                html: false,
                max_body_chars: crate::content::SMS_MAX_CHARS,
            },
            Channel::Push => ContentRules {
                subject: Part::Optional,
                image: Part::Optional,
                button: Part::Forbidden,
                html: false,
                max_body_chars: 1_000,
            },
            Channel::Viber => ContentRules {
                subject: Part::Forbidden,
                image: Part::Optional,
                button: Part::Optional,
                html: false,
                max_body_chars: 1_000,
            },
            Channel::Webhook => ContentRules {
                subject: Part::Forbidden,
                image: Part::Forbidden,
                button: Part::Forbidden,
                html: false,
                max_body_chars: 100_000,
            },
        }
    }
}

/// Whether a part of a template may or must be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Must be given.
    Required,
    /// May be given.
    Optional,
    /// Must not be given.
    Forbidden,
}

/// A channel's content rules. Every channel needs a body, except push and Viber, which may send
/// an image alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRules {
    /// The email subject, the push title.
    pub subject: Part,
    /// An image URL.
    pub image: Part,
    /// A button (Viber).
    pub button: Part,
    /// Whether the body is HTML (auto-escaped values) or plain text.
    pub html: bool,
    /// Longest template body, in characters.
    pub max_body_chars: usize,
}

/// A message template: minijinja text with `{{client.…}}` variables.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Email subject or push title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The text (HTML for email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// An image URL (push, Viber).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// A button (Viber).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<Button>,
}

/// A Viber button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Button {
    /// The caption.
    pub text: String,
    /// Where it leads.
    pub url: String,
}

/// A length of time: `{"days": 14}`, `{"minutes": 1}`, `{"hours": 1, "minutes": 30}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Duration {
    /// Days of 24 hours (not calendar days: a wait is an elapsed time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// Hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<u32>,
    /// Minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u32>,
}

impl Duration {
    /// The length in milliseconds.
    pub fn as_ms(&self) -> i64 {
        let part = |v: Option<u32>, unit: i64| i64::from(v.unwrap_or(0)) * unit;
        part(self.days, 86_400_000)
            + part(self.hours, 3_600_000)
            + part(self.minutes, 60_000)
            + part(self.seconds, 1_000)
    }

    /// Whether no part is given.
    pub fn is_unset(&self) -> bool {
        self.days.is_none()
            && self.hours.is_none()
            && self.minutes.is_none()
            && self.seconds.is_none()
    }
}

/// `{"wait": {"days": 14}}` or `{"wait": {"until_event": "purchase_completed", "timeout": {"days": 3},
/// "on_timeout": [...]}}`. The duration fields and `until_event` exclude each other.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// Days of a plain wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// Hours of a plain wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<u32>,
    /// Minutes of a plain wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
    /// Seconds of a plain wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u32>,
    /// Wait for the customer's event of this name: when it comes, the run goes on with the next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_event: Option<String>,
    /// How long to wait for `until_event`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// What to do when the timeout passes first; absent or empty = the run ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<Vec<Step>>,
}

impl Wait {
    /// The plain wait's duration (unset for a wait until an event).
    pub fn duration(&self) -> Duration {
        Duration {
            days: self.days,
            hours: self.hours,
            minutes: self.minutes,
            seconds: self.seconds,
        }
    }
}

/// `{"branch": {"if": condition, "then": [...], "else": [...]}}`, or with `"in_segment":
/// "<segment id>"` or `"if_trigger": [predicates]` instead of `if`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// A segment condition about the customer (has an event, property values, profile);
    /// values may be `"$field_code"`. Exactly one of `if`, `in_segment` and `if_trigger`.
    #[serde(rename = "if", default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// A saved segment's id: the branch holds when the customer is a member, by the segment's
    /// definition as it is when the step is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_segment: Option<String>,
    /// Predicates (the segment language's `where`), all on the triggering event's own context:
    /// judged by the engine on the values the run started with, no query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_trigger: Option<Vec<Predicate>>,
    /// Steps when it holds. Must not be empty.
    pub then: Vec<Step>,
    /// Steps when it does not; absent = go on after the branch.
    #[serde(rename = "else", default, skip_serializing_if = "Vec::is_empty")]
    pub otherwise: Vec<Step>,
}

/// `{"assign_event": {"name": "vip_invited", "properties": {"store_id": "$store_id"}}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignEvent {
    /// A declared customer event type's code.
    pub name: String,
    /// Property values: scalars of the property's type, or `"$field_code"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, Value>,
}

/// `{"max": 1, "per": {"days": 1}}`: at most `max` messages in any window of `per` (rolling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    /// At least 1.
    pub max: u32,
    /// The window.
    pub per: Duration,
}

/// `{"channel": "sms", "max": 2, "per": {"days": 1}}`: at most `max` messages of the channel to
/// one customer per window, counting every campaign of the partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelCounter {
    /// The channel.
    pub channel: Channel,
    /// At least 1.
    pub max: u32,
    /// The window.
    pub per: Duration,
}

/// Parses a definition from JSON. Shape errors come back as serde's message; meaning is checked
/// by [`crate::validate::validate`].
pub fn parse(json: &str) -> Result<Campaign, serde_json::Error> {
    serde_json::from_str(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REMINDER: &str = r#"{
      "name": "Registered, no purchase",
      "status": "active",
      "trigger": {"turn_on": {"on": ["registration_completed"], "off": ["purchase_completed"]}},
      "steps": [
        {"wait": {"days": 14}},
        {"send": {"channel": "email", "template": {"subject": "Welcome", "body": "Hi {{ client.first_name }}"}}},
        {"wait": {"until_event": "purchase_completed", "timeout": {"days": 14},
                  "on_timeout": [{"send": {"channel": "sms", "template": {"body": "Still here"}}}]}},
        {"branch": {"if": {"profile": {"field": "email", "op": "exists"}},
                    "then": [{"assign_event": {"name": "friend_invited", "properties": {"store_id": "$store_id"}}}]}}
      ],
      "counters": [{"channel": "sms", "max": 2, "per": {"days": 1}}]
    }"#;

    #[test]
    fn a_full_definition_parses_and_round_trips() {
        let def = parse(REMINDER).unwrap();
        assert!(matches!(def.trigger, Trigger::TurnOn(ref t) if t.off == ["purchase_completed"]));
        assert_eq!(def.steps.len(), 4);
        let Step::Wait(w) = &def.steps[0] else {
            panic!()
        };
        assert_eq!(w.duration().as_ms(), 14 * 86_400_000);
        let again: Campaign = serde_json::from_value(serde_json::to_value(&def).unwrap()).unwrap();
        assert_eq!(again, def);
    }

    #[test]
    fn a_misspelt_field_is_refused_not_ignored() {
        let bad = REMINDER.replace("\"subject\"", "\"subjet\"");
        assert!(parse(&bad).unwrap_err().to_string().contains("subjet"));
        let bad = REMINDER.replace("\"days\": 14}}", "\"dayz\": 14}}");
        assert!(parse(&bad).is_err());
        let two_triggers = REMINDER.replace(
            r#""trigger": {"turn_on""#,
            r#""trigger": {"event": {"name": "x"}, "turn_on""#,
        );
        assert!(parse(&two_triggers).is_err());
        assert!(parse(&REMINDER.replace("\"active\"", "\"running\"")).is_err());
    }
}
