//! Removing rows from a table by copy-on-write: retention (rows older than the table's
//! retention, `retention.rs`) and deletes on request (`POST /tables/{t}/delete`, the
//! `erase` service) both come here with a [`RowMatch`] that says which rows go.
//!
//! Each live data file of the current snapshot is judged by its metrics first: a file no
//! row of which can match is left alone unread, a file every row of which matches is
//! removed whole, unread. The others are read: a file without a matching row is left
//! alone, one with some is rewritten without them (order kept, in the table's current
//! partition spec: its own partition unless the spec changed since), and the
//! rewritten files replace it. No delete files: every engine reads the result. One commit
//! holds it all, a `delete` snapshot when files were only removed, an `overwrite` snapshot
//! when some were rewritten; it carries the watermark map over, so the hot/cold contract
//! holds. Nothing matched: no commit at all, which is what makes a repeated delete
//! harmless.
//!
//! A crash before the commit leaves only unreferenced new files, which cleanup deletes; a
//! crash after it leaves the removal done. Either way running it again gives the same table.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::{BooleanArray, RecordBatch};
use futures::StreamExt as _;
use iceberg::spec::{DataContentType, DataFile, ManifestFile, ManifestStatus};
use iceberg::table::Table;
use iceberg::{Error, ErrorKind, Result};
use serde::Serialize;

use super::Ctx;
use super::commit;
use super::error::MaintenanceError;
use super::manifests::{Entries, ManifestCache};
use super::rewrite::{in_table_schema, read_file};
use crate::failpoints::crash_point;
use crate::layout::writer::{PartitionedWriter, SpecFiles};
use crate::layout::{self, Partitioner};

/// What a file's metrics say about its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMatch {
    /// No row can match: the file is left alone unread.
    None,
    /// Some rows may match: the file is read.
    Some,
    /// Every row matches: the file is removed unread.
    All,
}

/// Which rows a removal removes.
pub trait RowMatch: Send + Sync {
    /// What `file`'s partition and metrics say. `Some` is always correct; the others
    /// must be certain.
    fn file(&self, file: &DataFile) -> FileMatch;
    /// Which rows of `batch` (a data file's rows in the table's current schema) match;
    /// a null counts as no match.
    fn rows(&self, batch: &RecordBatch) -> std::result::Result<BooleanArray, String>;
}

/// What one removal did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Removal {
    /// The `delete` or `overwrite` snapshot that removed the rows; `None` when no row matched.
    pub snapshot_id: Option<i64>,
    pub rows_deleted: u64,
    /// Files removed whole.
    pub files_removed: u64,
    /// Files rewritten without their matching rows, and the files that replace them.
    pub files_rewritten: u64,
    pub files_written: u64,
    /// Data files of the snapshot judged, and of those, read to find matching rows.
    pub files_scanned: u64,
    pub files_read: u64,
}

/// Live data files of `table`'s current snapshot, with the data manifests that list them.
pub async fn live_files(
    manifests: &mut ManifestCache,
    table: &Table,
) -> Result<(Vec<(ManifestFile, Entries)>, Vec<DataFile>)> {
    let loaded = manifests.data_manifests(table).await?;
    let files = loaded
        .iter()
        .flat_map(|(_, entries)| entries.iter())
        .filter(|e| {
            e.status() != ManifestStatus::Deleted && e.content_type() == DataContentType::Data
        })
        .map(|e| e.data_file().clone())
        .collect();
    Ok((loaded, files))
}

/// What happened to one file that was read.
enum Outcome {
    Untouched,
    RemovedWhole { rows: u64 },
    Rewritten { rows: u64, written: SpecFiles },
}

