//! Maintenance commits, built from iceberg-rust's public writers because its snapshot
//! producer is crate-private and Zombi owns its catalog.
//!
//! A `replace` snapshot swaps some manifests of the parent for new ones: the data files a
//! rewrite removed become DELETED entries (keeping their data and file sequence numbers),
//! the files it wrote become ADDED entries (their sequence number is inherited from the
//! new snapshot), and every other live entry of a replaced manifest is carried over as
//! EXISTING. Manifests the flusher appended meanwhile are kept: the commit rebases onto
//! the table's current snapshot under its commit lock and fails only if a manifest it
//! replaces is gone (someone else maintained the table).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use iceberg::spec::{
    DataFile, FormatVersion, MAIN_BRANCH, ManifestContentType, ManifestEntry, ManifestFile,
    ManifestListWriter, ManifestStatus, ManifestWriter, ManifestWriterBuilder, Operation, Snapshot,
    Summary, TableMetadata,
};
use iceberg::table::Table;
use iceberg::{Error, ErrorKind, Result};

use super::plan::{self, SnapshotInfo};
use crate::failpoints::crash_point;
use crate::layout;

/// Entries per manifest this writes at most; more roll over to another manifest.
const MANIFEST_ENTRIES: usize = 20_000;

/// A new positive snapshot id.
fn new_snapshot_id() -> i64 {
    (uuid::Uuid::new_v4().as_u64_pair().0 & (i64::MAX as u64)) as i64
}

/// The new manifests of one maintenance snapshot, written before the commit.
pub struct Staged {
    pub snapshot_id: i64,
    /// Manifests of the planned-on snapshot that the new ones replace.
    pub replaced: HashSet<String>,
    pub manifests: Vec<ManifestFile>,
    pub added: Vec<DataFile>,
    pub removed: Vec<DataFile>,
}

/// Writes the manifests of a new snapshot that replace `replaced` (with their loaded
/// entries): `removed` paths become DELETED, `added` files ADDED, the rest EXISTING.
pub async fn stage(
    table: &Table,
    replaced: &[(ManifestFile, Arc<Vec<Arc<ManifestEntry>>>)],
    removed: &HashSet<String>,
    added: Vec<DataFile>,
) -> Result<Staged> {
    let version = table.metadata().format_version();
    if version != FormatVersion::V2 {
        // Zombi creates v2 tables, and writes v2 manifests and manifest lists.
        return Err(Error::new(
            ErrorKind::FeatureUnsupported,
            format!("maintenance supports format v2 tables only, not {version}"),
        ));
    }
    let snapshot_id = new_snapshot_id();
    let commit_uuid = uuid::Uuid::new_v4();
    let mut writers = ManifestRoller::new(snapshot_id, commit_uuid);
    let mut removed_files = Vec::new();
    for file in &added {
        writers.next(table)?.add_file(file.clone(), -1)?;
    }
    for (manifest, entries) in replaced {
        for entry in entries.iter() {
            if entry.status() == ManifestStatus::Deleted {
                // Deletions belong to the snapshot that made them: not carried forward.
                continue;
            }
            let seq = entry.sequence_number().ok_or_else(|| missing_seq(entry))?;
            let file_seq = entry.file_sequence_number.or(Some(seq));
            let data_file = entry.data_file().clone();
            if removed.contains(data_file.file_path()) {
                removed_files.push(data_file.clone());
                writers.next(table)?.add_delete_file(data_file, seq, file_seq)?;
            } else {
                let added_by = entry.snapshot_id().unwrap_or(manifest.added_snapshot_id);
                writers.next(table)?.add_existing_file(data_file, added_by, seq, file_seq)?;
            }
        }
    }
    let manifests = writers.finish().await?;
    if removed_files.len() != removed.len() {
        return Err(Error::new(
            ErrorKind::DataInvalid,
            "a file to remove is not live in the manifests being replaced",
        ));
    }
    Ok(Staged {
        snapshot_id,
        replaced: replaced.iter().map(|(m, _)| m.manifest_path.clone()).collect(),
        manifests,
        added,
        removed: removed_files,
    })
}

