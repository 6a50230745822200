//! `POST /tables/{table}/replay`: re-ingests a typed table's dead-letter rows (see
//! `crate::schema::dead_letter`), typically
//! after its schema was fixed, each exactly once.
//!
//! The dead-letter table is flushed first, so every row to replay is in Iceberg; then each
//! partition is read from its replay cursor in chunks of consecutive rows, and each chunk
//! goes to the table's combiner worker as one write holding the rows that fit now (new
//! events of the table), those that still do not (new dead-letter rows, which a later
//! replay retries) and the cursor's new position. A chunk is written whole or not at all
//! and only where the cursor stands, so a replay that is repeated, runs twice, or is
//! interrupted by `kill -9` never lands a row twice and resumes where it stopped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use futures::TryStreamExt;
use iceberg::expr::Reference;
use iceberg::spec::Datum;
use iceberg::{Catalog, ErrorKind};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use zombi_shared::wire::{Group, Payload, WireEvent};

use crate::catalog::ZombiCatalog;
use crate::combiner::{Combiner, CombinerError, Replay};
use crate::error::{CodedError, ErrorCode};
use crate::failpoints::crash_point;
use crate::flush::{FlushError, Flusher};
use crate::hot::HotStore;
use crate::tasks::{BackgroundLoop, Backoff};

/// Rows per chunk (one combiner write) by default, and at most.
pub const DEFAULT_CHUNK: u64 = 1000;
pub const MAX_CHUNK: u64 = 10_000;

/// How long a chunk waits for room while the node is over its in-flight budget, and how it
/// backs off meanwhile.
const OVERLOAD_PATIENCE: Duration = Duration::from_secs(60);
const OVERLOAD_BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("table {0} does not exist")]
    UnknownTable(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("a replay of {0} is running; wait for it to finish")]
    Running(String),
    #[error("node is shutting down")]
    ShuttingDown,
    #[error("cannot flush the dead-letter table {table}")]
    Flush {
        table: String,
        #[source]
        source: Box<FlushError>,
    },
    #[error("the replay write failed")]
    Write(#[source] CombinerError),
    #[error("the catalog or the warehouse failed")]
    Iceberg(#[from] iceberg::Error),
    #[error("the hot store failed")]
    Hot(#[from] crate::hot::HotError),
    #[error("a blocking task of the replay failed")]
    Blocking(#[from] tokio::task::JoinError),
    /// The dead-letter table does not hold what its flushed watermarks promise.
    #[error("dead-letter rows are missing: {0}")]
    Missing(String),
}

impl CodedError for ReplayError {
    fn code(&self) -> ErrorCode {
        match self {
            ReplayError::UnknownTable(_) => ErrorCode::NotFound,
            ReplayError::BadRequest(_) => ErrorCode::BadRequest,
            ReplayError::Running(_) => ErrorCode::Busy,
            ReplayError::ShuttingDown => ErrorCode::ShuttingDown,
            ReplayError::Flush { .. } | ReplayError::Write(_) => ErrorCode::Unavailable,
            ReplayError::Iceberg(_)
            | ReplayError::Hot(_)
            | ReplayError::Blocking(_)
            | ReplayError::Missing(_) => ErrorCode::Internal,
        }
    }
}

/// What a replay did.
#[derive(Debug, Serialize)]
pub struct ReplayReport {
    pub table: String,
    pub dead_letter_table: String,
    /// Rows that fit the table now and were written to it.
    pub replayed: u64,
    /// Rows that still do not fit: written again to the dead-letter table, with the error
    /// of now, for a later replay.
    pub dead_lettered_again: u64,
    /// Rows below the dead-letter table's watermarks that are no longer in it: removed by a
    /// delete or by retention (`crate::erase`, `crate::compact`), so nothing to replay.
    pub deleted_skipped: u64,
    /// Per partition: the dead-letter rows below were replayed (by this or an earlier run).
    pub cursors: BTreeMap<u32, u64>,
    pub took_ms: u64,
}

pub struct Replayer {
    store: Arc<HotStore>,
    catalog: Arc<ZombiCatalog>,
    flusher: Flusher,
    combiner: Arc<Combiner>,
    running: Mutex<HashSet<String>>,
    /// The node is shutting down: a replay stops between chunks.
    cancel: CancellationToken,
}

/// Unmarks a table's replay as running when dropped.
struct Running<'a>(&'a Mutex<HashSet<String>>, String);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap().remove(&self.1);
    }
}

