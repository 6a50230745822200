use zombi_shared::wire::{GroupError, GroupErrorCode};

use crate::hot::HotError;

#[derive(Debug, thiserror::Error)]
pub enum CombinerError {
    #[error("node is over its in-flight byte budget")]
    Overloaded,
    #[error("node is shutting down")]
    ShuttingDown,
    /// The micro-batch holding this group could not be written; the text is for the log.
    #[error("hot store write failed: {0}")]
    Store(String),
}

impl From<HotError> for CombinerError {
    fn from(e: HotError) -> Self {
        CombinerError::Store(e.to_string())
    }
}

impl CombinerError {
    pub fn to_wire(&self) -> GroupError {
        let code = match self {
            CombinerError::Overloaded => GroupErrorCode::Overloaded,
            CombinerError::ShuttingDown => GroupErrorCode::Unavailable,
            CombinerError::Store(_) => GroupErrorCode::Internal,
        };
        // Store details stay in the node's log; the edge only needs the class.
        let message = match self {
            CombinerError::Store(_) => "write to the hot store failed".to_owned(),
            other => other.to_string(),
        };
        GroupError { code, message }
    }
}
