//! `zombi-edge` binary: flags, config, logging, metrics, listener; then [`zombi_edge::run`].
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use zombi_shared::config::{self, EdgeConfig};

/// Zombi edge: the stateless producer API in front of the storage node.
#[derive(Debug, Parser)]
#[command(name = "zombi-edge", version)]
struct Cli {
    /// TOML config file (layered over the defaults, under the environment and flags).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
}

/// Flags that override config keys; only the given ones are serialized, so absent flags
/// leave lower layers alone.
#[derive(Debug, clap::Args, Serialize)]
struct Overrides {
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// Base URL of the storage node, e.g. http://127.0.0.1:8090.
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    node_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Logs go to stderr: stdout carries only the "listening" line that tests wait for.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let config =
        config::load(EdgeConfig::default(), cli.config.as_deref(), "ZOMBI_EDGE__", &cli.overrides)
            // The message already names the key and the cause; a cause chain would repeat it.
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    zombi_edge::metrics::install_recorder().context("cannot install the metrics recorder")?;

    let shutdown = CancellationToken::new();
    // Handlers are installed before the address is announced, so a signal sent right after
    // readiness is a graceful shutdown rather than a kill.
    zombi_shared::serve::cancel_on_signal(shutdown.clone())
        .context("cannot install signal handlers")?;

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "zombi-edge listening on http://{addr}")?;
    stdout.flush()?;
    drop(stdout);

    zombi_edge::run(config, listener, shutdown).await?;
    tracing::info!("edge stopped");
    Ok(())
}
