//! Writes a table's data files: one set of files per partition value of the table's
//! current spec, ZSTD Parquet with column statistics and field ids, rolling over at a
//! target size. The flusher writes new events with it and maintenance writes merged and
//! rewritten files.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use arrow_array::RecordBatch;
use iceberg::spec::{DataFile, DataFileFormat, PartitionKey, PartitionSpecRef, Struct};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::{DataFileWriter, DataFileWriterBuilder};
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::partition::{PartitionBatch, Partitioner};

/// Rows and bytes per Parquet row group: bound what a reader (compaction included) holds
/// at once, and keep the rolling writer's size estimate (which counts the open row group
/// uncompressed) close, so files roll over near the target size.
const ROW_GROUP_ROWS: usize = 128 * 1024;
const ROW_GROUP_BYTES: usize = 16 << 20;

/// Columns without statistics: nobody filters on a JSON document or raw bytes, and their
/// exact bounds would be whole payloads in every manifest entry.
const NO_STATISTICS: [&str; 2] = ["payload", "payload_bytes"];

fn writer_properties() -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid zstd level")))
        .set_statistics_enabled(EnabledStatistics::Page)
        // Exact statistics: Parquet would cut long strings and mark them inexact, and
        // iceberg-rust builds a file's bounds from exact row-group statistics only, so over
        // several row groups the bounds would leave some values out and engines would prune
        // a file that holds the value they look for.
        .set_statistics_truncate_length(None)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES));
    for column in NO_STATISTICS {
        builder = builder.set_column_statistics_enabled(column.into(), EnabledStatistics::None);
    }
    builder.build()
}

pub type PartWriter =
    DataFileWriter<ParquetWriterBuilder, DefaultLocationGenerator, DefaultFileNameGenerator>;

/// A writer of one partition value of the table's spec `spec` (the current one: see
/// [`Partitioner`]) under the table's data location. File names start with `prefix`,
/// unique per flush or rewrite, so the files of a failed attempt are never overwritten or
/// reused by a later one.
pub async fn part_writer(
    table: &Table,
    spec: &PartitionSpecRef,
    partition: Struct,
    target_file_size: usize,
    prefix: &str,
) -> iceberg::Result<PartWriter> {
    let metadata = table.metadata();
    let schema = metadata.current_schema().clone();
    let builder = DataFileWriterBuilder::new(RollingFileWriterBuilder::new(
        ParquetWriterBuilder::new(writer_properties(), schema.clone()),
        target_file_size,
        table.file_io().clone(),
        DefaultLocationGenerator::new(metadata)?,
        DefaultFileNameGenerator::new(prefix.to_owned(), None, DataFileFormat::Parquet),
    ));
    builder.build(Some(PartitionKey::new(spec.as_ref().clone(), schema, partition))).await
}

/// Data files of one spec: which spec the files' partition values are of travels with
/// them into the manifests (a table whose spec evolved has files of several).
#[derive(Debug, Clone)]
pub struct SpecFiles {
    pub spec_id: i32,
    pub files: Vec<DataFile>,
}

/// Writes the rows of `batches` (each of one partition value of `partitioner`'s spec) as
/// new data files named after `prefix`.
pub async fn write_data_files(
    table: &Table,
    partitioner: &Partitioner,
    batches: Vec<PartitionBatch>,
    target_file_size: usize,
    prefix: &str,
) -> iceberg::Result<SpecFiles> {
    let mut writers = PartitionedWriter::new(table, partitioner, target_file_size, prefix);
    for part in batches {
        writers.write_part(part).await?;
    }
    writers.close().await
}

/// Writers of every partition value a stream of rows brings, each rolling over at the
/// target size; rows go to their partition's writer in the order they come.
pub struct PartitionedWriter<'a> {
    table: &'a Table,
    partitioner: &'a Partitioner,
    target_file_size: usize,
    prefix: &'a str,
    open: HashMap<Struct, PartWriter>,
}

impl<'a> PartitionedWriter<'a> {
    pub fn new(
        table: &'a Table,
        partitioner: &'a Partitioner,
        target_file_size: usize,
        prefix: &'a str,
    ) -> Self {
        PartitionedWriter { table, partitioner, target_file_size, prefix, open: HashMap::new() }
    }

    /// Writes rows in the table's schema, split by partition value.
    pub async fn write(&mut self, batch: RecordBatch) -> iceberg::Result<()> {
        let parts = self
            .partitioner
            .split(batch)
            .map_err(|e| iceberg::Error::new(iceberg::ErrorKind::DataInvalid, e.to_string()))?;
        for part in parts {
            self.write_part(part).await?;
        }
        Ok(())
    }

    async fn write_part(&mut self, part: PartitionBatch) -> iceberg::Result<()> {
        let writer = match self.open.entry(part.partition) {
            Entry::Occupied(w) => w.into_mut(),
            Entry::Vacant(v) => {
                let partition = v.key().clone();
                let spec = self.partitioner.spec();
                let w =
                    part_writer(self.table, spec, partition, self.target_file_size, self.prefix)
                        .await?;
                v.insert(w)
            }
        };
        writer.write(part.batch).await
    }

    pub async fn close(self) -> iceberg::Result<SpecFiles> {
        let mut files = Vec::new();
        for (_, mut writer) in self.open {
            files.extend(writer.close().await?);
        }
        Ok(SpecFiles { spec_id: self.partitioner.spec_id(), files })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    #[test]
    fn long_strings_keep_exact_statistics_in_every_row_group_and_payloads_have_none() {
        let long = "u".repeat(200);
        let rows = ROW_GROUP_ROWS + 10;
        let values: Vec<&str> =
            (0..rows).map(|i| if i == 0 { long.as_str() } else { "a" }).collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("user_agent", DataType::Utf8, false),
            Field::new("payload", DataType::Utf8, false),
        ]));
        let column = Arc::new(StringArray::from(values));
        let batch = RecordBatch::try_new(schema.clone(), vec![column.clone(), column]).unwrap();
        let mut bytes = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut bytes, schema, Some(writer_properties())).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        let groups = reader.metadata().row_groups();
        assert_eq!(groups.len(), 2, "two row groups");
        let stats = groups[0].column(0).statistics().expect("statistics");
        assert!(stats.min_is_exact() && stats.max_is_exact(), "{stats:?}");
        match stats {
            parquet::file::statistics::Statistics::ByteArray(s) => {
                assert_eq!(s.max_opt().map(|v| v.len()), Some(200));
            }
            other => panic!("{other:?}"),
        }
        for g in groups {
            assert!(g.column(1).statistics().is_none_or(|s| s.min_bytes_opt().is_none()));
        }
    }
}
