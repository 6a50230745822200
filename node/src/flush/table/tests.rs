//! One table's flusher without a node around it: the hot store in memory
//! ([`MemoryStore`]), the catalog's pointers in memory, its metadata and data files in a
//! temporary local warehouse. The cases the crash tests cover
//! end to end, step by step: every event committed once, the snapshot deciding at start-up,
//! a commit of unknown outcome settled without a second append, retention.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt as _;
use tokio::sync::{Semaphore, watch};
use zombi_shared::config::NodeConfig;
use zombi_shared::wire::Payload;

use super::{TableFlusher, TableStatus};
use crate::catalog::ZombiCatalog;
use crate::catalog::pointers::MemoryPointers;
use crate::flush::store::MemoryStore;
use crate::flush::{Ctx, FlushOutcome};
use crate::hot::lease::Leases;
use crate::hot::{Role, StoredEvent, TableId};
use crate::schema::summary;

const TABLE: &str = "clicks";

struct Fixture {
    ctx: Arc<Ctx>,
    store: Arc<MemoryStore>,
    id: TableId,
    _warehouse: tempfile::TempDir,
}

fn fixture(config: NodeConfig) -> Fixture {
    let warehouse = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let id = store.ensure_table(TABLE);
    let location = format!("file://{}", warehouse.path().display());
    let io = crate::catalog::warehouse::file_io(&config);
    let pointers = Arc::new(MemoryPointers::default());
    let catalog = Arc::new(ZombiCatalog::new(pointers, io, None, "zombi", &location));
    let ctx = Arc::new(Ctx {
        store: store.clone(),
        catalog,
        config: Arc::new(config),
        leases: Arc::new(Leases::default()),
        permits: Semaphore::new(1),
    });
    Fixture { ctx, store, id, _warehouse: warehouse }
}

impl Fixture {
    fn flusher(&self) -> TableFlusher {
        self.publishing_flusher().0
    }

    /// A flusher and what it publishes after its commits.
    fn publishing_flusher(&self) -> (TableFlusher, watch::Receiver<FlushOutcome>) {
        let status = Arc::new(Mutex::new(TableStatus::default()));
        let (publish, committed) = watch::channel(FlushOutcome::default());
        let flusher = TableFlusher::new(
            self.ctx.clone(),
            TABLE.to_owned(),
            self.id,
            status,
            Arc::new(publish),
        );
        (flusher, committed)
    }

    /// Acknowledges `n` more events in `partition`, as the combiner writes them.
    fn write(&self, partition: u32, n: u64) {
        let events = (0..n)
            .map(|i| StoredEvent {
                timestamp_ms: 1_767_225_600_000 + i as i64,
                ingest_ms: 1,
                idempotency_key: None,
                payload: Payload::Json(format!("{{\"n\":{i}}}")),
                role: Role::Event,
            })
            .collect();
        self.store.append(self.id, partition, events);
    }

    /// Rows in the table's current snapshot, and its watermark map.
    async fn committed(&self) -> (usize, BTreeMap<u32, u64>) {
        let table = self.ctx.catalog.load_or_create(TABLE).await.unwrap();
        let Some(snapshot) = table.metadata().current_snapshot() else {
            return (0, BTreeMap::new());
        };
        let watermarks = summary::watermarks(&snapshot.summary().additional_properties);
        let scan = table.scan().select_all().build().unwrap();
        let batches: Vec<_> = scan.to_arrow().await.unwrap().try_collect().await.unwrap();
        (batches.iter().map(|b| b.num_rows()).sum(), watermarks)
    }
}

fn map(entries: &[(u32, u64)]) -> BTreeMap<u32, u64> {
    entries.iter().copied().collect()
}

#[tokio::test]
async fn a_flush_commits_every_acknowledged_event_once_with_the_complete_watermark_map() {
    let f = fixture(NodeConfig::default());
    f.write(0, 5);
    f.write(1, 3);
    let mut flusher = f.flusher();
    flusher.init().await.unwrap();
    flusher.cycle(true).await.unwrap();
    assert_eq!(f.committed().await, (8, map(&[(0, 5), (1, 3)])));
    assert_eq!(f.ctx.store.watermarks(f.id).unwrap(), map(&[(0, 5), (1, 3)]));
    // Nothing new: nothing appended; new events: only they are.
    flusher.cycle(true).await.unwrap();
    f.write(1, 2);
    flusher.cycle(true).await.unwrap();
    assert_eq!(f.committed().await, (10, map(&[(0, 5), (1, 5)])));
}

