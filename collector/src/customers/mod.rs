//! Customer profiles: the rules a profile upsert must follow, how it merges into the stored
//! profile, and the `customer_profile_updated` event that records each change. Pure; the
//! ClickHouse reads of profiles, identity links and histories are in [`queries`].
//!
//! An upsert merges: an absent field keeps its value; `null` (or `""` for a text field) clears
//! it; `consents` and `attributes` merge key by key, `null` removing a key.

pub mod queries;

use std::collections::{BTreeMap, BTreeSet};

use event_model::rules::{check_context_key, check_context_number, check_context_string};
use event_model::timestamp::format_rfc3339_ms;
use event_model::{ContextValue, Event, EventKind};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::store::rows::{ms_to_datetime, CustomerProfileRow};

/// The event name each profile change is recorded as.
pub const PROFILE_EVENT_NAME: &str = "customer_profile_updated";
/// Longest first or last name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest email, in characters (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Longest phone number, in characters.
pub const MAX_PHONE_CHARS: usize = 32;
/// Most custom attributes one profile holds.
pub const MAX_ATTRIBUTES: usize = 50;
/// Most consent channels one profile holds.
pub const MAX_CONSENTS: usize = 20;
/// Field names of the profile itself; attribute codes may not use them, nor start with
/// `consent_` (the profile event's context key of a consent).
pub const RESERVED_CODES: &[&str] = &[
    "first_name",
    "last_name",
    "email",
    "phone",
    "birthday",
    "changed_fields",
];

/// A field-level error of a profile upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    /// Machine-readable code.
    pub code: &'static str,
    /// The field (`email`, `attributes.tier`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn error(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> ProfileError {
    ProfileError {
        code,
        field: field.into(),
        message: message.into(),
    }
}

/// A profile upsert as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    /// First name.
    #[serde(default, deserialize_with = "present")]
    pub first_name: Option<Option<String>>,
    /// Last name.
    #[serde(default, deserialize_with = "present")]
    pub last_name: Option<Option<String>>,
    /// Email.
    #[serde(default, deserialize_with = "present")]
    pub email: Option<Option<String>>,
    /// Phone.
    #[serde(default, deserialize_with = "present")]
    pub phone: Option<Option<String>>,
    /// `YYYY-MM-DD`.
    #[serde(default, deserialize_with = "present")]
    pub birthday: Option<Option<String>>,
    /// Channel → consent; `null` removes the channel.
    #[serde(default)]
    pub consents: BTreeMap<String, Option<bool>>,
    /// Code → string, number, boolean or `{"datetime": RFC 3339}`; `null` removes the code.
    #[serde(default)]
    pub attributes: BTreeMap<String, Value>,
}

fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A typed attribute value.
#[derive(Debug, Clone, PartialEq)]
enum Attribute {
    Text(String),
    Number(f64),
    Boolean(bool),
    Datetime(i64),
}

fn attribute(code: &str, value: &Value) -> Result<Attribute, ProfileError> {
    let field = format!("attributes.{code}");
    let bad = |why: &str| error("invalid_attribute_value", field.clone(), why.to_string());
    match value {
        Value::String(s) => {
            check_context_string(s)
                .map_err(|_| bad("a string attribute is at most 2048 characters"))?;
            Ok(Attribute::Text(s.clone()))
        }
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or(f64::INFINITY);
            check_context_number(n)
                .map_err(|_| bad("a number attribute is finite and within ±2^53"))?;
            Ok(Attribute::Number(n))
        }
        Value::Bool(b) => Ok(Attribute::Boolean(*b)),
        Value::Object(o) if o.len() == 1 && o.contains_key("datetime") => o["datetime"]
            .as_str()
            .and_then(event_model::timestamp::parse_rfc3339_ms)
            .map(Attribute::Datetime)
            .ok_or_else(|| bad("`datetime` must be an RFC 3339 timestamp such as 2026-11-25T10:00:00Z")),
        _ => Err(bad(
            "an attribute is a string, a number, a boolean, {\"datetime\": \"<RFC 3339>\"} or null (removes it)",
        )),
    }
}

