//! With `durability = "object"`, the commit point of every Iceberg commit is in the
//! warehouse, where no node that lost the log can get past it.
//!
//! A commit of version `N` creates `metadata/v<N>.metadata.json` (the copy path-based
//! readers use, see [`super::hint`]) with put-if-absent, after its `<N>-<uuid>` file and
//! before the node's own pointer moves. Of two nodes committing version `N` of a table,
//! exactly one creates it; the other's commit fails. The committed versions of a table are
//! exactly its `v<N>` files, so a node that takes the log over adopts the highest of each
//! table (not what its own RocksDB remembers: another node may have committed since) and
//! then commits one more version, a property naming itself (`zombi.log-owner`). From then
//! on a node paused through the takeover, which still builds on an older version, fails
//! every commit: its next version is taken.
//!
//! A version taken by a copy with the same bytes is this node's own earlier attempt whose
//! answer was lost: it counts as committed.

use iceberg::spec::TableMetadata;
use iceberg::{Error, ErrorKind, Result};

use super::hint;
use crate::hot::HotLog;
use crate::log::{ObjectStore, Put};

/// The table property naming the process that owns the log (and so commits) since the
/// version that set it.
pub const LOG_OWNER: &str = "zombi.log-owner";

pub struct Fence {
    store: ObjectStore,
    log: HotLog,
    /// The warehouse root URI, without a trailing slash.
    warehouse: String,
    /// This process's log id, in hex.
    owner: String,
}

/// What creating a version's copy found.
#[derive(Debug, PartialEq, Eq)]
pub enum Committed {
    /// This node committed it.
    Ours,
    /// Another node committed this version first.
    Taken,
}

impl Fence {
    pub fn new(store: ObjectStore, warehouse: &str, log: HotLog) -> Self {
        Fence {
            store,
            warehouse: warehouse.trim_end_matches('/').to_owned(),
            owner: format!("{:032x}", log.writer_id()),
            log,
        }
    }

    /// Whether this node still owns the log (see [`crate::log::Log::still_owner`]): asked
    /// before files are deleted, which no precondition guards.
    pub async fn still_owner(&self) -> Result<bool> {
        self.log.still_owner().await.map_err(|e| {
            Error::new(ErrorKind::Unexpected, "cannot check who owns the log").with_source(e)
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The store key of a URI in the warehouse.
    fn key(&self, uri: &str) -> Result<String> {
        uri.strip_prefix(&self.warehouse)
            .and_then(|k| k.strip_prefix('/'))
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::new(ErrorKind::Unexpected, format!("{uri} is outside the warehouse"))
            })
    }

    /// Creates the copy of version `N` of `metadata` (at `metadata_location`): the commit
    /// point. A failed or timed-out PUT is retried with the same bytes, without end, until
    /// the copy is there (ours) or another node's is: a PUT that timed out may still land
    /// (a stalled store answers it later), so giving up would leave the outcome unknown,
    /// and a new attempt with other bytes would find this one's copy and take it for
    /// another node's, committing the same rows twice. While the store is down the table's
    /// flush waits here, like the log's writes; other tables are not held up.
    pub async fn commit(
        &self,
        metadata_location: &str,
        metadata: &TableMetadata,
    ) -> Result<Committed> {
        let version = hint::version_of(metadata_location).ok_or_else(|| {
            Error::new(
                ErrorKind::DataInvalid,
                format!("{metadata_location} is not named <version>-<uuid>.metadata.json"),
            )
        })?;
        let copy = hint::copy_location(metadata.location(), version);
        let key = self.key(&copy)?;
        let json = bytes::Bytes::from(serde_json::to_vec(metadata).map_err(|e| {
            Error::new(ErrorKind::DataInvalid, format!("cannot serialise table metadata: {e}"))
        })?);
        let mut failures = 0u32;
        loop {
            let outcome = match self.store.put_if_absent(&key, json.clone()).await {
                Ok(Put::Created) => return Ok(Committed::Ours),
                Ok(Put::Exists) => match self.store.get(&key).await {
                    Ok(Some(theirs)) if theirs == json => return Ok(Committed::Ours),
                    Ok(_) => return Ok(Committed::Taken),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            failures += 1;
            if failures == 1 || failures.is_multiple_of(10) {
                tracing::warn!(error = %crate::error::Chain(&outcome), %copy, version, failures, "cannot create a commit point; retrying with the same bytes until it exists");
            }
            let backoff = std::time::Duration::from_millis(200 << failures.min(5));
            tokio::time::sleep(backoff.min(std::time::Duration::from_secs(5))).await;
        }
    }

    /// The committed versions of the table whose metadata folder holds `files` (URIs),
    /// highest first: (version, URI of the copy).
    pub fn committed(files: &[String]) -> Vec<(u64, &str)> {
        let mut out: Vec<(u64, &str)> = files
            .iter()
            .filter_map(|f| {
                let name = f.rsplit('/').next()?;
                let v = name.strip_prefix('v')?.strip_suffix(".metadata.json")?;
                Some((v.parse().ok()?, f.as_str()))
            })
            .collect();
        out.sort_by_key(|b| std::cmp::Reverse(b.0));
        out
    }
}

/// The error of a commit whose version another node committed first.
pub fn taken(table: &str, version: Option<u64>) -> Error {
    Error::new(
        ErrorKind::CatalogCommitConflicts,
        format!(
            "version {} of table {table} was committed by another node: this node no longer owns the log, or its view of the table was behind",
            version.map_or_else(|| "?".into(), |v| v.to_string())
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_versions_are_the_copies() {
        let files: Vec<String> = [
            "s3://b/w/zombi/t/metadata/00003-a.metadata.json",
            "s3://b/w/zombi/t/metadata/v3.metadata.json",
            "s3://b/w/zombi/t/metadata/v10.metadata.json",
            "s3://b/w/zombi/t/metadata/v2.metadata.json",
            "s3://b/w/zombi/t/metadata/version-hint.text",
            "s3://b/w/zombi/t/metadata/vx.metadata.json",
        ]
        .map(String::from)
        .to_vec();
        let versions: Vec<u64> = Fence::committed(&files).into_iter().map(|(v, _)| v).collect();
        assert_eq!(versions, [10, 3, 2]);
    }
}
