//! The flusher's and catalog's durable state beside the events: flush watermarks, deletion
//! floors (moving one drops the generations of events wholly below them), a typed table's
//! inferred columns, a dead-letter table's replay cursors, and the catalog's metadata
//! pointers.

use std::collections::BTreeMap;

use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};

use super::keys::{self, CF_META, TableId};
use super::{HotStore, Result, corrupt};

impl HotStore {
    /// Persisted flush watermarks of a table (partitions never flushed are absent).
    pub fn watermarks(&self, table: TableId) -> Result<BTreeMap<u32, u64>> {
        self.partition_values(keys::partition_prefix(keys::TAG_WATERMARK, table))
    }

    /// Persists flush watermarks (synced: they decide what the next flush reads).
    pub fn set_watermarks(&self, table: TableId, watermarks: &BTreeMap<u32, u64>) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (&p, &w) in watermarks {
            batch.put_cf(
                &self.cf(CF_META),
                keys::partition_key(keys::TAG_WATERMARK, table, p),
                keys::u64_value(w),
            );
        }
        self.write_synced(batch)
    }

    /// Deletion floors of a table: events below them were removed after flushing.
    pub fn floors(&self, table: TableId) -> Result<BTreeMap<u32, u64>> {
        self.partition_values(keys::partition_prefix(keys::TAG_FLOOR, table))
    }

    /// Deletes the events of one partition in `[from, to)` by recording `to` as its floor:
    /// scans no longer see them, and their generations are dropped once nothing else in
    /// them is above its floor. Callers only pass ranges below the committed watermark.
    pub fn delete_below(&self, table: TableId, partition: u32, from: u64, to: u64) -> Result<()> {
        debug_assert!(from <= to);
        let mut batch = WriteBatch::default();
        batch.put_cf(
            &self.cf(CF_META),
            keys::partition_key(keys::TAG_FLOOR, table, partition),
            keys::u64_value(to),
        );
        self.write(batch)?;
        let mut floors = self.floors.lock().unwrap();
        let floor = floors.entry((table, partition)).or_default();
        *floor = (*floor).max(to);
        drop(floors);
        self.reclaim()
    }

    /// The columns the combiner inferred for a typed table (`zombi.evolve = additive`) and
    /// the flusher has not yet committed to its schema, by discovery index.
    pub fn pending_columns(&self, table: TableId) -> Result<Vec<(u32, Vec<u8>)>> {
        let prefix = keys::partition_prefix(keys::TAG_COLUMN, table);
        let mut out = Vec::new();
        for item in
            self.db.iterator_cf(&self.cf(CF_META), IteratorMode::From(&prefix, Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            let (_, index) =
                keys::parse_partition_key(&k).ok_or_else(|| corrupt(CF_META, "column key"))?;
            out.push((index, v.to_vec()));
        }
        Ok(out)
    }

    /// Replay cursors of a dead-letter table: per partition, the rows below were replayed.
    pub fn replay_cursors(&self, table: TableId) -> Result<BTreeMap<u32, u64>> {
        self.partition_values(keys::partition_prefix(keys::TAG_REPLAYED, table))
    }

    /// Forgets inferred columns that the table's schema holds now.
    pub fn delete_pending_columns(&self, table: TableId, indices: &[u32]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for &i in indices {
            batch.delete_cf(&self.cf(CF_META), keys::partition_key(keys::TAG_COLUMN, table, i));
        }
        self.write_synced(batch)
    }

    /// Location of a table's current Iceberg metadata file.
    pub fn catalog_pointer(&self, table: &str) -> Result<Option<String>> {
        self.db
            .get_cf(&self.cf(CF_META), keys::pointer_key(table))?
            .map(|v| String::from_utf8(v).map_err(|e| corrupt(CF_META, e)))
            .transpose()
    }

    /// Every table with Iceberg metadata, name → metadata location, sorted by name.
    pub fn catalog_pointers(&self) -> Result<BTreeMap<String, String>> {
        self.named_values(keys::pointer_prefix(), |v| {
            String::from_utf8(v.to_vec()).map_err(|e| corrupt(CF_META, e))
        })
    }

    /// Points a table at a new metadata file: the commit point of an Iceberg commit.
    pub fn set_catalog_pointer(&self, table: &str, location: &str) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(&self.cf(CF_META), keys::pointer_key(table), location.as_bytes());
        self.write_synced(batch)
    }

    /// Writes with an fsync of the WAL whatever the durability mode: for the rare,
    /// decisive writes of the flusher and catalog.
    pub(super) fn write_synced(&self, batch: WriteBatch) -> Result<()> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }
}
