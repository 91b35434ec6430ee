//! Starting and stopping a collector: migrate, load the registry, start the sink, the
//! registry refresher and the HTTP server. `main` and the integration tests both use this.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{middleware, web, App, HttpServer};
use tokio::task::JoinHandle;

use crate::admin_token::AdminTokens;
use crate::campaigns::clock::Clock;
use crate::campaigns::runner as campaign_runner;
use crate::campaigns::standalone::Senders;
use crate::config::Config;
use crate::erasure::Erasure;
use crate::http::rate_limit::{RateLimits, FORGET_IDLE_EVERY};
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::retention;
use crate::sink::{self, BatchLimits, ClickHouseWriter, QuarantineLimits, QuarantineTask};
use crate::store::{migrations, rejected_ttl, Store};

/// How long a shutdown waits for rejected rows to be written once the sink has finished:
/// `docker stop` allows 10 s in all, and the HTTP drain and the last commits come first.
const QUARANTINE_FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// The wait before the first retry of a rejected-rows insert (it doubles up to 5 s).
const QUARANTINE_FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// A running collector.
pub struct Running {
    /// The address it listens on (useful when configured with port 0).
    pub addr: SocketAddr,
    server: actix_web::dev::ServerHandle,
    server_task: JoinHandle<std::io::Result<()>>,
    sink_task: JoinHandle<()>,
    quarantine_task: QuarantineTask,
    refresher: JoinHandle<()>,
    limit_janitor: JoinHandle<()>,
    erasure_task: JoinHandle<()>,
    retention_task: JoinHandle<()>,
    /// The campaign engine and delivery, unless `EVENTLINE_SERVE_CAMPAIGNS=false`.
    campaigns: Option<(JoinHandle<()>, JoinHandle<()>)>,
}

impl Running {
    /// Waits until the server stops (Ctrl-C or SIGTERM), then lets the sink commit what waits
    /// and the quarantine path write what it holds (at most [`QUARANTINE_FLUSH_DEADLINE`]).
    pub async fn wait(self) -> anyhow::Result<()> {
        let Running {
            server_task,
            sink_task,
            quarantine_task,
            refresher,
            limit_janitor,
            erasure_task,
            retention_task,
            campaigns,
            ..
        } = self;
        server_task.await??;
        refresher.abort();
        limit_janitor.abort();
        // An interrupted erasure job is resumed at the next start; its deletes are idempotent.
        erasure_task.abort();
        retention_task.abort();
        // The server dropped its sink and quarantine handles on the way out, so the sink ends
        // after its last commit and the quarantine task once it has written what it holds.
        sink_task.await?;
        // The sink's lanes dropped their hand-off: the engine advances what it was handed,
        // then ends. Whatever it had not finished is safe to cut (see campaigns::runner).
        if let Some((engine, delivery)) = campaigns {
            campaign_runner::drain(engine, delivery).await;
        }
        quarantine_task.finish(QUARANTINE_FLUSH_DEADLINE).await;
        Ok(())
    }

    /// Stops at once without waiting for anything (for clean-up paths that cannot await):
    /// the server is told to stop, the background tasks are cancelled.
    pub fn abort(self) {
        // The stop command is sent when `stop` is called; its future only waits for completion.
        drop(self.server.stop(false));
        self.server_task.abort();
        self.refresher.abort();
        self.sink_task.abort();
        if let Some((engine, delivery)) = self.campaigns {
            engine.abort();
            delivery.abort();
        }
    }

    /// Stops gracefully: in-flight requests finish, then the sink commits and ends.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.stop(true).await;
        self.wait().await
    }
}

/// Checks the admin tokens, migrates, then starts serving; returns once the socket is bound.
/// Refuses (before contacting ClickHouse) to serve with admin tokens that
/// [`AdminTokens::from_config`] rejects.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    start_with_clock(config, Clock::system()).await
}

