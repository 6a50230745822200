//! The hot store: RocksDB with its write-ahead log, holding every acknowledged event until
//! the flusher has committed it to Iceberg. See [`keys`] for the layout.
//!
//! Writes go through [`HotStore::write`], which applies one `WriteBatch` with the options of
//! the configured [`Durability`]; a write that returns `Ok` is as durable as the mode
//! promises, so callers may acknowledge it.

mod batch;
pub mod error;
mod generations;
mod idempotency;
pub mod keys;
pub mod lease;
pub mod logged;
mod meta;
mod options;
pub mod record;
mod registry;
mod run;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rocksdb::{
    BoundColumnFamily, DB, DBRawIteratorWithThreadMode, DBWithThreadMode, MultiThreaded, Options,
    ReadOptions, WriteBatch, WriteOptions,
};
use zombi_shared::config::Durability;

pub use batch::HotBatch;
pub use error::{HotError, Result};
use generations::{Bounds, Generation, Generations};
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

/// RocksDB with column families created and dropped while it runs (the generations).
type Db = DBWithThreadMode<MultiThreaded>;

pub struct HotStore {
    db: Db,
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
    /// The column families events live in, oldest first (see [`generations`]).
    generations: RwLock<Generations>,
    /// Deletion floors by (table, partition), as persisted (`F` keys): scans start at them
    /// and generations below them are dropped.
    floors: Mutex<HashMap<(TableId, u32), u64>>,
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
        let (db_opts, cfs) = options::open_options(window_ms, durability);
        let generations = existing_generations(&db_opts, path);
        let cfs = cfs.into_iter().chain(generations.iter().map(|n| {
            rocksdb::ColumnFamilyDescriptor::new(generations::name_of(*n), options::events())
        }));
        let db = Db::open_cf_descriptors(&db_opts, path, cfs)?;
        Self::with_db(db, durability, window_ms, &generations, false)
    }

    /// Opens an existing store read-only (for `zombi-node dump`); safe while a node runs.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        let opts = Options::default();
        let mut attempts = 0;
        loop {
            let generations = existing_generations(&opts, path);
            let names = [CF_META.to_owned(), CF_IDEM.to_owned()]
                .into_iter()
                .chain(generations.iter().map(|n| generations::name_of(*n)));
            match Db::open_cf_for_read_only(&opts, path, names, false) {
                Ok(db) => return Self::with_db(db, Durability::Wal, 0, &generations, true),
                // The running node dropped or added a generation between the listing and
                // the open: list again.
                Err(_) if attempts < 3 && existing_generations(&opts, path) != generations => {
                    attempts += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn with_db(
        db: Db,
        durability: Durability,
        window_ms: i64,
        numbers: &[u64],
        read_only: bool,
    ) -> Result<Self> {
        let store = HotStore {
            db,
            durability,
            idempotency_window_ms: window_ms,
            tables: Mutex::new(BTreeMap::new()),
            registering: Mutex::new(()),
            registered: tokio::sync::Notify::new(),
            activity: Mutex::default(),
            log: OnceLock::new(),
            generations: RwLock::default(),
            floors: Mutex::default(),
        };
        let registry = store.read_registry()?;
        let mut floors = HashMap::new();
        for &id in registry.values() {
            floors.extend(store.floors(id)?.into_iter().map(|(p, f)| ((id, p), f)));
        }
        *store.tables.lock().unwrap() = registry;
        *store.floors.lock().unwrap() = floors;
        let mut list = Vec::with_capacity(numbers.len().max(1));
        for &n in numbers {
            let (bounds, bytes) = store.read_bounds(&generations::name_of(n))?;
            list.push(Arc::new(Generation::new(n, bounds, bytes)));
        }
        if list.is_empty() && read_only {
            // A store that never held an event: nothing to read, nothing to create.
            list.push(Arc::new(Generation::new(0, Bounds::new(), 0)));
        }
        let empty = list.is_empty();
        store.generations.write().unwrap().list = list;
        if empty {
            store.create_generation(&mut store.generations.write().unwrap(), 0)?;
        }
        if !read_only {
            // Generations whose events were all deleted before a restart go now.
            store.reclaim()?;
        }
        Ok(store)
    }

    /// Sequences and bytes of the events of one generation, read from its keys: one seek
    /// to each (table, partition)'s first and last event.
    fn read_bounds(&self, name: &str) -> Result<(Bounds, u64)> {
        let mut bounds = Bounds::new();
        let Some(cf) = self.db.cf_handle(name) else { return Ok((bounds, 0)) };
        let mut it = self.db.raw_iterator_cf(&cf);
        it.seek_to_first();
        while let Some(key) = it.key() {
            let (t, p, first) =
                keys::parse_event_key(key).ok_or_else(|| corrupt(CF_EVENTS, "key"))?;
            it.seek_for_prev(keys::event_key(t, p, u64::MAX));
            let (_, _, last_run) = it
                .key()
                .and_then(keys::parse_event_key)
                .ok_or_else(|| corrupt(CF_EVENTS, "key"))?;
            let count = it
                .value()
                .and_then(run::count)
                .filter(|&n| n > 0)
                .ok_or_else(|| corrupt(CF_EVENTS, "run of events"))?;
            generations::widen(&mut bounds, t, p, first);
            generations::widen(&mut bounds, t, p, last_run + count - 1);
            it.next();
        }
        it.status()?;
        // Approximate, only for sealing: what RocksDB reports the generation holds.
        let bytes = self
            .db
            .property_int_value_cf(&cf, "rocksdb.estimate-live-data-size")?
            .unwrap_or(0)
            + self.db.property_int_value_cf(&cf, "rocksdb.cur-size-all-mem-tables")?.unwrap_or(0);
        Ok((bounds, bytes))
    }

    /// Adds generation `number` as the newest, the one writes go to.
    fn create_generation(&self, gens: &mut Generations, number: u64) -> Result<()> {
        let name = generations::name_of(number);
        if self.db.cf_handle(&name).is_none() {
            self.db.create_cf(&name, &options::events())?;
        }
        gens.list.push(Arc::new(Generation::new(number, Bounds::new(), 0)));
        ::metrics::gauge!(crate::metrics::HOT_GENERATIONS).set(gens.list.len() as f64);
        Ok(())
    }

    /// Starts a new generation if the newest one is full (see [`Generation::is_full`]).
    fn seal_full_generation(&self) -> Result<()> {
        let mut gens = self.generations.write().unwrap();
        if gens.current_is_full() {
            let next = gens.current().number + 1;
            self.create_generation(&mut gens, next)?;
        }
        Ok(())
    }

    /// Seals generations at `limits` instead of the defaults.
    #[cfg(test)]
    pub(crate) fn set_generation_limits(&self, limits: generations::Limits) {
        self.generations.write().unwrap().limits = limits;
    }

    /// Drops every sealed generation whose events all lie below their floors (after
    /// sealing the newest one if it is full, so that an idle store's last events leave too).
    fn reclaim(&self) -> Result<()> {
        self.seal_full_generation()?;
        let mut gens = self.generations.write().unwrap();
        let dropped = {
            let floors = self.floors.lock().unwrap();
            gens.droppable(|t, p| floors.get(&(t, p)).copied().unwrap_or(0))
        };
        for g in dropped {
            self.db.drop_cf(&g.name())?;
            gens.list.retain(|kept| kept.number != g.number);
            tracing::debug!(generation = g.number, "dropped a generation of flushed events");
        }
        ::metrics::gauge!(crate::metrics::HOT_GENERATIONS).set(gens.list.len() as f64);
        Ok(())
    }

    fn cf(&self, name: &'static str) -> Arc<BoundColumnFamily<'_>> {
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
            Durability::None => {
                let names: Vec<String> = {
                    let gens = self.generations.read().unwrap();
                    gens.list.iter().map(|g| g.name()).collect()
                };
                let mut cfs = vec![self.cf(CF_META), self.cf(CF_IDEM)];
                cfs.extend(names.iter().filter_map(|n| self.db.cf_handle(n)));
                let refs: Vec<_> = cfs.iter().collect();
                self.db.flush_cfs_opt(&refs, &rocksdb::FlushOptions::default())?
            }
            Durability::Wal | Durability::Fsync | Durability::Object => self.db.flush_wal(true)?,
        }
        Ok(())
    }

    /// Events of one (table, partition) with `from <= sequence < to`, in sequence order,
    /// from the partition's deletion floor at the lowest.
    pub fn scan(&self, table: TableId, partition: u32, from: u64, to: u64) -> Scan<'_> {
        let from = from.max(self.floor(table, partition));
        // Held until the scan ends, so that none of them is dropped under it.
        let held: Vec<Arc<Generation>> = {
            let gens = self.generations.read().unwrap();
            gens.list.iter().filter(|g| g.overlaps(table, partition, from, to)).cloned().collect()
        };
        let start = keys::event_key(table, partition, from);
        let upper = keys::event_key(table, partition, to);
        let iters = held
            .iter()
            .filter_map(|g| self.db.cf_handle(&g.name()))
            .map(|cf| {
                let mut opts = ReadOptions::default();
                opts.set_iterate_upper_bound(upper.to_vec());
                let mut it = self.db.raw_iterator_cf_opt(&cf, opts);
                // The run that holds `from` may start before it.
                it.seek_for_prev(start);
                let here = |k: &[u8]| {
                    keys::parse_event_key(k).is_some_and(|(t, p, _)| (t, p) == (table, partition))
                };
                if !it.key().is_some_and(here) {
                    it.seek(start);
                }
                it
            })
            .collect();
        Scan { _held: held, iters, offset: None, next: from, to }
    }

    /// The deletion floor of one partition: events below it are gone.
    fn floor(&self, table: TableId, partition: u32) -> u64 {
        self.floors.lock().unwrap().get(&(table, partition)).copied().unwrap_or(0)
    }
}

/// The events of one partition in a sequence range ([`HotStore::scan`]): the runs of each
/// generation that holds some, oldest generation first.
pub struct Scan<'a> {
    /// Not dropped while the scan reads them.
    _held: Vec<Arc<Generation>>,
    /// One iterator per generation, each over the keys of the range.
    iters: VecDeque<DBRawIteratorWithThreadMode<'a, Db>>,
    /// Within the value the first iterator is at, where the record of sequence `next`
    /// starts (`None` before its first record).
    offset: Option<usize>,
    /// The lowest sequence still to yield: a sequence a newer generation holds again (see
    /// [`generations`]) counts once.
    next: u64,
    to: u64,
}

