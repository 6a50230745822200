//! The flusher of one table: reads hot events from the watermarks, writes them as Parquet
//! split by hour, commits a snapshot carrying the complete watermark map and a commit id,
//! persists the watermarks, and deletes flushed events once the retention window passed.
//!
//! Invariants (SPEC §5):
//! - the snapshot is the truth: at start-up the persisted watermarks are reconciled with
//!   the current snapshot's summary;
//! - a commit whose outcome is unknown is looked up by its commit id before anything is
//!   retried, so a retry never appends the same rows twice;
//! - events are deleted only below a watermark that was committed at least
//!   `retention_secs` ago.

//!
//! The flush cycle is here; its steps each have a file: `init` (load or create the table,
//! reconcile the watermarks), `read` (the hot events to flush next), `commit` (inferred
//! columns, the append, the commit-outcome lookup, watermark persistence), `retention`
//! (what may be deleted from the hot store, and deleting it) and `status`.

mod commit;
mod init;
mod read;
mod retention;
mod status;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::layout::writer::SpecFiles;
use iceberg::{Catalog as _, TableIdent};
use serde::Serialize;
use zombi_shared::config::{SnapshotMode, TableFlushSettings};

use super::metrics as m;
use super::{Ctx, FlushError};
use crate::failpoints::crash_point;
use crate::hot::TableId;
use crate::layout;
use crate::schema;

/// What `/stats`, the watermark endpoint and flush callers see of a table's flusher.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableStatus {
    pub snapshot_id: Option<i64>,
    /// Committed watermarks: next sequence per partition not yet in Iceberg.
    pub watermarks: BTreeMap<u32, u64>,
    /// Events below these were deleted from the hot store.
    pub floors: BTreeMap<u32, u64>,
    pub commits: u64,
    pub rows_committed: u64,
    pub last_commit_ms: Option<i64>,
    pub last_flush_seconds: f64,
    pub pending_files: usize,
    pub pending_rows: u64,
    pub consecutive_failures: u64,
    pub last_error: Option<String>,
    /// Acknowledged events not yet committed.
    pub backlog_rows: u64,
    /// Payload bytes of that backlog, estimated from the table's average event size.
    pub backlog_bytes: u64,
    /// Age of the oldest uncommitted event's acceptance, in seconds (0 with no backlog).
    pub freshness_lag_seconds: f64,
}

/// Data files written but not yet committed (snapshot policy `thresholds`).
#[derive(Default)]
struct Pending {
    /// Usually one set; more when the table's partition spec changed meanwhile.
    files: Vec<SpecFiles>,
    rows: u64,
    bytes: u64,
    /// Where the next read starts, per partition, once these files are counted.
    read_to: BTreeMap<u32, u64>,
    since: Option<Instant>,
    /// Commit id of an attempt with these files whose outcome is unknown; looked up before
    /// the files are committed again.
    unverified: Option<String>,
    /// Keep file cleanup away from these files until they are committed.
    _inflight: Vec<crate::catalog::inflight::InFlightGuard>,
}

impl Pending {
    fn file_count(&self) -> usize {
        self.files.iter().map(|s| s.files.len()).sum()
    }
}

pub(in crate::flush) struct TableFlusher {
    ctx: Arc<Ctx>,
    name: String,
    ident: TableIdent,
    id: TableId,
    settings: TableFlushSettings,
    committed: BTreeMap<u32, u64>,
    pending: Pending,
    floors: BTreeMap<u32, u64>,
    /// Committed watermark maps with the time of their commit, oldest first.
    history: VecDeque<(Instant, BTreeMap<u32, u64>)>,
    /// `committed` is ahead of what RocksDB holds.
    watermarks_unsaved: bool,
    /// The hot store's write counter of this table when the last read started (`None`
    /// before the first read): unchanged means nothing new to read.
    read_at_activity: Option<u64>,
    pub(in crate::flush) status: Arc<Mutex<TableStatus>>,
    /// Where the committed state goes for those waiting on it.
    publish: Arc<tokio::sync::watch::Sender<super::FlushOutcome>>,
}

