//! The Iceberg REST catalog as engines see it (spec:
//! `iceberg-rest-catalog-open-api.yaml`), served from any [`iceberg::Catalog`].
//!
//! Engines read, declare typed tables (`createTable`) and change their schema and properties
//! (`updateTable`, within what [`TableUpdates`] accepts); every other write endpoint
//! answers 403 `ForbiddenException`, because Zombi's own ingest path is the only writer of
//! its tables. No `prefix` is advertised, so all routes live directly under `/v1`.

mod error;
mod handlers;
mod params;
mod service;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use iceberg::table::Table;
use iceberg::{TableIdent, TableRequirement, TableUpdate};
use zombi_shared::auth::check_bearer;

pub use error::CatalogError;

use handlers::{
    config, create_table, list_namespaces, list_tables, load_namespace, load_table,
    namespace_exists, no_such_endpoint, refuse_write, report_metrics, table_exists, update_table,
};
use service::CatalogService;

/// Commits engines' updates of table metadata (`updateTable`). `iceberg::Catalog` cannot
/// serve it: its `TableCommit` can only be built inside the `iceberg` crate.
#[async_trait::async_trait]
pub trait TableUpdates: Send + Sync {
    async fn update_table(
        &self,
        ident: &TableIdent,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
    ) -> iceberg::Result<Table>;
}

/// What the catalog routes need from the node.
pub struct RestCatalogState {
    /// The catalog engines read; the node's own, or an in-memory one in tests.
    pub catalog: Arc<dyn iceberg::Catalog>,
    /// Commits engines' schema and property updates; `None`: every update is refused.
    pub updates: Option<Arc<dyn TableUpdates>>,
    /// When set, every `/v1` request must carry `Authorization: Bearer <token>`.
    pub catalog_token: Option<String>,
    /// Offered to clients as the `warehouse` default in `/v1/config`.
    pub warehouse_location: String,
}

#[derive(Clone)]
struct AppState {
    service: Arc<CatalogService>,
    /// Accepted bearer tokens; empty means auth is off.
    tokens: Arc<[String]>,
}

/// The `/v1` routes, with their state applied, ready to be merged into the node's router.
pub fn router(state: RestCatalogState) -> Router {
    let app = AppState {
        service: Arc::new(CatalogService::new(
            state.catalog,
            state.updates,
            state.warehouse_location,
        )),
        tokens: state.catalog_token.into_iter().collect(),
    };
    Router::new()
        .route("/v1/config", get(config))
        .route("/v1/namespaces", get(list_namespaces).post(refuse_write))
        .route(
            "/v1/namespaces/{namespace}",
            get(load_namespace).head(namespace_exists).delete(refuse_write),
        )
        .route("/v1/namespaces/{namespace}/properties", post(refuse_write))
        .route("/v1/namespaces/{namespace}/tables", get(list_tables).post(create_table))
        .route("/v1/namespaces/{namespace}/register", post(refuse_write))
        .route(
            "/v1/namespaces/{namespace}/tables/{table}",
            get(load_table).head(table_exists).post(update_table).delete(refuse_write),
        )
        .route("/v1/namespaces/{namespace}/tables/{table}/metrics", post(report_metrics))
        .route("/v1/tables/rename", post(refuse_write))
        .route("/v1/transactions/commit", post(refuse_write))
        .route("/v1/{*rest}", any(no_such_endpoint))
        // Checked for the routes above only, never for the node's routes merged beside
        // them; the `/v1` catch-all puts unknown catalog paths behind the token too.
        .route_layer(middleware::from_fn_with_state(app.clone(), require_token))
        .with_state(app)
}

/// Engines authenticate with the catalog token. With auth off, any `Authorization`
/// header passes: PyIceberg sends `Bearer None` when it has no token.
async fn require_token(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    match check_bearer(authorization, &app.tokens) {
        Ok(()) => next.run(request).await,
        Err(e) => CatalogError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests;
