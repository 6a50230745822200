use crate::error::{CodedError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error("the catalog or the warehouse failed")]
    Iceberg(#[from] iceberg::Error),
    #[error("cannot list the warehouse")]
    Listing(#[source] iceberg::Error),
    /// A listing that misses files the table references cannot be trusted to find what
    /// is unreferenced.
    #[error(
        "the warehouse listing does not show {0}, which the table references; deleting nothing"
    )]
    IncompleteListing(String),
    #[error("the file rewrite failed")]
    Rewrite(#[source] tokio::task::JoinError),
    /// The table's schema or partition spec does not take its rows.
    #[error("the table's schema or partition spec does not take its rows")]
    Schema(#[from] crate::typed::TypedError),
    #[error("table {table} has settings maintenance cannot apply: {reason}")]
    Settings { table: String, reason: String },
    #[error("maintenance panicked")]
    Panicked,
    #[error("table {0} does not exist")]
    UnknownTable(String),
    #[error("maintenance is shutting down")]
    ShuttingDown,
    /// A run requested through `POST /compact` failed in the worker.
    #[error("maintenance of {table} failed")]
    Failed {
        table: String,
        #[source]
        source: std::sync::Arc<MaintenanceError>,
    },
}

impl CodedError for MaintenanceError {
    fn code(&self) -> ErrorCode {
        match self {
            MaintenanceError::UnknownTable(_) => ErrorCode::NotFound,
            MaintenanceError::Settings { .. } => ErrorCode::BadRequest,
            MaintenanceError::ShuttingDown => ErrorCode::ShuttingDown,
            MaintenanceError::Failed { source, .. } => source.code(),
            // A later run may succeed: the worker retries with backoff.
            MaintenanceError::Iceberg(_)
            | MaintenanceError::Listing(_)
            | MaintenanceError::IncompleteListing(_)
            | MaintenanceError::Rewrite(_)
            | MaintenanceError::Schema(_)
            | MaintenanceError::Panicked => ErrorCode::Unavailable,
        }
    }
}
