//! The hot store over the node's log (`durability = "object"`, see `crate::log`).
//!
//! Every write that must survive the loss of the disk — a combiner micro-batch, a table
//! registration — is recorded as it is assembled ([`Recorder`]) and appended to the log
//! before RocksDB applies it; the write returns once its segment exists. The flusher's
//! own state (watermarks, deletion floors, catalog pointers) is not logged: it is
//! rebuilt from the Iceberg tables themselves.
//!
//! A record is a list of operations, each `cf u8 · key length u16 · key · value length
//! u32 · value`, with `cf` 0 for `events`, 1 for `meta`, 2 for `idem`.
//!
//! **Applying a record again is harmless**, which is what makes recovery simple: a node
//! applies the latest checkpoint and every segment above it, in order, to whatever its
//! RocksDB holds (nothing after a disk loss, all of it after a restart). Counters
//! (high-water marks, byte counts, replay cursors) take the larger value; a run of events
//! wholly below its partition's deletion floor (flushed and deleted here already) is
//! skipped; an idempotency record keeps its first acceptance; a table registration must
//! agree with the registry.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt as _;
use rocksdb::{IteratorMode, WriteBatch};

use super::batch::GenerationWrite;
use super::idempotency::IdemRecord;
use super::keys::{self, CF_EVENTS, CF_IDEM, CF_META, TableId};
use super::run;
use super::{HotError, HotStore, Result, corrupt, now_ms};
use crate::log::{Contents, Log};

/// What a record holds that truncation needs to know: which events (to keep its segment
/// until they are committed) and which idempotency keys (to carry into the checkpoint).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Note {
    /// Per (table, partition) that the record wrote events to, the sequence after them.
    pub events: Vec<(TableId, u32, u64)>,
    /// The `idem` keys the record wrote.
    pub idem: Vec<Vec<u8>>,
}

/// The log of a hot store.
pub type HotLog = Log<Note>;

/// Segments holding nothing (heartbeats) kept before a truncation deletes them: ten minutes
/// of an idle node's heartbeats at the default `log.heartbeat_ms`.
const EMPTY_SEGMENTS_KEPT: usize = 600;

const OP_EVENTS: u8 = 0;
const OP_META: u8 = 1;
const OP_IDEM: u8 = 2;

/// The operations of one write, recorded as they are added to its `WriteBatch`.
#[derive(Default)]
pub(super) struct Recorder {
    ops: Vec<u8>,
    events: BTreeMap<(TableId, u32), u64>,
    idem: Vec<Vec<u8>>,
}

impl Recorder {
    pub(super) fn op(&mut self, cf: &str, key: &[u8], value: &[u8]) {
        let tag = match cf {
            CF_EVENTS => OP_EVENTS,
            CF_META => OP_META,
            _ => OP_IDEM,
        };
        self.ops.push(tag);
        self.ops.extend_from_slice(&(key.len() as u16).to_be_bytes());
        self.ops.extend_from_slice(key);
        self.ops.extend_from_slice(&(value.len() as u32).to_be_bytes());
        self.ops.extend_from_slice(value);
        if tag == OP_EVENTS {
            if let (Some((t, p, first)), Some(count)) =
                (keys::parse_event_key(key), run::count(value))
            {
                let next = self.events.entry((t, p)).or_default();
                *next = (*next).max(first + count);
            }
        } else if tag == OP_IDEM {
            self.idem.push(key.to_vec());
        }
    }

    pub(super) fn into_parts(self) -> (Vec<u8>, Note) {
        let note = Note {
            events: self.events.into_iter().map(|((t, p), n)| (t, p, n)).collect(),
            idem: self.idem,
        };
        (self.ops, note)
    }
}

/// The operations of a record, in order: (cf tag, key, value).
fn ops(record: &[u8]) -> impl Iterator<Item = Result<(u8, &[u8], &[u8])>> {
    let mut rest = record;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let parsed = (|| {
            let (&tag, r) = rest.split_first()?;
            let (klen, r) = r.split_at_checked(2)?;
            let (key, r) = r.split_at_checked(u16::from_be_bytes(klen.try_into().ok()?) as usize)?;
            let (vlen, r) = r.split_at_checked(4)?;
            let (value, r) =
                r.split_at_checked(u32::from_be_bytes(vlen.try_into().ok()?) as usize)?;
            Some((tag, key, value, r))
        })();
        match parsed {
            Some((tag, key, value, r)) => {
                rest = r;
                Some(Ok((tag, key, value)))
            }
            None => {
                rest = &[];
                Some(Err(corrupt("log", "a record's operation is cut short")))
            }
        }
    })
}

/// What a recovery applied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub checkpoints: usize,
    pub segments: usize,
    pub records: usize,
}

