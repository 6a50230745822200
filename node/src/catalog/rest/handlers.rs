//! Route handlers: pull the request apart, call [`CatalogService`], return its answer.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use iceberg_catalog_rest::{CommitTableResponse, LoadTableResult};

use super::AppState;
use super::error::CatalogError;
use super::params::{
    self, IcebergPath, IcebergQuery, ListNamespacesQuery, ListTablesQuery, LoadTableQuery,
    PageRequest, SnapshotsMode,
};
use super::service::{
    ConfigResponse, GetNamespaceResponse, ListNamespacesResponse, ListTablesResponse,
};

type Reply<T> = Result<T, CatalogError>;

/// `GET /v1/config`. The `warehouse` parameter selects nothing: there is one warehouse.
pub(super) async fn config(State(app): State<AppState>) -> Json<ConfigResponse> {
    Json(app.service.config())
}

pub(super) async fn list_namespaces(
    State(app): State<AppState>,
    IcebergQuery(query): IcebergQuery<ListNamespacesQuery>,
) -> Reply<Json<ListNamespacesResponse>> {
    let parent = params::parent(query.parent.as_deref())?;
    let page = PageRequest::parse(query.page_token, query.page_size)?;
    Ok(Json(app.service.list_namespaces(parent.as_ref(), page).await?))
}

pub(super) async fn load_namespace(
    State(app): State<AppState>,
    IcebergPath(namespace): IcebergPath<String>,
) -> Reply<Json<GetNamespaceResponse>> {
    Ok(Json(app.service.load_namespace(&params::namespace(&namespace)?).await?))
}

pub(super) async fn namespace_exists(
    State(app): State<AppState>,
    IcebergPath(namespace): IcebergPath<String>,
) -> Reply<StatusCode> {
    app.service.namespace_exists(&params::namespace(&namespace)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn list_tables(
    State(app): State<AppState>,
    IcebergPath(namespace): IcebergPath<String>,
    IcebergQuery(query): IcebergQuery<ListTablesQuery>,
) -> Reply<Json<ListTablesResponse>> {
    let namespace = params::namespace(&namespace)?;
    let page = PageRequest::parse(query.page_token, query.page_size)?;
    Ok(Json(app.service.list_tables(&namespace, page).await?))
}

pub(super) async fn load_table(
    State(app): State<AppState>,
    IcebergPath((namespace, table)): IcebergPath<(String, String)>,
    IcebergQuery(query): IcebergQuery<LoadTableQuery>,
) -> Reply<Json<LoadTableResult>> {
    let ident = params::table(&namespace, table)?;
    let snapshots = SnapshotsMode::parse(query.snapshots.as_deref())?;
    Ok(Json(app.service.load_table(&ident, snapshots).await?))
}

/// `POST /v1/namespaces/{namespace}/tables`: declares a typed table.
pub(super) async fn create_table(
    State(app): State<AppState>,
    IcebergPath(namespace): IcebergPath<String>,
    body: Bytes,
) -> Reply<Json<LoadTableResult>> {
    let namespace = params::namespace(&namespace)?;
    let request = serde_json::from_slice(&body).map_err(|e| {
        CatalogError::BadRequest(format!("the body is not a CreateTableRequest: {e}"))
    })?;
    Ok(Json(app.service.create_table(&namespace, request).await?))
}

/// `POST /v1/namespaces/{namespace}/tables/{table}`: a schema or property change.
pub(super) async fn update_table(
    State(app): State<AppState>,
    IcebergPath((namespace, table)): IcebergPath<(String, String)>,
    body: Bytes,
) -> Reply<Json<CommitTableResponse>> {
    let ident = params::table(&namespace, table)?;
    Ok(Json(app.service.update_table(&ident, &body).await?))
}

pub(super) async fn table_exists(
    State(app): State<AppState>,
    IcebergPath((namespace, table)): IcebergPath<(String, String)>,
) -> Reply<StatusCode> {
    app.service.table_exists(&params::table(&namespace, table)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/tables/{table}/metrics`: engines send scan and commit reports after reads;
/// Zombi has no use for them, but an error would surface as a warning in every engine.
pub(super) async fn report_metrics(_report: Bytes) -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Every write endpoint of the spec.
pub(super) async fn refuse_write(method: Method, uri: Uri) -> CatalogError {
    CatalogError::read_only(&format!("{method} {}", uri.path()))
}

/// Any other path under `/v1`, so that it too answers with an `ErrorModel` (and behind auth).
pub(super) async fn no_such_endpoint(method: Method, uri: Uri) -> CatalogError {
    CatalogError::NoSuchEndpoint(format!("no such endpoint: {method} {}", uri.path()))
}
