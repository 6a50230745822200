//! Writes a table's data files: one set of files per (event_date, event_hour), ZSTD
//! Parquet with column statistics and field ids, rolling over at a target size. The
//! flusher writes new events with it and compaction writes merged files.

use iceberg::spec::{DataFile, DataFileFormat, Literal, PartitionKey, Struct};
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

use crate::layout::HourBatch;

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

pub type HourWriter =
    DataFileWriter<ParquetWriterBuilder, DefaultLocationGenerator, DefaultFileNameGenerator>;

/// A writer of one partition (`partition` is its `(event_date, event_hour)` value) under the
/// table's data location. File names start with `prefix`, unique per flush or rewrite, so
/// the files of a failed attempt are never overwritten or reused by a later one.
pub async fn hour_writer(
    table: &Table,
    partition: Struct,
    target_file_size: usize,
    prefix: &str,
) -> iceberg::Result<HourWriter> {
    let metadata = table.metadata();
    let schema = metadata.current_schema().clone();
    let spec = metadata.default_partition_spec().as_ref().clone();
    let builder = DataFileWriterBuilder::new(RollingFileWriterBuilder::new(
        ParquetWriterBuilder::new(writer_properties(), schema.clone()),
        target_file_size,
        table.file_io().clone(),
        DefaultLocationGenerator::new(metadata)?,
        DefaultFileNameGenerator::new(prefix.to_owned(), None, DataFileFormat::Parquet),
    ));
    builder.build(Some(PartitionKey::new(spec, schema, partition))).await
}

/// The partition value of one hour.
fn hour_partition(event_date: i32, event_hour: i32) -> Struct {
    Struct::from_iter([Some(Literal::date(event_date)), Some(Literal::int(event_hour))])
}

/// Writes `batches` (each one hour) as new data files named after `flush_id`.
pub async fn write_data_files(
    table: &Table,
    batches: Vec<HourBatch>,
    target_file_size: usize,
    flush_id: &str,
) -> iceberg::Result<Vec<DataFile>> {
    let mut files = Vec::new();
    for hour in batches {
        let partition = hour_partition(hour.event_date, hour.event_hour);
        let mut writer = hour_writer(table, partition, target_file_size, flush_id).await?;
        writer.write(hour.batch).await?;
        files.extend(writer.close().await?);
    }
    Ok(files)
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
