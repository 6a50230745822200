//! `zombi-node`: the storage node. It owns everything durable: the combiner, the
//! RocksDB hot store with its WAL, sequences and idempotency records.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod combiner;
pub mod compact;
pub mod cpu;
pub mod dump;
pub mod erase;
pub mod error;
pub mod failpoints;
pub mod flush;
pub mod hot;
pub mod http;
pub mod ingest;
pub mod layout;
pub mod log;
pub mod metrics;
pub mod read;
pub mod replay;
pub mod schema;
pub mod tasks;
pub mod telemetry;
pub mod typed;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use zombi_shared::config::NodeConfig;

use crate::catalog::ZombiCatalog;
use crate::combiner::Combiner;
use crate::compact::Maintainer;
use crate::flush::Flusher;
use crate::hot::HotStore;
use crate::http::role::{Role, RoleState, Switch};
use crate::ingest::IngestService;
use crate::read::ReadService;
use crate::tasks::Supervisor;

/// How long start-up waits for adoption before serving with adoption going on behind.
const ADOPTION_WAIT: Duration = Duration::from_secs(10);

/// Runs the node until `shutdown` is cancelled (or one of its services stops, which is
/// fatal), then shuts down within one budget, `shutdown_timeout_ms`: new requests get 503
/// and requests in flight finish, the combiner writes what it holds, the WAL is synced,
/// maintenance stops, the flusher makes a final flush, and whatever is left is aborted.
pub async fn run(
    config: NodeConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
    prometheus: Option<PrometheusHandle>,
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    metrics::describe();
    tasks::describe();
    // Every long-running service, by name; `stopping` ends those that only wait for it.
    let mut services = Supervisor::new();
    let stopping = CancellationToken::new();
    if let Some(handle) = prometheus.clone() {
        let stop = stopping.clone();
        services.spawn_service("metrics upkeep", async move {
            stop.run_until_cancelled(telemetry::run_upkeep(handle)).await;
            Ok(())
        });
    }
    // The server answers from the start: 503 with the role until the node is active
    // (starting, or standing by for another node's log); then its full surface.
    let role = RoleState::new(Role::Starting);
    let routes = Switch::new(http::role::small_router(
        role.clone(),
        config.clone(),
        prometheus.clone(),
        None,
    ));
    // The server stops accepting when `stop_serving` fires, then finishes the requests in
    // flight; `drained` fires when it is done.
    let (stop_serving, drained) = (CancellationToken::new(), CancellationToken::new());
    let header_timeout = Duration::from_millis(config.limits.header_read_timeout_ms);
    services.spawn_service("http server", {
        let (stop, drained, app) = (stop_serving.clone(), drained.clone(), routes.router());
        async move {
            let _drained = drained.drop_guard();
            zombi_shared::serve::serve(listener, app, header_timeout, stop).await?;
            Ok(())
        }
    });

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
    // With `durability = "object"`, the node first owns the log in the warehouse (as a
    // standby until another node stops writing it), rebuilds the hot store from it, and
    // sends every write through it from then on.
    let log = if config.durability == zombi_shared::config::Durability::Object {
        let objects = log::ObjectStore::open(&config, &warehouse)
            .context("cannot open the warehouse's object store for the log")?;
        role.set(Role::Standby);
        // While standing by, engines may read the committed tables through this node too.
        routes.set(http::role::small_router(
            role.clone(),
            config.clone(),
            prometheus.clone(),
            Some(standby_catalog(&config, &warehouse)),
        ));
        let id_file = config.data_dir.join("log-writer");
        let acquired = tokio::select! {
            acquired = hot::logged::acquire_log(objects.clone(), &config.log, &id_file, &shutdown) => acquired,
            Some(exit) = services.next_fatal() => return Err(exit.into_error()),
        };
        let Some(log) = acquired else {
            tracing::info!("shut down while standing by");
            stop_serving.cancel();
            stopping.cancel();
            services.stop(Duration::from_millis(config.shutdown_timeout_ms)).await;
            return Ok(());
        };
        role.set(Role::Starting);
        routes.set(http::role::small_router(
            role.clone(),
            config.clone(),
            prometheus.clone(),
            None,
        ));
        // At once: its heartbeats tell standbys that the log is taken.
        services.spawn_service("log writer", {
            let (log, role) = (log.clone(), role.clone());
            async move {
                let written = log.run_writer_service().await;
                if written.is_err() {
                    role.set(Role::SteppedDown);
                }
                written
            }
        });
        if !hot::logged::recover_from_log(&store, &log, &shutdown).await {
            tracing::info!("shut down while recovering from the log");
        }
        services.spawn_service("log truncation", {
            let (store, stop) = (store.clone(), stopping.clone());
            let period = Duration::from_millis(config.log.truncate_interval_ms);
            async move {
                hot::logged::run_truncation(store, period, stop).await;
                Ok(())
            }
        });
        Some((log, objects))
    } else {
        None
    };
    let lister = match catalog::warehouse::Lister::new(&config, &warehouse) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::error!(error = %e, "cannot list the warehouse; unreferenced files will not be deleted");
            None
        }
    };
    let mut catalog = ZombiCatalog::new(
        store.clone(),
        catalog::warehouse::file_io(&config),
        lister,
        &config.iceberg.namespace,
        &warehouse,
    );
    let log = match log {
        Some((log, objects)) => {
            catalog =
                catalog.with_fence(catalog::fence::Fence::new(objects, &warehouse, log.clone()));
            Some(log)
        }
        None => None,
    };
    let catalog = Arc::new(catalog);
    // Fenced: before anything commits, every table's committed state is taken from the
    // warehouse and one version more is committed in this node's name, so a node paused
    // through the takeover commits nothing after it.
    if log.is_some() {
        let backoff = tasks::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let mut failures = 0;
        loop {
            match catalog.take_tables().await {
                Ok(tables) => {
                    tracing::info!(tables = tables.len(), "took the tables' committed state");
                    break;
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, failures, "cannot take the tables over; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff.delay(failures)) => {}
                    }
                }
            }
        }
    }
    // Tables found in the warehouse are in the catalog before the node serves, unless the
    // warehouse is slow or unreachable: then adoption goes on in the background (writes
    // to a table wait until its flusher has loaded it either way).
    let (adopted_tx, adopted) = tokio::sync::oneshot::channel::<()>();
    services.spawn_task("adoption", {
        let (catalog, cancel) = (catalog.clone(), stopping.clone());
        async move {
            catalog.adopt_and_repair(cancel).await;
            let _ = adopted_tx.send(());
            Ok(())
        }
    });
    if tokio::time::timeout(ADOPTION_WAIT, adopted).await.is_err() {
        tracing::warn!("adopting tables from the warehouse takes long; going on in the background");
    }
    // Typed tables the config declares exist before the first event arrives.
    catalog
        .create_configured(&config)
        .await
        .context("cannot create a typed table the config declares")?;
    let (maintainer, maintenance) =
        Maintainer::new(store.clone(), catalog.clone(), config.clone(), stopping.clone());
    services.spawn_service("maintenance", async move {
        maintenance.await;
        Ok(())
    });
    let combiner = Arc::new(Combiner::start(store.clone(), catalog.typing(), &config)?);
    let leases = Arc::new(hot::lease::Leases::default());
    let flusher = Flusher::new(store.clone(), catalog.clone(), config.clone(), leases.clone());
    services.spawn_service("flusher", {
        let flusher = flusher.clone();
        async move {
            flusher.run().await;
            Ok(())
        }
    });
    let draining = Arc::new(AtomicBool::new(false));
    let state = http::AppState {
        config: config.clone(),
        store: store.clone(),
        combiner: combiner.clone(),
        ingest: Arc::new(IngestService::new(
            combiner.clone(),
            store.clone(),
            catalog.clone(),
            catalog.typing(),
            &config,
        )),
        draining: draining.clone(),
        prometheus,
        flusher: flusher.clone(),
        eraser: Arc::new(erase::Eraser::new(catalog.clone(), flusher.clone(), maintainer.clone())),
        maintainer,
        reads: Arc::new(ReadService::new(
            store.clone(),
            catalog.clone(),
            config.limits.max_concurrent_hot_reads as usize,
            leases,
            Duration::from_secs(config.flush.hot_lease_secs),
        )),
        replayer: Arc::new(replay::Replayer::new(
            store.clone(),
            catalog.clone(),
            flusher.clone(),
            combiner.clone(),
            stopping.clone(),
        )),
        role: role.clone(),
    };
    let app = http::router(state).merge(catalog::rest::router(catalog::rest::RestCatalogState {
        catalog: catalog.clone(),
        updates: Some(catalog.clone()),
        catalog_token: config.auth.catalog_token.clone(),
        warehouse_location: warehouse,
    }));
    routes.set(app);
    role.set(Role::Active);

    let fatal = tokio::select! {
        Some(exit) = services.next_fatal() => Some(exit),
        () = shutdown.cancelled() => None,
    };
    if let Some(exit) = &fatal {
        tracing::error!(service = exit.name, "a service of the node stopped; shutting down");
    }
    let budget = Duration::from_millis(config.shutdown_timeout_ms);
    let deadline = Instant::now() + budget;
    let left = || deadline.saturating_duration_since(Instant::now());
    // Requests on open connections get 503 from here on; then the listener closes and
    // requests in flight finish.
    draining.store(true, Ordering::Release);
    stop_serving.cancel();
    tracing::info!("shutting down: draining requests");
    if tokio::time::timeout(left(), drained.cancelled()).await.is_err() {
        tracing::warn!(
            budget_ms = config.shutdown_timeout_ms,
            "requests did not drain in time; abandoning them"
        );
    }
    // Requests are done (or abandoned); the combiner writes what is queued, then the WAL
    // is synced so everything acknowledged is on disk.
    let (sync_store, sync_combiner) = (store.clone(), combiner.clone());
    let written = tokio::task::spawn_blocking(move || {
        sync_combiner.shutdown();
        sync_store.sync()
    });
    match tokio::time::timeout(left(), written).await {
        Ok(synced) => synced?.context("cannot sync the hot store")?,
        Err(_) => {
            // A write still stuck in RocksDB (or waiting for its log segment) is not
            // acknowledged; what was is in the WAL (and the log).
            tracing::error!("the combiner did not stop in time; syncing the WAL without it");
            if let Some(log) = &log {
                log.close();
            }
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.sync())
                .await?
                .context("cannot sync the hot store")?;
        }
    }
    if let Some(log) = &log {
        log.close();
    }
    // Maintenance, adoption and replays stop before the final flush: a maintenance run cut
    // short only leaves files a later run deletes.
    stopping.cancel();
    // A final flush; whatever it does not finish stays durable in the hot store. A node
    // that lost its log to another node commits nothing more: the other one flushes.
    if log.as_ref().is_some_and(|l| l.fenced().is_cancelled()) {
        tracing::warn!("skipping the final flush: another node owns the log");
    } else {
        flusher.shutdown(left()).await;
    }
    let aborted = services.stop(left()).await;
    if !aborted.is_empty() {
        tracing::warn!(services = %aborted.join(", "), "aborted at the end of the shutdown budget");
    }
    match fatal {
        Some(exit) => Err(exit.into_error()),
        None => {
            tracing::info!("shutdown complete");
            Ok(())
        }
    }
}

/// The REST catalog a standby serves: read-only, each read following the committed state
/// in the warehouse.
fn standby_catalog(config: &zombi_shared::config::NodeConfig, warehouse: &str) -> axum::Router {
    let lister = catalog::warehouse::Lister::new(config, warehouse).ok();
    let follower = ZombiCatalog::new(
        Arc::new(catalog::pointers::MemoryPointers::default()),
        catalog::warehouse::file_io(config),
        lister,
        &config.iceberg.namespace,
        warehouse,
    )
    .following_the_warehouse();
    catalog::rest::router(catalog::rest::RestCatalogState {
        catalog: Arc::new(follower),
        updates: None,
        catalog_token: config.auth.catalog_token.clone(),
        warehouse_location: warehouse.to_owned(),
    })
}
