//! Snapshot commits built from iceberg-rust's public writers: its snapshot producer is
//! crate-private, it stamps snapshots with the wall clock (so a clock stepped back stops
//! every commit), and Zombi owns its catalog. The flusher appends through here and
//! maintenance replaces (`compact/commit.rs`); both commit with
//! [`ZombiCatalog::commit_rebuilt`](super::ZombiCatalog::commit_rebuilt).
//!
//! [`stage`] writes the manifests of a new snapshot before the table's commit lock is
//! taken; [`snapshot_on`] writes its manifest list on top of the current snapshot under
//! the lock. Every file of one commit carries its commit uuid in its name, which the
//! caller registers as in flight (`inflight.rs`) so file cleanup leaves them alone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use iceberg::spec::{
    DataFile, FormatVersion, MAIN_BRANCH, ManifestContentType, ManifestEntry, ManifestFile,
    ManifestListWriter, ManifestStatus, ManifestWriter, ManifestWriterBuilder, Operation, Snapshot,
    Summary, TableMetadata,
};
use iceberg::table::Table;
use iceberg::{Error, ErrorKind, Result};

use crate::layout::writer::SpecFiles;

/// Entries per manifest this writes at most; more roll over to another manifest.
const MANIFEST_ENTRIES: usize = 20_000;

/// A new positive snapshot id.
fn new_snapshot_id() -> i64 {
    (uuid::Uuid::new_v4().as_u64_pair().0 & (i64::MAX as u64)) as i64
}

/// The new manifests of one snapshot, written before the commit.
pub struct Staged {
    pub snapshot_id: i64,
    /// In the name of every file of this commit.
    pub commit_uuid: uuid::Uuid,
    /// Manifests of the planned-on snapshot that the new ones replace.
    pub replaced: HashSet<String>,
    pub manifests: Vec<ManifestFile>,
    pub added: Vec<DataFile>,
    pub removed: Vec<DataFile>,
}