impl Iterator for Scan<'_> {
    type Item = Result<(u64, StoredEvent)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let it = self.iters.front_mut()?;
            let (Some(key), Some(value)) = (it.key(), it.value()) else {
                let status = it.status();
                self.iters.pop_front();
                self.offset = None;
                match status {
                    Ok(()) => continue,
                    Err(e) => return Some(Err(e.into())),
                }
            };
            let read = (|| {
                let (_, _, first) =
                    keys::parse_event_key(key).ok_or_else(|| corrupt(CF_EVENTS, "key"))?;
                let (mut seq, mut records) = match self.offset {
                    Some(offset) => (self.next, run::Records::resume(value, offset)),
                    None => {
                        run::count(value).ok_or_else(|| corrupt(CF_EVENTS, "run of events"))?;
                        (first, run::records(value))
                    }
                };
                while seq < self.to {
                    let Some(record) = records.next() else { break };
                    let record = record.ok_or_else(|| corrupt(CF_EVENTS, "run of events"))?;
                    let this = seq;
                    seq += 1;
                    // Records below the range (or already read) cost only their length.
                    if this >= self.next {
                        let event =
                            record::decode(record).ok_or_else(|| corrupt(CF_EVENTS, "value"))?;
                        return Ok(Some((this, event, records.offset())));
                    }
                }
                Ok(None)
            })();
            match read {
                Ok(Some((seq, event, offset))) => {
                    self.next = seq + 1;
                    self.offset = Some(offset);
                    return Some(Ok((seq, event)));
                }
                Ok(None) => {
                    // This value has nothing more in the range: on to the next key.
                    it.next();
                    self.offset = None;
                }
                Err(e) => {
                    self.iters.pop_front();
                    self.offset = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// The generations a store at `path` has, oldest first (none for a new store).
fn existing_generations(opts: &Options, path: &Path) -> Vec<u64> {
    let mut numbers: Vec<u64> = DB::list_cf(opts, path)
        .unwrap_or_default()
        .iter()
        .filter_map(|name| generations::number_of(name))
        .collect();
    numbers.sort_unstable();
    numbers
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
            batch.put_event(a, 3, 0, |out| {
                record::encode_into(out, 1, 2, Some("k"), &payload, &record::Role::Event)
            });
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

    fn put_events(store: &HotStore, table: TableId, sequences: std::ops::Range<u64>) {
        let mut batch = store.batch();
        for seq in sequences {
            let payload = Payload::Json(format!("{{\"n\":{seq},\"pad\":\"{}\"}}", "x".repeat(100)));
            batch.put_event(table, 0, seq, |out| {
                record::encode_into(out, seq as i64, 0, None, &payload, &Role::Event)
            });
        }
        batch.commit().unwrap();
    }

    fn sequences(store: &HotStore, table: TableId) -> Vec<u64> {
        store.scan(table, 0, 0, u64::MAX).map(|e| e.unwrap().0).collect()
    }

    fn generation_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = DB::list_cf(&Options::default(), dir)
            .unwrap()
            .into_iter()
            .filter(|n| generations::number_of(n).is_some())
            .collect();
        names.sort_by_key(|n| generations::number_of(n));
        names
    }

    /// Seals a generation after every batch of ten events.
    const SMALL: generations::Limits =
        generations::Limits { bytes: 1024, age: std::time::Duration::from_secs(3600) };

    /// A store at `dir` that seals its generations at [`SMALL`].
    fn small_store(dir: &Path) -> HotStore {
        let store = HotStore::open(dir, Durability::Wal, 60).unwrap();
        store.set_generation_limits(SMALL);
        store
    }

    #[test]
    fn deleted_events_leave_with_their_generation() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = small_store(dir.path());
            let a = store.ensure_table("a").unwrap();
            for from in [0, 10, 20] {
                put_events(&store, a, from..from + 10);
            }
            // Three full generations and the empty newest one.
            assert_eq!(
                generation_names(dir.path()),
                ["events", "events.1", "events.2", "events.3"]
            );
            assert_eq!(sequences(&store, a), (0..30).collect::<Vec<_>>());
            assert_eq!(store.scan(a, 0, 12, 25).count(), 13);

            // A floor inside the second generation: the first goes, the second stays.
            store.delete_below(a, 0, 0, 15).unwrap();
            assert_eq!(sequences(&store, a), (15..30).collect::<Vec<_>>());
            assert_eq!(generation_names(dir.path()), ["events.1", "events.2", "events.3"]);

            // A scan in progress holds its generations until it ends.
            let mut scan = store.scan(a, 0, 15, 30);
            store.delete_below(a, 0, 15, 30).unwrap();
            assert_eq!(generation_names(dir.path()), ["events.1", "events.2", "events.3"]);
            assert_eq!(scan.next().unwrap().unwrap().0, 15);
            drop(scan);
            // (The scan started before the floor moved; a new one starts at the floor.)
            assert!(sequences(&store, a).is_empty());
            put_events(&store, a, 30..32);
            store.delete_below(a, 0, 30, 30).unwrap();
            assert_eq!(generation_names(dir.path()), ["events.3"]);
        }
        // Reopened: the generation numbers go on, and the floor holds.
        let store = small_store(dir.path());
        let a = store.table_id("a").unwrap();
        assert_eq!(sequences(&store, a), [30, 31]);
        put_events(&store, a, 32..42);
        assert_eq!(generation_names(dir.path()), ["events.3", "events.4"]);
        assert_eq!(sequences(&store, a), (30..42).collect::<Vec<_>>());
    }

    #[test]
    fn a_restart_drops_generations_deleted_before_it_and_reads_the_bounds_of_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = {
            let store = small_store(dir.path());
            let (a, b) = (store.ensure_table("a").unwrap(), store.ensure_table("b").unwrap());
            put_events(&store, a, 0..10);
            put_events(&store, b, 0..10);
            put_events(&store, a, 10..20);
            // `a`'s first generation could go, but a batch is being built on the newest.
            (a, b)
        };
        let store = HotStore::open(dir.path(), Durability::Wal, 60).unwrap();
        assert_eq!(sequences(&store, a), (0..20).collect::<Vec<_>>());
        assert_eq!(sequences(&store, b), (0..10).collect::<Vec<_>>());
        // The bounds read back at open decide what is dropped: `b`'s generation stays
        // until `b` is deleted too.
        store.delete_below(a, 0, 0, 20).unwrap();
        assert_eq!(generation_names(dir.path()), ["events.1", "events.3"]);
        store.delete_below(b, 0, 0, 10).unwrap();
        assert_eq!(generation_names(dir.path()), ["events.3"]);
        drop(store);
        let store = HotStore::open_read_only(dir.path()).unwrap();
        assert!(sequences(&store, a).is_empty() && sequences(&store, b).is_empty());
    }

    #[test]
    fn an_event_written_again_in_a_newer_generation_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_store(dir.path());
        let a = store.ensure_table("a").unwrap();
        put_events(&store, a, 0..10);
        // As a log record applied again at recovery does (`durability = "object"`).
        put_events(&store, a, 5..15);
        assert_eq!(generation_names(dir.path()).len(), 3);
        assert_eq!(sequences(&store, a), (0..15).collect::<Vec<_>>());
        assert_eq!(
            store.scan(a, 0, 7, 12).map(|e| e.unwrap().0).collect::<Vec<_>>(),
            [7, 8, 9, 10, 11]
        );
    }

    /// The keys of the newest generation: one per run.
    fn run_keys(store: &HotStore) -> Vec<u64> {
        let name = store.generations.read().unwrap().current().name();
        let cf = store.db.cf_handle(&name).unwrap();
        let keys: Vec<_> = store.db.iterator_cf(&cf, rocksdb::IteratorMode::Start).collect();
        keys.into_iter().map(|kv| keys::parse_event_key(&kv.unwrap().0).unwrap().2).collect()
    }

    #[test]
    fn a_batch_stores_each_partitions_consecutive_events_as_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = HotStore::open(dir.path(), Durability::Wal, 60).unwrap();
        let a = store.ensure_table("a").unwrap();
        // 1,000 events of ~140 bytes: three runs of at most 64 KiB.
        put_events(&store, a, 0..1000);
        assert_eq!(run_keys(&store).len(), 3, "{:?}", run_keys(&store));
        assert_eq!(sequences(&store, a), (0..1000).collect::<Vec<_>>());
        // Ranges that start and end inside runs, and a single sequence.
        let read =
            |from, to| -> Vec<u64> { store.scan(a, 0, from, to).map(|e| e.unwrap().0).collect() };
        assert_eq!(read(490, 510), (490..510).collect::<Vec<_>>());
        assert_eq!(read(999, 1000), [999]);
        assert_eq!(read(1000, 2000), Vec::<u64>::new());
        let (seq, event) = store.scan(a, 0, 777, 778).next().unwrap().unwrap();
        assert_eq!((seq, event.timestamp_ms), (777, 777));

        // Sequences that do not follow each other start a new run.
        let mut batch = store.batch();
        for seq in [1000, 1001, 1005, 1006] {
            let payload = Payload::Json(format!("{seq}"));
            batch.put_event(a, 0, seq, |out| {
                record::encode_into(out, seq as i64, 0, None, &payload, &Role::Event)
            });
        }
        batch.commit().unwrap();
        assert_eq!(read(999, 1010), [999, 1000, 1001, 1005, 1006]);
        assert_eq!(read(1002, 1010), [1005, 1006]);
    }

    #[test]
    fn events_stored_one_per_key_before_runs_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let a = {
            let store = HotStore::open(dir.path(), Durability::Wal, 60).unwrap();
            let a = store.ensure_table("a").unwrap();
            // As a store from before runs holds them: one record per key.
            let cf = store.db.cf_handle(CF_EVENTS).unwrap();
            for seq in 0..5 {
                let payload = Payload::Json(format!("{seq}"));
                let value = record::encode(seq as i64, 0, None, &payload, &Role::Event);
                store.db.put_cf(&cf, keys::event_key(a, 0, seq), value).unwrap();
            }
            a
        };
        let store = HotStore::open(dir.path(), Durability::Wal, 60).unwrap();
        // The bounds read at open cover them, and runs follow them.
        assert!(store.generations.read().unwrap().list[0].overlaps(a, 0, 4, 5));
        put_events(&store, a, 5..8);
        assert_eq!(sequences(&store, a), (0..8).collect::<Vec<_>>());
        let read: Vec<_> = store.scan(a, 0, 3, 6).map(|e| e.unwrap().0).collect();
        assert_eq!(read, [3, 4, 5]);
    }

    #[test]
    fn a_malformed_run_is_an_error_not_a_shorter_scan() {
        let dir = tempfile::tempdir().unwrap();
        let store = HotStore::open(dir.path(), Durability::Wal, 60).unwrap();
        let a = store.ensure_table("a").unwrap();
        put_events(&store, a, 0..3);
        let cf = store.db.cf_handle(CF_EVENTS).unwrap();
        let key = keys::event_key(a, 0, 0);
        let value = store.db.get_cf(&cf, key).unwrap().unwrap();
        store.db.put_cf(&cf, key, &value[..value.len() - 1]).unwrap();
        let read: Vec<_> = store.scan(a, 0, 0, 3).collect();
        assert_eq!(read.len(), 3);
        assert!(read[..2].iter().all(Result::is_ok));
        assert!(matches!(read[2], Err(HotError::Corrupt { .. })), "{:?}", read[2]);
    }
}
