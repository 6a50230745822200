//! One maintenance run of one table: compact small files hour by hour, merge manifests,
//! expire snapshots (one `replace` commit, or a metadata-only commit when nothing was
//! rewritten), then delete files nothing references any more.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use iceberg::Catalog as _;
use iceberg::spec::{DataContentType, DataFile, ManifestStatus, Struct};
use iceberg::table::Table;
use serde::Serialize;
use zombi_shared::config::MaintenanceConfig;

use super::cleanup::Cleanup;
use super::commit::{self, Expiry};
use super::error::MaintenanceError;
use super::manifests::{Entries, ManifestCache};
use super::metrics as m;
use super::plan::{self, FileInfo, PlanSettings};
use super::{Ctx, remove, retention, rewrite};
use crate::failpoints::crash_point;
use crate::hot;
use crate::layout::{self, writer::SpecFiles};
use crate::schema;

/// Manifests below this size are merged once a snapshot lists more than `max_manifests`.
const SMALL_MANIFEST_BYTES: i64 = 8 << 20;

/// What one run did: the answer of `POST /tables/{t}/compact`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub table: String,
    /// The current snapshot after the run.
    pub snapshot_id: Option<i64>,
    pub partitions_compacted: u64,
    pub files_rewritten: u64,
    pub bytes_rewritten: u64,
    pub files_written: u64,
    pub bytes_written: u64,
    pub manifests_merged: u64,
    pub snapshots_expired: u64,
    pub files_deleted: u64,
    /// Unreferenced files still inside their grace period.
    pub files_awaiting_deletion: u64,
    /// The rewrite budget cut the run short: the next run continues.
    pub more: bool,
    /// The table's retention in seconds (`None`: off), and what it removed in this run.
    pub retention_secs: Option<u64>,
    /// Rows with an event time before this were removed (Unix ms; `None`: no retention).
    pub retention_cutoff_ms: Option<i64>,
    pub retention: Option<super::Removal>,
    /// The oldest event time the table holds after the run (Unix ms; `None`: no rows).
    pub oldest_event_time_ms: Option<i64>,
    pub duration_ms: u64,
}

/// What `/stats` shows of a table's maintenance.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MaintenanceStatus {
    pub data_files: u64,
    pub data_bytes: u64,
    pub average_file_bytes: u64,
    pub manifests: u64,
    pub snapshots: u64,
    pub metadata_json_bytes: u64,
    pub runs: u64,
    pub files_rewritten: u64,
    pub bytes_rewritten: u64,
    pub snapshots_expired: u64,
    pub files_deleted: u64,
    /// Rows retention removed, over all runs of this process.
    pub rows_expired: u64,
    /// The table's retention in seconds (`None`: off), and the oldest event time it still
    /// holds (Unix ms), as of the last run.
    pub retention_secs: Option<u64>,
    pub oldest_event_time_ms: Option<i64>,
    /// Unix time of the last run's end, in ms.
    pub last_run_ms: Option<i64>,
    pub last_run_seconds: f64,
    /// `ok` or `error`.
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
    pub last_report: Option<Report>,
}

/// Per-table state kept between runs.
#[derive(Default)]
pub struct TableMaintenance {
    manifests: ManifestCache,
    /// Outputs of rewrites that did not reduce the number of files (see `FileInfo::done`).
    /// In memory only: after a restart such a file may be merged once more.
    done: HashSet<String>,
    /// When each live data file was added, as far as this process knows.
    added: HashMap<String, i64>,
    cleanup: Cleanup,
    last_cleanup: Option<Instant>,
}

