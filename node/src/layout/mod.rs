//! How a table's stored events become rows of its Iceberg schema: raw tables (SPEC §4),
//! typed tables (see [`crate::typed`]) and dead-letter tables each have a [`Layout`]; this
//! module turns stored rows into Arrow record batches of that layout, split by the values
//! of the table's partition spec ([`partition`]), and writes them as data files
//! ([`writer`]).

mod arrow;
mod dead_letter;
pub mod partition;
pub mod writer;

use std::sync::Arc;

pub use arrow::events_to_batch;
pub use partition::{PartitionBatch, Partitioner, split_rows};

use crate::schema::{self, Row, properties};
use crate::typed::TypedError;

/// How a table's stored events become rows of its Iceberg schema.
#[derive(Debug, Clone)]
pub enum Layout {
    /// The payload as JSON text (or bytes): the schema of SPEC §4.
    Raw,
    /// Payload fields as typed columns (see [`crate::typed`]).
    Typed(Arc<crate::typed::TypedTable>),
    /// A typed table's dead-letter table (see [`crate::schema::dead_letter`]).
    DeadLetter,
}

impl Layout {
    /// The layout of a table's current metadata.
    pub fn of(metadata: &iceberg::spec::TableMetadata) -> Result<Layout, TypedError> {
        if metadata.properties().get(properties::TABLE_MODE).map(String::as_str)
            == Some("dead_letter")
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
            Layout::Raw => schema::arrow_schema(),
            Layout::Typed(t) => t.arrow_schema(),
            Layout::DeadLetter => schema::dead_letter::arrow_schema(),
        }
    }

    /// One record batch in the table's schema, rows in the given order.
    pub fn to_batch(&self, rows: &[Row]) -> Result<arrow_array::RecordBatch, TypedError> {
        match self {
            Layout::Raw => Ok(events_to_batch(rows)?),
            Layout::Typed(t) => t.to_batch(rows),
            Layout::DeadLetter => dead_letter::to_batch(rows),
        }
    }
}
