//! The node's HTTP surface. Handlers extract request parts and call a service.

mod error;
pub mod role;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use zombi_shared::auth::check_bearer;
use zombi_shared::config::NodeConfig;
use zombi_shared::wire::{
    BatchResponse, COMMIT_WAIT_PATH, CommitWait, CommitWaitAnswer, GroupResult, INGEST_PATH,
    MAX_COMMIT_WAIT_MS, MSGPACK_CONTENT_TYPE,
};

pub use error::ApiError;

use crate::combiner::Combiner;
use crate::compact::{Maintainer, MaintenanceStatus};
use crate::error::ErrorCode;
use crate::flush::{Flusher, TableStatus};
use crate::hot::HotStore;
use crate::ingest::IngestService;
use crate::metrics as m;
use crate::read::{ReadError, ReadService};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<NodeConfig>,
    pub store: Arc<HotStore>,
    pub combiner: Arc<Combiner>,
    pub ingest: Arc<IngestService>,
    pub draining: Arc<AtomicBool>,
    pub prometheus: Option<PrometheusHandle>,
    pub flusher: Flusher,
    pub maintainer: Maintainer,
    pub reads: Arc<ReadService>,
    pub replayer: Arc<crate::replay::Replayer>,
    pub eraser: Arc<crate::erase::Eraser>,
    pub role: Arc<role::RoleState>,
}

/// The node's own routes; the Iceberg REST catalog (`/v1/…`) is merged in by the caller.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(INGEST_PATH, post(ingest))
        .route(COMMIT_WAIT_PATH, post(commit_wait))
        .route("/health", get(health))
        .route("/stats", get(stats))
        .route("/metrics", get(prometheus))
        .route("/openapi.json", get(openapi))
        .route("/ui", get(ui))
        .route("/tables/{table}/watermark", get(watermark))
        .route("/tables/{table}/hot", get(hot))
        .route("/tables/{table}/hot/segments", get(hot_segments))
        .route("/tables/{table}/hot/segments/{partition}/{range}/{file}", get(hot_segment))
        .route("/tables/{table}/flush", post(flush))
        .route("/tables/{table}/compact", post(compact))
        .route("/tables/{table}/replay", post(replay))
        .route("/tables/{table}/delete", post(delete))
        .with_state(state)
}

/// The node's admin API described (`node/openapi/openapi.json`), served as it is.
pub const OPENAPI: &str = include_str!("../../openapi/openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// The status page: one file, its script and styles inline, no assets from elsewhere.
const UI: &str = include_str!("../../ui/index.html");

#[derive(serde::Deserialize)]
struct UiQuery {
    token: Option<String>,
}

/// `GET /ui[?token=…]`: protected by the admin token like `/stats`, which a browser passes
/// in the query (the page then sends it to `/stats` as a bearer token).
async fn ui(
    State(state): State<AppState>,
    query: Result<Query<UiQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut headers = headers;
    if let Some(token) = q.token.filter(|_| !headers.contains_key(header::AUTHORIZATION)) {
        let value = header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| ApiError::bad_request("the token is not visible ASCII"))?;
        headers.insert(header::AUTHORIZATION, value);
    }
    check_token(&headers, &state.config.auth.admin_token)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::HeaderName::from_static("referrer-policy"), "no-referrer"),
        ],
        UI,
    )
        .into_response())
}

fn check_token(headers: &HeaderMap, token: &Option<String>) -> Result<(), ApiError> {
    let accepted: Vec<&String> = token.iter().collect();
    check_bearer(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()), &accepted)?;
    Ok(())
}

/// The hot-segment endpoints accept the catalog token and the hot token.
fn check_hot_token(
    headers: &HeaderMap,
    auth: &zombi_shared::config::NodeAuth,
) -> Result<(), ApiError> {
    let accepted: Vec<&String> = auth.catalog_token.iter().chain(&auth.hot_token).collect();
    check_bearer(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()), &accepted)?;
    Ok(())
}