impl TableMaintenance {
    pub async fn run(
        &mut self,
        ctx: &Ctx,
        name: &str,
        settings: &MaintenanceConfig,
        forced: bool,
    ) -> Result<Report, MaintenanceError> {
        let started = Instant::now();
        let ident = ctx.catalog.ident(name);
        let mut report = Report { table: name.to_owned(), ..Report::default() };
        let expiry = Expiry {
            max_snapshots: settings.max_snapshots,
            max_age_ms: (settings.max_snapshot_age_secs as i64).saturating_mul(1000),
            now_ms: hot::now_ms(),
        };
        let loaded = ctx.catalog.load_table(&ident).await?;
        // Retention first, in its own commit: compaction then plans on what is left. A
        // retention or a compaction that fails (a damaged input, a bad setting) must not
        // keep the rest of the run from bounding the metadata: it runs anyway, and the
        // error is the run's.
        let (table, retention_failed) =
            match self.retain(ctx, &loaded, settings, expiry.now_ms, &mut report).await {
                Ok(after) => (after.unwrap_or(loaded), None),
                Err(e) => (loaded, Some(e)),
            };
        let before = table.metadata().snapshots().len() as u64;
        let (replaced, failed) =
            match self.compact(ctx, &table, settings, forced, expiry, &mut report).await {
                Ok(t) => (t, retention_failed),
                Err(e) => (None, Some(e)),
            };
        // The replace commit expired snapshots too; otherwise a metadata-only commit does.
        let added = u64::from(replaced.is_some());
        let after = match replaced {
            Some(t) => Some(t),
            None => {
                ctx.catalog
                    .commit_rebuilt(&ident, async |current: &Table| {
                        commit::rebuild_with_expiry(current, expiry)
                    })
                    .await?
            }
        };
        if let Some(after) = &after {
            report.snapshots_expired =
                (before + added).saturating_sub(after.metadata().snapshots().len() as u64);
        }
        let cleanup_every = Duration::from_secs(settings.cleanup_interval_secs);
        if forced || self.last_cleanup.is_none_or(|t| t.elapsed() >= cleanup_every) {
            if let Some(lister) = ctx.catalog.lister() {
                let grace = Duration::from_secs(settings.file_grace_secs);
                let deleted = self
                    .cleanup
                    .run(&ctx.catalog, lister, &mut self.manifests, name, grace)
                    .await?;
                report.files_deleted = deleted.files;
                report.files_awaiting_deletion = deleted.waiting;
            }
            self.last_cleanup = Some(Instant::now());
        }
        if let Some(e) = failed {
            return Err(e);
        }
        let current = ctx.catalog.load_table(&ident).await?;
        report.snapshot_id = current.metadata().current_snapshot_id();
        report.duration_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// Removes the rows older than the table's retention (a `delete` or `overwrite` commit)
    /// and records the oldest event time left; returns the table after its commit, if any.
    async fn retain(
        &mut self,
        ctx: &Ctx,
        table: &Table,
        settings: &MaintenanceConfig,
        now_ms: i64,
        report: &mut Report,
    ) -> Result<Option<Table>, MaintenanceError> {
        let name = table.identifier().name().to_owned();
        let secs = retention::retention_secs(table.metadata().properties(), settings)
            .map_err(|reason| MaintenanceError::Settings { table: name.clone(), reason })?;
        report.retention_secs = secs;
        let mut committed = None;
        if let Some(secs) = secs {
            let grain = schema::partitioning::event_time_grain_ms(
                table.metadata().default_partition_spec(),
            );
            let cutoff_ms = retention::cutoff_ms(now_ms, secs, grain);
            report.retention_cutoff_ms = Some(cutoff_ms);
            let cutoff_us = cutoff_ms.saturating_mul(1000);
            let matcher = std::sync::Arc::new(retention::OlderThan { cutoff_us });
            let (removal, after) =
                remove::remove(ctx, &mut self.manifests, table, matcher, "retention").await?;
            ::metrics::counter!(m::ROWS_DELETED, "table" => name.clone(), "reason" => "retention")
                .increment(removal.rows_deleted);
            if removal.rows_deleted > 0 {
                tracing::info!(table = %name, rows = removal.rows_deleted, removed = removal.files_removed, rewritten = removal.files_rewritten, retention_secs = secs, "removed rows past retention");
            }
            report.retention = Some(removal);
            committed = after;
        }
        let (_, files) =
            remove::live_files(&mut self.manifests, committed.as_ref().unwrap_or(table)).await?;
        report.oldest_event_time_ms =
            files.iter().filter_map(retention::oldest_event_us).min().map(|us| us.div_euclid(1000));
        Ok(committed)
    }

    /// Removes the rows `matcher` matches from the table's current snapshot.
    pub async fn remove_rows(
        &mut self,
        ctx: &Ctx,
        name: &str,
        matcher: std::sync::Arc<dyn super::RowMatch>,
    ) -> Result<super::Removal, MaintenanceError> {
        let table = ctx.catalog.load_table(&ctx.catalog.ident(name)).await?;
        let (removal, _) =
            remove::remove(ctx, &mut self.manifests, &table, matcher, "delete").await?;
        Ok(removal)
    }

    /// Rewrites small files and merges manifests in one `replace` commit that also expires
    /// snapshots. `None` when there was nothing to rewrite or merge.
    async fn compact(
        &mut self,
        ctx: &Ctx,
        table: &Table,
        settings: &MaintenanceConfig,
        forced: bool,
        expiry: Expiry,
        report: &mut Report,
    ) -> Result<Option<Table>, MaintenanceError> {
        let metadata = table.metadata();
        if metadata.current_snapshot().is_none() {
            return Ok(None);
        }
        let loaded = self.manifests.data_manifests(table).await?;
        // Live data files by partition (of their spec), with when they were added.
        let mut hours: HashMap<(i32, Struct), Vec<(FileInfo, DataFile)>> = HashMap::new();
        for (manifest, entries) in &loaded {
            for e in entries.iter().filter(|e| e.status() != ManifestStatus::Deleted) {
                if e.content_type() != DataContentType::Data {
                    continue;
                }
                // The adding snapshot's time while it is retained; after it expired, when
                // this process first saw the file (a restart only delays "quiet").
                let committed_ms = e
                    .snapshot_id()
                    .and_then(|id| metadata.snapshot_by_id(id))
                    .map(|s| s.timestamp_ms());
                let added_ms = *self
                    .added
                    .entry(e.file_path().to_owned())
                    .or_insert(committed_ms.unwrap_or(expiry.now_ms));
                let done = self.done.contains(e.file_path());
                let info = FileInfo { size: e.file_size_in_bytes(), added_ms, done };
                hours
                    .entry((manifest.partition_spec_id, e.data_file().partition().clone()))
                    .or_default()
                    .push((info, e.data_file().clone()));
            }
        }
        let live: HashSet<&str> = hours.values().flatten().map(|(_, f)| f.file_path()).collect();
        self.done.retain(|p| live.contains(p.as_str()));
        self.added.retain(|p, _| live.contains(p.as_str()));
        let plan_settings = PlanSettings {
            target_file_size: ctx.config.iceberg.target_file_size_bytes,
            min_input_files: settings.min_input_files as usize,
            quiet_ms: (settings.quiet_secs as i64).saturating_mul(1000),
            now_ms: expiry.now_ms,
            full: forced,
        };
        // An explicit run may do more than a background one, but not without bound: it
        // holds the one maintenance worker. What is left is reported as `more`.
        let mut budget =
            settings.max_rewrite_bytes_per_run.saturating_mul(if forced { 8 } else { 1 });
        let mut removed: HashSet<String> = HashSet::new();
        let mut added: Vec<SpecFiles> = Vec::new();
        // Merged files take the table's current spec (files of an older one are split).
        let partitioner = Arc::new(layout::Partitioner::of(metadata)?);
        let run_id = uuid::Uuid::now_v7();
        let mut group_no = 0;
        'hours: for files in hours.values() {
            let infos: Vec<FileInfo> = files.iter().map(|(i, _)| i.clone()).collect();
            let groups = plan::plan_hour(&infos, &plan_settings);
            if !groups.is_empty() {
                report.partitions_compacted += 1;
            }
            for group in groups {
                let inputs: Vec<DataFile> = group.iter().map(|i| files[*i].1.clone()).collect();
                let bytes: u64 = inputs.iter().map(DataFile::file_size_in_bytes).sum();
                if bytes > budget && !removed.is_empty() {
                    report.more = true;
                    break 'hours;
                }
                budget = budget.saturating_sub(bytes);
                let prefix = format!("compact-{run_id}-{group_no}");
                group_no += 1;
                let target = ctx.config.iceberg.target_file_size_bytes as usize;
                // Merging and encoding files takes seconds of CPU: off the workers that
                // answer ingest requests.
                let written =
                    crate::cpu::off_workers({
                        let (table, inputs, partitioner) =
                            (table.clone(), inputs.clone(), partitioner.clone());
                        async move {
                            rewrite::rewrite(&table, &partitioner, &inputs, target, &prefix).await
                        }
                    })
                    .await
                    .map_err(MaintenanceError::Rewrite)??;
                report.files_rewritten += inputs.len() as u64;
                report.bytes_rewritten += bytes;
                report.files_written += written.files.len() as u64;
                report.bytes_written +=
                    written.files.iter().map(DataFile::file_size_in_bytes).sum::<u64>();
                if written.files.len() >= inputs.len() {
                    self.done.extend(written.files.iter().map(|f| f.file_path().to_owned()));
                }
                removed.extend(inputs.iter().map(|f| f.file_path().to_owned()));
                added.push(written);
            }
        }
        crash_point("compact-after-rewrite");
        let mut replace: Vec<(iceberg::spec::ManifestFile, Entries)> = loaded
            .iter()
            .filter(|(_, entries)| entries.iter().any(|e| removed.contains(e.file_path())))
            .cloned()
            .collect();
        if loaded.len() as u64 > settings.max_manifests {
            let chosen: HashSet<String> =
                replace.iter().map(|(m, _)| m.manifest_path.clone()).collect();
            replace.extend(
                loaded
                    .iter()
                    .filter(|(m, _)| {
                        m.manifest_length < SMALL_MANIFEST_BYTES
                            && !chosen.contains(&m.manifest_path)
                    })
                    .cloned(),
            );
        }
        if replace.is_empty() || (removed.is_empty() && replace.len() < 2) {
            return Ok(None);
        }
        report.manifests_merged = replace.len() as u64;
        let kind = commit::Kind::Replace(expiry);
        let committed =
            commit::stage_and_commit(ctx, table, &replace, &removed, added, kind).await?;
        crash_point("compact-after-commit");
        Ok(committed)
    }
}

