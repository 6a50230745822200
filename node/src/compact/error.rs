#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error("iceberg: {0}")]
    Iceberg(#[from] iceberg::Error),
    #[error("warehouse listing: {0}")]
    Listing(iceberg::Error),
    #[error("table {0} is unknown")]
    UnknownTable(String),
    #[error("maintenance is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Failed(String),
}
