//! Table maintenance (SPEC §6): keeps tables fast for months while ingest goes on.
//!
//! - **Compaction** (`plan`, `rewrite`): small data files of a partition (by default an
//!   hour) are merged into files near `iceberg.target_file_size_bytes`, sorted by
//!   `timestamp_ms, sequence`, in the table's current partition spec.
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
//! maintenance takes beside ingest), every `interval_secs` per table, on demand
//! (`POST /tables/{t}/compact`), and as soon as a table holds twice the snapshots expiry
//! keeps (`max_snapshots`): a table that commits fast keeps small metadata, and cheap
//! commits, without its maintenance clocks retuned. Each table's runs follow the node's background-loop shape
//! (`crate::tasks::BackgroundLoop`): after a failed run the next one waits twice as long
//! each time, up to eight intervals, and a run longer than the interval is counted and
//! logged. It never holds the table's commit lock except for the moment of its own commit,
//! so flusher commits are never blocked for long.

mod cleanup;
mod commit;
mod error;
mod manifests;
pub mod metrics;
mod plan;
pub mod remove;
mod retention;
mod rewrite;
mod table;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use zombi_shared::config::NodeConfig;

pub use error::MaintenanceError;
pub use remove::{FileMatch, Removal, RowMatch};
pub use table::{MaintenanceStatus, Report};

use crate::catalog::ZombiCatalog;
use crate::error::Chain;
use crate::hot::TableRegistry;
use crate::tasks::{BackgroundLoop, Backoff, Wake};
use table::TableMaintenance;

/// What maintenance runs share.
pub struct Ctx {
    pub store: Arc<dyn TableRegistry>,
    pub catalog: Arc<ZombiCatalog>,
    pub config: Arc<NodeConfig>,
}

type Reply<T> = oneshot::Sender<Result<T, Arc<MaintenanceError>>>;

/// What the worker is asked to do now.
enum Request {
    /// A maintenance run (`POST /tables/{t}/compact`).
    Run {
        table: String,
        /// Overrides `max_snapshot_age_secs` for this run.
        expire_after_secs: Option<u64>,
        reply: Reply<Report>,
    },
    /// Remove the matching rows (`POST /tables/{t}/delete`).
    Remove { table: String, matcher: Arc<dyn RowMatch>, reply: Reply<Removal> },
}

#[derive(Clone)]
pub struct Maintainer {
    requests: mpsc::Sender<Request>,
    statuses: Arc<Mutex<HashMap<String, MaintenanceStatus>>>,
    store: Arc<dyn TableRegistry>,
    ctx: Arc<Ctx>,
}

impl Maintainer {
    /// The maintainer and its worker, which runs until `cancel` (a run in progress is
    /// abandoned: what it wrote and did not commit is deleted by a later run's cleanup).
    pub fn new(
        store: Arc<dyn TableRegistry>,
        catalog: Arc<ZombiCatalog>,
        config: Arc<NodeConfig>,
        cancel: CancellationToken,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        metrics::describe();
        let ctx = Arc::new(Ctx { store: store.clone(), catalog, config });
        let (requests, rx) = mpsc::channel(64);
        let maintainer = Maintainer { requests, statuses: Arc::default(), store, ctx: ctx.clone() };
        let worker = Worker {
            ctx,
            statuses: maintainer.statuses.clone(),
            tables: HashMap::new(),
            loops: HashMap::new(),
            due: HashMap::new(),
            started: HashMap::new(),
        };
        (maintainer, worker.run(rx, cancel))
    }

    /// Runs maintenance of `table` now, with every hour treated as quiet, and answers what
    /// it did. Unreferenced files still wait out their grace period.
    pub async fn run_now(&self, table: &str) -> Result<Report, MaintenanceError> {
        self.run_now_expiring(table, None).await
    }

    /// [`Maintainer::run_now`], expiring the snapshots older than `expire_after_secs` (when
    /// given) instead of `max_snapshot_age_secs`: `0` expires every snapshot but the
    /// current one, which is how the rows of a delete leave time travel at once.
    pub async fn run_now_expiring(
        &self,
        table: &str,
        expire_after_secs: Option<u64>,
    ) -> Result<Report, MaintenanceError> {
        self.ask(table, |reply| Request::Run { table: table.to_owned(), expire_after_secs, reply })
            .await
    }

    /// `table`'s retention in seconds (its `zombi.retention`, else the configuration's),
    /// `None` when off.
    pub async fn retention_secs(&self, table: &str) -> Result<Option<u64>, MaintenanceError> {
        let ident = self.ctx.catalog.ident(table);
        let loaded = iceberg::Catalog::load_table(self.ctx.catalog.as_ref(), &ident).await?;
        retention::retention_secs(
            loaded.metadata().properties(),
            &self.ctx.config.table_maintenance(table),
        )
        .map_err(|reason| MaintenanceError::Settings { table: table.to_owned(), reason })
    }

