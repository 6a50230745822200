//! The hot store: RocksDB with its write-ahead log, holding every acknowledged event until
//! the flusher has committed it to Iceberg. See [`keys`] for the layout.
//!
//! Writes go through [`HotStore::write`], which applies one `WriteBatch` with the options of
//! the configured [`Durability`]; a write that returns `Ok` is as durable as the mode
//! promises, so callers may acknowledge it.

mod batch;
pub mod error;
mod idempotency;
pub mod keys;
pub mod lease;
pub mod logged;
mod meta;
mod options;
pub mod record;
mod registry;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rocksdb::{DB, Direction, IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions};
use zombi_shared::config::Durability;

pub use batch::HotBatch;
pub use error::{HotError, Result};
pub use idempotency::IdemRecord;
pub use keys::TableId;
use keys::{CF_EVENTS, CF_IDEM, CF_META};
pub use logged::{HotLog, Note, Recovered};
pub use record::{Role, StoredEvent};

/// Per-table durable counters, as loaded at start-up or read for `/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableCounters {
    /// Next sequence per partition (= events ever accepted in that partition).
    pub high_water_marks: BTreeMap<u32, u64>,
    /// Payload bytes ever accepted.
    pub bytes: u64,
}

pub struct HotStore {
    db: DB,
    durability: Durability,
    idempotency_window_ms: i64,
    /// Table registry, name → id.
    tables: Mutex<BTreeMap<String, TableId>>,
    /// Held by the one registration in progress (see [`HotStore::ensure_table`]).
    registering: Mutex<()>,
    /// Woken when a table is registered, so the flusher creates its Iceberg table at once.
    registered: tokio::sync::Notify,
    /// Per table, a counter bumped by every write of events: the flusher skips a table
    /// whose counter did not move (no RocksDB read, no flush slot).
    activity: Mutex<HashMap<TableId, u64>>,
    /// With `durability = "object"`: the log every logged write is appended to first.
    log: OnceLock<HotLog>,
}

/// The tables a node holds, by name: all that maintenance needs of the hot store (and the
/// first thing the flusher does).
pub trait TableRegistry: Send + Sync + 'static {
    /// Every table, name → id.
    fn tables(&self) -> BTreeMap<String, TableId>;
    fn table_id(&self, name: &str) -> Option<TableId>;
}

impl TableRegistry for HotStore {
    fn tables(&self) -> BTreeMap<String, TableId> {
        HotStore::tables(self)
    }

    fn table_id(&self, name: &str) -> Option<TableId> {
        HotStore::table_id(self, name)
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
impl HotStore {
    pub fn open(path: &Path, durability: Durability, idempotency_window_secs: u64) -> Result<Self> {
        let window_ms = idempotency_window_secs.saturating_mul(1000) as i64;
        let (db_opts, cfs) = options::open_options(window_ms);
        let db = DB::open_cf_descriptors(&db_opts, path, cfs)?;
        let store = HotStore {
            db,
            durability,
            idempotency_window_ms: window_ms,
            tables: Mutex::new(BTreeMap::new()),
            registering: Mutex::new(()),
            registered: tokio::sync::Notify::new(),
            activity: Mutex::default(),
            log: OnceLock::new(),
        };
        let registry = store.read_registry()?;
        *store.tables.lock().unwrap() = registry;
        Ok(store)
    }

    /// Opens an existing store read-only (for `zombi-node dump`); safe while a node runs.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        let db = DB::open_cf_for_read_only(
            &Options::default(),
            path,
            [CF_EVENTS, CF_META, CF_IDEM],
            false,
        )?;
        let store = HotStore {
            db,
            durability: Durability::Wal,
            idempotency_window_ms: 0,
            tables: Mutex::new(BTreeMap::new()),
            registering: Mutex::new(()),
            registered: tokio::sync::Notify::new(),
            activity: Mutex::default(),
            log: OnceLock::new(),
        };
        let registry = store.read_registry()?;
        *store.tables.lock().unwrap() = registry;
        Ok(store)
    }

