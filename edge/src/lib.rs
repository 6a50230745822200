//! `zombi-edge`: the stateless producer API. It validates table names and envelopes,
//! enforces body limits and byte backpressure before deserializing, coalesces concurrent
//! requests into MessagePack batches and forwards them to the node. It keeps no state.
#![forbid(unsafe_code)]

pub mod auth;
pub mod body;
pub mod error;
pub mod forward;
pub mod http;
pub mod ingest;
pub mod metrics;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use zombi_shared::config::EdgeConfig;

use crate::forward::{BatchLimits, Forwarder, NodeClient};
use crate::ingest::IngestService;

/// Serves the producer API on `listener` until `shutdown` is cancelled, then stops
/// accepting, drains in-flight requests for at most `shutdown_timeout_ms` and returns.
pub async fn run(
    config: EdgeConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let local_addr = listener.local_addr().context("listener has no local address")?;
    if config.auth_off_beyond_loopback() {
        tracing::warn!(
            listen = %local_addr,
            "producer auth is off and the edge listens beyond loopback: anyone who can reach it can write"
        );
    }

    let client = NodeClient::new(&config)?;
    let (forwarder, dispatcher) = Forwarder::new(
        BatchLimits::from(&config.forward),
        config.forward.queue_depth as usize,
        client.clone(),
    );
    let ingest = Arc::new(IngestService::new(&config, forwarder, client, shutdown.clone()));
    let app = http::router(http::AppState::new(ingest, config.limits.retry_after_secs));

    // Background services; dropping the set at return aborts whatever is left.
    let mut services = tokio::task::JoinSet::new();
    services.spawn(async {
        dispatcher.run().await;
        "forward dispatcher"
    });
    services.spawn(async {
        metrics::run_upkeep().await;
        "metrics upkeep"
    });

    tracing::info!(listen = %local_addr, node_url = %config.node_url, "edge started");
    let header_timeout = Duration::from_millis(config.limits.header_read_timeout_ms);
    let server = zombi_shared::serve::serve(listener, app, header_timeout, shutdown.clone());
    let drain_deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(Duration::from_millis(config.shutdown_timeout_ms)).await;
    };
    tokio::select! {
        served = server => {
            served.context("producer API server failed")?;
            anyhow::ensure!(shutdown.is_cancelled(), "producer API server stopped on its own");
            tracing::info!("in-flight requests drained");
        }
        Some(exited) = services.join_next() => {
            // The services outlive the server, so one that stops is fatal.
            let name = exited.context("edge service panicked")?;
            anyhow::bail!("{name} exited unexpectedly");
        }
        () = drain_deadline => {
            tracing::warn!(
                timeout_ms = config.shutdown_timeout_ms,
                "in-flight requests did not finish before the shutdown timeout; abandoning them"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
