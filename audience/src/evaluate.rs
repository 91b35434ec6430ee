//! The reference evaluator: a segment's members computed in memory, the plain way.
//!
//! It states the semantics the compiled SQL must have, and the oracle test runs both on the
//! same random data. It shares the validated [`Segment`] with the compiler but not its method:
//! periods and day counts are decided here by comparing partner-local calendar dates, where the
//! compiler compares instants with precomputed bounds. Made for test-sized data (it scans all
//! events once per customer and condition).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use event_model::catalog::PropertyType;
use event_model::timestamp::parse_rfc3339_ms;
use event_model::{ContextValue, EventKind};
use jiff::civil::Date;

use crate::definition::{CompareOp, CountOp, PredicateOp};
use crate::period::{Clock, Period};
use crate::segment::{
    Comparison, ContextPredicate, EventFilter, EventTest, Node, ProfileField, ProfileTest, Scalar,
    Segment,
};

/// An event as stored (the columns a segment reads).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The idempotency key: copies of a retried event share it.
    pub event_id: String,
    /// Customer or system.
    pub kind: EventKind,
    /// Event name.
    pub name: String,
    /// Source code.
    pub source: String,
    /// `''` when not sent.
    pub customer_id: String,
    /// `''` when not sent.
    pub anonymous_id: String,
    /// `event_time`, Unix milliseconds.
    pub event_time_ms: i64,
    /// Context values by key (a datetime is an RFC 3339 string).
    pub context: BTreeMap<String, ContextValue>,
}

/// A row of `identity_links`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityLink {
    /// The visitor.
    pub anonymous_id: String,
    /// The customer.
    pub customer_id: String,
    /// When; the latest link of an anonymous id wins.
    pub linked_at_ms: i64,
}

/// A custom profile attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// Text.
    Str(String),
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// An instant, Unix milliseconds.
    Time(i64),
}

/// A version of a customer profile (a row of `customer_profiles`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfileRow {
    /// The customer.
    pub customer_id: String,
    /// `''` when unknown.
    pub first_name: String,
    /// `''` when unknown.
    pub last_name: String,
    /// `''` when unknown.
    pub email: String,
    /// `''` when unknown.
    pub phone: String,
    /// The birthday, if known.
    pub birthday: Option<Date>,
    /// Consent per channel.
    pub consents: BTreeMap<String, bool>,
    /// Custom attributes.
    pub attributes: BTreeMap<String, AttributeValue>,
    /// The highest version wins.
    pub version: u64,
    /// A deleted latest version means no profile.
    pub is_deleted: bool,
}

/// What the evaluator reads: one partner's data.
#[derive(Debug, Clone, Default)]
pub struct Data {
    /// Events, retried copies included.
    pub events: Vec<StoredEvent>,
    /// Identity links, several per anonymous id allowed.
    pub links: Vec<IdentityLink>,
    /// Profile versions, several per customer allowed.
    pub profiles: Vec<ProfileRow>,
}

/// The customer ids that match `segment` on `data` at `clock`.
pub fn members(segment: &Segment, data: &Data, clock: &Clock) -> BTreeSet<String> {
    let world = World::new(data);
    world
        .known
        .iter()
        .filter(|c| world.holds(&segment.root, c, clock))
        .cloned()
        .collect()
}

struct World<'a> {
    /// Each customer's events, one per event id.
    events: HashMap<&'a str, Vec<&'a StoredEvent>>,
    /// Each customer's latest, not deleted, profile.
    profiles: HashMap<&'a str, &'a ProfileRow>,
    known: BTreeSet<String>,
}