    fn cf(&self, name: &'static str) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("column families are created at open")
    }

    /// Applies `batch` atomically with the durability mode's write options.
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        let mut opts = WriteOptions::default();
        match self.durability {
            // With `object`, the log makes a write durable; the WAL keeps a restart cheap.
            Durability::Wal | Durability::Object => {}
            Durability::Fsync => opts.set_sync(true),
            Durability::None => opts.disable_wal(true),
        }
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    /// Makes everything written so far survive power loss (shutdown path).
    pub fn sync(&self) -> Result<()> {
        match self.durability {
            Durability::None => self.db.flush_cfs_opt(
                &[self.cf(CF_EVENTS), self.cf(CF_META), self.cf(CF_IDEM)],
                &rocksdb::FlushOptions::default(),
            )?,
            Durability::Wal | Durability::Fsync | Durability::Object => self.db.flush_wal(true)?,
        }
        Ok(())
    }

    /// Events of one (table, partition) with `from <= sequence < to`, in sequence order.
    pub fn scan(
        &self,
        table: TableId,
        partition: u32,
        from: u64,
        to: u64,
    ) -> impl Iterator<Item = Result<(u64, StoredEvent)>> + '_ {
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(keys::event_key(table, partition, to).to_vec());
        let start = keys::event_key(table, partition, from);
        self.db
            .iterator_cf_opt(
                self.cf(CF_EVENTS),
                opts,
                IteratorMode::From(&start, Direction::Forward),
            )
            .map(|item| {
                let (k, v) = item?;
                let (_, _, seq) =
                    keys::parse_event_key(&k).ok_or_else(|| corrupt(CF_EVENTS, "key"))?;
                let event = record::decode(&v).ok_or_else(|| corrupt(CF_EVENTS, "value"))?;
                Ok((seq, event))
            })
    }
}

fn corrupt(cf: &'static str, what: impl std::fmt::Display) -> HotError {
    HotError::Corrupt { cf, what: what.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zombi_shared::wire::Payload;

    #[test]
    fn registry_and_counters_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = HotStore::open(dir.path(), Durability::Wal, 60).unwrap();
            let a = store.ensure_table("a").unwrap();
            let b = store.ensure_table("b").unwrap();
            assert_ne!(a, b);
            assert_eq!(store.ensure_table("a").unwrap(), a);
            let mut batch = store.batch();
            let payload = Payload::Json("1".into());
            batch.put_event(
                a,
                3,
                0,
                &record::encode(1, 2, Some("k"), &payload, &record::Role::Event),
            );
            batch.put_high_water_mark(a, 3, 1);
            batch.put_bytes(a, 1);
            batch.put_idempotency(
                a,
                "k",
                IdemRecord { partition: 3, sequence: 0, accepted_ms: now_ms() },
            );
            batch.commit().unwrap();
        }
        let store = HotStore::open(dir.path(), Durability::Wal, 60).unwrap();
        let a = store.table_id("a").unwrap();
        assert_eq!(store.ensure_table("c").unwrap(), 3);
        let c = store.table_counters(a).unwrap();
        assert_eq!(c.high_water_marks, BTreeMap::from([(3, 1)]));
        assert_eq!(c.bytes, 1);
        let rec = store.idempotency_lookup(a, "k", now_ms()).unwrap().unwrap();
        assert_eq!((rec.partition, rec.sequence), (3, 0));
        // Outside the window the record no longer counts.
        assert!(store.idempotency_lookup(a, "k", now_ms() + 61_000).unwrap().is_none());
        let events: Vec<_> = store.scan(a, 3, 0, u64::MAX).map(Result::unwrap).collect();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1.idempotency_key.as_deref(), Some("k"));
        assert_eq!(store.scan(a, 2, 0, u64::MAX).count(), 0);
    }
}
