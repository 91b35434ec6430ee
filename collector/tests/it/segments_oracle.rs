//! The segment oracle: random events, links, profiles and definitions; the compiled SQL run on
//! the real ClickHouse must give exactly the reference evaluator's customer sets.
//!
//! Rows go straight into the tables (not through ingest), so any event time works; the
//! identity_links materialized view adds the links of events that carry both ids, as in
//! production, and the evaluator is given those links too. Merges of `events` are stopped, so
//! retried copies are still separate rows when the queries run. Seeded: a failure prints the
//! seed and the definition, and `SEGMENT_ORACLE_SEED=<seed>` replays it.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use clickhouse::{Client, Row};
use event_model::catalog::{EventTypeDef, PropertyDef, PropertyType, TypeProperty};
use event_model::timestamp::{format_rfc3339_ms, parse_rfc3339_ms};
use event_model::{ContextValue, EventKind};
use eventline_audience::compile::{self, Query};
use eventline_audience::evaluate::{
    self, AttributeValue, Data, IdentityLink, ProfileRow, StoredEvent,
};
use eventline_audience::period::{day_number, parse_date};
use eventline_audience::{validate_json, Catalogue, Clock};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::*;

const ROUNDS: u64 = 4;
const EVENTS_PER_ROUND: usize = 160;
const DEFINITIONS_PER_ROUND: usize = 60;
const NOW: &str = "2026-11-30T09:00:00Z";
const ZONES: &[&str] = &["Europe/Moscow", "America/New_York", "UTC", "Asia/Kolkata"];
const DAY: i64 = 86_400_000;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Row, Serialize)]
struct EventIn {
    #[serde(with = "clickhouse::serde::uuid")]
    partner_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    event_id: Uuid,
    kind: String,
    name: String,
    source: String,
    #[serde(with = "clickhouse::serde::uuid")]
    source_id: Uuid,
    customer_id: String,
    anonymous_id: String,
    session_id: String,
    /// DateTime64(3) columns: milliseconds.
    occurred_at: i64,
    sent_at: i64,
    received_at: i64,
    event_time: i64,
    context_strings: Vec<(String, String)>,
    context_numbers: Vec<(String, f64)>,
    context_booleans: Vec<(String, bool)>,
    ingest_path: String,
    user_agent: String,
    client_ip: String,
}

#[derive(Row, Serialize)]
struct LinkIn {
    #[serde(with = "clickhouse::serde::uuid")]
    partner_id: Uuid,
    anonymous_id: String,
    customer_id: String,
    linked_at: i64,
}

#[derive(Row, Serialize)]
struct ProfileIn {
    #[serde(with = "clickhouse::serde::uuid")]
    partner_id: Uuid,
    customer_id: String,
    first_name: String,
    last_name: String,
    email: String,
    phone: String,
    /// Nullable(Date): days since 1970-01-01.
    birthday: Option<i32>,
    consents: Vec<(String, bool)>,
    attributes_strings: Vec<(String, String)>,
    attributes_numbers: Vec<(String, f64)>,
    attributes_booleans: Vec<(String, bool)>,
    attributes_datetimes: Vec<(String, i64)>,
    updated_at: i64,
    version: u64,
    is_deleted: u8,
}

const CUSTOMERS: &[&str] = &["c1", "c2", "c3", "c4", "c5", "Борис", "o'brien", "c10"];
const ANONYMOUS: &[&str] = &["a1", "a2", "a3", "a4", "a5"];
const NAMES: &[&str] = &[
    "product_viewed",
    "purchase_completed",
    "cart_updated",
    "Заказ оформлен",
];
const SOURCES: &[&str] = &["online_store", "mobile_app"];
const TEXTS: &[&str] = &[
    "Jacket",
    "Jackets",
    "Bag",
    "Bags",
    "Азбука",
    "x' OR '1'='1",
    "",
];
const NUMBERS: &[f64] = &[0.0, 60.0, 100.0, 150.0, 0.5, -3.0];

