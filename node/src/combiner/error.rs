use zombi_shared::wire::{GroupError, GroupErrorCode};

use crate::hot::HotError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum CombinerError {
    #[error("node is over its in-flight byte budget")]
    Overloaded,
    #[error("node is shutting down")]
    ShuttingDown,
    /// An event of the group does not fit its typed table; the text names the record, the
    /// field and the reason, for the producer. Nothing of the group was stored.
    #[error("{0}")]
    Invalid(String),
    /// The table's schema cannot take events (see [`crate::typed::Typing::Unusable`]).
    #[error("{0}")]
    Unusable(String),
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
            CombinerError::Invalid(_) => GroupErrorCode::Invalid,
            CombinerError::Unusable(_) => GroupErrorCode::NotReady,
        };
        // Store details stay in the node's log; the edge only needs the class.
        let message = match self {
            CombinerError::Store(_) => "write to the hot store failed".to_owned(),
            other => other.to_string(),
        };
        GroupError { code, message }
    }
}