fn text_field(
    field: &'static str,
    value: &Option<Option<String>>,
    check: impl Fn(&str) -> Result<(), ProfileError>,
) -> Result<Option<String>, ProfileError> {
    match value {
        None => Ok(None),
        Some(None) => Ok(Some(String::new())),
        Some(Some(v)) => {
            let v = v.trim();
            if !v.is_empty() {
                check(v)?;
                if v.chars().any(char::is_control) {
                    return Err(error(
                        "invalid_profile_field",
                        field,
                        format!("`{field}` has control characters"),
                    ));
                }
            }
            Ok(Some(v.to_string()))
        }
    }
}

fn name_rule(field: &'static str) -> impl Fn(&str) -> Result<(), ProfileError> {
    move |v| {
        if v.chars().count() > MAX_NAME_CHARS {
            Err(error(
                "invalid_profile_field",
                field,
                format!("`{field}` is longer than {MAX_NAME_CHARS} characters"),
            ))
        } else {
            Ok(())
        }
    }
}

fn email_rule(v: &str) -> Result<(), ProfileError> {
    let ok = v.chars().count() <= MAX_EMAIL_CHARS
        && !v.chars().any(char::is_whitespace)
        && matches!(v.split_once('@'), Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
               && !domain.ends_with('.') && !domain.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(error(
            "invalid_email",
            "email",
            format!(
                "`email` must look like name@example.com, at most {MAX_EMAIL_CHARS} characters"
            ),
        ))
    }
}

fn phone_rule(v: &str) -> Result<(), ProfileError> {
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let ok = v.chars().count() <= MAX_PHONE_CHARS
        && digits >= 3
        && v.chars().enumerate().all(|(i, c)| {
            c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.') || (c == '+' && i == 0)
        });
    if ok {
        Ok(())
    } else {
        Err(error(
            "invalid_phone",
            "phone",
            format!("`phone` must be digits with optional leading +, spaces, dashes, dots and parentheses, at most {MAX_PHONE_CHARS} characters"),
        ))
    }
}

fn birthday(text: &str, today: Date) -> Result<Date, ProfileError> {
    let bad = || {
        error(
            "invalid_birthday",
            "birthday",
            "`birthday` must be a past date written YYYY-MM-DD",
        )
    };
    let date = parse_date(text).ok_or_else(bad)?;
    if date > today || date.year() < 1900 {
        return Err(bad());
    }
    Ok(date)
}

/// A `YYYY-MM-DD` date.
pub fn parse_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<u16>().ok();
    let month = time::Month::try_from(num(5..7)? as u8).ok()?;
    Date::from_calendar_date(i32::from(num(0..4)?), month, num(8..10)? as u8).ok()
}

/// An empty profile of a customer (what a first upsert merges into).
pub fn empty_profile(partner_id: Uuid, customer_id: &str) -> CustomerProfileRow {
    CustomerProfileRow {
        partner_id,
        customer_id: customer_id.into(),
        first_name: String::new(),
        last_name: String::new(),
        email: String::new(),
        phone: String::new(),
        birthday: None,
        consents: Vec::new(),
        attributes_strings: Vec::new(),
        attributes_numbers: Vec::new(),
        attributes_booleans: Vec::new(),
        attributes_datetimes: Vec::new(),
        updated_at: OffsetDateTime::UNIX_EPOCH,
        version: 0,
        is_deleted: 0,
    }
}

fn attributes_of(row: &CustomerProfileRow) -> BTreeMap<String, Attribute> {
    let mut all = BTreeMap::new();
    for (k, v) in &row.attributes_strings {
        all.insert(k.clone(), Attribute::Text(v.clone()));
    }
    for (k, v) in &row.attributes_numbers {
        all.insert(k.clone(), Attribute::Number(*v));
    }
    for (k, v) in &row.attributes_booleans {
        all.insert(k.clone(), Attribute::Boolean(*v));
    }
    for (k, v) in &row.attributes_datetimes {
        all.insert(
            k.clone(),
            Attribute::Datetime((v.unix_timestamp_nanos() / 1_000_000) as i64),
        );
    }
    all
}

