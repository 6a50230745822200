//! Table maintenance (SPEC §6): keeps tables fast for months while ingest goes on.
//!
//! - **Compaction** (`plan`, `rewrite`): small data files of an hour are merged into files
//!   near `iceberg.target_file_size_bytes`, sorted by `timestamp_ms, sequence`.
//! - **Manifest merging**: once the current snapshot lists more than `max_manifests`
//!   manifests, the small ones are merged, so commits and scan planning stay cheap.
//! - **Snapshot expiry**: beyond `max_snapshots` or `max_snapshot_age_secs` snapshots are
//!   removed from the metadata, which keeps the metadata JSON bounded. Both ride on one
//!   `replace` commit (`commit`) that carries the watermark map over, so the hot/cold
//!   contract holds across maintenance.
//! - **File cleanup** (`cleanup`): files nothing retained references are deleted after a
//!   grace period, orphans of crashed flushes included.
//!
//! One worker maintains the tables one at a time (bounding the CPU, memory and I/O that
//! maintenance takes beside ingest), every `interval_secs` per table and on demand
//! (`POST /tables/{t}/compact`). It never holds the table's commit lock except for the
//! moment of its own commit, so flusher commits are never blocked for long.

mod cleanup;
mod commit;
mod error;
mod manifests;
pub mod metrics;
mod plan;
mod rewrite;
mod table;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use zombi_shared::config::NodeConfig;

pub use error::MaintenanceError;
pub use table::{MaintenanceStatus, Report};

use crate::catalog::ZombiCatalog;
use crate::hot::HotStore;
use table::TableMaintenance;

/// What maintenance runs share.
pub struct Ctx {
    pub store: Arc<HotStore>,
    pub catalog: Arc<ZombiCatalog>,
    pub config: Arc<NodeConfig>,
}

struct Request {
    table: String,
    reply: oneshot::Sender<Result<Report, String>>,
}

#[derive(Clone)]
pub struct Maintainer {
    requests: mpsc::Sender<Request>,
    statuses: Arc<Mutex<HashMap<String, MaintenanceStatus>>>,
    store: Arc<HotStore>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Maintainer {
    pub fn start(
        store: Arc<HotStore>,
        catalog: Arc<ZombiCatalog>,
        config: Arc<NodeConfig>,
    ) -> Self {
        metrics::describe();
        let ctx = Arc::new(Ctx { store: store.clone(), catalog, config });
        let (requests, rx) = mpsc::channel(64);
        let maintainer = Maintainer {
            requests,
            statuses: Arc::default(),
            store,
            tracker: TaskTracker::new(),
            cancel: CancellationToken::new(),
        };
        let worker = Worker {
            ctx,
            statuses: maintainer.statuses.clone(),
            tables: HashMap::new(),
            due: HashMap::new(),
        };
        maintainer.tracker.spawn(worker.run(rx, maintainer.cancel.clone()));
        maintainer
    }

    /// Runs maintenance of `table` now, with every hour treated as quiet, and answers what
    /// it did. Unreferenced files still wait out their grace period.
    pub async fn run_now(&self, table: &str) -> Result<Report, MaintenanceError> {
        if self.store.table_id(table).is_none() {
            return Err(MaintenanceError::UnknownTable(table.to_owned()));
        }
        let (reply, rx) = oneshot::channel();
        let request = Request { table: table.to_owned(), reply };
        self.requests.send(request).await.map_err(|_| MaintenanceError::ShuttingDown)?;
        rx.await.map_err(|_| MaintenanceError::ShuttingDown)?.map_err(MaintenanceError::Failed)
    }

    pub fn status(&self, table: &str) -> Option<MaintenanceStatus> {
        self.statuses.lock().unwrap().get(table).cloned()
    }

    /// Stops the worker; a run in progress is abandoned (what it wrote and did not commit
    /// is deleted by a later run's cleanup).
    pub async fn shutdown(&self, grace: Duration) {
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait()).await.is_err() {
            tracing::warn!(?grace, "maintenance did not stop in time");
        }
    }
}

struct Worker {
    ctx: Arc<Ctx>,
    statuses: Arc<Mutex<HashMap<String, MaintenanceStatus>>>,
    tables: HashMap<String, TableMaintenance>,
    due: HashMap<String, Instant>,
}

