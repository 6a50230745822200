//! One error type for the node's own (non-catalog) HTTP API and its single mapping to
//! status codes. Bodies are `{"error":{"code","message"}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("node is over its in-flight byte budget")]
    Overloaded,
    /// Too many requests of one kind at once; the message says which limit.
    #[error("{0}")]
    Busy(String),
    #[error("node is shutting down")]
    ShuttingDown,
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Gone(_) => "gone",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Overloaded | ApiError::Busy(_) => "overloaded",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Overloaded | ApiError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<zombi_shared::auth::AuthError> for ApiError {
    fn from(e: zombi_shared::auth::AuthError) -> Self {
        match e {
            zombi_shared::auth::AuthError::Missing => ApiError::Unauthorized(e.to_string()),
            zombi_shared::auth::AuthError::Rejected => ApiError::Forbidden(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(detail) => {
                // The detail stays in the log; the caller gets an id to quote.
                let id = uuid::Uuid::now_v7();
                tracing::error!(error_id = %id, error = %detail, "internal error");
                format!("internal error; error id {id}")
            }
            other => other.to_string(),
        };
        let mut response =
            (status, Json(json!({"error": {"code": self.code(), "message": message}})))
                .into_response();
        if matches!(
            self,
            ApiError::Overloaded
                | ApiError::Busy(_)
                | ApiError::ShuttingDown
                | ApiError::Unavailable(_)
        ) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
