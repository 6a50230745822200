//! The table registry (name → id, ids never reused) and each table's durable counters.

use std::collections::BTreeMap;

use rocksdb::{Direction, IteratorMode};

use super::keys::{self, CF_META, TableId};
use super::{HotError, HotStore, Result, TableCounters, corrupt};

impl HotStore {
    pub(super) fn read_registry(&self) -> Result<BTreeMap<String, TableId>> {
        self.named_values(keys::table_prefix(), |v| {
            keys::parse_u32(v).ok_or_else(|| corrupt(CF_META, "table id"))
        })
    }

    /// Every `tag · name` meta entry, name → decoded value, sorted by name.
    pub(super) fn named_values<T>(
        &self,
        prefix: [u8; 1],
        decode: impl Fn(&[u8]) -> Result<T>,
    ) -> Result<BTreeMap<String, T>> {
        let mut out = BTreeMap::new();
        let meta = self.cf(CF_META);
        for item in self.db.iterator_cf(&meta, IteratorMode::From(&prefix, Direction::Forward)) {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            let name = std::str::from_utf8(&k[1..]).map_err(|e| corrupt(CF_META, e))?;
            out.insert(name.to_owned(), decode(&v)?);
        }
        Ok(out)
    }

    pub fn table_id(&self, name: &str) -> Option<TableId> {
        self.tables.lock().unwrap().get(name).copied()
    }

    pub fn tables(&self) -> BTreeMap<String, TableId> {
        self.tables.lock().unwrap().clone()
    }

    /// Resolves when a table was registered since the last call (or is at once, if one was).
    pub async fn table_registered(&self) {
        self.registered.notified().await
    }

    /// Returns the id of `name`, registering the table durably first if it is new.
    pub fn ensure_table(&self, name: &str) -> Result<TableId> {
        self.ensure_table_within(name, usize::MAX)
    }

    /// [`HotStore::ensure_table`], refusing to register a table beyond `limit` tables.
    pub fn ensure_table_within(&self, name: &str, limit: usize) -> Result<TableId> {
        if let Some(id) = self.table_id(name) {
            return Ok(id);
        }
        // One registration at a time, so an id is allocated once. The registry's own lock
        // is not held across the write, which may wait for a log segment: lookups (on the
        // async runtime's threads too) never wait for the object store.
        let _registering = self.registering.lock().unwrap();
        let id = {
            let tables = self.tables.lock().unwrap();
            if let Some(id) = tables.get(name) {
                return Ok(*id);
            }
            if tables.len() >= limit {
                return Err(HotError::TableLimit { limit });
            }
            // Ids are never reused: the next one is derived from the registry itself.
            match tables.values().max() {
                None => 1,
                Some(max) => max.checked_add(1).ok_or(HotError::TableIdsExhausted)?,
            }
        };
        let mut batch = self.batch();
        batch.put_table(name, id);
        // Logged and synced in every durability mode: an id must never be handed out twice.
        batch.commit_with(true)?;
        self.tables.lock().unwrap().insert(name.to_owned(), id);
        self.registered.notify_one();
        Ok(id)
    }

    /// How many event writes `table` has seen in this process (see `activity`).
    pub fn activity(&self, table: TableId) -> u64 {
        self.activity.lock().unwrap().get(&table).copied().unwrap_or(0)
    }

    /// Durable counters of one table.
    pub fn table_counters(&self, table: TableId) -> Result<TableCounters> {
        let meta = self.cf(CF_META);
        let mut counters = TableCounters {
            high_water_marks: self.partition_values(keys::hwm_prefix(table))?,
            bytes: 0,
        };
        if let Some(v) = self.db.get_cf(&meta, keys::bytes_key(table))? {
            counters.bytes = keys::parse_u64(&v).ok_or_else(|| corrupt(CF_META, "bytes value"))?;
        }
        Ok(counters)
    }

    /// Every per-partition u64 under one `tag · table` prefix.
    pub(super) fn partition_values(&self, prefix: [u8; 5]) -> Result<BTreeMap<u32, u64>> {
        let mut out = BTreeMap::new();
        let meta = self.cf(CF_META);
        for item in self.db.iterator_cf(&meta, IteratorMode::From(&prefix, Direction::Forward)) {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            let (_, partition) =
                keys::parse_partition_key(&k).ok_or_else(|| corrupt(CF_META, "partition key"))?;
            let value = keys::parse_u64(&v).ok_or_else(|| corrupt(CF_META, "partition value"))?;
            out.insert(partition, value);
        }
        Ok(out)
    }
}