fn valid_table(table: &str) -> Result<(), ApiError> {
    zombi_shared::validate_table_name(table).map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn watermark(
    State(state): State<AppState>,
    Path(table): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_token(&headers, &state.config.auth.catalog_token)?;
    valid_table(&table)?;
    Ok(Json(state.reads.watermarks(&table).await?).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HotQuery {
    partition: Option<u32>,
    from_sequence: Option<u64>,
    #[serde(default)]
    format: HotFormat,
    limit: Option<u64>,
}

#[derive(serde::Deserialize, Default, PartialEq)]
#[serde(rename_all = "lowercase")]
enum HotFormat {
    #[default]
    Arrow,
    Parquet,
}

/// Rows per partition one hot read returns at most unless `limit` says otherwise.
const DEFAULT_HOT_LIMIT: u64 = 100_000;

async fn hot(
    State(state): State<AppState>,
    Path(table): Path<String>,
    query: Result<Query<HotQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_token(&headers, &state.config.auth.catalog_token)?;
    valid_table(&table)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(DEFAULT_HOT_LIMIT);
    let read = state.reads.hot(&table, q.partition, q.from_sequence, limit).await?;
    let (content_type, body) = match q.format {
        HotFormat::Arrow => (
            "application/vnd.apache.arrow.stream",
            crate::read::to_arrow_ipc(&read.schema, &read.batches)
                .map_err(|e| ReadError::Encode(Box::new(e)))?,
        ),
        HotFormat::Parquet => (
            "application/vnd.apache.parquet",
            crate::read::to_parquet(&read.schema, &read.batches)
                .map_err(|e| ReadError::Encode(Box::new(e)))?,
        ),
    };
    let truncated = if read.truncated { "true" } else { "false" };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::HeaderName::from_static("zombi-truncated"), truncated),
        ],
        body,
    )
        .into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentsQuery {
    watermarks: Option<String>,
}

/// `GET /tables/{table}/hot/segments?watermarks=…`: see `docs/realtime.md`.
async fn hot_segments(
    State(state): State<AppState>,
    Path(table): Path<String>,
    query: Result<Query<SegmentsQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_hot_token(&headers, &state.config.auth)?;
    valid_table(&table)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let Some(watermarks) = q.watermarks else {
        return Err(ApiError::bad_request(
            "watermarks is required: the scanned snapshot's watermark map, e.g. watermarks=0:180,1:200 (empty for a table without a snapshot)",
        ));
    };
    let watermarks =
        crate::read::segments::parse_watermarks(&watermarks).map_err(ApiError::bad_request)?;
    Ok(Json(state.reads.segments(&table, watermarks).await?).into_response())
}

/// `GET /tables/{table}/hot/segments/{partition}/{from}-{to}/{spec_id}-{value}.parquet`.
async fn hot_segment(
    State(state): State<AppState>,
    Path((table, partition, range, file)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_hot_token(&headers, &state.config.auth)?;
    valid_table(&table)?;
    let id = crate::read::segments::SegmentId::parse(&partition, &range, &file)
        .map_err(ApiError::bad_request)?;
    let body = state.reads.segment(&table, id).await?;
    Ok(([(header::CONTENT_TYPE, "application/vnd.apache.parquet")], body).into_response())
}

async fn flush(
    State(state): State<AppState>,
    Path(table): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_token(&headers, &state.config.auth.admin_token)?;
    valid_table(&table)?;
    Ok(Json(state.flusher.flush_now(&table).await?).into_response())
}

/// The longest `?expire_snapshots_older_than_secs=`, as `maintenance.max_snapshot_age_secs`.
const MAX_EXPIRE_SECS: u64 = 365 * 24 * 3600;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CompactQuery {
    /// Expire snapshots older than this (0: all but the current one) in this run.
    expire_snapshots_older_than_secs: Option<u64>,
}

async fn compact(
    State(state): State<AppState>,
    Path(table): Path<String>,
    query: Result<Query<CompactQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_token(&headers, &state.config.auth.admin_token)?;
    valid_table(&table)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    // With a retention, everything acknowledged is committed first, so that once the run
    // answers no read (real-time ones included) shows a row older than the window.
    // A table whose flush fails is maintained all the same (its metadata still needs
    // bounding); its hot rows wait for the next run.
    if state.maintainer.retention_secs(&table).await.ok().flatten().is_some()
        && let Err(e) = state.flusher.flush_now(&table).await
    {
        tracing::warn!(%table, error = %crate::error::Chain(&e), "cannot flush before the maintenance run; maintaining the committed rows");
    }
    let expire = query.expire_snapshots_older_than_secs;
    if expire.is_some_and(|s| s > MAX_EXPIRE_SECS) {
        return Err(ApiError::bad_request(format!(
            "expire_snapshots_older_than_secs must be in 0..={MAX_EXPIRE_SECS} (a year)"
        )));
    }
    Ok(Json(state.maintainer.run_now_expiring(&table, expire).await?).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayQuery {
    chunk: Option<u64>,
}

/// `POST /tables/{table}/replay[?chunk=N]`: re-ingests the table's dead-letter rows.
async fn replay(
    State(state): State<AppState>,
    Path(table): Path<String>,
    query: Result<Query<ReplayQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_token(&headers, &state.config.auth.admin_token)?;
    valid_table(&table)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let chunk = query.chunk.unwrap_or(crate::replay::DEFAULT_CHUNK);
    Ok(Json(state.replayer.replay(&table, chunk).await?).into_response())
}

/// Most bytes of a delete request's body.
const MAX_DELETE_BODY: usize = 1 << 20;

/// `POST /tables/{table}/delete`: deletes the rows a predicate matches (`crate::erase`).
async fn delete(
    State(state): State<AppState>,
    Path(table): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_token(&headers, &state.config.auth.admin_token)?;
    valid_table(&table)?;
    let body = read_limited(&headers, body, MAX_DELETE_BODY).await?;
    let request: crate::erase::predicate::DeleteRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the delete request is not valid: {e}")))?;
    // On its own task: a client that stops waiting does not stop the delete half-way.
    let eraser = state.eraser.clone();
    let report = tokio::spawn(async move { eraser.delete(&table, &request).await })
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the delete task failed"))??;
    Ok(Json(report).into_response())
}

/// Internal ingest. Every refusal is counted here, once: a whole batch by its error code,
/// each refused group of an answered batch by its group error.
async fn ingest(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let result = ingest_inner(&state, &headers, body).await;
    let response = match result {
        Ok(response) => {
            for group in &response.groups {
                if let GroupResult::Err(e) = group {
                    let reason = crate::ingest::group_rejection(e);
                    metrics::counter!(m::REJECTIONS, "reason" => reason).increment(1);
                }
            }
            let bytes = zombi_shared::wire::encode(&response);
            ([(header::CONTENT_TYPE, MSGPACK_CONTENT_TYPE)], bytes).into_response()
        }
        Err(e) => {
            metrics::counter!(m::REJECTIONS, "reason" => e.code().as_str()).increment(1);
            e.into_response()
        }
    };
    metrics::counter!(m::INGEST_REQUESTS, "status" => response.status().as_str().to_owned())
        .increment(1);
    response
}

async fn ingest_inner(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<BatchResponse, ApiError> {
    if state.draining.load(Ordering::Acquire) {
        return Err(ApiError::new(ErrorCode::ShuttingDown, "node is shutting down"));
    }
    check_internal(state, headers)?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if content_type.map(|c| c.split(';').next().unwrap_or("").trim()) != Some(MSGPACK_CONTENT_TYPE)
    {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("content type must be {MSGPACK_CONTENT_TYPE}"),
        ));
    }
    let limit = state.config.limits.max_batch_bytes as usize;
    let body = read_limited(headers, body, limit).await?;
    metrics::counter!(m::INGEST_BYTES).increment(body.len() as u64);
    Ok(state.ingest.ingest(&body).await?)
}

/// The edges' endpoints: only the active node serves them (a standby answers 503
/// `not_owner`, and the edge tries the next node), with an internal token.
fn check_internal(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if !state.role.is_active() {
        return Err(state.role.refusal());
    }
    check_bearer(
        headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()),
        &state.config.auth.internal_tokens,
    )?;
    Ok(())
}

/// Largest commit-wait request body: a table name and a watermark per partition.
const MAX_COMMIT_WAIT_BYTES: usize = 64 << 10;

/// `POST /internal/v1/commit-wait` (edges, internal token): answers once the events an edge
/// acknowledged are in a committed snapshot, or when the wait times out.
async fn commit_wait(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_internal(&state, &headers)?;
    let body = read_limited(&headers, body, MAX_COMMIT_WAIT_BYTES).await?;
    let wait: CommitWait = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid commit wait: {e}")))?;
    valid_table(&wait.table)?;
    if wait.timeout_ms > MAX_COMMIT_WAIT_MS {
        return Err(ApiError::bad_request(format!(
            "timeout_ms must be at most {MAX_COMMIT_WAIT_MS}"
        )));
    }
    let timeout = std::time::Duration::from_millis(wait.timeout_ms);
    let (committed, outcome) =
        state.flusher.wait_committed(&wait.table, &wait.watermarks, timeout).await?;
    metrics::counter!(m::COMMIT_WAITS, "result" => if committed { "committed" } else { "timeout" })
        .increment(1);
    Ok(Json(CommitWaitAnswer {
        committed,
        snapshot_id: outcome.snapshot_id,
        watermarks: outcome.watermarks,
    })
    .into_response())
}

/// Bodies refused for their declared size are still read (and dropped) up to this excess.
const DISCARD_LIMIT: u64 = 4 << 20;

/// Reads a body of at most `limit` bytes: `Content-Length` is checked before reading, and
/// a chunked body is cut off as soon as it passes the limit.
async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large =
        || ApiError::new(ErrorCode::PayloadTooLarge, format!("request body exceeds {limit} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        // Read a modest excess away so the sender sees the 413 rather than a reset.
        if declared.is_some_and(|len| len <= limit as u64 + DISCARD_LIMIT) {
            let mut body = body;
            let drain = async { while let Some(Ok(_)) = body.frame().await {} };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain).await;
        }
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(format!("cannot read request body: {e}"))),
    }
}

