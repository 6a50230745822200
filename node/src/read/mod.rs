//! Read interfaces for real-time readers (SPEC §7): the committed watermarks of a table,
//! its hot (not yet committed) events in the table's own schema, and the same events as
//! pinned segments that engine plugins plan as Iceberg data files ([`segments`]).
//!
//! Contract: read snapshot S, take its watermark map W, read cold rows from S and hot rows
//! with `from_sequence = W[p]`: every acknowledged event appears exactly once, as long as
//! S is recent enough that its watermarks are at or above the deletion floors.

pub mod segments;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use iceberg::{Catalog, ErrorKind};
use serde::Serialize;

use crate::catalog::ZombiCatalog;
use crate::error::{CodedError, ErrorCode};
use crate::hot::lease::Leases;
use crate::hot::{self, HotStore};
use crate::layout::{self, Partitioner};
use crate::schema;
use iceberg::table::Table;
use segments::{Segment, SegmentId, Segmenter, Valued};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("table {0} does not exist")]
    UnknownTable(String),
    #[error(
        "partition {partition}: events below sequence {floor} were flushed and deleted from the hot store; read them from the Iceberg table"
    )]
    Gone { partition: u32, floor: u64 },
    #[error(
        "partition {partition}: watermark {watermark} is below the deletion floor {floor}: those events were committed and deleted from the hot store; reload the table and plan again"
    )]
    WatermarkTooOld { partition: u32, watermark: u64, floor: u64 },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{limit} hot reads are running (limits.max_concurrent_hot_reads); retry shortly")]
    Busy { limit: usize },
    #[error("the hot store failed")]
    Hot(#[from] hot::HotError),
    #[error("the catalog or the warehouse failed")]
    Iceberg(#[from] iceberg::Error),
    /// The table's current schema cannot take its stored events.
    #[error("cannot convert the table's events to its schema")]
    Schema(#[from] crate::typed::TypedError),
    #[error("cannot encode the rows")]
    Encode(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("a blocking task of the read failed")]
    Blocking(#[from] tokio::task::JoinError),
}

impl CodedError for ReadError {
    fn code(&self) -> ErrorCode {
        match self {
            ReadError::UnknownTable(_) | ReadError::NotFound(_) => ErrorCode::NotFound,
            ReadError::Gone { .. } | ReadError::WatermarkTooOld { .. } => ErrorCode::Gone,
            ReadError::BadRequest(_) => ErrorCode::BadRequest,
            ReadError::Busy { .. } => ErrorCode::Busy,
            ReadError::Hot(_)
            | ReadError::Iceberg(_)
            | ReadError::Schema(_)
            | ReadError::Encode(_)
            | ReadError::Blocking(_) => ErrorCode::Internal,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Watermarks {
    pub table: String,
    /// The current snapshot; `None` before the first commit.
    pub snapshot_id: Option<i64>,
    /// Next sequence per partition not in that snapshot.
    pub watermarks: BTreeMap<u32, u64>,
    /// Next sequence per partition the node will assign (everything acknowledged is below).
    pub high_water_marks: BTreeMap<u32, u64>,
}

/// Payload bytes one hot read returns at most (beyond one event); the rest is marked
/// truncated and read with a higher `from_sequence`.
pub const MAX_HOT_READ_BYTES: u64 = 64 << 20;

/// Hot events of one request, one batch per partition, plus whether `limit` or the byte
/// cap cut them.
pub struct HotRead {
    /// The table's current schema, which the batches have (even when there are none).
    pub schema: arrow_schema::SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub truncated: bool,
    /// One of the concurrent hot reads: held until the answer is encoded.
    pub _slot: tokio::sync::OwnedSemaphorePermit,
}

/// A listing of hot segments (see [`segments`] and `docs/realtime.md`).
#[derive(Debug, Serialize)]
pub struct SegmentListing {
    pub table: String,
    /// The watermarks the segments start at, for every partition the table has.
    pub watermarks: BTreeMap<u32, u64>,
    /// Where the segments end: the next sequence per partition when the listing ran.
    pub high_water_marks: BTreeMap<u32, u64>,
    /// Until when retention keeps these segments (ms since the epoch).
    pub lease_expires_ms: i64,
    pub segments: Vec<Segment>,
}

pub struct ReadService {
    store: Arc<HotStore>,
    catalog: Arc<ZombiCatalog>,
    /// Hot reads hold up to 64 MiB each: at most this many run at once, more get 429.
    hot_slots: Arc<tokio::sync::Semaphore>,
    max_hot_reads: usize,
    leases: Arc<Leases>,
    lease_ttl: Duration,
}

impl ReadService {
    pub fn new(
        store: Arc<HotStore>,
        catalog: Arc<ZombiCatalog>,
        max_hot_reads: usize,
        leases: Arc<Leases>,
        lease_ttl: Duration,
    ) -> Self {
        ReadService {
            store,
            catalog,
            hot_slots: Arc::new(tokio::sync::Semaphore::new(max_hot_reads)),
            max_hot_reads,
            leases,
            lease_ttl,
        }
    }

    fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ReadError> {
        self.hot_slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| ReadError::Busy { limit: self.max_hot_reads })
    }

    fn known_table(&self, table: &str) -> Result<hot::TableId, ReadError> {
        self.store.table_id(table).ok_or_else(|| ReadError::UnknownTable(table.to_owned()))
    }

    /// Lists the hot events of `table` above `watermarks` (partitions left out start at 0)
    /// as pinned segments, and leases those watermarks so retention keeps the segments.
    pub async fn segments(
        &self,
        table: &str,
        watermarks: BTreeMap<u32, u64>,
    ) -> Result<SegmentListing, ReadError> {
        let Some(id) = self.store.table_id(table) else {
            // A table the catalog holds but nothing was written to since (adopted from the
            // warehouse): nothing is hot.
            if self.store.catalog_pointer(table)?.is_some() {
                return Ok(SegmentListing {
                    table: table.to_owned(),
                    watermarks,
                    high_water_marks: BTreeMap::new(),
                    lease_expires_ms: hot::now_ms(),
                    segments: Vec::new(),
                });
            }
            return Err(ReadError::UnknownTable(table.to_owned()));
        };
        // No hot-read slot: a listing holds metrics, not events, and a reader refused one
        // would have to read committed rows only.
        let (layout, loaded) = self.shape(table).await?;
        let typed_leaves = match &layout {
            layout::Layout::Raw | layout::Layout::DeadLetter => None,
            layout::Layout::Typed(t) => Some(t.leaf_columns()),
        };
        // Segments are cut by the table's current spec.
        let partitioner = partitioner(loaded.as_ref(), None)?;
        let store = self.store.clone();
        let (leases, ttl) = (self.leases.clone(), self.lease_ttl);
        let table = table.to_owned();
        tokio::task::spawn_blocking(move || {
            let hwm = store.table_counters(id)?.high_water_marks;
            let watermarks: BTreeMap<u32, u64> =
                hwm.keys().map(|p| (*p, watermarks.get(p).copied().unwrap_or(0))).collect();
            let check_floors = |store: &HotStore| -> Result<(), ReadError> {
                let floors = store.floors(id)?;
                for (&p, &w) in &watermarks {
                    let floor = floors.get(&p).copied().unwrap_or(0);
                    if w < floor {
                        return Err(ReadError::WatermarkTooOld { partition: p, watermark: w, floor });
                    }
                }
                Ok(())
            };
            check_floors(&store)?;
            // Retention clamps and deletes under the leases' lock (`Leases::delete_clamped`):
            // a deletion after this line keeps the range, and one that finished before it
            // shows in the floors checked again after the scan.
            leases.lease(id, &watermarks, ttl);
            let lease_expires_ms = hot::now_ms().saturating_add(ttl.as_millis() as i64);
            let mut listed = Vec::new();
            for (&p, &to) in &hwm {
                let from = watermarks[&p];
                if from >= to {
                    continue;
                }
                let mut cut = Segmenter::new(&table, p, partitioner.spec_id(), typed_leaves);
                let mut valued = Valued::new(&layout, &partitioner, p);
                let mut add = |row: schema::Row, value: &str| cut.add(&row, value);
                for item in store.scan(id, p, from, to) {
                    let (seq, e) = item?;
                    valued.push(seq, e, &mut add).map_err(ReadError::Schema)?;
                }
                valued.drain(&mut add).map_err(ReadError::Schema)?;
                listed.extend(cut.finish());
                if listed.len() > segments::MAX_SEGMENTS {
                    return Err(ReadError::BadRequest(format!(
                        "more than {} hot segments: the hot backlog is too large for a real-time read (is the flusher stalled? see /stats)",
                        segments::MAX_SEGMENTS
                    )));
                }
            }
            check_floors(&store)?;
            Ok(SegmentListing {
                table,
                watermarks,
                high_water_marks: hwm,
                lease_expires_ms,
                segments: listed,
            })
        })
        .await
        ?
    }

    /// Reads one segment as a Parquet file: the same rows every time, or `Gone` once
    /// retention deleted part of its range.
    pub async fn segment(&self, table: &str, seg: SegmentId) -> Result<Vec<u8>, ReadError> {
        let id = self.known_table(table)?;
        let _slot = self.slot()?;
        let (layout, loaded) = self.shape(table).await?;
        let partitioner = partitioner(loaded.as_ref(), Some(seg.spec_id))?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let hwm = store.table_counters(id)?.high_water_marks.get(&seg.partition).copied();
            if hwm.is_none_or(|h| seg.to > h) {
                return Err(ReadError::NotFound(format!(
                    "partition {} has no events up to sequence {}: not a segment of this table",
                    seg.partition, seg.to
                )));
            }
            let gone = |store: &HotStore| -> Result<(), ReadError> {
                let floor = store.floors(id)?.get(&seg.partition).copied().unwrap_or(0);
                if seg.from < floor {
                    return Err(ReadError::Gone { partition: seg.partition, floor });
                }
                Ok(())
            };
            gone(&store)?;
            // Only the rows of the segment's partition value are kept, and no more than a
            // listed segment holds, so one read holds one segment whatever range it names.
            let mut rows = Vec::new();
            let mut over = false;
            let mut keep = |row: schema::Row, value: &str| {
                if value == seg.value {
                    if rows.len() as u64 >= segments::MAX_SEGMENT_ROWS {
                        over = true;
                    } else {
                        rows.push(row);
                    }
                }
            };
            let mut valued = Valued::new(&layout, &partitioner, seg.partition);
            for item in store.scan(id, seg.partition, seg.from, seg.to) {
                let (sequence, e) = item?;
                valued.push(sequence, e, &mut keep).map_err(ReadError::Schema)?;
            }
            valued.drain(&mut keep).map_err(ReadError::Schema)?;
            if over {
                return Err(ReadError::BadRequest(format!(
                    "more than {} rows in this range and partition value: not a listed segment (list them with GET /tables/{{table}}/hot/segments)",
                    segments::MAX_SEGMENT_ROWS
                )));
            }
            // Retention may have deleted part of the range while it was read.
            gone(&store)?;
            segments::to_parquet(&layout, &segments::sort_rows(rows))
        })
        .await
        ?
    }

    /// How the table's events become rows of its current schema (raw before the table is
    /// created in Iceberg).
    async fn layout(&self, table: &str) -> Result<layout::Layout, ReadError> {
        Ok(self.shape(table).await?.0)
    }

    /// The table's layout, and the table (`None` before it is created in Iceberg).
    async fn shape(&self, table: &str) -> Result<(layout::Layout, Option<Table>), ReadError> {
        match self.catalog.load_table(&self.catalog.ident(table)).await {
            Ok(t) => Ok((self.catalog.layout(&t).map_err(ReadError::Schema)?, Some(t))),
            Err(e) if e.kind() == ErrorKind::TableNotFound => Ok((layout::Layout::Raw, None)),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn watermarks(&self, table: &str) -> Result<Watermarks, ReadError> {
        let id = self.known_table(table)?;
        let (snapshot_id, watermarks) =
            match self.catalog.load_table(&self.catalog.ident(table)).await {
                Ok(t) => match t.metadata().current_snapshot() {
                    Some(s) => (
                        Some(s.snapshot_id()),
                        crate::schema::summary::watermarks(&s.summary().additional_properties),
                    ),
                    None => (None, BTreeMap::new()),
                },
                // Registered in the hot store but not created in Iceberg yet.
                Err(e) if e.kind() == ErrorKind::TableNotFound => (None, BTreeMap::new()),
                Err(e) => return Err(e.into()),
            };
        let store = self.store.clone();
        let hwm =
            tokio::task::spawn_blocking(move || store.table_counters(id)).await??.high_water_marks;
        // Complete map: partitions without a committed watermark start at 0.
        let watermarks =
            hwm.keys().map(|p| (*p, watermarks.get(p).copied().unwrap_or(0))).collect();
        Ok(Watermarks { table: table.to_owned(), snapshot_id, watermarks, high_water_marks: hwm })
    }

    /// Hot events of `table` from `from_sequence` (default: the committed watermark), for one
    /// partition or all, at most `limit` per partition.
    pub async fn hot(
        &self,
        table: &str,
        partition: Option<u32>,
        from_sequence: Option<u64>,
        limit: u64,
    ) -> Result<HotRead, ReadError> {
        let slot = self.slot()?;
        let w = self.watermarks(table).await?;
        let id = self.known_table(table)?;
        let layout = self.layout(table).await?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let floors = store.floors(id)?;
            let mut batches = Vec::new();
            let mut truncated = false;
            let mut bytes = 0u64;
            for (&p, &hwm) in &w.high_water_marks {
                if partition.is_some_and(|want| want != p) {
                    continue;
                }
                if bytes >= MAX_HOT_READ_BYTES {
                    truncated = true;
                    break;
                }
                let from =
                    from_sequence.unwrap_or_else(|| w.watermarks.get(&p).copied().unwrap_or(0));
                let floor = floors.get(&p).copied().unwrap_or(0);
                if from < floor {
                    return Err(ReadError::Gone { partition: p, floor });
                }
                let to = hwm.min(from.saturating_add(limit));
                truncated |= to < hwm;
                let mut rows = Vec::new();
                for item in store.scan(id, p, from, to) {
                    let (seq, e) = item?;
                    bytes += e.payload.len() as u64;
                    if e.is_row() {
                        rows.push((p, seq, e));
                    }
                    if bytes >= MAX_HOT_READ_BYTES {
                        // Cut here: the caller continues from the last sequence + 1.
                        truncated |= seq + 1 < hwm;
                        break;
                    }
                }
                // Retention may have deleted part of the range while it was read: then the
                // answer would be silently short, so refuse it like any read below the floor.
                let floor_after = store.floors(id)?.get(&p).copied().unwrap_or(0);
                if from < floor_after {
                    return Err(ReadError::Gone { partition: p, floor: floor_after });
                }
                if !rows.is_empty() {
                    batches.push(layout.to_batch(&rows).map_err(ReadError::Schema)?);
                }
            }
            Ok(HotRead { schema: layout.arrow_schema(), batches, truncated, _slot: slot })
        })
        .await?
    }
}

/// Encodes batches as an Arrow IPC stream (schema first, even with no rows).
/// The partitioner of `table`'s spec `spec_id` (its current one when `None`); a table not
/// created yet has Zombi's default spec.
fn partitioner(table: Option<&Table>, spec_id: Option<i32>) -> Result<Partitioner, ReadError> {
    let Some(table) = table else {
        let schema = schema::schema();
        let spec = schema::partition_spec().bind(schema.clone())?;
        return Partitioner::new(&schema, Arc::new(spec)).map_err(ReadError::Schema);
    };
    let metadata = table.metadata();
    let spec = match spec_id {
        None => metadata.default_partition_spec(),
        Some(id) => metadata.partition_spec_by_id(id).ok_or_else(|| {
            ReadError::NotFound(format!(
                "partition spec {id} is not one of the table's: not a segment of this table"
            ))
        })?,
    };
    Partitioner::new(metadata.current_schema(), spec.clone()).map_err(ReadError::Schema)
}

pub fn to_arrow_ipc(
    schema: &arrow_schema::SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<u8>, arrow_schema::ArrowError> {
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, schema)?;
    for b in batches {
        w.write(b)?;
    }
    w.finish()?;
    drop(w);
    Ok(out)
}

/// Encodes batches as one Parquet file carrying the table's Iceberg field ids.
pub fn to_parquet(
    schema: &arrow_schema::SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    write_parquet(schema, batches, None)
}

/// Encodes batches in the table's schema as one Parquet file with `props` (default: the
/// parquet crate's).
fn write_parquet(
    schema: &arrow_schema::SchemaRef,
    batches: &[RecordBatch],
    props: Option<parquet::file::properties::WriterProperties>,
) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema.clone(), props)?;
    for b in batches {
        w.write(b)?;
    }
    w.close()?;
    Ok(out)
}