impl<'a> World<'a> {
    fn new(data: &'a Data) -> World<'a> {
        let mut latest_link: HashMap<&str, &IdentityLink> = HashMap::new();
        for link in &data.links {
            let slot = latest_link.entry(&link.anonymous_id).or_insert(link);
            if link.linked_at_ms > slot.linked_at_ms {
                *slot = link;
            }
        }
        let mut seen = BTreeSet::new();
        let mut events: HashMap<&str, Vec<&StoredEvent>> = HashMap::new();
        for event in &data.events {
            if event.kind != EventKind::Customer || !seen.insert(event.event_id.as_str()) {
                continue;
            }
            let customer = if !event.customer_id.is_empty() {
                event.customer_id.as_str()
            } else {
                match latest_link.get(event.anonymous_id.as_str()) {
                    Some(link) => link.customer_id.as_str(),
                    None => continue,
                }
            };
            events.entry(customer).or_default().push(event);
        }
        let mut latest: HashMap<&str, &ProfileRow> = HashMap::new();
        for row in &data.profiles {
            let slot = latest.entry(&row.customer_id).or_insert(row);
            if row.version > slot.version {
                *slot = row;
            }
        }
        // Known until erased: every customer an event resolves to (their own id, or the
        // customer of a link), every customer a link names and every customer with a profile
        // version, even one whose latest version is a deletion (table `known_customers`).
        let known = events
            .keys()
            .copied()
            .chain(data.links.iter().map(|l| l.customer_id.as_str()))
            .chain(latest.keys().copied())
            .map(str::to_string)
            .collect();
        latest.retain(|_, row| !row.is_deleted);
        World {
            events,
            profiles: latest,
            known,
        }
    }

    fn holds(&self, node: &Node, customer: &str, clock: &Clock) -> bool {
        match node {
            Node::All(children) => children.iter().all(|c| self.holds(c, customer, clock)),
            Node::Any(children) => children.iter().any(|c| self.holds(c, customer, clock)),
            Node::Not(inner) => !self.holds(inner, customer, clock),
            Node::Events(filter, test) => {
                let matching: Vec<&StoredEvent> = self
                    .events
                    .get(customer)
                    .into_iter()
                    .flatten()
                    .copied()
                    .filter(|e| passes(filter, e))
                    .collect();
                let last = matching.iter().map(|e| e.event_time_ms).max();
                match test {
                    EventTest::Count { op, value, period } => {
                        let n = matching
                            .iter()
                            .filter(|e| {
                                period.is_none_or(|p| in_period(clock, &p, e.event_time_ms))
                            })
                            .count() as u64;
                        match op {
                            CountOp::Gte => n >= *value,
                            CountOp::Lte => n <= *value,
                            CountOp::Eq => n == *value,
                        }
                    }
                    EventTest::LastIn(period) => last.is_some_and(|t| in_period(clock, period, t)),
                    EventTest::DaysSinceLast { op, days } => last.is_some_and(|t| {
                        let (k, d) = (clock.days_since(t), i64::from(*days));
                        match op {
                            CompareOp::Eq => k == d,
                            CompareOp::Gt => k > d,
                            CompareOp::Gte => k >= d,
                            CompareOp::Lt => k < d,
                            CompareOp::Lte => k <= d,
                        }
                    }),
                }
            }
            Node::Profile(test) => self
                .profiles
                .get(customer)
                .is_some_and(|p| profile_holds(test, p)),
        }
    }
}

/// Whether an instant is in a period, decided on partner-local dates.
fn in_period(clock: &Clock, period: &Period, ms: i64) -> bool {
    let date = clock.local_date(ms);
    let not_future = ms <= clock.now_ms();
    match *period {
        Period::LastDays(n) => {
            let today = crate::period::day_number(clock.today());
            crate::period::day_number(date) >= today - (i64::from(n) - 1) && not_future
        }
        Period::Between(from, to) => from <= date && date <= to,
        Period::Since(from) => from <= date && not_future,
    }
}

/// Whether one event passes a filter (name, sources and every context predicate). Public for
/// the campaign engine, which judges a triggering event's `where` the same way segments do.
pub fn passes(filter: &EventFilter, event: &StoredEvent) -> bool {
    filter.name.as_ref().is_none_or(|n| *n == event.name)
        && filter
            .sources
            .as_ref()
            .is_none_or(|s| s.contains(&event.source))
        && filter.predicates.iter().all(|p| predicate_holds(p, event))
}

/// A present value, typed.
enum Present {
    Str(String),
    Num(f64),
    Bool(bool),
    /// `None`: a datetime property holding text that is not RFC 3339 (matches only `exists`).
    Time(Option<i64>),
    Date(Date),
}

fn predicate_holds(p: &ContextPredicate, event: &StoredEvent) -> bool {
    let value = event.context.get(&p.key);
    let present = match (p.ty, value) {
        (None, v) => return v.is_some(),
        (Some(PropertyType::String), Some(ContextValue::String(s))) => Present::Str(s.clone()),
        (Some(PropertyType::Datetime), Some(ContextValue::String(s))) => {
            Present::Time(parse_rfc3339_ms(s))
        }
        (Some(PropertyType::Number), Some(ContextValue::Number(n))) => Present::Num(*n),
        (Some(PropertyType::Boolean), Some(ContextValue::Bool(b))) => Present::Bool(*b),
        // Absent, or stored under another type (another map in ClickHouse): not present.
        _ => return false,
    };
    compare(&present, &p.test)
}

/// Whether `test` holds for the value ClickHouse reads for a key a context map lacks (`''`, `0`,
/// `false`; for a datetime, `NULL` from parsing `''`, which no comparison holds for). When it
/// does not, a compiled predicate needs no separate presence check (see `compile`).
pub(crate) fn holds_for_missing_key(ty: PropertyType, test: &Comparison) -> bool {
    let default = match ty {
        PropertyType::String => Present::Str(String::new()),
        PropertyType::Number => Present::Num(0.0),
        PropertyType::Boolean => Present::Bool(false),
        PropertyType::Datetime => Present::Time(None),
    };
    compare(&default, test)
}

fn compare(value: &Present, test: &Comparison) -> bool {
    if test.op == PredicateOp::Exists {
        return true;
    }
    let ord = |s: &Scalar| -> Option<std::cmp::Ordering> {
        match (value, s) {
            (Present::Str(a), Scalar::Str(b)) => Some(a.as_str().cmp(b.as_str())),
            (Present::Num(a), Scalar::Num(b)) => a.partial_cmp(b),
            (Present::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
            (Present::Time(Some(a)), Scalar::Time(b)) => Some(a.cmp(b)),
            (Present::Date(a), Scalar::Date(b)) => Some(a.cmp(b)),
            _ => None,
        }
    };
    use std::cmp::Ordering::*;
    let first = || ord(&test.operands[0]);
    match test.op {
        PredicateOp::Eq => first() == Some(Equal),
        PredicateOp::Ne => matches!(first(), Some(Less | Greater)),
        PredicateOp::Gt => first() == Some(Greater),
        PredicateOp::Gte => matches!(first(), Some(Greater | Equal)),
        PredicateOp::Lt => first() == Some(Less),
        PredicateOp::Lte => matches!(first(), Some(Less | Equal)),
        PredicateOp::Between => {
            matches!(first(), Some(Greater | Equal))
                && matches!(ord(&test.operands[1]), Some(Less | Equal))
        }
        PredicateOp::In => test.operands.iter().any(|s| ord(s) == Some(Equal)),
        PredicateOp::NotIn => test
            .operands
            .iter()
            .all(|s| matches!(ord(s), Some(Less | Greater))),
        PredicateOp::Contains => match (value, &test.operands[0]) {
            (Present::Str(a), Scalar::Str(b)) => a.contains(b.as_str()),
            _ => false,
        },
        PredicateOp::Exists => true,
    }
}

fn profile_holds(test: &ProfileTest, profile: &ProfileRow) -> bool {
    let present = match &test.field {
        ProfileField::Birthday => profile.birthday.map(Present::Date),
        ProfileField::Consent(channel) => profile.consents.get(channel).map(|b| Present::Bool(*b)),
        ProfileField::Attribute(code, ty) => match (ty, profile.attributes.get(code)) {
            (None, v) => return v.is_some(),
            (Some(PropertyType::String), Some(AttributeValue::Str(s))) => {
                Some(Present::Str(s.clone()))
            }
            (Some(PropertyType::Number), Some(AttributeValue::Num(n))) => Some(Present::Num(*n)),
            (Some(PropertyType::Boolean), Some(AttributeValue::Bool(b))) => Some(Present::Bool(*b)),
            (Some(PropertyType::Datetime), Some(AttributeValue::Time(t))) => {
                Some(Present::Time(Some(*t)))
            }
            _ => None,
        },
        field => {
            let text = match field {
                ProfileField::FirstName => &profile.first_name,
                ProfileField::LastName => &profile.last_name,
                ProfileField::Email => &profile.email,
                _ => &profile.phone,
            };
            // '' is "unknown": absent for exists/ne/not_in, but `eq ""` still equals it.
            match test.test.op {
                PredicateOp::Exists | PredicateOp::Ne | PredicateOp::NotIn if text.is_empty() => {
                    None
                }
                _ => Some(Present::Str(text.clone())),
            }
        }
    };
    present.is_some_and(|v| compare(&v, &test.test))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{validate_json, Catalogue};

    fn ms(text: &str) -> i64 {
        parse_rfc3339_ms(text).unwrap_or_else(|| panic!("{text}"))
    }

    const DAY: i64 = 86_400_000;

    struct Fixture {
        data: Data,
        clock: Clock,
        next_id: u32,
    }

    impl Fixture {
        fn new(zone: &str, now: &str) -> Fixture {
            Fixture {
                data: Data::default(),
                clock: Clock::new(zone, ms(now)).unwrap(),
                next_id: 0,
            }
        }

        /// Adds an event of `customer` (or, with `anon:` in front, of a visitor) and returns its id.
        fn event(
            &mut self,
            who: &str,
            name: &str,
            source: &str,
            at: i64,
            context: &[(&str, ContextValue)],
        ) -> String {
            self.next_id += 1;
            let (customer_id, anonymous_id) = match who.strip_prefix("anon:") {
                Some(anon) => (String::new(), anon.to_string()),
                None => (who.to_string(), String::new()),
            };
            let event_id = format!("00000000-0000-7000-8000-{:012}", self.next_id);
            self.data.events.push(StoredEvent {
                event_id: event_id.clone(),
                kind: EventKind::Customer,
                name: name.into(),
                source: source.into(),
                customer_id,
                anonymous_id,
                event_time_ms: at,
                context: context
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            });
            event_id
        }

        fn members(&self, json: &str) -> Vec<String> {
            let catalogue = Catalogue {
                accept_undeclared: true,
                ..crate::validate::tests::shop()
            };
            let segment = validate_json(json, &catalogue).unwrap_or_else(|e| panic!("{e:?}"));
            members(&segment, &self.data, &self.clock)
                .into_iter()
                .collect()
        }
    }

    fn s(text: &str) -> ContextValue {
        ContextValue::String(text.into())
    }

    #[test]
    fn viewed_the_jacket_category_in_the_online_store_at_least_once_in_the_last_30_days() {
        let mut f = Fixture::new("Europe/Moscow", "2026-11-30T09:00:00Z");
        // Day 1 of 30 is 2026-11-01, which starts at 2026-10-31T21:00Z in Moscow.
        let jacket = [("category", s("Jacket"))];
        f.event(
            "in_first_minute",
            "product_viewed",
            "online_store",
            ms("2026-10-31T21:00:00Z"),
            &jacket,
        );
        f.event(
            "in_today",
            "product_viewed",
            "online_store",
            ms("2026-11-30T08:00:00Z"),
            &jacket,
        );
        f.event(
            "out_31_days_ago",
            "product_viewed",
            "online_store",
            ms("2026-11-30T08:00:00Z") - 31 * DAY,
            &jacket,
        );
        f.event(
            "out_just_before",
            "product_viewed",
            "online_store",
            ms("2026-10-31T20:59:59.999Z"),
            &jacket,
        );
        f.event(
            "out_mobile_only",
            "product_viewed",
            "mobile_app",
            ms("2026-11-20T10:00:00Z"),
            &jacket,
        );
        f.event(
            "out_other_category",
            "product_viewed",
            "online_store",
            ms("2026-11-20T10:00:00Z"),
            &[("category", s("Jackets"))],
        );
        f.event(
            "out_in_the_future",
            "product_viewed",
            "online_store",
            ms("2026-11-30T09:00:00.001Z"),
            &jacket,
        );
        let json = r#"{"event": {"name": "product_viewed", "sources": ["online_store"],
            "where": [{"key": "category", "op": "eq", "value": "Jacket"}],
            "count": {"op": "gte", "value": 1}, "period": {"last_days": 30}}}"#;
        assert_eq!(f.members(json), ["in_first_minute", "in_today"]);
    }