async fn health(State(state): State<AppState>) -> Response {
    let view = state.role.view();
    if state.draining.load(Ordering::Acquire) {
        let body = serde_json::json!({"status": "shutting_down", "role": view.role, "since_ms": view.since_ms});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    } else if !state.role.is_active() {
        let body =
            serde_json::json!({"status": view.role, "role": view.role, "since_ms": view.since_ms});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    } else {
        Json(serde_json::json!({"status": "ok", "role": view.role, "since_ms": view.since_ms}))
            .into_response()
    }
}

#[derive(Serialize)]
struct Stats {
    node: role::RoleView,
    /// With `durability = "object"`: the log in the object store.
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<LogStats>,
    tables: BTreeMap<String, TableStats>,
    combiner: CombinerStats,
}

#[derive(Serialize)]
struct LogStats {
    /// Number of the next segment this node writes.
    next_segment: u64,
    /// Segments written (or recovered) and not yet truncated.
    retained_segments: usize,
    /// Segments below this are covered by the latest checkpoint.
    checkpointed_below: u64,
}

#[derive(Serialize)]
struct TableStats {
    /// Events ever accepted (sequences are dense from 0, so the sum of high-water marks).
    events: u64,
    /// Payload bytes ever accepted.
    bytes: u64,
    partitions: BTreeMap<u32, PartitionStats>,
    /// The table's flusher, once it started.
    flush: Option<TableStatus>,
    /// The table's maintenance, once it ran.
    maintenance: Option<MaintenanceStatus>,
}

