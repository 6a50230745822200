//! `zombi-node`: the storage node. It owns everything durable: the combiner, the
//! RocksDB hot store with its WAL, sequences and idempotency records.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod combiner;
pub mod compact;
pub mod cpu;
pub mod deadletter;
pub mod dump;
pub mod failpoints;
pub mod flush;
pub mod hot;
pub mod http;
pub mod ingest;
pub mod layout;
pub mod metrics;
pub mod read;
pub mod typed;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use zombi_shared::config::NodeConfig;

use crate::catalog::ZombiCatalog;
use crate::combiner::Combiner;
use crate::compact::Maintainer;
use crate::flush::Flusher;
use crate::hot::HotStore;
use crate::ingest::IngestService;
use crate::read::ReadService;

/// Adopts the tables the warehouse holds and the catalog does not know (see
/// `catalog::adopt`), retrying with backoff until one pass succeeds, then repairs the
/// tables' `version-hint.text` pointers.
async fn adopt_tables(catalog: Arc<ZombiCatalog>, shutdown: CancellationToken) {
    let mut delay = Duration::from_millis(500);
    loop {
        match catalog.adopt_all().await {
            Ok(adopted) => {
                if !adopted.is_empty() {
                    tracing::warn!(tables = ?adopted, "adopted tables from the warehouse; events acknowledged but not yet committed before the data directory was lost are gone");
                }
                if let Err(e) = catalog.repair_version_hints().await {
                    tracing::warn!(error = %e, "cannot check the tables' version-hint.text files");
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "cannot look for tables to adopt in the warehouse");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Runs the node until `shutdown` is cancelled, then drains: new requests get 503, requests
/// in flight finish (bounded by `shutdown_timeout_ms`), the combiner writes what it holds,
/// the WAL is synced, and the flusher makes a final, bounded flush.
pub async fn run(
    config: NodeConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
    prometheus: Option<PrometheusHandle>,
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    metrics::describe();
    let upkeep = prometheus.clone().map(|h| tokio::spawn(metrics::run_upkeep(h)));
    let hot_dir = config.hot_dir();
    std::fs::create_dir_all(&hot_dir)
        .with_context(|| format!("cannot create {}", hot_dir.display()))?;
    let (durability, window) = (config.durability, config.idempotency_window_secs);
    let store = tokio::task::spawn_blocking(move || HotStore::open(&hot_dir, durability, window))
        .await?
        .context("cannot open the hot store")?;
    let store = Arc::new(store);
    let warehouse =
        catalog::warehouse::location(&config).context("cannot prepare the warehouse")?;
    let lister = match catalog::warehouse::Lister::new(&config, &warehouse) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::error!(error = %e, "cannot list the warehouse; unreferenced files will not be deleted");
            None
        }
    };
    let catalog = Arc::new(ZombiCatalog::new(
        store.clone(),
        catalog::warehouse::file_io(&config),
        lister,
        &config.iceberg.namespace,
        &warehouse,
    ));
    // Tables found in the warehouse are in the catalog before the node serves, unless the
    // warehouse is slow or unreachable: then adoption goes on in the background (writes
    // to a table wait until its flusher has loaded it either way).
    let mut adoption = tokio::spawn(adopt_tables(catalog.clone(), shutdown.clone()));
    if tokio::time::timeout(Duration::from_secs(10), &mut adoption).await.is_err() {
        tracing::warn!("adopting tables from the warehouse takes long; going on in the background");
    }
    // Typed tables the config declares exist before the first event arrives.
    typed::declare::create_configured(&catalog, &config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create a typed table the config declares: {e}"))?;
    let maintainer = Maintainer::start(store.clone(), catalog.clone(), config.clone());
    let combiner = Arc::new(Combiner::start(store.clone(), catalog.typing(), &config)?);
    let leases = Arc::new(read::lease::Leases::default());
    let flusher = Flusher::start(store.clone(), catalog.clone(), config.clone(), leases.clone());
    let draining = Arc::new(AtomicBool::new(false));
    let state = http::AppState {
        config: config.clone(),
        store: store.clone(),
        combiner: combiner.clone(),
        ingest: Arc::new(IngestService::new(
            combiner.clone(),
            store.clone(),
            flusher.clone(),
            catalog.typing(),
            &config,
        )),
        draining: draining.clone(),
        prometheus,
        flusher: flusher.clone(),
        maintainer: maintainer.clone(),
        reads: Arc::new(ReadService::new(
            store.clone(),
            catalog.clone(),
            config.limits.max_concurrent_hot_reads as usize,
            leases,
            Duration::from_secs(config.flush.hot_lease_secs),
        )),
        replayer: Arc::new(deadletter::replay::Replayer::new(
            store.clone(),
            catalog.clone(),
            flusher.clone(),
            combiner.clone(),
        )),
    };
    let app = http::router(state).merge(catalog::rest::router(catalog::rest::RestCatalogState {
        catalog: catalog.clone(),
        updates: Some(catalog.clone()),
        catalog_token: config.auth.catalog_token.clone(),
        warehouse_location: warehouse,
    }));

    let stop_serving = CancellationToken::new();
    let serve_stop = stop_serving.clone();
    let header_timeout = Duration::from_millis(config.limits.header_read_timeout_ms);
    let mut server = tokio::spawn(async move {
        zombi_shared::serve::serve(listener, app, header_timeout, serve_stop).await
    });

    tokio::select! {
        result = &mut server => {
            // The server only ends by itself on an error: that is fatal.
            result?.context("http server failed")?;
            anyhow::bail!("http server stopped unexpectedly");
        }
        () = shutdown.cancelled() => {}
    }
    // Requests on open connections get 503 from here on; then the listener closes and
    // requests in flight finish.
    draining.store(true, Ordering::Release);
    stop_serving.cancel();
    tracing::info!("shutting down: draining requests");
    let grace = Duration::from_millis(config.shutdown_timeout_ms);
    match tokio::time::timeout(grace, &mut server).await {
        Ok(result) => result?.context("http server failed while draining")?,
        Err(_) => {
            tracing::warn!(timeout_ms = config.shutdown_timeout_ms, "drain timed out; aborting");
            server.abort();
            let _ = server.await;
        }
    }
    // Requests are done (or abandoned); the combiner writes what is queued, then the WAL
    // is synced so everything acknowledged is on disk.
    let sync_store = store.clone();
    tokio::task::spawn_blocking(move || {
        combiner.shutdown();
        sync_store.sync()
    })
    .await?
    .context("cannot sync the hot store")?;
    // Maintenance stops first: a run cut short only leaves files a later run deletes.
    maintainer.shutdown(grace).await;
    // A bounded final flush; whatever it does not finish stays durable in the hot store.
    flusher.shutdown(grace).await;
    if let Some(upkeep) = upkeep {
        upkeep.abort();
    }
    tracing::info!("shutdown complete");
    Ok(())
}