    #[test]
    fn collected_more_than_100_points_in_one_purchase_is_per_event_not_a_sum() {
        let mut f = Fixture::new("UTC", "2026-11-30T09:00:00Z");
        let t = ms("2026-11-20T10:00:00Z");
        f.event(
            "one_of_150",
            "purchase_completed",
            "online_store",
            t,
            &[("points", ContextValue::Number(150.0))],
        );
        f.event(
            "two_of_60",
            "purchase_completed",
            "online_store",
            t,
            &[("points", ContextValue::Number(60.0))],
        );
        f.event(
            "two_of_60",
            "purchase_completed",
            "online_store",
            t + 1,
            &[("points", ContextValue::Number(60.0))],
        );
        f.event(
            "exactly_100",
            "purchase_completed",
            "online_store",
            t,
            &[("points", ContextValue::Number(100.0))],
        );
        let json = r#"{"event": {"name": "purchase_completed", "where": [{"key": "points", "op": "gt", "value": 100}]}}"#;
        assert_eq!(f.members(json), ["one_of_150"]);
    }

    #[test]
    fn name_eq_bag_matches_the_exact_value_on_any_event_and_never_a_missing_key() {
        let mut f = Fixture::new("UTC", "2026-11-30T09:00:00Z");
        let t = ms("2026-11-20T10:00:00Z");
        f.event(
            "bag",
            "product_viewed",
            "online_store",
            t,
            &[("name", s("Bag"))],
        );
        f.event(
            "bag_in_a_cart",
            "cart_updated",
            "mobile_app",
            t,
            &[("name", s("Bag"))],
        );
        f.event(
            "bags",
            "product_viewed",
            "online_store",
            t,
            &[("name", s("Bags"))],
        );
        f.event(
            "lowercase",
            "product_viewed",
            "online_store",
            t,
            &[("name", s("bag"))],
        );
        f.event(
            "no_key",
            "product_viewed",
            "online_store",
            t,
            &[("category", s("Bag"))],
        );
        f.event(
            "azbuka",
            "product_viewed",
            "online_store",
            t,
            &[("name", s("Азбука"))],
        );
        let bag = r#"{"event": {"where": [{"key": "name", "op": "eq", "value": "Bag"}]}}"#;
        assert_eq!(f.members(bag), ["bag", "bag_in_a_cart"]);
        let azbuka = r#"{"event": {"where": [{"key": "name", "op": "eq", "value": "Азбука"}]}}"#;
        assert_eq!(f.members(azbuka), ["azbuka"]);
        // ne means "has the key, with another value": the customer without the key is not in.
        let not_bag = r#"{"event": {"where": [{"key": "name", "op": "ne", "value": "Bag"}]}}"#;
        assert_eq!(f.members(not_bag), ["azbuka", "bags", "lowercase"]);
    }

