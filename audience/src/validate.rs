//! Validation on save: a parsed definition and the partner's catalogue in, a typed
//! [`Segment`] or every field-level error out.
//!
//! Types come from the catalogue: a declared property's type decides how its values compare
//! (numbers as numbers, datetimes as instants, strings exactly). When the partner accepts
//! undeclared events, an undeclared name is fine and an undeclared key takes the type of its
//! value (a string is compared as text, never guessed to be a datetime).

use event_model::catalog::{EventTypeDef, PropertyDef, PropertyType};
use event_model::rules;
use event_model::timestamp::parse_rfc3339_ms;
use serde_json::Value;

use crate::definition::{
    Condition, DaysSinceLastCondition, EventCondition, LastEventCondition, Period as RawPeriod,
    Predicate, PredicateOp, ProfileCondition,
};
use crate::error::{ErrorCode, FieldError};
use crate::period::{parse_date, Period};
use crate::segment::{
    Comparison, ContextPredicate, EventFilter, EventTest, Node, ProfileField, ProfileTest, Scalar,
    Segment,
};

/// Deepest nesting of combinators and conditions.
pub const MAX_DEPTH: usize = 10;
/// Most nodes (combinators and conditions) in one definition.
pub const MAX_NODES: usize = 200;
/// Most items in one list (`sources`, `where`, an `in` list).
pub const MAX_LIST_ITEMS: usize = 1000;
/// Longest `last_days` period: about ten years.
pub const MAX_LAST_DAYS: u32 = 3660;

/// What validation checks names and keys against: the partner's catalogue and setting.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    /// The partner's properties.
    pub properties: Vec<PropertyDef>,
    /// The partner's event types.
    pub event_types: Vec<EventTypeDef>,
    /// Whether the partner accepts events of undeclared names (and so undeclared keys).
    pub accept_undeclared: bool,
}

impl Catalogue {
    fn property(&self, code: &str) -> Option<&PropertyDef> {
        self.properties.iter().find(|p| p.code == code)
    }

    fn event_type(&self, code: &str) -> Option<&EventTypeDef> {
        self.event_types.iter().find(|t| t.code == code)
    }
}

/// Parses and validates a definition's JSON text.
pub fn validate_json(json: &str, catalogue: &Catalogue) -> Result<Segment, Vec<FieldError>> {
    let def: Condition = serde_json::from_str(json).map_err(|e| {
        vec![FieldError::new(
            ErrorCode::InvalidDefinition,
            "",
            format!("not a segment definition: {e}"),
        )]
    })?;
    validate(&def, catalogue)
}

/// Validates a definition against a catalogue: the typed segment, or every error found.
pub fn validate(def: &Condition, catalogue: &Catalogue) -> Result<Segment, Vec<FieldError>> {
    let mut v = Validator {
        catalogue,
        errors: Vec::new(),
        nodes: 0,
    };
    let root = v.node(def, "", 1);
    match root {
        Some(root) if v.errors.is_empty() => Ok(Segment { root }),
        _ => Err(v.errors),
    }
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

struct Validator<'a> {
    catalogue: &'a Catalogue,
    errors: Vec<FieldError>,
    nodes: usize,
}

