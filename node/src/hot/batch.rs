//! One `WriteBatch` of the combiner: events, high-water marks, byte counters, idempotency
//! records, inferred columns and replay cursors, applied atomically.

use std::collections::BTreeSet;

use rocksdb::WriteBatch;

use super::idempotency::IdemRecord;
use super::keys::{self, CF_EVENTS, CF_IDEM, CF_META, TableId};
use super::{HotStore, Result};

impl HotStore {
    pub fn batch(&self) -> HotBatch<'_> {
        HotBatch { store: self, batch: WriteBatch::default(), tables: BTreeSet::new() }
    }
}

/// A `WriteBatch` being assembled against the store's column families.
pub struct HotBatch<'a> {
    pub(super) store: &'a HotStore,
    pub(super) batch: WriteBatch,
    /// Tables whose high-water marks this batch moves.
    pub(super) tables: BTreeSet<TableId>,
}

impl HotBatch<'_> {
    pub fn put_event(&mut self, table: TableId, partition: u32, sequence: u64, value: &[u8]) {
        self.batch.put_cf(
            self.store.cf(CF_EVENTS),
            keys::event_key(table, partition, sequence),
            value,
        );
    }

    pub fn put_high_water_mark(&mut self, table: TableId, partition: u32, next: u64) {
        self.tables.insert(table);
        self.batch.put_cf(
            self.store.cf(CF_META),
            keys::hwm_key(table, partition),
            keys::u64_value(next),
        );
    }

    pub fn put_bytes(&mut self, table: TableId, bytes: u64) {
        self.batch.put_cf(self.store.cf(CF_META), keys::bytes_key(table), keys::u64_value(bytes));
    }

    /// Moves a dead-letter table's replay cursor (see [`HotStore::replay_cursors`]).
    pub fn put_replay_cursor(&mut self, table: TableId, partition: u32, next: u64) {
        self.batch.put_cf(
            self.store.cf(CF_META),
            keys::partition_key(keys::TAG_REPLAYED, table, partition),
            keys::u64_value(next),
        );
    }

    /// Records a column inferred for `table` (see [`HotStore::pending_columns`]).
    pub fn put_pending_column(&mut self, table: TableId, index: u32, column: &[u8]) {
        self.batch.put_cf(
            self.store.cf(CF_META),
            keys::partition_key(keys::TAG_COLUMN, table, index),
            column,
        );
    }

    pub fn put_idempotency(&mut self, table: TableId, key: &str, record: IdemRecord) {
        self.batch.put_cf(self.store.cf(CF_IDEM), keys::idem_key(table, key), record.encode());
    }

    pub fn commit(self) -> Result<()> {
        self.store.write(self.batch)?;
        let mut activity = self.store.activity.lock().unwrap();
        for t in self.tables {
            *activity.entry(t).or_default() += 1;
        }
        Ok(())
    }
}