    #[test]
    fn count_eq_0_means_never_among_known_customers() {
        let mut f = Fixture::new("UTC", "2026-11-30T09:00:00Z");
        let t = ms("2026-11-20T10:00:00Z");
        f.event("buyer", "purchase_completed", "online_store", t, &[]);
        f.event("browser", "product_viewed", "online_store", t, &[]);
        f.data.profiles.push(ProfileRow {
            customer_id: "profile_only".into(),
            version: 1,
            ..ProfileRow::default()
        });
        f.data.profiles.push(ProfileRow {
            customer_id: "deleted".into(),
            version: 1,
            first_name: "Ann".into(),
            ..ProfileRow::default()
        });
        f.data.profiles.push(ProfileRow {
            customer_id: "deleted".into(),
            version: 2,
            is_deleted: true,
            ..ProfileRow::default()
        });
        let never =
            r#"{"event": {"name": "purchase_completed", "count": {"op": "eq", "value": 0}}}"#;
        // A customer whose profile's latest version is a deletion stays known (only erasure,
        // which removes every row of theirs, makes a customer unknown), but has no profile.
        assert_eq!(f.members(never), ["browser", "deleted", "profile_only"]);
        let named = r#"{"profile": {"field": "first_name", "op": "exists"}}"#;
        assert!(f.members(named).is_empty());
        let not = r#"{"not": {"event": {"name": "purchase_completed"}}}"#;
        assert_eq!(f.members(not), f.members(never));
    }