impl Validator<'_> {
    fn err(&mut self, code: ErrorCode, path: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(code, path, message));
    }

    fn node(&mut self, def: &Condition, path: &str, depth: usize) -> Option<Node> {
        self.nodes += 1;
        if depth > MAX_DEPTH || self.nodes > MAX_NODES {
            if !self.errors.iter().any(|e| e.code == ErrorCode::TooComplex) {
                self.err(
                    ErrorCode::TooComplex,
                    path,
                    format!(
                        "a definition may nest {MAX_DEPTH} levels and hold {MAX_NODES} conditions"
                    ),
                );
            }
            return None;
        }
        match def {
            Condition::All(children) | Condition::Any(children) => {
                let word = if matches!(def, Condition::All(_)) {
                    "all"
                } else {
                    "any"
                };
                let here = join(path, word);
                if children.is_empty() {
                    self.err(
                        ErrorCode::EmptyGroup,
                        &here,
                        format!("`{word}` needs at least one condition"),
                    );
                    return None;
                }
                let nodes: Vec<Option<Node>> = children
                    .iter()
                    .enumerate()
                    .map(|(i, c)| self.node(c, &format!("{here}[{i}]"), depth + 1))
                    .collect();
                let nodes: Option<Vec<Node>> = nodes.into_iter().collect();
                let nodes = nodes?;
                Some(if word == "all" {
                    Node::All(nodes)
                } else {
                    Node::Any(nodes)
                })
            }
            Condition::Not(inner) => self
                .node(inner, &join(path, "not"), depth + 1)
                .map(|n| Node::Not(Box::new(n))),
            Condition::Event(c) => self.event(c, &join(path, "event")),
            Condition::LastEvent(c) => self.last_event(c, &join(path, "last_event")),
            Condition::DaysSinceLast(c) => self.days_since_last(c, &join(path, "days_since_last")),
            Condition::Profile(c) => self.profile(c, &join(path, "profile")),
        }
    }

    fn event(&mut self, c: &EventCondition, path: &str) -> Option<Node> {
        if c.name.is_none() && c.filter.as_ref().is_none_or(Vec::is_empty) {
            self.err(
                ErrorCode::MissingEventName,
                &join(path, "name"),
                "give an event `name`, a `where` filter, or both",
            );
        }
        let filter = self.filter(c.name.as_deref(), &c.sources, &c.filter, path);
        let (op, value) = match c.count {
            Some(count) => (count.op, count.value),
            None => (crate::definition::CountOp::Gte, 1),
        };
        let period = c
            .period
            .as_ref()
            .map(|p| self.period(p, &join(path, "period")));
        let period = match period {
            Some(None) => return None,
            Some(Some(p)) => Some(p),
            None => None,
        };
        Some(Node::Events(
            filter?,
            EventTest::Count { op, value, period },
        ))
    }

    fn last_event(&mut self, c: &LastEventCondition, path: &str) -> Option<Node> {
        if c.count.is_some() {
            self.err(
                ErrorCode::CountNotAllowed,
                &join(path, "count"),
                "`last_event` looks at one event, the latest; use an `event` condition to count events",
            );
        }
        let filter = self.filter(Some(&c.name), &c.sources, &c.filter, path);
        let period = self.period(&c.period, &join(path, "period"));
        Some(Node::Events(filter?, EventTest::LastIn(period?)))
    }

    fn days_since_last(&mut self, c: &DaysSinceLastCondition, path: &str) -> Option<Node> {
        let filter = self.filter(Some(&c.name), &c.sources, &c.filter, path);
        if c.value > MAX_LAST_DAYS {
            self.err(
                ErrorCode::InvalidValue,
                &join(path, "value"),
                format!("at most {MAX_LAST_DAYS} days"),
            );
            return None;
        }
        Some(Node::Events(
            filter?,
            EventTest::DaysSinceLast {
                op: c.op,
                days: c.value,
            },
        ))
    }

    fn filter(
        &mut self,
        name: Option<&str>,
        sources: &Option<Vec<String>>,
        predicates: &Option<Vec<Predicate>>,
        path: &str,
    ) -> Option<EventFilter> {
        let before = self.errors.len();
        let mut event_type = None;
        if let Some(name) = name {
            let here = join(path, "name");
            if rules::check_event_name(name).is_err() {
                self.err(
                    ErrorCode::InvalidEventName,
                    &here,
                    format!("`{name}` is not an event name: 1-{} characters, no control characters or surrounding spaces", event_model::limits::MAX_NAME_CHARS),
                );
            } else {
                event_type = self.catalogue.event_type(name);
                if event_type.is_none() && !self.catalogue.accept_undeclared {
                    self.err(
                        ErrorCode::UnknownEventType,
                        &here,
                        format!("no event type `{name}`; declare it, or let the partner accept undeclared events"),
                    );
                }
            }
        }
        if let Some(list) = sources {
            let here = join(path, "sources");
            if list.is_empty() {
                self.err(
                    ErrorCode::InvalidSource,
                    &here,
                    "leave `sources` out for every source, or name at least one",
                );
            }
            self.bound_list(list.len(), &here);
            for (i, code) in list.iter().enumerate() {
                if rules::check_source_code(code).is_err() {
                    self.err(
                        ErrorCode::InvalidSource,
                        &format!("{here}[{i}]"),
                        format!("`{code}` is not a source code"),
                    );
                }
            }
        }
        let mut typed = Vec::new();
        if let Some(list) = predicates {
            let here = join(path, "where");
            self.bound_list(list.len(), &here);
            for (i, p) in list.iter().enumerate() {
                if let Some(p) = self.predicate(p, event_type, &format!("{here}[{i}]")) {
                    typed.push(p);
                }
            }
        }
        (self.errors.len() == before).then(|| EventFilter {
            name: name.map(str::to_string),
            sources: sources.clone(),
            predicates: typed,
        })
    }

    fn bound_list(&mut self, len: usize, path: &str) {
        if len > MAX_LIST_ITEMS {
            self.err(
                ErrorCode::TooComplex,
                path,
                format!("at most {MAX_LIST_ITEMS} items"),
            );
        }
    }

    fn predicate(
        &mut self,
        p: &Predicate,
        event_type: Option<&EventTypeDef>,
        path: &str,
    ) -> Option<ContextPredicate> {
        if let Err(code) = rules::check_context_key(&p.key) {
            let message =
                event_model::Violation::new(code, &format!("context.{}", p.key)).message();
            self.err(ErrorCode::InvalidKey, &join(path, "key"), message);
            return None;
        }
        let declared = self.catalogue.property(&p.key).map(|d| d.ty);
        let used_by_type =
            event_type.is_none_or(|t| t.properties.iter().any(|tp| tp.code == p.key));
        let ty = match declared {
            Some(ty) if used_by_type || self.catalogue.accept_undeclared => Some(ty),
            _ if !self.catalogue.accept_undeclared => {
                let message = match event_type {
                    Some(t) if declared.is_some() => {
                        format!("event type `{}` has no property `{}`", t.code, p.key)
                    }
                    _ => format!("no property `{}` in the catalogue", p.key),
                };
                self.err(ErrorCode::UnknownProperty, &join(path, "key"), message);
                return None;
            }
            _ => type_of_value(p.op, p.value.as_ref()),
        };
        let test = self.comparison(ty.map(Operand::Property), p.op, p.value.as_ref(), path)?;
        Some(ContextPredicate {
            key: p.key.clone(),
            ty,
            test,
        })
    }

    fn comparison(
        &mut self,
        ty: Option<Operand>,
        op: PredicateOp,
        value: Option<&Value>,
        path: &str,
    ) -> Option<Comparison> {
        let value_path = join(path, "value");
        let Some(ty) = ty else {
            // Only `exists` on an undeclared key without a value has no type.
            if op != PredicateOp::Exists {
                self.err(
                    ErrorCode::InvalidValue,
                    &value_path,
                    format!("`{}` needs a value", op.as_str()),
                );
                return None;
            }
            if value.is_some() {
                self.err(
                    ErrorCode::InvalidValue,
                    &value_path,
                    "`exists` takes no value",
                );
                return None;
            }
            return Some(Comparison {
                op,
                operands: Vec::new(),
            });
        };
        if !ty.allows(op) {
            self.err(
                ErrorCode::InvalidOp,
                &join(path, "op"),
                format!("`{}` does not apply to a {} value", op.as_str(), ty.name()),
            );
            return None;
        }
        let operands = match (op, value) {
            (PredicateOp::Exists, None) => Vec::new(),
            (PredicateOp::Exists, Some(_)) => {
                self.err(
                    ErrorCode::InvalidValue,
                    &value_path,
                    "`exists` takes no value",
                );
                return None;
            }
            (_, None) => {
                self.err(
                    ErrorCode::InvalidValue,
                    &value_path,
                    format!("`{}` needs a value", op.as_str()),
                );
                return None;
            }
            (PredicateOp::In | PredicateOp::NotIn | PredicateOp::Between, Some(v)) => {
                let Some(items) = v.as_array() else {
                    self.err(
                        ErrorCode::InvalidValue,
                        &value_path,
                        format!("`{}` needs a list", op.as_str()),
                    );
                    return None;
                };
                let want_pair = op == PredicateOp::Between;
                if (want_pair && items.len() != 2) || items.is_empty() {
                    let shape = if want_pair {
                        "[low, high]"
                    } else {
                        "a non-empty list"
                    };
                    self.err(
                        ErrorCode::InvalidValue,
                        &value_path,
                        format!("`{}` needs {shape}", op.as_str()),
                    );
                    return None;
                }
                self.bound_list(items.len(), &value_path);
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.push(self.scalar(ty, item, &format!("{value_path}[{i}]"))?);
                }
                if want_pair && less(&out[1], &out[0]) {
                    self.err(
                        ErrorCode::InvalidValue,
                        &value_path,
                        "`between` needs low ≤ high",
                    );
                    return None;
                }
                out
            }
            (_, Some(v)) => vec![self.scalar(ty, v, &value_path)?],
        };
        Some(Comparison { op, operands })
    }

    fn scalar(&mut self, ty: Operand, value: &Value, path: &str) -> Option<Scalar> {
        let scalar = match (ty, value) {
            (Operand::Property(PropertyType::String), Value::String(s)) => {
                Some(Scalar::Str(s.clone()))
            }
            (Operand::Property(PropertyType::Number), Value::Number(n)) => {
                n.as_f64().map(Scalar::Num)
            }
            (Operand::Property(PropertyType::Boolean), Value::Bool(b)) => Some(Scalar::Bool(*b)),
            (Operand::Property(PropertyType::Datetime), Value::String(s)) => {
                parse_rfc3339_ms(s).map(Scalar::Time)
            }
            (Operand::Date, Value::String(s)) => {
                let date = parse_date(s);
                if date.is_none() {
                    self.err(
                        ErrorCode::InvalidDate,
                        path,
                        format!("`{s}` is not a date such as 2026-11-30"),
                    );
                    return None;
                }
                date.map(Scalar::Date)
            }
            _ => None,
        };
        if scalar.is_none() {
            self.err(
                ErrorCode::TypeMismatch,
                path,
                format!("expected a {} value, got {value}", ty.name()),
            );
        }
        scalar
    }

    fn period(&mut self, p: &RawPeriod, path: &str) -> Option<Period> {
        let date = |v: &mut Self, text: &str, at: &str| {
            let d = parse_date(text);
            if d.is_none() {
                v.err(
                    ErrorCode::InvalidDate,
                    at,
                    format!("`{text}` is not a date such as 2026-11-30"),
                );
            }
            d
        };
        match p {
            RawPeriod::LastDays(n) => {
                if *n == 0 || *n > MAX_LAST_DAYS {
                    self.err(
                        ErrorCode::InvalidPeriod,
                        &join(path, "last_days"),
                        format!("`last_days` is 1 (today) to {MAX_LAST_DAYS}"),
                    );
                    return None;
                }
                Some(Period::LastDays(*n))
            }
            RawPeriod::Between([from, to]) => {
                let here = join(path, "between");
                let from = date(self, from, &format!("{here}[0]"));
                let to = date(self, to, &format!("{here}[1]"));
                let (from, to) = (from?, to?);
                if to < from {
                    self.err(
                        ErrorCode::InvalidPeriod,
                        &here,
                        "the first date must not be after the second",
                    );
                    return None;
                }
                Some(Period::Between(from, to))
            }
            RawPeriod::Since(d) => date(self, d, &join(path, "since")).map(Period::Since),
        }
    }

    fn profile(&mut self, c: &ProfileCondition, path: &str) -> Option<Node> {
        let field_path = join(path, "field");
        let field = match c.field.as_str() {
            "first_name" => ProfileField::FirstName,
            "last_name" => ProfileField::LastName,
            "email" => ProfileField::Email,
            "phone" => ProfileField::Phone,
            "birthday" => ProfileField::Birthday,
            other => {
                let (group, code) = other.split_once('.').unwrap_or((other, ""));
                if !matches!(group, "consents" | "attributes") {
                    self.err(
                        ErrorCode::UnknownProfileField,
                        &field_path,
                        format!("no profile field `{other}`: use first_name, last_name, email, phone, birthday, consents.<channel> or attributes.<code>"),
                    );
                    return None;
                }
                if let Err(code_err) = rules::check_context_key(code) {
                    let message =
                        event_model::Violation::new(code_err, &format!("context.{code}")).message();
                    self.err(ErrorCode::InvalidKey, &field_path, message);
                    return None;
                }
                if group == "consents" {
                    ProfileField::Consent(code.to_string())
                } else {
                    let ty = match c.attribute_type.as_deref() {
                        Some(t) => {
                            match PropertyType::parse(t) {
                                Some(t) => Some(t),
                                None => {
                                    self.err(
                                    ErrorCode::InvalidValue,
                                    &join(path, "type"),
                                    format!("`{t}` is not a type: string, number, boolean or datetime"),
                                );
                                    return None;
                                }
                            }
                        }
                        None => type_of_value(c.op, c.value.as_ref()),
                    };
                    ProfileField::Attribute(code.to_string(), ty)
                }
            }
        };
        if c.attribute_type.is_some() && !matches!(field, ProfileField::Attribute(..)) {
            self.err(
                ErrorCode::InvalidValue,
                &join(path, "type"),
                "`type` applies to `attributes.<code>` only",
            );
            return None;
        }
        let operand = match &field {
            ProfileField::Birthday => Some(Operand::Date),
            ProfileField::Consent(_) => Some(Operand::Property(PropertyType::Boolean)),
            ProfileField::Attribute(_, ty) => ty.map(Operand::Property),
            _ => Some(Operand::Property(PropertyType::String)),
        };
        let test = self.comparison(operand, c.op, c.value.as_ref(), path)?;
        Some(Node::Profile(ProfileTest { field, test }))
    }
}

