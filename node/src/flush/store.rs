//! What the flusher needs of the hot store, as a trait: the tables and their acknowledged
//! events, and the flusher's own durable state (watermarks, deletion floors, inferred
//! columns). The node's RocksDB ([`HotStore`]) is one; [`MemoryStore`] keeps everything in
//! memory for tests of the flusher.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use crate::hot::{self, HotStore, StoredEvent, TableCounters, TableId, TableRegistry};

/// Acknowledged events of one partition, in sequence order.
pub type Scan<'a> = Box<dyn Iterator<Item = hot::Result<(u64, StoredEvent)>> + 'a>;

pub trait FlushStore: TableRegistry {
    /// Resolves once a table is registered after the call.
    fn table_registered(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    /// A counter that moves with every write of `table`'s events.
    fn activity(&self, table: TableId) -> u64;
    fn table_counters(&self, table: TableId) -> hot::Result<TableCounters>;
    /// Events of one partition with `from <= sequence < to`.
    fn scan(&self, table: TableId, partition: u32, from: u64, to: u64) -> Scan<'_>;
    fn watermarks(&self, table: TableId) -> hot::Result<BTreeMap<u32, u64>>;
    /// Persists the committed watermarks (synced).
    fn set_watermarks(&self, table: TableId, watermarks: &BTreeMap<u32, u64>) -> hot::Result<()>;
    fn floors(&self, table: TableId) -> hot::Result<BTreeMap<u32, u64>>;
    /// Deletes events `[from, to)` of a partition and moves its floor to `to`, atomically.
    fn delete_below(&self, table: TableId, partition: u32, from: u64, to: u64) -> hot::Result<()>;
    /// A typed table's inferred columns not yet in its schema: index → JSON.
    fn pending_columns(&self, table: TableId) -> hot::Result<Vec<(u32, Vec<u8>)>>;
    fn delete_pending_columns(&self, table: TableId, indices: &[u32]) -> hot::Result<()>;
}

impl FlushStore for HotStore {
    fn table_registered(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(HotStore::table_registered(self))
    }

    fn activity(&self, table: TableId) -> u64 {
        HotStore::activity(self, table)
    }

    fn table_counters(&self, table: TableId) -> hot::Result<TableCounters> {
        HotStore::table_counters(self, table)
    }

    fn scan(&self, table: TableId, partition: u32, from: u64, to: u64) -> Scan<'_> {
        Box::new(HotStore::scan(self, table, partition, from, to))
    }

    fn watermarks(&self, table: TableId) -> hot::Result<BTreeMap<u32, u64>> {
        HotStore::watermarks(self, table)
    }

    fn set_watermarks(&self, table: TableId, watermarks: &BTreeMap<u32, u64>) -> hot::Result<()> {
        HotStore::set_watermarks(self, table, watermarks)
    }

    fn floors(&self, table: TableId) -> hot::Result<BTreeMap<u32, u64>> {
        HotStore::floors(self, table)
    }

    fn delete_below(&self, table: TableId, partition: u32, from: u64, to: u64) -> hot::Result<()> {
        HotStore::delete_below(self, table, partition, from, to)
    }

    fn pending_columns(&self, table: TableId) -> hot::Result<Vec<(u32, Vec<u8>)>> {
        HotStore::pending_columns(self, table)
    }

    fn delete_pending_columns(&self, table: TableId, indices: &[u32]) -> hot::Result<()> {
        HotStore::delete_pending_columns(self, table, indices)
    }
}

/// One table in a [`MemoryStore`].
#[derive(Debug, Default)]
struct MemoryTable {
    events: BTreeMap<(u32, u64), StoredEvent>,
    counters: TableCounters,
    activity: u64,
    watermarks: BTreeMap<u32, u64>,
    floors: BTreeMap<u32, u64>,
    columns: BTreeMap<u32, Vec<u8>>,
}

/// A hot store in memory: what the combiner would have written, for tests of the flusher.
#[derive(Debug, Default)]
pub struct MemoryStore {
    names: Mutex<BTreeMap<String, TableId>>,
    tables: Mutex<HashMap<TableId, MemoryTable>>,
    registered: tokio::sync::Notify,
}

