//! The layout of every Zombi table (SPEC §4): its Iceberg schema with field ids that never
//! change, the partition spec `identity(event_date), identity(event_hour)`, the sort order
//! `timestamp_ms, sequence`, and the Arrow form of stored events in that schema.

mod arrow;
pub mod writer;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use iceberg::spec::{
    NestedField, NullOrder, PrimitiveType, Schema, SchemaRef, SortDirection, SortField, SortOrder,
    Transform, Type, UnboundPartitionSpec,
};

pub use arrow::{
    HourBatch, Row, arrow_schema, date_hour, events_to_batch, split_by_hour, system_columns,
};

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

/// How a table's stored events become rows of its Iceberg schema.
#[derive(Debug, Clone)]
pub enum Layout {
    /// The payload as JSON text (or bytes): the schema of SPEC §4.
    Raw,
    /// Payload fields as typed columns (see [`crate::typed`]).
    Typed(Arc<crate::typed::TypedTable>),
    /// A typed table's dead-letter table (see [`crate::deadletter`]).
    DeadLetter,
}

impl Layout {
    /// The layout of a table's current metadata.
    pub fn of(metadata: &iceberg::spec::TableMetadata) -> Result<Layout, String> {
        if metadata.properties().get(crate::typed::MODE).map(String::as_str) == Some("dead_letter")
        {
            return Ok(Layout::DeadLetter);
        }
        Ok(match crate::typed::TypedTable::of(metadata)? {
            Some(t) => Layout::Typed(t),
            None => Layout::Raw,
        })
    }

    pub fn arrow_schema(&self) -> arrow_schema::SchemaRef {
        match self {
            Layout::Raw => arrow_schema(),
            Layout::Typed(t) => t.arrow_schema(),
            Layout::DeadLetter => crate::deadletter::arrow_schema(),
        }
    }

    /// One record batch in the table's schema, rows in the given order.
    pub fn to_batch(&self, rows: &[Row]) -> Result<arrow_array::RecordBatch, String> {
        match self {
            Layout::Raw => events_to_batch(rows).map_err(|e| e.to_string()),
            Layout::Typed(t) => t.to_batch(rows),
            Layout::DeadLetter => crate::deadletter::to_batch(rows),
        }
    }
}

/// Snapshot summary key prefix of the watermark map: `zombi.watermark.<partition>`.
pub const WATERMARK_PREFIX: &str = "zombi.watermark.";
/// Snapshot summary key of the unique id of the flush that made the snapshot.
pub const COMMIT_ID_KEY: &str = "zombi.commit-id";

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

/// The Iceberg schema of every Zombi table.
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
        ("zombi.layout-version".into(), "1".into()),
    ])
}

/// Reads the watermark map out of a snapshot summary's additional properties.
pub fn watermarks_from_summary(
    props: &HashMap<String, String>,
) -> std::collections::BTreeMap<u32, u64> {
    props
        .iter()
        .filter_map(|(k, v)| {
            let partition = k.strip_prefix(WATERMARK_PREFIX)?.parse().ok()?;
            Some((partition, v.parse().ok()?))
        })
        .collect()
}