    #[test]
    fn last_event_between_dates_looks_at_the_latest_event_only() {
        let mut f = Fixture::new("Europe/Moscow", "2026-12-15T09:00:00Z");
        f.event(
            "last_in_november",
            "purchase_completed",
            "online_store",
            ms("2026-11-05T10:00:00Z"),
            &[],
        );
        f.event(
            "last_in_november",
            "purchase_completed",
            "online_store",
            ms("2026-11-30T20:59:59Z"),
            &[],
        );
        f.event(
            "again_in_december",
            "purchase_completed",
            "online_store",
            ms("2026-11-10T10:00:00Z"),
            &[],
        );
        f.event(
            "again_in_december",
            "purchase_completed",
            "online_store",
            ms("2026-12-02T10:00:00Z"),
            &[],
        );
        // 2026-11-30T21:00Z is already December 1st in Moscow.
        f.event(
            "moscow_december",
            "purchase_completed",
            "online_store",
            ms("2026-11-30T21:00:00Z"),
            &[],
        );
        let json = r#"{"last_event": {"name": "purchase_completed", "period": {"between": ["2026-11-01", "2026-11-30"]}}}"#;
        assert_eq!(f.members(json), ["last_in_november"]);
    }

    #[test]
    fn days_since_last_counts_new_york_calendar_days_across_the_end_of_daylight_saving() {
        // Clocks went back on 2026-11-01 in New York; now is 2026-11-10 10:00 EST.
        let mut f = Fixture::new("America/New_York", "2026-11-10T15:00:00Z");
        // 2026-10-27 23:30 EDT: 14 calendar days ago, though only 13.5 × 24 hours.
        f.event(
            "fourteen_days",
            "purchase_completed",
            "online_store",
            ms("2026-10-28T03:30:00Z"),
            &[],
        );
        // 2026-10-28 00:30 EDT: 13 calendar days ago.
        f.event(
            "thirteen_days",
            "purchase_completed",
            "online_store",
            ms("2026-10-28T04:30:00Z"),
            &[],
        );
        f.event(
            "no_purchase",
            "product_viewed",
            "online_store",
            ms("2026-10-01T04:30:00Z"),
            &[],
        );
        let json =
            r#"{"days_since_last": {"name": "purchase_completed", "op": "gte", "value": 14}}"#;
        assert_eq!(f.members(json), ["fourteen_days"]);
        let json =
            r#"{"days_since_last": {"name": "purchase_completed", "op": "eq", "value": 13}}"#;
        assert_eq!(f.members(json), ["thirteen_days"]);
    }

