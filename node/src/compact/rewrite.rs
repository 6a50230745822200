//! Rewrites data files of one partition into new files near the target size, sorted by
//! `timestamp_ms, sequence`, in the table's current partition spec (files of an older spec
//! are split by the new one's values). Every input is already sorted that way (the flusher
//! sorts each partition, compaction writes sorted files), so this is a streaming k-way
//! merge: it holds one small batch per input and one output batch per partition written,
//! never a whole partition.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use arrow_array::{Array, Int64Array, RecordBatch};
use futures::StreamExt as _;
use iceberg::scan::ArrowRecordBatchStream;
use iceberg::scan::FileScanTask;
use iceberg::spec::{DataFile, DataFileFormat};
use iceberg::table::Table;
use iceberg::{Error, ErrorKind, Result};

use crate::layout::Partitioner;
use crate::layout::writer::{PartitionedWriter, SpecFiles};

/// Rows read from an input at a time, and rows per merged output batch.
const BATCH_ROWS: usize = 2048;

/// Merges `inputs` (data files of one partition) into new files named after `prefix`, in
/// `partitioner`'s spec.
pub async fn rewrite(
    table: &Table,
    partitioner: &Partitioner,
    inputs: &[DataFile],
    target_file_size: usize,
    prefix: &str,
) -> Result<SpecFiles> {
    let mut merge = Merge::open(table, inputs).await?;
    let mut writer = PartitionedWriter::new(table, partitioner, target_file_size, prefix);
    // Batches go to the writer in the Arrow form of the table schema, as the flusher's do.
    let schema = std::sync::Arc::new(iceberg::arrow::schema_to_arrow_schema(
        table.metadata().current_schema(),
    )?);
    let mut rows = 0u64;
    while let Some(batch) = merge.next_batch().await? {
        rows += batch.num_rows() as u64;
        writer.write(in_table_schema(&schema, &batch)?).await?;
    }
    let files = writer.close().await?;
    let expected: u64 = inputs.iter().map(DataFile::record_count).sum();
    let written: u64 = files.files.iter().map(DataFile::record_count).sum();
    if rows != expected || written != expected {
        // Never commit a rewrite that does not hold exactly the rows it replaces.
        return Err(Error::new(
            ErrorKind::DataInvalid,
            format!(
                "rewrite read {rows} and wrote {written} rows where the inputs hold {expected}"
            ),
        ));
    }
    Ok(files)
}

/// One input being merged: its stream and the batch being consumed.
struct Input {
    stream: ArrowRecordBatchStream,
    /// Index of the current batch in `Merge::held`, and the next row in it.
    batch: usize,
    row: usize,
    rows: usize,
    ts: Int64Array,
    seq: Int64Array,
}

struct Merge {
    inputs: Vec<Input>,
    /// Batches the pending output rows point into.
    held: Vec<RecordBatch>,
    heap: BinaryHeap<Reverse<(i64, i64, usize)>>,
}

fn column(batch: &RecordBatch, name: &str) -> Result<Int64Array> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .cloned()
        .ok_or_else(|| Error::new(ErrorKind::DataInvalid, format!("data file lacks column {name}")))
}

/// Streams every row of `file` in the table schema `schema` (projected on `field_ids`), in
/// file order, `BATCH_ROWS` at a time.
pub fn read_file(
    table: &Table,
    file: &DataFile,
    schema: &iceberg::spec::SchemaRef,
    field_ids: &[i32],
) -> Result<ArrowRecordBatchStream> {
    let task = FileScanTask::builder()
        .with_file_size_in_bytes(file.file_size_in_bytes())
        .with_start(0)
        .with_length(file.file_size_in_bytes())
        .with_record_count(Some(file.record_count()))
        .with_data_file_path(file.file_path().to_owned())
        .with_data_file_format(DataFileFormat::Parquet)
        .with_schema(schema.clone())
        .with_project_field_ids(field_ids.to_vec())
        // No partition constants: `event_date` and `event_hour` are read from the file as
        // plain columns, the form the writer takes.
        .with_case_sensitive(true)
        .build();
    let reader = table
        .reader_builder()
        .with_batch_size(BATCH_ROWS)
        .with_data_file_concurrency_limit(1)
        .build();
    Ok(reader.read(Box::pin(futures::stream::iter([Ok(task)])))?.stream())
}

