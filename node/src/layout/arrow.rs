//! Stored events → Arrow record batches of a raw table (with Iceberg field ids).

use arrow_array::RecordBatch;

use crate::schema::{Row, arrow_schema, system_columns};

/// Builds one record batch of a raw table, rows in the given order.
pub fn events_to_batch(rows: &[Row]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    RecordBatch::try_new(arrow_schema(), system_columns(rows, None).to_vec())
}
