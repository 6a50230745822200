//! Adopting tables from the warehouse.
//!
//! The pointer to each table's current metadata file lives in the node's RocksDB. A node
//! started on an empty data directory next to an existing warehouse (its disk was lost, or
//! it was moved) finds every table folder of its namespace, picks the newest complete
//! metadata file of each and points the table at it. The flusher then takes the watermarks
//! from that snapshot's summary, so new sequences continue above everything Iceberg holds.
//!
//! Choosing the file: versions are numbered (`NNNNN-uuid.metadata.json`); a crash between
//! writing a metadata file and swapping the pointer leaves a file that was never current,
//! and the retry writes another file with the same number. The newest version wins; among
//! files of one version the later `last-updated-ms` wins. A file that does not parse, or
//! whose current manifest list is gone, is skipped with a warning. A file that cannot be
//! *read* fails the adoption (to be retried): skipping it could adopt an older state and
//! let file cleanup delete the newer one's data.

use std::sync::Arc;

use iceberg::spec::TableMetadata;
use iceberg::table::Table;
use iceberg::{Error, ErrorKind, Result};

use super::ZombiCatalog;

/// A metadata file name's version number (`00042-….metadata.json` → 42).
pub(super) fn version_of(uri: &str) -> Option<u64> {
    let file = uri.rsplit('/').next()?;
    let stem = file.strip_suffix(".metadata.json")?;
    let (version, rest) = stem.split_once('-')?;
    (!rest.is_empty() && !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()))
        .then(|| version.parse().ok())
        .flatten()
}

/// Metadata files among `files`, newest version first (ties keep a stable order).
fn by_version(files: &[String]) -> Vec<(u64, &str)> {
    let mut out: Vec<(u64, &str)> =
        files.iter().filter_map(|f| version_of(f).map(|v| (v, f.as_str()))).collect();
    out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    out
}

impl ZombiCatalog {
    /// The folders of the namespace named like tables (none without a lister). Fails
    /// when the warehouse cannot be listed.
    pub(super) async fn table_dirs(&self) -> Result<Vec<String>> {
        let Some(lister) = &self.lister else { return Ok(Vec::new()) };
        let dirs = lister.list_dirs(&self.namespace_location).await.map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("cannot list {}: {e}", self.namespace_location),
            )
        })?;
        Ok(dirs.into_iter().filter(|d| zombi_shared::validate_table_name(d).is_ok()).collect())
    }

    /// Adopts every table of the namespace folder that holds Iceberg metadata but has no
    /// pointer, registering it in the hot store so its flusher starts. Returns the names
    /// adopted. Fails (to be retried) when the warehouse cannot be listed or read.
    pub async fn adopt_all(&self) -> Result<Vec<String>> {
        let mut adopted = Vec::new();
        for name in self.table_dirs().await? {
            if self.adopt(&name).await?.is_some() {
                adopted.push(name);
            }
        }
        Ok(adopted)
    }

    /// Points `name` at the newest complete metadata file in its folder if the catalog has
    /// no pointer for it. `None` when the folder holds no usable metadata.
    pub async fn adopt(&self, name: &str) -> Result<Option<Table>> {
        let Some(lister) = &self.lister else { return Ok(None) };
        let lock = self.commit_lock(name);
        let _guard = lock.lock().await;
        if self.fence.is_some() {
            return self.adopt_committed(name).await;
        }
        let ident = self.ident(name);
        if self.pointer(&ident).await?.is_some() {
            return Ok(None);
        }
        let dir = format!("{}/{name}/metadata", self.namespace_location);
        let files = lister
            .list_files(&dir)
            .await
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("cannot list {dir}: {e}")))?;
        let mut best: Option<(u64, i64, String, TableMetadata)> = None;
        for (version, location) in by_version(&files) {
            if best.as_ref().is_some_and(|b| b.0 > version) {
                break;
            }
            let bytes = self.file_io.new_input(location)?.read().await?;
            let metadata: TableMetadata = match serde_json::from_slice(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(%location, error = %e, "skipping a metadata file that does not parse");
                    continue;
                }
            };
            if let Some(s) = metadata.current_snapshot()
                && !self.file_io.exists(s.manifest_list()).await?
            {
                tracing::warn!(%location, manifest_list = s.manifest_list(), "skipping a metadata file whose manifest list is gone");
                continue;
            }
            let updated = metadata.last_updated_ms();
            if best.as_ref().is_none_or(|b| updated > b.1) {
                best = Some((version, updated, location.to_owned(), metadata));
            }
        }
        let Some((_, _, location, metadata)) = best else { return Ok(None) };
        let expected = format!("{}/{name}", self.namespace_location);
        if metadata.location().trim_end_matches('/') != expected {
            return Err(Error::new(
                ErrorKind::DataInvalid,
                format!(
                    "{location} describes a table at {}, not {expected}: refusing to adopt it",
                    metadata.location()
                ),
            ));
        }
        let (table, loc) = (name.to_owned(), location.clone());
        self.blocking(move |s| s.adopt(&table, &loc)).await?;
        tracing::warn!(
            table = name,
            %location,
            snapshot_id = metadata.current_snapshot_id(),
            "adopted a table from the warehouse: the catalog had no pointer for it"
        );
        crate::metrics::adopted_table();
        self.point_warehouse(name, &location, &metadata).await;
        Ok(Some(self.build_table(ident, location, Arc::new(metadata))?))
    }
}