fn missing_seq(entry: &ManifestEntry) -> Error {
    Error::new(
        ErrorKind::DataInvalid,
        format!("manifest entry of {} has no sequence number", entry.file_path()),
    )
}

/// Data manifests of at most `MANIFEST_ENTRIES` entries each.
struct ManifestRoller {
    snapshot_id: i64,
    uuid: uuid::Uuid,
    current: Option<(ManifestWriter, usize)>,
    done: Vec<ManifestWriter>,
}

impl ManifestRoller {
    fn new(snapshot_id: i64, uuid: uuid::Uuid) -> Self {
        ManifestRoller { snapshot_id, uuid, current: None, done: Vec::new() }
    }

    fn next(&mut self, table: &Table) -> Result<&mut ManifestWriter> {
        if self.current.as_ref().is_some_and(|(_, n)| *n >= MANIFEST_ENTRIES) {
            let (w, _) = self.current.take().expect("checked");
            self.done.push(w);
        }
        if self.current.is_none() {
            let metadata = table.metadata();
            let n = self.done.len();
            let path = format!("{}/metadata/{}-m{n}.avro", metadata.location(), self.uuid);
            let writer = ManifestWriterBuilder::new(
                table.file_io().new_output(path)?,
                Some(self.snapshot_id),
                metadata.current_schema().clone(),
                metadata.default_partition_spec().as_ref().clone(),
            )
            .build_v2_data();
            self.current = Some((writer, 0));
        }
        let (w, n) = self.current.as_mut().expect("set above");
        *n += 1;
        Ok(w)
    }

    async fn finish(mut self) -> Result<Vec<ManifestFile>> {
        self.done.extend(self.current.take().map(|(w, _)| w));
        let mut out = Vec::new();
        for w in self.done {
            out.push(w.write_manifest_file().await?);
        }
        debug_assert!(out.iter().all(|m| m.content == ManifestContentType::Data));
        Ok(out)
    }
}

/// Expiry settings and the clock, as a commit applies them.
#[derive(Clone, Copy)]
pub struct Expiry {
    pub max_snapshots: u64,
    pub max_age_ms: i64,
    pub now_ms: i64,
}

/// Snapshots of `metadata` to expire. `adding`: a new snapshot is about to become `main`,
/// taking one of the places and the ref, so the current one may expire too.
pub fn expired(metadata: &TableMetadata, adding: bool, e: Expiry) -> Vec<i64> {
    // Zombi tables have one ref, `main` (engines cannot create branches or tags).
    let main = if adding { None } else { metadata.current_snapshot_id() };
    let infos: Vec<SnapshotInfo> = metadata
        .snapshots()
        .map(|s| SnapshotInfo {
            id: s.snapshot_id(),
            sequence_number: s.sequence_number(),
            timestamp_ms: s.timestamp_ms(),
            referenced: Some(s.snapshot_id()) == main,
        })
        .collect();
    plan::snapshots_to_expire(&infos, adding, e.max_snapshots, e.max_age_ms, e.now_ms)
}