impl HotStore {
    /// Attaches the log every logged write goes through from now on.
    pub fn attach_log(&self, log: HotLog) {
        if self.log.set(log).is_err() {
            tracing::error!("the hot store's log was attached twice; keeping the first");
        }
    }

    pub fn log(&self) -> Option<&HotLog> {
        self.log.get()
    }

    /// Appends a write's record to the log (when there is one) and then applies the batch.
    pub(super) fn write_logged(
        &self,
        batch: WriteBatch,
        recorded: Option<Recorder>,
        synced: bool,
    ) -> Result<()> {
        if let Some(recorder) = recorded {
            let log = self.log.get().ok_or(HotError::NoLog)?;
            let (record, note) = recorder.into_parts();
            log.append(record, note)?;
        }
        if synced { self.write_synced(batch) } else { self.write(batch) }
    }

    /// Applies one record read back from the log (see the module docs for why applying
    /// it twice is harmless); with `idempotency_only`, only its idempotency records.
    pub fn apply_logged(&self, record: &[u8], idempotency_only: bool) -> Result<Note> {
        let mut batch = WriteBatch::default();
        let mut recorder = Recorder::default();
        // Values this record set, so that two operations on one key merge with each other.
        let mut counters: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut floors: HashMap<(TableId, u32), u64> = HashMap::new();
        let mut events = GenerationWrite::new(self);
        for op in ops(record) {
            let (tag, key, value) = op?;
            match tag {
                OP_IDEM => {
                    let new = IdemRecord::decode(value)
                        .ok_or_else(|| corrupt("log", "idempotency record"))?;
                    let kept = self
                        .db
                        .get_pinned_cf(&self.cf(CF_IDEM), key)?
                        .and_then(|v| IdemRecord::decode(&v));
                    if kept.is_none_or(|k| k.accepted_ms >= new.accepted_ms) {
                        batch.put_cf(&self.cf(CF_IDEM), key, value);
                    }
                    recorder.op(CF_IDEM, key, value);
                }
                _ if idempotency_only => {}
                OP_EVENTS => {
                    let (t, p, first) =
                        keys::parse_event_key(key).ok_or_else(|| corrupt("log", "event key"))?;
                    let end =
                        first + run::count(value).ok_or_else(|| corrupt("log", "run of events"))?;
                    let floor = match floors.get(&(t, p)) {
                        Some(&f) => f,
                        None => {
                            let f = self
                                .db
                                .get_cf(
                                    &self.cf(CF_META),
                                    keys::partition_key(keys::TAG_FLOOR, t, p),
                                )?
                                .and_then(|v| keys::parse_u64(&v))
                                .unwrap_or(0);
                            floors.insert((t, p), f);
                            f
                        }
                    };
                    // A run that straddles the floor is kept whole: scans start at the floor.
                    if end > floor {
                        events.put(&mut batch, (t, p, first, end), key, value);
                    }
                    recorder.op(CF_EVENTS, key, value);
                }
                OP_META => {
                    self.apply_meta(&mut batch, &mut counters, key, value)?;
                    recorder.op(CF_META, key, value);
                }
                _ => return Err(corrupt("log", format!("operation tag {tag}"))),
            }
        }
        self.write(batch)?;
        events.written();
        Ok(recorder.into_parts().1)
    }

    fn apply_meta(
        &self,
        batch: &mut WriteBatch,
        counters: &mut HashMap<Vec<u8>, u64>,
        key: &[u8],
        value: &[u8],
    ) -> Result<()> {
        let meta = self.cf(CF_META);
        match key.first().copied() {
            Some(keys::TAG_TABLE) => {
                if let Some(held) = self.db.get_cf(&meta, key)?
                    && held != value
                {
                    let name = String::from_utf8_lossy(&key[1..]);
                    return Err(corrupt(
                        CF_META,
                        format!(
                            "the log registers table {name} under another id than this node's hot store; was the data directory of another node reused?"
                        ),
                    ));
                }
                batch.put_cf(&meta, key, value);
            }
            Some(keys::TAG_COLUMN) => batch.put_cf(&meta, key, value),
            Some(keys::TAG_HWM | keys::TAG_BYTES | keys::TAG_REPLAYED) => {
                let new = keys::parse_u64(value).ok_or_else(|| corrupt("log", "counter value"))?;
                let held = match counters.get(key) {
                    Some(&v) => v,
                    None => {
                        self.db.get_cf(&meta, key)?.and_then(|v| keys::parse_u64(&v)).unwrap_or(0)
                    }
                };
                let merged = held.max(new);
                counters.insert(key.to_vec(), merged);
                batch.put_cf(&meta, key, keys::u64_value(merged));
            }
            _ => return Err(corrupt("log", "a meta key the log does not carry")),
        }
        Ok(())
    }