/// [`start`], with the campaign engine on `clock` (tests shift it to put the engine at a given
/// partner-local time without waiting).
pub async fn start_with_clock(config: Config, clock: Clock) -> anyhow::Result<Running> {
    let admin_tokens = AdminTokens::from_config(&config)?;
    config
        .validate_ingest_bounds()
        .map_err(anyhow::Error::msg)?;
    config
        .validate_campaign_bounds()
        .map_err(anyhow::Error::msg)?;
    // Checked even when campaigns run elsewhere: a bad setting stops the start at once.
    let senders = Senders::from_config(&config)?;
    // Read before ClickHouse is contacted: a wrong folder stops the start at once.
    let tracker_files = web::Data::new(match &config.tracker_dir {
        Some(dir) => {
            Some(http::tracker_files::TrackerFiles::load(dir).map_err(anyhow::Error::msg)?)
        }
        None => None,
    });
    if let Some(files) = tracker_files.get_ref() {
        tracing::info!(
            version = files.version(),
            prefix = %config.public_path_prefix.0,
            "serving the tracker at {}/tracker/{}/eventline.js",
            config.public_path_prefix.0,
            files.version()
        );
    }
    let applied = migrations::migrate(&config).await?;
    tracing::info!(applied, database = %config.clickhouse_database, "schema is up to date");
    let store = Store::new(&config);
    rejected_ttl::apply(&store, config.rejected_ttl_days).await?;
    let registry = Arc::new(Registry::load(store.clone()).await?);
    let metrics = Metrics::new();
    let campaigns = if config.serve_campaigns {
        Some(
            campaign_runner::spawn(
                store.clone(),
                registry.clone(),
                &senders,
                campaign_runner::Settings::from_config(&config),
                clock,
            )
            .map_err(anyhow::Error::msg)?,
        )
    } else {
        None
    };
    if campaigns.is_none() {
        tracing::info!("campaigns are not run by this process (EVENTLINE_SERVE_CAMPAIGNS=false)");
    }
    let (sink, sink_task) = sink::spawn_with_listener(
        ClickHouseWriter::new(store.clone(), metrics.clone()),
        BatchLimits {
            max_rows: config.batch_max_rows,
            max_bytes: config.batch_max_bytes,
            linger: config.batch_linger(),
            queue: config.sink_queue,
            queue_bytes: config.sink_queue_bytes as usize,
            lanes: config.sink_lanes,
        },
        metrics.clone(),
        campaigns.as_ref().map(|c| c.committed.clone()),
    );
    if let Some(campaigns) = &campaigns {
        campaigns.attach_sink(&sink);
    }
    let (quarantine, quarantine_task) = sink::quarantine::spawn(
        ClickHouseWriter::new(store.clone(), metrics.clone()),
        QuarantineLimits {
            max_rows: config.quarantine_queue_rows as usize,
            max_bytes: config.quarantine_queue_bytes as usize,
            retry_for: Duration::from_secs(config.quarantine_retry_secs),
            first_backoff: QUARANTINE_FIRST_BACKOFF,
        },
        metrics.clone(),
    );
    let refresher =
        registry.spawn_refresher(Duration::from_secs(config.registry_refresh_secs.max(1)));
    let limits = Arc::new(RateLimits::new(&config));
    let limit_janitor = {
        let limits = limits.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FORGET_IDLE_EVERY).await;
                limits.forget_idle();
            }
        })
    };
    let (erasure, erasure_task) =
        Erasure::spawn(store.with_timeout(Duration::from_secs(config.erasure_timeout_secs.max(1))));
    let retention_task = retention::spawn(
        store.with_timeout(Duration::from_secs(config.erasure_timeout_secs.max(1))),
        registry.clone(),
        Duration::from_secs(config.retention_sweep_secs.max(1)),
    );
    let config = Arc::new(config);
    let prefix = config.public_path_prefix.0.clone();
    let state = web::Data::new(AppState {
        config: config.clone(),
        admin_tokens,
        erasure,
        registry,
        sink,
        quarantine,
        store,
        metrics,
        limits,
    });
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(middleware::Logger::new("%s %r %Dms").log_target("eventline::access"))
            .app_data(tracker_files.clone())
            .configure(|cfg| http::configure(cfg, &prefix))
    })
    .shutdown_timeout(30)
    .client_request_timeout(Duration::from_millis(config.header_timeout_ms))
    .max_connections(config.max_connections);
    if config.workers > 0 {
        server = server.workers(config.workers);
    }
    let server = server.bind(config.listen)?;
    let addr = *server
        .addrs()
        .first()
        .ok_or_else(|| anyhow::anyhow!("bound to no address"))?;
    let server = server.run();
    let handle = server.handle();
    let server_task = tokio::spawn(server);
    tracing::info!(%addr, "collector listening");
    Ok(Running {
        addr,
        server: handle,
        server_task,
        sink_task,
        quarantine_task,
        refresher,
        limit_janitor,
        erasure_task,
        retention_task,
        campaigns: campaigns.map(|c| (c.engine, c.delivery)),
    })
}
