//! Dead-letter rows as Arrow: the ten system columns of the event as received, then its
//! error and its sequence in the source table.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};

use crate::hot::Role;
use crate::schema::{self, Row, dead_letter};
use crate::typed::TypedError;

/// One record batch of dead-letter rows, in the given order.
pub fn to_batch(rows: &[Row]) -> Result<RecordBatch, TypedError> {
    let mut errors = Vec::with_capacity(rows.len());
    let mut sources = Vec::with_capacity(rows.len());
    for (p, s, e) in rows {
        let Role::DeadLetter { source_sequence, error } = &e.role else {
            return Err(TypedError::Rows(format!(
                "partition {p} sequence {s} is not a dead-letter record"
            )));
        };
        errors.push(error.as_str());
        sources.push(*source_sequence as i64);
    }
    let mut columns: Vec<ArrayRef> = schema::system_columns(rows, None).to_vec();
    columns.push(Arc::new(StringArray::from(errors)));
    columns.push(Arc::new(Int64Array::from(sources)));
    Ok(RecordBatch::try_new(dead_letter::arrow_schema(), columns)?)
}
