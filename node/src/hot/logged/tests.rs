use std::collections::BTreeMap;
use std::time::Duration;

use zombi_shared::config::Durability;
use zombi_shared::wire::Payload;

use super::*;
use crate::hot::record;
use crate::log::{ObjectStore, Settings};

struct Node {
    store: Arc<HotStore>,
    log: HotLog,
    writer: tokio::task::JoinHandle<std::result::Result<(), crate::log::LogError>>,
    _dir: tempfile::TempDir,
}

/// A hot store in `object` mode on a fresh disk, recovered from the log in `warehouse`.
async fn start(warehouse: &std::path::Path) -> (Node, Recovered) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(HotStore::open(dir.path(), Durability::Object, 3600).unwrap());
    let objects = ObjectStore::local(warehouse, Duration::from_secs(5));
    let settings = Settings {
        window: Duration::from_millis(1),
        max_bytes: 1 << 20,
        heartbeat: Duration::from_secs(3600),
    };
    let (log, contents) = HotLog::open(objects, "log", settings).await.unwrap();
    let recovered = store.recover(&log, &contents).await.unwrap();
    store.attach_log(log.clone());
    let writer = tokio::spawn(log.clone().run_writer());
    (Node { store, log, writer, _dir: dir }, recovered)
}

impl Node {
    async fn stop(self) {
        self.log.close();
        self.writer.await.unwrap().unwrap();
    }

    /// Writes events `from..to` of partition 0 of `table`, keyed `k<seq>`.
    async fn write(&self, table: &str, from: u64, to: u64) -> TableId {
        let (store, table) = (self.store.clone(), table.to_owned());
        tokio::task::spawn_blocking(move || {
            let id = store.ensure_table(&table).unwrap();
            let mut batch = store.batch();
            for seq in from..to {
                let key = format!("k{seq}");
                let payload = Payload::Json(format!("{seq}"));
                batch.put_event(id, 0, seq, |out| {
                    record::encode_into(out, 1, 2, Some(&key), &payload, &record::Role::Event)
                });
                let idem = IdemRecord { partition: 0, sequence: seq, accepted_ms: now_ms() };
                batch.put_idempotency(id, &key, idem);
            }
            batch.put_high_water_mark(id, 0, to);
            batch.put_bytes(id, to);
            batch.commit().unwrap();
            id
        })
        .await
        .unwrap()
    }

    fn sequences(&self, table: TableId) -> Vec<u64> {
        self.store.scan(table, 0, 0, u64::MAX).map(|e| e.unwrap().0).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_an_empty_disk_gets_back_everything_the_log_acknowledged() {
    let warehouse = tempfile::tempdir().unwrap();
    let (old, _) = start(warehouse.path()).await;
    let clicks = old.write("clicks", 0, 3).await;
    old.write("clicks", 3, 5).await;
    let views = old.write("views", 0, 2).await;
    old.stop().await;

    // The disk is gone: a new node rebuilds the registry, events, counters and keys.
    let (new, recovered) = start(warehouse.path()).await;
    assert_eq!(recovered.checkpoints, 0);
    assert!(recovered.segments >= 3, "{recovered:?}");
    assert_eq!(
        new.store.tables(),
        BTreeMap::from([("clicks".into(), clicks), ("views".into(), views)])
    );
    assert_eq!(new.sequences(clicks), [0, 1, 2, 3, 4]);
    assert_eq!(new.sequences(views), [0, 1]);
    let counters = new.store.table_counters(clicks).unwrap();
    assert_eq!((counters.high_water_marks, counters.bytes), (BTreeMap::from([(0, 5)]), 5));
    let retry = new.store.idempotency_lookup(clicks, "k3", now_ms()).unwrap().unwrap();
    assert_eq!((retry.partition, retry.sequence), (0, 3));
    // New writes go on in the same log, after the old node's segments.
    let store = new.store.clone();
    let more = tokio::task::spawn_blocking(move || store.ensure_table("more").unwrap());
    assert_eq!(more.await.unwrap(), 3);
    new.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_a_record_again_changes_nothing() {
    let warehouse = tempfile::tempdir().unwrap();
    let (node, _) = start(warehouse.path()).await;
    let id = node.write("t", 0, 4).await;
    let (_, contents) = HotLog::open(
        ObjectStore::local(warehouse.path(), Duration::from_secs(5)),
        "log",
        Settings { window: Duration::ZERO, max_bytes: 1, heartbeat: Duration::from_secs(3600) },
    )
    .await
    .unwrap();
    // The flusher committed 0..2 and deleted them; later counters moved on.
    node.store.delete_below(id, 0, 0, 2).unwrap();
    node.write("t", 4, 6).await;
    for &n in &contents.segments {
        for r in node.log.read_segment(n).await.unwrap().records {
            node.store.apply_logged(&r, false).unwrap();
        }
    }
    assert_eq!(node.sequences(id), [2, 3, 4, 5], "a deleted event came back");
    let counters = node.store.table_counters(id).unwrap();
    assert_eq!((counters.high_water_marks, counters.bytes), (BTreeMap::from([(0, 6)]), 6));
    // A record that does not parse is refused, naming the log.
    assert!(node.store.apply_logged(&[OP_META, 0], false).unwrap_err().to_string().contains("log"));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_deletes_committed_segments_and_keeps_their_keys() {
    let warehouse = tempfile::tempdir().unwrap();
    let (old, _) = start(warehouse.path()).await;
    let id = old.write("t", 0, 3).await;
    old.write("t", 3, 6).await;
    // No event is committed yet: only the registration's segment goes.
    assert_eq!(old.store.truncate_log().await.unwrap(), 1);
    assert_eq!(old.store.truncate_log().await.unwrap(), 0);
    // Iceberg holds 0..3: the first write's segment goes.
    old.store.set_watermarks(id, &BTreeMap::from([(0, 3)])).unwrap();
    assert_eq!(old.store.truncate_log().await.unwrap(), 1);
    assert_eq!(old.store.truncate_log().await.unwrap(), 0);
    old.stop().await;

    let (new, recovered) = start(warehouse.path()).await;
    assert_eq!((recovered.checkpoints, recovered.segments), (1, 1));
    assert_eq!(new.store.table_id("t"), Some(id));
    // Events 0..3 are in Iceberg, not in the log any more; 3..6 are replayed.
    assert_eq!(new.sequences(id), [3, 4, 5]);
    assert_eq!(new.store.table_counters(id).unwrap().high_water_marks, BTreeMap::from([(0, 6)]));
    // Keys of truncated segments survive in the checkpoint.
    let first = new.store.idempotency_lookup(id, "k1", now_ms()).unwrap().unwrap();
    assert_eq!(first.sequence, 1);
    new.stop().await;
}
