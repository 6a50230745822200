//! Deletes the files of a table that no retained snapshot references: data files a
//! compaction replaced once the snapshots that read them expired, manifests and manifest
//! lists of expired snapshots, metadata JSON files beyond the metadata log
//! (`write.metadata.previous-versions-max`), and the orphans of crashed or failed flushes
//! and commits.
//!
//! Safety, in order:
//! 1. The warehouse is listed *first*, then the in-flight tokens are read, then the current
//!    metadata is loaded. A listed file was written before the listing; if its writer's
//!    token is gone by the time it is read, the writer finished, so the file is either
//!    referenced by the metadata loaded after that or garbage.
//! 2. A file is deleted only once it has been seen unreferenced for `file_grace_secs`
//!    (first sightings are kept in memory: a restart delays deletion, never hastens it), so
//!    an engine still reading a snapshot that just expired can finish.
//! 3. Only names Zombi and Iceberg writers produce are touched: `*.parquet` under `data/`,
//!    `*.avro` and `*.metadata.json` under `metadata/` (the `v<N>.metadata.json` copies of the
//!    warehouse pointer included, kept while their originals are). Anything else, such as
//!    `version-hint.text`, is left alone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use iceberg::Catalog as _;
use iceberg::spec::{ManifestFile, ManifestStatus};
use iceberg::table::Table;

use super::error::MaintenanceError;
use super::manifests::ManifestCache;
use crate::catalog::warehouse::Lister;
use crate::catalog::{ZombiCatalog, hint};
use crate::failpoints::crash_point;

/// Most files one run deletes; the rest wait for the next run.
const MAX_DELETES_PER_RUN: usize = 10_000;
/// Deletions in flight at once.
const DELETE_CONCURRENCY: usize = 16;

#[derive(Default)]
pub struct Cleanup {
    /// Unreferenced files and when they were first seen so.
    first_seen: HashMap<String, Instant>,
    /// Manifest list path → its manifests (immutable files, so cached by path).
    lists: HashMap<String, Arc<Vec<ManifestFile>>>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Deleted {
    pub files: u64,
    /// Unreferenced files still inside their grace period.
    pub waiting: u64,
}

fn ours(path: &str, table_location: &str) -> bool {
    let rel = path.strip_prefix(table_location).unwrap_or(path);
    (rel.starts_with("/data/") && path.ends_with(".parquet"))
        || (rel.starts_with("/metadata/")
            && (path.ends_with(".avro") || path.ends_with(".metadata.json")))
}

impl Cleanup {
    pub async fn run(
        &mut self,
        catalog: &ZombiCatalog,
        lister: &Lister,
        manifests: &mut ManifestCache,
        name: &str,
        grace: Duration,
    ) -> Result<Deleted, MaintenanceError> {
        let ident = catalog.ident(name);
        let before = catalog.load_table(&ident).await?;
        let location = before.metadata().location().to_owned();
        let list = |dir: String| async move {
            lister.list_files(&dir).await.map_err(MaintenanceError::Listing)
        };
        let mut listed = list(format!("{location}/data")).await?;
        listed.extend(list(format!("{location}/metadata")).await?);
        let tokens = catalog.inflight_tokens(name);
        let table = catalog.load_table(&ident).await?;
        let referenced = self.referenced(&table, manifests).await?;
        // The listing and the metadata must spell paths alike, or every live file would
        // look unreferenced: the metadata file and manifest list that were current before
        // the listing (only cleanup deletes files) are a cheap proof.
        let listed_set: HashSet<&str> = listed.iter().map(String::as_str).collect();
        let current_files = before
            .metadata_location()
            .into_iter()
            .chain(before.metadata().current_snapshot().map(|s| s.manifest_list()));
        for path in current_files {
            if !listed_set.contains(path) {
                return Err(MaintenanceError::IncompleteListing(path.to_owned()));
            }
        }
        let now = Instant::now();
        let mut unreferenced = HashSet::new();
        let mut due = Vec::new();
        for path in listed {
            if referenced.contains(&path)
                || !ours(&path, &location)
                || tokens.iter().any(|t| path.contains(t.as_str()))
            {
                continue;
            }
            let seen = *self.first_seen.entry(path.clone()).or_insert(now);
            if now.duration_since(seen) >= grace && due.len() < MAX_DELETES_PER_RUN {
                due.push(path.clone());
            }
            unreferenced.insert(path);
        }
        self.first_seen.retain(|p, _| unreferenced.contains(p));
        let mut out = Deleted { files: 0, waiting: (unreferenced.len() - due.len()) as u64 };
        // A node that lost its log deletes nothing: what it sees as unreferenced may be
        // what the new owner just wrote.
        if !due.is_empty() && !catalog.may_delete().await? {
            tracing::warn!(table = name, "not deleting files: this node no longer owns the log");
            out.waiting += due.len() as u64;
            return Ok(out);
        }
        // A few deletions at a time: object stores answer each in tens of milliseconds.
        let file_io = table.file_io();
        let mut deletions = futures::stream::iter(due)
            .map(|path| async move { file_io.delete(&path).await.map(|()| path) })
            .buffer_unordered(DELETE_CONCURRENCY);
        while let Some(deleted) = deletions.next().await {
            let path = deleted?;
            self.first_seen.remove(&path);
            out.files += 1;
            crash_point("compact-during-cleanup");
        }
        Ok(out)
    }