/// What one read of the hot store returned.
struct Read {
    rows: Vec<schema::Row>,
    /// Where each partition's read ended (exclusive).
    read_to: BTreeMap<u32, u64>,
    high_water_marks: BTreeMap<u32, u64>,
    /// A limit cut the read: more is waiting.
    more: bool,
}

/// Result of one flush cycle.
pub(in crate::flush) struct Cycle {
    /// The read stopped at `max_rows_per_flush`: more is waiting.
    pub more: bool,
}
impl TableFlusher {
    pub(in crate::flush) fn new(
        ctx: Arc<Ctx>,
        name: String,
        id: TableId,
        status: Arc<Mutex<TableStatus>>,
        publish: Arc<tokio::sync::watch::Sender<super::FlushOutcome>>,
    ) -> Self {
        let ident = ctx.catalog.ident(&name);
        let settings = ctx.config.table_flush(&name);
        TableFlusher {
            ctx,
            name,
            ident,
            id,
            settings,
            committed: BTreeMap::new(),
            pending: Pending::default(),
            floors: BTreeMap::new(),
            history: VecDeque::new(),
            watermarks_unsaved: false,
            read_at_activity: None,
            status,
            publish,
        }
    }

    pub(in crate::flush) fn settings(&self) -> &TableFlushSettings {
        &self.settings
    }

    pub(in crate::flush) fn ctx(&self) -> Arc<Ctx> {
        self.ctx.clone()
    }

    pub(in crate::flush) fn name(&self) -> &str {
        &self.name
    }

    /// The table's high-water marks now: everything acknowledged so far is below them.
    pub(in crate::flush) async fn high_water_marks(
        &self,
    ) -> Result<BTreeMap<u32, u64>, FlushError> {
        let (store, id) = (self.ctx.store.clone(), self.id);
        Ok(tokio::task::spawn_blocking(move || store.table_counters(id)).await??.high_water_marks)
    }

    /// Whether the committed watermarks reach `target` in every partition.
    pub(in crate::flush) fn covers(&self, target: &BTreeMap<u32, u64>) -> bool {
        target.iter().all(|(p, h)| self.committed.get(p).copied().unwrap_or(0) >= *h)
    }

    pub(in crate::flush) fn record_success(&self) {
        let mut status = self.status.lock().unwrap();
        status.consecutive_failures = 0;
        status.last_error = None;
        metrics::gauge!(m::CONSECUTIVE_FAILURES, "table" => self.name.clone()).set(0.0);
    }

    pub(in crate::flush) fn record_failure(&self, failures: u32, error: &FlushError) {
        let mut status = self.status.lock().unwrap();
        status.consecutive_failures = failures as u64;
        status.last_error = Some(crate::error::Chain(error).to_string());
        metrics::counter!(m::FLUSHES, "result" => "error").increment(1);
        metrics::gauge!(m::CONSECUTIVE_FAILURES, "table" => self.name.clone()).set(failures as f64);
    }

    /// The committed state, as a flush request's answer.
    pub(in crate::flush) fn outcome(&self) -> super::FlushOutcome {
        let status = self.status.lock().unwrap();
        super::FlushOutcome {
            table: self.name.clone(),
            snapshot_id: status.snapshot_id,
            watermarks: self.committed.clone(),
        }
    }

    /// Tells those waiting for commits ([`super::Flusher::wait_committed`]) what is
    /// committed now.
    pub(in crate::flush) fn publish_committed(&self) {
        let outcome = self.outcome();
        self.publish.send_replace(outcome);
    }

