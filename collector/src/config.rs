//! The collector's one typed configuration: every field is a CLI flag and an environment
//! variable, and every default works on a developer machine with nothing set.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

use crate::campaigns::shard::Shard;
use crate::campaigns::tail::TailSettings;

/// The admin token used when neither `EVENTLINE_ADMIN_TOKEN` nor `EVENTLINE_ADMIN_TOKEN_FILE` is
/// set; accepted on loopback only (see [`crate::admin_token`]).
pub const LOCAL_ADMIN_TOKEN: &str = "eventline-local-admin-token";

/// Largest `EVENTLINE_CAMPAIGN_FANOUT_PAGE`: a page's customer ids and message ids travel as
/// query parameters, and 10,000 UUIDs (370 KiB) stay well below ClickHouse's 1 MiB URI limit.
pub const MAX_CAMPAIGN_FANOUT_PAGE: u32 = 10_000;

/// Command line of the `eventline-collector` binary.
#[derive(Debug, Parser)]
#[command(
    name = "eventline-collector",
    version,
    about = "Eventline event collector"
)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings shared by every command.
    #[command(flatten)]
    pub config: Config,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending schema migrations, then serve HTTP (the default).
    Serve,
    /// Apply pending schema migrations and exit.
    Migrate,
    /// Apply pending schema migrations, then run campaigns (no HTTP) for the share
    /// `EVENTLINE_CAMPAIGN_SHARD` of the customers, reading events from ClickHouse; set
    /// `EVENTLINE_SERVE_CAMPAIGNS=false` on every `serve` then.
    Campaigns,
}

/// What the collector stores of a client's IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientIpMode {
    /// The network address of the IPv4 /24 or IPv6 /48.
    Truncated,
    /// The whole address.
    Full,
    /// Nothing (an empty string).
    None,
}

/// A trusted proxy: a CIDR (`10.0.0.0/8`) or a single address (`192.0.2.7`).
fn parse_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is not an IP address or CIDR such as 10.0.0.0/8"))
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    /// A comma-separated list of CIDRs or addresses; empty entries (and an empty list) are
    /// allowed, so `EVENTLINE_TRUSTED_PROXIES=` means none.
    pub fn parse(text: &str) -> Result<TrustedProxies, String> {
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(parse_proxy)
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

/// A path prefix under which the public routes are served too (`/x7k`), or none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathPrefix(pub String);

impl PathPrefix {
    /// `''` (none), or `/segment[/segment…]` of letters, digits, `-`, `_`, `.` and `~`, without
    /// a trailing slash and not under `/v1` (the collector's own routes).
    pub fn parse(text: &str) -> Result<PathPrefix, String> {
        if text.is_empty() {
            return Ok(PathPrefix::default());
        }
        let valid = text.starts_with('/')
            && text[1..].split('/').all(|segment| {
                !segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && segment
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c))
            });
        if !valid {
            return Err(format!(
                "`{text}` is not a path prefix: use `/name` or `/a/b` (letters, digits, - _ . ~), no trailing slash"
            ));
        }
        if text == "/v1" || text.starts_with("/v1/") || text == "/tracker" {
            return Err(format!(
                "`{text}` would shadow the collector's own routes; choose another prefix"
            ));
        }
        Ok(PathPrefix(text.to_string()))
    }
}