    /// Every file a retained snapshot or the metadata log needs.
    async fn referenced(
        &mut self,
        table: &Table,
        manifests: &mut ManifestCache,
    ) -> Result<HashSet<String>, MaintenanceError> {
        let metadata = table.metadata();
        let mut out: HashSet<String> =
            metadata.metadata_log().iter().map(|m| m.metadata_file.clone()).collect();
        out.extend(table.metadata_location().map(str::to_owned));
        // The warehouse pointer's `v<N>.metadata.json` copies live as long as their originals.
        let copies: Vec<String> = out
            .iter()
            .filter_map(|m| hint::version_of(m))
            .map(|v| hint::copy_location(metadata.location(), v))
            .collect();
        out.extend(copies);
        let mut lists = HashMap::new();
        for snapshot in metadata.snapshots() {
            let path = snapshot.manifest_list().to_owned();
            let list = match self.lists.get(&path) {
                Some(l) => l.clone(),
                None => {
                    Arc::new(table.manifest_list_reader(snapshot).load().await?.entries().to_vec())
                }
            };
            for manifest in list.iter() {
                if out.insert(manifest.manifest_path.clone()) {
                    for entry in manifests.entries(table, manifest).await?.iter() {
                        if entry.status() != ManifestStatus::Deleted {
                            out.insert(entry.file_path().to_owned());
                        }
                    }
                }
            }
            out.insert(path.clone());
            lists.insert(path, list);
        }
        // Cached lists of expired snapshots are not needed again.
        self.lists = lists;
        manifests.retain(|path| out.contains(path));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::ours;

    #[test]
    fn only_names_iceberg_writers_produce_are_candidates() {
        let loc = "s3://b/lake/zombi/events";
        assert!(ours(
            "s3://b/lake/zombi/events/data/event_date=2026-01-01/event_hour=3/x.parquet",
            loc
        ));
        assert!(ours("s3://b/lake/zombi/events/metadata/snap-1-1-u.avro", loc));
        assert!(ours("s3://b/lake/zombi/events/metadata/00003-u.metadata.json", loc));
        assert!(!ours("s3://b/lake/zombi/events/metadata/version-hint.text", loc));
        assert!(!ours("s3://b/lake/zombi/events/data/notes.txt", loc));
        assert!(!ours("s3://b/lake/zombi/events/other/x.parquet", loc));
    }
}
