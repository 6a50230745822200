#[derive(Debug, thiserror::Error)]
pub enum HotError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt hot store entry in `{cf}`: {what}")]
    Corrupt { cf: &'static str, what: String },
    #[error("table id space exhausted")]
    TableIdsExhausted,
}

pub type Result<T, E = HotError> = std::result::Result<T, E>;