    /// A checkpoint record: the state logged writes leave in `meta` (registry, counters,
    /// inferred columns, replay cursors) and the idempotency records of `idem_keys` still
    /// within the window, with the time the last of them expires.
    pub fn checkpoint_record(&self, idem_keys: &[Vec<u8>], now_ms: i64) -> Result<(Vec<u8>, i64)> {
        let mut recorder = Recorder::default();
        let meta = self.cf(CF_META);
        for item in self.db.iterator_cf(&meta, IteratorMode::Start) {
            let (k, v) = item?;
            if matches!(
                k.first().copied(),
                Some(
                    keys::TAG_TABLE
                        | keys::TAG_HWM
                        | keys::TAG_BYTES
                        | keys::TAG_COLUMN
                        | keys::TAG_REPLAYED
                )
            ) {
                recorder.op(CF_META, &k, &v);
            }
        }
        let mut expires = 0;
        for key in idem_keys {
            let Some(v) = self.db.get_pinned_cf(&self.cf(CF_IDEM), key)? else { continue };
            let Some(r) = IdemRecord::decode(&v) else { continue };
            let until = r.accepted_ms.saturating_add(self.idempotency_window_ms);
            if until >= now_ms {
                expires = expires.max(until);
                recorder.op(CF_IDEM, key, &v);
            }
        }
        Ok((recorder.into_parts().0, expires))
    }

    /// Rebuilds this store from the log: the older checkpoints' idempotency records, the
    /// latest checkpoint, then every segment above it, in order. Segments are read a few
    /// at a time ahead of the one being applied.
    pub async fn recover(self: &Arc<Self>, log: &HotLog, contents: &Contents) -> Result<Recovered> {
        let mut done = Recovered::default();
        let mut checkpoints: Vec<(&str, bool)> =
            contents.older_checkpoints.iter().map(|c| (c.as_str(), true)).collect();
        if let Some(latest) = &contents.latest_checkpoint {
            checkpoints.push((latest, false));
        }
        for (name, idempotency_only) in checkpoints {
            let read = log.read_checkpoint(name).await?;
            for record in read.records {
                let store = self.clone();
                blocking(move || store.apply_logged(&record, idempotency_only)).await?;
                done.records += 1;
            }
            done.checkpoints += 1;
        }
        let mut reads =
            futures::stream::iter(contents.segments.iter().map(|&n| log.read_segment(n)))
                .buffered(8);
        while let Some(read) = reads.next().await {
            let read = read?;
            let store = self.clone();
            let records = read.records.clone();
            done.records += records.len();
            let notes = blocking(move || {
                records.iter().map(|r| store.apply_logged(r, false)).collect::<Result<Vec<_>>>()
            })
            .await?;
            log.recovered(&read, notes);
            done.segments += 1;
        }
        let store = self.clone();
        blocking(move || {
            store.db.flush_wal(true)?;
            let registry = store.read_registry()?;
            *store.tables.lock().unwrap() = registry;
            Ok(())
        })
        .await?;
        self.registered.notify_one();
        Ok(done)
    }

    /// Deletes the log's segments whose events are all committed to Iceberg (the persisted
    /// flush watermarks are at or past them), after a checkpoint that carries what they
    /// held. Returns how many segments were deleted.
    pub async fn truncate_log(self: &Arc<Self>) -> Result<usize> {
        let log = self.log.get().ok_or(HotError::NoLog)?.clone();
        let mut committed: HashMap<(TableId, u32), u64> = HashMap::new();
        for id in self.tables().into_values() {
            for (p, w) in self.watermarks(id)? {
                committed.insert((id, p), w);
            }
        }
        let cut = log.cut(|note| {
            note.events
                .iter()
                .any(|(t, p, next)| committed.get(&(*t, *p)).copied().unwrap_or(0) < *next)
        });
        if cut <= log.checkpointed() {
            return Ok(0);
        }
        // Only heartbeats to delete: a checkpoint (which carries the whole registry and
        // every counter) is not worth writing for them until they pile up.
        if log.records_below(cut) == 0 && log.retained().1 < EMPTY_SEGMENTS_KEPT {
            return Ok(0);
        }
        let mut idem = Vec::new();
        log.with_notes_below(cut, |n| idem.extend(n.idem.iter().cloned()));
        let store = self.clone();
        let now = now_ms();
        let (record, expires) = blocking(move || store.checkpoint_record(&idem, now)).await?;
        Ok(log.truncate(cut, record, expires, now).await?)
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(corrupt("log", format!("a recovery task failed: {e}"))),
    }
}