/// The metadata that commits `staged` on top of `current` and expires snapshots, or an
/// error when `current` no longer lists a manifest `staged` replaces.
pub async fn rebuild_with_replace(
    current: &Table,
    staged: &Staged,
    expiry: Expiry,
) -> Result<TableMetadata> {
    let metadata = current.metadata();
    // Stamped now, under the commit lock, so it is never older than the parent.
    let now_ms = crate::hot::now_ms().max(metadata.last_updated_ms());
    let expiry = Expiry { now_ms, ..expiry };
    let parent = metadata.current_snapshot().ok_or_else(|| {
        Error::new(ErrorKind::DataInvalid, "the table has no snapshot to maintain")
    })?;
    let parent_list = current.manifest_list_reader(parent).load().await?;
    let parent_paths: HashSet<&str> =
        parent_list.entries().iter().map(|m| m.manifest_path.as_str()).collect();
    if let Some(gone) = staged.replaced.iter().find(|p| !parent_paths.contains(p.as_str())) {
        return Err(Error::new(
            ErrorKind::CatalogCommitConflicts,
            format!("manifest {gone} was replaced by another commit; maintenance will plan again"),
        ));
    }
    let sequence_number = metadata.next_sequence_number();
    let list_path = format!(
        "{}/metadata/snap-{}-1-{}.avro",
        metadata.location(),
        staged.snapshot_id,
        uuid::Uuid::new_v4()
    );
    let mut list = ManifestListWriter::v2(
        current.file_io().new_output(&list_path)?.writer().await?,
        staged.snapshot_id,
        Some(parent.snapshot_id()),
        sequence_number,
    );
    let kept = parent_list
        .entries()
        .iter()
        .filter(|m| !staged.replaced.contains(&m.manifest_path))
        .cloned();
    list.add_manifests(staged.manifests.iter().cloned().chain(kept))?;
    list.close().await?;

    let summary = replace_summary(&parent.summary().additional_properties, staged);
    let snapshot = Snapshot::builder()
        .with_snapshot_id(staged.snapshot_id)
        .with_parent_snapshot_id(Some(parent.snapshot_id()))
        .with_sequence_number(sequence_number)
        .with_timestamp_ms(now_ms)
        .with_manifest_list(list_path)
        .with_summary(Summary { operation: Operation::Replace, additional_properties: summary })
        .with_schema_id(metadata.current_schema_id())
        .build();
    let expire = expired(metadata, true, expiry);
    crash_point("compact-before-commit");
    Ok(metadata
        .clone()
        .into_builder(current.metadata_location().map(str::to_owned))
        .set_branch_snapshot(snapshot, MAIN_BRANCH)?
        .remove_snapshots(&expire)
        .build()?
        .metadata)
}

/// Metadata of `current` with its expired snapshots removed, or `None` if none expire.
pub fn rebuild_with_expiry(current: &Table, expiry: Expiry) -> Result<Option<TableMetadata>> {
    let metadata = current.metadata();
    let expire = expired(metadata, false, expiry);
    if expire.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        metadata
            .clone()
            .into_builder(current.metadata_location().map(str::to_owned))
            .remove_snapshots(&expire)
            .build()?
            .metadata,
    ))
}

/// The summary of a replace snapshot: the parent's watermark map (the hot/cold contract
/// holds across maintenance), a new commit id, and the usual counts and totals.
fn replace_summary(parent: &HashMap<String, String>, staged: &Staged) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = parent
        .iter()
        .filter(|(k, _)| k.starts_with(layout::WATERMARK_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.insert(layout::COMMIT_ID_KEY.to_owned(), uuid::Uuid::now_v7().to_string());
    let total = |k: &str| parent.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let sum = |files: &[DataFile], f: fn(&DataFile) -> u64| files.iter().map(f).sum::<u64>() as i64;
    let (added_files, removed_files) = (staged.added.len() as i64, staged.removed.len() as i64);
    let (added_rows, removed_rows) =
        (sum(&staged.added, DataFile::record_count), sum(&staged.removed, DataFile::record_count));
    let (added_bytes, removed_bytes) = (
        sum(&staged.added, DataFile::file_size_in_bytes),
        sum(&staged.removed, DataFile::file_size_in_bytes),
    );
    let partitions: HashSet<_> = staged.removed.iter().map(|f| f.partition().clone()).collect();
    for (k, v) in [
        ("added-data-files", added_files),
        ("deleted-data-files", removed_files),
        ("added-records", added_rows),
        ("deleted-records", removed_rows),
        ("added-files-size", added_bytes),
        ("removed-files-size", removed_bytes),
        ("changed-partition-count", partitions.len() as i64),
        ("total-data-files", total("total-data-files") + added_files - removed_files),
        ("total-records", total("total-records") + added_rows - removed_rows),
        ("total-files-size", total("total-files-size") + added_bytes - removed_bytes),
        ("total-delete-files", total("total-delete-files")),
        ("total-position-deletes", total("total-position-deletes")),
        ("total-equality-deletes", total("total-equality-deletes")),
        ("manifests-created", staged.manifests.len() as i64),
        ("manifests-replaced", staged.replaced.len() as i64),
    ] {
        out.insert(k.to_owned(), v.to_string());
    }
    out
}