/// `batch` (as a reader returned it) in the Arrow form of the table schema, which the writer
/// takes.
pub fn in_table_schema(
    schema: &arrow_schema::SchemaRef,
    batch: &RecordBatch,
) -> Result<RecordBatch> {
    RecordBatch::try_new(schema.clone(), batch.columns().to_vec()).map_err(|e| {
        Error::new(ErrorKind::DataInvalid, "rows read do not fit the table schema").with_source(e)
    })
}

impl Merge {
    async fn open(table: &Table, files: &[DataFile]) -> Result<Merge> {
        let metadata = table.metadata();
        let schema = metadata.current_schema().clone();
        let field_ids: Vec<i32> = schema.as_struct().fields().iter().map(|f| f.id).collect();
        let mut merge = Merge { inputs: Vec::new(), held: Vec::new(), heap: BinaryHeap::new() };
        for file in files {
            let stream = read_file(table, file, &schema, &field_ids)?;
            let index = merge.inputs.len();
            merge.inputs.push(Input {
                stream,
                batch: 0,
                row: 0,
                rows: 0,
                ts: Int64Array::from(Vec::<i64>::new()),
                seq: Int64Array::from(Vec::<i64>::new()),
            });
            merge.advance(index).await?;
        }
        Ok(merge)
    }

    /// Moves input `i` to its next row, loading its next batch when needed, and queues it.
    async fn advance(&mut self, i: usize) -> Result<()> {
        let input = &mut self.inputs[i];
        while input.row >= input.rows {
            match input.stream.next().await {
                None => return Ok(()),
                Some(batch) => {
                    let batch = batch?;
                    input.ts = column(&batch, "timestamp_ms")?;
                    input.seq = column(&batch, "sequence")?;
                    input.rows = batch.num_rows();
                    input.row = 0;
                    input.batch = self.held.len();
                    self.held.push(batch);
                }
            }
        }
        let (ts, seq) = (input.ts.value(input.row), input.seq.value(input.row));
        self.heap.push(Reverse((ts, seq, i)));
        Ok(())
    }

    /// The next `BATCH_ROWS` rows in order, or `None` when every input is consumed.
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let mut picks: Vec<(usize, usize)> = Vec::with_capacity(BATCH_ROWS);
        while picks.len() < BATCH_ROWS {
            let Some(Reverse((_, _, i))) = self.heap.pop() else { break };
            let input = &mut self.inputs[i];
            picks.push((input.batch, input.row));
            input.row += 1;
            self.advance(i).await?;
        }
        if picks.is_empty() {
            return Ok(None);
        }
        let batches: Vec<&RecordBatch> = self.held.iter().collect();
        let out =
            arrow_select::interleave::interleave_record_batch(&batches, &picks).map_err(|e| {
                Error::new(ErrorKind::Unexpected, "cannot merge batches").with_source(e)
            })?;
        self.release();
        Ok(Some(out))
    }

    /// Drops held batches that no input points into any more, renumbering the rest.
    fn release(&mut self) {
        let mut keep: Vec<usize> =
            self.inputs.iter().filter(|i| i.row < i.rows).map(|i| i.batch).collect();
        keep.sort_unstable();
        keep.dedup();
        let held = std::mem::take(&mut self.held);
        let mut renumber = std::collections::HashMap::new();
        for (new, (old, batch)) in held
            .into_iter()
            .enumerate()
            .filter(|(old, _)| keep.binary_search(old).is_ok())
            .enumerate()
        {
            renumber.insert(old, new);
            self.held.push(batch);
        }
        for input in &mut self.inputs {
            if let Some(new) = renumber.get(&input.batch) {
                input.batch = *new;
            }
        }
    }
}
