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

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iceberg::spec::DataFile;
use iceberg::table::Table;
use iceberg::{Catalog, ErrorKind, TableCreation, TableIdent};
use serde::Serialize;
use zombi_shared::config::{SnapshotMode, TableFlushSettings};

use super::metrics as m;
use super::{Ctx, FlushError};
use crate::catalog::snapshot;
use crate::failpoints::crash_point;
use crate::hot::{self, TableId};
use crate::layout;

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
    files: Vec<DataFile>,
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

pub(super) struct TableFlusher {
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
    pub(super) status: Arc<Mutex<TableStatus>>,
}

/// What one read of the hot store returned.
struct Read {
    rows: Vec<layout::Row>,
    /// Where each partition's read ended (exclusive).
    read_to: BTreeMap<u32, u64>,
    high_water_marks: BTreeMap<u32, u64>,
    /// A limit cut the read: more is waiting.
    more: bool,
}

/// Result of one flush cycle.
pub(super) struct Cycle {
    /// The read stopped at `max_rows_per_flush`: more is waiting.
    pub more: bool,
}

impl TableFlusher {
    pub(super) fn new(
        ctx: Arc<Ctx>,
        name: String,
        id: TableId,
        status: Arc<Mutex<TableStatus>>,
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
        }
    }

    pub(super) fn settings(&self) -> &TableFlushSettings {
        &self.settings
    }

    pub(super) fn ctx(&self) -> Arc<Ctx> {
        self.ctx.clone()
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The table's high-water marks now: everything acknowledged so far is below them.
    pub(super) async fn high_water_marks(&self) -> Result<BTreeMap<u32, u64>, FlushError> {
        let (store, id) = (self.ctx.store.clone(), self.id);
        Ok(tokio::task::spawn_blocking(move || store.table_counters(id)).await??.high_water_marks)
    }

    /// Whether the committed watermarks reach `target` in every partition.
    pub(super) fn covers(&self, target: &BTreeMap<u32, u64>) -> bool {
        target.iter().all(|(p, h)| self.committed.get(p).copied().unwrap_or(0) >= *h)
    }

    pub(super) fn record_success(&self) {
        let mut status = self.status.lock().unwrap();
        status.consecutive_failures = 0;
        status.last_error = None;
        metrics::gauge!(m::CONSECUTIVE_FAILURES, "table" => self.name.clone()).set(0.0);
    }

    pub(super) fn record_failure(&self, failures: u32, error: &FlushError) {
        let mut status = self.status.lock().unwrap();
        status.consecutive_failures = failures as u64;
        status.last_error = Some(error.to_string());
        metrics::counter!(m::FLUSHES, "result" => "error").increment(1);
        metrics::gauge!(m::CONSECUTIVE_FAILURES, "table" => self.name.clone()).set(failures as f64);
    }

    /// The committed state, as a flush request's answer.
    pub(super) fn outcome(&self) -> super::FlushOutcome {
        let status = self.status.lock().unwrap();
        super::FlushOutcome {
            table: self.name.clone(),
            snapshot_id: status.snapshot_id,
            watermarks: self.committed.clone(),
        }
    }

    /// Creates the Iceberg table if needed and reconciles the persisted watermarks with the
    /// current snapshot.
    pub(super) async fn init(&mut self) -> Result<(), FlushError> {
        let table = self.load_or_create().await?;
        let from_snapshot = table
            .metadata()
            .current_snapshot()
            .map(|s| layout::watermarks_from_summary(&s.summary().additional_properties))
            .unwrap_or_default();
        let id = self.id;
        let store = self.ctx.store.clone();
        let (persisted, floors) = tokio::task::spawn_blocking(move || {
            Ok::<_, hot::HotError>((store.watermarks(id)?, store.floors(id)?))
        })
        .await??;
        if persisted != from_snapshot {
            // A crash between commit and persist (or a persisted map ahead of a lost
            // pointer): the snapshot decides.
            let mut fixed: BTreeMap<u32, u64> = persisted.keys().map(|p| (*p, 0)).collect();
            fixed.extend(from_snapshot.iter().map(|(p, w)| (*p, *w)));
            tracing::info!(table = %self.name, ?persisted, snapshot = ?from_snapshot, "reconciled watermarks with the snapshot");
            let store = self.ctx.store.clone();
            let to_write = fixed.clone();
            tokio::task::spawn_blocking(move || store.set_watermarks(id, &to_write)).await??;
        }
        for (p, floor) in &floors {
            let w = from_snapshot.get(p).copied().unwrap_or(0);
            if *floor > w {
                // Would mean events were deleted before reaching Iceberg.
                tracing::error!(table = %self.name, partition = p, floor, watermark = w, "deletion floor above the committed watermark");
                debug_assert!(false, "deletion floor above the committed watermark");
            }
        }
        self.committed = from_snapshot.clone();
        self.floors = floors;
        self.pending = Pending::default();
        // Deletion clocks restart with the process: conservative, never early.
        self.history = VecDeque::from([(Instant::now(), from_snapshot)]);
        let mut status = self.status.lock().unwrap();
        status.snapshot_id = table.metadata().current_snapshot_id();
        status.watermarks = self.committed.clone();
        status.floors = self.floors.clone();
        Ok(())
    }

    async fn load_or_create(&self) -> Result<Table, FlushError> {
        match self.ctx.catalog.load_table(&self.ident).await {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == ErrorKind::TableNotFound => {
                // The warehouse may hold the table already (this node lost its data
                // directory): adopt it rather than create a new one.
                if let Some(t) = self.ctx.catalog.adopt(&self.name).await? {
                    return Ok(t);
                }
                let creation = match crate::deadletter::source_of(&self.name) {
                    // Only the combiner writes such a table: for a typed table's bad events.
                    Some(source) => crate::deadletter::creation(source),
                    None => TableCreation::builder()
                        .name(self.name.clone())
                        .schema(layout::schema().as_ref().clone())
                        .partition_spec(layout::partition_spec())
                        .sort_order(layout::sort_order())
                        .properties(layout::table_properties())
                        .build(),
                };
                match self.ctx.catalog.create_raw(creation).await {
                    Ok(t) => {
                        tracing::info!(table = %self.name, "created iceberg table");
                        Ok(t)
                    }
                    // Created (or adopted) meanwhile; if it cannot be loaded, the refusal
                    // says more than "does not exist".
                    Err(e) if e.kind() == ErrorKind::TableAlreadyExists => {
                        self.ctx.catalog.load_table(&self.ident).await.map_err(|_| e.into())
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One flush: read → write Parquet → maybe commit → maybe delete. `force` commits
    /// whatever is pending regardless of the snapshot policy.
    pub(super) async fn cycle(&mut self, force: bool) -> Result<Cycle, FlushError> {
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
        let rows: Vec<layout::Row> = rows.into_iter().filter(|(_, _, e)| e.is_row()).collect();
        if !rows.is_empty() {
            let count = rows.len() as u64;
            // Rows take the schema current now: events accepted under an older schema fit
            // it, since schemas only evolve compatibly.
            let table = self.ctx.catalog.load_table(&self.ident).await?;
            let table = self.commit_inferred_columns(table).await?;
            let layout = self.ctx.catalog.layout(&table).map_err(FlushError::Schema)?;
            let batches = tokio::task::spawn_blocking(move || layout::split_by_hour(rows, &layout))
                .await?
                .map_err(FlushError::Schema)?;
            let flush_id = uuid::Uuid::now_v7().to_string();
            self.pending._inflight.push(self.ctx.catalog.protect(&self.name, flush_id.clone()));
            let target = self.ctx.config.iceberg.target_file_size_bytes as usize;
            // Encoding the Parquet files is the CPU-heavy part of a flush: off the workers
            // that answer ingest requests.
            let files = crate::cpu::off_workers(async move {
                layout::writer::write_data_files(&table, batches, target, &flush_id).await
            })
            .await??;
            crash_point("flush-after-write");
            self.pending.bytes += files.iter().map(|f| f.file_size_in_bytes()).sum::<u64>();
            self.pending.files.extend(files);
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
        if (!self.pending.files.is_empty() || advanced)
            && (force || settle || self.policy_says_commit())
        {
            self.commit(&high_water_marks).await?;
        }
        self.delete_expired().await?;
        self.update_status(&high_water_marks, started.elapsed()).await;
        Ok(Cycle { more })
    }

    /// Commits the columns the combiner inferred for new fields of a typed table
    /// (`zombi.evolve = additive`) to its schema, before rows that carry them are written;
    /// engines see them from this commit on. Inferred columns the schema holds by now (an
    /// engine may have added one itself) are forgotten.
    async fn commit_inferred_columns(&self, table: Table) -> Result<Table, FlushError> {
        let layout::Layout::Typed(typed) =
            self.ctx.catalog.layout(&table).map_err(FlushError::Schema)?
        else {
            return Ok(table);
        };
        // Whatever `zombi.evolve` says now: events acknowledged while it was `additive` carry
        // these columns.
        let (store, id) = (self.ctx.store.clone(), self.id);
        let records = tokio::task::spawn_blocking(move || store.pending_columns(id)).await??;
        if records.is_empty() {
            return Ok(table);
        }
        let mut indices = Vec::new();
        let mut inferred = Vec::new();
        for (index, json) in &records {
            match serde_json::from_slice::<crate::typed::Inferred>(json) {
                Ok(column) => {
                    indices.push(*index);
                    inferred.push(column);
                }
                Err(e) => {
                    tracing::error!(table = %self.name, error = %e, "unreadable inferred column record")
                }
            }
        }
        let table = match typed.schema_with(&inferred).map_err(FlushError::Schema)? {
            None => table,
            Some(_) => {
                let committed = self
                    .ctx
                    .catalog
                    .commit_rebuilt(&self.ident, async |current: &Table| {
                        let invalid = |e| iceberg::Error::new(ErrorKind::DataInvalid, e);
                        let layout::Layout::Typed(now) =
                            self.ctx.catalog.layout(current).map_err(invalid)?
                        else {
                            return Ok(None);
                        };
                        let Some(schema) = now.schema_with(&inferred).map_err(invalid)? else {
                            return Ok(None);
                        };
                        let metadata = iceberg::spec::TableMetadataBuilder::new_from_metadata(
                            current.metadata().clone(),
                            current.metadata_location().map(str::to_owned),
                        )
                        .add_current_schema(schema)?
                        .build()?
                        .metadata;
                        Ok(Some(metadata))
                    })
                    .await?;
                crash_point("flush-after-schema");
                let names: Vec<&str> = inferred.iter().map(|c| c.name.as_str()).collect();
                tracing::info!(table = %self.name, columns = ?names, "added inferred columns to the schema");
                match committed {
                    Some(t) => t,
                    None => self.ctx.catalog.load_table(&self.ident).await?,
                }
            }
        };
        // Every record's column is in the schema now (or the schema has a column of that
        // name an engine added): none needs committing again.
        let schema = table.metadata().current_schema().clone();
        let done: Vec<u32> = indices
            .iter()
            .zip(&inferred)
            .filter(|(_, c)| schema.field_by_name(&c.name).is_some())
            .map(|(index, _)| *index)
            .collect();
        let (store, id) = (self.ctx.store.clone(), self.id);
        tokio::task::spawn_blocking(move || store.delete_pending_columns(id, &done)).await??;
        Ok(table)
    }

    fn policy_says_commit(&self) -> bool {
        let p = &self.settings.snapshot;
        match p.mode {
            SnapshotMode::EveryFlush => true,
            SnapshotMode::Thresholds => {
                let age = self.pending.since.map_or(Duration::ZERO, |s| s.elapsed());
                (p.max_files > 0 && self.pending.files.len() as u64 >= p.max_files)
                    || (p.max_bytes > 0 && self.pending.bytes >= p.max_bytes)
                    || (p.max_age_ms > 0 && age >= Duration::from_millis(p.max_age_ms))
            }
        }
    }

    /// Whether a cycle has anything to do: events written since the last read, files
    /// waiting for a commit, state to persist, or flushed events due for deletion. An idle
    /// table is skipped without a flush slot or a RocksDB read.
    pub(super) fn has_work(&self) -> bool {
        let written = self.read_at_activity != Some(self.ctx.store.activity(self.id));
        written || !self.pending.files.is_empty() || self.watermarks_unsaved || self.deletion_due()
    }

    /// Some committed watermark map is older than the retention window and above a floor
    /// (and above what readers lease).
    fn deletion_due(&self) -> bool {
        self.deletion_target().is_some_and(|target| {
            target.iter().any(|(p, w)| *w > self.floors.get(p).copied().unwrap_or(0))
        })
    }

    /// Where retention may delete up to now: the newest watermark map committed at least a
    /// retention window ago, lowered to the watermarks real-time readers lease.
    fn deletion_target(&self) -> Option<BTreeMap<u32, u64>> {
        let mut target = self.newest_expired()?.clone();
        self.ctx.leases.clamp(self.id, &mut target, &self.floors);
        Some(target)
    }

    /// The newest watermark map committed at least a retention window ago.
    fn newest_expired(&self) -> Option<&BTreeMap<u32, u64>> {
        let retention = Duration::from_secs(self.settings.retention_secs);
        let cutoff = Instant::now().checked_sub(retention)?;
        self.history.iter().take_while(|(at, _)| *at <= cutoff).last().map(|(_, map)| map)
    }

    /// Reads unflushed events: at most `max_rows_per_flush` rows and about
    /// `max_bytes_per_flush` payload bytes, shared fairly between the partitions that have
    /// a backlog.
    async fn read(&mut self) -> Result<Read, FlushError> {
        // Taken before the read: a write racing it moves the counter again.
        self.read_at_activity = Some(self.ctx.store.activity(self.id));
        let store = self.ctx.store.clone();
        let id = self.id;
        let max_rows = self.ctx.config.flush.max_rows_per_flush;
        let max_bytes = self.ctx.config.flush.max_bytes_per_flush;
        let max_hours = self.ctx.config.flush.max_hours_per_flush as usize;
        // Read starts: pending reads first, then committed watermarks, else 0.
        let mut starts = self.committed.clone();
        starts.extend(self.pending.read_to.iter().map(|(p, w)| (*p, *w)));
        let table = self.name.clone();
        let out = tokio::task::spawn_blocking(move || -> Result<_, hot::HotError> {
            let hwm = store.table_counters(id)?.high_water_marks;
            let backlog: Vec<(u32, u64, u64)> = hwm
                .iter()
                .map(|(p, h)| (*p, starts.get(p).copied().unwrap_or(0), *h))
                .filter(|(_, from, to)| to > from)
                .collect();
            let share = backlog.len().max(1) as u64;
            let (rows_each, bytes_each) = ((max_rows / share).max(1), (max_bytes / share).max(1));
            let mut rows = Vec::new();
            let mut read_to = BTreeMap::new();
            let mut more = false;
            // Every event-time hour becomes at least one data file: a read covers about
            // `max_hours` of them, shared like rows and bytes so that one partition's
            // scattered backlog cannot hold the others back; a partition stops at its first
            // event of an hour beyond its share.
            let hours_each = (max_hours / share as usize).max(1);
            for (p, from, to) in backlog {
                let mut hours = std::collections::BTreeSet::new();
                let (mut end, mut bytes, mut cut) = (from, 0u64, false);
                for item in store.scan(id, p, from, to.min(from + rows_each)) {
                    let (seq, event) = item?;
                    let hour = event.timestamp_ms.div_euclid(3_600_000);
                    if !hours.contains(&hour) {
                        if hours.len() >= hours_each {
                            cut = true;
                            break;
                        }
                        hours.insert(hour);
                    }
                    if seq != end {
                        // Only durability `none` can lose acknowledged events: skip the gap
                        // rather than stall the partition, and say so.
                        tracing::error!(%table, partition = p, from = end, to = seq, "events missing from the hot store");
                        ::metrics::counter!(m::HOT_GAPS).increment(seq - end);
                    }
                    bytes += event.payload.len() as u64;
                    rows.push((p, seq, event));
                    end = seq + 1;
                    if bytes >= bytes_each {
                        cut = true;
                        break;
                    }
                }
                if !cut {
                    // The whole range was read (events missing at its end included).
                    end = to.min(from + rows_each);
                }
                more |= end < to;
                read_to.insert(p, end);
            }
            Ok(Read { rows, read_to, high_water_marks: hwm, more })
        })
        .await??;
        Ok(out)
    }

    async fn commit(&mut self, high_water_marks: &BTreeMap<u32, u64>) -> Result<(), FlushError> {
        let started = Instant::now();
        // The complete map: every partition the table has, flushed or not.
        let mut watermarks = self.committed.clone();
        watermarks.extend(self.pending.read_to.iter().map(|(p, w)| (*p, *w)));
        for p in high_water_marks.keys() {
            watermarks.entry(*p).or_insert(0);
        }
        let table = self.ctx.catalog.load_table(&self.ident).await?;
        // An earlier attempt with these very files may have gone through: check it first.
        let earlier = self
            .pending
            .unverified
            .as_deref()
            .and_then(|id| find_commit(&table, id, &self.committed, &watermarks));
        let snapshot_id = match earlier {
            Some(id) => {
                tracing::warn!(table = %self.name, "an unconfirmed commit is in the table");
                metrics::counter!(m::COMMITS, "result" => "recovered").increment(1);
                Some(id)
            }
            None => self.append(&table, &watermarks).await?,
        };
        // Iceberg holds the files now: the in-memory state follows the snapshot at once,
        // whatever happens to the persisted copy below.
        metrics::counter!(m::COMMITS, "result" => "ok").increment(1);
        metrics::histogram!(m::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        metrics::histogram!(m::COMMIT_ROWS).record(self.pending.rows as f64);
        metrics::histogram!(m::COMMIT_FILES).record(self.pending.files.len() as f64);
        {
            let mut status = self.status.lock().unwrap();
            status.snapshot_id = snapshot_id;
            status.commits += 1;
            status.rows_committed += self.pending.rows;
            status.last_commit_ms = Some(hot::now_ms());
        }
        self.committed = watermarks.clone();
        self.pending = Pending::default();
        self.history.push_back((Instant::now(), watermarks));
        self.watermarks_unsaved = true;
        crash_point("flush-after-commit");
        self.persist_watermarks().await?;
        crash_point("flush-after-watermark");
        Ok(())
    }

    /// Persists the committed watermarks; a failure is retried at the next cycle (and the
    /// snapshot would correct them at start-up anyway).
    async fn persist_watermarks(&mut self) -> Result<(), FlushError> {
        let store = self.ctx.store.clone();
        let (id, to_persist) = (self.id, self.committed.clone());
        tokio::task::spawn_blocking(move || store.set_watermarks(id, &to_persist)).await??;
        self.watermarks_unsaved = false;
        Ok(())
    }

    /// Appends the pending files as one snapshot carrying `watermarks` and a new commit id.
    async fn append(
        &mut self,
        table: &Table,
        watermarks: &BTreeMap<u32, u64>,
    ) -> Result<Option<i64>, FlushError> {
        let commit_id = uuid::Uuid::now_v7().to_string();
        let mut props: std::collections::HashMap<String, String> = watermarks
            .iter()
            .map(|(p, w)| (format!("{}{p}", layout::WATERMARK_PREFIX), w.to_string()))
            .collect();
        props.insert(layout::COMMIT_ID_KEY.to_owned(), commit_id.clone());
        // The manifests this commit writes carry its uuid: keep cleanup off them meanwhile.
        let commit_uuid = uuid::Uuid::new_v4();
        let _inflight = self.ctx.catalog.protect(&self.name, commit_uuid.to_string());
        let staged = snapshot::stage(
            table,
            commit_uuid,
            &[],
            &std::collections::HashSet::new(),
            self.pending.files.clone(),
        )
        .await?;
        crash_point("flush-before-commit");
        // Until the table says otherwise the outcome is unknown: remember the id, so that
        // no retry appends the same rows twice.
        self.pending.unverified = Some(commit_id.clone());
        if crate::failpoints::error_point("flush-commit-unknown") {
            // As if the commit request failed and the table could not be reloaded to check.
            return Err(FlushError::Task("failpoint flush-commit-unknown".into()));
        }
        let committed = self
            .ctx
            .catalog
            .commit_rebuilt(&self.ident, async |current: &Table| {
                Ok(Some(snapshot::rebuild_with_append(current, &staged, props.clone()).await?))
            })
            .await;
        match committed {
            Ok(table) => Ok(table.and_then(|t| t.metadata().current_snapshot_id())),
            Err(e) => {
                let reloaded = self.ctx.catalog.load_table(&self.ident).await?;
                match find_commit(&reloaded, &commit_id, &self.committed, watermarks) {
                    Some(id) => {
                        tracing::warn!(table = %self.name, error = %e, "commit reported an error but is in the table");
                        metrics::counter!(m::COMMITS, "result" => "recovered").increment(1);
                        Ok(Some(id))
                    }
                    None => {
                        // Checked: not committed, so a new attempt is safe.
                        self.pending.unverified = None;
                        metrics::counter!(m::COMMITS, "result" => "error").increment(1);
                        Err(e.into())
                    }
                }
            }
        }
    }

    /// Deletes events below the newest watermark map committed at least a retention
    /// window ago, except what real-time readers lease.
    async fn delete_expired(&mut self) -> Result<(), FlushError> {
        let retention = Duration::from_secs(self.settings.retention_secs);
        let Some(cutoff) = Instant::now().checked_sub(retention) else { return Ok(()) };
        while self.history.len() > 1 && self.history[1].0 <= cutoff {
            self.history.pop_front();
        }
        if !self.deletion_due() {
            return Ok(());
        }
        let Some(target) = self.newest_expired().cloned() else { return Ok(()) };
        let store = self.ctx.store.clone();
        let leases = self.ctx.leases.clone();
        let (id, floors) = (self.id, self.floors.clone());
        // Clamped to the leases and deleted while no listing can lease (see `Leases`).
        let done = tokio::task::spawn_blocking(move || {
            leases.delete_clamped(id, target, &floors, |target| {
                let work: Vec<(u32, u64, u64)> = target
                    .iter()
                    .map(|(p, w)| (*p, floors.get(p).copied().unwrap_or(0), *w))
                    .filter(|(_, floor, w)| w > floor)
                    .collect();
                for &(p, floor, w) in &work {
                    store.delete_below(id, p, floor, w)?;
                }
                Ok::<_, hot::HotError>(work)
            })
        })
        .await??;
        let mut deleted = 0;
        for (p, floor, w) in done {
            self.floors.insert(p, w);
            deleted += w - floor;
        }
        metrics::counter!(m::HOT_DELETED).increment(deleted);
        Ok(())
    }

    async fn update_status(&self, high_water_marks: &BTreeMap<u32, u64>, took: Duration) {
        let lagging: Vec<(u32, u64)> = high_water_marks
            .iter()
            .filter_map(|(p, h)| {
                let w = self.committed.get(p).copied().unwrap_or(0);
                (h > &w).then_some((*p, w))
            })
            .collect();
        let backlog: u64 = high_water_marks
            .iter()
            .map(|(p, h)| h.saturating_sub(self.committed.get(p).copied().unwrap_or(0)))
            .sum();
        let store = self.ctx.store.clone();
        let id = self.id;
        // The oldest uncommitted event of each lagging partition sits at its watermark.
        let (oldest_ms, counters) = tokio::task::spawn_blocking(move || {
            let oldest = lagging
                .into_iter()
                .filter_map(|(p, w)| {
                    store.scan(id, p, w, w + 1).next()?.ok().map(|(_, e)| e.ingest_ms)
                })
                .min();
            (oldest, store.table_counters(id).ok())
        })
        .await
        .unwrap_or((None, None));
        let backlog_bytes = counters.map_or(0, |c| {
            let events: u64 = c.high_water_marks.values().sum();
            (c.bytes as u128 * backlog as u128 / events.max(1) as u128) as u64
        });
        let lag = oldest_ms.map_or(0.0, |ms| (hot::now_ms() - ms).max(0) as f64 / 1000.0);
        let labels = [("table", self.name.clone())];
        metrics::gauge!(m::BACKLOG_ROWS, &labels).set(backlog as f64);
        metrics::gauge!(m::BACKLOG_BYTES, &labels).set(backlog_bytes as f64);
        metrics::gauge!(m::FRESHNESS_LAG, &labels).set(lag);
        let mut status = self.status.lock().unwrap();
        status.watermarks = self.committed.clone();
        status.floors = self.floors.clone();
        status.pending_files = self.pending.files.len();
        status.pending_rows = self.pending.rows;
        status.backlog_rows = backlog;
        status.backlog_bytes = backlog_bytes;
        status.freshness_lag_seconds = lag;
        status.last_flush_seconds = took.as_secs_f64();
    }
}

/// The snapshot that holds the commit `commit_id` (which moved the watermarks from
/// `committed` to `attempted`), if the table has it. Maintenance may have expired that very
/// snapshot since, but it carries the watermark map forward, and only this flusher moves
/// the watermarks: a current map at or past `attempted` means the commit went through.
fn find_commit(
    table: &Table,
    commit_id: &str,
    committed: &BTreeMap<u32, u64>,
    attempted: &BTreeMap<u32, u64>,
) -> Option<i64> {
    let metadata = table.metadata();
    let by_id = metadata
        .snapshots()
        .find(|s| {
            s.summary().additional_properties.get(layout::COMMIT_ID_KEY).map(String::as_str)
                == Some(commit_id)
        })
        .map(|s| s.snapshot_id());
    by_id.or_else(|| {
        let current = metadata.current_snapshot()?;
        let now = layout::watermarks_from_summary(&current.summary().additional_properties);
        let advanced = attempted.iter().any(|(p, w)| committed.get(p).copied().unwrap_or(0) < *w);
        let holds = attempted.iter().all(|(p, w)| now.get(p).copied().unwrap_or(0) >= *w);
        (advanced && holds).then(|| current.snapshot_id())
    })
}