impl ZombiCatalog {
    /// Fenced (`durability = "object"`): points `name` at its highest committed version,
    /// the highest `v<N>.metadata.json` (see [`super::fence`]), whatever this node's pointer
    /// says: another node may have committed since. Its location is the `<N>-<uuid>` file
    /// with the same content. `None` when the pointer is already there or the folder holds
    /// no committed version. The caller holds the table's commit lock.
    pub(super) async fn adopt_committed(&self, name: &str) -> Result<Option<Table>> {
        let Some(lister) = &self.lister else { return Ok(None) };
        let ident = self.ident(name);
        let dir = format!("{}/{name}/metadata", self.namespace_location);
        let files = lister
            .list_files(&dir)
            .await
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("cannot list {dir}: {e}")))?;
        let Some(&(version, copy)) = super::fence::Fence::committed(&files).first() else {
            return Ok(None);
        };
        let read = |uri: String| async move {
            let bytes = self.file_io.new_input(&uri)?.read().await?;
            serde_json::from_slice::<TableMetadata>(&bytes).map_err(|e| {
                Error::new(ErrorKind::DataInvalid, format!("{uri} does not parse: {e}"))
            })
        };
        let committed = read(copy.to_owned()).await?;
        let mut location = None;
        for (v, twin) in by_version(&files) {
            if v == version && read(twin.to_owned()).await? == committed {
                location = Some(twin.to_owned());
                break;
            }
        }
        let location = location.ok_or_else(|| {
            Error::new(
                ErrorKind::DataInvalid,
                format!("{copy} is committed, but no <N>-<uuid> metadata file of version {version} matches it"),
            )
        })?;
        let table = name.to_owned();
        let current = self.blocking(move |s| s.pointer(&table)).await?;
        if current.as_deref() == Some(location.as_str()) {
            return Ok(None);
        }
        let (table, loc) = (name.to_owned(), location.clone());
        self.blocking(move |s| s.adopt(&table, &loc)).await?;
        tracing::info!(
            table = name,
            version,
            %location,
            snapshot_id = committed.current_snapshot_id(),
            "took the table's committed state from the warehouse"
        );
        Ok(Some(self.build_table(ident, location, Arc::new(committed))?))
    }

    /// Fenced: at a takeover, before anything commits, takes every table's committed state
    /// from the warehouse and commits one version more naming this node (`zombi.log-owner`),
    /// so that a node paused through the takeover can commit nothing. Returns the tables.
    pub async fn take_tables(&self) -> Result<Vec<String>> {
        let Some(fence) = &self.fence else { return Ok(Vec::new()) };
        let mut taken = Vec::new();
        for name in self.table_dirs().await? {
            let ident = self.ident(&name);
            for attempt in 1.. {
                {
                    let lock = self.commit_lock(&name);
                    let _guard = lock.lock().await;
                    self.adopt_committed(&name).await?;
                }
                if self.pointer(&ident).await?.is_none() {
                    break;
                }
                let owner = fence.owner().to_owned();
                let bumped = self
                    .commit_rebuilt(&ident, async |current: &Table| {
                        let builder = iceberg::spec::TableMetadataBuilder::new_from_metadata(
                            current.metadata().clone(),
                            current.metadata_location().map(str::to_owned),
                        );
                        let props = std::collections::HashMap::from([(
                            super::fence::LOG_OWNER.to_owned(),
                            owner,
                        )]);
                        Ok(Some(builder.set_properties(props)?.build()?.metadata))
                    })
                    .await;
                match bumped {
                    Ok(_) => {
                        taken.push(name.clone());
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::CatalogCommitConflicts && attempt < 10 => {
                        tracing::info!(table = %name, "a commit of the old owner landed first; taking the table again");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_file_names() {
        assert_eq!(version_of("s3://b/w/t/metadata/00042-7f3a.metadata.json"), Some(42));
        assert_eq!(version_of("file:///w/t/metadata/00000-x.metadata.json"), Some(0));
        for other in [
            "file:///w/t/metadata/snap-1-0-x.avro",
            "file:///w/t/metadata/x.metadata.json",
            "file:///w/t/metadata/-x.metadata.json",
            "file:///w/t/metadata/00001-.metadata.json",
            "file:///w/t/metadata/v1.metadata.json",
        ] {
            assert_eq!(version_of(other), None, "{other}");
        }
    }

    #[test]
    fn newest_version_comes_first() {
        let files: Vec<String> = [
            "w/m/00002-b.metadata.json",
            "w/m/00010-a.metadata.json",
            "w/m/snap-1.avro",
            "w/m/00002-a.metadata.json",
        ]
        .map(String::from)
        .to_vec();
        let order: Vec<&str> = by_version(&files).into_iter().map(|(_, f)| f).collect();
        assert_eq!(
            order,
            ["w/m/00010-a.metadata.json", "w/m/00002-a.metadata.json", "w/m/00002-b.metadata.json"]
        );
    }
}
