//! The role the node holds and since when, and the HTTP surface of a node that does not
//! take writes (yet): starting, standing by for another node's log, or stepped down.
//!
//! The server starts first, on the small surface; once the node is active its full surface
//! is switched in ([`Switch`]) on the same listener, so the address answers throughout:
//! load balancers and edges see a clear 503 instead of a connection that waits.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tower::ServiceExt as _;
use zombi_shared::config::NodeConfig;

use super::{ApiError, check_token};
use crate::error::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Opening its stores, recovering, adopting tables.
    Starting,
    /// `durability = "object"`: another node owns the log; this one takes over when that
    /// one stops writing.
    Standby,
    /// Takes writes.
    Active,
    /// Lost the log to another node: takes no writes, commits nothing, and exits.
    SteppedDown,
}

/// The node's role and when it began.
#[derive(Debug)]
pub struct RoleState(Mutex<(Role, u64)>);

/// What `/health` and `/stats` say about the role.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RoleView {
    pub role: Role,
    /// When the node took this role, in ms since the epoch.
    pub since_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl RoleState {
    pub fn new(role: Role) -> Arc<Self> {
        Arc::new(RoleState(Mutex::new((role, now_ms()))))
    }

    pub fn set(&self, role: Role) {
        let mut held = self.0.lock().unwrap();
        if held.0 != role {
            tracing::info!(?role, "node role");
            *held = (role, now_ms());
        }
    }

    pub fn view(&self) -> RoleView {
        let (role, since_ms) = *self.0.lock().unwrap();
        RoleView { role, since_ms }
    }

    pub fn is_active(&self) -> bool {
        self.0.lock().unwrap().0 == Role::Active
    }

    /// The refusal of a write by a node that is not active.
    pub fn refusal(&self) -> ApiError {
        match self.view().role {
            Role::Starting => ApiError::new(ErrorCode::Unavailable, "the node is starting"),
            Role::Active => ApiError::new(ErrorCode::Unavailable, "the node is busy"),
            Role::Standby => ApiError::new(
                ErrorCode::NotOwner,
                "this node is a standby: another node owns the log and takes the writes",
            ),
            Role::SteppedDown => ApiError::new(
                ErrorCode::NotOwner,
                "this node stepped down: another node owns the log and takes the writes",
            ),
        }
    }
}

#[derive(Clone)]
struct Small {
    role: Arc<RoleState>,
    config: Arc<NodeConfig>,
    prometheus: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

/// The surface of a node that takes no writes: `/health` (503 with the role), `/stats`
/// (the role), `/metrics`, the REST catalog's reads when given (a standby's), and 503 for
/// everything else (`not_owner` on a standby).
pub fn small_router(
    role: Arc<RoleState>,
    config: Arc<NodeConfig>,
    prometheus: Option<metrics_exporter_prometheus::PrometheusHandle>,
    catalog: Option<Router>,
) -> Router {
    let small = Small { role, config, prometheus };
    let mut router = Router::new()
        .route("/health", get(small_health))
        .route("/stats", get(small_stats))
        .route("/metrics", get(small_metrics))
        .with_state(small.clone());
    // A standby serves catalog reads (the committed state in the warehouse).
    if let Some(catalog) = catalog {
        router = router.merge(catalog);
    }
    router.fallback(move || {
        let small = small.clone();
        async move { small.role.refusal() }
    })
}

async fn small_metrics(State(s): State<Small>) -> Response {
    let body = s.prometheus.as_ref().map(|h| h.render()).unwrap_or_default();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn small_health(State(s): State<Small>) -> Response {
    let view = s.role.view();
    let body =
        serde_json::json!({"status": view.role, "role": view.role, "since_ms": view.since_ms});
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

async fn small_stats(State(s): State<Small>, headers: HeaderMap) -> Result<Response, ApiError> {
    check_token(&headers, &s.config.auth.admin_token)?;
    Ok(Json(serde_json::json!({"node": s.role.view(), "tables": {}})).into_response())
}

/// A router whose routes can be replaced while it serves.
#[derive(Clone)]
pub struct Switch(Arc<RwLock<Router>>);

impl Switch {
    pub fn new(initial: Router) -> Self {
        Switch(Arc::new(RwLock::new(initial)))
    }

    /// Requests from now on go to `router`; requests in flight finish where they are.
    pub fn set(&self, router: Router) {
        *self.0.write().unwrap() = router;
    }

    /// The router to serve: each request goes to the current routes.
    pub fn router(&self) -> Router {
        let current = self.0.clone();
        Router::new().fallback_service(tower::service_fn(move |req: Request| {
            let router = current.read().unwrap().clone();
            router.oneshot(req)
        }))
    }
}
