//! `eventline-collector campaigns`: the campaign engine and delivery as a process of their own,
//! for one share of the customers (`EVENTLINE_CAMPAIGN_SHARD`), reading events from ClickHouse
//! ([`super::tail`]) instead of from a sink in the same process. Several such processes, one
//! per share, scale the engine out; `serve` then runs with `EVENTLINE_SERVE_CAMPAIGNS=false`.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::clock::Clock;
use super::email::Mailer;
use super::gateways::Gateways;
use super::http_gateway::GatewaySender;
use super::runner::{self, Committed};
use super::webhook::WebhookSender;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::sink::{self, BatchLimits, ClickHouseWriter, Sink};
use crate::store::{migrations, Store};

/// What sends messages, built from the settings before ClickHouse is contacted (a bad SMTP URL
/// or CA file stops the start at once). Clones share the SMTP transport and HTTP client.
#[derive(Clone)]
pub struct Senders {
    mailer: Mailer,
    webhook: WebhookSender,
    gateway: GatewaySender,
}

impl Senders {
    /// Reads the SMTP and gateway settings.
    pub fn from_config(config: &Config) -> anyhow::Result<Senders> {
        let mailer = Mailer::from_config(config).map_err(anyhow::Error::msg)?;
        // Webhooks and the SMS, push and Viber gateways share one client: one pool, one trust
        // store (a bad EVENTLINE_GATEWAY_CA_FILE stops the start here).
        let http = super::http_client::client(
            Duration::from_millis(config.webhook_timeout_ms.max(1)),
            config.gateway_ca_file.as_deref(),
        )
        .map_err(anyhow::Error::msg)?;
        Ok(Senders {
            mailer,
            webhook: WebhookSender::new(http.clone()),
            gateway: GatewaySender::new(http),
        })
    }

    /// The channels, over `store` (partner channel settings).
    pub fn gateways(self, store: Store) -> Gateways {
        Gateways::new(store, self.mailer, self.webhook, self.gateway)
    }
}

/// A running engine process.
pub struct Engine {
    /// Holding it keeps the engine running (it has no sink to hand it events).
    stop: Committed,
    engine: JoinHandle<()>,
    delivery: JoinHandle<()>,
    refresher: JoinHandle<()>,
    /// Stores the events `assign_event` steps assign (exactly once, as ingest does); the
    /// engine reads them back through its tail.
    sink: Sink,
    sink_task: JoinHandle<()>,
}

/// Migrates, loads the registry, and starts the engine and delivery for the configured share.
pub async fn start(config: Config) -> anyhow::Result<Engine> {
    let senders = Senders::from_config(&config)?;
    let applied = migrations::migrate(&config).await?;
    tracing::info!(applied, database = %config.clickhouse_database, "schema is up to date");
    let store = Store::new(&config);
    let registry = Arc::new(Registry::load(store.clone()).await?);
    let refresher =
        registry.spawn_refresher(Duration::from_secs(config.registry_refresh_secs.max(1)));
    let settings = runner::Settings::from_config(&config);
    let campaigns = runner::spawn(store.clone(), registry, &senders, settings, Clock::system())
        .map_err(anyhow::Error::msg)?;
    let (sink, sink_task) = sink::spawn(
        ClickHouseWriter::new(store, Metrics::new()),
        BatchLimits {
            max_rows: config.batch_max_rows,
            max_bytes: config.batch_max_bytes,
            linger: config.batch_linger(),
            queue: config.sink_queue,
            queue_bytes: config.sink_queue_bytes as usize,
            lanes: config.sink_lanes,
        },
        Metrics::new(),
    );
    campaigns.attach_sink(&sink);
    tracing::info!(shard = %settings.tail.shard, lanes = settings.lanes, "campaign engine running");
    Ok(Engine {
        stop: campaigns.committed.clone(),
        engine: campaigns.engine,
        delivery: campaigns.delivery,
        refresher,
        sink,
        sink_task,
    })
}

impl Engine {
    /// Runs until Ctrl-C or SIGTERM, then stops gracefully.
    pub async fn wait(self) -> anyhow::Result<()> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        tracing::info!("stopping the campaign engine");
        self.stop().await;
        Ok(())
    }

    /// Stops gracefully: the engine finishes the input in progress and saves its checkpoint,
    /// delivery the send in progress (each within [`runner::DRAIN_DEADLINE`]).
    pub async fn stop(self) {
        self.refresher.abort();
        drop(self.stop);
        runner::drain(self.engine, self.delivery).await;
        // After the engine: a step it finished on the way out may have assigned events.
        drop(self.sink);
        let _ = self.sink_task.await;
    }

    /// Stops at once, as a killed process would: nothing is finished or saved.
    pub fn abort(self) {
        self.refresher.abort();
        self.engine.abort();
        self.delivery.abort();
        self.sink_task.abort();
    }
}
