//! Audience benchmark (not a test): loads a synthetic partner (by default 10 million events of
//! one million customers) into a fresh database migrated by the collector's own migrations, then
//! times the example segments of issue 7 as a member count and as the first page of members
//! (compiled by `eventline-audience`), and one customer's history and card with the collector's
//! own queries. Goal: every query under 1 s, ClickHouse memory per query under 1 GiB.
//!
//! Run with `make bench-audience` (starts a private local ClickHouse), or
//! `cargo bench -p eventline-collector --bench audience -- --events 100000000` against the
//! server in `EVENTLINE_BENCH_CLICKHOUSE_URL`. `--keep` leaves the database for another run
//! with `--reuse`. The data is generated inside ClickHouse (`INSERT … SELECT … FROM numbers(N)`),
//! deterministic for a given `--seed`; the distributions are documented on [`EVENTS_SQL`].
//!
//! Memory: the `memory_usage` of the `X-ClickHouse-Summary` header is the memory held when the
//! query ends, not its peak, and the local chdb-served ClickHouse has no `system.query_log`. So
//! one extra, untimed run of every query is watched through `system.processes`, whose
//! `peak_memory_usage` is sampled every few milliseconds: the reported peak is the last sample,
//! a lower bound that misses at most the final milliseconds of growth.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use clickhouse::Client;
use event_model::catalog::{PropertyDef, PropertyType};
use eventline_audience::compile::{self, Query};
use eventline_audience::{validate_json, Catalogue, Clock, Segment};
use eventline_collector::config::Config;
use eventline_collector::customers::queries::{self, HistoryQuery, DEFAULT_HISTORY_LIMIT};
use eventline_collector::registry::catalog::PREDEFINED_PROPERTIES;
use eventline_collector::store::migrations::migrate;
use eventline_collector::store::Store;
use uuid::Uuid;

