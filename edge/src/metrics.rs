//! Metrics of the edge. Labels are bounded: never a table name, token or idempotency key.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `zombi_edge_requests_total` | counter | `endpoint` = `single`\|`bulk`, `status` = HTTP status code | producer requests answered |
//! | `zombi_edge_request_bytes_total` | counter | | request body bytes read, as sent (before decompression) |
//! | `zombi_edge_events_total` | counter | | events acknowledged by the node (duplicates included) |
//! | `zombi_edge_rejections_total` | counter | `reason` (see [`Reason`]) | requests answered with an error |
//! | `zombi_edge_inflight_bytes` | gauge | | bytes of the in-flight budget in use |
//! | `zombi_edge_forward_duration_seconds` | histogram | `outcome` = `ok`\|`error` | time of one batch round trip to the node |
//! | `zombi_edge_forward_batch_events` | histogram | | events per batch sent to the node |
//! | `zombi_edge_forward_batch_groups` | histogram | | producer requests coalesced into one batch |
//! | `zombi_edge_forward_queue_depth` | gauge | | requests waiting for a batch slot |
//! | `zombi_edge_node_failovers_total` | counter | | batches a node did not take (refused connection, `not_owner`, `shutting_down`) and that went to the next node of `node_url` |
//! | `zombi_edge_commit_waits_total` | counter | `result` = `committed`\|`timeout`\|`failed` | writes with `?wait=committed`, by how the wait ended |

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

pub const REQUESTS: &str = "zombi_edge_requests_total";
pub const REQUEST_BYTES: &str = "zombi_edge_request_bytes_total";
pub const EVENTS: &str = "zombi_edge_events_total";
pub const REJECTIONS: &str = "zombi_edge_rejections_total";
pub const INFLIGHT_BYTES: &str = "zombi_edge_inflight_bytes";
pub const FORWARD_DURATION: &str = "zombi_edge_forward_duration_seconds";
pub const FORWARD_BATCH_EVENTS: &str = "zombi_edge_forward_batch_events";
pub const FORWARD_BATCH_GROUPS: &str = "zombi_edge_forward_batch_groups";
pub const FORWARD_QUEUE_DEPTH: &str = "zombi_edge_forward_queue_depth";
pub const NODE_FAILOVERS: &str = "zombi_edge_node_failovers_total";
pub const COMMIT_WAITS: &str = "zombi_edge_commit_waits_total";

/// The recorder is process-global (the `metrics` facade has one recorder), so its handle
/// is too; without one, `/metrics` renders nothing.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder for this process and describes the metrics.
pub fn install_recorder() -> Result<(), BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(FORWARD_DURATION.into()),
            &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
        )?
        .set_buckets_for_metric(
            Matcher::Full(FORWARD_BATCH_EVENTS.into()),
            &[1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 20000.0, 100000.0],
        )?
        .set_buckets_for_metric(
            Matcher::Full(FORWARD_BATCH_GROUPS.into()),
            &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0],
        )?
        .install_recorder()?;
    describe();
    // A second install fails above (the global recorder is already set), so this is the
    // first and only handle.
    let _ = HANDLE.set(handle);
    Ok(())
}

/// Prometheus text exposition of every metric, or an empty string without a recorder.
pub fn render() -> String {
    HANDLE.get().map(PrometheusHandle::render).unwrap_or_default()
}

/// Drains histogram data periodically (`install_recorder` leaves that to the caller).
/// Runs until aborted.
pub(crate) async fn run_upkeep() {
    let Some(handle) = HANDLE.get() else { return std::future::pending().await };
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

fn describe() {
    describe_counter!(REQUESTS, "Producer requests answered, by endpoint and HTTP status.");
    describe_counter!(REQUEST_BYTES, Unit::Bytes, "Request body bytes read, before decompression.");
    describe_counter!(EVENTS, "Events acknowledged by the node, duplicates included.");
    describe_counter!(REJECTIONS, "Producer requests answered with an error, by reason.");
    describe_gauge!(INFLIGHT_BYTES, Unit::Bytes, "Bytes of the in-flight request budget in use.");
    describe_histogram!(FORWARD_DURATION, Unit::Seconds, "Round trip of one batch to the node.");
    describe_histogram!(FORWARD_BATCH_EVENTS, "Events per batch sent to the node.");
    describe_histogram!(FORWARD_BATCH_GROUPS, "Producer requests coalesced into one batch.");
    describe_gauge!(FORWARD_QUEUE_DEPTH, "Producer requests waiting for a batch slot.");
    describe_counter!(NODE_FAILOVERS, "Batches a node did not take, sent to the next node.");
    describe_counter!(COMMIT_WAITS, "Writes that waited for their commit, by how the wait ended.");
}

/// Why a producer request was rejected: the `reason` label of `zombi_edge_rejections_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    ShuttingDown,
    Auth,
    TableName,
    MediaType,
    TooLarge,
    Overloaded,
    Invalid,
    NodeUnavailable,
    NodeError,
    Internal,
    Route,
    TableLimit,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ShuttingDown => "shutting_down",
            Reason::Auth => "auth",
            Reason::TableName => "table_name",
            Reason::MediaType => "media_type",
            Reason::TooLarge => "too_large",
            Reason::Overloaded => "overloaded",
            Reason::Invalid => "invalid",
            Reason::NodeUnavailable => "node_unavailable",
            Reason::NodeError => "node_error",
            Reason::Internal => "internal",
            Reason::Route => "route",
            Reason::TableLimit => "table_limit",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Single,
    Bulk,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Single => "single",
            Endpoint::Bulk => "bulk",
        }
    }
}

pub(crate) fn request_answered(endpoint: Endpoint, status: axum::http::StatusCode) {
    counter!(REQUESTS, "endpoint" => endpoint.as_str(), "status" => status.as_u16().to_string())
        .increment(1);
}

pub(crate) fn rejected(reason: Reason) {
    counter!(REJECTIONS, "reason" => reason.as_str()).increment(1);
}

pub(crate) fn body_read(bytes: usize) {
    counter!(REQUEST_BYTES).increment(bytes as u64);
}

pub(crate) fn events_acknowledged(count: usize) {
    counter!(EVENTS).increment(count as u64);
}

/// `result`: `committed`, `timeout` or `failed`.
pub(crate) fn commit_waited(result: &'static str) {
    counter!(COMMIT_WAITS, "result" => result).increment(1);
}

pub(crate) fn inflight_bytes_changed(delta: f64) {
    gauge!(INFLIGHT_BYTES).increment(delta);
}

pub(crate) fn batch_sent(events: usize, groups: usize, elapsed: Duration, ok: bool) {
    histogram!(FORWARD_DURATION, "outcome" => if ok { "ok" } else { "error" })
        .record(elapsed.as_secs_f64());
    histogram!(FORWARD_BATCH_EVENTS).record(events as f64);
    histogram!(FORWARD_BATCH_GROUPS).record(groups as f64);
}

pub(crate) fn queue_depth(depth: usize) {
    gauge!(FORWARD_QUEUE_DEPTH).set(depth as f64);
}
