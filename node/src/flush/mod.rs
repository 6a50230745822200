//! The flusher: the bridge from the hot store to Iceberg (SPEC §5).
//!
//! One task per table (so a failing or slow table never stalls the others), discovered
//! from the hot store's table registry. Each task runs the node's background-loop shape
//! (`crate::tasks::BackgroundLoop`): wait for the interval, a flush request or
//! cancellation; run a cycle; back off exponentially after failures. A semaphore bounds how
//! many tables flush at once.

mod error;
pub mod metrics;
pub mod store;
mod table;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use zombi_shared::config::NodeConfig;

pub use error::FlushError;
pub use table::TableStatus;

use crate::catalog::ZombiCatalog;
use crate::catalog::readiness::Readiness;
use crate::error::Chain;
use crate::hot::lease::Leases;
use crate::tasks::{BackgroundLoop, Backoff, Wake};
use store::FlushStore;
use table::TableFlusher;

/// What everything in the flusher shares.
pub struct Ctx {
    pub store: Arc<dyn FlushStore>,
    pub catalog: Arc<ZombiCatalog>,
    pub config: Arc<NodeConfig>,
    /// Watermarks real-time readers hold: retention deletes nothing at or above them.
    pub leases: Arc<Leases>,
    permits: Semaphore,
}

/// Answer to an explicit flush: the snapshot that holds everything acknowledged before it.
/// Also what a table publishes after each commit (see [`Flusher::wait_committed`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlushOutcome {
    pub table: String,
    pub snapshot_id: Option<i64>,
    pub watermarks: BTreeMap<u32, u64>,
}

type FlushReply = oneshot::Sender<Result<FlushOutcome, Arc<FlushError>>>;

struct Handle {
    requests: mpsc::Sender<FlushReply>,
    status: Arc<Mutex<TableStatus>>,
    /// The committed state, published by the table's task at start and after each commit.
    committed: watch::Receiver<FlushOutcome>,
}

#[derive(Clone)]
pub struct Flusher {
    ctx: Arc<Ctx>,
    tables: Arc<Mutex<HashMap<String, Handle>>>,
    /// The tables' tasks.
    tasks: Arc<Mutex<JoinSet<()>>>,
    cancel: CancellationToken,
}

impl Flusher {
    /// A flusher with no tables yet: [`Flusher::run`] finds them.
    pub fn new(
        store: Arc<dyn FlushStore>,
        catalog: Arc<ZombiCatalog>,
        config: Arc<NodeConfig>,
        leases: Arc<Leases>,
    ) -> Self {
        metrics::describe();
        let permits = Semaphore::new(config.flush.max_concurrent as usize);
        Flusher {
            ctx: Arc::new(Ctx { store, catalog, config, leases, permits }),
            tables: Arc::default(),
            tasks: Arc::default(),
            cancel: CancellationToken::new(),
        }
    }

    /// Starts a task for every table in the hot store: at once when a table is registered,
    /// and every interval as a backstop. Runs until [`Flusher::shutdown`].
    pub async fn run(self) {
        let every = Duration::from_millis(self.ctx.config.flush.interval_ms.min(1_000));
        let lp =
            BackgroundLoop::new("flush_discovery", every, backoff(&self.ctx), self.cancel.clone());
        loop {
            for name in self.ctx.store.tables().into_keys() {
                self.ensure(&name);
            }
            let registered = async {
                self.ctx.store.table_registered().await;
                Some(())
            };
            if lp.wait(lp.next_wait(false), registered).await == Wake::Cancelled {
                return;
            }
        }
    }

    /// The request channel of `table`'s task, starting the task if the table exists and
    /// has none.
    fn ensure(&self, table: &str) -> Option<mpsc::Sender<FlushReply>> {
        let mut tables = self.tables.lock().unwrap();
        if let Some(h) = tables.get(table) {
            return Some(h.requests.clone());
        }
        if self.cancel.is_cancelled() {
            return None;
        }
        let id = self.ctx.store.table_id(table)?;
        let (tx, rx) = mpsc::channel(64);
        let status = Arc::new(Mutex::new(TableStatus::default()));
        let outcome = FlushOutcome { table: table.to_owned(), ..FlushOutcome::default() };
        let (publish, committed) = watch::channel(outcome);
        self.tasks.lock().unwrap().spawn(supervise(
            self.ctx.clone(),
            Task {
                table: table.to_owned(),
                id,
                status: status.clone(),
                publish: Arc::new(publish),
            },
            rx,
            self.cancel.clone(),
        ));
        tables.insert(table.to_owned(), Handle { requests: tx.clone(), status, committed });
        Some(tx)
    }

