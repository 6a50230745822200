//! Maintenance without a node around it: a table in a temporary local warehouse, the
//! catalog's pointers in memory, commits made the way the flusher makes them. A run through
//! the maintainer's own request path compacts, keeps every row and the watermark map.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::TryStreamExt as _;
use tokio_util::sync::CancellationToken;
use zombi_shared::config::NodeConfig;
use zombi_shared::wire::Payload;

use super::{Maintainer, MaintenanceError};
use crate::catalog::ZombiCatalog;
use crate::catalog::pointers::MemoryPointers;
use crate::catalog::snapshot;
use crate::hot::{Role, StoredEvent, TableId, TableRegistry};
use crate::layout::{self, Layout};
use crate::schema::{Row, summary};

const TABLE: &str = "clicks";
const HOUR_MS: i64 = 3_600_000;
const T0: i64 = 1_767_225_600_000;

/// The node's tables: just `clicks`.
struct Tables;

impl TableRegistry for Tables {
    fn tables(&self) -> BTreeMap<String, TableId> {
        BTreeMap::from([(TABLE.to_owned(), 1)])
    }

    fn table_id(&self, name: &str) -> Option<TableId> {
        (name == TABLE).then_some(1)
    }
}

fn catalog(warehouse: &tempfile::TempDir) -> Arc<ZombiCatalog> {
    let location = format!("file://{}", warehouse.path().display());
    let io = crate::catalog::warehouse::file_io(&NodeConfig::default());
    Arc::new(ZombiCatalog::new(Arc::new(MemoryPointers::default()), io, None, "zombi", &location))
}

/// Appends events `[from, to)` of partition 0 as one snapshot, as a flush commits them.
async fn flush(catalog: &ZombiCatalog, from: u64, to: u64) {
    let table = catalog.load_or_create(TABLE).await.unwrap();
    let rows: Vec<Row> = (from..to)
        .map(|seq| {
            let event = StoredEvent {
                // Two hours, so that compaction has two partitions to keep apart.
                timestamp_ms: T0 + (seq as i64 % 2) * HOUR_MS,
                ingest_ms: T0,
                idempotency_key: None,
                payload: Payload::Json(format!("{{\"n\":{seq}}}")),
                role: Role::Event,
            };
            (0, seq, event)
        })
        .collect();
    let partitioner = layout::Partitioner::of(table.metadata()).unwrap();
    let batches = layout::split_rows(rows, &Layout::Raw, &partitioner).unwrap();
    let flush_id = uuid::Uuid::now_v7().to_string();
    let files =
        layout::writer::write_data_files(&table, &partitioner, batches, 128 << 20, &flush_id).await;
    let staged =
        snapshot::stage(&table, uuid::Uuid::new_v4(), &[], &HashSet::new(), vec![files.unwrap()])
            .await
            .unwrap();
    let props = summary::properties(&BTreeMap::from([(0, to)]), &flush_id);
    catalog
        .commit_rebuilt(&catalog.ident(TABLE), async |current: &iceberg::table::Table| {
            Ok(Some(snapshot::rebuild_with_append(current, &staged, props.clone()).await?))
        })
        .await
        .unwrap();
}

/// Data files and rows of the current snapshot, and its watermark map.
async fn state(catalog: &ZombiCatalog) -> (usize, usize, BTreeMap<u32, u64>) {
    let table = catalog.load_or_create(TABLE).await.unwrap();
    let snapshot = table.metadata().current_snapshot().expect("a snapshot");
    let watermarks = summary::watermarks(&snapshot.summary().additional_properties);
    let scan = table.scan().select_all().build().unwrap();
    let files: Vec<_> = scan.plan_files().await.unwrap().try_collect().await.unwrap();
    let batches: Vec<_> = scan.to_arrow().await.unwrap().try_collect().await.unwrap();
    (files.len(), batches.iter().map(|b| b.num_rows()).sum(), watermarks)
}

#[tokio::test]
async fn a_run_merges_each_hours_small_files_and_keeps_rows_and_watermarks() {
    let warehouse = tempfile::tempdir().unwrap();
    let catalog = catalog(&warehouse);
    for i in 0..5 {
        flush(&catalog, i * 10, (i + 1) * 10).await;
    }
    assert_eq!(state(&catalog).await, (10, 50, BTreeMap::from([(0, 50)])));

    let cancel = CancellationToken::new();
    let config = Arc::new(NodeConfig::default());
    let (maintainer, worker) =
        Maintainer::new(Arc::new(Tables), catalog.clone(), config, cancel.clone());
    let worker = tokio::spawn(worker);
    let report = maintainer.run_now(TABLE).await.unwrap();
    assert_eq!((report.files_rewritten, report.files_written), (10, 2), "{report:?}");
    // One file per hour, every row once, and the watermark map carried over.
    assert_eq!(state(&catalog).await, (2, 50, BTreeMap::from([(0, 50)])));
    assert_eq!(maintainer.status(TABLE).unwrap().last_outcome.as_deref(), Some("ok"));

    // A table the node does not hold is refused by name; after cancellation, nothing runs.
    let unknown = maintainer.run_now("other").await.unwrap_err();
    assert!(matches!(unknown, MaintenanceError::UnknownTable(_)), "{unknown}");
    cancel.cancel();
    worker.await.unwrap();
    let stopped = maintainer.run_now(TABLE).await.unwrap_err();
    assert!(matches!(stopped, MaintenanceError::ShuttingDown), "{stopped}");
}

/// A retention the run cannot apply (here a `zombi.retention` no engine could have set: the
/// catalog refuses it) fails the run, but compaction, expiry and cleanup still happen.
#[tokio::test]
async fn a_retention_that_cannot_apply_does_not_stop_the_rest_of_the_run() {
    let warehouse = tempfile::tempdir().unwrap();
    let catalog = catalog(&warehouse);
    for i in 0..5 {
        flush(&catalog, i * 10, (i + 1) * 10).await;
    }
    catalog
        .commit_rebuilt(&catalog.ident(TABLE), async |current: &iceberg::table::Table| {
            let props = std::collections::HashMap::from([(
                crate::schema::properties::RETENTION.to_owned(),
                "soon".to_owned(),
            )]);
            Ok(Some(
                current
                    .metadata()
                    .clone()
                    .into_builder(current.metadata_location().map(str::to_owned))
                    .set_properties(props)?
                    .build()?
                    .metadata,
            ))
        })
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let (maintainer, worker) = Maintainer::new(
        Arc::new(Tables),
        catalog.clone(),
        Arc::new(NodeConfig::default()),
        cancel.clone(),
    );
    let worker = tokio::spawn(worker);
    let e = maintainer.run_now(TABLE).await.unwrap_err();
    let message = crate::error::Chain(&e).to_string();
    assert!(message.contains("retention \"soon\" is not a duration"), "{message}");
    // Compacted anyway: one file per hour, every row.
    assert_eq!(state(&catalog).await, (2, 50, BTreeMap::from([(0, 50)])));
    cancel.cancel();
    worker.await.unwrap();
}

#[test]
fn a_table_is_due_at_twice_the_snapshots_expiry_keeps() {
    assert!(!super::over_bounds(199, 100));
    assert!(super::over_bounds(200, 100));
    // At least ten more than expiry keeps.
    assert!(!super::over_bounds(10, 1));
    assert!(super::over_bounds(11, 1));
}
