//! Maintenance commits, built on `catalog::snapshot`.
//!
//! A `replace` snapshot swaps some manifests of the parent for new ones: the data files a
//! rewrite removed become DELETED entries (keeping their data and file sequence numbers),
//! the files it wrote become ADDED entries (their sequence number is inherited from the
//! new snapshot), and every other live entry of a replaced manifest is carried over as
//! EXISTING. Manifests the flusher appended meanwhile are kept: the commit rebases onto
//! the table's current snapshot under its commit lock and fails only if a manifest it
//! replaces is gone (someone else maintained the table).

use std::collections::{HashMap, HashSet};

use iceberg::spec::{MAIN_BRANCH, ManifestFile, Operation, TableMetadata};
use iceberg::table::Table;
use iceberg::{Error, ErrorKind, Result};

use super::error::MaintenanceError;
use super::manifests::Entries;
use super::plan::{self, SnapshotInfo};
use crate::catalog::snapshot::{self, Staged, snapshot_on};
use crate::failpoints::crash_point;
use crate::layout::writer::SpecFiles;
use crate::schema::summary;

/// What a maintenance commit is.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Compaction and manifest merging, with snapshot expiry.
    Replace(Expiry),
    /// Rows removed by retention or a delete (`remove.rs`).
    Removal,
}

/// Stages the manifests that replace `replace` (removing the `removed` paths and adding
/// `added`) and commits them as `kind` under the table's commit lock. Returns the table
/// after the commit.
pub async fn stage_and_commit(
    ctx: &super::Ctx,
    table: &Table,
    replace: &[(ManifestFile, Entries)],
    removed: &HashSet<String>,
    added: Vec<SpecFiles>,
    kind: Kind,
) -> std::result::Result<Option<Table>, MaintenanceError> {
    let staged = snapshot::stage(table, uuid::Uuid::new_v4(), replace, removed, added).await?;
    Ok(ctx
        .catalog
        .commit_rebuilt(table.identifier(), async |current: &Table| {
            Ok(Some(match kind {
                Kind::Replace(expiry) => rebuild_with_replace(current, &staged, expiry).await?,
                Kind::Removal => rebuild_with_removal(current, &staged).await?,
            }))
        })
        .await?)
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
    let parent = metadata.current_snapshot().ok_or_else(|| {
        Error::new(ErrorKind::DataInvalid, "the table has no snapshot to maintain")
    })?;
    let summary = carried_summary(&parent.summary().additional_properties, staged);
    let snapshot =
        snapshot_on(current, staged, Operation::Replace, summary).await.map_err(|e| {
            if e.kind() == ErrorKind::CatalogCommitConflicts {
                Error::new(
                    ErrorKind::CatalogCommitConflicts,
                    format!("{e}; maintenance will plan again"),
                )
            } else {
                e
            }
        })?;
    let expiry = Expiry { now_ms: expiry.now_ms.max(snapshot.timestamp_ms()), ..expiry };
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

/// The metadata that commits a removal (`remove.rs`) on top of `current`: a `delete`
/// snapshot when `staged` only removes files, an `overwrite` snapshot when it also adds
/// the rewritten ones.
pub async fn rebuild_with_removal(current: &Table, staged: &Staged) -> Result<TableMetadata> {
    let metadata = current.metadata();
    let parent = metadata.current_snapshot().ok_or_else(|| {
        Error::new(ErrorKind::DataInvalid, "the table has no snapshot to remove rows from")
    })?;
    let summary = carried_summary(&parent.summary().additional_properties, staged);
    let operation = if staged.added.is_empty() { Operation::Delete } else { Operation::Overwrite };
    let snapshot = snapshot_on(current, staged, operation, summary).await?;
    crash_point("remove-before-commit");
    Ok(metadata
        .clone()
        .into_builder(current.metadata_location().map(str::to_owned))
        .set_branch_snapshot(snapshot, MAIN_BRANCH)?
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
    // Without a new snapshot, iceberg-rust stamps the metadata with the wall clock and
    // refuses one more than a minute behind the last snapshot: wait for the clock (a
    // commit with a snapshot, from the flusher or a compaction, is stamped and expires too).
    let behind = crate::catalog::clock::behind_ms(metadata);
    if behind > 50_000 {
        tracing::warn!(
            table = current.identifier().name(),
            behind_ms = behind,
            "the wall clock is behind the table's last commit; snapshot expiry waits for the next commit or for the clock"
        );
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

/// The summary of a maintenance snapshot: the parent's watermark map (the hot/cold contract
/// holds across maintenance), a new commit id, and the usual counts and totals.
fn carried_summary(parent: &HashMap<String, String>, staged: &Staged) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = parent
        .iter()
        .filter(|(k, _)| k.starts_with(summary::WATERMARK_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.insert(summary::COMMIT_ID.to_owned(), uuid::Uuid::now_v7().to_string());
    out.extend(snapshot::counts(Some(parent), staged));
    out
}
