//! `[limits]`: what the node accepts and holds at once.

use serde::{Deserialize, Serialize};

use super::MIB;
use crate::config::{ConfigError, check_event_time_bounds, check_range};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeLimits {
    /// Largest payload of one event.
    pub max_event_bytes: u64,
    /// Highest partition an event may name. Every snapshot summary carries one watermark
    /// per partition, so partitions are meant to be few.
    pub max_partition: u32,
    /// Largest internal batch body.
    pub max_batch_bytes: u64,
    /// Payload bytes accepted but not yet durable; beyond it ingest answers 429.
    pub max_inflight_bytes: u64,
    /// Events older than this many seconds are refused (0: any age). Checked on the node
    /// too, since the node never trusts an edge's configuration.
    pub max_event_age_secs: u64,
    /// Events this many seconds or more ahead of the node's clock are refused (0: no bound).
    pub max_future_skew_secs: u64,
    /// Most tables the node holds; a write that would create one more is refused.
    pub max_tables: u64,
    /// A request's line and headers must arrive within this many ms; otherwise the
    /// connection is closed. Also how long an idle keep-alive connection stays open.
    pub header_read_timeout_ms: u64,
    /// Hot reads (`GET /tables/{t}/hot`) running at once; more get 429. Each holds up to
    /// 64 MiB of events while it is answered.
    pub max_concurrent_hot_reads: u64,
    /// How long a write to a table waits for the table to be ready (its Iceberg table
    /// loaded and its sequences reconciled with the snapshot) before it gets 503, in ms.
    pub table_ready_timeout_ms: u64,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_event_bytes: MIB,
            max_partition: 1023,
            max_batch_bytes: 64 * MIB,
            max_inflight_bytes: 256 * MIB,
            max_event_age_secs: 0,
            max_future_skew_secs: 24 * 3600,
            max_tables: 1000,
            max_concurrent_hot_reads: 4,
            header_read_timeout_ms: 60_000,
            table_ready_timeout_ms: 5_000,
        }
    }
}

impl NodeLimits {
    /// The per-event checks these limits ask for.
    pub fn event_limits(&self) -> crate::envelope::EventLimits {
        crate::envelope::EventLimits::from_config(
            self.max_event_bytes,
            self.max_partition,
            self.max_event_age_secs,
            self.max_future_skew_secs,
        )
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let l = self;
        check_range("limits.max_batch_bytes", l.max_batch_bytes, 1024, 4096 * MIB)?;
        // Arrow string columns hold at most 2 GiB per batch; keep single events far below.
        check_range(
            "limits.max_event_bytes",
            l.max_event_bytes,
            1,
            l.max_batch_bytes.min(256 * MIB),
        )?;
        // A batch must fit the budget, or it could never be admitted.
        check_range(
            "limits.max_inflight_bytes",
            l.max_inflight_bytes,
            l.max_batch_bytes,
            u64::MAX >> 2,
        )?;
        check_event_time_bounds(l.max_event_age_secs, l.max_future_skew_secs)?;
        check_range("limits.max_tables", l.max_tables, 1, 1_000_000)?;
        check_range("limits.max_concurrent_hot_reads", l.max_concurrent_hot_reads, 1, 1024)?;
        check_range("limits.header_read_timeout_ms", l.header_read_timeout_ms, 10, 600_000)?;
        check_range("limits.table_ready_timeout_ms", l.table_ready_timeout_ms, 1, 600_000)?;
        Ok(())
    }
}
