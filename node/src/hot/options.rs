//! The RocksDB options of the hot store: its column families (`meta`, `idem` and the
//! events' generations) and how each is tuned
//! (see `docs/architecture.md`, RocksDB layout).

use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, DBCompressionType, Options,
    compaction_filter::Decision,
};

use super::idempotency::IdemRecord;
use zombi_shared::config::Durability;

use super::generations::GENERATION_BYTES;
use super::keys::{CF_IDEM, CF_META};
use super::now_ms;

/// The database options and the column families other than the events' generations
/// (see [`events`]), for an idempotency window of `window_ms`.
pub(super) fn open_options(
    window_ms: i64,
    durability: Durability,
) -> (Options, Vec<ColumnFamilyDescriptor>) {
    let mut db_opts = Options::default();
    db_opts.create_if_missing(true);
    db_opts.create_missing_column_families(true);
    db_opts.set_keep_log_file_num(4);
    // Small machines: a couple of background jobs are plenty.
    db_opts.set_max_background_jobs(2);
    // Without a WAL (durability `none`), column families reach disk together, so that
    // events, high-water marks and idempotency records can never disagree after a crash.
    // With a WAL, recovery replays it whole and each generation flushes on its own: a
    // full memtable of the newest one does not push the older ones' (soon dropped) events
    // to disk with it.
    db_opts.set_atomic_flush(durability == Durability::None);
    // All memtables together, most of them events, stay under this: over it, RocksDB
    // writes the largest to a file. Below it, events whose generation is dropped before
    // the budget fills never reach a file at all.
    db_opts.set_db_write_buffer_size(MEMTABLE_BUDGET);

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
        ColumnFamilyDescriptor::new(CF_META, Options::default()),
        ColumnFamilyDescriptor::new(CF_IDEM, idem),
    ];
    (db_opts, cfs)
}

/// What every memtable of the store may hold together.
const MEMTABLE_BUDGET: usize = 128 << 20;

/// The options of one generation of events ([`super::generations`]).
pub(super) fn events() -> Options {
    let mut events = Options::default();
    // Events live seconds to minutes and leave with their generation, which is dropped
    // whole: nothing is ever compacted, so nothing is compacted twice or compressed.
    // (Before generations, RocksDB's compactions of events about to be deleted cost the
    // node about a quarter of its CPU under bulk load: docs/benchmarks.md.)
    events.set_disable_auto_compactions(true);
    events.set_compression_type(DBCompressionType::None);
    // One memtable holds a whole generation, so a generation dropped before the memtable
    // budget fills is never written to a file.
    events.set_write_buffer_size(GENERATION_BYTES as usize + (8 << 20));
    // A generation's files are never compacted, so their count must not stall writes: a
    // stalled flusher holds generations (each of a few files) until it recovers.
    events.set_level_zero_slowdown_writes_trigger(1 << 20);
    events.set_level_zero_stop_writes_trigger(1 << 20);
    // No block cache: events are read once (by the flusher, and by hot reads of recent
    // data, mostly still in memtables), and RocksDB's default gives each column family a
    // cache of its own, which across tens of generations held gigabytes.
    let mut table = BlockBasedOptions::default();
    table.disable_cache();
    events.set_block_based_table_factory(&table);
    events
}
