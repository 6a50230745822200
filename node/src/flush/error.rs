use std::sync::Arc;

use crate::error::{CodedError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    #[error("the catalog or the warehouse failed")]
    Iceberg(#[from] iceberg::Error),
    #[error("the hot store failed")]
    Hot(#[from] crate::hot::HotError),
    #[error("cannot build the table's record batches")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The table's schema does not take its stored events (a typed table whose schema
    /// changed incompatibly, or that Zombi cannot convert to).
    #[error("the table's schema does not take its stored events")]
    Schema(#[from] crate::typed::TypedError),
    #[error("table {0} does not exist")]
    UnknownTable(String),
    #[error("the flusher is shutting down")]
    ShuttingDown,
    /// A commit wait named a sequence the table has not acknowledged.
    #[error("partition {partition} of table {table} has no acknowledged sequence {sequence}")]
    NotAcknowledged { table: String, partition: u32, sequence: u64 },
    #[error("a blocking task of the flush failed")]
    Blocking(#[from] tokio::task::JoinError),
    /// An explicit flush of `table` failed in the table's task.
    #[error("flushing {table} failed")]
    Failed {
        table: String,
        #[source]
        source: Arc<FlushError>,
    },
    /// A failure a test injected (`failpoints` builds).
    #[error("failpoint {0} injected a failure")]
    Injected(&'static str),
}

impl CodedError for FlushError {
    fn code(&self) -> ErrorCode {
        match self {
            FlushError::UnknownTable(_) => ErrorCode::NotFound,
            FlushError::ShuttingDown => ErrorCode::ShuttingDown,
            FlushError::NotAcknowledged { .. } => ErrorCode::BadRequest,
            FlushError::Failed { source, .. } => source.code(),
            // The node retries a failed flush with backoff: a later one may succeed.
            FlushError::Iceberg(_)
            | FlushError::Hot(_)
            | FlushError::Arrow(_)
            | FlushError::Schema(_)
            | FlushError::Blocking(_)
            | FlushError::Injected(_) => ErrorCode::Unavailable,
        }
    }
}
