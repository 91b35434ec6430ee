//! The one place a segment becomes ClickHouse SQL.
//!
//! A validated [`Segment`] and a [`Clock`] in; SQL text and its server-side parameters out. Every
//! value (names, sources, keys, operands, instants) travels as a `{pN:Type}` parameter; the
//! only words in the SQL text are the identifiers and literals written below. The partner is the
//! parameter `{partner:UUID}`, which the caller binds (it is not in [`Query::params`]).
//!
//! Who a customer is:
//! - an event's customer is its `customer_id`, else the customer its `anonymous_id` is linked to
//!   (the latest link in `identity_links` wins, read with `argMax`, so unmerged rows are fine);
//!   an anonymous id without a link, and every `system` event, belong to nobody;
//! - a profile is the latest version per customer (`FINAL`), unless that version is deleted;
//! - the universe (what `not`, `count eq 0` and `count lte N` are taken against) is the
//!   partner's known customers, table `known_customers`: every customer id an event carried or an
//!   identity link names, and every customer with a profile version, until erased (also after
//!   retention removed their events).
//!   A customer id never seen anywhere is in no segment.
//!
//! Retried events are counted once: counts are `uniqExact(event_id)`, true before ClickHouse
//! merges the copies.

use event_model::catalog::PropertyType;
use event_model::timestamp::format_rfc3339_ms;
use serde::Serialize;

use crate::definition::{CountOp, PredicateOp};
use crate::period::{Clock, Range};
use crate::segment::{
    Comparison, ContextPredicate, EventFilter, EventTest, Node, ProfileField, ProfileTest, Scalar,
    Segment,
};
use crate::share::Share;

/// A query and its parameters (besides `partner`).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The SQL text.
    pub sql: String,
    /// Parameters in order of first use: bind each with `.param(name, &value)`.
    pub params: Vec<Param>,
}

/// A server-side parameter `{name:ty}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Param {
    /// `p0`, `p1`, ….
    pub name: String,
    /// The ClickHouse type in the SQL text.
    pub ty: &'static str,
    /// The value.
    pub value: ParamValue,
}

/// A parameter's value; serializes to what the `clickhouse` crate's `.param()` expects.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// `String`, and instants and dates as text (`2026-11-30 21:00:00.000`, `2026-11-30`).
    Str(String),
    /// `Float64`.
    Float(f64),
    /// `UInt64` / `UInt32`.
    UInt(u64),
    /// `Bool`.
    Bool(bool),
    /// `Array(String)`.
    Strs(Vec<String>),
    /// `Array(Float64)`.
    Floats(Vec<f64>),
}

/// The set of member customer ids: one column, `customer_id`, in no particular order.
pub fn members(segment: &Segment, clock: &Clock) -> Query {
    let mut c = Compiler::new(clock);
    let (from, filter) = c.scope(&segment.root);
    let filter = filter.map(|f| format!("\nWHERE {f}")).unwrap_or_default();
    c.finish(format!("SELECT customer_id\nFROM {from}{filter}"))
}

/// The number of members: one row, one column, `members` (UInt64).
pub fn member_count(segment: &Segment, clock: &Clock) -> Query {
    let mut c = Compiler::new(clock);
    let (from, filter) = c.scope(&segment.root);
    let filter = filter.map(|f| format!("\nWHERE {f}")).unwrap_or_default();
    c.finish(format!("SELECT count() AS members\nFROM {from}{filter}"))
}

/// One page of members in `customer_id` order (byte order), after the id `after` (keyset
/// pagination: pass the last id of the previous page), at most `limit` ids.
pub fn member_page(segment: &Segment, clock: &Clock, after: Option<&str>, limit: u32) -> Query {
    member_share_page(segment, clock, after, limit, Share::ALL)
}

/// [`member_page`] restricted to the members in `share` ([`crate::share`]: the predicate
/// `xxHash64(customer_id) % N = k`, with `N` and `k` bound): a campaign engine's share of a
/// system event's audience.
pub fn member_share_page(
    segment: &Segment,
    clock: &Clock,
    after: Option<&str>,
    limit: u32,
    share: Share,
) -> Query {
    let mut c = Compiler::new(clock);
    let (from, filter) = c.scope_parenthesized(&segment.root);
    let after = after.map(|id| {
        format!(
            "customer_id > {}",
            c.param("String", ParamValue::Str(id.to_string()))
        )
    });
    let share = (share.count > 1).then(|| {
        format!(
            "xxHash64(customer_id) % {} = {}",
            c.param("UInt32", ParamValue::UInt(u64::from(share.count))),
            c.param("UInt32", ParamValue::UInt(u64::from(share.index)))
        )
    });
    let conditions: Vec<String> = filter.into_iter().chain(after).chain(share).collect();
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("\nWHERE {}", conditions.join("\n  AND "))
    };
    let limit = c.param("UInt32", ParamValue::UInt(u64::from(limit)));
    c.finish(format!(
        "SELECT customer_id\nFROM {from}{filter}\nORDER BY customer_id\nLIMIT {limit}"
    ))
}

/// Members per source, for previews: one row per source, `source` and `members` (UInt64), in
/// source order. A source's `members` are the members with at least one *matching event* from
/// it; a member is counted under every source it has one from, so the rows may add up to more
/// than the member count, and a member without matching events (a profile-only condition, or
/// only `count eq 0`) is under no source.
///
/// The matching events of a definition are the events its conditions look at, outside any
/// `not`: an `event` condition's name, sources and `where` within its period (all time without
/// one), a `last_event` condition's within its period, a `days_since_last` condition's over all
/// time. `None` when no condition outside a `not` looks at events (nothing to break down).
pub fn member_count_by_source(segment: &Segment, clock: &Clock) -> Option<Query> {
    let mut looked_at = Vec::new();
    positive_event_conditions(&segment.root, &mut looked_at);
    if looked_at.is_empty() {
        return None;
    }
    let mut c = Compiler::new(clock);
    let filter = c.node(&segment.root, 1);
    let matching: Vec<String> = looked_at
        .into_iter()
        .map(|(filter, test)| {
            let mut conditions = c.filter(filter);
            let range = match test {
                EventTest::Count {
                    period: Some(period),
                    ..
                } => Some(clock.range(period)),
                EventTest::LastIn(period) => Some(clock.range(period)),
                EventTest::Count { period: None, .. } | EventTest::DaysSinceLast { .. } => None,
            };
            if let Some(range) = range {
                conditions.extend(c.range("event_time", range));
            }
            if conditions.is_empty() {
                "true".to_string()
            } else {
                format!("({})", conditions.join(" AND "))
            }
        })
        .collect();
    // One condition for the events any of them looks at.
    let matching = format!(
        "(\n{}{}\n{})",
        pad(3),
        matching.join(&format!("\n{}OR ", pad(3))),
        pad(2)
    );
    Some(c.finish(format!(
        "SELECT source, uniqExact(customer) AS members\nFROM (\n{rows}\n)\nWHERE customer IN (\n{p1}SELECT customer_id\n{p1}FROM customers\n{p1}WHERE {filter}\n)\nGROUP BY source\nORDER BY source",
        rows = customer_events(&EventRead::events(vec![matching]), &["source"], 1),
        p1 = pad(1),
    )))
}