fn catalogue() -> Catalogue {
    let prop = |code: &str, ty| PropertyDef {
        code: code.into(),
        name: code.into(),
        ty,
    };
    let all = ["category", "name", "points", "gift", "paid_at"]
        .iter()
        .map(|c| TypeProperty {
            code: c.to_string(),
            required: false,
        })
        .collect::<Vec<_>>();
    Catalogue {
        properties: vec![
            prop("category", PropertyType::String),
            prop("name", PropertyType::String),
            prop("points", PropertyType::Number),
            prop("gift", PropertyType::Boolean),
            prop("paid_at", PropertyType::Datetime),
        ],
        event_types: ["product_viewed", "purchase_completed"]
            .iter()
            .map(|code| EventTypeDef {
                code: code.to_string(),
                name: code.to_string(),
                kind: EventKind::Customer,
                properties: all.clone(),
            })
            .collect(),
        accept_undeclared: true,
    }
}

fn generate_data(rng: &mut Rng, now: i64) -> Data {
    let mut data = Data::default();
    let mut times = HashSet::new();
    for i in 0..EVENTS_PER_ROUND {
        // Even milliseconds for events, odd for explicit links: no two links of one visitor tie.
        let mut t = now - rng.below(60 * DAY as u64) as i64 + 2 * DAY / 24;
        if rng.chance(15) {
            // Near a UTC midnight, where local days and UTC days disagree.
            t = t - t.rem_euclid(DAY) + rng.below(4) as i64 * 3_600_000 - 2 * 3_600_000;
        }
        t -= t.rem_euclid(2);
        while !times.insert(t) {
            t += 2;
        }
        let (kind, customer_id, anonymous_id) = match rng.below(20) {
            0 => (EventKind::System, String::new(), String::new()),
            1..=4 => (
                EventKind::Customer,
                String::new(),
                rng.pick(ANONYMOUS).to_string(),
            ),
            5..=6 => (
                EventKind::Customer,
                rng.pick(CUSTOMERS).to_string(),
                rng.pick(ANONYMOUS).to_string(),
            ),
            _ => (
                EventKind::Customer,
                rng.pick(CUSTOMERS).to_string(),
                String::new(),
            ),
        };
        let mut context = BTreeMap::new();
        for key in ["category", "name"] {
            if rng.chance(50) {
                context.insert(
                    key.to_string(),
                    ContextValue::String(rng.pick(TEXTS).to_string()),
                );
            }
        }
        if rng.chance(50) {
            context.insert("points".into(), ContextValue::Number(*rng.pick(NUMBERS)));
        }
        if rng.chance(30) {
            context.insert("gift".into(), ContextValue::Bool(rng.chance(50)));
        }
        if rng.chance(40) {
            let at = now - rng.below(40) as i64 * DAY + rng.below(DAY as u64) as i64;
            let mut text = format_rfc3339_ms(at);
            if rng.chance(50) {
                // The same instant written with a +03:00 offset.
                text = format_rfc3339_ms(at + 3 * 3_600_000).replace('Z', "+03:00");
            }
            context.insert("paid_at".into(), ContextValue::String(text));
        }
        if rng.chance(20) {
            // An undeclared key, stored as a number.
            context.insert(
                "size".into(),
                ContextValue::Number(rng.below(3) as f64 + 40.0),
            );
        }
        let event = StoredEvent {
            event_id: Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0000 | i as u128)
                .to_string(),
            kind,
            name: rng.pick(NAMES).to_string(),
            source: rng.pick(SOURCES).to_string(),
            customer_id,
            anonymous_id,
            event_time_ms: t,
            context,
        };
        if rng.chance(10) {
            // A retried event: the same row twice.
            data.events.push(event.clone());
        }
        data.events.push(event);
    }
    for _ in 0..rng.below(5) {
        let at = now - rng.below(30 * DAY as u64) as i64;
        data.links.push(IdentityLink {
            anonymous_id: rng.pick(ANONYMOUS).to_string(),
            customer_id: rng.pick(CUSTOMERS).to_string(),
            linked_at_ms: at - at.rem_euclid(2) + 1,
        });
    }
    let mut who: Vec<&str> = CUSTOMERS.to_vec();
    who.extend(["profile_only_1", "profile_only_2"]);
    for customer in who {
        if !rng.chance(60) {
            continue;
        }
        for version in 1..=(1 + rng.below(3)) {
            let mut row = ProfileRow {
                customer_id: customer.to_string(),
                first_name: rng.pick(&["", "Anna", "Анна"]).to_string(),
                email: rng.pick(&["", "a@example.com", "b@shop.test"]).to_string(),
                phone: rng.pick(&["", "+79990001122"]).to_string(),
                birthday: rng.chance(50).then(|| {
                    parse_date(rng.pick::<&str>(&[
                        "1955-03-08",
                        "1980-02-29",
                        "1999-12-31",
                        "2001-06-15",
                    ]))
                    .unwrap()
                }),
                version,
                is_deleted: rng.chance(15),
                ..ProfileRow::default()
            };
            if rng.chance(60) {
                row.consents.insert("email".into(), rng.chance(50));
            }
            if rng.chance(50) {
                row.attributes.insert(
                    "tier".into(),
                    AttributeValue::Str(rng.pick(&["gold", "silver"]).to_string()),
                );
            }
            if rng.chance(50) {
                row.attributes
                    .insert("score".into(), AttributeValue::Num(*rng.pick(NUMBERS)));
            }
            if rng.chance(30) {
                row.attributes
                    .insert("vip".into(), AttributeValue::Bool(rng.chance(50)));
            }
            if rng.chance(30) {
                row.attributes.insert(
                    "signup".into(),
                    AttributeValue::Time(now - rng.below(100) as i64 * DAY),
                );
            }
            data.profiles.push(row);
        }
    }
    data
}