    #[test]
    fn what_a_visitor_did_before_logging_in_counts_for_the_customer_after_the_link() {
        let mut f = Fixture::new("UTC", "2026-11-30T09:00:00Z");
        let t = ms("2026-11-20T10:00:00Z");
        f.event("anon:v1", "product_viewed", "online_store", t, &[]);
        f.event("anon:v2", "product_viewed", "online_store", t, &[]);
        f.event("anon:v3", "product_viewed", "online_store", t, &[]);
        let json = r#"{"event": {"name": "product_viewed"}}"#;
        assert!(f.members(json).is_empty(), "no link yet");
        let link = |anon: &str, customer: &str, at: i64| IdentityLink {
            anonymous_id: anon.into(),
            customer_id: customer.into(),
            linked_at_ms: at,
        };
        f.data.links.push(link("v1", "alice", t + DAY));
        // v2 was linked to bob, then to carol: the latest link wins.
        f.data.links.push(link("v2", "carol", t + 2 * DAY));
        f.data.links.push(link("v2", "bob", t + DAY));
        assert_eq!(f.members(json), ["alice", "carol"]);
    }

    #[test]
    fn a_retried_event_counts_once_and_system_events_belong_to_nobody() {
        let mut f = Fixture::new("UTC", "2026-11-30T09:00:00Z");
        let t = ms("2026-11-20T10:00:00Z");
        f.event("once_retried", "purchase_completed", "online_store", t, &[]);
        let copy = f.data.events[0].clone();
        f.data.events.push(copy);
        f.event("twice", "purchase_completed", "online_store", t, &[]);
        f.event("twice", "purchase_completed", "online_store", t, &[]);
        f.event("system", "purchase_completed", "online_store", t, &[]);
        f.data.events.last_mut().unwrap().kind = EventKind::System;
        let json =
            r#"{"event": {"name": "purchase_completed", "count": {"op": "gte", "value": 2}}}"#;
        assert_eq!(f.members(json), ["twice"]);
        let json =
            r#"{"event": {"name": "purchase_completed", "count": {"op": "eq", "value": 1}}}"#;
        assert_eq!(f.members(json), ["once_retried"]);
    }

