//! The hot store: RocksDB with its write-ahead log, holding every acknowledged event until
//! the flusher has committed it to Iceberg. See [`keys`] for the layout.
//!
//! Writes go through [`HotStore::write`], which applies one `WriteBatch` with the options of
//! the configured [`Durability`]; a write that returns `Ok` is as durable as the mode
//! promises, so callers may acknowledge it.

pub mod error;
pub mod keys;
pub mod record;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, DB, DBCompressionType, Direction, IteratorMode,
    Options, ReadOptions, WriteBatch, WriteOptions, compaction_filter::Decision,
};
use zombi_shared::config::Durability;

pub use error::{HotError, Result};
pub use keys::TableId;
use keys::{CF_EVENTS, CF_IDEM, CF_META};
pub use record::{Role, StoredEvent};

/// What an idempotency record remembers about the first write of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdemRecord {
    pub partition: u32,
    pub sequence: u64,
    pub accepted_ms: i64,
}

impl IdemRecord {
    fn encode(&self) -> [u8; 20] {
        let mut v = [0u8; 20];
        v[..4].copy_from_slice(&self.partition.to_be_bytes());
        v[4..12].copy_from_slice(&self.sequence.to_be_bytes());
        v[12..].copy_from_slice(&self.accepted_ms.to_be_bytes());
        v
    }