/// The links ClickHouse holds: the explicit ones and those the materialized view derives.
fn links_as_stored(data: &Data) -> Data {
    let mut all = data.clone();
    for e in &data.events {
        if !e.customer_id.is_empty() && !e.anonymous_id.is_empty() {
            all.links.push(IdentityLink {
                anonymous_id: e.anonymous_id.clone(),
                customer_id: e.customer_id.clone(),
                linked_at_ms: e.event_time_ms,
            });
        }
    }
    all
}

fn event_row(partner: Uuid, e: &StoredEvent) -> EventIn {
    let mut row = EventIn {
        partner_id: partner,
        event_id: e.event_id.parse().unwrap(),
        kind: e.kind.as_str().into(),
        name: e.name.clone(),
        source: e.source.clone(),
        source_id: Uuid::nil(),
        customer_id: e.customer_id.clone(),
        anonymous_id: e.anonymous_id.clone(),
        session_id: String::new(),
        occurred_at: e.event_time_ms,
        sent_at: e.event_time_ms,
        received_at: e.event_time_ms,
        event_time: e.event_time_ms,
        context_strings: Vec::new(),
        context_numbers: Vec::new(),
        context_booleans: Vec::new(),
        ingest_path: "server".into(),
        user_agent: String::new(),
        client_ip: String::new(),
    };
    for (k, v) in &e.context {
        match v {
            ContextValue::String(s) => row.context_strings.push((k.clone(), s.clone())),
            ContextValue::Number(n) => row.context_numbers.push((k.clone(), *n)),
            ContextValue::Bool(b) => row.context_booleans.push((k.clone(), *b)),
        }
    }
    row
}

fn profile_row(partner: Uuid, p: &ProfileRow) -> ProfileIn {
    let mut row = ProfileIn {
        partner_id: partner,
        customer_id: p.customer_id.clone(),
        first_name: p.first_name.clone(),
        last_name: p.last_name.clone(),
        email: p.email.clone(),
        phone: p.phone.clone(),
        birthday: p.birthday.map(|d| day_number(d) as i32),
        consents: p.consents.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        attributes_strings: Vec::new(),
        attributes_numbers: Vec::new(),
        attributes_booleans: Vec::new(),
        attributes_datetimes: Vec::new(),
        updated_at: 0,
        version: p.version,
        is_deleted: u8::from(p.is_deleted),
    };
    for (k, v) in &p.attributes {
        match v {
            AttributeValue::Str(s) => row.attributes_strings.push((k.clone(), s.clone())),
            AttributeValue::Num(n) => row.attributes_numbers.push((k.clone(), *n)),
            AttributeValue::Bool(b) => row.attributes_booleans.push((k.clone(), *b)),
            AttributeValue::Time(t) => row.attributes_datetimes.push((k.clone(), *t)),
        }
    }
    row
}

