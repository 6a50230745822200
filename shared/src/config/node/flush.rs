//! `[flush]`: how often tables are flushed and committed, their snapshot policy, hot
//! retention and the backoff after failures.

use serde::{Deserialize, Serialize};

use super::MIB;
use crate::config::{ConfigError, check_range};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlushConfig {
    /// How often each table's hot events are written to Iceberg, in ms.
    pub interval_ms: u64,
    /// Most events one flush reads; a larger backlog is flushed in several rounds.
    pub max_rows_per_flush: u64,
    /// About how many payload bytes one flush reads (bounds the flusher's memory).
    pub max_bytes_per_flush: u64,
    /// Most event-time hours one flush writes (each hour is at least one data file); events
    /// of further hours wait for the next flush, so no table holds a flush slot for long.
    pub max_hours_per_flush: u64,
    /// Flushed events stay in the hot store this long (for hot readers), then are deleted.
    pub retention_secs: u64,
    /// A hot-segment listing (`GET /tables/{t}/hot/segments`) keeps the events above the
    /// watermarks it was asked for this long, retention notwithstanding, so a query's
    /// segments stay readable while it runs, in seconds.
    pub hot_lease_secs: u64,
    pub snapshot: SnapshotPolicy,
    /// Tables flushed at the same time.
    pub max_concurrent: u64,
    /// First retry delay after a failed flush; doubles per failure up to `backoff_max_ms`.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
}

/// When written data files become an Iceberg snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotPolicy {
    /// `every_flush` (default): every flush commits. `thresholds`: data files accumulate
    /// until one of the thresholds below is reached.
    pub mode: SnapshotMode,
    pub max_files: u64,
    pub max_bytes: u64,
    pub max_age_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    #[default]
    EveryFlush,
    Thresholds,
}

/// The flush settings in force for one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableFlushSettings {
    pub interval_ms: u64,
    pub retention_secs: u64,
    pub snapshot: SnapshotPolicy,
}

impl Default for FlushConfig {
    fn default() -> Self {
        FlushConfig {
            interval_ms: 1_000,
            max_rows_per_flush: 100_000,
            max_bytes_per_flush: 32 * MIB,
            max_hours_per_flush: 256,
            retention_secs: 60,
            hot_lease_secs: 300,
            snapshot: SnapshotPolicy::default(),
            max_concurrent: 2,
            backoff_initial_ms: 200,
            backoff_max_ms: 30_000,
        }
    }
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy {
            mode: SnapshotMode::EveryFlush,
            max_files: 10,
            max_bytes: 256 * MIB,
            max_age_ms: 60_000,
        }
    }
}

impl FlushConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let f = self;
        check_range("flush.interval_ms", f.interval_ms, 10, 3_600_000)?;
        check_range("flush.max_rows_per_flush", f.max_rows_per_flush, 1, 100_000_000)?;
        check_range("flush.max_bytes_per_flush", f.max_bytes_per_flush, MIB, 1024 * MIB)?;
        check_range("flush.max_hours_per_flush", f.max_hours_per_flush, 1, 100_000)?;
        check_range("flush.retention_secs", f.retention_secs, 0, 7 * 24 * 3600)?;
        check_range("flush.hot_lease_secs", f.hot_lease_secs, 0, 24 * 3600)?;
        check_range("flush.max_concurrent", f.max_concurrent, 1, 64)?;
        check_range("flush.backoff_initial_ms", f.backoff_initial_ms, 1, 600_000)?;
        check_range("flush.backoff_max_ms", f.backoff_max_ms, f.backoff_initial_ms, 3_600_000)?;
        check_snapshot("flush.snapshot", &f.snapshot)?;
        Ok(())
    }
}

pub(super) fn check_snapshot(key: &'static str, p: &SnapshotPolicy) -> Result<(), ConfigError> {
    if p.mode == SnapshotMode::Thresholds && p.max_age_ms == 0 {
        // Without an age bound a quiet table would never become visible.
        return Err(ConfigError::invalid(key, "thresholds mode needs snapshot.max_age_ms > 0"));
    }
    check_range(key, p.max_age_ms, 0, 24 * 3_600_000)
}