/// The event conditions outside any `not`, in definition order.
fn positive_event_conditions<'s>(node: &'s Node, out: &mut Vec<(&'s EventFilter, &'s EventTest)>) {
    match node {
        Node::All(children) | Node::Any(children) => {
            for child in children {
                positive_event_conditions(child, out);
            }
        }
        Node::Events(filter, test) => out.push((filter, test)),
        Node::Not(_) | Node::Profile(_) => {}
    }
}

/// Whether the test counts events (needs event ids: copies of a retried event count once),
/// rather than asking whether there is one or when the last was.
fn counts_events(test: &EventTest) -> bool {
    matches!(test, EventTest::Count { op, value, .. }
        if !matches!((op, value), (CountOp::Gte, 0 | 1) | (CountOp::Eq, 0)))
}

/// The key whose index rows (`event_context_strings`) hold exactly the events passing the
/// filter's `where`: every predicate is `eq` / `in` on that one string key, and none holds for
/// an event without the key (the index has no row for a missing key). `None` otherwise (no
/// predicate, several keys, other types or operators): the events table is read.
fn indexed_key(filter: &EventFilter) -> Option<&str> {
    let first = filter.predicates.first()?;
    let indexable = |p: &ContextPredicate| {
        p.key == first.key
            && p.ty == Some(PropertyType::String)
            && matches!(p.test.op, PredicateOp::Eq | PredicateOp::In)
            && !crate::evaluate::holds_for_missing_key(PropertyType::String, &p.test)
    };
    filter
        .predicates
        .iter()
        .all(indexable)
        .then_some(first.key.as_str())
}

/// The common table expressions every query starts with: the known customers and the latest
/// profiles. Events are read by each condition on its own (see [`Compiler::events`]), so each
/// reads only the events it looks at, through the events table's sort order where it can.
const PREAMBLE: &str = "\
WITH
    customers AS (
        -- the partner's known customers, kept by ClickHouse (migration 0007)
        SELECT DISTINCT customer_id
        FROM known_customers
        WHERE partner_id = {partner:UUID}
    ),
    profiles AS (
        -- the latest version of each profile, unless it is deleted
        SELECT *
        FROM customer_profiles FINAL
        WHERE partner_id = {partner:UUID}
    )
";

/// `WHERE` of the events of the partner that pass `conditions`, with `own` (whether the event
/// carries a customer id or only an anonymous id) first. System events carry neither id
/// (`event-model` refuses them), so these are customer events only.
fn event_where(conditions: &[String], own: bool, level: usize) -> String {
    let ids = if own {
        "customer_id != ''"
    } else {
        "customer_id = '' AND anonymous_id != ''"
    };
    let mut sql = format!("WHERE partner_id = {{partner:UUID}} AND {ids}");
    for condition in conditions {
        sql.push_str(&format!("\n{}  AND {condition}", pad(level)));
    }
    sql
}

/// The customers with at least one event passing `conditions`: the customer ids such events
/// carry, and the customers their anonymous ids are linked to (the latest link wins, read with
/// `argMax`, so unmerged link rows are fine). Each part reads only the matching events; the
/// links are read by anonymous id, their sort key.
fn event_customers(read: &EventRead, level: usize) -> String {
    let p = pad(level);
    let q = pad(level + 1);
    let table = read.table;
    format!(
        "SELECT customer_id\n{p}FROM {table}\n{p}{own}\n{p}UNION ALL\n{p}SELECT argMax(customer_id, linked_at)\n{p}FROM identity_links\n{p}WHERE partner_id = {{partner:UUID}} AND anonymous_id IN (\n{q}SELECT anonymous_id\n{q}FROM {table}\n{q}{anonymous}\n{p})\n{p}GROUP BY anonymous_id",
        own = event_where(&read.conditions, true, level),
        anonymous = event_where(&read.conditions, false, level + 1),
    )
}

/// One row per event passing `conditions`: `customer` (the customer id it carries, else the
/// customer its anonymous id is linked to, as in [`event_customers`]; unlinked visitors'
/// events are left out) and `columns`.
fn customer_events(read: &EventRead, columns: &[&str], level: usize) -> String {
    let conditions = &read.conditions;
    let table = read.table;
    let p = pad(level);
    let q = pad(level + 1);
    let r = pad(level + 2);
    let own_columns: String = columns.iter().map(|c| format!(", {c}")).collect();
    let linked_columns: String = columns.iter().map(|c| format!(", e.{c}")).collect();
    format!(
        "{p}SELECT customer_id AS customer{own_columns}\n{p}FROM {table}\n{p}{own}\n{p}UNION ALL\n{p}SELECT l.customer AS customer{linked_columns}\n{p}FROM (\n{q}SELECT anonymous_id{own_columns}\n{q}FROM {table}\n{q}{anonymous}\n{p}) AS e\n{p}INNER JOIN (\n{q}SELECT anonymous_id, argMax(customer_id, linked_at) AS customer\n{q}FROM identity_links\n{q}WHERE partner_id = {{partner:UUID}} AND anonymous_id IN (\n{r}SELECT anonymous_id\n{r}FROM {table}\n{r}{anonymous_again}\n{q})\n{q}GROUP BY anonymous_id\n{p}) AS l ON l.anonymous_id = e.anonymous_id",
        own = event_where(conditions, true, level),
        anonymous = event_where(conditions, false, level + 1),
        anonymous_again = event_where(conditions, false, level + 2),
    )
}

/// The events an event condition reads: the rows of `table` passing `conditions`.
#[derive(Debug, Clone, PartialEq)]
struct EventRead {
    /// `events`, or `event_context_strings` (migration 0010: one row per string context entry
    /// of a customer event, sorted by key and value; no event id, so it serves membership and
    /// the last event's time, not counts).
    table: &'static str,
    conditions: Vec<String>,
}

impl EventRead {
    fn events(conditions: Vec<String>) -> EventRead {
        EventRead {
            table: "events",
            conditions,
        }
    }

    /// The columns a grouping by customer reads: the event id (for counts) where there is one.
    fn grouped_columns(&self) -> &'static [&'static str] {
        if self.table == "events" {
            &["event_id", "event_time"]
        } else {
            &["event_time"]
        }
    }
}

/// An event condition, compiled (see `Compiler::event_sql`).
enum EventSql {
    /// Holds for every customer, or for none (`count gte 0`).
    Constant(bool),
    /// `customer_id <membership> (customers of the events of `read`, grouped and filtered by
    /// `having` when given)`.
    Set {
        read: EventRead,
        membership: &'static str,
        having: Option<String>,
    },
}

/// Children of one `all` that test the same events (`filter`) and are taken as one grouping by
/// customer: at least one of them holds only for customers with such events, so every member
/// of the `all` is in the grouping, and each child's test becomes a HAVING over the customer's
/// events of `filter` (see [`Compiler::merged`]).
struct Group<'s> {
    filter: &'s EventFilter,
    /// Indices of the children, in order.
    members: Vec<usize>,
}

