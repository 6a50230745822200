//! The one error type of the producer API and its one HTTP rendering:
//! `{"error":{"code":"...","message":"..."}}`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use zombi_shared::TableNameError;

use crate::auth::AuthError;
use crate::body::BodyError;
use crate::forward::ForwardError;
use crate::metrics::{self, Reason};
use zombi_shared::parse::ParseError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the edge is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("invalid table name: {0}")]
    TableName(#[from] TableNameError),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Forward(#[from] ForwardError),
    #[error("{0}")]
    Internal(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("no such endpoint")]
    NotFound,
}

/// Error codes of the producer API; each has exactly one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    ShuttingDown,
    Unauthorized,
    Forbidden,
    InvalidTableName,
    UnsupportedMediaType,
    PayloadTooLarge,
    Overloaded,
    InvalidJson,
    InvalidEvent,
    InvalidRequest,
    InvalidBody,
    RequestTimeout,
    NodeUnavailable,
    TableNotReady,
    TableLimit,
    BadGateway,
    Internal,
    MethodNotAllowed,
    NotFound,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::ShuttingDown => "shutting_down",
            Code::Unauthorized => "unauthorized",
            Code::Forbidden => "forbidden",
            Code::InvalidTableName => "invalid_table_name",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::PayloadTooLarge => "payload_too_large",
            Code::Overloaded => "overloaded",
            Code::InvalidJson => "invalid_json",
            Code::InvalidEvent => "invalid_event",
            Code::InvalidRequest => "invalid_request",
            Code::InvalidBody => "invalid_body",
            Code::RequestTimeout => "request_timeout",
            Code::NodeUnavailable => "node_unavailable",
            Code::TableNotReady => "table_not_ready",
            Code::TableLimit => "table_limit",
            Code::BadGateway => "bad_gateway",
            Code::Internal => "internal",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::NotFound => "not_found",
        }
    }

    /// The one mapping from code to status.
    pub fn status(self) -> StatusCode {
        match self {
            Code::InvalidTableName
            | Code::InvalidJson
            | Code::InvalidEvent
            | Code::InvalidRequest
            | Code::InvalidBody => StatusCode::BAD_REQUEST,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Code::Forbidden => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::BadGateway => StatusCode::BAD_GATEWAY,
            Code::TableLimit => StatusCode::CONFLICT,
            Code::ShuttingDown | Code::NodeUnavailable | Code::TableNotReady => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

impl ApiError {
    pub fn code(&self) -> Code {
        match self {
            ApiError::ShuttingDown => Code::ShuttingDown,
            ApiError::Auth(AuthError::Missing) => Code::Unauthorized,
            ApiError::Auth(AuthError::Rejected) => Code::Forbidden,
            ApiError::TableName(_) => Code::InvalidTableName,
            ApiError::UnsupportedMediaType(_) => Code::UnsupportedMediaType,
            ApiError::Body(e) => match e {
                BodyError::TooLarge { .. } | BodyError::DecompressedTooLarge { .. } => {
                    Code::PayloadTooLarge
                }
                BodyError::Overloaded => Code::Overloaded,
                BodyError::UnsupportedEncoding(_) => Code::UnsupportedMediaType,
                BodyError::Read(_) | BodyError::Corrupt { .. } => Code::InvalidBody,
                BodyError::Timeout { .. } => Code::RequestTimeout,
            },
            ApiError::Parse(e) if e.is_too_large() => Code::PayloadTooLarge,
            ApiError::Parse(ParseError::InvalidJson { .. }) => Code::InvalidJson,
            ApiError::Parse(_) => Code::InvalidEvent,
            ApiError::InvalidRequest(_) => Code::InvalidRequest,
            ApiError::Forward(e) => match e {
                ForwardError::QueueFull | ForwardError::NodeOverloaded(_) => Code::Overloaded,
                ForwardError::Unavailable(_) => Code::NodeUnavailable,
                ForwardError::TableNotReady(_) => Code::TableNotReady,
                ForwardError::TableLimit(_) => Code::TableLimit,
                ForwardError::Invalid(_) => Code::InvalidEvent,
                ForwardError::Rejected { .. }
                | ForwardError::NodeFailed(_)
                | ForwardError::Protocol(_) => Code::BadGateway,
                ForwardError::Stopped => Code::Internal,
            },
            ApiError::Internal(_) => Code::Internal,
            ApiError::MethodNotAllowed => Code::MethodNotAllowed,
            ApiError::NotFound => Code::NotFound,
        }
    }

    fn reason(&self) -> Reason {
        match self.code() {
            Code::ShuttingDown => Reason::ShuttingDown,
            Code::Unauthorized | Code::Forbidden => Reason::Auth,
            Code::InvalidTableName => Reason::TableName,
            Code::UnsupportedMediaType => Reason::MediaType,
            Code::PayloadTooLarge => Reason::TooLarge,
            Code::Overloaded => Reason::Overloaded,
            Code::InvalidJson
            | Code::InvalidEvent
            | Code::InvalidRequest
            | Code::InvalidBody
            | Code::RequestTimeout => Reason::Invalid,
            Code::NodeUnavailable | Code::TableNotReady => Reason::NodeUnavailable,
            Code::TableLimit => Reason::TableLimit,
            Code::BadGateway => Reason::NodeError,
            Code::Internal => Reason::Internal,
            Code::MethodNotAllowed | Code::NotFound => Reason::Route,
        }
    }

    /// What the producer is told. Server-side failures are logged under an id and only the
    /// id is returned, except where the message is the producer's to act on.
    fn public_message(&self, code: Code) -> String {
        if !code.status().is_server_error()
            || code == Code::ShuttingDown
            || code == Code::TableNotReady
        {
            return self.to_string();
        }
        let id = error_id();
        if LOG_LIMIT.admit() {
            tracing::error!(error_id = %id, code = code.as_str(), error = %self, "request failed");
        }
        match (code, self) {
            (Code::NodeUnavailable, _) => format!("the node is unavailable (error id {id})"),
            // The node refused a batch the edge built: its reason helps whoever debugs it.
            (_, ApiError::Forward(ForwardError::Rejected { status, message })) => {
                format!("the node rejected the batch with HTTP {status}: {message} (error id {id})")
            }
            (Code::BadGateway, _) => format!("the node failed to store the events (error id {id})"),
            _ => format!("internal error (error id {id})"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        metrics::rejected(self.reason());
        let message = self.public_message(code);
        let body = serde_json::json!({"error": {"code": code.as_str(), "message": message}});
        (code.status(), Json(body)).into_response()
    }
}

/// Short random-looking id that ties a producer's error to a log line.
fn error_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded per process; hashing a counter gives distinct ids.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", hasher.finish())
}

/// When the node is down every request fails the same way; a few lines per second tell
/// the story without flooding the log.
struct LogLimit {
    window: Mutex<LogWindow>,
}

struct LogWindow {
    started: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

const LOG_LINES_PER_SECOND: u32 = 10;

static LOG_LIMIT: LogLimit =
    LogLimit { window: Mutex::new(LogWindow { started: None, logged: 0, suppressed: 0 }) };

impl LogLimit {
    fn admit(&self) -> bool {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if w.started.is_none_or(|s| s.elapsed() >= Duration::from_secs(1)) {
            if w.suppressed > 0 {
                tracing::warn!(suppressed = w.suppressed, "suppressed repeated request errors");
            }
            *w = LogWindow { started: Some(Instant::now()), logged: 0, suppressed: 0 };
        }
        if w.logged < LOG_LINES_PER_SECOND {
            w.logged += 1;
            true
        } else {
            w.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zombi_shared::envelope::EventError;

    async fn render(e: ApiError) -> (StatusCode, serde_json::Value) {
        let response = e.into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn renders_code_and_message() {
        let (status, body) = render(ApiError::TableName(TableNameError::Empty)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "invalid_table_name");
        assert_eq!(body["error"]["message"], "invalid table name: table name is empty");

        let e = ParseError::Event { record: Some(3), source: EventError::PayloadChoice };
        let (status, body) = render(e.into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "invalid_event");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("record 3: event needs"));
    }

    #[tokio::test]
    async fn server_errors_return_only_an_id() {
        let (status, body) =
            render(ForwardError::NodeFailed("disk on fire at /data".into()).into()).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("error id") && !message.contains("/data"), "{message}");

        let (status, body) =
            render(ForwardError::Unavailable("connect to 10.0.0.7 refused".into()).into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "node_unavailable");
        assert!(!body["error"]["message"].as_str().unwrap().contains("10.0.0.7"));
    }

    #[test]
    fn status_mapping() {
        let cases: [(ApiError, u16); 8] = [
            (ApiError::ShuttingDown, 503),
            (AuthError::Missing.into(), 401),
            (AuthError::Rejected.into(), 403),
            (BodyError::Overloaded.into(), 429),
            (BodyError::DecompressedTooLarge { limit: 1 }.into(), 413),
            (ParseError::TooManyRecords { limit: 1 }.into(), 413),
            (ForwardError::QueueFull.into(), 429),
            (ForwardError::Rejected { status: 400, message: String::new() }.into(), 502),
        ];
        for (error, status) in cases {
            assert_eq!(error.code().status().as_u16(), status, "{error:?}");
        }
    }
}