    /// Waits until `table`'s committed watermarks reach `watermarks` in every partition
    /// named there, for at most `timeout`; returns whether they did and the committed state
    /// when the wait ended. Waiting costs the flusher nothing: it publishes its committed
    /// state after every commit anyway, and commits when its snapshot policy says so.
    pub async fn wait_committed(
        &self,
        table: &str,
        watermarks: &BTreeMap<u32, u64>,
        timeout: Duration,
    ) -> Result<(bool, FlushOutcome), FlushError> {
        let unknown = || FlushError::UnknownTable(table.to_owned());
        self.ensure(table).ok_or_else(unknown)?;
        let mut committed = {
            let tables = self.tables.lock().unwrap();
            tables.get(table).ok_or_else(unknown)?.committed.clone()
        };
        // Waiting for sequences not acknowledged yet could only time out.
        let id = self.ctx.store.table_id(table).ok_or_else(unknown)?;
        let store = self.ctx.store.clone();
        let high = tokio::task::spawn_blocking(move || store.table_counters(id)).await??;
        if let Some((p, w)) = watermarks
            .iter()
            .find(|(p, w)| **w > high.high_water_marks.get(p).copied().unwrap_or(0))
        {
            return Err(FlushError::NotAcknowledged {
                table: table.to_owned(),
                partition: *p,
                sequence: w - 1,
            });
        }
        let covers = |o: &FlushOutcome| {
            watermarks.iter().all(|(p, w)| o.watermarks.get(p).copied().unwrap_or(0) >= *w)
        };
        let reached = tokio::select! {
            reached = tokio::time::timeout(timeout, committed.wait_for(covers)) => {
                matches!(reached, Ok(Ok(_)))
            }
            // At shutdown, answer with what is committed rather than hold the request.
            () = self.cancel.cancelled() => false,
        };
        let outcome = committed.borrow().clone();
        Ok((reached && covers(&outcome), outcome))
    }

    /// Flushes and commits everything acknowledged in `table` so far.
    pub async fn flush_now(&self, table: &str) -> Result<FlushOutcome, FlushError> {
        let requests =
            self.ensure(table).ok_or_else(|| FlushError::UnknownTable(table.to_owned()))?;
        let (reply, rx) = oneshot::channel();
        requests.send(reply).await.map_err(|_| FlushError::ShuttingDown)?;
        rx.await
            .map_err(|_| FlushError::ShuttingDown)?
            .map_err(|source| FlushError::Failed { table: table.to_owned(), source })
    }

    pub fn status(&self, table: &str) -> Option<TableStatus> {
        self.tables.lock().unwrap().get(table).map(|h| h.status.lock().unwrap().clone())
    }

    /// Stops every table's task after a final flush, aborting what is not done within
    /// `budget` (whatever it did not commit stays durable in the hot store).
    pub async fn shutdown(&self, budget: Duration) {
        self.cancel.cancel();
        self.ctx.catalog.readiness().stop_all();
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
        let finished =
            tokio::time::timeout(budget, async { while tasks.join_next().await.is_some() {} })
                .await;
        if finished.is_err() {
            tracing::warn!(
                budget_ms = budget.as_millis() as u64,
                tables = tasks.len(),
                "the final flush did not finish in time; aborting it"
            );
            tasks.shutdown().await;
        }
    }
}

/// What the task of one table is given.
struct Task {
    table: String,
    id: crate::hot::TableId,
    status: Arc<Mutex<TableStatus>>,
    publish: Arc<watch::Sender<FlushOutcome>>,
}

