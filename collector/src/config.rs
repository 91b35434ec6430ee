//! The collector's one typed configuration: every field is a CLI flag and an environment
//! variable, and every default works on a developer machine with nothing set.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// The admin token used when neither `EVENTLINE_ADMIN_TOKEN` nor `EVENTLINE_ADMIN_TOKEN_FILE` is
/// set; accepted on loopback only (see [`crate::admin_token`]).
pub const LOCAL_ADMIN_TOKEN: &str = "eventline-local-admin-token";

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

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending schema migrations, then serve HTTP (the default).
    Serve,
    /// Apply pending schema migrations and exit.
    Migrate,
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

    /// Timeout of each ClickHouse request, in milliseconds.
    #[arg(
        long,
        env = "EVENTLINE_CLICKHOUSE_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub clickhouse_timeout_ms: u64,

    /// Store the client IP with each event (`false` drops it before storage).
    #[arg(long, env = "EVENTLINE_KEEP_CLIENT_IP", default_value_t = true, action = clap::ArgAction::Set)]
    pub keep_client_ip: bool,

    /// Take the client IP from `X-Forwarded-For` (only behind a proxy you trust).
    #[arg(long, env = "EVENTLINE_TRUST_FORWARDED_FOR", default_value_t = false, action = clap::ArgAction::Set)]
    pub trust_forwarded_for: bool,

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

    /// Log format: `text` or `json`.
    #[arg(long, env = "EVENTLINE_LOG_FORMAT", default_value = "text")]
    pub log_format: String,

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

    /// Linger period of the sink.
    pub fn batch_linger(&self) -> Duration {
        Duration::from_millis(self.batch_linger_ms)
    }

    /// Timeout of ClickHouse requests.
    pub fn clickhouse_timeout(&self) -> Duration {
        Duration::from_millis(self.clickhouse_timeout_ms)
    }
}
