//! Dead-letter tables: where a typed table with `zombi.on-error = dead_letter` puts the
//! events that do not fit its schema, so a bad record never blocks the table.
//!
//! The combiner acknowledges such an event like any other: it keeps its sequence in its
//! table as a *diverted* record (no row; sequences stay dense) and, in the same write,
//! becomes a row of `<table>__dlq` (same partition, the dead-letter table's own dense
//! sequences) holding the raw payload, the error, and the source sequence. The dead-letter
//! table is an Iceberg table like any other, flushed and compacted by the same machinery,
//! that every engine reads. [`replay`] re-ingests its rows once the schema was fixed.

pub mod replay;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::SchemaRef as ArrowSchemaRef;
use iceberg::TableCreation;
use iceberg::spec::{NestedField, PrimitiveType, Schema, SchemaRef, Type};
use zombi_shared::DEAD_LETTER_SUFFIX;

use crate::hot::Role;
use crate::layout::{self, Row};

pub const FIELD_ERROR: i32 = 11;
pub const FIELD_SOURCE_SEQUENCE: i32 = 12;
/// Table property naming the table a dead-letter table belongs to.
pub const SOURCE_TABLE: &str = "zombi.source-table";

/// The dead-letter table of `table`.
pub fn table_of(table: &str) -> String {
    format!("{table}{DEAD_LETTER_SUFFIX}")
}

/// The table `name` is the dead-letter table of, if it is one.
pub fn source_of(name: &str) -> Option<&str> {
    name.strip_suffix(DEAD_LETTER_SUFFIX)
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let system = layout::schema();
    let fields = system.as_struct().fields().iter().cloned().chain([
        Arc::new(NestedField::required(
            FIELD_ERROR,
            "error",
            Type::Primitive(PrimitiveType::String),
        )),
        Arc::new(NestedField::required(
            FIELD_SOURCE_SEQUENCE,
            "source_sequence",
            Type::Primitive(PrimitiveType::Long),
        )),
    ]);
    Arc::new(
        Schema::builder()
            .with_schema_id(0)
            .with_fields(fields)
            .build()
            .expect("the dead-letter schema is valid"),
    )
});

static ARROW_SCHEMA: LazyLock<ArrowSchemaRef> = LazyLock::new(|| {
    Arc::new(iceberg::arrow::schema_to_arrow_schema(&SCHEMA).expect("converts to Arrow"))
});

/// Every dead-letter table's schema: the ten system columns (`partition` is the source
/// partition, `ingest_time` when the event was received, `payload`/`payload_bytes` the
/// event's raw payload), then `error` and `source_sequence`.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

pub fn arrow_schema() -> ArrowSchemaRef {
    ARROW_SCHEMA.clone()
}

/// The creation of `source`'s dead-letter table.
pub fn creation(source: &str) -> TableCreation {
    let mut props: HashMap<String, String> = layout::table_properties();
    props.insert(crate::typed::MODE.to_owned(), "dead_letter".to_owned());
    props.insert(SOURCE_TABLE.to_owned(), source.to_owned());
    TableCreation::builder()
        .name(table_of(source))
        .schema(schema().as_ref().clone())
        .partition_spec(layout::partition_spec())
        .sort_order(layout::sort_order())
        .properties(props)
        .build()
}

/// One record batch of dead-letter rows, in the given order.
pub fn to_batch(rows: &[Row]) -> Result<RecordBatch, String> {
    let mut errors = Vec::with_capacity(rows.len());
    let mut sources = Vec::with_capacity(rows.len());
    for (p, s, e) in rows {
        let Role::DeadLetter { source_sequence, error } = &e.role else {
            return Err(format!("partition {p} sequence {s} is not a dead-letter record"));
        };
        errors.push(error.as_str());
        sources.push(*source_sequence as i64);
    }
    let mut columns: Vec<ArrayRef> = layout::system_columns(rows, None).to_vec();
    columns.push(Arc::new(StringArray::from(errors)));
    columns.push(Arc::new(Int64Array::from(sources)));
    RecordBatch::try_new(arrow_schema(), columns).map_err(|e| e.to_string())
}