fn set_attributes(row: &mut CustomerProfileRow, all: BTreeMap<String, Attribute>) {
    row.attributes_strings.clear();
    row.attributes_numbers.clear();
    row.attributes_booleans.clear();
    row.attributes_datetimes.clear();
    for (k, v) in all {
        match v {
            Attribute::Text(s) => row.attributes_strings.push((k, s)),
            Attribute::Number(n) => row.attributes_numbers.push((k, n)),
            Attribute::Boolean(b) => row.attributes_booleans.push((k, b)),
            Attribute::Datetime(ms) => row.attributes_datetimes.push((k, ms_to_datetime(ms))),
        }
    }
}

/// A merged profile and what changed, as the profile event's context.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The new profile (version and `updated_at` not set yet).
    pub row: CustomerProfileRow,
    /// Changed fields by their context key (`first_name`, `consent_email`, attribute codes),
    /// with the new value (`""` for a cleared one); empty when nothing changed.
    pub changes: BTreeMap<String, ContextValue>,
}

/// Validates an upsert and merges it into `current`. `today` bounds the birthday.
pub fn merge(
    current: &CustomerProfileRow,
    input: &ProfileInput,
    today: Date,
) -> Result<Merged, ProfileError> {
    let mut row = current.clone();
    let mut changes = BTreeMap::new();
    let mut text = |key: &'static str, new: Option<String>, slot: &mut String| {
        if let Some(new) = new {
            if *slot != new {
                changes.insert(key.to_string(), ContextValue::String(new.clone()));
                *slot = new;
            }
        }
    };
    let first = text_field("first_name", &input.first_name, name_rule("first_name"))?;
    let last = text_field("last_name", &input.last_name, name_rule("last_name"))?;
    let email = text_field("email", &input.email, email_rule)?;
    let phone = text_field("phone", &input.phone, phone_rule)?;
    text("first_name", first, &mut row.first_name);
    text("last_name", last, &mut row.last_name);
    text("email", email, &mut row.email);
    text("phone", phone, &mut row.phone);

    if let Some(b) = &input.birthday {
        let new = match b.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) => Some(birthday(t, today)?),
        };
        if new != row.birthday {
            let shown = new
                .map(|d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()))
                .unwrap_or_default();
            changes.insert("birthday".into(), ContextValue::String(shown));
            row.birthday = new;
        }
    }

    let mut consents: BTreeMap<String, bool> = row.consents.iter().cloned().collect();
    for (channel, value) in &input.consents {
        let field = format!("consents.{channel}");
        check_context_key(channel).map_err(|_| {
            error(
                "invalid_consent",
                field.clone(),
                "a consent channel is a code: letter or _ first, then letters, digits, _ (no hyphen), at most 56 characters",
            )
        })?;
        if channel.len() > 56 {
            return Err(error(
                "invalid_consent",
                field,
                "a consent channel is at most 56 characters",
            ));
        }
        let before = consents.get(channel).copied();
        match value {
            Some(v) => consents.insert(channel.clone(), *v),
            None => consents.remove(channel),
        };
        if before != *value {
            let key = format!("consent_{channel}");
            let shown = match value {
                Some(v) => ContextValue::Bool(*v),
                None => ContextValue::String(String::new()),
            };
            changes.insert(key, shown);
        }
    }
    if consents.len() > MAX_CONSENTS {
        return Err(error(
            "too_many_consents",
            "consents",
            format!("a profile holds at most {MAX_CONSENTS} consent channels"),
        ));
    }
    row.consents = consents.into_iter().collect();

    let mut attributes = attributes_of(&row);
    for (code, value) in &input.attributes {
        let field = format!("attributes.{code}");
        if check_context_key(code).is_err()
            || RESERVED_CODES.contains(&code.as_str())
            || code.starts_with("consent_")
        {
            return Err(error(
                "invalid_attribute_code",
                field,
                "an attribute code is letter or _ first, then letters, digits, _ (no hyphen), at most 64 characters, and not a profile field name or consent_*",
            ));
        }
        let new = match value {
            Value::Null => None,
            v => Some(attribute(code, v)?),
        };
        let before = attributes.get(code).cloned();
        if before != new {
            let shown = match &new {
                None => ContextValue::String(String::new()),
                Some(Attribute::Text(s)) => ContextValue::String(s.clone()),
                Some(Attribute::Number(n)) => ContextValue::Number(*n),
                Some(Attribute::Boolean(b)) => ContextValue::Bool(*b),
                Some(Attribute::Datetime(ms)) => ContextValue::String(format_rfc3339_ms(*ms)),
            };
            changes.insert(code.clone(), shown);
        }
        match new {
            Some(v) => attributes.insert(code.clone(), v),
            None => attributes.remove(code),
        };
    }
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(error(
            "too_many_attributes",
            "attributes",
            format!("a profile holds at most {MAX_ATTRIBUTES} attributes"),
        ));
    }
    set_attributes(&mut row, attributes);
    Ok(Merged { row, changes })
}

