use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{
    ConfigError, Validate, check_event_time_bounds, check_range, check_token, check_tokens,
    is_loopback,
};

const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Address the producer API binds to (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The node's base URL; several separated by commas (an active node and its standbys),
    /// and batches go to the one that takes them.
    pub node_url: String,
    pub limits: EdgeLimits,
    pub forward: ForwardConfig,
    pub auth: EdgeAuth,
    /// How long a graceful shutdown may take to drain in-flight requests, in ms.
    pub shutdown_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeLimits {
    /// Largest payload of one event, decoded.
    pub max_event_bytes: u64,
    /// Highest partition an event may name (partitions are few, like Kafka's).
    pub max_partition: u32,
    /// Events whose `timestamp_ms` is older than this many seconds are refused (400).
    /// 0 (default): any age, for backfills.
    pub max_event_age_secs: u64,
    /// Events whose `timestamp_ms` is this many seconds or more ahead of the edge's clock
    /// are refused (400). 0: no bound.
    pub max_future_skew_secs: u64,
    /// Largest request body, both as sent and after decompression.
    pub max_request_bytes: u64,
    /// Most events in one bulk request.
    pub max_records_per_request: u64,
    /// Request bytes the edge holds at once; beyond it requests get 429. A request holds
    /// the bytes it has sent so far, not what its `Content-Length` announces.
    pub max_inflight_bytes: u64,
    /// A request's line and headers must arrive within this many ms of the connection
    /// being ready for it; otherwise the connection is closed. This is also how long an
    /// idle keep-alive connection stays open.
    pub header_read_timeout_ms: u64,
    /// A request's whole body must arrive within this many ms; otherwise 408.
    pub body_read_timeout_ms: u64,
    /// `Retry-After` seconds sent with 429.
    pub retry_after_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    /// Largest batch sent to the node, in payload bytes.
    pub max_batch_bytes: u64,
    /// Most events in one batch sent to the node.
    pub max_batch_events: u64,
    /// How long a batch waits for more requests once it has one, in µs. 0 (the default):
    /// a batch leaves at once, and requests that arrive while every batch slot is busy
    /// coalesce into the next one.
    pub linger_us: u64,
    /// Batches in flight to the node at once; more requests queue and coalesce.
    pub max_inflight_batches: u64,
    /// How long a small batch (under 64 KiB of event weight) waits, in µs, while other
    /// batches are in flight: it leaves as soon as none is, or when it grows large, or
    /// when this time is up. Requests that arrive meanwhile join it, so under load the node
    /// gets fewer, larger batches; at low load nothing is in flight and nothing waits.
    /// 0: a batch leaves whenever a slot is free.
    pub hold_us: u64,
    /// Requests waiting for a batch slot; beyond it requests get 429.
    pub queue_depth: u64,
    pub connect_timeout_ms: u64,
    /// Deadline for the node's answer to one batch; past it the producer gets 503.
    pub request_timeout_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeAuth {
    /// Bearer tokens producers may use. Empty: no producer auth.
    pub producer_tokens: Vec<String>,
    /// Bearer token sent to the node's internal endpoint.
    pub internal_token: Option<String>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            listen: "127.0.0.1:8080".parse().unwrap(),
            node_url: "http://127.0.0.1:8090".into(),
            limits: EdgeLimits::default(),
            forward: ForwardConfig::default(),
            auth: EdgeAuth::default(),
            shutdown_timeout_ms: 10_000,
        }
    }
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            max_event_bytes: MIB,
            max_partition: 1023,
            max_event_age_secs: 0,
            max_future_skew_secs: 24 * 3600,
            max_request_bytes: 16 * MIB,
            max_records_per_request: 100_000,
            // The bench's overload run (docs/benchmarks.md): the edge peaked at 82-84 MiB
            // with 24 MiB and 100-104 with 32 MiB, in one sitting. A request holds about
            // the larger of its compressed and decompressed sizes (each compressed frame is
            // given back once decoded), so 24 MiB still admits the largest valid request
            // (16 MiB each way) with room to spare.
            max_inflight_bytes: 24 * MIB,
            header_read_timeout_ms: 60_000,
            body_read_timeout_ms: 30_000,
            retry_after_secs: 1,
        }
    }
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            max_batch_bytes: 2 * MIB,
            max_batch_events: 20_000,
            linger_us: 0,
            max_inflight_batches: 4,
            hold_us: 1_000,
            queue_depth: 4096,
            connect_timeout_ms: 1_000,
            request_timeout_ms: 10_000,
        }
    }
}