/// One dead-letter row as read back from Iceberg.
struct Row {
    event: WireEvent,
    source_sequence: u64,
}

impl Replayer {
    pub fn new(
        store: Arc<HotStore>,
        catalog: Arc<ZombiCatalog>,
        flusher: Flusher,
        combiner: Arc<Combiner>,
        cancel: CancellationToken,
    ) -> Self {
        let running = Mutex::new(HashSet::new());
        Replayer { store, catalog, flusher, combiner, running, cancel }
    }

    pub async fn replay(&self, table: &str, chunk: u64) -> Result<ReplayReport, ReplayError> {
        let started = Instant::now();
        if !(1..=MAX_CHUNK).contains(&chunk) {
            return Err(ReplayError::BadRequest(format!("chunk must be 1 to {MAX_CHUNK}")));
        }
        match self.catalog.load_table(&self.catalog.ident(table)).await {
            Ok(t) if crate::typed::is_typed(t.metadata()) => {}
            Ok(_) => {
                return Err(ReplayError::BadRequest(format!(
                    "{table} is not a typed table: it has no dead-letter table"
                )));
            }
            Err(e) if e.kind() == ErrorKind::TableNotFound => {
                return Err(ReplayError::UnknownTable(table.to_owned()));
            }
            Err(e) => return Err(e.into()),
        }
        let dead_letter = crate::schema::dead_letter::table_of(table);
        if !self.running.lock().unwrap().insert(table.to_owned()) {
            return Err(ReplayError::Running(table.to_owned()));
        }
        let _running = Running(&self.running, table.to_owned());
        let mut report = ReplayReport {
            table: table.to_owned(),
            dead_letter_table: dead_letter.clone(),
            replayed: 0,
            dead_lettered_again: 0,
            deleted_skipped: 0,
            cursors: BTreeMap::new(),
            took_ms: 0,
        };
        let Some(dlq_id) = self.store.table_id(&dead_letter) else {
            // Nothing was ever dead-lettered.
            return Ok(report);
        };
        // Every row to replay is in Iceberg after this flush.
        let flushed = self.flusher.flush_now(&dead_letter).await.map_err(|e| match e {
            FlushError::ShuttingDown => ReplayError::ShuttingDown,
            source => ReplayError::Flush { table: dead_letter.clone(), source: Box::new(source) },
        })?;
        let dlq = self.catalog.load_table(&self.catalog.ident(&dead_letter)).await?;
        let store = self.store.clone();
        let mut cursors =
            tokio::task::spawn_blocking(move || store.replay_cursors(dlq_id)).await??;
        for (&partition, &end) in &flushed.watermarks {
            let mut from = cursors.get(&partition).copied().unwrap_or(0);
            while from < end {
                if self.cancel.is_cancelled() {
                    return Err(ReplayError::ShuttingDown);
                }
                let to = end.min(from + chunk);
                let rows = read_rows(&dlq, partition, from, to).await?;
                let deleted = (to - from) - rows.len() as u64;
                if deleted > 0 {
                    tracing::info!(
                        table,
                        partition,
                        from,
                        to,
                        deleted,
                        "dead-letter rows removed by a delete or retention are skipped"
                    );
                }
                let acks = self.write_chunk(table, &dead_letter, partition, from, to, rows).await?;
                crash_point("replay-after-chunk");
                let again = acks.iter().filter(|a| a.dead_lettered).count() as u64;
                report.dead_lettered_again += again;
                report.replayed += acks.len() as u64 - again;
                report.deleted_skipped += deleted;
                from = to;
            }
            cursors.insert(partition, from);
        }
        report.cursors = cursors;
        report.took_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            table,
            replayed = report.replayed,
            again = report.dead_lettered_again,
            "replayed dead-letter rows"
        );
        Ok(report)
    }

    /// Writes one chunk through the table's combiner worker, waiting while the node is
    /// over its in-flight budget.
    async fn write_chunk(
        &self,
        table: &str,
        dead_letter: &str,
        partition: u32,
        from: u64,
        to: u64,
        rows: Vec<Row>,
    ) -> Result<Vec<zombi_shared::wire::Ack>, ReplayError> {
        let weight: u64 = rows.iter().map(|r| r.event.weight() as u64).sum();
        let replay = Replay {
            dead_letter: dead_letter.to_owned(),
            partition,
            from,
            to,
            sources: rows.iter().map(|r| r.source_sequence).collect(),
        };
        let group =
            Group { table: table.to_owned(), events: rows.into_iter().map(|r| r.event).collect() };
        let deadline = Instant::now() + OVERLOAD_PATIENCE;
        let mut lp =
            BackgroundLoop::new("replay", Duration::ZERO, OVERLOAD_BACKOFF, self.cancel.clone())
                .for_table(table);
        loop {
            let iteration = lp.begin();
            let attempt = match self.combiner.admit(weight) {
                Ok(admission) => {
                    self.combiner.replay(group.clone(), replay.clone(), Arc::new(admission)).await
                }
                Err(e) => Err(e),
            };
            match attempt {
                Ok(acks) => return Ok(acks),
                Err(CombinerError::Overloaded) if Instant::now() < deadline => {
                    lp.failed(iteration, &CombinerError::Overloaded);
                    if !lp.sleep(lp.next_wait(false)).await {
                        return Err(ReplayError::ShuttingDown);
                    }
                }
                Err(CombinerError::ShuttingDown) => return Err(ReplayError::ShuttingDown),
                Err(e) => return Err(ReplayError::Write(e)),
            }
        }
    }
}