async fn load(db: &Client, partner: Uuid, data: &Data) {
    // Retried copies go in a second insert: another part, which (merges stopped) stays unmerged.
    let mut seen = HashSet::new();
    let (firsts, copies): (Vec<&StoredEvent>, Vec<&StoredEvent>) = data
        .events
        .iter()
        .partition(|e| seen.insert(e.event_id.clone()));
    for batch in [firsts, copies] {
        let mut insert = db.insert::<EventIn>("events").await.unwrap();
        for e in batch {
            insert.write(&event_row(partner, e)).await.unwrap();
        }
        insert.end().await.unwrap();
    }
    let mut insert = db.insert::<LinkIn>("identity_links").await.unwrap();
    for l in &data.links {
        insert
            .write(&LinkIn {
                partner_id: partner,
                anonymous_id: l.anonymous_id.clone(),
                customer_id: l.customer_id.clone(),
                linked_at: l.linked_at_ms,
            })
            .await
            .unwrap();
    }
    insert.end().await.unwrap();
    // One insert per version number, so a customer's versions sit in different parts.
    let versions: BTreeSet<u64> = data.profiles.iter().map(|p| p.version).collect();
    for version in versions {
        let mut insert = db.insert::<ProfileIn>("customer_profiles").await.unwrap();
        for p in data.profiles.iter().filter(|p| p.version == version) {
            insert.write(&profile_row(partner, p)).await.unwrap();
        }
        insert.end().await.unwrap();
    }
}

fn period(rng: &mut Rng) -> Value {
    match rng.below(3) {
        0 => json!({"last_days": 1 + rng.below(45)}),
        1 => {
            let a = 1 + rng.below(28);
            let b = a + rng.below(20);
            let day = |d: u64| {
                let ms = parse_rfc3339_ms("2026-10-01T00:00:00Z").unwrap() + d as i64 * DAY;
                format_rfc3339_ms(ms)[..10].to_string()
            };
            json!({"between": [day(a), day(b)]})
        }
        _ => json!({"since": *rng.pick(&["2026-11-01", "2026-11-29", "2026-10-15"])}),
    }
}

fn predicate(rng: &mut Rng) -> Value {
    match rng.below(7) {
        0 | 1 => {
            let key = *rng.pick(&["category", "name"]);
            let op = *rng.pick(&["eq", "ne", "in", "not_in", "contains", "exists"]);
            let value = match op {
                "in" | "not_in" => json!([rng.pick(TEXTS), rng.pick(TEXTS)]),
                "contains" => json!(rng.pick(&["Jack", "Bag", "Аз", "'"])),
                "exists" => return json!({"key": key, "op": op}),
                _ => json!(rng.pick(TEXTS)),
            };
            json!({"key": key, "op": op, "value": value})
        }
        2 | 3 => {
            let op = *rng.pick(&[
                "eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "exists",
            ]);
            let value = match op {
                "between" => json!([60, 150]),
                "in" | "not_in" => json!([rng.pick(NUMBERS), rng.pick(NUMBERS)]),
                "exists" => return json!({"key": "points", "op": op}),
                _ => json!(rng.pick(NUMBERS)),
            };
            json!({"key": "points", "op": op, "value": value})
        }
        4 => json!({"key": "gift", "op": rng.pick(&["eq", "ne"]), "value": rng.chance(50)}),
        5 => {
            let op = *rng.pick(&["gt", "gte", "lt", "lte", "between", "eq", "exists"]);
            let at = |r: &mut Rng| {
                format_rfc3339_ms(parse_rfc3339_ms(NOW).unwrap() - r.below(40) as i64 * DAY)
            };
            let value = match op {
                "between" => {
                    let (a, b) = (at(rng), at(rng));
                    if a <= b {
                        json!([a, b])
                    } else {
                        json!([b, a])
                    }
                }
                "exists" => return json!({"key": "paid_at", "op": op}),
                _ => json!(at(rng)),
            };
            json!({"key": "paid_at", "op": op, "value": value})
        }
        _ => match rng.below(2) {
            0 => json!({"key": "size", "op": "gte", "value": 41}),
            _ => json!({"key": "size", "op": "exists"}),
        },
    }
}

