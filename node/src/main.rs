#![forbid(unsafe_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use zombi_shared::config::{self, NodeConfig};

#[derive(Parser)]
#[command(name = "zombi-node", version, about = "Zombi storage node")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args, Serialize)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, global = true)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Listen address (overrides `listen`).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// Data directory (overrides `data_dir`).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node (the default).
    Serve,
    /// Print a table's events from the hot store as NDJSON (read-only; safe while running).
    Dump {
        #[arg(long)]
        table: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = config::load(
        NodeConfig::default(),
        cli.serve.config.as_deref(),
        "ZOMBI_NODE__",
        &cli.serve,
    )?;
    match cli.command {
        Some(Command::Dump { table }) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            zombi_node::dump::dump(&config.hot_dir(), &table, &mut out)?;
            out.flush()?;
            Ok(())
        }
        None | Some(Command::Serve) => serve(config),
    }
}

fn serve(config: NodeConfig) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    #[cfg(feature = "failpoints")]
    let _failpoints = zombi_node::failpoints::setup();
    if config.auth_off_beyond_loopback() {
        tracing::warn!(listen = %config.listen, "auth is off on a non-loopback address");
    }
    if config.durability == config::Durability::None {
        tracing::warn!("durability = none: a crash loses every event not yet flushed");
    }
    if config.durability == config::Durability::Object && config.iceberg.warehouse.is_empty() {
        tracing::warn!(
            "durability = object with the warehouse under data_dir: the log shares the node's disk, so losing that disk still loses data; set iceberg.warehouse to an object store"
        );
    }
    let prometheus = zombi_node::telemetry::install_recorder()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        // Handlers are installed before the address is announced, so a signal sent right
        // after the announcement is never missed.
        let shutdown = CancellationToken::new();
        zombi_shared::serve::cancel_on_signal(shutdown.clone())
            .context("cannot install signal handlers")?;
        tracing::info!(%addr, data_dir = %config.data_dir.display(), "zombi-node ready");
        println!("zombi-node listening on http://{addr}");
        std::io::stdout().flush()?;
        zombi_node::run(config, listener, shutdown, Some(prometheus)).await
    })
}
