//! Routes of the producer API. Handlers only extract request parts and call the service.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{MethodRouter, get, post};

use crate::error::ApiError;
use crate::ingest::{IngestService, Target};
use crate::metrics;

#[derive(Debug, Clone)]
pub struct AppState {
    pub ingest: Arc<IngestService>,
    /// Sent with every 429.
    pub retry_after: HeaderValue,
}

impl AppState {
    pub fn new(ingest: Arc<IngestService>, retry_after_secs: u64) -> Self {
        AppState { ingest, retry_after: HeaderValue::from(retry_after_secs) }
    }
}

pub fn router(state: AppState) -> Router {
    let tables: MethodRouter<AppState> = post(ingest).fallback(method_not_allowed);
    Router::new()
        // One wildcard route: the handler parses the raw path itself, so that encoded
        // separators are judged by table-name validation and never decoded into routing.
        .route("/tables", tables.clone())
        .route("/tables/", tables.clone())
        .route("/tables/{*rest}", tables)
        .route("/health", get(health).fallback(method_not_allowed))
        .route("/metrics", get(render_metrics).fallback(method_not_allowed))
        .route("/openapi.json", get(openapi).fallback(method_not_allowed))
        .fallback(not_found)
        .layer(axum::middleware::map_response_with_state(state.clone(), add_retry_after))
        .with_state(state)
}

async fn ingest(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let target = Target::from_path(uri.path());
    let response = match state.ingest.ingest(target, &uri, &headers, body).await {
        // Durable but not committed within the wait: 202, the write is not to be repeated.
        Ok(accepted) if accepted.commit().is_some_and(|c| !c.committed) => {
            (StatusCode::ACCEPTED, Json(accepted)).into_response()
        }
        Ok(accepted) => Json(accepted).into_response(),
        Err(e) => e.into_response(),
    };
    metrics::request_answered(target.endpoint, response.status());
    response
}

async fn health(State(state): State<AppState>) -> Response {
    if state.ingest.is_shutting_down() {
        let body = Json(serde_json::json!({"status": "shutting_down"}));
        return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    }
    Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn render_metrics() -> Response {
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4");
    ([(CONTENT_TYPE, content_type)], metrics::render()).into_response()
}

/// The producer API described for clients and validators, kept in the repository beside
/// the crate (`edge/openapi/openapi.json`) and served as it is.
pub const OPENAPI: &str = include_str!("../../openapi/openapi.json");

async fn openapi() -> Response {
    ([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], OPENAPI).into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// Every 429 tells the producer when to come back, whichever check produced it.
async fn add_retry_after(State(state): State<AppState>, mut response: Response) -> Response {
    if response.status() == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(RETRY_AFTER, state.retry_after.clone());
    }
    response
}