    /// One flush: read → write Parquet → maybe commit → maybe delete. `force` commits
    /// whatever is pending regardless of the snapshot policy.
    pub(in crate::flush) async fn cycle(&mut self, force: bool) -> Result<Cycle, FlushError> {
        crate::failpoints::panic_point("flush-cycle");
        let started = Instant::now();
        if self.watermarks_unsaved {
            self.persist_watermarks().await?;
        }
        // While an earlier commit attempt is unconfirmed, the pending files must stay
        // exactly those of the attempt: read nothing new until it is settled.
        let Read { rows, read_to, high_water_marks, more } = if self.pending.unverified.is_some() {
            let high_water_marks = self.high_water_marks().await?;
            Read { rows: Vec::new(), read_to: BTreeMap::new(), high_water_marks, more: false }
        } else {
            self.read().await?
        };
        // Events that went to the dead-letter table keep their sequences (the watermarks
        // pass them) but are no rows.
        let rows: Vec<schema::Row> = rows.into_iter().filter(|(_, _, e)| e.is_row()).collect();
        if !rows.is_empty() {
            let count = rows.len() as u64;
            // Rows take the schema current now: events accepted under an older schema fit
            // it, since schemas only evolve compatibly.
            let table = self.ctx.catalog.load_table(&self.ident).await?;
            let table = self.commit_inferred_columns(table).await?;
            let layout = self.ctx.catalog.layout(&table).map_err(FlushError::Schema)?;
            let partitioner =
                Arc::new(layout::Partitioner::of(table.metadata()).map_err(FlushError::Schema)?);
            let batches = tokio::task::spawn_blocking({
                let partitioner = partitioner.clone();
                move || layout::split_rows(rows, &layout, &partitioner)
            })
            .await?
            .map_err(FlushError::Schema)?;
            let flush_id = uuid::Uuid::now_v7().to_string();
            self.pending._inflight.push(self.ctx.catalog.protect(&self.name, flush_id.clone()));
            let target = self.ctx.config.iceberg.target_file_size_bytes as usize;
            // Encoding the Parquet files is the CPU-heavy part of a flush: off the workers
            // that answer ingest requests.
            let files = crate::cpu::off_workers(async move {
                layout::writer::write_data_files(&table, &partitioner, batches, target, &flush_id)
                    .await
            })
            .await??;
            crash_point("flush-after-write");
            self.pending.bytes += files.files.iter().map(|f| f.file_size_in_bytes()).sum::<u64>();
            match self.pending.files.last_mut() {
                Some(last) if last.spec_id == files.spec_id => last.files.extend(files.files),
                _ => self.pending.files.push(files),
            }
            self.pending.rows += count;
            self.pending.since.get_or_insert_with(Instant::now);
            metrics::counter!(m::FLUSHES, "result" => "ok").increment(1);
        }
        self.pending.read_to.extend(read_to);
        metrics::histogram!(m::FLUSH_SECONDS).record(started.elapsed().as_secs_f64());
        // An attempt whose outcome is unknown is settled at once, whatever the policy says:
        // the policy said commit when it was made, and nothing new is read until then.
        let settle = self.pending.unverified.is_some();
        // Reads of nothing but diverted events (or of a gap) write no file, but their
        // watermarks must still be committed, or a forced flush would never cover them.
        let advanced = self
            .pending
            .read_to
            .iter()
            .any(|(p, w)| self.committed.get(p).copied().unwrap_or(0) < *w);
        if (self.pending.file_count() > 0 || advanced)
            && (force || settle || self.policy_says_commit())
        {
            self.commit(&high_water_marks).await?;
        }
        self.delete_expired().await?;
        self.update_status(&high_water_marks, started.elapsed()).await;
        Ok(Cycle { more })
    }

    fn policy_says_commit(&self) -> bool {
        let p = &self.settings.snapshot;
        match p.mode {
            SnapshotMode::EveryFlush => true,
            SnapshotMode::Thresholds => {
                let age = self.pending.since.map_or(Duration::ZERO, |s| s.elapsed());
                (p.max_files > 0 && self.pending.file_count() as u64 >= p.max_files)
                    || (p.max_bytes > 0 && self.pending.bytes >= p.max_bytes)
                    || (p.max_age_ms > 0 && age >= Duration::from_millis(p.max_age_ms))
            }
        }
    }

    /// Whether a cycle has anything to do: events written since the last read, files
    /// waiting for a commit, state to persist, or flushed events due for deletion. An idle
    /// table is skipped without a flush slot or a RocksDB read.
    pub(in crate::flush) fn has_work(&self) -> bool {
        let written = self.read_at_activity != Some(self.ctx.store.activity(self.id));
        written || self.pending.file_count() > 0 || self.watermarks_unsaved || self.deletion_due()
    }
}