impl Validate for EdgeConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let urls = self.node_urls();
        for url in &urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 9 {
                return Err(ConfigError::invalid(
                    "node_url",
                    "must be an http:// or https:// URL, or several separated by commas",
                ));
            }
        }
        if urls.is_empty() {
            return Err(ConfigError::invalid("node_url", "must name at least one node"));
        }
        if (1..urls.len()).any(|i| urls[..i].contains(&urls[i])) {
            return Err(ConfigError::invalid("node_url", "names the same node twice"));
        }
        let l = &self.limits;
        check_range("limits.max_request_bytes", l.max_request_bytes, 1024, u32::MAX as u64)?;
        check_range("limits.max_event_bytes", l.max_event_bytes, 1, l.max_request_bytes)?;
        check_range("limits.max_records_per_request", l.max_records_per_request, 1, 10_000_000)?;
        check_range(
            "limits.max_inflight_bytes",
            l.max_inflight_bytes,
            l.max_request_bytes,
            (usize::MAX >> 4) as u64,
        )?;
        check_range("limits.retry_after_secs", l.retry_after_secs, 1, 3600)?;
        check_range("limits.header_read_timeout_ms", l.header_read_timeout_ms, 10, 600_000)?;
        check_range("limits.body_read_timeout_ms", l.body_read_timeout_ms, 10, 3_600_000)?;
        check_event_time_bounds(l.max_event_age_secs, l.max_future_skew_secs)?;
        let f = &self.forward;
        check_range("forward.max_batch_bytes", f.max_batch_bytes, 1024, 1024 * MIB)?;
        check_range("forward.max_batch_events", f.max_batch_events, 1, 10_000_000)?;
        check_range("forward.linger_us", f.linger_us, 0, 1_000_000)?;
        check_range("forward.max_inflight_batches", f.max_inflight_batches, 1, 1024)?;
        check_range("forward.hold_us", f.hold_us, 0, 1_000_000)?;
        check_range("forward.queue_depth", f.queue_depth, 1, 1_000_000)?;
        check_range("forward.connect_timeout_ms", f.connect_timeout_ms, 1, 600_000)?;
        check_range("forward.request_timeout_ms", f.request_timeout_ms, 1, 600_000)?;
        check_range("shutdown_timeout_ms", self.shutdown_timeout_ms, 0, 600_000)?;
        check_tokens("auth.producer_tokens", &self.auth.producer_tokens)?;
        if let Some(t) = &self.auth.internal_token {
            check_token("auth.internal_token", t)?;
        }
        Ok(())
    }
}

impl EdgeConfig {
    /// The nodes of `node_url`: one URL, or several separated by commas (an active node and
    /// its standbys), without trailing slashes.
    pub fn node_urls(&self) -> Vec<String> {
        self.node_url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty())
            .collect()
    }
}

impl EdgeLimits {
    /// The per-event checks these limits ask for.
    pub fn event_limits(&self) -> crate::envelope::EventLimits {
        crate::envelope::EventLimits::from_config(
            self.max_event_bytes,
            self.max_partition,
            self.max_event_age_secs,
            self.max_future_skew_secs,
        )
    }
}

impl EdgeConfig {
    /// True when producers can reach this edge without a token from beyond loopback.
    pub fn auth_off_beyond_loopback(&self) -> bool {
        self.auth.producer_tokens.is_empty() && !is_loopback(&self.listen)
    }
}
