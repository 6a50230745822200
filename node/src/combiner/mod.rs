//! The combiner turns many small ingest requests into few RocksDB writes.
//!
//! Each table is owned by one of N shard workers (chosen by a hash of its name), so the
//! sequences of a table are assigned by one thread without locks. A worker collects groups
//! for up to `batch_window_us` or `batch_max_events`, writes them with one `WriteBatch`
//! (events, high-water marks, byte counters and idempotency records together), and only
//! then answers each group. Admission is byte-weighted: [`Combiner::admit`] refuses work
//! beyond `limits.max_inflight_bytes` so upstream sees 429 instead of growing queues.

mod error;
mod worker;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;
use zombi_shared::config::{Durability, NodeConfig};
use zombi_shared::wire::{Ack, Group};

pub use error::CombinerError;

use crate::hot::HotStore;
use crate::metrics as m;
use crate::typed::Registry;

struct Job {
    group: Group,
    /// Set when the group re-ingests rows of a dead-letter table.
    replay: Option<Replay>,
    reply: oneshot::Sender<Result<Vec<Ack>, CombinerError>>,
    /// Released when the job is done, even if the request that sent it went away.
    _admission: Arc<Admission>,
}

/// Rows `[from, to)` of one partition of a dead-letter table being re-ingested into their
/// table (see `crate::replay`): the group's events in that order, `sources`
/// their sequences in the table. The worker writes the events that fit now, the others as
/// new dead-letter rows, and the replay cursor `to`, all in one write; a chunk whose
/// `from` is not where the cursor stands is refused, so no row is replayed twice.
#[derive(Debug, Clone)]
pub struct Replay {
    pub dead_letter: String,
    pub partition: u32,
    pub from: u64,
    pub to: u64,
    pub sources: Vec<u64>,
}

pub struct Combiner {
    /// Emptied by [`Combiner::shutdown`]: with the senders gone, workers finish their queue
    /// and exit, even while requests still hold the combiner.
    shards: RwLock<Vec<SyncSender<Job>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    inflight: Arc<AtomicU64>,
    max_inflight: u64,
}

/// Bytes admitted into the combiner; released when dropped.
pub struct Admission {
    inflight: Arc<AtomicU64>,
    bytes: u64,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let now = self.inflight.fetch_sub(self.bytes, Ordering::AcqRel) - self.bytes;
        metrics::gauge!(m::COMBINER_INFLIGHT_BYTES).set(now as f64);
    }
}

/// Runs one shard worker, restarting it if it panics: its tables' state is reloaded from
/// the hot store (it only ever changes after a durable write), and the groups of the
/// micro-batch that panicked are answered with an error (their senders are dropped), so no
/// table of the shard is left answering 503 for good.
fn supervise(
    shard: u64,
    store: &Arc<HotStore>,
    typing: &Arc<Registry>,
    rx: &std::sync::mpsc::Receiver<Job>,
    settings: worker::Settings,
) {
    loop {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            worker::run(store.clone(), typing, rx, settings)
        }));
        match run {
            Ok(()) => return,
            Err(_) => {
                tracing::error!(shard, "combiner worker panicked; restarting it");
                metrics::counter!(m::COMBINER_PANICS).increment(1);
            }
        }
    }
}

impl Combiner {
    /// `typing` tells which tables are typed: their events are checked before they are
    /// acknowledged.
    pub fn start(
        store: Arc<HotStore>,
        typing: Arc<Registry>,
        config: &NodeConfig,
    ) -> std::io::Result<Self> {
        let c = &config.combiner;
        // With `durability = "object"` a micro-batch's write waits for its log segment, so
        // the segment window is where writes gather: one micro-batch per window and shard,
        // and a write waits at most the window and one PUT (the log adds no window of its
        // own, see `hot::logged::acquire_log`).
        let window_us = match config.durability {
            Durability::Object => c.batch_window_us.max(config.log.segment_window_ms * 1000),
            _ => c.batch_window_us,
        };
        let settings = worker::Settings {
            window: Duration::from_micros(window_us),
            max_events: c.batch_max_events as usize,
        };
        let mut shards = Vec::new();
        let mut workers = Vec::new();
        for i in 0..c.shards {
            let (tx, rx) = sync_channel(c.queue_depth as usize);
            let (store, typing) = (store.clone(), typing.clone());
            let handle = std::thread::Builder::new()
                .name(format!("combiner-{i}"))
                .spawn(move || supervise(i, &store, &typing, &rx, settings))?;
            shards.push(tx);
            workers.push(handle);
        }
        Ok(Combiner {
            shards: RwLock::new(shards),
            workers: Mutex::new(workers),
            inflight: Arc::new(AtomicU64::new(0)),
            max_inflight: config.limits.max_inflight_bytes,
        })
    }

    /// Reserves `bytes` of the in-flight budget, all or nothing.
    pub fn admit(&self, bytes: u64) -> Result<Admission, CombinerError> {
        let mut current = self.inflight.load(Ordering::Acquire);
        loop {
            let next = current.saturating_add(bytes);
            if next > self.max_inflight {
                return Err(CombinerError::Overloaded);
            }
            match self.inflight.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    metrics::gauge!(m::COMBINER_INFLIGHT_BYTES).set(next as f64);
                    return Ok(Admission { inflight: self.inflight.clone(), bytes });
                }
                Err(seen) => current = seen,
            }
        }
    }

    pub fn inflight_bytes(&self) -> u64 {
        self.inflight.load(Ordering::Acquire)
    }

    /// Writes one group durably and returns one ack per event. The group is validated and
    /// admitted; `admission` stays held until the group is written.
    pub async fn submit(
        &self,
        group: Group,
        admission: Arc<Admission>,
    ) -> Result<Vec<Ack>, CombinerError> {
        self.send(group, None, admission).await
    }

    /// Re-ingests a chunk of dead-letter rows (see [`Replay`]): one ack per row, with
    /// `dead_lettered` set for a row that still does not fit (its sequence is then its
    /// original one).
    pub async fn replay(
        &self,
        group: Group,
        replay: Replay,
        admission: Arc<Admission>,
    ) -> Result<Vec<Ack>, CombinerError> {
        self.send(group, Some(replay), admission).await
    }

    async fn send(
        &self,
        group: Group,
        replay: Option<Replay>,
        admission: Arc<Admission>,
    ) -> Result<Vec<Ack>, CombinerError> {
        let mut hasher = DefaultHasher::new();
        group.table.hash(&mut hasher);
        let (reply, rx) = oneshot::channel();
        {
            let shards = self.shards.read().unwrap();
            if shards.is_empty() {
                return Err(CombinerError::ShuttingDown);
            }
            let shard = &shards[(hasher.finish() % shards.len() as u64) as usize];
            match shard.try_send(Job { group, replay, reply, _admission: admission }) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => return Err(CombinerError::Overloaded),
                Err(TrySendError::Disconnected(_)) => return Err(CombinerError::ShuttingDown),
            }
        }
        rx.await.unwrap_or(Err(CombinerError::ShuttingDown))
    }

    /// Stops the workers after they wrote everything already queued; later submissions
    /// are refused as shutting down.
    pub fn shutdown(&self) {
        self.shards.write().unwrap().clear();
        for w in self.workers.lock().unwrap().drain(..) {
            if w.join().is_err() {
                tracing::error!("combiner worker panicked");
            }
        }
    }
}