/// An event condition (or its `not`) as its filter, test and sign.
fn event_condition(node: &Node) -> Option<(&EventFilter, &EventTest, bool)> {
    match node {
        Node::Events(filter, test) => Some((filter, test, false)),
        Node::Not(inner) => match &**inner {
            Node::Events(filter, test) => Some((filter, test, true)),
            _ => None,
        },
        _ => None,
    }
}

/// Whether the condition holds only for customers with at least one event of its filter (in
/// any period): then a grouping of those events by customer holds all its members.
fn implies_events(test: &EventTest, negated: bool) -> bool {
    !negated
        && match test {
            EventTest::Count { op, value, .. } => {
                matches!((op, value), (CountOp::Gte | CountOp::Eq, 1..))
            }
            EventTest::LastIn(_) | EventTest::DaysSinceLast { .. } => true,
        }
}

/// The groups of `children` (of an `all`) worth one grouping: two or more event conditions on
/// the same filter, one of which implies events (see [`Group`]). `count gte 0` (always true)
/// stays out. A single condition is left to its own query, which needs no grouping when it
/// is "at least once".
fn merge_groups(children: &[Node]) -> Vec<Group<'_>> {
    let mut groups: Vec<(Group, bool)> = Vec::new();
    for (i, child) in children.iter().enumerate() {
        let Some((filter, test, negated)) = event_condition(child) else {
            continue;
        };
        if matches!(
            test,
            EventTest::Count {
                op: CountOp::Gte,
                value: 0,
                ..
            }
        ) {
            continue;
        }
        let implies = implies_events(test, negated);
        match groups.iter_mut().find(|(g, _)| *g.filter == *filter) {
            Some((group, any)) => {
                group.members.push(i);
                *any |= implies;
            }
            None => groups.push((
                Group {
                    filter,
                    members: vec![i],
                },
                implies,
            )),
        }
    }
    groups
        .into_iter()
        .filter(|(g, any)| *any && g.members.len() >= 2)
        .map(|(g, _)| g)
        .collect()
}

/// `customer_id <membership> (…)` for the customers of the events passing `conditions`,
/// grouped by customer and filtered by `having` when given.
fn event_set(read: &EventRead, membership: &str, having: Option<&str>, level: usize) -> String {
    let rows = event_rows(read, having, level + 1);
    format!(
        "customer_id {membership} (\n{}{rows}\n{})",
        pad(level + 1),
        pad(level)
    )
}

/// The customer ids (column `customer_id`, repeats possible) of the events of `read`,
/// grouped by customer and filtered by `having` when given.
fn event_rows(read: &EventRead, having: Option<&str>, level: usize) -> String {
    let p = pad(level);
    match having {
        None => event_customers(read, level),
        Some(having) => format!(
            "SELECT customer AS customer_id\n{p}FROM (\n{}\n{p})\n{p}GROUP BY customer\n{p}HAVING {having}",
            customer_events(read, read.grouped_columns(), level + 1)
        ),
    }
}

struct Compiler<'a> {
    clock: &'a Clock,
    params: Vec<Param>,
}

fn pad(level: usize) -> String {
    "    ".repeat(level)
}

impl<'a> Compiler<'a> {
    fn new(clock: &'a Clock) -> Compiler<'a> {
        Compiler {
            clock,
            params: Vec::new(),
        }
    }

    fn finish(self, select: String) -> Query {
        Query {
            sql: format!("{PREAMBLE}{select}\n"),
            params: self.params,
        }
    }

    /// Where members are looked for, and the filter they must pass there (`None`: all of them).
    ///
    /// The known customers, unless the definition requires an event: a single `event`
    /// condition that holds for customers with matching events, or such a condition directly
    /// under the top `all`. Then members are looked for among the customers of that
    /// condition's events, distinct (every customer an event resolves to is known), and the
    /// other conditions filter them. For a selective condition these are far fewer rows than
    /// the partner's customers, and the known customers are not read at all.
    fn scope(&mut self, root: &Node) -> (String, Option<String>) {
        let (from, rest) = self.scope_node(root);
        let filter = rest.map(|node| self.node(&node, 1));
        (from, filter)
    }

    /// [`Compiler::scope`], with a filter that is a group in parentheses (so that a condition
    /// can follow it with AND: a group renders as an OR when an `any` is its only child).
    fn scope_parenthesized(&mut self, root: &Node) -> (String, Option<String>) {
        let (from, rest) = self.scope_node(root);
        let filter = rest.map(|node| match node {
            Node::Any(_) | Node::All(_) => {
                format!("(\n{}{}\n{})", pad(2), self.node(&node, 2), pad(1))
            }
            node => self.node(&node, 1),
        });
        (from, filter)
    }

    /// The events of `node` if it holds exactly for the customers with matching events
    /// (`conditions`, grouped and filtered by `having` when given): an `event` condition that
    /// needs one, or `not` of one that needs none (`count eq 0`).
    fn required_events(&mut self, node: &Node) -> Option<(EventRead, Option<String>)> {
        let (filter, test, negated) = match node {
            Node::Events(filter, test) => (filter, test, false),
            Node::Not(inner) => match &**inner {
                Node::Events(filter, test) => (filter, test, true),
                _ => return None,
            },
            _ => return None,
        };
        match self.event_sql(filter, test, negated) {
            EventSql::Set {
                read,
                membership: "IN",
                having,
            } => Some((read, having)),
            _ => None,
        }
    }

    fn scope_node(&mut self, root: &Node) -> (String, Option<Node>) {
        let (conditions, having, rest) = match root {
            Node::All(children) => {
                let rest_without = |skip: &[usize]| {
                    let rest: Vec<Node> = children
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| !skip.contains(j))
                        .map(|(_, child)| child.clone())
                        .collect();
                    (!rest.is_empty()).then_some(Node::All(rest))
                };
                // A plain membership first (no grouping by customer); else the conditions on
                // the same events taken as one grouping; else a single grouped condition.
                let mut grouped = None;
                let mut plain = None;
                for (i, child) in children.iter().enumerate() {
                    match self.required_events(child) {
                        Some((read, None)) => {
                            plain = Some((i, read));
                            break;
                        }
                        Some((read, Some(having))) if grouped.is_none() => {
                            grouped = Some((i, read, having));
                        }
                        _ => {}
                    }
                }
                if let Some((i, read)) = plain {
                    (read, None, rest_without(&[i]))
                } else if let Some(group) = merge_groups(children).first() {
                    let (read, having) = self.merged(children, group);
                    (read, Some(having), rest_without(&group.members))
                } else if let Some((i, read, having)) = grouped {
                    (read, Some(having), rest_without(&[i]))
                } else {
                    return ("customers".into(), Some(root.clone()));
                }
            }
            node => match self.required_events(node) {
                Some((conditions, having)) => (conditions, having, None),
                None => return ("customers".into(), Some(root.clone())),
            },
        };
        let rows = event_rows(&conditions, having.as_deref(), 2);
        (
            format!(
                "(\n{p1}SELECT DISTINCT customer_id\n{p1}FROM (\n{p2}{rows}\n{p1})\n)",
                p1 = pad(1),
                p2 = pad(2)
            ),
            rest,
        )
    }