/// Refreshes the table figures of `status` (and their gauges) from the current metadata.
pub async fn measure(
    ctx: &Ctx,
    name: &str,
    status: &mut MaintenanceStatus,
) -> Result<(), MaintenanceError> {
    let table = ctx.catalog.load_table(&ctx.catalog.ident(name)).await?;
    let metadata = table.metadata();
    status.snapshots = metadata.snapshots().len() as u64;
    if let Some(location) = table.metadata_location() {
        status.metadata_json_bytes = table.file_io().new_input(location)?.metadata().await?.size;
    }
    if let Some(snapshot) = metadata.current_snapshot() {
        let total = |k: &str| {
            snapshot
                .summary()
                .additional_properties
                .get(k)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        status.data_files = total("total-data-files");
        status.data_bytes = total("total-files-size");
        status.average_file_bytes = status.data_bytes / status.data_files.max(1);
        status.manifests =
            table.manifest_list_reader(snapshot).load().await?.entries().len() as u64;
    }
    let labels = [("table", name.to_owned())];
    metrics::gauge!(m::DATA_FILES, &labels).set(status.data_files as f64);
    metrics::gauge!(m::MANIFESTS, &labels).set(status.manifests as f64);
    metrics::gauge!(m::SNAPSHOTS, &labels).set(status.snapshots as f64);
    metrics::gauge!(m::METADATA_BYTES, &labels).set(status.metadata_json_bytes as f64);
    Ok(())
}
