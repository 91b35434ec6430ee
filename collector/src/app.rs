//! Starting and stopping a collector: migrate, load the registry, start the sink, the
//! registry refresher and the HTTP server. `main` and the integration tests both use this.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{middleware, web, App, HttpServer};
use tokio::task::JoinHandle;

use crate::admin_token::AdminTokens;
use crate::config::Config;
use crate::erasure::Erasure;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::retention;
use crate::sink::{self, BatchLimits, ClickHouseWriter};
use crate::store::{migrations, Store};

/// A running collector.
pub struct Running {
    /// The address it listens on (useful when configured with port 0).
    pub addr: SocketAddr,
    server: actix_web::dev::ServerHandle,
    server_task: JoinHandle<std::io::Result<()>>,
    sink_task: JoinHandle<()>,
    refresher: JoinHandle<()>,
    erasure_task: JoinHandle<()>,
    retention_task: JoinHandle<()>,
}

impl Running {
    /// Waits until the server stops (Ctrl-C or SIGTERM), then lets the sink commit what waits.
    pub async fn wait(self) -> anyhow::Result<()> {
        let Running {
            server_task,
            sink_task,
            refresher,
            erasure_task,
            retention_task,
            ..
        } = self;
        server_task.await??;
        refresher.abort();
        // An interrupted erasure job is resumed at the next start; its deletes are idempotent.
        erasure_task.abort();
        retention_task.abort();
        // The server dropped its sink handles on the way out, so the sink ends after its last commit.
        sink_task.await?;
        Ok(())
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
    let admin_tokens = AdminTokens::from_config(&config)?;
    let applied = migrations::migrate(&config).await?;
    tracing::info!(applied, database = %config.clickhouse_database, "schema is up to date");
    let store = Store::new(&config);
    let registry = Arc::new(Registry::load(store.clone()).await?);
    let metrics = Metrics::new();
    let (sink, sink_task) = sink::spawn(
        ClickHouseWriter::new(store.clone(), metrics.clone()),
        BatchLimits {
            max_rows: config.batch_max_rows,
            max_bytes: config.batch_max_bytes,
            linger: config.batch_linger(),
            queue: config.sink_queue,
            lanes: config.sink_lanes,
        },
        metrics.clone(),
    );
    let refresher = {
        let registry = registry.clone();
        let every = Duration::from_secs(config.registry_refresh_secs.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(error) = registry.refresh().await {
                    tracing::warn!(%error, "registry refresh failed; serving the last snapshot");
                }
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
    let state = web::Data::new(AppState {
        config: config.clone(),
        admin_tokens,
        erasure,
        registry,
        sink,
        store,
        metrics,
    });
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(middleware::Logger::new("%s %r %Dms").log_target("eventline::access"))
            .configure(http::configure)
    })
    .shutdown_timeout(30);
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
        refresher,
        erasure_task,
        retention_task,
    })
}