#[tokio::test]
async fn the_committed_state_is_published_at_start_and_after_each_commit_only() {
    let f = fixture(NodeConfig::default());
    f.write(0, 3);
    let (mut flusher, committed) = f.publishing_flusher();
    flusher.init().await.unwrap();
    assert_eq!(committed.borrow().watermarks, map(&[]));
    assert_eq!(committed.borrow().snapshot_id, None);
    flusher.cycle(true).await.unwrap();
    let first = committed.borrow().clone();
    assert_eq!(first.watermarks, map(&[(0, 3)]));
    assert!(first.snapshot_id.is_some());
    // Acknowledged but not committed yet: nothing new is published.
    f.write(0, 2);
    f.write(1, 1);
    assert_eq!(committed.borrow().watermarks, map(&[(0, 3)]));
    flusher.cycle(true).await.unwrap();
    let second = committed.borrow().clone();
    assert_eq!(second.watermarks, map(&[(0, 5), (1, 1)]));
    assert_ne!(second.snapshot_id, first.snapshot_id);
    // A restarted flusher publishes what the snapshot holds.
    let (mut restarted, again) = f.publishing_flusher();
    restarted.init().await.unwrap();
    assert_eq!(again.borrow().watermarks, map(&[(0, 5), (1, 1)]));
    assert_eq!(again.borrow().snapshot_id, second.snapshot_id);
}

#[tokio::test]
async fn at_start_up_the_snapshot_decides_the_watermarks() {
    let f = fixture(NodeConfig::default());
    f.write(0, 4);
    let mut flusher = f.flusher();
    flusher.init().await.unwrap();
    flusher.cycle(true).await.unwrap();
    // A crash between the commit and persisting its watermarks: RocksDB is behind.
    f.ctx.store.set_watermarks(f.id, &map(&[(0, 1)])).unwrap();
    let mut restarted = f.flusher();
    restarted.init().await.unwrap();
    assert_eq!(f.ctx.store.watermarks(f.id).unwrap(), map(&[(0, 4)]));
    restarted.cycle(true).await.unwrap();
    assert_eq!(f.committed().await, (4, map(&[(0, 4)])), "no event committed twice");
}

#[cfg(feature = "failpoints")]
#[tokio::test]
async fn a_commit_of_unknown_outcome_is_looked_up_before_the_same_files_commit_again() {
    let f = fixture(NodeConfig::default());
    f.write(0, 6);
    let mut flusher = f.flusher();
    flusher.init().await.unwrap();
    // The commit call fails in a way that leaves its outcome unknown.
    fail::cfg("flush-commit-unknown", "1*return").unwrap();
    let failed = flusher.cycle(true).await;
    fail::remove("flush-commit-unknown");
    assert!(failed.is_err());
    assert!(flusher.pending.unverified.is_some(), "the attempt is remembered");
    // More events meanwhile: the settling cycle commits the same files, not a new read.
    f.write(0, 2);
    flusher.cycle(true).await.unwrap();
    assert_eq!(f.committed().await, (6, map(&[(0, 6)])));
    flusher.cycle(true).await.unwrap();
    assert_eq!(f.committed().await, (8, map(&[(0, 8)])));
}

#[tokio::test]
async fn retention_deletes_committed_events_only_once_their_map_is_old_enough() {
    let mut config = NodeConfig::default();
    config.flush.retention_secs = 3600;
    let f = fixture(config);
    f.write(0, 3);
    let mut flusher = f.flusher();
    flusher.init().await.unwrap();
    flusher.cycle(true).await.unwrap();
    assert_eq!(f.ctx.store.floors(f.id).unwrap(), BTreeMap::new(), "an hour has not passed");
    assert_eq!(f.ctx.store.scan(f.id, 0, 0, 3).count(), 3);

    let mut config = NodeConfig::default();
    config.flush.retention_secs = 0;
    let f = fixture(config);
    f.write(0, 3);
    let mut flusher = f.flusher();
    flusher.init().await.unwrap();
    flusher.cycle(true).await.unwrap();
    assert_eq!(f.ctx.store.floors(f.id).unwrap(), map(&[(0, 3)]));
    assert_eq!(f.ctx.store.scan(f.id, 0, 0, 3).count(), 0);
    // What is not committed yet stays.
    f.write(0, 2);
    assert_eq!(f.ctx.store.scan(f.id, 0, 0, 5).count(), 2);
}

#[tokio::test]
async fn events_lost_from_the_store_are_skipped_without_stalling_the_partition() {
    let f = fixture(NodeConfig::default());
    f.write(0, 10);
    // Only durability `none` can lose acknowledged events (a crash before the memtable
    // reached disk): the flusher commits what is there and moves past the gap.
    f.store.lose(f.id, 0, 3, 6);
    let mut flusher = f.flusher();
    flusher.init().await.unwrap();
    flusher.cycle(true).await.unwrap();
    assert_eq!(f.committed().await, (7, map(&[(0, 10)])));
}

#[tokio::test]
async fn a_flush_reads_at_most_its_rows_and_says_more_is_waiting() {
    let mut config = NodeConfig::default();
    config.flush.max_rows_per_flush = 4;
    let f = fixture(config);
    f.write(0, 10);
    let mut flusher = f.flusher();
    flusher.init().await.unwrap();
    assert!(flusher.cycle(false).await.unwrap().more);
    assert_eq!(f.committed().await, (4, map(&[(0, 4)])));
    assert!(flusher.cycle(false).await.unwrap().more);
    assert!(!flusher.cycle(false).await.unwrap().more);
    assert_eq!(f.committed().await, (10, map(&[(0, 10)])));
}
