//! Dead-letter tables: where a typed table with `zombi.on-error = dead_letter` puts the
//! events that do not fit its schema, so a bad record never blocks the table.
//!
//! The combiner acknowledges such an event like any other: it keeps its sequence in its
//! table as a *diverted* record (no row; sequences stay dense) and, in the same write,
//! becomes a row of `<table>__dlq` (same partition, the dead-letter table's own dense
//! sequences) holding the raw payload, the error, and the source sequence. The dead-letter
//! table is an Iceberg table like any other, flushed and compacted by the same machinery,
//! that every engine reads; `crate::replay` re-ingests its rows once the schema was fixed.
//! This module holds its naming, its schema and its creation.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow_schema::SchemaRef as ArrowSchemaRef;
use iceberg::TableCreation;
use iceberg::spec::{NestedField, PrimitiveType, Schema, SchemaRef, Type};
use zombi_shared::DEAD_LETTER_SUFFIX;

use super::properties;

pub const FIELD_ERROR: i32 = 11;
pub const FIELD_SOURCE_SEQUENCE: i32 = 12;

/// The dead-letter table of `table`.
pub fn table_of(table: &str) -> String {
    format!("{table}{DEAD_LETTER_SUFFIX}")
}

/// The table `name` is the dead-letter table of, if it is one.
pub fn source_of(name: &str) -> Option<&str> {
    name.strip_suffix(DEAD_LETTER_SUFFIX)
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let system = super::schema();
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
    let mut props: HashMap<String, String> = super::table_properties();
    props.insert(properties::TABLE_MODE.to_owned(), "dead_letter".to_owned());
    props.insert(properties::SOURCE_TABLE.to_owned(), source.to_owned());
    TableCreation::builder()
        .name(table_of(source))
        .schema(schema().as_ref().clone())
        .partition_spec(super::partition_spec())
        .sort_order(super::sort_order())
        .properties(props)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_table_names_its_source_and_keeps_the_system_columns() {
        assert_eq!(table_of("orders"), "orders__dlq");
        assert_eq!(source_of("orders__dlq"), Some("orders"));
        assert_eq!(source_of("orders"), None);
        let c = creation("orders");
        assert_eq!(c.name, "orders__dlq");
        assert_eq!(c.properties[properties::SOURCE_TABLE], "orders");
        assert_eq!(c.properties[properties::TABLE_MODE], "dead_letter");
        let ids: Vec<i32> = schema().as_struct().fields().iter().map(|f| f.id).collect();
        assert_eq!(ids, (1..=12).collect::<Vec<_>>());
    }
}