#[derive(Parser, Debug)]
#[command(about = "Eventline audience benchmark: segment counts, member pages, histories")]
struct Args {
    /// Events to generate (retried duplicates included).
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Customers (default: events / 10).
    #[arg(long)]
    customers: Option<u64>,
    /// Timed runs of each query (after one untimed run that measures memory).
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Database to load into; dropped first unless `--reuse`.
    #[arg(long, default_value = "eventline_bench_audience")]
    database: String,
    /// Use the data already in `--database` (from a `--keep` run) instead of generating it.
    #[arg(long)]
    reuse: bool,
    /// Keep the database at the end (otherwise it is dropped).
    #[arg(long)]
    keep: bool,
    /// Seed of the generator's hashes: the same seed and sizes give the same data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Partner time zone for periods and days.
    #[arg(long, default_value = "Europe/Moscow")]
    time_zone: String,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The benchmark partner (fixed, so `--reuse` finds it).
const PARTNER: Uuid = Uuid::from_u128(0x0e7e_0000_0000_4000_8000_0000_0000_0001);
const SOURCE_STORE: Uuid = Uuid::from_u128(0x0e7e_0000_0000_4000_8000_0000_0000_0002);
const SOURCE_APP: Uuid = Uuid::from_u128(0x0e7e_0000_0000_4000_8000_0000_0000_0003);
/// Days the events span, ending at the load time.
const DAYS: u64 = 90;
/// Exponent of the customer draw: customer rank `k = floor(C * u^2.5)` for a uniform `u`.
const SKEW: f64 = 2.5;

/// The unique events, generated from row numbers. Every random choice is a hash of
/// (`seed`, row, draw number) mapped to [0, 1), so a seed reproduces the data. Distributions:
/// - customer: rank `k = floor(C * u^2.5)` (a few heavy customers, a long tail: rank 0 gets about
///   0.4 % of all events, the top 1 % of customers about 16 %, a median customer about 6
///   events); the id is `c-<(k * mult + 12345) mod C>` so heavy customers are spread over the
///   id order; a third of customers use two devices (`a-<id>-0`, `a-<id>-1`);
/// - identity: 60 % carry the customer id and the device's anonymous id (they link), 15 % only
///   the customer id (server side), 18 % only the customer's device id (before login; resolves
///   through the links), 6 % a visitor who never logs in (`v-…`), 1 % system events (no ids);
/// - name: product_viewed 45 %, page_viewed 20 %, added_to_cart 12 %, search_performed 8 %,
///   abandoned_cart 5 %, purchase_completed 6 %, customer_profile_updated 2 %,
///   bonuses_calculated 1 %, mobile_app_installed 0.5 %, registration_completed 0.5 %;
/// - source: online_store 65 %, mobile_app 35 %;
/// - time: uniform over the last 90 days;
/// - context: product events have `category` (12 values, skewed: Jacket about 15 %, Cyrillic
///   ones such as Куртка and Азбука), `name` (20 product names, 1 in 20 is `Bag`, another
///   `Bags`), `product_id`, `price`, `in_stock`; searches a `query`; pages a `url`; purchases
///   `store_id`, `cart_content`, `total_price` (exponential, mean 500) and `points_collected`
///   (total / 10, so about 13.5 % of purchases collect more than 100) and `gift`.
const EVENTS_SQL: &str = "
INSERT INTO events (partner_id, event_id, kind, name, source, source_id, customer_id,
    anonymous_id, session_id, occurred_at, sent_at, received_at, event_time, context_strings,
    context_numbers, context_booleans, ingest_path, user_agent, client_ip)
SELECT
    {partner:UUID},
    generateUUIDv4(number),
    if(mode = 99, 'system', 'customer'),
    ev,
    src,
    if(src = 'online_store', {store:UUID}, {app:UUID}),
    if(mode < 75, cust, ''),
    multiIf(mode < 60 OR (mode >= 75 AND mode < 93), device, mode >= 93 AND mode < 99, visitor, ''),
    concat('s-', toString(h8 % 5000000)),
    t, t, t, t,
    multiIf(
        ev IN ('product_viewed', 'added_to_cart', 'abandoned_cart'),
            map('category', category, 'name', product, 'product_id', concat('sku-', toString(h8 % 5000))),
        ev = 'search_performed', map('query', product),
        ev = 'page_viewed', map('url', concat('/catalog/', toString(h8 % 300))),
        ev = 'purchase_completed',
            map('store_id', concat('store-', toString(h8 % 40)), 'cart_content', product),
        CAST(map(), 'Map(String, String)')),
    multiIf(
        ev IN ('product_viewed', 'added_to_cart', 'abandoned_cart'),
            map('price', round(10 + u7 * 990, 2)),
        ev = 'purchase_completed',
            map('total_price', total, 'points_collected', floor(total / 10), 'points_used', floor(u7 * 20)),
        CAST(map(), 'Map(String, Float64)')),
    multiIf(
        ev IN ('product_viewed', 'added_to_cart'), map('in_stock', u7 < 0.9),
        ev = 'purchase_completed', map('gift', u7 < 0.05),
        CAST(map(), 'Map(String, Bool)')),
    if(mode >= 60 AND mode < 75, 'server', 'client'),
    'Mozilla/5.0 (eventline audience bench)',
    ''
FROM (
    SELECT
        number,
        cityHash64({seed:UInt64}, number, 1) / 18446744073709551616.0 AS u1,
        cityHash64({seed:UInt64}, number, 2) % 100 AS mode,
        cityHash64({seed:UInt64}, number, 3) % 1000 AS u3,
        cityHash64({seed:UInt64}, number, 4) / 18446744073709551616.0 AS u4,
        cityHash64({seed:UInt64}, number, 5) / 18446744073709551616.0 AS u5,
        cityHash64({seed:UInt64}, number, 6) / 18446744073709551616.0 AS u6,
        cityHash64({seed:UInt64}, number, 7) / 18446744073709551616.0 AS u7,
        cityHash64({seed:UInt64}, number, 8) AS h8,
        (toUInt64(floor({customers:UInt64} * pow(u1, {skew:Float64}))) * {mult:UInt64} + 12345)
            % {customers:UInt64} AS id,
        concat('c-', toString(id)) AS cust,
        concat('a-', toString(id), '-', toString(if(id % 3 = 0, h8 % 2, 0))) AS device,
        concat('v-', toString(h8 % {customers:UInt64})) AS visitor,
        multiIf(mode = 99, 'catalog_synced',
            u3 < 450, 'product_viewed', u3 < 650, 'page_viewed', u3 < 770, 'added_to_cart',
            u3 < 850, 'search_performed', u3 < 900, 'abandoned_cart',
            u3 < 960, 'purchase_completed', u3 < 980, 'customer_profile_updated',
            u3 < 990, 'bonuses_calculated', u3 < 995, 'mobile_app_installed',
            'registration_completed') AS ev,
        if(u4 < 0.65, 'online_store', 'mobile_app') AS src,
        {now:DateTime64(3, 'UTC')} - toIntervalMillisecond(toInt64(u5 * {span_ms:Float64})) AS t,
        ['Jacket', 'Shoes', 'Куртка', 'Dress', 'Jeans', 'Bag', 'Обувь', 'Hat', 'Сумка',
         'Книги', 'Азбука', 'Игрушки'][1 + toUInt32(floor(12 * pow(u6, 1.3)))] AS category,
        ['Bag', 'Bags', 'Jacket Classic', 'Азбука', 'Куртка зимняя', 'Sneakers', 'Backpack',
         'Scarf', 'Шапка', 'Coat', 'T-shirt', 'Сумка кожаная', 'Boots', 'Gloves', 'Belt',
         'Wallet', 'Книга', 'Umbrella', 'Dress Summer', 'Jeans Slim'][1 + h8 % 20] AS product,
        round(-500 * log(1 - u7), 2) AS total
    FROM numbers({unique:UInt64})
)";

/// Retried duplicates: copies of about one event in a hundred, same id and event time,
/// received two seconds later (what a retry that raced the deduplication leaves behind until
/// ClickHouse merges the copies).
const DUPLICATES_SQL: &str = "
INSERT INTO events
SELECT * REPLACE (received_at + toIntervalSecond(2) AS received_at)
FROM events
WHERE partner_id = {partner:UUID} AND cityHash64(event_id) % 100 = 0
LIMIT {duplicates:UInt64}";

/// Profiles for 40 % of customers: Latin or Cyrillic names, an email for 80 % of them, a phone
/// for half, a birthday for 60 %, email consent for 70 %, a `tier` attribute and a `vip` flag
/// for 2 %. One profile in ten was updated once (a second version), so `FINAL` has work.
const PROFILES_SQL: &str = "
INSERT INTO customer_profiles (partner_id, customer_id, first_name, last_name, email, phone,
    birthday, consents, attributes_strings, attributes_numbers, attributes_booleans,
    attributes_datetimes, updated_at, version, is_deleted)
SELECT
    {partner:UUID},
    concat('c-', toString(number)),
    ['Анна', 'Иван', 'Maria', 'John', 'Ольга', 'Пётр', 'Emma', 'Алексей'][1 + h % 8],
    ['Иванова', 'Smith', 'Петров', 'Garcia', 'Кузнецова', 'Brown'][1 + intDiv(h, 8) % 6],
    if(h % 10 < 8, concat('user', toString(number), '@example.com'), ''),
    if(h % 2 = 0, concat('+7999', leftPad(toString(number % 10000000), 7, '0')), ''),
    if(h % 10 < 6, toDate32('1950-01-01') + toInt32(h % 20000), NULL),
    map('email', h % 10 < 7, 'sms', h % 10 < 3),
    map('tier', ['bronze', 'silver', 'gold', 'platinum'][1 + intDiv(h, 10) % 4]),
    map('score', toFloat64(h % 100)),
    map('vip', h % 50 = 0),
    CAST(map(), 'Map(String, DateTime64(3, \\'UTC\\'))'),
    {now:DateTime64(3, 'UTC')} - toIntervalDay(v),
    toUInt64(3 - v),
    0
FROM (
    SELECT number, cityHash64({seed:UInt64}, number, 20) AS h, arrayJoin([1, 2]) AS v
    FROM numbers({customers:UInt64})
    WHERE h % 100 < 40
)
WHERE v = 2 OR h % 10 = 3";

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A multiplier coprime with `customers`, so `k * mult mod customers` permutes the ids.
fn multiplier(customers: u64) -> u64 {
    (7919..).find(|m| gcd(*m, customers) == 1).unwrap()
}

/// The customer id of rank `k` (0 = the heaviest), as [`EVENTS_SQL`] computes it.
fn customer_of_rank(k: u64, customers: u64) -> String {
    let mult = multiplier(customers);
    format!(
        "c-{}",
        ((u128::from(k) * u128::from(mult) + 12345) % u128::from(customers)) as u64
    )
}

async fn generate(db: &Client, args: &Args, customers: u64, now_ms: i64) -> anyhow::Result<()> {
    let duplicates = args.events / 100;
    let unique = args.events - duplicates;
    let now = ch_time(now_ms);
    let started = Instant::now();
    db.query(EVENTS_SQL)
        .param("partner", PARTNER.to_string())
        .param("store", SOURCE_STORE.to_string())
        .param("app", SOURCE_APP.to_string())
        .param("seed", args.seed)
        .param("customers", customers)
        .param("skew", SKEW)
        .param("mult", multiplier(customers))
        .param("now", &now)
        .param("span_ms", (DAYS * 86_400_000) as f64)
        .param("unique", unique)
        .execute()
        .await?;
    println!(
        "  {unique} unique events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    db.query(DUPLICATES_SQL)
        .param("partner", PARTNER.to_string())
        .param("duplicates", duplicates)
        .execute()
        .await?;
    println!(
        "  {duplicates} retried duplicates in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    db.query(PROFILES_SQL)
        .param("partner", PARTNER.to_string())
        .param("seed", args.seed)
        .param("customers", customers)
        .param("now", &now)
        .execute()
        .await?;
    println!("  profiles in {:.1} s", t.elapsed().as_secs_f64());
    println!("  load total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn ch_time(ms: i64) -> String {
    event_model::timestamp::format_rfc3339_ms(ms)
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// The partner's catalogue as validation sees it: the predefined properties, plus the product
/// keys the generator sends; undeclared names are accepted.
fn catalogue() -> Catalogue {
    let mut properties: Vec<PropertyDef> = PREDEFINED_PROPERTIES
        .iter()
        .map(|(code, name, ty)| PropertyDef {
            code: code.to_string(),
            name: name.to_string(),
            ty: *ty,
        })
        .collect();
    for code in ["category", "name"] {
        properties.push(PropertyDef {
            code: code.into(),
            name: code.into(),
            ty: PropertyType::String,
        });
    }
    Catalogue {
        properties,
        event_types: Vec::new(),
        accept_undeclared: true,
    }
}

/// The issue's examples, with dates relative to `today` (the partner-local date of "now").
fn segments(clock: &Clock) -> Vec<(&'static str, String)> {
    let day = |back: i64| {
        clock
            .today()
            .checked_sub(jiff::Span::new().days(back))
            .unwrap()
            .to_string()
    };
    let between = format!(r#"["{}", "{}"]"#, day(30), day(15));
    vec![
        ("Jacket, Online Store, last 30 days",
         r#"{"event": {"name": "product_viewed", "sources": ["online_store"], "where": [{"key": "category", "op": "eq", "value": "Jacket"}], "count": {"op": "gte", "value": 1}, "period": {"last_days": 30}}}"#.into()),
        ("> 100 points in one purchase",
         r#"{"event": {"name": "purchase_completed", "where": [{"key": "points_collected", "op": "gt", "value": 100}]}}"#.into()),
        ("name = Bag, any event",
         r#"{"event": {"where": [{"key": "name", "op": "eq", "value": "Bag"}]}}"#.into()),
        ("name = Азбука, any event",
         r#"{"event": {"where": [{"key": "name", "op": "eq", "value": "Азбука"}]}}"#.into()),
        ("3+ purchases in 30 days",
         r#"{"event": {"name": "purchase_completed", "count": {"op": "gte", "value": 3}, "period": {"last_days": 30}}}"#.into()),
        ("never purchased (count eq 0)",
         r#"{"event": {"name": "purchase_completed", "count": {"op": "eq", "value": 0}}}"#.into()),
        ("last purchase between two dates",
         format!(r#"{{"last_event": {{"name": "purchase_completed", "period": {{"between": {between}}}}}}}"#)),
        ("days_since_last purchase >= 14",
         r#"{"days_since_last": {"name": "purchase_completed", "op": "gte", "value": 14}}"#.into()),
        ("profile: birthday exists",
         r#"{"profile": {"field": "birthday", "op": "exists"}}"#.into()),
        ("the issue's example (all five)",
         format!(r#"{{"all": [
            {{"event": {{"name": "product_viewed", "sources": ["online_store"], "where": [{{"key": "category", "op": "eq", "value": "Jacket"}}], "count": {{"op": "gte", "value": 1}}, "period": {{"last_days": 30}}}}}},
            {{"not": {{"event": {{"name": "purchase_completed", "period": {{"last_days": 14}}}}}}}},
            {{"last_event": {{"name": "purchase_completed", "period": {{"between": {between}}}}}}},
            {{"days_since_last": {{"name": "purchase_completed", "op": "gte", "value": 14}}}},
            {{"profile": {{"field": "birthday", "op": "exists"}}}}]}}"#)),
    ]
}

fn bind(db: &Client, query: &Query) -> clickhouse::query::Query {
    let mut q = db.query(&query.sql).param("partner", PARTNER.to_string());
    for p in &query.params {
        q = q.param(&p.name, &p.value);
    }
    q
}

/// Samples the peak memory of the queries running in the benchmark's database while `watch`
/// runs; returns the largest `peak_memory_usage` seen, in bytes (0 if the query ended before the
/// first sample).
async fn peak_memory<T, F>(sampler: &Client, watch: F) -> anyhow::Result<(T, u64)>
where
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    let done = Arc::new(AtomicBool::new(false));
    let task = {
        let (sampler, done) = (sampler.clone(), done.clone());
        tokio::spawn(async move {
            let mut peak = 0u64;
            while !done.load(Ordering::Relaxed) {
                let sample: Result<u64, _> = sampler
                    .query(
                        "SELECT toUInt64(max(peak_memory_usage)) FROM system.processes \
                         WHERE query_id != queryID() AND current_database = currentDatabase()",
                    )
                    .fetch_one()
                    .await;
                peak = peak.max(sample.unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            peak
        })
    };
    let out = watch.await;
    done.store(true, Ordering::Relaxed);
    let peak = task.await?;
    Ok((out?, peak))
}

/// Median and 90th percentile, in ms.
fn stats(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.9))
}

/// One line of the table.
struct Line {
    what: String,
    rows: u64,
    p50: f64,
    p90: f64,
    peak: u64,
}

/// Runs `run` once watched for memory, then `runs` times timed.
async fn measure<F, Fut>(
    sampler: &Client,
    runs: usize,
    what: String,
    run: F,
) -> anyhow::Result<Line>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    let (rows, peak) = peak_memory(sampler, run()).await?;
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        run().await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (p50, p90) = stats(ms);
    Ok(Line {
        what,
        rows,
        p50,
        p90,
        peak,
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

async fn describe_data(db: &Client) -> anyhow::Result<()> {
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Shape {
        rows: u64,
        unique: u64,
        customers: u64,
        anonymous: u64,
    }
    let s: Shape = db
        .query(
            "SELECT count() AS rows, uniqExact(event_id) AS unique, \
                    uniqExactIf(customer_id, customer_id != '') AS customers, \
                    uniqExactIf(anonymous_id, anonymous_id != '') AS anonymous \
             FROM events WHERE partner_id = {partner:UUID}",
        )
        .param("partner", PARTNER.to_string())
        .fetch_one()
        .await?;
    let links: u64 = db
        .query("SELECT count() FROM identity_links")
        .fetch_one()
        .await?;
    let profiles: u64 = db
        .query("SELECT count() FROM customer_profiles FINAL")
        .fetch_one()
        .await?;
    let disk: Vec<(String, u64, u64)> = db
        .query(
            "SELECT table, sum(bytes_on_disk), count() FROM system.parts \
             WHERE database = currentDatabase() AND active GROUP BY table ORDER BY table",
        )
        .fetch_all()
        .await?;
    println!(
        "data: {} event rows ({} distinct events, {} duplicate copies), {} customer ids on events, \
         {} anonymous ids, {} identity_links rows, {} profiles",
        s.rows,
        s.unique,
        s.rows - s.unique,
        s.customers,
        s.anonymous,
        links,
        profiles
    );
    let disk: Vec<String> = disk
        .iter()
        .filter(|(_, b, _)| *b > 1 << 20)
        .map(|(t, b, parts)| format!("{t} {:.0} MiB in {parts} parts", mib(*b)))
        .collect();
    println!("on disk: {}", disk.join(", "));
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let args = Args::parse();
    let customers = args.customers.unwrap_or((args.events / 10).max(1));
    let ch_url = std::env::var("EVENTLINE_BENCH_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18140".into());
    let mut config = Config::local_defaults();
    config.clickhouse_url = ch_url.clone();
    config.clickhouse_database = args.database.clone();
    // Loading 100M rows is one long statement.
    config.clickhouse_timeout_ms = 3_600_000;
    let server = Client::default().with_url(&ch_url);
    let db = server.clone().with_database(&args.database);
    println!(
        "Eventline audience benchmark: ClickHouse at {ch_url}, database {}",
        args.database
    );

    if !args.reuse {
        server
            .query("DROP DATABASE IF EXISTS {db:Identifier}")
            .param("db", args.database.as_str())
            .execute()
            .await?;
    }
    // A reused database gets the migrations that landed since it was loaded (new tables are
    // backfilled from its events by their migration).
    migrate(&config).await?;
    if !args.reuse {
        println!(
            "generating {} events of {customers} customers over {DAYS} days (seed {})",
            args.events, args.seed
        );
        let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
        generate(&db, &args, customers, now_ms).await?;
    }
    // "Now" is the newest event's time (plus a minute), so a reused database is read as of its
    // load time and the periods select the same events.
    let now_ms: i64 = db
        .query(
            "SELECT toUnixTimestamp64Milli(max(event_time)) + 60000 FROM events \
             WHERE partner_id = {partner:UUID}",
        )
        .param("partner", PARTNER.to_string())
        .fetch_one()
        .await?;
    describe_data(&db).await?;
    let clock = Clock::new(&args.time_zone, now_ms)?;
    let catalogue = catalogue();
    let sampler = db.clone();
    let mut lines = Vec::new();

    for (title, json) in segments(&clock) {
        let segment: Segment = validate_json(&json, &catalogue)
            .map_err(|e| anyhow::anyhow!("{title}: invalid definition: {e:?}"))?;
        let count = compile::member_count(&segment, &clock);
        lines.push(
            measure(&sampler, args.runs, format!("{title}: count"), || {
                let q = bind(&db, &count);
                async move { Ok(q.fetch_one::<u64>().await?) }
            })
            .await?,
        );
        let page = compile::member_page(&segment, &clock, None, 100);
        lines.push(
            measure(&sampler, args.runs, format!("{title}: first page"), || {
                let q = bind(&db, &page);
                async move { Ok(q.fetch_all::<String>().await?.len() as u64) }
            })
            .await?,
        );
    }

    let store = Store::new(&config);
    let heavy = customer_of_rank(0, customers);
    let typical = customer_of_rank(customers / 2, customers);
    for (label, customer) in [("heavy", heavy), ("typical", typical)] {
        let events: u64 = queries::counts(&store, PARTNER, &customer)
            .await?
            .iter()
            .map(|c| c.events)
            .sum();
        let (store, who) = (&store, customer.as_str());
        lines.push(
            measure(
                &sampler,
                args.runs,
                format!("history, first page: {label} customer {who} ({events} events)"),
                || async move {
                    let page = HistoryQuery {
                        limit: DEFAULT_HISTORY_LIMIT,
                        ..HistoryQuery::default()
                    };
                    Ok(queries::history(store, PARTNER, who, &page).await?.len() as u64)
                },
            )
            .await?,
        );
        lines.push(
            measure(
                &sampler,
                args.runs,
                format!("card event counts: {label} customer {who}"),
                || async move { Ok(queries::counts(store, PARTNER, who).await?.len() as u64) },
            )
            .await?,
        );
    }

    println!(
        "\n{:<62} {:>9} {:>9} {:>9} {:>10}",
        "query", "rows", "p50 ms", "p90 ms", "peak MiB"
    );
    let mut by_verdict = BTreeMap::new();
    for l in &lines {
        let over = l.p50 >= 1000.0 || l.peak >= 1 << 30;
        *by_verdict.entry(over).or_insert(0) += 1;
        println!(
            "{:<62} {:>9} {:>9.0} {:>9.0} {:>10.0}{}",
            l.what,
            l.rows,
            l.p50,
            l.p90,
            mib(l.peak),
            if over { "  <- over the goal" } else { "" }
        );
    }
    let worst_ms = lines.iter().map(|l| l.p50).fold(0.0, f64::max);
    let worst_mem = lines.iter().map(|l| l.peak).max().unwrap_or(0);
    println!(
        "\n{} of {} queries meet the goal (median < 1 s, peak < 1 GiB); slowest median {:.0} ms, \
         largest peak {:.0} MiB ({} timed runs each, memory from a separate watched run)",
        by_verdict.get(&false).copied().unwrap_or(0),
        lines.len(),
        worst_ms,
        mib(worst_mem),
        args.runs
    );

    if !args.keep {
        server
            .query("DROP DATABASE IF EXISTS {db:Identifier}")
            .param("db", args.database.as_str())
            .execute()
            .await?;
    }
    Ok(())
}