/// Everything the collector can be told.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(long, env = "EVENTLINE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// ClickHouse HTTP endpoint.
    #[arg(long, env = "CLICKHOUSE_URL", default_value = "http://127.0.0.1:18123")]
    pub clickhouse_url: String,

    /// ClickHouse user.
    #[arg(long, env = "CLICKHOUSE_USER", default_value = "default")]
    pub clickhouse_user: String,

    /// ClickHouse password (empty for none).
    #[arg(
        long,
        env = "CLICKHOUSE_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    pub clickhouse_password: String,

    /// ClickHouse database holding Eventline's tables; created if missing.
    #[arg(long, env = "CLICKHOUSE_DATABASE", default_value = "eventline")]
    pub clickhouse_database: String,

    /// Bearer token that guards `/v1/admin/`. Default: the public [`LOCAL_ADMIN_TOKEN`], which
    /// `serve` accepts only on a loopback address; beyond loopback the token must have at least
    /// 32 bytes. Never empty.
    #[arg(long, env = "EVENTLINE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// File holding the admin token (trailing newlines are ignored); instead of
    /// `EVENTLINE_ADMIN_TOKEN`, never together with it. Default: none.
    #[arg(long, env = "EVENTLINE_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// A second accepted admin token, for rotation without downtime; same rules as
    /// `EVENTLINE_ADMIN_TOKEN`. Default: none.
    #[arg(long, env = "EVENTLINE_ADMIN_TOKEN_PREVIOUS", hide_env_values = true)]
    pub admin_token_previous: Option<String>,

    /// File holding the previous admin token; instead of `EVENTLINE_ADMIN_TOKEN_PREVIOUS`.
    /// Default: none.
    #[arg(long, env = "EVENTLINE_ADMIN_TOKEN_PREVIOUS_FILE")]
    pub admin_token_previous_file: Option<PathBuf>,

    /// Largest request body accepted, in bytes, before and after gzip decompression.
    #[arg(long, env = "EVENTLINE_MAX_BODY_BYTES", default_value_t = event_model::limits::MAX_BATCH_BYTES)]
    pub max_body_bytes: usize,

    /// Most rows in one ClickHouse insert.
    #[arg(long, env = "EVENTLINE_BATCH_MAX_ROWS", default_value_t = 20_000)]
    pub batch_max_rows: usize,

    /// Most (approximate) bytes in one ClickHouse insert.
    #[arg(long, env = "EVENTLINE_BATCH_MAX_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub batch_max_bytes: usize,

    /// How long the first request of a batch waits for others to join it, in milliseconds.
    /// Requests wait for their commit, so this is added to ingest latency at low load.
    #[arg(long, env = "EVENTLINE_BATCH_LINGER_MS", default_value_t = 5)]
    pub batch_linger_ms: u64,

    /// Parallel commit lanes of the sink (each is the only writer for its share of event ids).
    /// One lane measured best where ClickHouse shares the collector's two cores; raise it when
    /// ClickHouse has cores of its own to take concurrent inserts.
    #[arg(long, env = "EVENTLINE_SINK_LANES", default_value_t = 1)]
    pub sink_lanes: usize,

    /// Requests that may wait for each sink lane before new ones are answered 429.
    #[arg(long, env = "EVENTLINE_SINK_QUEUE", default_value_t = 4096)]
    pub sink_queue: usize,

    /// (Approximate) bytes of events each sink lane may hold, waiting or being committed,
    /// before new requests are answered 429. The request count alone lets 4,096 requests of
    /// up to 1 MiB pile up (4 GiB) while ClickHouse stalls; 64 MiB holds 64 full-size requests
    /// or some 100,000 typical events, four batches of the default 16 MiB, per lane.
    #[arg(long, env = "EVENTLINE_SINK_QUEUE_BYTES", default_value_t = 64 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub sink_queue_bytes: u64,

    /// Most rejected rows held in memory on their way to `rejected_events` (waiting or being
    /// written); rows beyond it are dropped and counted, never waited for. 50,000 covers a
    /// minute of a badly broken tracker at several hundred rejections a second.
    #[arg(long, env = "EVENTLINE_QUARANTINE_QUEUE_ROWS", default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub quarantine_queue_rows: u64,

    /// Most (approximate) bytes of rejected rows held in memory; the same rule as the rows.
    /// 32 MiB keeps what a ClickHouse outage can pile up small next to the event sink's queue.
    #[arg(long, env = "EVENTLINE_QUARANTINE_QUEUE_BYTES", default_value_t = 32 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub quarantine_queue_bytes: u64,

    /// How long one insert of rejected rows is retried (with backoff up to 5 s) before its rows
    /// are dropped and counted, in seconds. Five minutes ride out a ClickHouse restart.
    #[arg(long, env = "EVENTLINE_QUARANTINE_RETRY_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub quarantine_retry_secs: u64,

    /// Timeout of each ClickHouse request, in milliseconds.
    #[arg(
        long,
        env = "EVENTLINE_CLICKHOUSE_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub clickhouse_timeout_ms: u64,

    /// Time allowed to one segment query (a preview count, a page of members, a CSV export from
    /// its first to its last row), in seconds: ClickHouse stops the query
    /// (`max_execution_time`) and the collector answers `503 storage_unavailable`. Default 30:
    /// far above the one-second goal at 10 million events, so only a runaway definition
    /// or an overloaded server reaches it, and short enough that no query runs unattended.
    #[arg(long, env = "EVENTLINE_SEGMENT_QUERY_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub segment_query_timeout_secs: u64,

    /// What is stored of the client IP: `truncated` (the network address of its IPv4 /24 or
    /// IPv6 /48, e.g. `203.0.113.0`: enough for coarse geography, not a person), `full`, or
    /// `none`. Default `truncated`, so a default install stores no full address. Rate limits
    /// always key on the full address, which is never stored in this mode.
    #[arg(long, env = "EVENTLINE_CLIENT_IP", value_enum, default_value_t = ClientIpMode::Truncated)]
    pub client_ip: ClientIpMode,

    /// Folder of the built tracker (`npm/dist` after `make tracker`: `eventline.js`,
    /// `messages.js`, `snippet.js`, `wasm/eventline_tracker_bg.wasm`), served at
    /// `/tracker/<version>/<file>` so a site can load the tracker from the collector (or from its
    /// own domain through a reverse proxy: first-party serving). Default none: the routes
    /// answer 404 `not_found`. Read once at start-up; a missing file stops the start.
    #[arg(long, env = "EVENTLINE_TRACKER_DIR")]
    pub tracker_dir: Option<std::path::PathBuf>,

    /// A path prefix (`/x7k`) under which the public routes are served too: client ingest
    /// (`<prefix>/v1/events`) and the tracker files (`<prefix>/tracker/…`), for a site that
    /// proxies one path of its own domain to the collector. The admin and server routes are
    /// never under it. Default none.
    #[arg(long, env = "EVENTLINE_PUBLIC_PATH_PREFIX", default_value = "", value_parser = PathPrefix::parse)]
    pub public_path_prefix: PathPrefix,

    /// Proxies whose `X-Forwarded-For` is believed, as comma-separated CIDRs or addresses
    /// (`10.0.0.0/8,192.0.2.7`). Default empty: the header is ignored and the client is the TCP
    /// peer, because anyone can write the header.
    #[arg(long, env = "EVENTLINE_TRUSTED_PROXIES", default_value = "", value_parser = TrustedProxies::parse)]
    pub trusted_proxies: TrustedProxies,

    /// Requests per second allowed from one client IP on the ingest routes (0 = no limit).
    /// Default 100: a browser or app sends a batch every few seconds, so only a flood reaches it.
    #[arg(long, env = "EVENTLINE_RATE_LIMIT_IP_PER_SEC", default_value_t = 100)]
    pub rate_limit_ip_per_sec: u32,

    /// Requests one client IP may send at once above its rate (the bucket size). Default 200.
    #[arg(long, env = "EVENTLINE_RATE_LIMIT_IP_BURST", default_value_t = 200)]
    pub rate_limit_ip_burst: u32,

    /// Requests per second allowed for one partner on the ingest routes, all its clients
    /// together (0 = no limit). Default 1,000: ten times what one address may send, so no
    /// single address can use up a partner's share, and far above one shop's normal traffic
    /// (thousands of visitors each sending a batch every few seconds, batched up to 500
    /// events). Raise it for a partner with more traffic.
    #[arg(
        long,
        env = "EVENTLINE_RATE_LIMIT_PARTNER_PER_SEC",
        default_value_t = 1_000
    )]
    pub rate_limit_partner_per_sec: u32,

    /// Requests one partner may send at once above its rate. Default 2,000.
    #[arg(
        long,
        env = "EVENTLINE_RATE_LIMIT_PARTNER_BURST",
        default_value_t = 2_000
    )]
    pub rate_limit_partner_burst: u32,

    /// Time allowed to receive a whole request body, in milliseconds; slower senders get
    /// `408 body_timeout`. Default 10 s: a 1 MiB body at 1 Mbit/s takes about 8 s.
    #[arg(long, env = "EVENTLINE_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    pub body_timeout_ms: u64,

    /// Time allowed to receive a request's headers, in milliseconds (actix answers `408` and
    /// closes). Default 5 s, actix's own.
    #[arg(long, env = "EVENTLINE_HEADER_TIMEOUT_MS", default_value_t = 5_000)]
    pub header_timeout_ms: u64,

    /// Open connections per HTTP worker; beyond it new connections wait in the listen backlog
    /// until one closes. Default 10,000 per worker (keep it under the process's open-file limit).
    #[arg(long, env = "EVENTLINE_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Days a row stays in `rejected_events` (0 = forever). Default 30: long enough to find and
    /// fix a broken integration, short enough that the table cannot grow without bound.
    #[arg(long, env = "EVENTLINE_REJECTED_TTL_DAYS", default_value_t = 30)]
    pub rejected_ttl_days: u32,

    /// How often the source registry is re-read from ClickHouse, in seconds, so changes made
    /// through another collector instance reach this one.
    #[arg(long, env = "EVENTLINE_REGISTRY_REFRESH_SECS", default_value_t = 10)]
    pub registry_refresh_secs: u64,

    /// How often each partner's event retention is enforced (events older than its
    /// `retention_days` deleted), in seconds. Default 3600: an event outlives its retention by
    /// at most about an hour.
    #[arg(long, env = "EVENTLINE_RETENTION_SWEEP_SECS", default_value_t = 3600)]
    pub retention_sweep_secs: u64,

    /// Timeout of each statement of an erasure job (a delete over a partner's events), in
    /// seconds. Default 3600: far above the measured time for 10 million events, so a slow
    /// delete is waited for rather than abandoned while ClickHouse continues it.
    #[arg(long, env = "EVENTLINE_ERASURE_TIMEOUT_SECS", default_value_t = 3600)]
    pub erasure_timeout_secs: u64,

    /// Timeout of each statement of a schema migration, in seconds. Some migrations fill a new
    /// table from the events already stored (0017: the keys of the last 33 days), which takes
    /// minutes on a large table; with the ordinary request timeout the migration would give
    /// up while ClickHouse goes on, and every start would fail the same way.
    #[arg(long, env = "EVENTLINE_MIGRATION_TIMEOUT_SECS", default_value_t = 3600)]
    pub migration_timeout_secs: u64,

    /// Where campaign email goes: an SMTP server URL (`smtp://host:port`; user and password may
    /// be given as `smtp://user:pass@host:port`). Default `smtp://127.0.0.1:1025`: a local mail
    /// catcher, so nothing leaves a developer machine. Plain SMTP only (no TLS) in this version.
    #[arg(
        long,
        env = "EVENTLINE_SMTP_URL",
        default_value = "smtp://127.0.0.1:1025"
    )]
    pub smtp_url: String,

    /// The `From` of campaign email. Default `Eventline <campaigns@eventline.invalid>`: a
    /// reserved domain, so a forgotten setting cannot impersonate anyone.
    #[arg(
        long,
        env = "EVENTLINE_SMTP_FROM",
        default_value = "Eventline <campaigns@eventline.invalid>"
    )]
    pub smtp_from: String,

    /// How long one SMTP delivery may take, in milliseconds (connect, dialogue, data).
    /// Default 10000: a healthy local or relay server answers in well under a second; a hung
    /// one must not hold the message queue for long.
    #[arg(long, env = "EVENTLINE_SMTP_TIMEOUT_MS", default_value_t = 10_000)]
    pub smtp_timeout_ms: u64,

    /// How long one webhook or gateway (SMS, push, Viber) delivery may take, in milliseconds
    /// (connect, TLS, request, answer). Default 10000, as for SMTP: a receiver that answers
    /// later is counted as failed and the message is retried with backoff under the same
    /// `Idempotency-Key`.
    #[arg(long, env = "EVENTLINE_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,

    /// A PEM file of extra root CAs trusted for `https://` webhook and gateway URLs, on top of
    /// Mozilla's roots compiled in (`webpki-roots`): for gateways behind a corporate or private
    /// CA. Default none. Read at start-up: an unreadable file or one without a certificate
    /// stops the start.
    #[arg(long, env = "EVENTLINE_GATEWAY_CA_FILE")]
    pub gateway_ca_file: Option<std::path::PathBuf>,
    /// Customers per page of a system-event fan-out: each page is one keyset query of the
    /// campaign's selection, one read of their states and profiles, and one insert each of
    /// messages and states; the fan-out's progress is recorded after every page. Default 2000:
    /// large enough that 100,000 customers take 50 pages, small enough that a page's id lists
    /// stay far below ClickHouse's 1 MiB URI limit (ids travel as query parameters) and that a
    /// customer event waits at most one page behind a fan-out. 1 to 10000.
    #[arg(long, env = "EVENTLINE_CAMPAIGN_FANOUT_PAGE", default_value_t = 2_000)]
    pub campaign_fanout_page: u32,

    /// How often the campaign engine looks for scheduled campaigns (new, edited or activated
    /// ones; each known one is also looked at when its next day is due), in milliseconds.
    /// Default 30,000: a schedule activated for "today at 09:00" a moment before 09:00 may go
    /// out up to 30 s late; every later day goes out at its time. At least 1.
    #[arg(
        long,
        env = "EVENTLINE_CAMPAIGN_SCHEDULE_POLL_MS",
        default_value_t = 30_000
    )]
    pub campaign_schedule_poll_ms: u64,

    /// Whether `serve` runs campaigns (the engine, fed in-process by the sink, and delivery).
    /// Default `true`: one `serve` is the whole system. Set `false` on every `serve` when
    /// `eventline-collector campaigns` processes run them (two writers of one customer's state
    /// are not supported).
    #[arg(long, env = "EVENTLINE_SERVE_CAMPAIGNS", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub serve_campaigns: bool,

    /// The share `k/N` of the customers this process runs campaigns for: customer `c` belongs
    /// to `xxHash64(c) mod N` (see `campaigns::shard`). Run exactly one engine process per
    /// share, `0/N` to `N-1/N`, all with the same `N`. Default `0/1`: every customer.
    #[arg(long, env = "EVENTLINE_CAMPAIGN_SHARD", default_value = "0/1", value_parser = Shard::from_str_arg)]
    pub campaign_shard: Shard,

    /// Campaign engine lanes in this process: its share split in this many (each lane is the
    /// share `(k + j·N)/(N·lanes)`, with its own engine task, delivery task, checkpoint, fan-out
    /// and schedule progress), so that runs advance in parallel while each customer's state
    /// keeps one writer. Default 1: one engine task advances each hand-off as one batch (a few
    /// ClickHouse round trips per campaign, whatever the number of events), which keeps up
    /// with the `make bench-campaigns` load; more lanes help when sends or segment checks
    /// dominate. `N × lanes` is at most 1024. Keep it fixed: a changed value starts new
    /// shares at the oldest checkpoint (a longer replay), and leaves fan-outs in progress to
    /// the old shares.
    #[arg(long, env = "EVENTLINE_CAMPAIGN_LANES", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub campaign_lanes: u32,

    /// How far before its checkpoint the campaign engine reads `events` again (at start and
    /// every 5 s, `campaigns::tail::FULL_EVERY`), in milliseconds: it must exceed by those 5 s
    /// the time from an event's `received_at` (request arrival) to its commit becoming visible,
    /// plus the clock difference between collectors. Default 30000: three times the default
    /// ClickHouse timeout of one commit. Re-reading is cheap (ids only for events already
    /// advanced).
    #[arg(long, env = "EVENTLINE_CAMPAIGN_TAIL_OVERLAP_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub campaign_tail_overlap_ms: u64,

    /// The pause between two reads of new events by the campaign engine, in milliseconds: what
    /// a separate `campaigns` process adds to an event's latency (half of it on average).
    /// Default 250, for a p99 under one second. Inside `serve` the sink hands events over at
    /// once and the reads only catch what other collectors stored.
    #[arg(long, env = "EVENTLINE_CAMPAIGN_POLL_MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(1..))]
    pub campaign_poll_ms: u64,

    /// Log format: `text` for people, `json` for log collectors; anything else is refused at
    /// start-up rather than silently logging in a format nobody asked for.
    #[arg(long, env = "EVENTLINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// HTTP worker threads (0 = one per core).
    #[arg(long, env = "EVENTLINE_WORKERS", default_value_t = 0)]
    pub workers: usize,
}