/// The context of the profile event: `changed_fields` (the changed keys, comma-separated) and
/// each changed key with its new value. At most 1 + 50 + 20 + 5 keys, within the context limit.
pub fn profile_event_context(
    changes: &BTreeMap<String, ContextValue>,
) -> BTreeMap<String, ContextValue> {
    let names: Vec<&str> = changes.keys().map(String::as_str).collect();
    let mut context = changes.clone();
    let mut list = names.join(",");
    // 76 keys of at most 64 characters can exceed a context string: cut at a comma.
    while list.chars().count() > event_model::limits::MAX_CONTEXT_STRING_CHARS {
        let cut = list.rfind(',').unwrap_or(0);
        list.truncate(cut);
    }
    context.insert("changed_fields".into(), ContextValue::String(list));
    context
}

/// The profile event's id: the same change of the same profile version always gets the same id,
/// so a retried upsert whose event was stored but whose profile write failed stores it once.
pub fn profile_event_id(
    partner_id: Uuid,
    customer_id: &str,
    previous_version: u64,
    context: &BTreeMap<String, ContextValue>,
) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(partner_id.as_bytes());
    hash.update(customer_id.as_bytes());
    hash.update([0]);
    hash.update(previous_version.to_be_bytes());
    hash.update(serde_json::to_vec(context).unwrap_or_default());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The profile event as a wire event, to be validated like any other.
pub fn profile_event(
    event_id: Uuid,
    customer_id: &str,
    source: &str,
    now_ms: i64,
    context: BTreeMap<String, ContextValue>,
) -> Event {
    Event {
        event_id: event_id.to_string(),
        kind: EventKind::Customer,
        name: PROFILE_EVENT_NAME.into(),
        source: source.into(),
        customer_id: Some(customer_id.into()),
        anonymous_id: None,
        session_id: None,
        occurred_at: format_rfc3339_ms(now_ms),
        context,
    }
}

