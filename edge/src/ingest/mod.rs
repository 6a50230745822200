//! The producer write path: the ordered checks of a request, then parsing, forwarding and
//! the reply. Cheap checks come first and nothing is read before they pass.

pub use zombi_shared::parse;
pub mod reply;

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Uri};
use tokio_util::sync::CancellationToken;
use zombi_shared::config::EdgeConfig;
use zombi_shared::validate_producer_table;
use zombi_shared::wire::{CommitWait, GroupEncoder, MAX_COMMIT_WAIT_MS};

use crate::auth::ProducerAuth;
use crate::body::{ByteBudget, Encoding, read_body};
use crate::error::ApiError;
use crate::forward::{Forwarder, NodeClient};
use crate::metrics::{self, Endpoint};

use parse::ParseLimits;
pub use reply::{Accepted, BulkAccepted, CommitOutcome, SingleAccepted};

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// What a `/tables/...` path addresses, taken from the raw (still percent-encoded) path so
/// that an encoded `/` or non-ASCII byte reaches table-name validation and fails it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// Unvalidated.
    pub table: &'a str,
    pub endpoint: Endpoint,
}

impl<'a> Target<'a> {
    pub fn from_path(path: &'a str) -> Self {
        let rest = path.strip_prefix("/tables").and_then(|r| r.strip_prefix('/')).unwrap_or("");
        match rest.strip_suffix("/bulk") {
            Some(table) => Target { table, endpoint: Endpoint::Bulk },
            None => Target { table: rest, endpoint: Endpoint::Single },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFormat {
    Json,
    Ndjson,
}

impl BodyFormat {
    fn from_headers(headers: &HeaderMap, endpoint: Endpoint) -> Result<Self, ApiError> {
        let value = headers.get(CONTENT_TYPE).map(|v| v.to_str().unwrap_or("<not ascii>"));
        // Parameters such as `charset=utf-8` are allowed; only the media type decides.
        let essence = value.and_then(|v| v.split(';').next()).map(str::trim).unwrap_or("");
        // What the producer sent, as they would write it.
        let sent = match value {
            Some(v) => format!("not {v}"),
            None => "and the request has none".to_owned(),
        };
        match endpoint {
            _ if essence.eq_ignore_ascii_case("application/json") => Ok(BodyFormat::Json),
            Endpoint::Bulk if essence.eq_ignore_ascii_case("application/x-ndjson") => {
                Ok(BodyFormat::Ndjson)
            }
            Endpoint::Single => Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type must be application/json, {sent}"
            ))),
            Endpoint::Bulk => Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type must be application/json or application/x-ndjson, {sent}"
            ))),
        }
    }
}

/// How long a producer's `?wait=committed` waits unless it says (`timeout_ms`).
pub const DEFAULT_COMMIT_WAIT_MS: u64 = 10_000;

/// The query string of a write: `?wait=committed[&timeout_ms=N]`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteQuery {
    wait: Option<String>,
    timeout_ms: Option<String>,
}

/// How long to wait for the commit, if the producer asked to.
fn commit_wait(uri: &Uri) -> Result<Option<u64>, ApiError> {
    let invalid = |m: String| ApiError::InvalidRequest(m);
    let axum::extract::Query(q) = axum::extract::Query::<WriteQuery>::try_from_uri(uri)
        .map_err(|e| invalid(format!("invalid query string: {}", e.body_text())))?;
    match (q.wait.as_deref(), q.timeout_ms) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(invalid("timeout_ms needs wait=committed".into())),
        (Some("committed"), timeout) => {
            let Some(timeout) = timeout else { return Ok(Some(DEFAULT_COMMIT_WAIT_MS)) };
            match timeout.parse::<u64>() {
                Ok(ms) if (1..=MAX_COMMIT_WAIT_MS).contains(&ms) => Ok(Some(ms)),
                _ => Err(invalid(format!(
                    "timeout_ms must be a whole number of milliseconds from 1 to {MAX_COMMIT_WAIT_MS}, not {timeout:?}"
                ))),
            }
        }
        (Some(other), _) => {
            Err(invalid(format!("wait must be \"committed\" (the only value), not {other:?}")))
        }
    }
}

/// Decides what happens to a producer write.
#[derive(Debug)]
pub struct IngestService {
    auth: ProducerAuth,
    budget: ByteBudget,
    forwarder: Forwarder,
    /// For commit waits; batches go through the forwarder.
    client: NodeClient,
    shutdown: CancellationToken,
    max_request_bytes: usize,
    body_timeout: std::time::Duration,
    parse_limits: ParseLimits,
}

