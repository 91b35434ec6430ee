//! Validation on save: a parsed definition and the partner's catalogue in; a [`Valid`] campaign
//! the engine can run, or every field-level error out.
//!
//! Names are checked against the catalogue and every "no such name" message lists the valid
//! names. Segment parts (audience, filters, the trigger's `where`, a branch's `if`) are checked
//! by the audience crate, with `$field_code` values replaced by a sample of the field's type, so
//! a reference compared with a key of another type is a type mismatch at the reference's path.

use std::collections::{BTreeMap, BTreeSet};

use event_model::catalog::{EventTypeDef, PropertyType};
use event_model::timestamp::parse_rfc3339_ms;
use event_model::{rules, EventKind};
use eventline_audience::definition::{Condition, EventCondition, Predicate};
use eventline_audience::segment::{EventFilter, Node};
use eventline_audience::Catalogue;
use serde_json::{json, Value};

use crate::content;
use crate::definition::{
    AssignEvent, Campaign, Cap, Channel, Duration, EventTrigger, Part, Schedule, Send, Step,
    Trigger, TurnOn, Wait,
};
use crate::error::{list_names, ErrorCode, FieldError};
use crate::field_ref::{field_ref, map_operands, references};
use crate::template::{self, check_variable, EventFields};

/// Longest campaign name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Most steps in one campaign, nested ones included.
pub const MAX_STEPS: usize = 100;
/// Deepest nesting of step lists (`then`, `else`, `on_timeout` inside each other).
pub const MAX_BRANCH_DEPTH: usize = 5;
/// Longest wait, timeout or cap window: 366 days.
pub const MAX_DURATION_MS: i64 = 366 * 86_400_000;
/// Most extra passes of a turn-on campaign.
pub const MAX_REPEAT: u32 = 100;

/// A campaign that passed validation, with the typed trigger filter the engine judges events by.
#[derive(Debug, Clone, PartialEq)]
pub struct Valid {
    /// The definition.
    pub campaign: Campaign,
    /// The trigger's `where`, typed (event and system-event triggers with a `where`).
    pub trigger_filter: Option<EventFilter>,
    /// Each `if_trigger` branch's predicates, typed, by the branch's step path (`steps[0]`,
    /// `steps[1].branch.then[0]`); the filter names no event (only the predicates count).
    pub branch_filters: BTreeMap<String, EventFilter>,
}

/// Parses and validates a definition's JSON text.
pub fn validate_json(json: &str, catalogue: &Catalogue) -> Result<Valid, Vec<FieldError>> {
    let def: Campaign = serde_json::from_str(json).map_err(|e| {
        vec![FieldError::new(
            ErrorCode::InvalidDefinition,
            "",
            format!("not a campaign definition: {e}"),
        )]
    })?;
    validate(&def, catalogue)
}

/// Validates a definition against a catalogue.
pub fn validate(def: &Campaign, catalogue: &Catalogue) -> Result<Valid, Vec<FieldError>> {
    let mut v = Validator {
        catalogue,
        errors: Vec::new(),
        fields: EventFields::Known(BTreeSet::new()),
        field_types: BTreeMap::new(),
        steps: 0,
        branch_filters: BTreeMap::new(),
    };
    let name_chars = def.name.chars().count();
    if def.name.trim().is_empty() || name_chars > MAX_NAME_CHARS {
        v.err(
            ErrorCode::InvalidName,
            "name",
            format!("a campaign needs a name of 1-{MAX_NAME_CHARS} characters"),
        );
    }
    let trigger_filter = v.trigger(&def.trigger);
    if let Some(audience) = &def.audience {
        v.segment(audience, "audience", false);
    }
    if let Some(filters) = &def.filters {
        v.segment(filters, "filters", true);
    }
    if def.steps.is_empty() {
        v.err(
            ErrorCode::Empty,
            "steps",
            "a campaign needs at least one step",
        );
    }
    v.steps(&def.steps, "steps", 1);
    let mut channels = BTreeSet::new();
    for (i, counter) in def.counters.iter().enumerate() {
        let here = format!("counters[{i}]");
        if !channels.insert(counter.channel) {
            v.err(
                ErrorCode::InvalidCap,
                format!("{here}.channel"),
                format!("`{}` has a counter already", counter.channel.as_str()),
            );
        }
        v.cap(
            &Cap {
                max: counter.max,
                per: counter.per,
            },
            &here,
        );
    }
    if v.errors.is_empty() {
        Ok(Valid {
            campaign: def.clone(),
            trigger_filter,
            branch_filters: v.branch_filters,
        })
    } else {
        Err(v.errors)
    }
}

struct Validator<'a> {
    catalogue: &'a Catalogue,
    errors: Vec<FieldError>,
    /// The fields the triggering event provides (templates, `$field_code`).
    fields: EventFields,
    /// Their types, where the catalogue knows them.
    field_types: BTreeMap<String, PropertyType>,
    steps: usize,
    branch_filters: BTreeMap<String, EventFilter>,
}

fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Customer => "customer",
        EventKind::System => "system",
    }
}