/// What a value is compared as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operand {
    Property(PropertyType),
    /// A calendar date (`birthday`).
    Date,
}

impl Operand {
    fn name(self) -> &'static str {
        match self {
            Operand::Property(t) => t.as_str(),
            Operand::Date => "date (YYYY-MM-DD)",
        }
    }

    fn allows(self, op: PredicateOp) -> bool {
        use PredicateOp::*;
        match self {
            Operand::Property(PropertyType::String) => {
                matches!(op, Eq | Ne | In | NotIn | Contains | Exists)
            }
            Operand::Property(PropertyType::Number) => !matches!(op, Contains),
            Operand::Property(PropertyType::Boolean) => matches!(op, Eq | Ne | Exists),
            Operand::Property(PropertyType::Datetime) | Operand::Date => {
                matches!(op, Eq | Ne | Gt | Gte | Lt | Lte | Between | Exists)
            }
        }
    }
}

/// The type an undeclared key takes from its value (the first item of a list); `None` when
/// there is no value to look at.
fn type_of_value(op: PredicateOp, value: Option<&Value>) -> Option<PropertyType> {
    let first = match (op, value) {
        (_, Some(Value::Array(items))) => items.first(),
        (_, v) => v,
    };
    match first? {
        Value::String(_) => Some(PropertyType::String),
        Value::Number(_) => Some(PropertyType::Number),
        Value::Bool(_) => Some(PropertyType::Boolean),
        // Anything else is not a scalar: give the type of the first scalar JSON type so the
        // value is refused as a type mismatch with the path of the offending item.
        _ => Some(PropertyType::String),
    }
}