    /// Removes the rows of `table`'s current snapshot that `matcher` matches, in one commit
    /// ([`remove`]). Runs on the maintenance worker, so it never races a compaction.
    pub async fn remove_rows(
        &self,
        table: &str,
        matcher: Arc<dyn RowMatch>,
    ) -> Result<Removal, MaintenanceError> {
        self.ask(table, |reply| Request::Remove { table: table.to_owned(), matcher, reply }).await
    }

    /// Sends the worker the request `make` builds around its reply channel and waits for
    /// the answer, for a table the node holds.
    async fn ask<T>(
        &self,
        table: &str,
        make: impl FnOnce(Reply<T>) -> Request,
    ) -> Result<T, MaintenanceError> {
        if self.store.table_id(table).is_none() {
            return Err(MaintenanceError::UnknownTable(table.to_owned()));
        }
        let (reply, rx) = oneshot::channel();
        self.requests.send(make(reply)).await.map_err(|_| MaintenanceError::ShuttingDown)?;
        rx.await
            .map_err(|_| MaintenanceError::ShuttingDown)?
            .map_err(|source| MaintenanceError::Failed { table: table.to_owned(), source })
    }

    pub fn status(&self, table: &str) -> Option<MaintenanceStatus> {
        self.statuses.lock().unwrap().get(table).cloned()
    }
}

struct Worker {
    ctx: Arc<Ctx>,
    statuses: Arc<Mutex<HashMap<String, MaintenanceStatus>>>,
    tables: HashMap<String, TableMaintenance>,
    /// Each table's runs: its interval, and its backoff after failures.
    loops: HashMap<String, BackgroundLoop>,
    due: HashMap<String, Instant>,
    /// When each table's last scheduled run started.
    started: HashMap<String, Instant>,
}

/// How often the worker looks for new tables when none is due sooner.
const DISCOVERY_EVERY: Duration = Duration::from_secs(1);

/// Least time between the starts of two runs of one table that its counts bring forward.
const COUNT_TRIGGER_GAP: Duration = Duration::from_secs(1);

/// Whether a table holding `snapshots` is due for a run now, whatever the clock says: it
/// holds twice what expiry keeps (at least ten more).
fn over_bounds(snapshots: u64, max_snapshots: u64) -> bool {
    snapshots >= max_snapshots.saturating_mul(2).max(max_snapshots.saturating_add(10))
}