impl Validator<'_> {
    fn err(&mut self, code: ErrorCode, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(code, path, message));
    }

    fn event_type(&self, code: &str) -> Option<&EventTypeDef> {
        self.catalogue.event_types.iter().find(|t| t.code == code)
    }

    fn property_type(&self, code: &str) -> Option<PropertyType> {
        self.catalogue
            .properties
            .iter()
            .find(|p| p.code == code)
            .map(|p| p.ty)
    }

    /// Checks an event name of a kind; the declared type, if any.
    fn event_name(&mut self, name: &str, kind: EventKind, path: &str) -> Option<EventTypeDef> {
        if rules::check_event_name(name).is_err() {
            self.err(
                ErrorCode::UnknownEventType,
                path,
                format!("`{name}` is not an event name"),
            );
            return None;
        }
        let valid = || {
            list_names(
                self.catalogue
                    .event_types
                    .iter()
                    .filter(|t| t.kind == kind)
                    .map(|t| t.code.as_str()),
            )
        };
        match self.event_type(name) {
            Some(t) if t.kind == kind => Some(t.clone()),
            Some(t) => {
                let message = format!(
                    "`{name}` is a {} event type; {} event types are {}",
                    kind_name(t.kind),
                    kind_name(kind),
                    valid()
                );
                self.err(ErrorCode::UnknownEventType, path, message);
                None
            }
            None if self.catalogue.accept_undeclared => None,
            None => {
                let message = format!(
                    "no {} event type `{name}`; the {} event types are {}",
                    kind_name(kind),
                    kind_name(kind),
                    valid()
                );
                self.err(ErrorCode::UnknownEventType, path, message);
                None
            }
        }
    }

    fn provide_fields_of(&mut self, types: &[Option<EventTypeDef>]) {
        // A field is available when every event that may trigger carries it in its type;
        // an undeclared type (partner accepting them) may carry anything.
        if types.iter().any(Option::is_none) {
            self.fields = EventFields::Any;
            return;
        }
        let mut common: Option<BTreeSet<String>> = None;
        for t in types.iter().flatten() {
            let codes: BTreeSet<String> = t.properties.iter().map(|p| p.code.clone()).collect();
            common = Some(match common {
                None => codes,
                Some(c) => c.intersection(&codes).cloned().collect(),
            });
        }
        let common = common.unwrap_or_default();
        for code in &common {
            if let Some(ty) = self.property_type(code) {
                self.field_types.insert(code.clone(), ty);
            }
        }
        self.fields = EventFields::Known(common);
    }

    fn trigger(&mut self, trigger: &Trigger) -> Option<EventFilter> {
        match trigger {
            Trigger::Event(t) => self.event_trigger(t, EventKind::Customer, "trigger.event"),
            Trigger::SystemEvent(t) => {
                self.event_trigger(t, EventKind::System, "trigger.system_event")
            }
            Trigger::TurnOn(t) => {
                self.turn_on(t);
                None
            }
            Trigger::Schedule(s) => {
                self.schedule(s);
                None
            }
        }
    }

    fn event_trigger(
        &mut self,
        t: &EventTrigger,
        kind: EventKind,
        path: &str,
    ) -> Option<EventFilter> {
        let declared = self.event_name(&t.name, kind, &format!("{path}.name"));
        if declared.is_none() && !self.catalogue.accept_undeclared {
            self.fields = EventFields::Known(BTreeSet::new());
        } else {
            self.provide_fields_of(&[declared]);
        }
        let condition = Condition::Event(EventCondition {
            name: Some(t.name.clone()),
            filter: t.filter.clone(),
            ..EventCondition::default()
        });
        // The segment validator names the node `event`; the trigger's own key replaces it.
        let prefix = path
            .strip_suffix(".event")
            .unwrap_or("trigger.system_event");
        match eventline_audience::validate(&condition, self.catalogue) {
            Ok(segment) => match segment.root {
                Node::Events(filter, _) if t.filter.is_some() => Some(filter),
                _ => None,
            },
            Err(errors) => {
                for e in errors {
                    // The name's errors are reported above with the valid names.
                    if e.path == "event.name" {
                        continue;
                    }
                    let rest = e.path.strip_prefix("event").unwrap_or(&e.path);
                    let path = if prefix.ends_with("system_event") {
                        format!("{prefix}{rest}")
                    } else {
                        format!("{prefix}.event{rest}")
                    };
                    self.segment_error(e.code, path, e.message);
                }
                None
            }
        }
    }

    fn turn_on(&mut self, t: &TurnOn) {
        for (list, field) in [(&t.on, "on"), (&t.off, "off")] {
            if list.is_empty() {
                let why = if field == "on" {
                    "a turn-on campaign needs at least one event that turns it on"
                } else {
                    "a turn-on campaign needs at least one event that turns it off"
                };
                self.err(ErrorCode::Empty, format!("trigger.turn_on.{field}"), why);
            }
        }
        let mut on_types = Vec::new();
        for (i, name) in t.on.iter().enumerate() {
            on_types.push(self.event_name(
                name,
                EventKind::Customer,
                &format!("trigger.turn_on.on[{i}]"),
            ));
        }
        for (i, name) in t.off.iter().enumerate() {
            self.event_name(
                name,
                EventKind::Customer,
                &format!("trigger.turn_on.off[{i}]"),
            );
        }
        for (i, name) in t.postpone_on.iter().flatten().enumerate() {
            self.event_name(
                name,
                EventKind::Customer,
                &format!("trigger.turn_on.postpone_on[{i}]"),
            );
        }
        if t.repeat.is_some_and(|r| r > MAX_REPEAT) {
            self.err(
                ErrorCode::InvalidValue,
                "trigger.turn_on.repeat",
                format!("at most {MAX_REPEAT} repeats"),
            );
        }
        let undeclared_ok = self.catalogue.accept_undeclared;
        if !on_types.is_empty() && (undeclared_ok || on_types.iter().all(Option::is_some)) {
            self.provide_fields_of(&on_types);
        }
    }

    fn schedule(&mut self, s: &Schedule) {
        let attr = s.date_attribute.as_str();
        let ok = attr == "birthday"
            || attr
                .strip_prefix("attributes.")
                .is_some_and(|code| rules::check_context_key(code).is_ok());
        if !ok {
            self.err(
                ErrorCode::InvalidValue,
                "trigger.schedule.date_attribute",
                format!("`{attr}` is not a date attribute: use `birthday` or `attributes.<code>` of a datetime attribute"),
            );
        }
        if crate::schedule::parse_time_of_day(&s.at).is_none() {
            self.err(
                ErrorCode::InvalidTime,
                "trigger.schedule.at",
                format!(
                    "`{}` is not a time of day such as 10:00 (HH:MM, 24 hours)",
                    s.at
                ),
            );
        }
    }

    fn segment_error(
        &mut self,
        code: eventline_audience::ErrorCode,
        path: String,
        message: String,
    ) {
        use eventline_audience::ErrorCode as S;
        let message = match code {
            S::UnknownEventType => format!(
                "{message}; the event types are {}",
                list_names(self.catalogue.event_types.iter().map(|t| t.code.as_str()))
            ),
            S::UnknownProperty => format!(
                "{message}; the properties are {}",
                list_names(self.catalogue.properties.iter().map(|p| p.code.as_str()))
            ),
            _ => message,
        };
        self.err(ErrorCode::Segment(code), path, message);
    }

    /// A segment condition at `path`; `refs` = `$field_code` values allowed.
    fn segment(&mut self, c: &Condition, path: &str, refs: bool) {
        let c = if refs {
            let mut ok = true;
            for (at, code) in references(c) {
                if !self.field_known(&code) {
                    let message = self.unknown_field_message(&code);
                    self.err(ErrorCode::UnknownField, format!("{path}.{at}"), message);
                    ok = false;
                }
            }
            if !ok {
                return;
            }
            let types = self.field_types.clone();
            map_operands(c, "", &mut |_, v| match field_ref(v) {
                Some(code) => sample(types.get(code).copied()),
                None => v.clone(),
            })
        } else {
            c.clone()
        };
        if let Err(errors) = eventline_audience::validate(&c, self.catalogue) {
            for e in errors {
                let at = if e.path.is_empty() {
                    path.to_string()
                } else {
                    format!("{path}.{}", e.path)
                };
                self.segment_error(e.code, at, e.message);
            }
        }
    }

    /// An `if_trigger` branch's predicates: on fields the triggering event carries, with literal
    /// values, typed by the catalogue.
    fn trigger_predicates(&mut self, predicates: &[Predicate], path: &str) -> Option<EventFilter> {
        let mut ok = true;
        for (i, p) in predicates.iter().enumerate() {
            if !self.field_known(&p.key) {
                let message = self.unknown_field_message(&p.key);
                self.err(ErrorCode::UnknownField, format!("{path}[{i}].key"), message);
                ok = false;
            }
            if p.value.as_ref().is_some_and(|v| field_ref(v).is_some()) {
                self.err(
                    ErrorCode::InvalidValue,
                    format!("{path}[{i}].value"),
                    "`if_trigger` compares the triggering event's fields with literal values; a `$field_code` has no meaning here",
                );
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let condition = Condition::Event(EventCondition {
            filter: Some(predicates.to_vec()),
            ..EventCondition::default()
        });
        match eventline_audience::validate(&condition, self.catalogue) {
            Ok(segment) => match segment.root {
                Node::Events(filter, _) => Some(filter),
                _ => None,
            },
            Err(errors) => {
                for e in errors {
                    let rest = e.path.strip_prefix("event.where").unwrap_or(&e.path);
                    self.segment_error(e.code, format!("{path}{rest}"), e.message);
                }
                None
            }
        }
    }

    fn field_known(&self, code: &str) -> bool {
        match &self.fields {
            EventFields::Any => rules::check_context_key(code).is_ok(),
            EventFields::Known(known) => known.contains(code),
        }
    }

    fn unknown_field_message(&self, code: &str) -> String {
        match &self.fields {
            EventFields::Known(known) => format!(
                "the trigger's event has no field `{code}`; its fields are {}",
                list_names(known.iter().map(String::as_str))
            ),
            EventFields::Any => format!("`{code}` is not a field code (letters, digits, `_`)"),
        }
    }

    fn steps(&mut self, steps: &[Step], path: &str, depth: usize) {
        if depth > MAX_BRANCH_DEPTH {
            self.err(
                ErrorCode::TooComplex,
                path,
                format!("steps may nest {MAX_BRANCH_DEPTH} levels deep"),
            );
            return;
        }
        for (i, step) in steps.iter().enumerate() {
            self.steps += 1;
            if self.steps == MAX_STEPS + 1 {
                self.err(
                    ErrorCode::TooComplex,
                    format!("{path}[{i}]"),
                    format!("a campaign may hold {MAX_STEPS} steps"),
                );
            }
            let here = format!("{path}[{i}]");
            match step {
                Step::Send(s) => self.send(s, &format!("{here}.send")),
                Step::Wait(w) => self.wait(w, &format!("{here}.wait"), depth),
                Step::Branch(b) => {
                    let here = format!("{here}.branch");
                    let given = [
                        b.condition.is_some(),
                        b.in_segment.is_some(),
                        b.if_trigger.is_some(),
                    ];
                    match (&b.condition, &b.in_segment) {
                        _ if given.iter().filter(|g| **g).count() > 1 => self.err(
                            ErrorCode::InvalidValue,
                            here.clone(),
                            "a branch takes one of `if`, `in_segment` and `if_trigger`",
                        ),
                        _ if b.if_trigger.is_some() => {
                            let step = here.strip_suffix(".branch").unwrap_or(&here).to_string();
                            let predicates = b.if_trigger.as_deref().unwrap_or_default();
                            if let Some(filter) =
                                self.trigger_predicates(predicates, &format!("{here}.if_trigger"))
                            {
                                self.branch_filters.insert(step, filter);
                            }
                        }
                        (Some(condition), None) => {
                            self.segment(condition, &format!("{here}.if"), true);
                        }
                        (None, Some(id)) => {
                            if uuid::Uuid::parse_str(id).is_err() {
                                self.err(
                                    ErrorCode::UnknownSegment,
                                    format!("{here}.in_segment"),
                                    format!("`{id}` is not a segment id (a UUID)"),
                                );
                            }
                        }
                        _ => self.err(
                            ErrorCode::Empty,
                            here.clone(),
                            "a branch needs `if` (a condition), `in_segment` (a segment id) or `if_trigger` (predicates on the triggering event)",
                        ),
                    }
                    if b.then.is_empty() {
                        self.err(
                            ErrorCode::Empty,
                            format!("{here}.then"),
                            "`then` needs at least one step",
                        );
                    }
                    self.steps(&b.then, &format!("{here}.then"), depth + 1);
                    self.steps(&b.otherwise, &format!("{here}.else"), depth + 1);
                }
                Step::AssignEvent(a) => self.assign(a, &format!("{here}.assign_event")),
            }
        }
    }

    fn send(&mut self, s: &Send, path: &str) {
        let rules = s.channel.rules();
        let channel = s.channel.as_str();
        let t = &s.template;
        let tpath = format!("{path}.template");
        for (part, given, field) in [
            (rules.subject, t.subject.is_some(), "subject"),
            (rules.image, t.image_url.is_some(), "image_url"),
            (rules.button, t.button.is_some(), "button"),
        ] {
            match (part, given) {
                (Part::Required, false) => self.err(
                    ErrorCode::ContentRule,
                    format!("{tpath}.{field}"),
                    format!("a {channel} message needs a `{field}`"),
                ),
                (Part::Forbidden, true) => self.err(
                    ErrorCode::ContentRule,
                    format!("{tpath}.{field}"),
                    format!(
                        "a {channel} message has no `{field}`: {}",
                        content::shapes_sentence(s.channel)
                    ),
                ),
                _ => {}
            }
        }
        let image_alone = rules.image != Part::Forbidden && t.image_url.is_some();
        match &t.body {
            // Viber's combinations are judged as a whole below.
            None if !image_alone && s.channel != Channel::Viber => self.err(
                ErrorCode::ContentRule,
                format!("{tpath}.body"),
                format!(
                    "a {channel} message needs a `body`: {}",
                    content::shapes_sentence(s.channel)
                ),
            ),
            Some(body) if body.chars().count() > rules.max_body_chars => self.err(
                ErrorCode::ContentRule,
                format!("{tpath}.body"),
                format!(
                    "a {channel} body is at most {} characters",
                    rules.max_body_chars
                ),
            ),
            _ => {}
        }
        self.channel_shape(s, &tpath);
        let mut texts: Vec<(String, &str)> = Vec::new();
        if let Some(x) = &t.subject {
            texts.push((format!("{tpath}.subject"), x));
        }
        if let Some(x) = &t.body {
            texts.push((format!("{tpath}.body"), x));
        }
        if let Some(x) = &t.image_url {
            texts.push((format!("{tpath}.image_url"), x));
        }
        if let Some(b) = &t.button {
            texts.push((format!("{tpath}.button.text"), &b.text));
            texts.push((format!("{tpath}.button.url"), &b.url));
        }
        for (at, text) in texts {
            match template::variables(text) {
                Err(e) => self.err(
                    ErrorCode::InvalidTemplate,
                    at,
                    format!("the template does not parse: {e}"),
                ),
                Ok(vars) => {
                    for var in vars {
                        if let Err(why) = check_variable(&var, &self.fields) {
                            self.err(ErrorCode::InvalidTemplate, at.clone(), why);
                        }
                    }
                }
            }
        }
        if let Some(cap) = &s.cap {
            self.cap(cap, &format!("{path}.cap"));
        }
    }

    /// The channel's shape beyond its parts ([`content`]): SMS without HTML, Viber's
    /// combinations, a push title's length, image and button links that are web URLs.
    fn channel_shape(&mut self, s: &Send, tpath: &str) {
        let t = &s.template;
        // A template with `{{ … }}` or `{% … %}` is judged once rendered, at send time.
        let literal = |text: &str| !text.contains("{{") && !text.contains("{%");
        match s.channel {
            Channel::Sms => {
                if let Some(tag) = t.body.as_deref().and_then(content::html_tag) {
                    self.err(
                        ErrorCode::ContentRule,
                        format!("{tpath}.body"),
                        format!(
                            "`{tag}` is HTML: {}",
                            content::shapes_sentence(Channel::Sms)
                        ),
                    );
                }
            }
            Channel::Push => {
                if let Some(title) = t.subject.as_deref() {
                    if title.chars().count() > content::PUSH_TITLE_MAX_CHARS {
                        self.err(
                            ErrorCode::ContentRule,
                            format!("{tpath}.subject"),
                            format!(
                                "a push title is at most {} characters",
                                content::PUSH_TITLE_MAX_CHARS
                            ),
                        );
                    }
                }
            }
            Channel::Viber => {
                if let Some(why) = content::viber_shape_error(t) {
                    self.err(ErrorCode::ContentRule, tpath.to_string(), why);
                }
                if let Some(b) = &t.button {
                    if b.text.chars().count() > content::VIBER_BUTTON_MAX_CHARS {
                        self.err(
                            ErrorCode::ContentRule,
                            format!("{tpath}.button.text"),
                            format!(
                                "a Viber button caption is at most {} characters",
                                content::VIBER_BUTTON_MAX_CHARS
                            ),
                        );
                    }
                    if literal(&b.url) && !content::is_web_url(&b.url) {
                        self.err(
                            ErrorCode::ContentRule,
                            format!("{tpath}.button.url"),
                            "a button leads to an absolute http:// or https:// URL",
                        );
                    }
                }
            }
            Channel::Email | Channel::Webhook => {}
        }
        if let Some(image) = t.image_url.as_deref() {
            if literal(image) && !content::is_web_url(image) {
                self.err(
                    ErrorCode::ContentRule,
                    format!("{tpath}.image_url"),
                    "an image is an absolute http:// or https:// URL",
                );
            }
        }
    }

    fn duration(&mut self, d: &Duration, path: &str) {
        let ms = d.as_ms();
        if ms <= 0 || ms > MAX_DURATION_MS {
            self.err(
                ErrorCode::InvalidTime,
                path,
                "a duration is more than 0 and at most 366 days, such as {\"days\": 14} or {\"minutes\": 1}",
            );
        }
    }

    fn cap(&mut self, cap: &Cap, path: &str) {
        if cap.max == 0 {
            self.err(
                ErrorCode::InvalidCap,
                format!("{path}.max"),
                "a cap of 0 would never send; remove the step instead",
            );
        }
        let ms = cap.per.as_ms();
        if ms <= 0 || ms > MAX_DURATION_MS {
            self.err(
                ErrorCode::InvalidCap,
                format!("{path}.per"),
                "the window is more than 0 and at most 366 days, such as {\"days\": 1}",
            );
        }
    }

    fn wait(&mut self, w: &Wait, path: &str, depth: usize) {
        let plain = !w.duration().is_unset();
        match (&w.until_event, plain) {
            (Some(_), true) => self.err(
                ErrorCode::InvalidTime,
                path,
                "wait either a duration or `until_event` with a `timeout`, not both",
            ),
            (None, false) => self.err(
                ErrorCode::InvalidTime,
                path,
                "a wait needs a duration (such as {\"days\": 14}) or `until_event` with a `timeout`",
            ),
            (None, true) => {
                self.duration(&w.duration(), path);
                if w.timeout.is_some() || w.on_timeout.is_some() {
                    self.err(
                        ErrorCode::InvalidTime,
                        format!("{path}.timeout"),
                        "`timeout` and `on_timeout` belong to a wait with `until_event`",
                    );
                }
            }
            (Some(name), false) => {
                self.event_name(name, EventKind::Customer, &format!("{path}.until_event"));
                match &w.timeout {
                    Some(t) => self.duration(t, &format!("{path}.timeout")),
                    None => self.err(
                        ErrorCode::InvalidTime,
                        format!("{path}.timeout"),
                        "a wait for an event needs a `timeout`, such as {\"days\": 3}",
                    ),
                }
                if let Some(steps) = &w.on_timeout {
                    self.steps(steps, &format!("{path}.on_timeout"), depth + 1);
                }
            }
        }
    }

    fn assign(&mut self, a: &AssignEvent, path: &str) {
        let declared = self.event_name(&a.name, EventKind::Customer, &format!("{path}.name"));
        for (key, value) in &a.properties {
            let here = format!("{path}.properties.{key}");
            if let Err(code) = rules::check_context_key(key) {
                let message =
                    event_model::Violation::new(code, &format!("context.{key}")).message();
                self.err(ErrorCode::InvalidValue, here, message);
                continue;
            }
            if let Some(t) = &declared {
                if !t.properties.iter().any(|p| p.code == *key) {
                    let message = format!(
                        "event type `{}` has no property `{key}`; its properties are {}",
                        t.code,
                        list_names(t.properties.iter().map(|p| p.code.as_str()))
                    );
                    self.err(ErrorCode::UnknownField, here, message);
                    continue;
                }
            }
            let want = self.property_type(key);
            if let Some(code) = field_ref(value) {
                if !self.field_known(code) {
                    let message = self.unknown_field_message(code);
                    self.err(ErrorCode::UnknownField, here, message);
                } else if let (Some(want), Some(have)) = (want, self.field_types.get(code)) {
                    if want != *have {
                        self.err(
                            ErrorCode::InvalidValue,
                            here,
                            format!(
                                "`${code}` is a {} field, `{key}` a {} property",
                                have.as_str(),
                                want.as_str()
                            ),
                        );
                    }
                }
                continue;
            }
            let fits = match (want, value) {
                (_, Value::Null | Value::Array(_) | Value::Object(_)) => false,
                (None, _) => true,
                (Some(PropertyType::String), Value::String(_)) => true,
                (Some(PropertyType::Number), Value::Number(_)) => true,
                (Some(PropertyType::Boolean), Value::Bool(_)) => true,
                (Some(PropertyType::Datetime), Value::String(s)) => parse_rfc3339_ms(s).is_some(),
                _ => false,
            };
            if !fits {
                let ty = want.map_or("string, number or boolean", PropertyType::as_str);
                self.err(
                    ErrorCode::InvalidValue,
                    here,
                    format!("expected a {ty} value or a `$field_code`, got {value}"),
                );
            }
        }
    }
}

/// A value of a type, standing in for a `$field_code` while the segment validator checks types.
fn sample(ty: Option<PropertyType>) -> Value {
    match ty {
        Some(PropertyType::Number) => json!(0),
        Some(PropertyType::Boolean) => json!(false),
        Some(PropertyType::Datetime) => json!("2026-01-01T00:00:00Z"),
        Some(PropertyType::String) | None => json!("sample"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::shop;

    /// The back-in-stock example of docs/campaigns.md.
    const BACK_IN_STOCK: &str = r#"{
      "name": "Back in stock",
      "status": "active",
      "trigger": {"system_event": {"name": "back_in_stock"}},
      "filters": {"event": {"name": "product_viewed",
                            "where": [{"key": "product", "op": "eq", "value": "$product"}],
                            "period": {"last_days": 90}}},
      "steps": [{"send": {"channel": "email", "template": {
        "subject": "{{ client.eventContext.product }} is back",
        "body": "<p>Hi {{ client.first_name | default(\"friend\") }}, {{ client.eventContext.product }} is back in stock.</p>"}}}]
    }"#;

    fn errors(json: &str) -> Vec<(ErrorCode, String, String)> {
        validate_json(json, &shop())
            .expect_err("refused")
            .into_iter()
            .map(|e| (e.code, e.path, e.message))
            .collect()
    }

    fn with_steps(trigger: &str, steps: &str) -> String {
        format!(r#"{{"name": "t", "status": "draft", "trigger": {trigger}, "steps": {steps}}}"#)
    }

    const EMAIL: &str =
        r#"[{"send": {"channel": "email", "template": {"subject": "s", "body": "b"}}}]"#;

    #[test]
    fn every_example_in_the_campaign_docs_validates() {
        let docs = include_str!("../../docs/campaigns.md");
        let blocks: Vec<&str> = docs
            .split("```json\n")
            .skip(1)
            .map(|rest| rest.split("```").next().unwrap())
            .collect();
        assert_eq!(blocks.len(), 3);
        for block in blocks {
            if let Err(errors) = validate_json(block, &shop()) {
                panic!("{block}\n{errors:?}");
            }
        }
    }

    #[test]
    fn the_back_in_stock_example_validates() {
        let valid = validate_json(BACK_IN_STOCK, &shop()).unwrap();
        assert_eq!(valid.trigger_filter, None);
    }

    #[test]
    fn an_unknown_event_type_is_named_with_the_valid_ones_of_its_kind() {
        let errs = errors(&with_steps(
            r#"{"event": {"name": "purchase_complete"}}"#,
            EMAIL,
        ));
        assert_eq!(errs[0].0, ErrorCode::UnknownEventType);
        assert_eq!(errs[0].1, "trigger.event.name");
        assert!(errs[0].2.contains("`purchase_completed`"), "{}", errs[0].2);
        assert!(!errs[0].2.contains("`back_in_stock`"), "{}", errs[0].2);
        // A customer type as a system trigger lists the system types.
        let errs = errors(&with_steps(
            r#"{"system_event": {"name": "purchase_completed"}}"#,
            EMAIL,
        ));
        assert_eq!(errs[0].1, "trigger.system_event.name");
        assert!(
            errs[0].2.contains("system event types are `back_in_stock`"),
            "{}",
            errs[0].2
        );
    }

    #[test]
    fn a_field_code_the_triggers_event_type_lacks_is_named_with_its_fields() {
        let json = BACK_IN_STOCK.replace("\"$product\"", "\"$sku\"");
        let errs = errors(&json);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, ErrorCode::UnknownField);
        assert_eq!(errs[0].1, "filters.event.where[0].value");
        assert!(
            errs[0].2.contains("`sku`") && errs[0].2.contains("fields are `product`"),
            "{}",
            errs[0].2
        );
    }

    #[test]
    fn a_field_code_of_another_type_than_the_key_is_a_type_mismatch() {
        let json = with_steps(
            r#"{"event": {"name": "purchase_completed"}}"#,
            r#"[{"branch": {"if": {"event": {"name": "product_viewed", "where": [{"key": "product", "op": "eq", "value": "$total_price"}]}},
                 "then": [{"send": {"channel": "sms", "template": {"body": "x"}}}]}}]"#,
        );
        let errs = errors(&json);
        assert_eq!(
            (errs[0].0, errs[0].1.as_str()),
            (
                ErrorCode::Segment(eventline_audience::ErrorCode::TypeMismatch),
                "steps[0].branch.if.event.where[0].value"
            )
        );
    }

    #[test]
    fn a_template_variable_that_cannot_resolve_is_named_with_the_valid_ones() {
        let json = BACK_IN_STOCK.replace(
            "{{ client.eventContext.product }} is back\"",
            "{{ client.eventContext.title }} is back\"",
        );
        let errs = errors(&json);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, ErrorCode::InvalidTemplate);
        assert_eq!(errs[0].1, "steps[0].send.template.subject");
        assert!(
            errs[0].2.contains("`title`") && errs[0].2.contains("`product`"),
            "{}",
            errs[0].2
        );
        // A schedule has no triggering event: no eventContext field resolves.
        let json = with_steps(
            r#"{"schedule": {"date_attribute": "birthday", "at": "10:00"}}"#,
            r#"[{"send": {"channel": "sms", "template": {"body": "{{ client.eventContext.product }}"}}}]"#,
        );
        assert_eq!(errors(&json)[0].0, ErrorCode::InvalidTemplate);
    }

    #[test]
    fn structural_mistakes_each_get_a_path() {
        let json = r#"{"name": " ", "status": "active",
          "trigger": {"turn_on": {"on": ["registration_completed"], "off": [], "postpone_on": ["purchase_done"]}},
          "steps": [
            {"wait": {}},
            {"wait": {"days": 0}},
            {"wait": {"days": 1, "until_event": "purchase_completed"}},
            {"wait": {"until_event": "purchase_completed"}},
            {"send": {"channel": "sms", "template": {"subject": "s", "body": "b"}, "cap": {"max": 0, "per": {"days": 1}}}},
            {"send": {"channel": "email", "template": {"body": "{{ oops"}}},
            {"branch": {"if": {"any": []}, "then": []}},
            {"assign_event": {"name": "purchase_completed", "properties": {"total_price": "a lot", "colour": "red", "store-id": "x"}}}
          ],
          "counters": [{"channel": "sms", "max": 1, "per": {"days": 1}}, {"channel": "sms", "max": 1, "per": {}}]
        }"#;
        let got: Vec<(ErrorCode, String)> =
            errors(json).into_iter().map(|(c, p, _)| (c, p)).collect();
        let want = [
            (ErrorCode::InvalidName, "name"),
            (ErrorCode::Empty, "trigger.turn_on.off"),
            (
                ErrorCode::UnknownEventType,
                "trigger.turn_on.postpone_on[0]",
            ),
            (ErrorCode::InvalidTime, "steps[0].wait"),
            (ErrorCode::InvalidTime, "steps[1].wait"),
            (ErrorCode::InvalidTime, "steps[2].wait"),
            (ErrorCode::InvalidTime, "steps[3].wait.timeout"),
            (ErrorCode::ContentRule, "steps[4].send.template.subject"),
            (ErrorCode::InvalidCap, "steps[4].send.cap.max"),
            (ErrorCode::ContentRule, "steps[5].send.template.subject"),
            (ErrorCode::InvalidTemplate, "steps[5].send.template.body"),
            (
                ErrorCode::Segment(eventline_audience::ErrorCode::EmptyGroup),
                "steps[6].branch.if.any",
            ),
            (ErrorCode::Empty, "steps[6].branch.then"),
            (
                ErrorCode::UnknownField,
                "steps[7].assign_event.properties.colour",
            ),
            (
                ErrorCode::InvalidValue,
                "steps[7].assign_event.properties.store-id",
            ),
            (
                ErrorCode::InvalidValue,
                "steps[7].assign_event.properties.total_price",
            ),
            (ErrorCode::InvalidCap, "counters[1].channel"),
            (ErrorCode::InvalidCap, "counters[1].per"),
        ];
        let want: Vec<(ErrorCode, String)> =
            want.iter().map(|(c, p)| (*c, p.to_string())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn sms_push_and_viber_content_outside_the_channels_shapes_is_refused_listing_them() {
        let steps = r#"[
          {"send": {"channel": "sms", "template": {"body": "Hi <b>{{ client.first_name }}</b>, 1 < 2"}}},
          {"send": {"channel": "push", "template": {"subject": "s", "button": {"text": "Go", "url": "https://x.example"}}}},
          {"send": {"channel": "viber", "template": {"body": "Hi", "image_url": "https://cdn.example.com/a.png"}}},
          {"send": {"channel": "viber", "template": {"image_url": "cdn.example.com/a.png", "button": {"text": "Open the shop right now, please", "url": "shop"}}}},
          {"send": {"channel": "push", "template": {"image_url": "https://cdn.example.com/{{ client.eventContext.product }}.png"}}},
          {"send": {"channel": "viber", "template": {"body": "Hi", "image_url": "https://cdn.example.com/a.png", "button": {"text": "Open", "url": "https://shop.example.com"}}}}
        ]"#;
        let json = with_steps(r#"{"event": {"name": "added_to_cart"}}"#, steps);
        let got = errors(&json);
        let paths: Vec<(ErrorCode, &str)> = got.iter().map(|(c, p, _)| (*c, p.as_str())).collect();
        assert_eq!(
            paths,
            [
                (ErrorCode::ContentRule, "steps[0].send.template.body"),
                (ErrorCode::ContentRule, "steps[1].send.template.button"),
                (ErrorCode::ContentRule, "steps[1].send.template.body"),
                (ErrorCode::ContentRule, "steps[2].send.template"),
                (ErrorCode::ContentRule, "steps[3].send.template"),
                (ErrorCode::ContentRule, "steps[3].send.template.button.text"),
                (ErrorCode::ContentRule, "steps[3].send.template.button.url"),
                (ErrorCode::ContentRule, "steps[3].send.template.image_url"),
            ]
        );
        assert!(
            got[0]
                .2
                .starts_with("`<b>` is HTML: an SMS is `body` only: plain text"),
            "{}",
            got[0].2
        );
        assert!(
            got[0].2.contains("1600 characters after rendering"),
            "{}",
            got[0].2
        );
        for push in [&got[1].2, &got[2].2] {
            assert!(push.contains("a push is one of `body` (text), `image_url` (image), `body` + `image_url` (both)"), "{push}");
        }
        for viber in [&got[3].2, &got[4].2] {
            for shape in crate::content::VIBER_SHAPES {
                assert!(viber.contains(shape), "{viber}");
            }
        }
        assert!(
            got[4]
                .2
                .starts_with("`image_url` + `button` is not a Viber message"),
            "{}",
            got[4].2
        );
        // An SMS is 1,600 characters at most.
        let long = format!(
            r#"[{{"send": {{"channel": "sms", "template": {{"body": "{}"}}}}}}]"#,
            "x".repeat(1601)
        );
        let got = errors(&with_steps(
            r#"{"event": {"name": "added_to_cart"}}"#,
            &long,
        ));
        assert_eq!(got[0].2, "a sms body is at most 1600 characters");
        let ok = format!(
            r#"[{{"send": {{"channel": "sms", "template": {{"body": "{}"}}}}}}]"#,
            "x".repeat(1600)
        );
        validate_json(
            &with_steps(r#"{"event": {"name": "added_to_cart"}}"#, &ok),
            &shop(),
        )
        .unwrap();
    }

    #[test]
    fn empty_steps_and_too_deep_branches_are_refused() {
        assert_eq!(
            errors(&with_steps(r#"{"event": {"name": "payment"}}"#, "[]"))[0].1,
            "steps"
        );
        let mut steps = EMAIL.to_string();
        for _ in 0..MAX_BRANCH_DEPTH {
            steps = format!(
                r#"[{{"branch": {{"if": {{"profile": {{"field": "email", "op": "exists"}}}}, "then": {steps}}}}}]"#
            );
        }
        let errs = errors(&with_steps(r#"{"event": {"name": "payment"}}"#, &steps));
        assert_eq!(errs[0].0, ErrorCode::TooComplex, "{errs:?}");
    }

    #[test]
    fn the_triggers_where_is_checked_by_the_segment_rules_at_the_triggers_path() {
        let json = with_steps(
            r#"{"event": {"name": "purchase_completed", "where": [{"key": "total_price", "op": "gte", "value": "100"}]}}"#,
            EMAIL,
        );
        assert_eq!(errors(&json)[0].1, "trigger.event.where[0].value");
        let ok = with_steps(
            r#"{"event": {"name": "purchase_completed", "where": [{"key": "total_price", "op": "gte", "value": 100}]}}"#,
            EMAIL,
        );
        assert!(validate_json(&ok, &shop())
            .unwrap()
            .trigger_filter
            .is_some());
    }

    #[test]
    fn a_hyphenated_field_code_gets_the_event_model_message() {
        let json = with_steps(
            r#"{"event": {"name": "purchase_completed"}}"#,
            r#"[{"assign_event": {"name": "purchase_completed", "properties": {"store-id": "x"}}}]"#,
        );
        assert!(errors(&json)[0].2.contains("store_id"));
    }
}