fn less(a: &Scalar, b: &Scalar) -> bool {
    match (a, b) {
        (Scalar::Num(a), Scalar::Num(b)) => a < b,
        (Scalar::Time(a), Scalar::Time(b)) => a < b,
        (Scalar::Date(a), Scalar::Date(b)) => a < b,
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use event_model::catalog::TypeProperty;
    use event_model::EventKind;

    pub(crate) fn shop() -> Catalogue {
        let prop = |code: &str, ty| PropertyDef {
            code: code.into(),
            name: code.into(),
            ty,
        };
        let uses = |codes: &[&str]| {
            codes
                .iter()
                .map(|c| TypeProperty {
                    code: c.to_string(),
                    required: false,
                })
                .collect()
        };
        Catalogue {
            properties: vec![
                prop("category", PropertyType::String),
                prop("points", PropertyType::Number),
                prop("total", PropertyType::Number),
                prop("gift", PropertyType::Boolean),
                prop("paid_at", PropertyType::Datetime),
                prop("name", PropertyType::String),
            ],
            event_types: vec![
                EventTypeDef {
                    code: "product_viewed".into(),
                    name: "Product viewed".into(),
                    kind: EventKind::Customer,
                    properties: uses(&["category", "name"]),
                },
                EventTypeDef {
                    code: "purchase_completed".into(),
                    name: "New purchase".into(),
                    kind: EventKind::Customer,
                    properties: uses(&["points", "total", "gift", "paid_at", "name"]),
                },
            ],
            accept_undeclared: false,
        }
    }

    fn errors(json: &str, catalogue: &Catalogue) -> Vec<(ErrorCode, String)> {
        validate_json(json, catalogue)
            .expect_err("refused")
            .into_iter()
            .map(|e| (e.code, e.path))
            .collect()
    }

    #[test]
    fn the_issue_example_validates_against_the_shop_catalogue() {
        let json = r#"{"all": [
          {"event": {"name": "product_viewed", "sources": ["online_store"],
                     "where": [{"key": "category", "op": "eq", "value": "Jacket"}],
                     "count": {"op": "gte", "value": 1}, "period": {"last_days": 30}}},
          {"not": {"event": {"name": "purchase_completed", "period": {"last_days": 30}}}},
          {"last_event": {"name": "purchase_completed", "period": {"between": ["2026-11-01", "2026-11-30"]}}},
          {"days_since_last": {"name": "purchase_completed", "op": "gte", "value": 14}},
          {"profile": {"field": "birthday", "op": "exists"}}
        ]}"#;
        let segment = validate_json(json, &shop()).unwrap();
        let Node::All(children) = segment.root else {
            panic!()
        };
        assert_eq!(children.len(), 5);
    }

    #[test]
    fn every_error_names_its_field() {
        let json = r#"{"all": [
          {"any": []},
          {"event": {"name": "product_viewd"}},
          {"event": {"name": "purchase_completed", "where": [
              {"key": "points", "op": "gt", "value": "100"},
              {"key": "user-name", "op": "eq", "value": "x"},
              {"key": "gift", "op": "gt", "value": true},
              {"key": "colour", "op": "eq", "value": "red"},
              {"key": "category", "op": "eq", "value": "Jacket"},
              {"key": "total", "op": "between", "value": [10, 5]},
              {"key": "paid_at", "op": "gte", "value": "yesterday"}]}},
          {"last_event": {"name": "purchase_completed", "count": {"op": "gte", "value": 2},
                          "period": {"between": ["2026-11-30", "2026-11-01"]}}},
          {"event": {"name": "purchase_completed", "period": {"since": "2026-13-01"}}},
          {"event": {"name": "purchase_completed", "period": {"last_days": 0}}},
          {"event": {"sources": []}},
          {"profile": {"field": "nickname", "op": "exists"}},
          {"profile": {"field": "consents.e-mail", "op": "eq", "value": true}},
          {"profile": {"field": "email", "op": "exists", "value": "x"}}
        ]}"#;
        let got = errors(json, &shop());
        let want = [
            (ErrorCode::EmptyGroup, "all[0].any"),
            (ErrorCode::UnknownEventType, "all[1].event.name"),
            (ErrorCode::TypeMismatch, "all[2].event.where[0].value"),
            (ErrorCode::InvalidKey, "all[2].event.where[1].key"),
            (ErrorCode::InvalidOp, "all[2].event.where[2].op"),
            (ErrorCode::UnknownProperty, "all[2].event.where[3].key"),
            (ErrorCode::UnknownProperty, "all[2].event.where[4].key"),
            (ErrorCode::InvalidValue, "all[2].event.where[5].value"),
            (ErrorCode::TypeMismatch, "all[2].event.where[6].value"),
            (ErrorCode::CountNotAllowed, "all[3].last_event.count"),
            (ErrorCode::InvalidPeriod, "all[3].last_event.period.between"),
            (ErrorCode::InvalidDate, "all[4].event.period.since"),
            (ErrorCode::InvalidPeriod, "all[5].event.period.last_days"),
            (ErrorCode::MissingEventName, "all[6].event.name"),
            (ErrorCode::InvalidSource, "all[6].event.sources"),
            (ErrorCode::UnknownProfileField, "all[7].profile.field"),
            (ErrorCode::InvalidKey, "all[8].profile.field"),
            (ErrorCode::InvalidValue, "all[9].profile.value"),
        ];
        let want: Vec<(ErrorCode, String)> =
            want.iter().map(|(c, p)| (*c, p.to_string())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_hyphenated_key_gets_the_event_model_message() {
        let errs = validate_json(
            r#"{"event": {"where": [{"key": "user-name", "op": "exists"}]}}"#,
            &shop(),
        )
        .unwrap_err();
        assert!(errs[0].message.contains("user_name"), "{}", errs[0].message);
    }

    #[test]
    fn undeclared_names_and_keys_are_typed_by_their_value_when_the_partner_accepts_them() {
        let mut catalogue = shop();
        catalogue.accept_undeclared = true;
        let segment = validate_json(
            r#"{"event": {"name": "Заказ оформлен", "where": [
                {"key": "colour", "op": "in", "value": ["red", "синий"]},
                {"key": "size", "op": "gte", "value": 42},
                {"key": "anything", "op": "exists"},
                {"key": "category", "op": "eq", "value": "Jacket"}]}}"#,
            &catalogue,
        )
        .unwrap();
        let Node::Events(filter, _) = segment.root else {
            panic!()
        };
        let types: Vec<_> = filter.predicates.iter().map(|p| p.ty).collect();
        assert_eq!(
            types,
            [
                Some(PropertyType::String),
                Some(PropertyType::Number),
                None,
                Some(PropertyType::String)
            ]
        );
        // Mixed types in one list are still refused, at the offending item.
        assert_eq!(
            errors(
                r#"{"event": {"where": [{"key": "colour", "op": "in", "value": ["red", 3]}]}}"#,
                &catalogue
            ),
            [(
                ErrorCode::TypeMismatch,
                "event.where[0].value[1]".to_string()
            )]
        );
    }

    #[test]
    fn a_declared_type_wins_over_the_values_type() {
        let errs = errors(
            r#"{"event": {"where": [{"key": "points", "op": "eq", "value": "150"}]}}"#,
            &Catalogue {
                accept_undeclared: true,
                ..shop()
            },
        );
        assert_eq!(
            errs,
            [(ErrorCode::TypeMismatch, "event.where[0].value".to_string())]
        );
    }

    #[test]
    fn shape_errors_are_reported_as_invalid_definition() {
        let errs = validate_json(r#"{"event": {"name": "x", "cnt": 1}}"#, &shop()).unwrap_err();
        assert_eq!(errs[0].code, ErrorCode::InvalidDefinition);
        assert!(errs[0].message.contains("cnt"));
    }

    #[test]
    fn nesting_beyond_the_limit_is_too_complex() {
        let mut json = r#"{"profile": {"field": "email", "op": "exists"}}"#.to_string();
        for _ in 0..MAX_DEPTH {
            json = format!(r#"{{"not": {json}}}"#);
        }
        assert_eq!(errors(&json, &shop())[0].0, ErrorCode::TooComplex);
    }
}