/// The dead-letter rows `[from, to)` of one partition that the table holds, in sequence
/// order. They were all flushed, and rows leave a Zombi table only through a delete or
/// retention (`compact::remove`), so those not found were removed on purpose.
async fn read_rows(
    dlq: &iceberg::table::Table,
    partition: u32,
    from: u64,
    to: u64,
) -> Result<Vec<Row>, ReplayError> {
    let filter = Reference::new("partition")
        .equal_to(Datum::int(partition as i32))
        .and(Reference::new("sequence").greater_than_or_equal_to(Datum::long(from as i64)))
        .and(Reference::new("sequence").less_than(Datum::long(to as i64)));
    let batches: Vec<RecordBatch> = dlq
        .scan()
        .select([
            "sequence",
            "timestamp_ms",
            "idempotency_key",
            "payload",
            "payload_bytes",
            "source_sequence",
            "partition",
        ])
        .with_filter(filter)
        .build()?
        .to_arrow()
        .await?
        .try_collect()
        .await?;
    let mut rows: HashMap<u64, Row> = HashMap::new();
    for b in &batches {
        let col = |name: &str| {
            b.column_by_name(name)
                .cloned()
                .ok_or_else(|| ReplayError::Missing(format!("the rows have no column {name}")))
        };
        let (seq, ts, key, payload, bytes, source, part) = (
            col("sequence")?,
            col("timestamp_ms")?,
            col("idempotency_key")?,
            col("payload")?,
            col("payload_bytes")?,
            col("source_sequence")?,
            col("partition")?,
        );
        let (seq, ts, source) = (
            seq.as_primitive::<Int64Type>(),
            ts.as_primitive::<Int64Type>(),
            source.as_primitive::<Int64Type>(),
        );
        let part = part.as_primitive::<Int32Type>();
        let key = key.as_string::<i32>();
        let payload = payload.as_string::<i32>();
        let bytes = bytes.as_binary::<i64>();
        for i in 0..b.num_rows() {
            // The filter prunes files; rows of other partitions may still come along.
            if part.value(i) != partition as i32 {
                continue;
            }
            let payload = if payload.is_valid(i) {
                Payload::Json(payload.value(i).to_owned())
            } else {
                Payload::Bytes(bytes.value(i).to_vec())
            };
            let sequence = seq.value(i) as u64;
            let event = WireEvent {
                partition,
                timestamp_ms: Some(ts.value(i)),
                idempotency_key: key.is_valid(i).then(|| key.value(i).to_owned()),
                payload,
            };
            rows.insert(sequence, Row { event, source_sequence: source.value(i) as u64 });
        }
    }
    // In sequence order; a row outside the range would be a reader's bug.
    let out: Vec<Row> = (from..to).filter_map(|s| rows.remove(&s)).collect();
    if !rows.is_empty() {
        return Err(ReplayError::Missing(format!(
            "dead-letter rows {from}..{to} of partition {partition}: the scan returned rows outside the range"
        )));
    }
    Ok(out)
}
