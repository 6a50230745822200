//! The vocabulary every layer of the node shares, at the bottom of them all: the ten
//! system columns every Zombi table has (SPEC §4) with field ids that never change, the
//! partition spec and sort order, the row type stored events become, the `zombi.*`
//! property keys, and the dead-letter table's schema and naming. Nothing here knows a
//! catalog, a flusher or a typed schema: those build on it.

mod columns;
pub mod dead_letter;
pub mod partitioning;
mod rows;
pub mod summary;

pub use columns::{
    FIELD_EVENT_DATE, FIELD_EVENT_HOUR, FIELD_EVENT_TIME, FIELD_IDEMPOTENCY_KEY, FIELD_INGEST_TIME,
    FIELD_PARTITION, FIELD_PAYLOAD, FIELD_PAYLOAD_BYTES, FIELD_SEQUENCE, FIELD_TIMESTAMP_MS,
    is_system_field, partition_spec, raw_creation, schema, sort_order, table_properties,
};
pub use rows::{Row, arrow_schema, date_hour, is_event_column, system_column, system_columns};
/// The `zombi.*` keys, defined once in the shared crate (the config names them too).
pub use zombi_shared::properties;