/// Keys of a merge's changes, for answers.
pub fn changed_fields(changes: &BTreeMap<String, ContextValue>) -> BTreeSet<String> {
    changes.keys().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn today() -> Date {
        Date::from_calendar_date(2026, time::Month::November, 30).unwrap()
    }

    fn input(v: Value) -> ProfileInput {
        serde_json::from_value(v).unwrap()
    }

    fn empty() -> CustomerProfileRow {
        empty_profile(Uuid::from_u128(1), "c-1")
    }

    #[test]
    fn a_first_upsert_sets_fields_and_reports_each_change() {
        let m = merge(
            &empty(),
            &input(json!({
                "first_name": " Ann ", "email": "ann@example.com", "birthday": "1990-05-01",
                "consents": {"email": true},
                "attributes": {"tier": "gold", "ltv": 120.5, "vip": true,
                               "last_visit": {"datetime": "2026-11-25T10:00:00Z"}}
            })),
            today(),
        )
        .unwrap();
        assert_eq!(m.row.first_name, "Ann");
        assert_eq!(m.row.consents, vec![("email".to_string(), true)]);
        assert_eq!(m.row.attributes_numbers, vec![("ltv".to_string(), 120.5)]);
        assert_eq!(m.row.attributes_datetimes.len(), 1);
        let keys: Vec<&str> = m.changes.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "birthday",
                "consent_email",
                "email",
                "first_name",
                "last_visit",
                "ltv",
                "tier",
                "vip"
            ]
        );
        assert_eq!(
            m.changes["last_visit"],
            ContextValue::String("2026-11-25T10:00:00.000Z".into())
        );
    }

    #[test]
    fn an_upsert_merges_absent_fields_stay_null_clears_and_no_change_reports_nothing() {
        let first = merge(
            &empty(),
            &input(json!({"first_name": "Ann", "phone": "+420 123 456", "attributes": {"tier": "gold"}})),
            today(),
        )
        .unwrap()
        .row;
        let same = merge(&first, &input(json!({"first_name": "Ann"})), today()).unwrap();
        assert!(same.changes.is_empty());
        let cleared = merge(
            &first,
            &input(json!({"phone": null, "attributes": {"tier": null}})),
            today(),
        )
        .unwrap();
        assert_eq!(cleared.row.first_name, "Ann");
        assert_eq!(cleared.row.phone, "");
        assert!(cleared.row.attributes_strings.is_empty());
        assert_eq!(cleared.changes["tier"], ContextValue::String(String::new()));
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (json!({"email": "nope"}), "invalid_email", "email"),
            (json!({"phone": "call me"}), "invalid_phone", "phone"),
            (
                json!({"birthday": "1990-13-01"}),
                "invalid_birthday",
                "birthday",
            ),
            (
                json!({"birthday": "2030-01-01"}),
                "invalid_birthday",
                "birthday",
            ),
            (
                json!({"first_name": "x".repeat(101)}),
                "invalid_profile_field",
                "first_name",
            ),
            (
                json!({"consents": {"e-mail": true}}),
                "invalid_consent",
                "consents.e-mail",
            ),
            (
                json!({"attributes": {"loyalty-tier": "x"}}),
                "invalid_attribute_code",
                "attributes.loyalty-tier",
            ),
            (
                json!({"attributes": {"email": "x"}}),
                "invalid_attribute_code",
                "attributes.email",
            ),
            (
                json!({"attributes": {"tags": ["a"]}}),
                "invalid_attribute_value",
                "attributes.tags",
            ),
            (
                json!({"attributes": {"seen": {"datetime": "yesterday"}}}),
                "invalid_attribute_value",
                "attributes.seen",
            ),
        ];
        for (body, code, field) in cases {
            let e = merge(&empty(), &input(body.clone()), today()).unwrap_err();
            assert_eq!((e.code, e.field.as_str()), (code, field), "{body}");
        }
    }

    #[test]
    fn the_profile_event_id_is_stable_for_the_same_change_and_differs_otherwise() {
        let ctx = profile_event_context(
            &[("email".to_string(), ContextValue::String("a@b.co".into()))].into(),
        );
        assert_eq!(ctx["changed_fields"], ContextValue::String("email".into()));
        let p = Uuid::from_u128(1);
        assert_eq!(
            profile_event_id(p, "c", 5, &ctx),
            profile_event_id(p, "c", 5, &ctx)
        );
        assert_ne!(
            profile_event_id(p, "c", 5, &ctx),
            profile_event_id(p, "c", 6, &ctx)
        );
        assert_ne!(
            profile_event_id(p, "c", 5, &ctx),
            profile_event_id(p, "d", 5, &ctx)
        );
    }
}
