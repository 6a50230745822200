//! TEMPORARY: serves the routes over TCP for a manual check with real engines.
use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use iceberg::io::LocalFsStorageFactory;
use iceberg::memory::{MEMORY_CATALOG_WAREHOUSE, MemoryCatalogBuilder};
use iceberg::spec::{DataFileFormat, NestedField, PrimitiveType, Schema, Type};
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableCreation, TableIdent};
use parquet::file::properties::WriterProperties;

#[tokio::test]
#[ignore]
async fn serve_for_engines() {
    let dir = std::path::PathBuf::from("/tmp/harness-warehouse");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let location = format!("file://{}", dir.display());
    let catalog = MemoryCatalogBuilder::default()
        .with_storage_factory(Arc::new(LocalFsStorageFactory))
        .load("test", HashMap::from([(MEMORY_CATALOG_WAREHOUSE.to_owned(), location.clone())]))
        .await
        .unwrap();
    let ns = NamespaceIdent::new("zombi".to_owned());
    catalog.create_namespace(&ns, HashMap::new()).await.unwrap();
    let schema = Schema::builder()
        .with_fields(vec![
            NestedField::required(1, "sequence", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::optional(2, "payload", Type::Primitive(PrimitiveType::String)).into(),
        ])
        .build()
        .unwrap();
    for name in ["events", "other"] {
        let c = TableCreation::builder().name(name.to_owned()).schema(schema.clone()).build();
        catalog.create_table(&ns, c).await.unwrap();
    }
    let ident = TableIdent::new(ns.clone(), "events".to_owned());
    for round in 0..2i64 {
        let table = catalog.load_table(&ident).await.unwrap();
        let arrow_schema =
            Arc::new(iceberg::arrow::schema_to_arrow_schema(table.metadata().current_schema()).unwrap());
        let batch = RecordBatch::try_new(
            arrow_schema,
            vec![
                Arc::new(Int64Array::from(vec![round * 3, round * 3 + 1, round * 3 + 2])) as ArrayRef,
                Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])) as ArrayRef,
            ],
        )
        .unwrap();
        let rolling = RollingFileWriterBuilder::new_with_default_file_size(
            ParquetWriterBuilder::new(WriterProperties::default(), table.metadata().current_schema().clone()),
            table.file_io().clone(),
            DefaultLocationGenerator::new(table.metadata()).unwrap(),
            DefaultFileNameGenerator::new(format!("r{round}"), None, DataFileFormat::Parquet),
        );
        let mut writer = DataFileWriterBuilder::new(rolling).build(None).await.unwrap();
        writer.write(batch).await.unwrap();
        let files = writer.close().await.unwrap();
        let tx = Transaction::new(&table);
        let tx = tx.fast_append().add_data_files(files).apply(tx).unwrap();
        tx.commit(&catalog).await.unwrap();
    }
    let token = std::env::var("HARNESS_TOKEN").ok();
    let app = super::router(super::RestCatalogState {
        catalog: Arc::new(catalog),
        catalog_token: token,
        warehouse_location: location,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:18181").await.unwrap();
    eprintln!("listening");
    axum::serve(listener, app).await.unwrap();
}