fn event_filter(rng: &mut Rng, name_optional: bool) -> serde_json::Map<String, Value> {
    let mut c = serde_json::Map::new();
    let where_count = rng.below(3);
    if !name_optional || where_count == 0 || rng.chance(60) {
        c.insert("name".into(), json!(rng.pick(NAMES)));
    }
    if rng.chance(30) {
        c.insert("sources".into(), json!([rng.pick(SOURCES)]));
    }
    if where_count > 0 && rng.chance(30) {
        // All `eq` / `in` on one string key: what the context index serves (migration 0010).
        let key = *rng.pick(&["category", "name"]);
        let preds: Vec<Value> = (0..where_count)
            .map(|_| match rng.below(2) {
                0 => json!({"key": key, "op": "eq", "value": rng.pick(TEXTS)}),
                _ => json!({"key": key, "op": "in", "value": [rng.pick(TEXTS), rng.pick(TEXTS)]}),
            })
            .collect();
        c.insert("where".into(), Value::Array(preds));
    } else if where_count > 0 {
        let preds: Vec<Value> = (0..where_count).map(|_| predicate(rng)).collect();
        c.insert("where".into(), Value::Array(preds));
    }
    c
}

/// Tests of one filter's events under `all`, some negated, maybe with another condition: what
/// the compiler takes as one grouping (`HAVING` over all of the customer's events).
fn same_events(rng: &mut Rng, depth: u32) -> Value {
    let filter = event_filter(rng, false);
    let mut all: Vec<Value> = (0..2 + rng.below(2))
        .map(|_| {
            let mut c = filter.clone();
            let node = match rng.below(3) {
                0 => {
                    let op = *rng.pick(&["gte", "lte", "eq"]);
                    c.insert("count".into(), json!({"op": op, "value": rng.below(4)}));
                    if rng.chance(60) {
                        c.insert("period".into(), period(rng));
                    }
                    json!({"event": c})
                }
                1 => {
                    c.insert("period".into(), period(rng));
                    json!({"last_event": c})
                }
                _ => {
                    c.insert(
                        "op".into(),
                        json!(rng.pick(&["eq", "gt", "gte", "lt", "lte"])),
                    );
                    c.insert("value".into(), json!(rng.below(40)));
                    json!({"days_since_last": c})
                }
            };
            if rng.chance(35) {
                json!({ "not": node })
            } else {
                node
            }
        })
        .collect();
    if rng.chance(50) {
        all.push(condition(rng, depth + 1));
    }
    json!({ "all": all })
}

fn condition(rng: &mut Rng, depth: u32) -> Value {
    let leaf = depth >= 3 || rng.chance(55);
    if !leaf {
        return match rng.below(4) {
            3 => same_events(rng, depth),
            0 => {
                json!({"all": (0..1 + rng.below(3)).map(|_| condition(rng, depth + 1)).collect::<Vec<_>>()})
            }
            1 => {
                json!({"any": (0..1 + rng.below(3)).map(|_| condition(rng, depth + 1)).collect::<Vec<_>>()})
            }
            _ => json!({"not": condition(rng, depth + 1)}),
        };
    }
    match rng.below(10) {
        0..=4 => {
            let mut c = event_filter(rng, true);
            if rng.chance(60) {
                let op = *rng.pick(&["gte", "lte", "eq"]);
                c.insert("count".into(), json!({"op": op, "value": rng.below(4)}));
            }
            if rng.chance(60) {
                c.insert("period".into(), period(rng));
            }
            json!({"event": c})
        }
        5 => {
            let mut c = event_filter(rng, false);
            c.insert("period".into(), period(rng));
            json!({"last_event": c})
        }
        6 => {
            let mut c = event_filter(rng, false);
            c.insert(
                "op".into(),
                json!(rng.pick(&["eq", "gt", "gte", "lt", "lte"])),
            );
            c.insert("value".into(), json!(rng.below(40)));
            json!({"days_since_last": c})
        }
        _ => json!({"profile": *rng.pick(&[
            json!({"field": "birthday", "op": "exists"}),
            json!({"field": "birthday", "op": "gte", "value": "1990-01-01"}),
            json!({"field": "birthday", "op": "between", "value": ["1980-02-29", "1999-12-31"]}),
            json!({"field": "email", "op": "exists"}),
            json!({"field": "email", "op": "contains", "value": "example"}),
            json!({"field": "first_name", "op": "eq", "value": "Анна"}),
            json!({"field": "first_name", "op": "ne", "value": "Anna"}),
            json!({"field": "phone", "op": "not_in", "value": ["+79990001122"]}),
            json!({"field": "consents.email", "op": "eq", "value": true}),
            json!({"field": "consents.email", "op": "exists"}),
            json!({"field": "attributes.tier", "op": "in", "value": ["gold"]}),
            json!({"field": "attributes.score", "op": "gt", "value": 50}),
            json!({"field": "attributes.vip", "op": "eq", "value": false}),
            json!({"field": "attributes.signup", "op": "gte", "value": "2026-10-01T00:00:00Z", "type": "datetime"}),
            json!({"field": "attributes.signup", "op": "exists"}),
        ])}),
    }
}

