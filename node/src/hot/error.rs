#[derive(Debug, thiserror::Error)]
pub enum HotError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt hot store entry in `{cf}`: {what}")]
    Corrupt { cf: &'static str, what: String },
    #[error("table id space exhausted")]
    TableIdsExhausted,
    #[error(
        "the node already holds {limit} tables (limits.max_tables); a write to a new table is refused"
    )]
    TableLimit { limit: usize },
    #[error("cannot write to the node's log")]
    Log(#[from] crate::log::LogError),
    #[error("the node's log is not open yet")]
    NoLog,
}

pub type Result<T, E = HotError> = std::result::Result<T, E>;

impl crate::error::CodedError for HotError {
    fn code(&self) -> crate::error::ErrorCode {
        use crate::error::ErrorCode;
        match self {
            HotError::TableLimit { .. } => ErrorCode::BadRequest,
            HotError::Log(e) => e.code(),
            HotError::NoLog => ErrorCode::Unavailable,
            HotError::Rocks(_) | HotError::Corrupt { .. } | HotError::TableIdsExhausted => {
                ErrorCode::Internal
            }
        }
    }
}