    /// Adds a parameter and returns its placeholder.
    fn param(&mut self, ty: &'static str, value: ParamValue) -> String {
        if let Some(same) = self.params.iter().find(|p| p.ty == ty && p.value == value) {
            return format!("{{{}:{}}}", same.name, ty);
        }
        let name = format!("p{}", self.params.len());
        let placeholder = format!("{{{name}:{ty}}}");
        self.params.push(Param { name, ty, value });
        placeholder
    }

    fn instant(&mut self, ms: i64) -> String {
        // `2026-11-30T21:00:00.000Z` → `2026-11-30 21:00:00.000`, read as UTC by the type.
        let text = format_rfc3339_ms(ms).replace('T', " ").replace('Z', "");
        self.param("DateTime64(3, 'UTC')", ParamValue::Str(text))
    }

    /// A boolean expression over `customer_id` of `customers`. `level` is the
    /// indentation of the lines it continues on.
    fn node(&mut self, node: &Node, level: usize) -> String {
        match node {
            Node::All(children) | Node::Any(children) => {
                let all = matches!(node, Node::All(_));
                let word = if all { "AND" } else { "OR" };
                // Under `all`, conditions on the same events (`last_event`, `days_since_last`,
                // counts, and their `not`) become one grouping by customer with their tests
                // joined in its HAVING: one read of those events instead of one each.
                let groups = if all {
                    merge_groups(children)
                } else {
                    Vec::new()
                };
                let mut parts: Vec<String> = Vec::new();
                for (i, child) in children.iter().enumerate() {
                    if let Some(group) = groups.iter().find(|g| g.members.contains(&i)) {
                        if group.members[0] == i {
                            let (read, having) = self.merged(children, group);
                            parts.push(event_set(&read, "IN", Some(&having), level));
                        }
                        continue;
                    }
                    let text = match child {
                        Node::All(_) | Node::Any(_) if children.len() > 1 => format!(
                            "(\n{}{}\n{})",
                            pad(level + 1),
                            self.node(child, level + 1),
                            pad(level)
                        ),
                        _ => self.node(child, level),
                    };
                    parts.push(text);
                }
                parts.join(&format!("\n{}{word} ", pad(level).get(2..).unwrap_or("")))
            }
            Node::Not(inner) => match &**inner {
                // `NOT (customer_id IN …)` reads better as `customer_id NOT IN …`.
                Node::Events(filter, test) => self.events(filter, test, level, true),
                Node::Profile(test) => self.profile(test, level, true),
                group => {
                    let inner = self.node(group, level + 1);
                    format!("NOT (\n{}{inner}\n{})", pad(level + 1), pad(level))
                }
            },
            Node::Events(filter, test) => self.events(filter, test, level, false),
            Node::Profile(test) => self.profile(test, level, false),
        }
    }

    /// The read and HAVING of a [`Group`]: all events of the group's filter (no period),
    /// grouped by customer; each member's test over them, joined by AND. Exact for customers
    /// with at least one such event, which every member of the `all` is.
    fn merged(&mut self, children: &[Node], group: &Group) -> (EventRead, String) {
        let tests: Vec<(&EventTest, bool)> = group
            .members
            .iter()
            .filter_map(|&i| {
                event_condition(&children[i]).map(|(_, test, negated)| (test, negated))
            })
            .collect();
        let counts = tests.iter().any(|(test, _)| counts_events(test));
        let read = match (counts, indexed_key(group.filter)) {
            (false, Some(key)) => EventRead {
                table: "event_context_strings",
                conditions: self.indexed_filter(group.filter, key),
            },
            _ => EventRead::events(self.filter(group.filter)),
        };
        let havings: Vec<String> = tests
            .into_iter()
            .map(|(test, negated)| {
                let having = self.group_having(test);
                if negated {
                    format!("NOT ({having})")
                } else {
                    having
                }
            })
            .collect();
        (read, havings.join(" AND "))
    }

    /// A test over one customer's events of its filter (all of them, any period), as a HAVING
    /// expression.
    fn group_having(&mut self, test: &EventTest) -> String {
        match test {
            EventTest::Count { op, value, period } => {
                let range = period.as_ref().map(|period| {
                    let range = self.clock.range(period);
                    self.range("event_time", range).join(" AND ")
                });
                let range = range.filter(|r| !r.is_empty());
                match (op, value, range) {
                    // Whether there is one needs no event ids.
                    (CountOp::Gte, 1, None) => "count() > 0".to_string(),
                    (CountOp::Gte, 1, Some(r)) => format!("countIf({r}) > 0"),
                    (CountOp::Eq, 0, None) => "count() = 0".to_string(),
                    (CountOp::Eq, 0, Some(r)) => format!("countIf({r}) = 0"),
                    (op, n, range) => {
                        let cmp = match op {
                            CountOp::Gte => ">=",
                            CountOp::Eq => "=",
                            CountOp::Lte => "<=",
                        };
                        let count = match range {
                            None => "uniqExact(event_id)".to_string(),
                            Some(r) => format!("uniqExactIf(event_id, {r})"),
                        };
                        format!(
                            "{count} {cmp} {}",
                            self.param("UInt64", ParamValue::UInt(*n))
                        )
                    }
                }
            }
            EventTest::LastIn(period) => {
                let range = self.clock.range(period);
                self.last_having(range)
            }
            EventTest::DaysSinceLast { op, days } => {
                let range = self.clock.days_since_range(*op, *days);
                self.last_having(range)
            }
        }
    }

    /// `customer_id [NOT] IN (…)`: the customers whose events pass the test (or, `negated`,
    /// the known customers whose events do not).
    fn events(
        &mut self,
        filter: &EventFilter,
        test: &EventTest,
        level: usize,
        negated: bool,
    ) -> String {
        match self.event_sql(filter, test, negated) {
            EventSql::Constant(holds) => holds.to_string(),
            EventSql::Set {
                read,
                membership,
                having,
            } => event_set(&read, membership, having.as_deref(), level),
        }
    }

    /// What an event condition becomes: the events it reads, and whether members are among
    /// the customers of those events or not, grouped by customer and filtered by `having`.
    fn event_sql(&mut self, filter: &EventFilter, test: &EventTest, negated: bool) -> EventSql {
        // Membership and the last event's time do not depend on how many copies of an event
        // are stored, so they can be read from the context index; counts need event ids.
        let mut read = match (counts_events(test), indexed_key(filter)) {
            (false, Some(key)) => EventRead {
                table: "event_context_strings",
                conditions: self.indexed_filter(filter, key),
            },
            _ => EventRead::events(self.filter(filter)),
        };
        let conditions = &mut read.conditions;
        let (membership, having) = match test {
            EventTest::Count { op, value, period } => {
                if let Some(period) = period {
                    let range = self.clock.range(period);
                    conditions.extend(self.range("event_time", range));
                }
                match (op, value) {
                    // At least once: membership, no counting needed.
                    (CountOp::Gte, 1) => ("IN", None),
                    (CountOp::Gte, 0) => return EventSql::Constant(!negated),
                    // Never: not among those with one.
                    (CountOp::Eq, 0) => ("NOT IN", None),
                    (CountOp::Gte, n) => ("IN", Some(self.count_having(">=", *n))),
                    (CountOp::Eq, n) => ("IN", Some(self.count_having("=", *n))),
                    // At most n (zero included): not among those with more.
                    (CountOp::Lte, n) => ("NOT IN", Some(self.count_having(">", *n))),
                }
            }
            EventTest::LastIn(period) => {
                let range = self.clock.range(period);
                ("IN", Some(self.last_having(range)))
            }
            EventTest::DaysSinceLast { op, days } => {
                let range = self.clock.days_since_range(*op, *days);
                ("IN", Some(self.last_having(range)))
            }
        };
        let membership = match (membership, negated) {
            ("IN", true) => "NOT IN",
            ("NOT IN", true) => "IN",
            (m, _) => m,
        };
        EventSql::Set {
            read,
            membership,
            having,
        }
    }