fn bind(db: &Client, query: &Query, partner: Uuid) -> clickhouse::query::Query {
    let mut q = db.query(&query.sql).param("partner", partner.to_string());
    for p in &query.params {
        q = q.param(&p.name, &p.value);
    }
    q
}

#[tokio::test(flavor = "multi_thread")]
async fn compiled_segments_select_exactly_the_reference_evaluators_customers() {
    let t = TestCollector::start().await;
    // Retried copies must still be separate rows when the queries run.
    t.db.query("SYSTEM STOP MERGES events")
        .execute()
        .await
        .unwrap();
    t.db.query("SYSTEM STOP MERGES customer_profiles")
        .execute()
        .await
        .unwrap();
    let seed: u64 = std::env::var("SEGMENT_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now_ms() as u64);
    let now = parse_rfc3339_ms(NOW).unwrap();
    let catalogue = catalogue();
    let (mut compared, mut non_empty, mut indexed, mut merged) = (0, 0, 0, 0);
    for round in 0..ROUNDS {
        let mut rng = Rng(seed.wrapping_add(round).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let partner = Uuid::new_v4();
        let data = generate_data(&mut rng, now);
        load(&t.db, partner, &data).await;
        let stored = links_as_stored(&data);
        let zone = ZONES[round as usize % ZONES.len()];
        let clock = Clock::new(zone, now).unwrap();
        for _ in 0..DEFINITIONS_PER_ROUND {
            let definition = condition(&mut rng, 0).to_string();
            let Ok(segment) = validate_json(&definition, &catalogue) else {
                continue;
            };
            let expected = evaluate::members(&segment, &stored, &clock);
            let query = compile::members(&segment, &clock);
            let got: BTreeSet<String> = bind(&t.db, &query, partner)
                .fetch_all::<String>()
                .await
                .unwrap_or_else(|e| panic!("seed {seed} {zone} {definition}: {e}\n{}", query.sql))
                .into_iter()
                .collect();
            assert_eq!(
                got, expected,
                "seed {seed}, round {round}, {zone}: {definition}\n{}\n{:?}",
                query.sql, query.params
            );
            compared += 1;
            non_empty += usize::from(!expected.is_empty());
            indexed += usize::from(
                !expected.is_empty() && query.sql.contains("FROM event_context_strings"),
            );
            // Several tests of the same events in one grouping (one HAVING with NOT or a
            // per-period count).
            merged += usize::from(
                !expected.is_empty()
                    && ["countIf(", "uniqExactIf(", "AND NOT (", "HAVING NOT ("]
                        .iter()
                        .any(|m| query.sql.contains(m)),
            );
            if compared % 10 == 0 {
                let count = bind(&t.db, &compile::member_count(&segment, &clock), partner)
                    .fetch_one::<u64>()
                    .await
                    .unwrap();
                assert_eq!(count as usize, expected.len(), "count of {definition}");
                let mut paged = Vec::new();
                let mut after: Option<String> = None;
                // Bounded: a page condition that does not apply would repeat a page forever.
                for _ in 0..=expected.len() / 3 + 1 {
                    let page = compile::member_page(&segment, &clock, after.as_deref(), 3);
                    let ids: Vec<String> = bind(&t.db, &page, partner).fetch_all().await.unwrap();
                    after = ids.last().cloned();
                    let done = ids.len() < 3;
                    paged.extend(ids);
                    if done {
                        break;
                    }
                }
                assert_eq!(
                    paged,
                    expected.iter().cloned().collect::<Vec<_>>(),
                    "pages of {definition}"
                );
            }
        }
    }
    eprintln!(
        "seed {seed}: {compared} definitions compared, {non_empty} with members, \
         {indexed} of those read the context index, {merged} grouped tests of the same events"
    );
    // The generator must exercise something: most definitions valid, many with members.
    assert!(
        compared >= (ROUNDS as usize * DEFINITIONS_PER_ROUND) / 2,
        "only {compared} compared"
    );
    assert!(
        non_empty * 4 >= compared,
        "only {non_empty} of {compared} non-empty"
    );
    // Both reads of event conditions are compared: `events` and the context index, and tests
    // grouped over the same events (about 5 % of definitions each; seeds are random, so the
    // bound is loose).
    assert!(
        indexed >= 2,
        "only {indexed} of {compared} read the context index"
    );
    assert!(
        merged >= 2,
        "only {merged} of {compared} grouped tests of the same events"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_named_examples_hold_in_clickhouse_too() {
    // The jacket example with its counter-examples, through the real tables.
    let t = TestCollector::start().await;
    let now = parse_rfc3339_ms(NOW).unwrap();
    let clock = Clock::new("Europe/Moscow", now).unwrap();
    let partner = Uuid::new_v4();
    let mut data = Data::default();
    let mut add = |id: u128, customer: &str, anon: &str, source: &str, at: &str, category: &str| {
        data.events.push(StoredEvent {
            event_id: Uuid::from_u128(id).to_string(),
            kind: EventKind::Customer,
            name: "product_viewed".into(),
            source: source.into(),
            customer_id: customer.into(),
            anonymous_id: anon.into(),
            event_time_ms: parse_rfc3339_ms(at).unwrap(),
            context: [(
                "category".to_string(),
                ContextValue::String(category.into()),
            )]
            .into(),
        });
    };
    add(
        1,
        "in",
        "",
        "online_store",
        "2026-10-31T21:00:00Z",
        "Jacket",
    );
    add(
        2,
        "out_31_days",
        "",
        "online_store",
        "2026-10-30T08:00:00Z",
        "Jacket",
    );
    add(
        3,
        "out_mobile",
        "",
        "mobile_app",
        "2026-11-20T08:00:00Z",
        "Jacket",
    );
    add(
        4,
        "out_jackets",
        "",
        "online_store",
        "2026-11-20T08:00:00Z",
        "Jackets",
    );
    // A visitor's view, then their login on another event: the view counts for the customer.
    add(
        5,
        "",
        "visitor",
        "online_store",
        "2026-11-20T08:00:00Z",
        "Jacket",
    );
    add(
        6,
        "after_login",
        "visitor",
        "mobile_app",
        "2026-11-21T08:00:00Z",
        "Shoes",
    );
    load(&t.db, partner, &data).await;
    let definition = r#"{"event": {"name": "product_viewed", "sources": ["online_store"],
        "where": [{"key": "category", "op": "eq", "value": "Jacket"}],
        "count": {"op": "gte", "value": 1}, "period": {"last_days": 30}}}"#;
    let segment = validate_json(definition, &catalogue()).unwrap();
    let got: Vec<String> = bind(
        &t.db,
        &compile::member_page(&segment, &clock, None, 100),
        partner,
    )
    .fetch_all()
    .await
    .unwrap();
    assert_eq!(got, ["after_login", "in"]);
    let expected = evaluate::members(&segment, &links_as_stored(&data), &clock);
    assert_eq!(got, expected.into_iter().collect::<Vec<_>>());
    t.finish().await;
}