impl Config {
    /// The defaults, as if nothing were set (environment ignored); tests start from this.
    pub fn local_defaults() -> Config {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            config: Config,
        }
        // Parse with no arguments; env vars could still leak in, so tests override what matters.
        Only::parse_from(["eventline-collector"]).config
    }

    /// How this process's campaign engine reads events.
    pub fn campaign_tail(&self) -> TailSettings {
        TailSettings {
            shard: self.campaign_shard,
            overlap: Duration::from_millis(self.campaign_tail_overlap_ms),
            poll: Duration::from_millis(self.campaign_poll_ms),
        }
    }

    /// Linger period of the sink.
    pub fn batch_linger(&self) -> Duration {
        Duration::from_millis(self.batch_linger_ms)
    }

    /// Time allowed to one segment query.
    pub fn segment_query_timeout(&self) -> Duration {
        Duration::from_secs(self.segment_query_timeout_secs)
    }

    /// Timeout of ClickHouse requests.
    pub fn clickhouse_timeout(&self) -> Duration {
        Duration::from_millis(self.clickhouse_timeout_ms)
    }

    /// Time allowed to receive a request body.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    /// Checks the campaign settings; the message names the variable to fix.
    pub fn validate_campaign_bounds(&self) -> Result<(), String> {
        if !(1..=MAX_CAMPAIGN_FANOUT_PAGE).contains(&self.campaign_fanout_page) {
            return Err(format!(
                "EVENTLINE_CAMPAIGN_FANOUT_PAGE must be from 1 to {MAX_CAMPAIGN_FANOUT_PAGE}, not {}",
                self.campaign_fanout_page
            ));
        }
        Ok(())
    }

    /// Checks the ingest bounds; the message names the setting to fix.
    pub fn validate_ingest_bounds(&self) -> Result<(), String> {
        for (rate, burst, name) in [
            (
                self.rate_limit_ip_per_sec,
                self.rate_limit_ip_burst,
                "EVENTLINE_RATE_LIMIT_IP_BURST",
            ),
            (
                self.rate_limit_partner_per_sec,
                self.rate_limit_partner_burst,
                "EVENTLINE_RATE_LIMIT_PARTNER_BURST",
            ),
        ] {
            if rate > 0 && burst == 0 {
                return Err(format!(
                    "{name} must be at least 1 while its rate limit is on"
                ));
            }
        }
        if self.body_timeout_ms == 0 || self.header_timeout_ms == 0 {
            return Err(
                "EVENTLINE_BODY_TIMEOUT_MS and EVENTLINE_HEADER_TIMEOUT_MS must be above 0".into(),
            );
        }
        if self.max_connections == 0 {
            return Err("EVENTLINE_MAX_CONNECTIONS must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            config: Config,
        }
        Only::try_parse_from(std::iter::once("eventline-collector").chain(args.iter().copied()))
            .map(|o| o.config)
    }

    #[test]
    fn campaigns_run_in_serve_for_every_customer_unless_told_otherwise() {
        let c = parse(&[]).unwrap();
        assert!(c.serve_campaigns);
        assert_eq!(c.campaign_shard, Shard::ALL);
        let c = parse(&["--serve-campaigns", "false", "--campaign-shard", "1/2"]).unwrap();
        assert!(!c.serve_campaigns);
        assert_eq!(c.campaign_shard.to_string(), "1/2");
        let err = parse(&["--campaign-shard", "2/2"]).unwrap_err().to_string();
        assert!(err.contains("0/2 to 1/2"), "{err}");
        assert!(parse(&["--campaign-tail-overlap-ms", "0"]).is_err());
    }

    #[test]
    fn the_log_format_is_text_or_json_and_nothing_else() {
        assert_eq!(parse(&[]).unwrap().log_format, LogFormat::Text);
        assert_eq!(
            parse(&["--log-format", "json"]).unwrap().log_format,
            LogFormat::Json
        );
        let err = parse(&["--log-format", "xml"]).unwrap_err().to_string();
        assert!(err.contains("xml") && err.contains("json"), "{err}");
    }

    #[test]
    fn a_public_path_prefix_is_slash_separated_safe_segments_outside_the_collectors_routes() {
        assert_eq!(PathPrefix::parse(""), Ok(PathPrefix::default()));
        assert_eq!(PathPrefix::parse("/x7k").unwrap().0, "/x7k");
        assert_eq!(PathPrefix::parse("/a/b-c_d.e~f").unwrap().0, "/a/b-c_d.e~f");
        for bad in [
            "x7k", "/x7k/", "/", "//a", "/a/../b", "/a b", "/v1", "/v1/x", "/tracker", "/é",
        ] {
            assert!(PathPrefix::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_single_addresses() {
        assert_eq!(
            parse_proxy(" 10.0.0.0/8").unwrap(),
            "10.0.0.0/8".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            parse_proxy("2001:db8::1").unwrap(),
            "2001:db8::1/128".parse::<IpNet>().unwrap()
        );
        assert!(parse_proxy("10.0.0.0/33").is_err());
        assert!(parse_proxy("proxy.example").is_err());
        assert_eq!(TrustedProxies::parse(""), Ok(TrustedProxies::default()));
        assert_eq!(
            TrustedProxies::parse("10.0.0.0/8, 192.0.2.7,")
                .unwrap()
                .0
                .len(),
            2
        );
        assert!(TrustedProxies::parse("10.0.0.0/8,bogus").is_err());
    }

    #[test]
    fn the_defaults_pass_validation_and_a_zero_burst_does_not() {
        let mut c = Config::local_defaults();
        assert_eq!(c.validate_ingest_bounds(), Ok(()));
        assert_eq!(c.client_ip, ClientIpMode::Truncated);
        assert!(c.trusted_proxies.0.is_empty());
        c.rate_limit_ip_burst = 0;
        assert!(c
            .validate_ingest_bounds()
            .unwrap_err()
            .contains("EVENTLINE_RATE_LIMIT_IP_BURST"));
        c.rate_limit_ip_per_sec = 0;
        assert_eq!(c.validate_ingest_bounds(), Ok(()), "0 turns the limit off");
    }

    #[test]
    fn a_fan_out_page_of_zero_or_over_the_bound_is_refused_at_start() {
        let mut c = Config::local_defaults();
        assert_eq!(c.campaign_fanout_page, 2_000);
        assert_eq!(c.validate_campaign_bounds(), Ok(()));
        for bad in [0, MAX_CAMPAIGN_FANOUT_PAGE + 1] {
            c.campaign_fanout_page = bad;
            let err = c.validate_campaign_bounds().unwrap_err();
            assert!(err.contains("EVENTLINE_CAMPAIGN_FANOUT_PAGE"), "{err}");
        }
        c.campaign_fanout_page = MAX_CAMPAIGN_FANOUT_PAGE;
        assert_eq!(c.validate_campaign_bounds(), Ok(()));
    }
}