/// Runs one table's loop and restarts it (from the snapshot, like a process restart) if it
/// panics, so a bug hit by one table never silently stops its flushing for good.
async fn supervise(
    ctx: Arc<Ctx>,
    task: Task,
    requests: mpsc::Receiver<FlushReply>,
    cancel: CancellationToken,
) {
    let Task { table, id, status, publish } = task;
    let mut requests = requests;
    let backoff = backoff(&ctx);
    for restarts in 1u32.. {
        let flusher =
            TableFlusher::new(ctx.clone(), table.clone(), id, status.clone(), publish.clone());
        let run = run_table(flusher, &mut requests, cancel.clone());
        match std::panic::AssertUnwindSafe(run).catch_unwind().await {
            Err(_) => {
                tracing::error!(%table, restarts, "table flusher panicked; restarting it");
                ::metrics::counter!(metrics::PANICS).increment(1);
                status.lock().unwrap().last_error = Some("flusher panicked; restarted".into());
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(backoff.delay(restarts)) => {}
                }
            }
            Ok(()) => return,
        }
    }
}

/// The loop of one table: init (retried), then cycles on interval or request.
async fn run_table(
    mut flusher: TableFlusher,
    requests: &mut mpsc::Receiver<FlushReply>,
    cancel: CancellationToken,
) {
    let ctx = flusher.ctx();
    let interval = Duration::from_millis(flusher.settings().interval_ms);
    let mut lp =
        BackgroundLoop::new("flush", interval, backoff(&ctx), cancel).for_table(flusher.name());
    let mut initialised = false;
    let mut waiting: Vec<FlushReply> = Vec::new();
    let mut more = false;
    loop {
        // Start at once (creating the Iceberg table), then every interval; back off on failures.
        match lp.wait(lp.next_wait(more || !initialised), requests.recv()).await {
            Wake::Cancelled => break,
            Wake::Event(reply) => waiting.push(reply),
            Wake::Due => {}
        }
        // Answer every request queued so far with one forced flush.
        while let Ok(reply) = requests.try_recv() {
            waiting.push(reply);
        }
        let force = !waiting.is_empty();
        if initialised && !force && !more && lp.failures() == 0 && !flusher.has_work() {
            ::metrics::counter!(metrics::IDLE_SKIPS).increment(1);
            continue;
        }
        let iteration = lp.begin();
        let result = async {
            if !initialised {
                if let Err(e) = flusher.init().await {
                    let failing = Readiness::Failing(Chain(&e).to_string());
                    ctx.catalog.readiness().set(flusher.name(), failing);
                    return Err(e);
                }
                initialised = true;
                ctx.catalog.readiness().set(flusher.name(), Readiness::Ready);
            }
            let _permit = ctx.permits.acquire().await;
            // A flush request covers everything acknowledged before it, and no more: under
            // sustained ingest, chasing the moving head would never return.
            let target = if force { Some(flusher.high_water_marks().await?) } else { None };
            let mut cycle = flusher.cycle(force).await?;
            while let Some(target) = &target
                && !flusher.covers(target)
            {
                cycle = flusher.cycle(true).await?;
            }
            Ok::<_, FlushError>(cycle.more)
        }
        .await;
        match result {
            Ok(m) => {
                more = m;
                lp.succeeded(iteration);
                flusher.record_success();
                let outcome = flusher.outcome();
                for reply in waiting.drain(..) {
                    let _ = reply.send(Ok(outcome.clone()));
                }
            }
            Err(e) => {
                let failures = lp.failed(iteration, &Chain(&e));
                flusher.record_failure(failures, &e);
                let e = Arc::new(e);
                for reply in waiting.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
    // Bounded final flush: the caller's grace period cuts it off.
    if initialised {
        let _permit = ctx.permits.acquire().await;
        if let Err(e) = flusher.cycle(true).await {
            tracing::warn!(table = %flusher.name(), error = %Chain(&e), "final flush failed");
        }
    }
}

/// The flusher's backoff after failures (`flush.backoff_initial_ms`, `flush.backoff_max_ms`).
fn backoff(ctx: &Ctx) -> Backoff {
    let c = &ctx.config.flush;
    Backoff::new(
        Duration::from_millis(c.backoff_initial_ms),
        Duration::from_millis(c.backoff_max_ms),
    )
}
