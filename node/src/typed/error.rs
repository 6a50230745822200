use std::sync::Arc;

use crate::error::{CodedError, ErrorCode};

/// What typed tables refuse or fail at. The messages are for the person who declared or
/// changed the table (or, for rows, the operator); they name the field and the reason.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TypedError {
    /// A `zombi.*` table property Zombi does not know, or a value it does not take.
    #[error("{0}")]
    Property(String),
    /// A table declaration (`CREATE TABLE`, PyIceberg, the config) Zombi refuses.
    #[error("{0}")]
    Declaration(String),
    /// A schema or property change Zombi refuses.
    #[error("{0}")]
    SchemaChange(String),
    /// A schema Zombi cannot convert events into.
    #[error("{0}")]
    Unsupported(String),
    /// Stored rows that do not convert into the table's current schema.
    #[error("{0}")]
    Rows(String),
    /// Arrow refused the columns built from the rows.
    #[error("cannot assemble the rows into a record batch")]
    Arrow(#[source] Arc<arrow_schema::ArrowError>),
}

impl From<arrow_schema::ArrowError> for TypedError {
    fn from(e: arrow_schema::ArrowError) -> Self {
        TypedError::Arrow(Arc::new(e))
    }
}

impl CodedError for TypedError {
    fn code(&self) -> ErrorCode {
        match self {
            TypedError::Property(_) | TypedError::Declaration(_) | TypedError::SchemaChange(_) => {
                ErrorCode::BadRequest
            }
            TypedError::Unsupported(_) => ErrorCode::Unavailable,
            TypedError::Rows(_) | TypedError::Arrow(_) => ErrorCode::Internal,
        }
    }
}