/// Writes the manifests of a new snapshot that replace `replaced` (with their loaded
/// entries): `removed` paths become DELETED, `added` files ADDED, the rest EXISTING. Each
/// manifest holds files of one partition spec: an entry stays with its manifest's spec,
/// and added files go with the spec they were written in.
pub async fn stage(
    table: &Table,
    commit_uuid: uuid::Uuid,
    replaced: &[(ManifestFile, Arc<Vec<Arc<ManifestEntry>>>)],
    removed: &HashSet<String>,
    added: Vec<SpecFiles>,
) -> Result<Staged> {
    let version = table.metadata().format_version();
    if version != FormatVersion::V2 {
        // Zombi creates v2 tables, and writes v2 manifests and manifest lists.
        return Err(Error::new(
            ErrorKind::FeatureUnsupported,
            format!("Zombi commits to format v2 tables only, not {version}"),
        ));
    }
    let snapshot_id = new_snapshot_id();
    let mut writers = ManifestRoller::new(snapshot_id, commit_uuid);
    let mut removed_files = Vec::new();
    for set in &added {
        for file in &set.files {
            writers.next(table, set.spec_id)?.add_file(file.clone(), -1)?;
        }
    }
    let added: Vec<DataFile> = added.into_iter().flat_map(|s| s.files).collect();
    for (manifest, entries) in replaced {
        let spec_id = manifest.partition_spec_id;
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
                writers.next(table, spec_id)?.add_delete_file(data_file, seq, file_seq)?;
            } else {
                let added_by = entry.snapshot_id().unwrap_or(manifest.added_snapshot_id);
                writers
                    .next(table, spec_id)?
                    .add_existing_file(data_file, added_by, seq, file_seq)?;
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
        commit_uuid,
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

/// Data manifests of one spec each, of at most `MANIFEST_ENTRIES` entries each.
struct ManifestRoller {
    snapshot_id: i64,
    uuid: uuid::Uuid,
    /// The open writer of each spec, with its entry count.
    current: HashMap<i32, (ManifestWriter, usize)>,
    done: Vec<ManifestWriter>,
    written: usize,
}

impl ManifestRoller {
    fn new(snapshot_id: i64, uuid: uuid::Uuid) -> Self {
        ManifestRoller { snapshot_id, uuid, current: HashMap::new(), done: Vec::new(), written: 0 }
    }

    fn next(&mut self, table: &Table, spec_id: i32) -> Result<&mut ManifestWriter> {
        if self.current.get(&spec_id).is_some_and(|(_, n)| *n >= MANIFEST_ENTRIES) {
            let (w, _) = self.current.remove(&spec_id).expect("checked");
            self.done.push(w);
        }
        if !self.current.contains_key(&spec_id) {
            let metadata = table.metadata();
            let spec = metadata.partition_spec_by_id(spec_id).ok_or_else(|| {
                Error::new(
                    ErrorKind::DataInvalid,
                    format!("partition spec {spec_id} is not one of the table's"),
                )
            })?;
            let n = self.written;
            self.written += 1;
            let path = format!("{}/metadata/{}-m{n}.avro", metadata.location(), self.uuid);
            let writer = ManifestWriterBuilder::new(
                table.file_io().new_output(path)?,
                Some(self.snapshot_id),
                metadata.current_schema().clone(),
                spec.as_ref().clone(),
            )
            .build_v2_data();
            self.current.insert(spec_id, (writer, 0));
        }
        let (w, n) = self.current.get_mut(&spec_id).expect("set above");
        *n += 1;
        Ok(w)
    }

    async fn finish(mut self) -> Result<Vec<ManifestFile>> {
        let mut open: Vec<(i32, (ManifestWriter, usize))> = self.current.drain().collect();
        open.sort_by_key(|(id, _)| *id);
        self.done.extend(open.into_iter().map(|(_, (w, _))| w));
        let mut out = Vec::new();
        for w in self.done {
            out.push(w.write_manifest_file().await?);
        }
        debug_assert!(out.iter().all(|m| m.content == ManifestContentType::Data));
        Ok(out)
    }
}

/// Writes the manifest list of `staged` on top of `current`'s snapshot (keeping every
/// manifest of it that `staged` does not replace) and returns the new snapshot, stamped
/// no earlier than the table's last update. Fails if a manifest `staged` replaces is no
/// longer listed (another commit replaced it).
pub async fn snapshot_on(
    current: &Table,
    staged: &Staged,
    operation: Operation,
    summary: HashMap<String, String>,
) -> Result<Snapshot> {
    let metadata = current.metadata();
    let parent = metadata.current_snapshot();
    let kept = match parent {
        Some(parent) => {
            let list = current.manifest_list_reader(parent).load().await?;
            let listed: HashSet<&str> =
                list.entries().iter().map(|m| m.manifest_path.as_str()).collect();
            if let Some(gone) = staged.replaced.iter().find(|p| !listed.contains(p.as_str())) {
                return Err(Error::new(
                    ErrorKind::CatalogCommitConflicts,
                    format!("manifest {gone} was replaced by another commit"),
                ));
            }
            list.entries()
                .iter()
                .filter(|m| !staged.replaced.contains(&m.manifest_path))
                .cloned()
                .collect()
        }
        None if staged.replaced.is_empty() => Vec::new(),
        None => {
            return Err(Error::new(ErrorKind::DataInvalid, "the table has no snapshot to replace"));
        }
    };
    let sequence_number = metadata.next_sequence_number();
    let list_path = format!(
        "{}/metadata/snap-{}-1-{}.avro",
        metadata.location(),
        staged.snapshot_id,
        staged.commit_uuid
    );
    let parent_id = parent.map(|p| p.snapshot_id());
    let mut list = ManifestListWriter::v2(
        current.file_io().new_output(&list_path)?.writer().await?,
        staged.snapshot_id,
        parent_id,
        sequence_number,
    );
    list.add_manifests(staged.manifests.iter().cloned().chain(kept))?;
    list.close().await?;
    Ok(Snapshot::builder()
        .with_snapshot_id(staged.snapshot_id)
        .with_parent_snapshot_id(parent_id)
        .with_sequence_number(sequence_number)
        .with_timestamp_ms(super::clock::commit_time(current.identifier().name(), metadata))
        .with_manifest_list(list_path)
        .with_summary(Summary { operation, additional_properties: summary })
        .with_schema_id(metadata.current_schema_id())
        .build())
}

/// The metadata that appends `staged` (new data files only) to `current` as the snapshot
/// with `properties` (watermarks, commit id) in its summary.
pub async fn rebuild_with_append(
    current: &Table,
    staged: &Staged,
    properties: HashMap<String, String>,
) -> Result<TableMetadata> {
    let parent = current.metadata().current_snapshot().map(|s| &s.summary().additional_properties);
    let mut summary = properties;
    summary.extend(counts(parent, staged));
    let snapshot = snapshot_on(current, staged, Operation::Append, summary).await?;
    Ok(current
        .metadata()
        .clone()
        .into_builder(current.metadata_location().map(str::to_owned))
        .set_branch_snapshot(snapshot, MAIN_BRANCH)?
        .build()?
        .metadata)
}

/// The Iceberg summary counts and totals of `staged` on top of a parent with `parent`'s
/// summary.
pub fn counts(parent: Option<&HashMap<String, String>>, staged: &Staged) -> Vec<(String, String)> {
    let total =
        |k: &str| parent.and_then(|p| p.get(k)).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let sum = |files: &[DataFile], f: fn(&DataFile) -> u64| files.iter().map(f).sum::<u64>() as i64;
    let (added_files, removed_files) = (staged.added.len() as i64, staged.removed.len() as i64);
    let (added_rows, removed_rows) =
        (sum(&staged.added, DataFile::record_count), sum(&staged.removed, DataFile::record_count));
    let (added_bytes, removed_bytes) = (
        sum(&staged.added, DataFile::file_size_in_bytes),
        sum(&staged.removed, DataFile::file_size_in_bytes),
    );
    let partitions: HashSet<_> =
        staged.added.iter().chain(&staged.removed).map(|f| f.partition().clone()).collect();
    let mut out = vec![
        ("added-data-files", added_files),
        ("added-records", added_rows),
        ("added-files-size", added_bytes),
        ("changed-partition-count", partitions.len() as i64),
        ("total-data-files", total("total-data-files") + added_files - removed_files),
        ("total-records", total("total-records") + added_rows - removed_rows),
        ("total-files-size", total("total-files-size") + added_bytes - removed_bytes),
        ("total-delete-files", total("total-delete-files")),
        ("total-position-deletes", total("total-position-deletes")),
        ("total-equality-deletes", total("total-equality-deletes")),
        ("manifests-created", staged.manifests.len() as i64),
    ];
    if !staged.removed.is_empty() || !staged.replaced.is_empty() {
        out.extend([
            ("deleted-data-files", removed_files),
            ("deleted-records", removed_rows),
            ("removed-files-size", removed_bytes),
            ("manifests-replaced", staged.replaced.len() as i64),
        ]);
    }
    out.into_iter().map(|(k, v)| (k.to_owned(), v.to_string())).collect()
}
