//! Writes one flush's events as Parquet data files: one set of files per
//! (event_date, event_hour), ZSTD-compressed, with column statistics and field ids.

use iceberg::spec::{DataFile, DataFileFormat, Literal, PartitionKey, Struct};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::layout::HourBatch;

fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid zstd level")))
        .set_statistics_enabled(EnabledStatistics::Page)
        .build()
}

/// Writes `batches` (each one hour) under the table's data location; file names start with
/// `flush_id`, so files of a failed attempt are never overwritten or reused by a later one.
pub async fn write_data_files(
    table: &Table,
    batches: Vec<HourBatch>,
    target_file_size: usize,
    flush_id: &str,
) -> iceberg::Result<Vec<DataFile>> {
    let metadata = table.metadata();
    let schema = metadata.current_schema().clone();
    let spec = metadata.default_partition_spec().as_ref().clone();
    let builder = DataFileWriterBuilder::new(RollingFileWriterBuilder::new(
        ParquetWriterBuilder::new(writer_properties(), schema.clone()),
        target_file_size,
        table.file_io().clone(),
        DefaultLocationGenerator::new(metadata)?,
        DefaultFileNameGenerator::new(flush_id.to_owned(), None, DataFileFormat::Parquet),
    ));
    let mut files = Vec::new();
    for hour in batches {
        let key = PartitionKey::new(
            spec.clone(),
            schema.clone(),
            Struct::from_iter([
                Some(Literal::date(hour.event_date)),
                Some(Literal::int(hour.event_hour)),
            ]),
        );
        let mut writer = builder.build(Some(key)).await?;
        writer.write(hour.batch).await?;
        files.extend(writer.close().await?);
    }
    Ok(files)
}
