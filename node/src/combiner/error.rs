use std::sync::Arc;

use zombi_shared::wire::{GroupError, GroupErrorCode};

use crate::error::{CodedError, ErrorCode};
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
    /// The micro-batch holding this group could not be written (shared by its groups).
    #[error("write to the hot store failed")]
    Store(#[source] Arc<HotError>),
}

impl From<HotError> for CombinerError {
    fn from(e: HotError) -> Self {
        CombinerError::Store(Arc::new(e))
    }
}

impl CodedError for CombinerError {
    fn code(&self) -> ErrorCode {
        match self {
            CombinerError::Overloaded => ErrorCode::Overloaded,
            CombinerError::ShuttingDown => ErrorCode::ShuttingDown,
            CombinerError::Invalid(_) => ErrorCode::BadRequest,
            CombinerError::Unusable(_) => ErrorCode::Unavailable,
            CombinerError::Store(e) => match e.code() {
                code @ (ErrorCode::NotOwner | ErrorCode::ShuttingDown | ErrorCode::Unavailable) => {
                    code
                }
                _ => ErrorCode::Internal,
            },
        }
    }
}

impl CombinerError {
    /// The group's answer to the edge. A store failure's cause stays in the node's log (the
    /// worker logged it); the edge only needs the class.
    pub fn to_wire(&self) -> GroupError {
        let code = match self {
            CombinerError::Overloaded => GroupErrorCode::Overloaded,
            CombinerError::ShuttingDown => GroupErrorCode::Unavailable,
            CombinerError::Store(_) if self.code() != ErrorCode::Internal => {
                GroupErrorCode::Unavailable
            }
            CombinerError::Store(_) => GroupErrorCode::Internal,
            CombinerError::Invalid(_) => GroupErrorCode::Invalid,
            CombinerError::Unusable(_) => GroupErrorCode::NotReady,
        };
        GroupError { code, message: self.to_string() }
    }
}