/// Removes the rows `matcher` matches from `table`'s current snapshot in one commit.
/// `kind` names the files it writes (`delete`, `retention`). Returns what it did and the
/// table after the commit (`None` when nothing matched).
pub async fn remove(
    ctx: &Ctx,
    manifests: &mut ManifestCache,
    table: &Table,
    matcher: Arc<dyn RowMatch>,
    kind: &str,
) -> std::result::Result<(Removal, Option<Table>), MaintenanceError> {
    let (loaded, files) = live_files(manifests, table).await?;
    let mut out = Removal { files_scanned: files.len() as u64, ..Removal::default() };
    let mut removed: HashSet<String> = HashSet::new();
    let mut added: Vec<SpecFiles> = Vec::new();
    let partitioner = Arc::new(layout::Partitioner::of(table.metadata())?);
    let run_id = uuid::Uuid::now_v7();
    for (n, file) in files.iter().enumerate() {
        let outcome = match matcher.file(file) {
            FileMatch::None => Outcome::Untouched,
            FileMatch::All => Outcome::RemovedWhole { rows: file.record_count() },
            FileMatch::Some => {
                out.files_read += 1;
                let prefix = format!("{kind}-{run_id}-{n}");
                let target = ctx.config.iceberg.target_file_size_bytes as usize;
                // Reading, filtering and encoding files takes CPU: off the workers that
                // answer ingest requests.
                crate::cpu::off_workers({
                    let (table, file, matcher) = (table.clone(), file.clone(), matcher.clone());
                    let partitioner = partitioner.clone();
                    async move {
                        let files = (&table, partitioner.as_ref(), target, prefix.as_str());
                        remove_from_file(files, &file, matcher.as_ref()).await
                    }
                })
                .await
                .map_err(MaintenanceError::Rewrite)??
            }
        };
        match outcome {
            Outcome::Untouched => continue,
            Outcome::RemovedWhole { rows } => {
                out.rows_deleted += rows;
                out.files_removed += 1;
            }
            Outcome::Rewritten { rows, written } => {
                out.rows_deleted += rows;
                out.files_rewritten += 1;
                out.files_written += written.files.len() as u64;
                added.push(written);
            }
        }
        removed.insert(file.file_path().to_owned());
    }
    if removed.is_empty() {
        return Ok((out, None));
    }
    crash_point("remove-after-rewrite");
    let replace: Vec<(ManifestFile, Entries)> = loaded
        .into_iter()
        .filter(|(_, entries)| entries.iter().any(|e| removed.contains(e.file_path())))
        .collect();
    let committed =
        commit::stage_and_commit(ctx, table, &replace, &removed, added, commit::Kind::Removal)
            .await?;
    crash_point("remove-after-commit");
    out.snapshot_id = committed.as_ref().and_then(|t| t.metadata().current_snapshot_id());
    Ok((out, committed))
}

/// Reads `file`, and when some but not all of its rows match, writes the others as new
/// files in `partitioner`'s spec (of `table`, rolling at the target size, named after the
/// prefix).
async fn remove_from_file(
    (table, partitioner, target_file_size, prefix): (&Table, &Partitioner, usize, &str),
    file: &DataFile,
    matcher: &dyn RowMatch,
) -> Result<Outcome> {
    let schema = table.metadata().current_schema().clone();
    let field_ids: Vec<i32> = schema.as_struct().fields().iter().map(|f| f.id).collect();
    let matches = |batch: &RecordBatch| {
        let hit = matcher.rows(batch).and_then(|hit| {
            if hit.len() == batch.num_rows() {
                Ok(hit)
            } else {
                Err(format!("matched {} of {} rows", hit.len(), batch.num_rows()))
            }
        });
        hit.map_err(|reason| {
            Error::new(
                ErrorKind::DataInvalid,
                format!("cannot match the rows of {}: {reason}", file.file_path()),
            )
        })
    };
    // First pass: count. Most files a removal reads hold no matching row, and are not
    // rewritten. The matches are kept (a bit per row) for the second pass.
    let mut matched = 0u64;
    let mut rows = 0u64;
    let mut hits: Vec<BooleanArray> = Vec::new();
    let mut stream = read_file(table, file, &schema, &field_ids)?;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        let hit = matches(&batch)?;
        matched += hit.true_count() as u64;
        hits.push(hit);
    }
    if rows != file.record_count() {
        return Err(Error::new(
            ErrorKind::DataInvalid,
            format!(
                "{} holds {rows} rows where the table says {}",
                file.file_path(),
                file.record_count()
            ),
        ));
    }
    if matched == 0 {
        return Ok(Outcome::Untouched);
    }
    if matched == rows {
        return Ok(Outcome::RemovedWhole { rows });
    }
    // Second pass: write the rows that stay, in file order.
    let arrow_schema = Arc::new(iceberg::arrow::schema_to_arrow_schema(&schema)?);
    let mut writer = PartitionedWriter::new(table, partitioner, target_file_size, prefix);
    let mut stream = read_file(table, file, &schema, &field_ids)?;
    let mut kept = 0u64;
    let mut n = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        // The reader cuts a file into the same batches each time; should it not, match again.
        let hit = match hits.get(n) {
            Some(h) if h.len() == batch.num_rows() => h.clone(),
            _ => matches(&batch)?,
        };
        n += 1;
        // Keep what did not match, nulls (no match) included.
        let keep: BooleanArray = hit.iter().map(|m| Some(m != Some(true))).collect();
        let batch = arrow_select::filter::filter_record_batch(&batch, &keep)
            .map_err(|e| Error::new(ErrorKind::Unexpected, "cannot filter rows").with_source(e))?;
        kept += batch.num_rows() as u64;
        if batch.num_rows() > 0 {
            writer.write(in_table_schema(&arrow_schema, &batch)?).await?;
        }
    }
    let written = writer.close().await?;
    let wrote: u64 = written.files.iter().map(DataFile::record_count).sum();
    if kept != rows - matched || wrote != kept {
        // Never commit a rewrite that does not hold exactly the rows that stay.
        return Err(Error::new(
            ErrorKind::DataInvalid,
            format!(
                "removal from {} kept {kept} and wrote {wrote} rows where {} stay",
                file.file_path(),
                rows - matched
            ),
        ));
    }
    Ok(Outcome::Rewritten { rows: matched, written })
}