#[derive(Serialize)]
struct PartitionStats {
    high_water_mark: u64,
}

#[derive(Serialize)]
struct CombinerStats {
    inflight_bytes: u64,
}

async fn stats(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Stats>, ApiError> {
    check_token(&headers, &state.config.auth.admin_token)?;
    let store = state.store.clone();
    let tables = tokio::task::spawn_blocking(move || -> Result<_, ReadError> {
        let mut out = BTreeMap::new();
        for (name, id) in store.tables() {
            let c = store.table_counters(id)?;
            out.insert(
                name,
                TableStats {
                    events: c.high_water_marks.values().sum(),
                    bytes: c.bytes,
                    partitions: c
                        .high_water_marks
                        .into_iter()
                        .map(|(p, hwm)| (p, PartitionStats { high_water_mark: hwm }))
                        .collect(),
                    flush: None,
                    maintenance: None,
                },
            );
        }
        Ok(out)
    })
    .await
    .map_err(ReadError::from)??;
    let mut tables = tables;
    for (name, t) in tables.iter_mut() {
        t.flush = state.flusher.status(name);
        t.maintenance = state.maintainer.status(name);
    }
    let log = state.store.log().map(|log| {
        let (next_segment, retained_segments) = log.retained();
        LogStats { next_segment, retained_segments, checkpointed_below: log.checkpointed() }
    });
    Ok(Json(Stats {
        node: state.role.view(),
        log,
        tables,
        combiner: CombinerStats { inflight_bytes: state.combiner.inflight_bytes() },
    }))
}

async fn prometheus(State(state): State<AppState>) -> Response {
    let body = state.prometheus.as_ref().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