    /// [`Compiler::filter`] over `event_context_strings`: the rows of `key` whose value passes
    /// every predicate (all on `key`, see [`indexed_key`]).
    fn indexed_filter(&mut self, filter: &EventFilter, key: &str) -> Vec<String> {
        let plain = EventFilter {
            predicates: Vec::new(),
            ..filter.clone()
        };
        let mut out = self.filter(&plain);
        out.push(format!(
            "key = {}",
            self.param("String", ParamValue::Str(key.to_string()))
        ));
        for p in &filter.predicates {
            out.push(self.compare("value", &p.test));
        }
        out
    }

    fn count_having(&mut self, cmp: &str, n: u64) -> String {
        format!(
            "uniqExact(event_id) {cmp} {}",
            self.param("UInt64", ParamValue::UInt(n))
        )
    }

    fn last_having(&mut self, range: Range) -> String {
        self.range("max(event_time)", range).join(" AND ")
    }

    fn range(&mut self, expr: &str, range: Range) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(from) = range.from_ms {
            out.push(format!("{expr} >= {}", self.instant(from)));
        }
        if let Some(to) = range.to_ms {
            out.push(format!("{expr} < {}", self.instant(to)));
        }
        out
    }

    fn filter(&mut self, filter: &EventFilter) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(name) = &filter.name {
            out.push(format!(
                "name = {}",
                self.param("String", ParamValue::Str(name.clone()))
            ));
        }
        if let Some(sources) = &filter.sources {
            out.push(format!(
                "has({}, source)",
                self.param("Array(String)", ParamValue::Strs(sources.clone()))
            ));
        }
        for p in &filter.predicates {
            out.push(self.predicate(p));
        }
        out
    }

    fn predicate(&mut self, p: &ContextPredicate) -> String {
        let key = self.param("String", ParamValue::Str(p.key.clone()));
        let Some(ty) = p.ty else {
            return format!(
                "(mapContains(context_strings, {key}) OR mapContains(context_numbers, {key}) OR mapContains(context_booleans, {key}))"
            );
        };
        let map = match ty {
            PropertyType::String | PropertyType::Datetime => "context_strings",
            PropertyType::Number => "context_numbers",
            PropertyType::Boolean => "context_booleans",
        };
        let present = format!("mapContains({map}, {key})");
        if p.test.op == PredicateOp::Exists {
            return present;
        }
        let value = match ty {
            // Datetimes are RFC 3339 strings; compared as instants.
            PropertyType::Datetime => {
                format!("parseDateTime64BestEffortOrNull({map}[{key}], 3, 'UTC')")
            }
            _ => format!("{map}[{key}]"),
        };
        let comparison = self.compare(&value, &p.test);
        // `map[key]` of a missing key reads as the type's default. Only when the comparison
        // holds for that default is presence checked too: `mapContains` reads the map's whole
        // key array again (at 10M events, `name = Bag` read 594 MB with it and 180 MB without).
        if crate::evaluate::holds_for_missing_key(ty, &p.test) {
            format!("{present} AND {comparison}")
        } else {
            comparison
        }
    }

    /// `value op operands`, for a value known to be present.
    fn compare(&mut self, value: &str, test: &Comparison) -> String {
        let operand = |c: &mut Self, s: &Scalar| c.scalar(s);
        match test.op {
            PredicateOp::Eq => format!("{value} = {}", operand(self, &test.operands[0])),
            PredicateOp::Ne => format!("{value} != {}", operand(self, &test.operands[0])),
            PredicateOp::Gt => format!("{value} > {}", operand(self, &test.operands[0])),
            PredicateOp::Gte => format!("{value} >= {}", operand(self, &test.operands[0])),
            PredicateOp::Lt => format!("{value} < {}", operand(self, &test.operands[0])),
            PredicateOp::Lte => format!("{value} <= {}", operand(self, &test.operands[0])),
            PredicateOp::Contains => {
                format!(
                    "position({value}, {}) > 0",
                    operand(self, &test.operands[0])
                )
            }
            PredicateOp::Between => format!(
                "{value} BETWEEN {} AND {}",
                operand(self, &test.operands[0]),
                operand(self, &test.operands[1])
            ),
            PredicateOp::In | PredicateOp::NotIn => {
                let list = self.list(&test.operands);
                let not = if test.op == PredicateOp::NotIn {
                    "NOT "
                } else {
                    ""
                };
                format!("{not}has({list}, {value})")
            }
            PredicateOp::Exists => "true".to_string(),
        }
    }

    fn scalar(&mut self, s: &Scalar) -> String {
        match s {
            Scalar::Str(v) => self.param("String", ParamValue::Str(v.clone())),
            Scalar::Num(v) => self.param("Float64", ParamValue::Float(*v)),
            Scalar::Bool(v) => self.param("Bool", ParamValue::Bool(*v)),
            Scalar::Time(ms) => self.instant(*ms),
            // Date32: birthdays before 1970 compare too.
            Scalar::Date(d) => self.param("Date32", ParamValue::Str(d.to_string())),
        }
    }

    fn list(&mut self, items: &[Scalar]) -> String {
        match items.first() {
            Some(Scalar::Num(_)) => {
                let values = items
                    .iter()
                    .filter_map(|s| match s {
                        Scalar::Num(v) => Some(*v),
                        _ => None,
                    })
                    .collect();
                self.param("Array(Float64)", ParamValue::Floats(values))
            }
            _ => {
                let values = items
                    .iter()
                    .filter_map(|s| match s {
                        Scalar::Str(v) => Some(v.clone()),
                        _ => None,
                    })
                    .collect();
                self.param("Array(String)", ParamValue::Strs(values))
            }
        }
    }

    /// `customer_id [NOT] IN (…)`: the customers whose profile passes the test.
    fn profile(&mut self, test: &ProfileTest, level: usize, negated: bool) -> String {
        let condition = match &test.field {
            ProfileField::Birthday => match test.test.op {
                PredicateOp::Exists => "birthday IS NOT NULL".to_string(),
                _ => self.compare("birthday", &test.test),
            },
            ProfileField::Consent(channel) => {
                let key = self.param("String", ParamValue::Str(channel.clone()));
                self.in_map("consents", &key, &test.test)
            }
            ProfileField::Attribute(code, ty) => {
                let key = self.param("String", ParamValue::Str(code.clone()));
                match ty {
                    None => format!(
                        "(mapContains(attributes_strings, {key}) OR mapContains(attributes_numbers, {key}) OR mapContains(attributes_booleans, {key}) OR mapContains(attributes_datetimes, {key}))"
                    ),
                    Some(ty) => {
                        let map = match ty {
                            PropertyType::String => "attributes_strings",
                            PropertyType::Number => "attributes_numbers",
                            PropertyType::Boolean => "attributes_booleans",
                            PropertyType::Datetime => "attributes_datetimes",
                        };
                        self.in_map(map, &key, &test.test)
                    }
                }
            }
            field => {
                // Profile strings are '' when unknown, so "present" means non-empty.
                let column = field.string_column().unwrap_or("email");
                match test.test.op {
                    PredicateOp::Exists => format!("{column} != ''"),
                    PredicateOp::Ne | PredicateOp::NotIn => {
                        format!("{column} != '' AND {}", self.compare(column, &test.test))
                    }
                    _ => self.compare(column, &test.test),
                }
            }
        };
        let inner = pad(level + 1);
        let membership = if negated { "NOT IN" } else { "IN" };
        format!(
            "customer_id {membership} (\n{inner}SELECT customer_id\n{inner}FROM profiles\n{inner}WHERE {condition}\n{})",
            pad(level)
        )
    }

    fn in_map(&mut self, map: &str, key: &str, test: &Comparison) -> String {
        let present = format!("mapContains({map}, {key})");
        if test.op == PredicateOp::Exists {
            return present;
        }
        let value = format!("{map}[{key}]");
        format!("{present} AND {}", self.compare(&value, test))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{validate_json, Catalogue};

    /// The partner clock every golden query is compiled with.
    fn clock() -> Clock {
        let now = event_model::timestamp::parse_rfc3339_ms("2026-11-30T09:00:00Z").unwrap();
        Clock::new("Europe/Moscow", now).unwrap()
    }

    fn segment(json: &str) -> Segment {
        let catalogue = Catalogue {
            accept_undeclared: true,
            ..crate::validate::tests::shop()
        };
        validate_json(json, &catalogue).unwrap_or_else(|e| panic!("{json}: {e:?}"))
    }

    /// A golden file: the definition, the parameters, then the SQL.
    pub(crate) fn render(definition: &str, query: &Query) -> String {
        let mut out = format!("-- definition: {definition}\n");
        for p in &query.params {
            out.push_str(&format!(
                "-- {}: {} = {}\n",
                p.name,
                p.ty,
                serde_json::to_string(&p.value).unwrap()
            ));
        }
        out.push_str(&query.sql);
        out
    }

    /// The shapes analysts see in docs/segments.md, in that order.
    pub(crate) const SHAPES: &[(&str, &str)] = &[
        (
            "jacket_viewed_online_in_30_days",
            r#"{"event": {"name": "product_viewed", "sources": ["online_store"], "where": [{"key": "category", "op": "eq", "value": "Jacket"}], "count": {"op": "gte", "value": 1}, "period": {"last_days": 30}}}"#,
        ),
        (
            "more_than_100_points_in_one_purchase",
            r#"{"event": {"name": "purchase_completed", "where": [{"key": "points", "op": "gt", "value": 100}]}}"#,
        ),
        (
            "context_filter_without_a_name",
            r#"{"event": {"where": [{"key": "name", "op": "eq", "value": "Bag"}]}}"#,
        ),
        (
            "three_purchases_or_more_since_a_date",
            r#"{"event": {"name": "purchase_completed", "count": {"op": "gte", "value": 3}, "period": {"since": "2026-11-01"}}}"#,
        ),
        (
            "at_most_two_purchases",
            r#"{"event": {"name": "purchase_completed", "count": {"op": "lte", "value": 2}}}"#,
        ),
        (
            "never_purchased",
            r#"{"event": {"name": "purchase_completed", "count": {"op": "eq", "value": 0}}}"#,
        ),
        (
            "last_purchase_in_november",
            r#"{"last_event": {"name": "purchase_completed", "period": {"between": ["2026-11-01", "2026-11-30"]}}}"#,
        ),
        (
            "fourteen_days_or_more_since_the_last_purchase",
            r#"{"days_since_last": {"name": "purchase_completed", "op": "gte", "value": 14}}"#,
        ),
        (
            "datetime_and_list_predicates",
            r#"{"event": {"name": "purchase_completed", "where": [{"key": "paid_at", "op": "between", "value": ["2026-11-01T00:00:00+03:00", "2026-11-15T00:00:00+03:00"]}, {"key": "total", "op": "in", "value": [10, 20.5]}, {"key": "gift", "op": "eq", "value": true}]}}"#,
        ),
        (
            "profile_fields",
            r#"{"any": [{"profile": {"field": "birthday", "op": "exists"}}, {"profile": {"field": "consents.email", "op": "eq", "value": true}}, {"profile": {"field": "attributes.tier", "op": "in", "value": ["gold", "platinum"]}}, {"profile": {"field": "email", "op": "contains", "value": "@example.com"}}]}"#,
        ),
        (
            "the_issue_example",
            r#"{"all": [{"event": {"name": "product_viewed", "sources": ["online_store"], "where": [{"key": "category", "op": "eq", "value": "Jacket"}], "count": {"op": "gte", "value": 1}, "period": {"last_days": 30}}}, {"not": {"event": {"name": "purchase_completed", "period": {"last_days": 30}}}}, {"last_event": {"name": "purchase_completed", "period": {"between": ["2026-11-01", "2026-11-30"]}}}, {"days_since_last": {"name": "purchase_completed", "op": "gte", "value": 14}}, {"profile": {"field": "birthday", "op": "exists"}}]}"#,
        ),
        (
            "nested_groups",
            r#"{"any": [{"all": [{"event": {"name": "product_viewed", "sources": ["mobile_app"]}}, {"not": {"event": {"name": "product_viewed", "sources": ["online_store"]}}}]}, {"profile": {"field": "attributes.vip", "op": "eq", "value": true}}]}"#,
        ),
    ];

    /// The heading of each golden query in docs/segments.md.
    fn title(name: &str) -> &'static str {
        match name {
            "jacket_viewed_online_in_30_days" => {
                "Viewed the Jacket category in the Online Store at least once in the last 30 days"
            }
            "more_than_100_points_in_one_purchase" => {
                "Collected more than 100 points in one purchase"
            }
            "context_filter_without_a_name" => "A context filter across all events: `name = Bag`",
            "three_purchases_or_more_since_a_date" => "Three purchases or more since a date",
            "at_most_two_purchases" => "At most two purchases (zero included)",
            "never_purchased" => "Never purchased (`count eq 0`)",
            "last_purchase_in_november" => "Last purchase between two dates",
            "fourteen_days_or_more_since_the_last_purchase" => {
                "Fourteen days or more since the last purchase"
            }
            "datetime_and_list_predicates" => "Datetime, list and boolean predicates on one event",
            "profile_fields" => "Profile fields",
            "the_issue_example" => "Everything together",
            "nested_groups" => "Nested groups: seen in the app but not in the store, or a VIP",
            "member_count" => "The member count (for previews)",
            "member_count_by_source" => {
                "Members per source (previews with `by_source`), for the example with everything"
            }
            "member_page" => "A page of members (keyset pagination by `customer_id`)",
            _ => "",
        }
    }

    const DOCS_MARKER: &str = "<!-- Generated from audience/golden by the compile tests; regenerate with UPDATE_GOLDEN=1 cargo test -p eventline-audience -->\n";

    /// The generated part of docs/segments.md.
    fn docs_tail() -> String {
        let mut out = format!("{DOCS_MARKER}\n```sql\n{PREAMBLE}```\n");
        for (name, rendered) in goldens() {
            out.push_str(&format!(
                "\n### {}\n\n```sql\n{}```\n",
                title(&name),
                rendered.replace(PREAMBLE, "")
            ));
        }
        out
    }

    #[test]
    fn docs_segments_md_shows_the_golden_sql() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/segments.md");
        let docs = std::fs::read_to_string(&path).unwrap();
        let head = docs.split(DOCS_MARKER).next().unwrap().to_string();
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, format!("{head}{}", docs_tail())).unwrap();
            return;
        }
        assert!(
            docs.ends_with(&docs_tail()),
            "docs/segments.md is not the golden SQL; rerun with UPDATE_GOLDEN=1"
        );
        for (name, _) in goldens() {
            assert!(!title(&name).is_empty(), "{name} has no title");
        }
    }

    fn golden_path(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("golden")
            .join(format!("{name}.sql"))
    }

    /// Every golden query: the shapes as member sets, plus a count and a page.
    pub(crate) fn goldens() -> Vec<(String, String)> {
        let clock = clock();
        let mut out: Vec<(String, String)> = SHAPES
            .iter()
            .map(|(name, json)| {
                (
                    name.to_string(),
                    render(json, &members(&segment(json), &clock)),
                )
            })
            .collect();
        let json = SHAPES[0].1;
        out.push((
            "member_count".into(),
            render(json, &member_count(&segment(json), &clock)),
        ));
        out.push((
            "member_count_by_source".into(),
            render(
                SHAPES[10].1,
                &member_count_by_source(&segment(SHAPES[10].1), &clock).unwrap(),
            ),
        ));
        out.push((
            "member_page".into(),
            render(
                json,
                &member_page(&segment(json), &clock, Some("c-0042"), 100),
            ),
        ));
        out
    }

    #[test]
    fn the_sql_of_each_shape_matches_its_golden_file() {
        let update = std::env::var_os("UPDATE_GOLDEN").is_some();
        let mut stale = Vec::new();
        for (name, rendered) in goldens() {
            let path = golden_path(&name);
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &rendered).unwrap();
                continue;
            }
            let golden = std::fs::read_to_string(&path).unwrap_or_default();
            if golden != rendered {
                stale.push(name);
            }
        }
        assert!(
            stale.is_empty(),
            "the SQL of {stale:?} changed; review it, then rerun with UPDATE_GOLDEN=1 and update docs/segments.md"
        );
    }

    #[test]
    fn injection_strings_and_cyrillic_values_travel_only_as_parameters() {
        let compile = |value: &str| {
            let json = serde_json::json!({"all": [
                {"event": {"name": value, "sources": ["online_store"],
                           "where": [{"key": "category", "op": "in", "value": [value, "Jacket"]},
                                     {"key": "title", "op": "contains", "value": value}]}},
                {"profile": {"field": "email", "op": "eq", "value": value}},
                {"profile": {"field": "attributes.note", "op": "ne", "value": value}}
            ]})
            .to_string();
            member_page(&segment(&json), &clock(), Some(value), 10)
        };
        let plain = compile("plain");
        // The `clickhouse` crate would take a `?` in the text for a client-side bind.
        assert!(!plain.sql.contains('?'));
        for value in [
            "Bag' OR 1=1 --",
            "x'); DROP TABLE events; --",
            "Азбука",
            "{p0:String}",
            "\\' \" ` ? {partner:UUID}",
        ] {
            let query = compile(value);
            // The text does not depend on the value at all: the value is only ever a parameter.
            assert_eq!(query.sql, plain.sql, "{value}");
            let single = ParamValue::Str(value.to_string());
            let list = ParamValue::Strs(vec![value.to_string(), "Jacket".into()]);
            assert!(query
                .params
                .iter()
                .any(|p| p.value == single && p.ty == "String"));
            assert!(query.params.iter().any(|p| p.value == list));
        }
    }

    #[test]
    fn not_turns_membership_around() {
        let sql = |json: &str| members(&segment(json), &clock()).sql;
        let viewed = r#"{"event": {"name": "product_viewed"}}"#;
        let never = r#"{"event": {"name": "product_viewed", "count": {"op": "eq", "value": 0}}}"#;
        let tail = |sql: String| {
            sql.split("\nSELECT customer_id\nFROM ")
                .nth(1)
                .unwrap()
                .to_string()
        };
        // Viewers are looked for among the customers of views; the others among all customers.
        assert!(tail(sql(viewed)).starts_with("(\n    SELECT DISTINCT customer_id\n"));
        assert!(tail(sql(never)).starts_with("customers\nWHERE customer_id NOT IN ("));
        assert_eq!(sql(&format!(r#"{{"not": {viewed}}}"#)), sql(never));
        assert_eq!(sql(&format!(r#"{{"not": {never}}}"#)), sql(viewed));
        let group = format!(r#"{{"not": {{"any": [{viewed}]}}}}"#);
        assert!(tail(sql(&group)).starts_with("customers\nWHERE NOT (\n        customer_id IN ("));
    }

    #[test]
    fn a_breakdown_by_source_looks_only_at_event_conditions_outside_a_not() {
        let by_source = |json: &str| member_count_by_source(&segment(json), &clock());
        assert!(by_source(r#"{"profile": {"field": "birthday", "op": "exists"}}"#).is_none());
        assert!(by_source(r#"{"not": {"event": {"name": "purchase_completed"}}}"#).is_none());
        let query = by_source(
            r#"{"all": [{"event": {"name": "product_viewed", "period": {"last_days": 30}}}, {"not": {"event": {"name": "purchase_completed"}}}, {"any": [{"days_since_last": {"name": "app_opened", "op": "gte", "value": 3}}, {"profile": {"field": "birthday", "op": "exists"}}]}]}"#,
        )
        .unwrap();
        // The matching events are read as the rows of the breakdown: the conditions of their
        // first part (events that carry a customer id) up to the part for anonymous events.
        let matching = query
            .sql
            .split("AND customer_id != ''\n")
            .nth(1)
            .and_then(|rest| rest.split("UNION ALL").next())
            .unwrap();
        // The viewed products in the period, and every app opening; never the purchases.
        assert_eq!(matching.matches(" OR ").count(), 1, "{matching}");
        assert!(matching.contains("event_time >= "), "{matching}");
        let purchase = query
            .params
            .iter()
            .find(|p| p.value == ParamValue::Str("purchase_completed".into()))
            .unwrap();
        assert!(!matching.contains(&format!("{{{}:", purchase.name)));
        assert!(query.sql.contains("GROUP BY source"));
    }

    #[test]
    fn conditions_under_all_that_group_the_same_events_share_one_grouping() {
        let sql = |json: &str| members(&segment(json), &clock()).sql;
        let last =
            r#"{"last_event": {"name": "purchase_completed", "period": {"since": "2026-11-01"}}}"#;
        let since =
            r#"{"days_since_last": {"name": "purchase_completed", "op": "gte", "value": 14}}"#;
        let other = r#"{"days_since_last": {"name": "product_viewed", "op": "gte", "value": 14}}"#;
        let together = sql(&format!(r#"{{"all": [{last}, {since}, {other}]}}"#));
        assert_eq!(
            together.matches("GROUP BY customer").count(),
            2,
            "{together}"
        );
        assert_eq!(together.matches("HAVING max(event_time)").count(), 2);
        // Under `any` they stay apart: one grouping each.
        let either = sql(&format!(r#"{{"any": [{last}, {since}]}}"#));
        assert_eq!(either.matches("GROUP BY customer").count(), 2, "{either}");
        // A `not` and a count over a period join the grouping of a condition that requires
        // the events, as a HAVING over all of the customer's events of that filter.
        let negated = sql(&format!(r#"{{"all": [{last}, {{"not": {since}}}]}}"#));
        assert_eq!(negated.matches("GROUP BY customer").count(), 1, "{negated}");
        assert!(negated.contains("AND NOT (max(event_time)"), "{negated}");
        let recent = r#"{"event": {"name": "purchase_completed", "count": {"op": "gte", "value": 2}, "period": {"last_days": 7}}}"#;
        let counted = sql(&format!(r#"{{"all": [{last}, {recent}]}}"#));
        assert_eq!(counted.matches("GROUP BY customer").count(), 1, "{counted}");
        assert!(
            counted.contains("uniqExactIf(event_id, event_time >= "),
            "{counted}"
        );
        // Without a condition that requires the events, each keeps its own read: "never"
        // also holds for customers without any.
        let apart = sql(&format!(
            r#"{{"all": [{{"not": {last}}}, {{"not": {since}}}]}}"#
        ));
        assert_eq!(apart.matches("GROUP BY customer").count(), 2, "{apart}");
    }

    #[test]
    fn the_page_condition_applies_to_the_whole_definition() {
        // A group whose only child is `any` renders as an OR: found by the oracle (seed
        // 987654321), whose member pages never ended.
        let json = r#"{"all": [{"any": [{"event": {"name": "product_viewed"}}, {"event": {"name": "purchase_completed"}}]}]}"#;
        let sql = member_page(&segment(json), &clock(), Some("c-1"), 3).sql;
        let filter = sql.split("FROM customers\nWHERE ").nth(1).unwrap();
        assert!(filter.starts_with("(\n"), "{filter}");
        assert!(filter.contains("\n    )\n  AND customer_id > "), "{filter}");
    }

    #[test]
    fn presence_is_checked_only_where_a_missing_key_would_pass() {
        let checks_presence = |key: &str, op: &str, value: &str| {
            let json = format!(
                r#"{{"event": {{"name": "purchase_completed", "where": [{{"key": "{key}", "op": "{op}", "value": {value}}}]}}}}"#
            );
            members(&segment(&json), &clock())
                .sql
                .contains("mapContains(")
        };
        // A missing string key reads as '', a number as 0, a boolean as false.
        assert!(!checks_presence("category", "eq", r#""Jacket""#));
        assert!(checks_presence("category", "ne", r#""Jacket""#));
        assert!(checks_presence("category", "contains", r#""""#));
        assert!(!checks_presence("category", "contains", r#""Jack""#));
        assert!(!checks_presence("points", "gt", "100"));
        assert!(checks_presence("points", "lt", "100"));
        assert!(checks_presence("points", "between", "[-1, 1]"));
        assert!(checks_presence("gift", "eq", "false"));
        assert!(!checks_presence("gift", "eq", "true"));
        // A datetime parsed from '' is NULL, which no comparison holds for.
        assert!(!checks_presence(
            "paid_at",
            "lt",
            r#""2026-11-01T00:00:00Z""#
        ));
    }

    #[test]
    fn string_equality_on_one_key_reads_the_context_index_unless_events_are_counted() {
        let reads_index = |condition: &str| {
            let json = format!(r#"{{"event": {{"name": "purchase_completed", {condition}}}}}"#);
            let sql = members(&segment(&json), &clock()).sql;
            assert!(
                sql.contains("FROM events") != sql.contains("FROM event_context_strings"),
                "{sql}"
            );
            sql.contains("FROM event_context_strings")
        };
        let jacket = r#""where": [{"key": "category", "op": "eq", "value": "Jacket"}]"#;
        assert!(reads_index(jacket));
        assert!(!reads_index(
            r#""where": [{"key": "category", "op": "in", "value": ["Jacket", "Hat"]}, {"key": "category", "op": "ne", "value": ""}]"#
        ));
        assert!(reads_index(
            r#""where": [{"key": "category", "op": "in", "value": ["Jacket", "Hat"]}, {"key": "category", "op": "eq", "value": "Hat"}]"#
        ));
        // Membership and the last event's time do not change with retried copies; counts do.
        assert!(reads_index(&format!(
            r#"{jacket}, "count": {{"op": "eq", "value": 0}}"#
        )));
        assert!(!reads_index(&format!(
            r#"{jacket}, "count": {{"op": "gte", "value": 2}}"#
        )));
        assert!(!reads_index(&format!(
            r#"{jacket}, "count": {{"op": "lte", "value": 1}}"#
        )));
        // A missing key would pass, several keys, other operators and types: events.
        assert!(!reads_index(
            r#""where": [{"key": "category", "op": "eq", "value": ""}]"#
        ));
        assert!(!reads_index(
            r#""where": [{"key": "category", "op": "eq", "value": "Jacket"}, {"key": "product_id", "op": "eq", "value": "p-1"}]"#
        ));
        assert!(!reads_index(
            r#""where": [{"key": "category", "op": "contains", "value": "Jack"}]"#
        ));
        assert!(!reads_index(
            r#""where": [{"key": "points", "op": "eq", "value": 100}]"#
        ));
        assert!(!reads_index(r#""count": {"op": "gte", "value": 1}"#));
        let last = members(
            &segment(&format!(
                r#"{{"last_event": {{"name": "purchase_completed", {jacket}, "period": {{"last_days": 7}}}}}}"#
            )),
            &clock(),
        )
        .sql;
        assert!(
            last.contains("FROM event_context_strings") && !last.contains("event_id"),
            "{last}"
        );
    }

    #[test]
    fn the_same_value_is_one_parameter() {
        let json = r#"{"event": {"name": "purchase_completed", "where": [{"key": "points", "op": "lt", "value": 100}]}}"#;
        let query = members(&segment(json), &clock());
        // name, key, 100: the key is used four times (presence and value, in the part for events
        // with a customer id and the part for anonymous ones) but bound once.
        assert_eq!(query.params.len(), 3, "{:?}", query.params);
        assert_eq!(query.sql.matches("{p1:String}").count(), 4);
    }
}