#[cfg(test)]
mod tests;

/// Takes the node's log in the warehouse: opens it and waits until this node owns it
/// ([`Log::acquire`]: at once for a new log or after this node's own restart, else as a
/// standby until the writer stops). Failures of the object store are retried with backoff.
/// `id_file` keeps the id of the last process that owned the log from this data directory.
/// The caller starts the log's writer at once (its heartbeats tell standbys that the log
/// is taken) and then rebuilds the hot store with [`recover_from_log`]. `None` when
/// `cancel` fires first.
pub async fn acquire_log(
    objects: crate::log::ObjectStore,
    config: &zombi_shared::config::LogConfig,
    id_file: &std::path::Path,
    cancel: &tokio_util::sync::CancellationToken,
) -> Option<HotLog> {
    use std::time::Duration;
    // Writes gather for `segment_window_ms` in the combiner (its micro-batch window in this
    // mode); the log adds no window: a segment is cut as soon as the one before is written,
    // holding everything that arrived meanwhile.
    let settings = crate::log::Settings {
        window: Duration::ZERO,
        max_bytes: config.segment_max_bytes as usize,
        heartbeat: Duration::from_millis(config.heartbeat_ms),
    };
    let takeover = Duration::from_millis(config.takeover_after_ms);
    retrying("cannot take the log", cancel, async || {
        let (log, _) = HotLog::open(objects.clone(), &config.prefix, settings).await?;
        let previous = std::fs::read_to_string(id_file)
            .ok()
            .and_then(|t| u128::from_str_radix(t.trim(), 16).ok());
        let Some(claimed) = log.acquire(previous, takeover, settings.heartbeat / 2, cancel).await?
        else {
            return Ok(None);
        };
        tracing::info!(claimed_segment = claimed, "this node owns the log");
        if let Err(e) = std::fs::write(id_file, format!("{:032x}", log.writer_id())) {
            tracing::warn!(error = %e, file = %id_file.display(), "cannot note this node's log id; its next start waits like a standby");
        }
        Ok(Some(log))
    })
    .await
    .flatten()
}

/// Rebuilds `store` from the log this node owns and attaches it, retrying failures of the
/// object store with backoff. `false` when `cancel` fires first.
pub async fn recover_from_log(
    store: &Arc<HotStore>,
    log: &HotLog,
    cancel: &tokio_util::sync::CancellationToken,
) -> bool {
    let recovered = retrying("cannot recover from the log", cancel, async || {
        let started = std::time::Instant::now();
        let contents = log.contents().await?;
        let recovered = store.recover(log, &contents).await?;
        tracing::info!(
            checkpoints = recovered.checkpoints,
            segments = recovered.segments,
            records = recovered.records,
            ms = started.elapsed().as_millis() as u64,
            "recovered the hot store from the log"
        );
        Ok(())
    })
    .await;
    if recovered.is_some() {
        store.attach_log(log.clone());
    }
    recovered.is_some()
}

/// Runs `attempt` until it succeeds, backing off after failures; `None` if cancelled.
async fn retrying<T>(
    what: &str,
    cancel: &tokio_util::sync::CancellationToken,
    attempt: impl AsyncFn() -> Result<T>,
) -> Option<T> {
    let backoff = crate::tasks::Backoff::new(
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(5),
    );
    let mut failures = 0;
    loop {
        match attempt().await {
            Ok(v) => return Some(v),
            Err(e) => {
                failures += 1;
                let retry_in = backoff.delay(failures);
                tracing::warn!(
                    error = %crate::error::Chain(&e),
                    failures,
                    retry_in_ms = retry_in.as_millis() as u64,
                    "{what}; retrying (writes wait)"
                );
                tokio::select! {
                    () = cancel.cancelled() => return None,
                    () = tokio::time::sleep(retry_in) => {}
                }
            }
        }
    }
}

/// Truncates the log every `period` until `cancel` fires (see [`HotStore::truncate_log`]).
pub async fn run_truncation(
    store: Arc<HotStore>,
    period: std::time::Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    let backoff = crate::tasks::Backoff::new(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(60),
    );
    let mut l = crate::tasks::BackgroundLoop::new("log truncation", period, backoff, cancel);
    loop {
        if l.wait(l.next_wait(false), std::future::pending::<Option<()>>()).await
            == crate::tasks::Wake::Cancelled
        {
            return;
        }
        let iteration = l.begin();
        match store.truncate_log().await {
            Ok(deleted) => {
                if deleted > 0 {
                    tracing::debug!(deleted, "truncated the log");
                }
                l.succeeded(iteration);
            }
            Err(e) => {
                l.failed(iteration, &crate::error::Chain(&e));
            }
        }
    }
}
