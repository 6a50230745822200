#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    #[error("iceberg: {0}")]
    Iceberg(#[from] iceberg::Error),
    #[error("hot store: {0}")]
    Hot(#[from] crate::hot::HotError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The table's schema does not take its stored events (a typed table whose schema
    /// changed incompatibly, or that Zombi cannot convert to).
    #[error("schema: {0}")]
    Schema(String),
    #[error("table {0} is unknown")]
    UnknownTable(String),
    #[error("the flusher is shutting down")]
    ShuttingDown,
    #[error("background task failed: {0}")]
    Task(String),
}

impl From<tokio::task::JoinError> for FlushError {
    fn from(e: tokio::task::JoinError) -> Self {
        FlushError::Task(e.to_string())
    }
}