impl IngestService {
    pub fn new(
        config: &EdgeConfig,
        forwarder: Forwarder,
        client: NodeClient,
        shutdown: CancellationToken,
    ) -> Self {
        let limits = &config.limits;
        IngestService {
            auth: ProducerAuth::new(&config.auth.producer_tokens),
            budget: ByteBudget::new(limits.max_inflight_bytes as usize),
            forwarder,
            client,
            shutdown,
            max_request_bytes: limits.max_request_bytes as usize,
            body_timeout: std::time::Duration::from_millis(limits.body_read_timeout_ms),
            parse_limits: ParseLimits {
                event: limits.event_limits(),
                max_records: limits.max_records_per_request as usize,
            },
        }
    }

    /// Handles one `POST /tables/{table}[/bulk][?wait=committed]`. A success means the
    /// node acknowledged every event as durable; with `wait=committed`, the reply also says
    /// whether they are in a committed snapshot.
    pub async fn ingest(
        &self,
        target: Target<'_>,
        uri: &Uri,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Accepted, ApiError> {
        if self.shutdown.is_cancelled() {
            return Err(ApiError::ShuttingDown);
        }
        self.auth.check(headers)?;
        validate_producer_table(target.table)?;
        let wait_ms = commit_wait(uri)?;
        let format = BodyFormat::from_headers(headers, target.endpoint)?;
        let encoding = Encoding::from_headers(headers)?;
        let header_key = idempotency_header(headers, target.endpoint)?;

        // Held until the node answered: the body, then the group encoded from it, are in
        // memory that long.
        let body =
            read_body(body, encoding, self.max_request_bytes, self.body_timeout, &self.budget)
                .await?;
        let mut reservation = body.reservation;
        // Events are encoded for the node as they are parsed, their payloads copied once,
        // straight from the body.
        let estimate = body.bytes.len() + body.bytes.len() / 4;
        let mut group = GroupEncoder::new(target.table, estimate);
        let limits = self.parse_limits;
        match (target.endpoint, format) {
            (Endpoint::Single, _) => {
                parse::single_into(&body.bytes, header_key, limits, &mut group)?
            }
            (Endpoint::Bulk, BodyFormat::Json) => {
                parse::bulk_json_into(&body.bytes, limits, &mut group).map(drop)?
            }
            (Endpoint::Bulk, BodyFormat::Ndjson) => {
                parse::bulk_ndjson_into(&body.bytes, limits, &mut group).map(drop)?
            }
        };
        let group = group.finish();
        // The encoded group takes the body's place in the budget. Both are held while the
        // request is parsed, which no await interrupts, so at most one request per worker
        // thread is in that state at any time.
        reservation.grow(group.len().saturating_sub(reservation.bytes()))?;
        drop(body.bytes);
        reservation.shrink_to(group.len());

        let table = target.table.to_owned();
        // The reservation travels with the group: if the producer gives up, the queued
        // group still counts against the budget until the node answered it.
        let acks = self.forwarder.submit_holding(group, Some(reservation)).await?;
        metrics::events_acknowledged(acks.len());
        let commit = match wait_ms {
            Some(ms) => Some(self.wait_for_commit(CommitWait::after(&table, &acks, ms)).await),
            None => None,
        };
        let mut accepted = match target.endpoint {
            Endpoint::Single => {
                let ack = acks.first().copied().ok_or_else(|| {
                    ApiError::Internal("the node acknowledged a single event with no ack".into())
                })?;
                Accepted::Single(SingleAccepted::new(table, ack))
            }
            Endpoint::Bulk => Accepted::Bulk(BulkAccepted::new(table, &acks)),
        };
        if let Some(commit) = commit {
            accepted.set_commit(commit);
        }
        Ok(accepted)
    }

    /// Waits at the node for acknowledged events to be committed. The events are durable
    /// whatever happens here, so a failed wait is answered like one that timed out
    /// (`committed: false`), never as an error that would make the producer write again.
    async fn wait_for_commit(&self, wait: CommitWait) -> CommitOutcome {
        match self.client.commit_wait(&wait).await {
            Ok(answer) => {
                metrics::commit_waited(if answer.committed { "committed" } else { "timeout" });
                CommitOutcome {
                    committed: answer.committed,
                    snapshot_id: answer.snapshot_id.filter(|_| answer.committed),
                }
            }
            Err(e) => {
                tracing::warn!(table = %wait.table, error = %e, "waiting for the commit failed; answering committed: false");
                metrics::commit_waited("failed");
                CommitOutcome { committed: false, snapshot_id: None }
            }
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }
}

/// The `Idempotency-Key` header: allowed on single events only, since bulk keys are per
/// record.
fn idempotency_header(headers: &HeaderMap, endpoint: Endpoint) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else { return Ok(None) };
    if endpoint == Endpoint::Bulk {
        return Err(ApiError::InvalidRequest(
            "the Idempotency-Key header is not allowed on bulk requests; set idempotency_key per record"
                .into(),
        ));
    }
    value.to_str().map(Some).map_err(|_| {
        ApiError::InvalidRequest("the Idempotency-Key header must be visible ASCII".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_may_wait_for_the_commit() {
        let wait = |q: &str| commit_wait(&Uri::try_from(format!("/tables/t{q}")).unwrap());
        assert_eq!(wait("").unwrap(), None);
        assert_eq!(wait("?wait=committed").unwrap(), Some(DEFAULT_COMMIT_WAIT_MS));
        assert_eq!(wait("?wait=committed&timeout_ms=250").unwrap(), Some(250));
        assert_eq!(wait("?timeout_ms=60000&wait=committed").unwrap(), Some(60_000));
        for bad in [
            "?wait=true",
            "?wait=",
            "?timeout_ms=100",
            "?wait=committed&timeout_ms=0",
            "?wait=committed&timeout_ms=60001",
            "?wait=committed&timeout_ms=1.5",
            "?wait=committed&timeout_ms=-1",
            "?wiat=committed",
            "?wait=committed&wait=committed",
        ] {
            let err = wait(bad).unwrap_err();
            assert_eq!(err.code().as_str(), "invalid_request", "{bad}");
        }
    }

    #[test]
    fn paths_address_single_or_bulk() {
        let t = |path| Target::from_path(path);
        assert_eq!(t("/tables/events"), Target { table: "events", endpoint: Endpoint::Single });
        assert_eq!(t("/tables/events/bulk"), Target { table: "events", endpoint: Endpoint::Bulk });
        // A table may be called "bulk".
        assert_eq!(t("/tables/bulk"), Target { table: "bulk", endpoint: Endpoint::Single });
        assert_eq!(t("/tables/bulk/bulk"), Target { table: "bulk", endpoint: Endpoint::Bulk });
        assert_eq!(t("/tables"), Target { table: "", endpoint: Endpoint::Single });
        assert_eq!(t("/tables/"), Target { table: "", endpoint: Endpoint::Single });
        assert_eq!(t("/tables//bulk"), Target { table: "", endpoint: Endpoint::Bulk });
    }

    #[test]
    fn raw_paths_with_bad_tables_fail_validation() {
        let long = format!("/tables/a{}", "b".repeat(128));
        for path in [
            "/tables/",
            "/tables/a:b",
            "/tables/a/b",
            "/tables/a/b/bulk",
            "/tables/../bulk",
            "/tables/..",
            "/tables/a%2Fb",
            "/tables/a%2fb/bulk",
            "/tables/%C3%A9",
            "/tables/1abc",
            "/tables/a/bulk/",
            "/tables/a%20b",
            &long,
        ] {
            let target = Target::from_path(path);
            assert!(validate_producer_table(target.table).is_err(), "{path} -> {target:?}");
        }
        let ok = format!("/tables/a{}/bulk", "b".repeat(127));
        assert!(validate_producer_table(Target::from_path(&ok).table).is_ok());
    }

    #[test]
    fn content_types() {
        let format = |ct: Option<&str>, endpoint| {
            let mut h = HeaderMap::new();
            if let Some(ct) = ct {
                h.insert(CONTENT_TYPE, ct.parse().unwrap());
            }
            BodyFormat::from_headers(&h, endpoint).ok()
        };
        use Endpoint::{Bulk, Single};
        assert_eq!(format(Some("application/json"), Single), Some(BodyFormat::Json));
        assert_eq!(format(Some("Application/JSON; charset=utf-8"), Single), Some(BodyFormat::Json));
        assert_eq!(format(Some("application/x-ndjson"), Single), None);
        assert_eq!(format(Some("text/plain"), Single), None);
        assert_eq!(format(None, Single), None);
        assert_eq!(format(Some("application/json"), Bulk), Some(BodyFormat::Json));
        assert_eq!(format(Some("application/x-ndjson"), Bulk), Some(BodyFormat::Ndjson));
        assert_eq!(format(Some("application/jsonx"), Bulk), None);
        assert_eq!(format(None, Bulk), None);
    }
}