    #[test]
    fn datetimes_compare_as_instants_and_numbers_as_numbers() {
        let mut f = Fixture::new("UTC", "2026-11-30T09:00:00Z");
        let t = ms("2026-11-20T10:00:00Z");
        f.event(
            "utc",
            "purchase_completed",
            "online_store",
            t,
            &[("paid_at", s("2026-11-25T10:00:00.000Z"))],
        );
        f.event(
            "moscow",
            "purchase_completed",
            "online_store",
            t,
            &[("paid_at", s("2026-11-25T13:00:00+03:00"))],
        );
        f.event(
            "later",
            "purchase_completed",
            "online_store",
            t,
            &[("paid_at", s("2026-11-25T10:00:00.001Z"))],
        );
        f.event(
            "integer",
            "purchase_completed",
            "online_store",
            t,
            &[("total", ContextValue::Number(100.0))],
        );
        let same_instant = r#"{"event": {"where": [{"key": "paid_at", "op": "eq", "value": "2026-11-25T12:00:00+02:00"}]}}"#;
        assert_eq!(f.members(same_instant), ["moscow", "utc"]);
        let after = r#"{"event": {"where": [{"key": "paid_at", "op": "gt", "value": "2026-11-25T10:00:00Z"}]}}"#;
        assert_eq!(f.members(after), ["later"]);
        let hundred = r#"{"event": {"where": [{"key": "total", "op": "eq", "value": 100.0}]}}"#;
        assert_eq!(f.members(hundred), ["integer"]);
    }

    #[test]
    fn profile_conditions_read_the_latest_version() {
        let mut f = Fixture::new("UTC", "2026-11-30T09:00:00Z");
        let mut old = ProfileRow {
            customer_id: "ann".into(),
            email: "ann@example.com".into(),
            version: 1,
            ..ProfileRow::default()
        };
        old.consents.insert("email".into(), true);
        let mut new = old.clone();
        new.version = 2;
        new.consents.insert("email".into(), false);
        new.attributes
            .insert("tier".into(), AttributeValue::Str("gold".into()));
        f.data.profiles.extend([new, old]);
        let consent = r#"{"profile": {"field": "consents.email", "op": "eq", "value": true}}"#;
        assert!(f.members(consent).is_empty());
        let gold = r#"{"profile": {"field": "attributes.tier", "op": "in", "value": ["gold", "platinum"]}}"#;
        assert_eq!(f.members(gold), ["ann"]);
        let no_phone = r#"{"not": {"profile": {"field": "phone", "op": "exists"}}}"#;
        assert_eq!(f.members(no_phone), ["ann"]);
    }
}