impl Worker {
    async fn run(mut self, mut requests: mpsc::Receiver<Request>, cancel: CancellationToken) {
        // The worker's own loop: wake for the next due table or a request, and at least
        // every second to find new tables.
        let schedule = BackgroundLoop::new(
            "maintenance_schedule",
            DISCOVERY_EVERY,
            Backoff::new(DISCOVERY_EVERY, DISCOVERY_EVERY),
            cancel.clone(),
        );
        loop {
            let now = Instant::now();
            for name in self.ctx.store.tables().into_keys() {
                if !self.loops.contains_key(&name) {
                    let lp = table_loop(&self.ctx, &name, cancel.clone());
                    self.due.insert(name.clone(), now + lp.period());
                    self.loops.insert(name, lp);
                }
            }
            self.bring_forward_over_bounds(now).await;
            let next_due = self.due.values().min().copied().unwrap_or(now + DISCOVERY_EVERY);
            let wait = next_due.saturating_duration_since(now).min(DISCOVERY_EVERY);
            match schedule.wait(wait, requests.recv()).await {
                Wake::Cancelled => return,
                Wake::Event(Request::Run { table, expire_after_secs, reply }) => {
                    let result = tokio::select! {
                        () = cancel.cancelled() => return,
                        r = self.maintain(&table, true, expire_after_secs) => r,
                    };
                    let _ = reply.send(result.map_err(Arc::new));
                    continue;
                }
                Wake::Event(Request::Remove { table, matcher, reply }) => {
                    let result = tokio::select! {
                        () = cancel.cancelled() => return,
                        r = self.remove(&table, matcher) => r,
                    };
                    let _ = reply.send(result.map_err(Arc::new));
                    continue;
                }
                Wake::Due => {}
            }
            let now = Instant::now();
            let due: Vec<String> =
                self.due.iter().filter(|(_, at)| **at <= now).map(|(n, _)| n.clone()).collect();
            for name in due {
                // The next run is due an interval after this one starts (a run longer than
                // the interval is followed at once), or a backoff after failed runs.
                let started = Instant::now();
                self.started.insert(name.clone(), started);
                if self.ctx.config.table_maintenance(&name).enabled {
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        _ = self.maintain(&name, false, None) => {}
                    }
                }
                let wait = self.loops.get(&name).map_or(DISCOVERY_EVERY, |lp| lp.next_wait(false));
                self.due.insert(name, started + wait);
            }
        }
    }

    /// Makes due now the tables whose snapshots reached twice what expiry keeps
    /// ([`over_bounds`]): not one whose last run failed (its backoff holds), nor one whose
    /// last run started less than [`COUNT_TRIGGER_GAP`] ago. A table's metadata is cached by
    /// the catalog, so this costs a pointer read per table.
    async fn bring_forward_over_bounds(&mut self, now: Instant) {
        let waiting: Vec<String> =
            self.due.iter().filter(|(_, at)| **at > now).map(|(n, _)| n.clone()).collect();
        for name in waiting {
            let settings = self.ctx.config.table_maintenance(&name);
            let failing = self.loops.get(&name).is_some_and(|lp| lp.failures() > 0);
            let recent =
                self.started.get(&name).is_some_and(|t| now.duration_since(*t) < COUNT_TRIGGER_GAP);
            if !settings.enabled || failing || recent {
                continue;
            }
            let ident = self.ctx.catalog.ident(&name);
            let Ok(table) = iceberg::Catalog::load_table(self.ctx.catalog.as_ref(), &ident).await
            else {
                continue;
            };
            let snapshots = table.metadata().snapshots().len() as u64;
            if over_bounds(snapshots, settings.max_snapshots) {
                tracing::debug!(table = %name, snapshots, "maintenance brought forward by the snapshot count");
                self.due.insert(name, now);
            }
        }
    }

    /// Removes the rows `matcher` matches from `table`; a panic is contained to the request.
    async fn remove(
        &mut self,
        name: &str,
        matcher: Arc<dyn RowMatch>,
    ) -> Result<Removal, MaintenanceError> {
        let state = self.tables.entry(name.to_owned()).or_default();
        let ctx = self.ctx.clone();
        let outcome = std::panic::AssertUnwindSafe(state.remove_rows(&ctx, name, matcher))
            .catch_unwind()
            .await;
        let removal = match outcome {
            Ok(r) => r?,
            Err(_) => {
                self.tables.remove(name);
                return Err(MaintenanceError::Panicked);
            }
        };
        ::metrics::counter!(metrics::ROWS_DELETED, "table" => name.to_owned(), "reason" => "request")
            .increment(removal.rows_deleted);
        if removal.rows_deleted > 0 {
            tracing::info!(table = %name, rows = removal.rows_deleted, removed = removal.files_removed, rewritten = removal.files_rewritten, "deleted rows on request");
        }
        Ok(removal)
    }

    /// One run of `table`, recorded in its status and metrics; a panic is contained to the
    /// run (the table's cached state is dropped and rebuilt next time).
    async fn maintain(
        &mut self,
        name: &str,
        forced: bool,
        expire_after_secs: Option<u64>,
    ) -> Result<Report, MaintenanceError> {
        let mut settings = self.ctx.config.table_maintenance(name);
        match expire_after_secs {
            // An age of 0 means "no age limit" in the settings: keep the current one only.
            Some(0) => settings.max_snapshots = 1,
            Some(secs) => settings.max_snapshot_age_secs = secs,
            None => {}
        }
        let started = Instant::now();
        let lp = self
            .loops
            .entry(name.to_owned())
            .or_insert_with(|| table_loop(&self.ctx, name, CancellationToken::new()));
        let iteration = lp.begin();
        let state = self.tables.entry(name.to_owned()).or_default();
        let ctx = self.ctx.clone();
        let outcome = std::panic::AssertUnwindSafe(state.run(&ctx, name, &settings, forced))
            .catch_unwind()
            .await;
        let result = match outcome {
            Ok(r) => r,
            Err(_) => {
                self.tables.remove(name);
                Err(MaintenanceError::Panicked)
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
            Ok(_) => lp.succeeded(iteration),
            Err(e) => {
                lp.failed(iteration, &Chain(e));
            }
        }
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
                status.rows_expired += report.retention.as_ref().map_or(0, |r| r.rows_deleted);
                status.retention_secs = report.retention_secs;
                status.oldest_event_time_ms = report.oldest_event_time_ms;
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
                status.last_outcome = Some("error".into());
                status.last_error = Some(Chain(e).to_string());
            }
        }
        if let Err(e) = table::measure(&self.ctx, name, &mut status).await {
            tracing::debug!(table = %name, error = %e, "cannot measure table");
        }
        self.statuses.lock().unwrap().insert(name.to_owned(), status);
        result
    }
}

/// The loop of one table's runs: its interval, and after failed runs a wait that doubles
/// each time, up to eight intervals.
fn table_loop(ctx: &Ctx, table: &str, cancel: CancellationToken) -> BackgroundLoop {
    let every = Duration::from_secs(ctx.config.table_maintenance(table).interval_secs);
    BackgroundLoop::new("maintenance", every, Backoff::new(every, every * 8), cancel)
        .for_table(table)
}

#[cfg(test)]
mod tests;
