//! The RocksDB options of the hot store: its three column families and how each is tuned
//! (see `docs/architecture.md`, RocksDB layout).

use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, DBCompressionType, Options,
    compaction_filter::Decision,
};

use super::idempotency::IdemRecord;
use super::keys::{CF_EVENTS, CF_IDEM, CF_META};
use super::now_ms;

/// The database options and the column families, for an idempotency window of
/// `window_ms`.
pub(super) fn open_options(window_ms: i64) -> (Options, Vec<ColumnFamilyDescriptor>) {
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
    (db_opts, cfs)
}