    fn decode(v: &[u8]) -> Option<Self> {
        let v: &[u8; 20] = v.try_into().ok()?;
        Some(IdemRecord {
            partition: u32::from_be_bytes(v[..4].try_into().unwrap()),
            sequence: u64::from_be_bytes(v[4..12].try_into().unwrap()),
            accepted_ms: i64::from_be_bytes(v[12..].try_into().unwrap()),
        })
    }
}

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
    /// Table registry, name → id. The mutex also serialises id allocation.
    tables: Mutex<BTreeMap<String, TableId>>,
    /// Woken when a table is registered, so the flusher creates its Iceberg table at once.
    registered: tokio::sync::Notify,
    /// Per table, a counter bumped by every write of events: the flusher skips a table
    /// whose counter did not move (no RocksDB read, no flush slot).
    activity: Mutex<HashMap<TableId, u64>>,
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl HotStore {
    pub fn open(path: &Path, durability: Durability, idempotency_window_secs: u64) -> Result<Self> {
        let window_ms = idempotency_window_secs.saturating_mul(1000) as i64;
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_keep_log_file_num(4);
        // Small machines: a couple of background jobs are plenty.
        db_opts.set_max_background_jobs(2);
        // Column families reach disk together, so that without a WAL (durability `none`)
        // events, high-water marks and idempotency records can never disagree after a crash.
        db_opts.set_atomic_flush(true);

        let mut events = Options::default();
        // Events live seconds to minutes; compress only what sinks to the bottom level
        // (a stalled flusher) to keep the write path cheap.
        events.set_compression_type(DBCompressionType::None);
        events.set_bottommost_compression_type(DBCompressionType::Zstd);
        events.set_write_buffer_size(32 << 20);
        // Events are deleted (by range) soon after their flush: `flush.retention_secs`, 60 s
        // by default. RocksDB's default of compacting L0 once it holds 4 files rewrote and
        // compressed every event once more before its deletion, which cost the node about a
        // fifth of its CPU under bulk load (docs/benchmarks.md). Letting L0 hold 80 memtables
        // (2.5 GiB, a minute of ingest at ~40 MiB/s) before compacting means a compaction
        // mostly drops deleted events instead of rewriting live ones. Reads stay cheap: the
        // flusher and hot reads seek each L0 file once per scan.
        events.set_level_zero_file_num_compaction_trigger(80);
        events.set_level_zero_slowdown_writes_trigger(120);
        events.set_level_zero_stop_writes_trigger(160);

        let mut idem = Options::default();
        let mut block = BlockBasedOptions::default();
        block.set_bloom_filter(10.0, false);
        idem.set_block_based_table_factory(&block);
        // Expired idempotency records are dropped as RocksDB compacts; lookups also check
        // the age so an expired record that is still on disk is ignored.
        idem.set_compaction_filter("idempotency-window", move |_level, _key, value| {
            match IdemRecord::decode(value) {
                Some(r) if r.accepted_ms.saturating_add(window_ms) < now_ms() => Decision::Remove,
                _ => Decision::Keep,
            }
        });

        let cfs = vec![
            ColumnFamilyDescriptor::new(CF_EVENTS, events),
            ColumnFamilyDescriptor::new(CF_META, Options::default()),
            ColumnFamilyDescriptor::new(CF_IDEM, idem),
        ];
        let db = DB::open_cf_descriptors(&db_opts, path, cfs)?;
        let store = HotStore {
            db,
            durability,
            idempotency_window_ms: window_ms,
            tables: Mutex::new(BTreeMap::new()),
            registered: tokio::sync::Notify::new(),
            activity: Mutex::default(),
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
            registered: tokio::sync::Notify::new(),
            activity: Mutex::default(),
        };
        let registry = store.read_registry()?;
        *store.tables.lock().unwrap() = registry;
        Ok(store)
    }

    fn cf(&self, name: &'static str) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("column families are created at open")
    }

    fn read_registry(&self) -> Result<BTreeMap<String, TableId>> {
        self.named_values(keys::table_prefix(), |v| {
            keys::parse_u32(v).ok_or_else(|| corrupt(CF_META, "table id"))
        })
    }

    /// Every `tag · name` meta entry, name → decoded value, sorted by name.
    fn named_values<T>(
        &self,
        prefix: [u8; 1],
        decode: impl Fn(&[u8]) -> Result<T>,
    ) -> Result<BTreeMap<String, T>> {
        let mut out = BTreeMap::new();
        let meta = self.cf(CF_META);
        for item in self.db.iterator_cf(meta, IteratorMode::From(&prefix, Direction::Forward)) {
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
        let mut tables = self.tables.lock().unwrap();
        if let Some(id) = tables.get(name) {
            return Ok(*id);
        }
        if tables.len() >= limit {
            return Err(HotError::TableLimit { limit });
        }
        // Ids are never reused: the next one is derived from the registry itself.
        let id = match tables.values().max() {
            None => 1,
            Some(max) => max.checked_add(1).ok_or(HotError::TableIdsExhausted)?,
        };
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META), keys::table_key(name), id.to_be_bytes());
        // Logged and synced in every durability mode: an id must never be handed out twice.
        self.write_synced(batch)?;
        tables.insert(name.to_owned(), id);
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
        if let Some(v) = self.db.get_cf(meta, keys::bytes_key(table))? {
            counters.bytes = keys::parse_u64(&v).ok_or_else(|| corrupt(CF_META, "bytes value"))?;
        }
        Ok(counters)
    }

    /// Every per-partition u64 under one `tag · table` prefix.
    fn partition_values(&self, prefix: [u8; 5]) -> Result<BTreeMap<u32, u64>> {
        let mut out = BTreeMap::new();
        let meta = self.cf(CF_META);
        for item in self.db.iterator_cf(meta, IteratorMode::From(&prefix, Direction::Forward)) {
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

    /// Persisted flush watermarks of a table (partitions never flushed are absent).
    pub fn watermarks(&self, table: TableId) -> Result<BTreeMap<u32, u64>> {
        self.partition_values(keys::partition_prefix(keys::TAG_WATERMARK, table))
    }

    /// Persists flush watermarks (synced: they decide what the next flush reads).
    pub fn set_watermarks(&self, table: TableId, watermarks: &BTreeMap<u32, u64>) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (&p, &w) in watermarks {
            batch.put_cf(
                self.cf(CF_META),
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

    /// Deletes the events of one partition in `[from, to)` and records `to` as its floor.
    /// Callers only pass ranges below the committed watermark.
    pub fn delete_below(&self, table: TableId, partition: u32, from: u64, to: u64) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.cf(CF_EVENTS),
            keys::event_key(table, partition, from),
            keys::event_key(table, partition, to),
        );
        batch.put_cf(
            self.cf(CF_META),
            keys::partition_key(keys::TAG_FLOOR, table, partition),
            keys::u64_value(to),
        );
        self.write(batch)
    }

    /// The columns the combiner inferred for a typed table (`zombi.evolve = additive`) and
    /// the flusher has not yet committed to its schema, by discovery index.
    pub fn pending_columns(&self, table: TableId) -> Result<Vec<(u32, Vec<u8>)>> {
        let prefix = keys::partition_prefix(keys::TAG_COLUMN, table);
        let mut out = Vec::new();
        for item in
            self.db.iterator_cf(self.cf(CF_META), IteratorMode::From(&prefix, Direction::Forward))
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
            batch.delete_cf(self.cf(CF_META), keys::partition_key(keys::TAG_COLUMN, table, i));
        }
        self.write_synced(batch)
    }

    /// Location of a table's current Iceberg metadata file.
    pub fn catalog_pointer(&self, table: &str) -> Result<Option<String>> {
        self.db
            .get_cf(self.cf(CF_META), keys::pointer_key(table))?
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
        batch.put_cf(self.cf(CF_META), keys::pointer_key(table), location.as_bytes());
        self.write_synced(batch)
    }

    /// Writes with an fsync of the WAL whatever the durability mode: for the rare,
    /// decisive writes of the flusher and catalog.
    fn write_synced(&self, batch: WriteBatch) -> Result<()> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    /// The record of `key` if it was first written within the idempotency window.
    pub fn idempotency_lookup(
        &self,
        table: TableId,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<IdemRecord>> {
        let Some(v) = self.db.get_pinned_cf(self.cf(CF_IDEM), keys::idem_key(table, key))? else {
            return Ok(None);
        };
        let record =
            IdemRecord::decode(&v).ok_or_else(|| corrupt(CF_IDEM, "idempotency record"))?;
        Ok((record.accepted_ms.saturating_add(self.idempotency_window_ms) >= now_ms)
            .then_some(record))
    }

    pub fn batch(&self) -> HotBatch<'_> {
        HotBatch { store: self, batch: WriteBatch::default(), tables: BTreeSet::new() }
    }

    /// Applies `batch` atomically with the durability mode's write options.
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        let mut opts = WriteOptions::default();
        match self.durability {
            Durability::Wal => {}
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
            Durability::Wal | Durability::Fsync => self.db.flush_wal(true)?,
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

/// A `WriteBatch` being assembled against the store's column families.
pub struct HotBatch<'a> {
    store: &'a HotStore,
    batch: WriteBatch,
    /// Tables whose high-water marks this batch moves.
    tables: BTreeSet<TableId>,
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
