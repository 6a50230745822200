//! The error answer of the node's own (non-catalog) HTTP API: a code, a message for the
//! person reading it, and the cause kept for the log. [`status`] is the one mapping of codes
//! to statuses. Bodies are `{"error":{"code","message"}}`. A server-side failure answers an
//! error id and no internal detail; its cause is logged under that id.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{Chain, CodedError, ErrorCode};

type Source = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    source: Option<Source>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), source: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

/// Every subsystem error becomes an answer with its own code and message, keeping the
/// error itself for the log.
impl<E: CodedError> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError { code: e.code(), message: e.to_string(), source: Some(Box::new(e)) }
    }
}

impl CodedError for zombi_shared::auth::AuthError {
    fn code(&self) -> ErrorCode {
        match self {
            zombi_shared::auth::AuthError::Missing => ErrorCode::Unauthorized,
            zombi_shared::auth::AuthError::Rejected => ErrorCode::Forbidden,
        }
    }
}

/// The HTTP status of each code: the one place the node's API decides it.
pub fn status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Gone => StatusCode::GONE,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::Busy | ErrorCode::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::ShuttingDown | ErrorCode::Unavailable | ErrorCode::NotOwner => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Whether an answer with this code tells the client to retry after a second.
fn retry_after(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Busy
            | ErrorCode::Overloaded
            | ErrorCode::ShuttingDown
            | ErrorCode::Unavailable
            | ErrorCode::NotOwner
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = if self.code.is_server_side() {
            // The cause stays in the log; the caller gets an id to quote.
            let id = uuid::Uuid::now_v7();
            let cause = match &self.source {
                Some(source) => Chain(source.as_ref()).to_string(),
                None => self.message.clone(),
            };
            match self.code {
                ErrorCode::Internal => {
                    tracing::error!(error_id = %id, error = %cause, "internal error")
                }
                ErrorCode::ShuttingDown => {
                    tracing::debug!(error_id = %id, error = %cause, "refused while shutting down")
                }
                _ => tracing::warn!(error_id = %id, error = %cause, "request failed"),
            }
            match self.code {
                ErrorCode::Internal => format!("internal error; error id {id}"),
                _ => format!("{}; error id {id}", self.message),
            }
        } else {
            self.message
        };
        let body = json!({"error": {"code": self.code.as_str(), "message": message}});
        let mut response = (status(self.code), Json(body)).into_response();
        if retry_after(self.code) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the catalog or the warehouse failed")]
    struct Failed(#[source] std::io::Error);

    impl CodedError for Failed {
        fn code(&self) -> ErrorCode {
            ErrorCode::Unavailable
        }
    }

    async fn body(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_server_side_failure_answers_an_id_and_no_cause() {
        let e: ApiError = Failed(std::io::Error::other("s3://secret-bucket: access denied")).into();
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body = body(response).await;
        let message = body["error"]["message"].as_str().unwrap();
        assert_eq!(body["error"]["code"], "unavailable");
        assert!(message.starts_with("the catalog or the warehouse failed; error id "), "{message}");
        assert!(!message.contains("secret-bucket"), "{message}");
    }

    #[tokio::test]
    async fn a_request_error_answers_its_message() {
        let response = ApiError::bad_request("chunk must be 1 to 10000").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
        let body = body(response).await;
        assert_eq!(body["error"]["message"], "chunk must be 1 to 10000");
        assert_eq!(body["error"]["code"], "bad_request");
    }
}
