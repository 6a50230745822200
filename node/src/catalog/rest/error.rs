//! The catalog API's one error type and its single mapping to HTTP. Bodies follow the
//! Iceberg REST `IcebergErrorResponse`: `{"error":{"message","type","code"}}`, where
//! `type` is the Iceberg exception name engines switch on.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use zombi_shared::auth::AuthError;

/// Why writes are refused: Zombi owns every commit, so engines only read.
const READ_ONLY: &str = "Zombi tables are written only by Zombi's ingest path; \
                         the catalog is read-only for engines";

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotAuthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NoSuchNamespace(String),
    #[error("{0}")]
    NoSuchTable(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// An update's requirements do not hold: the table changed since the engine read it.
    #[error("{0}")]
    CommitFailed(String),
    /// A path under `/v1` that this server does not serve.
    #[error("{0}")]
    NoSuchEndpoint(String),
    #[error("{0}")]
    Unsupported(String),
    /// A transient catalog failure; the detail is logged, not returned.
    #[error("catalog temporarily unavailable")]
    Unavailable(String),
    /// The detail is logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl CatalogError {
    /// A write an engine attempted; `operation` names it for the message.
    pub fn read_only(operation: &str) -> Self {
        CatalogError::Forbidden(format!("{operation} is refused: {READ_ONLY}"))
    }

    /// The Iceberg exception name clients map to their own exception types.
    pub fn error_type(&self) -> &'static str {
        match self {
            CatalogError::BadRequest(_) => "BadRequestException",
            CatalogError::NotAuthorized(_) => "NotAuthorizedException",
            CatalogError::Forbidden(_) => "ForbiddenException",
            CatalogError::NoSuchNamespace(_) => "NoSuchNamespaceException",
            CatalogError::NoSuchTable(_) => "NoSuchTableException",
            CatalogError::AlreadyExists(_) => "AlreadyExistsException",
            CatalogError::CommitFailed(_) => "CommitFailedException",
            CatalogError::NoSuchEndpoint(_) => "NotFoundException",
            CatalogError::Unsupported(_) => "UnsupportedOperationException",
            CatalogError::Unavailable(_) => "ServiceUnavailableException",
            CatalogError::Internal(_) => "InternalServerError",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            CatalogError::BadRequest(_) => StatusCode::BAD_REQUEST,
            CatalogError::NotAuthorized(_) => StatusCode::UNAUTHORIZED,
            CatalogError::Forbidden(_) => StatusCode::FORBIDDEN,
            CatalogError::NoSuchNamespace(_)
            | CatalogError::NoSuchTable(_)
            | CatalogError::NoSuchEndpoint(_) => StatusCode::NOT_FOUND,
            CatalogError::AlreadyExists(_) | CatalogError::CommitFailed(_) => StatusCode::CONFLICT,
            CatalogError::Unsupported(_) => StatusCode::NOT_ACCEPTABLE,
            CatalogError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            CatalogError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<iceberg::Error> for CatalogError {
    fn from(e: iceberg::Error) -> Self {
        use iceberg::ErrorKind;
        match e.kind() {
            ErrorKind::NamespaceNotFound => CatalogError::NoSuchNamespace(e.message().to_owned()),
            ErrorKind::TableNotFound => CatalogError::NoSuchTable(e.message().to_owned()),
            ErrorKind::FeatureUnsupported => CatalogError::Unsupported(e.message().to_owned()),
            _ if e.retryable() => CatalogError::Unavailable(e.to_string()),
            // Reads never create or commit, so the remaining kinds (already exists, commit
            // conflict, invalid data, unexpected) mean the server is broken, not the request.
            _ => CatalogError::Internal(e.to_string()),
        }
    }
}

impl From<AuthError> for CatalogError {
    fn from(e: AuthError) -> Self {
        // Both a missing and a wrong token are 401: the spec reserves 403 for an
        // authenticated caller lacking permission, and clients retry auth only on 401.
        CatalogError::NotAuthorized(e.to_string())
    }
}

/// `{"error": ErrorModel}`. Our own type rather than `iceberg_catalog_rest::ErrorResponse`:
/// that one cannot be constructed outside its crate and writes `"stack": null`.
#[derive(Serialize)]
struct ErrorResponse<'a> {
    error: ErrorModel<'a>,
}

#[derive(Serialize)]
struct ErrorModel<'a> {
    message: &'a str,
    r#type: &'a str,
    code: u16,
}

impl IntoResponse for CatalogError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            CatalogError::Internal(detail) | CatalogError::Unavailable(detail) => {
                // The detail stays in the log; the caller gets an id to quote.
                let id = uuid::Uuid::now_v7();
                tracing::error!(
                    error_id = %id,
                    error = %detail,
                    status = status.as_u16(),
                    "catalog request failed"
                );
                format!("{self}; error id {id}")
            }
            other => other.to_string(),
        };
        let body = ErrorResponse {
            error: ErrorModel {
                message: &message,
                r#type: self.error_type(),
                code: status.as_u16(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, CatalogError::Unavailable(_)) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