impl MemoryStore {
    /// Registers `name` (if new) and returns its id.
    pub fn ensure_table(&self, name: &str) -> TableId {
        let mut names = self.names.lock().unwrap();
        let next = names.len() as TableId + 1;
        let id = *names.entry(name.to_owned()).or_insert(next);
        self.tables.lock().unwrap().entry(id).or_default();
        self.registered.notify_waiters();
        id
    }

    /// Acknowledges `events` in `partition`, after those already there, as the combiner
    /// writes them.
    pub fn append(&self, table: TableId, partition: u32, events: Vec<StoredEvent>) {
        let mut tables = self.tables.lock().unwrap();
        let t = tables.entry(table).or_default();
        let next = t.counters.high_water_marks.entry(partition).or_default();
        for event in events {
            t.counters.bytes += event.payload.len() as u64;
            t.events.insert((partition, *next), event);
            *next += 1;
        }
        t.activity += 1;
    }

    /// Loses events `[from, to)` of a partition, as only a crash with durability `none` can.
    pub fn lose(&self, table: TableId, partition: u32, from: u64, to: u64) {
        let mut tables = self.tables.lock().unwrap();
        let t = tables.get_mut(&table).expect("a known table");
        t.events.retain(|(p, s), _| *p != partition || !(from..to).contains(s));
    }

    fn with<T>(&self, table: TableId, f: impl FnOnce(&mut MemoryTable) -> T) -> T {
        f(self.tables.lock().unwrap().entry(table).or_default())
    }
}

impl TableRegistry for MemoryStore {
    fn tables(&self) -> BTreeMap<String, TableId> {
        self.names.lock().unwrap().clone()
    }

    fn table_id(&self, name: &str) -> Option<TableId> {
        self.names.lock().unwrap().get(name).copied()
    }
}

impl FlushStore for MemoryStore {
    fn table_registered(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.registered.notified())
    }

    fn activity(&self, table: TableId) -> u64 {
        self.with(table, |t| t.activity)
    }

    fn table_counters(&self, table: TableId) -> hot::Result<TableCounters> {
        Ok(self.with(table, |t| t.counters.clone()))
    }

    fn scan(&self, table: TableId, partition: u32, from: u64, to: u64) -> Scan<'_> {
        let events: Vec<_> = self.with(table, |t| {
            let range = (partition, from)..(partition, to.max(from));
            t.events.range(range).map(|((_, s), e)| Ok((*s, e.clone()))).collect()
        });
        Box::new(events.into_iter())
    }

    fn watermarks(&self, table: TableId) -> hot::Result<BTreeMap<u32, u64>> {
        Ok(self.with(table, |t| t.watermarks.clone()))
    }

    fn set_watermarks(&self, table: TableId, watermarks: &BTreeMap<u32, u64>) -> hot::Result<()> {
        self.with(table, |t| t.watermarks.extend(watermarks.iter().map(|(p, w)| (*p, *w))));
        Ok(())
    }

    fn floors(&self, table: TableId) -> hot::Result<BTreeMap<u32, u64>> {
        Ok(self.with(table, |t| t.floors.clone()))
    }

    fn delete_below(&self, table: TableId, partition: u32, from: u64, to: u64) -> hot::Result<()> {
        self.with(table, |t| {
            t.events.retain(|(p, s), _| *p != partition || !(from..to).contains(s));
            t.floors.insert(partition, to);
        });
        Ok(())
    }

    fn pending_columns(&self, table: TableId) -> hot::Result<Vec<(u32, Vec<u8>)>> {
        Ok(self.with(table, |t| t.columns.iter().map(|(i, c)| (*i, c.clone())).collect()))
    }

    fn delete_pending_columns(&self, table: TableId, indices: &[u32]) -> hot::Result<()> {
        self.with(table, |t| indices.iter().for_each(|i| drop(t.columns.remove(i))));
        Ok(())
    }
}
