//! Committing: the columns a typed table inferred, the append of the pending files as one
//! snapshot carrying the complete watermark map and a commit id, the lookup of a commit
//! whose outcome is unknown, and the watermarks persisted after it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use iceberg::table::Table;
use iceberg::{Catalog, ErrorKind};

use super::{Pending, TableFlusher, m};
use crate::catalog::snapshot;
use crate::failpoints::crash_point;
use crate::flush::FlushError;
use crate::hot;
use crate::layout;
use crate::schema::summary;
use crate::typed::TypedError;

impl TableFlusher {
    /// Commits the columns the combiner inferred for new fields of a typed table
    /// (`zombi.evolve = additive`) to its schema, before rows that carry them are written;
    /// engines see them from this commit on. Inferred columns the schema holds by now (an
    /// engine may have added one itself) are forgotten.
    pub(super) async fn commit_inferred_columns(&self, table: Table) -> Result<Table, FlushError> {
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
                        let invalid = |e: TypedError| {
                            iceberg::Error::new(ErrorKind::DataInvalid, e.to_string())
                        };
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

    pub(super) async fn commit(
        &mut self,
        high_water_marks: &BTreeMap<u32, u64>,
    ) -> Result<(), FlushError> {
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
        metrics::histogram!(m::COMMIT_FILES).record(self.pending.file_count() as f64);
        {
            let mut status = self.status.lock().unwrap();
            status.snapshot_id = snapshot_id;
            status.commits += 1;
            status.rows_committed += self.pending.rows;
            status.last_commit_ms = Some(hot::now_ms());
        }
        self.committed = watermarks.clone();
        self.publish_committed();
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
    pub(super) async fn persist_watermarks(&mut self) -> Result<(), FlushError> {
        let store = self.ctx.store.clone();
        let (id, to_persist) = (self.id, self.committed.clone());
        tokio::task::spawn_blocking(move || store.set_watermarks(id, &to_persist)).await??;
        self.watermarks_unsaved = false;
        Ok(())
    }

    /// Appends the pending files as one snapshot carrying `watermarks` and a new commit id.
    pub(super) async fn append(
        &mut self,
        table: &Table,
        watermarks: &BTreeMap<u32, u64>,
    ) -> Result<Option<i64>, FlushError> {
        let commit_id = uuid::Uuid::now_v7().to_string();
        let props = summary::properties(watermarks, &commit_id);
        // The manifests this commit writes carry its uuid: keep cleanup off them meanwhile.
        let commit_uuid = uuid::Uuid::new_v4();
        let _inflight = self.ctx.catalog.protect(&self.name, commit_uuid.to_string());
        let staged =
            snapshot::stage(table, commit_uuid, &[], &HashSet::new(), self.pending.files.clone())
                .await?;
        crash_point("flush-before-commit");
        // Until the table says otherwise the outcome is unknown: remember the id, so that
        // no retry appends the same rows twice.
        self.pending.unverified = Some(commit_id.clone());
        if crate::failpoints::error_point("flush-commit-unknown") {
            // As if the commit request failed and the table could not be reloaded to check.
            return Err(FlushError::Injected("flush-commit-unknown"));
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
}

/// The snapshot that holds the commit `commit_id` (which moved the watermarks from
/// `committed` to `attempted`), if the table has it.
fn find_commit(
    table: &Table,
    commit_id: &str,
    committed: &BTreeMap<u32, u64>,
    attempted: &BTreeMap<u32, u64>,
) -> Option<i64> {
    let metadata = table.metadata();
    fn summary(s: &iceberg::spec::Snapshot) -> (i64, &HashMap<String, String>) {
        (s.snapshot_id(), &s.summary().additional_properties)
    }
    commit_outcome(
        metadata.snapshots().map(|s| summary(s)),
        metadata.current_snapshot().map(|s| summary(s)),
        commit_id,
        committed,
        attempted,
    )
}

/// The commit-outcome lookup over a table's snapshots (id and summary properties) and its
/// current one: the snapshot carrying `commit_id`, else the current snapshot if its
/// watermarks reach `attempted`. Maintenance may have expired the commit's own snapshot,
/// but every later snapshot carries the watermark map forward, and only this flusher moves
/// the watermarks: a current map at or past `attempted` (which moved past `committed`)
/// means the commit went through.
fn commit_outcome<'a>(
    mut snapshots: impl Iterator<Item = (i64, &'a HashMap<String, String>)>,
    current: Option<(i64, &'a HashMap<String, String>)>,
    commit_id: &str,
    committed: &BTreeMap<u32, u64>,
    attempted: &BTreeMap<u32, u64>,
) -> Option<i64> {
    let by_id = snapshots.find(|(_, props)| summary::commit_id(props) == Some(commit_id));
    by_id.map(|(id, _)| id).or_else(|| {
        let (id, props) = current?;
        let now = summary::watermarks(props);
        let advanced = attempted.iter().any(|(p, w)| committed.get(p).copied().unwrap_or(0) < *w);
        let holds = attempted.iter().all(|(p, w)| now.get(p).copied().unwrap_or(0) >= *w);
        (advanced && holds).then_some(id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(u32, u64)]) -> BTreeMap<u32, u64> {
        entries.iter().copied().collect()
    }

    fn props(watermarks: &[(u32, u64)], commit_id: &str) -> HashMap<String, String> {
        summary::properties(&map(watermarks), commit_id)
    }

    #[test]
    fn a_commit_is_found_by_its_id() {
        let (a, b) = (props(&[(0, 10)], "a"), props(&[(0, 20)], "b"));
        let snapshots = [(1, &a), (2, &b)];
        let found = commit_outcome(
            snapshots.into_iter(),
            Some((2, &b)),
            "a",
            &map(&[(0, 0)]),
            &map(&[(0, 10)]),
        );
        assert_eq!(found, Some(1));
    }

    #[test]
    fn an_expired_commit_is_found_by_the_watermarks_carried_forward() {
        // The commit's snapshot was expired; a compaction after it carries the map on.
        let compacted = props(&[(0, 25), (1, 4)], "compaction");
        let found = commit_outcome(
            [(9, &compacted)].into_iter(),
            Some((9, &compacted)),
            "lost",
            &map(&[(0, 10)]),
            &map(&[(0, 25), (1, 4)]),
        );
        assert_eq!(found, Some(9));
    }

    #[test]
    fn a_commit_that_did_not_happen_is_not_found() {
        let before = props(&[(0, 10)], "earlier");
        let not_yet = commit_outcome(
            [(3, &before)].into_iter(),
            Some((3, &before)),
            "c",
            &map(&[(0, 10)]),
            &map(&[(0, 25)]),
        );
        assert_eq!(not_yet, None);
        // A commit that moved nothing (a retry of an empty read) never matches by watermarks.
        let unmoved = commit_outcome(
            [(3, &before)].into_iter(),
            Some((3, &before)),
            "c",
            &map(&[(0, 10)]),
            &map(&[(0, 10)]),
        );
        assert_eq!(unmoved, None);
        // No snapshot at all.
        assert_eq!(commit_outcome(std::iter::empty(), None, "c", &map(&[]), &map(&[(0, 1)])), None);
    }
}
