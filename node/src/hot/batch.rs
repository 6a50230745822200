//! One `WriteBatch` of the combiner: events, high-water marks, byte counters, idempotency
//! records, inferred columns and replay cursors, applied atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rocksdb::{BoundColumnFamily, WriteBatch};

use super::generations::{self, Bounds, Generation};
use super::idempotency::IdemRecord;
use super::keys::{self, CF_EVENTS, CF_IDEM, CF_META, TableId};
use super::logged::Recorder;
use super::run::RunWriter;
use super::{HotStore, Result};
use zombi_shared::config::Durability;

impl HotStore {
    pub fn batch(&self) -> HotBatch<'_> {
        HotBatch {
            store: self,
            batch: WriteBatch::default(),
            tables: BTreeSet::new(),
            log: (self.durability == Durability::Object).then(Recorder::default),
            events: GenerationWrite::new(self),
            runs: BTreeMap::new(),
        }
    }
}

/// The events one write adds to the newest generation, which it holds until written so
/// that the generation is not dropped first (see [`super::generations`]).
pub(super) struct GenerationWrite<'a> {
    store: &'a HotStore,
    generation: Arc<Generation>,
    cf: Arc<BoundColumnFamily<'a>>,
    /// The sequences and bytes of the events put so far.
    added: Bounds,
    bytes: u64,
}

impl<'a> GenerationWrite<'a> {
    pub(super) fn new(store: &'a HotStore) -> Self {
        let generation = store.generations.read().unwrap().current().clone();
        let cf = store
            .db
            .cf_handle(&generation.name())
            .expect("a held generation has its column family");
        GenerationWrite { store, generation, cf, added: Bounds::new(), bytes: 0 }
    }

    /// Adds the events `[first, end)` of (`table`, `partition`), stored under `key` as
    /// `value` (see [`super::run`]), to `batch`.
    pub(super) fn put(
        &mut self,
        batch: &mut WriteBatch,
        (table, partition, first, end): (TableId, u32, u64, u64),
        key: &[u8],
        value: &[u8],
    ) {
        batch.put_cf(&self.cf, key, value);
        generations::widen(&mut self.added, table, partition, first);
        generations::widen(&mut self.added, table, partition, end - 1);
        self.bytes += (key.len() + value.len()) as u64;
    }

    /// Records the events of the write that just succeeded in their generation, and
    /// starts a new one if it is now full.
    pub(super) fn written(self) {
        if self.added.is_empty() {
            return;
        }
        self.generation.record(&self.added, self.bytes);
        let limits = self.store.generations.read().unwrap().limits;
        if self.generation.is_full(limits) {
            drop(self.generation);
            // The write is done and durable: a failure to start the next generation only
            // means the next writes go on filling this one.
            if let Err(e) = self.store.seal_full_generation() {
                tracing::warn!(error = %zombi_shared::error_chain(&e), "cannot start a new generation of events");
            }
        }
    }
}

/// A `WriteBatch` being assembled against the store's column families (and, with
/// `durability = "object"`, recorded for the log: see [`super::logged`]).
pub struct HotBatch<'a> {
    pub(super) store: &'a HotStore,
    pub(super) batch: WriteBatch,
    /// Tables whose high-water marks this batch moves.
    pub(super) tables: BTreeSet<TableId>,
    log: Option<Recorder>,
    events: GenerationWrite<'a>,
    /// The runs being filled, one per (table, partition) this batch writes events to.
    runs: BTreeMap<(TableId, u32), RunWriter>,
}

impl HotBatch<'_> {
    fn put(&mut self, cf: &'static str, key: &[u8], value: &[u8]) {
        self.batch.put_cf(&self.store.cf(cf), key, value);
        if let Some(log) = &mut self.log {
            log.op(cf, key, value);
        }
    }

    /// Stages the record (see [`super::record`]) of event `sequence` of (`table`,
    /// `partition`), which `encode` appends to the buffer it is given. Consecutive
    /// sequences of a partition are stored together, as one run ([`super::run`]).
    pub fn put_event(
        &mut self,
        table: TableId,
        partition: u32,
        sequence: u64,
        encode: impl FnOnce(&mut Vec<u8>),
    ) {
        let run = self.runs.entry((table, partition)).or_insert_with(|| RunWriter::new(sequence));
        if run.next() != sequence || run.is_full() {
            let done = std::mem::replace(run, RunWriter::new(sequence));
            stage_run(&mut self.batch, &mut self.events, &mut self.log, (table, partition), done);
        }
        run.push(encode);
    }

    pub fn put_high_water_mark(&mut self, table: TableId, partition: u32, next: u64) {
        self.tables.insert(table);
        self.put(CF_META, &keys::hwm_key(table, partition), &keys::u64_value(next));
    }

    pub fn put_bytes(&mut self, table: TableId, bytes: u64) {
        self.put(CF_META, &keys::bytes_key(table), &keys::u64_value(bytes));
    }

    /// Moves a dead-letter table's replay cursor (see [`HotStore::replay_cursors`]).
    pub fn put_replay_cursor(&mut self, table: TableId, partition: u32, next: u64) {
        let key = keys::partition_key(keys::TAG_REPLAYED, table, partition);
        self.put(CF_META, &key, &keys::u64_value(next));
    }

    /// Records a column inferred for `table` (see [`HotStore::pending_columns`]).
    pub fn put_pending_column(&mut self, table: TableId, index: u32, column: &[u8]) {
        self.put(CF_META, &keys::partition_key(keys::TAG_COLUMN, table, index), column);
    }

    pub fn put_idempotency(&mut self, table: TableId, key: &str, record: IdemRecord) {
        self.put(CF_IDEM, &keys::idem_key(table, key), &record.encode());
    }

    /// Registers a table name under an id (see [`HotStore::ensure_table`]).
    pub(super) fn put_table(&mut self, name: &str, id: TableId) {
        self.put(CF_META, &keys::table_key(name), &id.to_be_bytes());
    }

    /// Applies the batch with the durability mode's write options.
    pub fn commit(self) -> Result<()> {
        self.commit_with(false)
    }

    /// Applies the batch; `synced`: with an fsync of the WAL whatever the mode.
    pub(super) fn commit_with(mut self, synced: bool) -> Result<()> {
        for (at, run) in std::mem::take(&mut self.runs) {
            stage_run(&mut self.batch, &mut self.events, &mut self.log, at, run);
        }
        self.store.write_logged(self.batch, self.log, synced)?;
        self.events.written();
        let mut activity = self.store.activity.lock().unwrap();
        for t in self.tables {
            *activity.entry(t).or_default() += 1;
        }
        Ok(())
    }
}

/// Adds a filled run of (table, partition) to the batch (and to the log's record).
fn stage_run(
    batch: &mut WriteBatch,
    events: &mut GenerationWrite<'_>,
    log: &mut Option<Recorder>,
    (table, partition): (TableId, u32),
    run: RunWriter,
) {
    let Some((first, count, value)) = run.finish() else { return };
    let key = keys::event_key(table, partition, first);
    events.put(batch, (table, partition, first, first + u64::from(count)), &key, &value);
    if let Some(log) = log {
        log.op(CF_EVENTS, &key, &value);
    }
}