impl Worker {
    async fn run(mut self, mut requests: mpsc::Receiver<Request>, cancel: CancellationToken) {
        loop {
            let now = Instant::now();
            for name in self.ctx.store.tables().into_keys() {
                let every = self.interval(&name);
                self.due.entry(name).or_insert(now + every);
            }
            // Wake for the next due table, and at least every second to find new tables.
            let wake = self
                .due
                .values()
                .min()
                .copied()
                .unwrap_or(now)
                .min(now + Duration::from_secs(1))
                .max(now);
            tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                Some(request) = requests.recv() => {
                    let result = tokio::select! {
                        () = cancel.cancelled() => return,
                        r = self.maintain(&request.table, true) => r,
                    };
                    let _ = request.reply.send(result.map_err(|e| e.to_string()));
                    continue;
                }
                () = tokio::time::sleep_until(wake.into()) => {}
            }
            let now = Instant::now();
            let due: Vec<String> =
                self.due.iter().filter(|(_, at)| **at <= now).map(|(n, _)| n.clone()).collect();
            for name in due {
                let every = self.interval(&name);
                self.due.insert(name.clone(), Instant::now() + every);
                if !self.ctx.config.table_maintenance(&name).enabled {
                    continue;
                }
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = self.maintain(&name, false) => {}
                }
            }
        }
    }

    fn interval(&self, table: &str) -> Duration {
        Duration::from_secs(self.ctx.config.table_maintenance(table).interval_secs)
    }

    /// One run of `table`, recorded in its status and metrics; a panic is contained to the
    /// run (the table's cached state is dropped and rebuilt next time).
    async fn maintain(&mut self, name: &str, forced: bool) -> Result<Report, MaintenanceError> {
        let settings = self.ctx.config.table_maintenance(name);
        let started = Instant::now();
        let state = self.tables.entry(name.to_owned()).or_default();
        let ctx = self.ctx.clone();
        let outcome = std::panic::AssertUnwindSafe(state.run(&ctx, name, &settings, forced))
            .catch_unwind()
            .await;
        let result = match outcome {
            Ok(r) => r,
            Err(_) => {
                self.tables.remove(name);
                Err(MaintenanceError::Failed("maintenance panicked".into()))
            }
        };
        let result = match result {
            // A table whose Iceberg table is not created yet has nothing to maintain.
            Err(MaintenanceError::Iceberg(e)) if e.kind() == iceberg::ErrorKind::TableNotFound => {
                return Ok(Report { table: name.to_owned(), ..Report::default() });
            }
            r => r,
        };
        let took = started.elapsed();
        let table = [("table", name.to_owned())];
        ::metrics::histogram!(metrics::RUN_SECONDS).record(took.as_secs_f64());
        let mut status = self.statuses.lock().unwrap().get(name).cloned().unwrap_or_default();
        status.runs += 1;
        status.last_run_ms = Some(crate::hot::now_ms());
        status.last_run_seconds = took.as_secs_f64();
        match &result {
            Ok(report) => {
                ::metrics::counter!(metrics::RUNS, "result" => "ok").increment(1);
                ::metrics::counter!(metrics::REWRITTEN_FILES, &table)
                    .increment(report.files_rewritten);
                ::metrics::counter!(metrics::REWRITTEN_BYTES, &table)
                    .increment(report.bytes_rewritten);
                ::metrics::counter!(metrics::WRITTEN_FILES, &table).increment(report.files_written);
                ::metrics::counter!(metrics::MANIFESTS_MERGED, &table)
                    .increment(report.manifests_merged);
                ::metrics::counter!(metrics::SNAPSHOTS_EXPIRED, &table)
                    .increment(report.snapshots_expired);
                ::metrics::counter!(metrics::FILES_DELETED, &table).increment(report.files_deleted);
                status.files_rewritten += report.files_rewritten;
                status.bytes_rewritten += report.bytes_rewritten;
                status.snapshots_expired += report.snapshots_expired;
                status.files_deleted += report.files_deleted;
                status.last_outcome = Some("ok".into());
                status.last_error = None;
                status.last_report = Some(report.clone());
                ::metrics::gauge!(metrics::LAST_RUN_FAILED, &table).set(0.0);
                if report.files_rewritten > 0
                    || report.snapshots_expired > 0
                    || report.files_deleted > 0
                {
                    tracing::info!(table = %name, rewritten = report.files_rewritten, written = report.files_written, expired = report.snapshots_expired, deleted = report.files_deleted, "maintained table");
                }
            }
            Err(e) => {
                ::metrics::counter!(metrics::RUNS, "result" => "error").increment(1);
                ::metrics::gauge!(metrics::LAST_RUN_FAILED, &table).set(1.0);
                tracing::warn!(table = %name, error = %e, "maintenance failed; retrying next interval");
                status.last_outcome = Some("error".into());
                status.last_error = Some(e.to_string());
            }
        }
        if let Err(e) = table::measure(&self.ctx, name, &mut status).await {
            tracing::debug!(table = %name, error = %e, "cannot measure table");
        }
        self.statuses.lock().unwrap().insert(name.to_owned(), status);
        result
    }
}
