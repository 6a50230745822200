//! The Iceberg schema of every Zombi table: its ten system columns, the partition spec
//! `identity(event_date), identity(event_hour)`, the sort order `timestamp_ms, sequence`,
//! and the properties a table is created with.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use iceberg::TableCreation;
use iceberg::spec::{
    NestedField, NullOrder, PrimitiveType, Schema, SchemaRef, SortDirection, SortField, SortOrder,
    Transform, Type, UnboundPartitionSpec,
};

use super::properties;

pub const FIELD_PARTITION: i32 = 1;
pub const FIELD_SEQUENCE: i32 = 2;
pub const FIELD_TIMESTAMP_MS: i32 = 3;
pub const FIELD_EVENT_TIME: i32 = 4;
pub const FIELD_INGEST_TIME: i32 = 5;
pub const FIELD_IDEMPOTENCY_KEY: i32 = 6;
pub const FIELD_PAYLOAD: i32 = 7;
pub const FIELD_PAYLOAD_BYTES: i32 = 8;
pub const FIELD_EVENT_DATE: i32 = 9;
pub const FIELD_EVENT_HOUR: i32 = 10;

/// Whether a top-level field is one of the ten system columns every table has.
pub fn is_system_field(id: i32) -> bool {
    (FIELD_PARTITION..=FIELD_EVENT_HOUR).contains(&id)
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let p = |t| Type::Primitive(t);
    let fields = [
        NestedField::required(FIELD_PARTITION, "partition", p(PrimitiveType::Int)),
        NestedField::required(FIELD_SEQUENCE, "sequence", p(PrimitiveType::Long)),
        NestedField::required(FIELD_TIMESTAMP_MS, "timestamp_ms", p(PrimitiveType::Long)),
        NestedField::required(FIELD_EVENT_TIME, "event_time", p(PrimitiveType::Timestamptz)),
        NestedField::required(FIELD_INGEST_TIME, "ingest_time", p(PrimitiveType::Timestamptz)),
        NestedField::optional(FIELD_IDEMPOTENCY_KEY, "idempotency_key", p(PrimitiveType::String)),
        NestedField::optional(FIELD_PAYLOAD, "payload", p(PrimitiveType::String)),
        NestedField::optional(FIELD_PAYLOAD_BYTES, "payload_bytes", p(PrimitiveType::Binary)),
        NestedField::required(FIELD_EVENT_DATE, "event_date", p(PrimitiveType::Date)),
        NestedField::required(FIELD_EVENT_HOUR, "event_hour", p(PrimitiveType::Int)),
    ];
    Arc::new(
        Schema::builder()
            .with_schema_id(0)
            .with_fields(fields.into_iter().map(Arc::new))
            .build()
            .expect("the Zombi schema is valid"),
    )
});

/// The Iceberg schema of every raw Zombi table: the ten system columns.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

pub fn partition_spec() -> UnboundPartitionSpec {
    UnboundPartitionSpec::builder()
        .with_spec_id(0)
        .add_partition_field(FIELD_EVENT_DATE, "event_date", Transform::Identity)
        .and_then(|b| b.add_partition_field(FIELD_EVENT_HOUR, "event_hour", Transform::Identity))
        .expect("the Zombi partition spec is valid")
        .build()
}

pub fn sort_order() -> SortOrder {
    let field = |source_id| SortField {
        source_id,
        transform: Transform::Identity,
        direction: SortDirection::Ascending,
        null_order: NullOrder::First,
    };
    SortOrder::builder()
        .with_order_id(1)
        .with_sort_field(field(FIELD_TIMESTAMP_MS))
        .with_sort_field(field(FIELD_SEQUENCE))
        .build(&SCHEMA)
        .expect("the Zombi sort order is valid")
}

/// Table properties set at creation.
pub fn table_properties() -> HashMap<String, String> {
    HashMap::from([
        ("write.format.default".into(), "parquet".into()),
        ("write.parquet.compression-codec".into(), "zstd".into()),
        (properties::LAYOUT_VERSION.into(), "1".into()),
    ])
}

/// The creation of a raw table: what a table's first write creates.
pub fn raw_creation(name: &str) -> TableCreation {
    TableCreation::builder()
        .name(name.to_owned())
        .schema(schema().as_ref().clone())
        .partition_spec(partition_spec())
        .sort_order(sort_order())
        .properties(table_properties())
        .build()
}
