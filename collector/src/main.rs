//! The `eventline-collector` binary: configuration, logging, then `serve`, `migrate` or
//! `campaigns`.

use clap::Parser;
use eventline_collector::campaigns::standalone;
use eventline_collector::config::{Cli, Command, LogFormat};
use eventline_collector::{app, store::migrations};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if cli.config.log_format == LogFormat::Json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            let applied = migrations::migrate(&cli.config).await?;
            tracing::info!(applied, "migrations done");
        }
        Command::Serve => {
            app::start(cli.config).await?.wait().await?;
        }
        Command::Campaigns => {
            standalone::start(cli.config).await?.wait().await?;
        }
    }
    Ok(())
}
