//! `[log]`: the node's log in the object store, used with `durability = "object"`. Every
//! write of the hot store is first a record of a log segment created with put-if-absent
//! under `<warehouse>/<prefix>/`; an event is acknowledged once its segment exists.

use serde::{Deserialize, Serialize};

use super::MIB;
use crate::config::{ConfigError, check_range};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Folder of the log under the warehouse root: segments and checkpoints. Nodes that
    /// share the warehouse and this prefix share one log, so at most one of them writes.
    pub prefix: String,
    /// How long writes gather before their segment is written, in ms: the combiner's
    /// micro-batch window in `object` mode. Bounds the PUT rate: at most `combiner.shards`
    /// × 1000 / window segments per second (fewer when the shards' writes share one).
    pub segment_window_ms: u64,
    /// A segment is written without waiting once it holds this many bytes.
    pub segment_max_bytes: u64,
    /// How often the node deletes segments whose events are all committed to Iceberg
    /// (after writing a checkpoint of the state they carried), in ms.
    pub truncate_interval_ms: u64,
    /// An idle node writes an empty segment this often, in ms: the sign of life a standby
    /// watches for.
    pub heartbeat_ms: u64,
    /// A standby takes the log over once no segment appeared for this long, in ms (on its
    /// own clock). At least twice the heartbeat.
    pub takeover_after_ms: u64,
    /// Bound on one call of the log to the object store (a segment PUT, a listing), in ms.
    /// A call cut off is retried; a node paused or cut off learns within about this long
    /// that it lost the log.
    pub call_timeout_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            prefix: "_zombi/log".into(),
            segment_window_ms: 50,
            segment_max_bytes: 8 * MIB,
            truncate_interval_ms: 10_000,
            heartbeat_ms: 1_000,
            takeover_after_ms: 5_000,
            call_timeout_ms: 10_000,
        }
    }
}

impl LogConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let ok_part = |p: &str| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        };
        if !self.prefix.split('/').all(ok_part) {
            return Err(ConfigError::invalid(
                "log.prefix",
                "must be a relative folder of letters, digits, `_`, `-` and `.`, parts separated by `/`",
            ));
        }
        check_range("log.segment_window_ms", self.segment_window_ms, 0, 10_000)?;
        check_range("log.segment_max_bytes", self.segment_max_bytes, 64 * 1024, 1024 * MIB)?;
        check_range("log.truncate_interval_ms", self.truncate_interval_ms, 100, 3_600_000)?;
        check_range("log.heartbeat_ms", self.heartbeat_ms, 10, 600_000)?;
        check_range("log.takeover_after_ms", self.takeover_after_ms, 20, 3_600_000)?;
        check_range("log.call_timeout_ms", self.call_timeout_ms, 100, 600_000)?;
        if self.takeover_after_ms < self.heartbeat_ms.saturating_mul(2) {
            return Err(ConfigError::invalid(
                "log.takeover_after_ms",
                format!(
                    "is {}; it must be at least twice log.heartbeat_ms ({}), or a standby takes over from a live node",
                    self.takeover_after_ms, self.heartbeat_ms
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_stay_inside_the_warehouse() {
        for bad in ["", "/abs", "a/../b", "a//b", "..", "a b", "a/"] {
            let c = LogConfig { prefix: bad.into(), ..LogConfig::default() };
            assert!(c.validate().is_err(), "{bad:?} accepted");
        }
        let slow = LogConfig { heartbeat_ms: 3_000, ..LogConfig::default() };
        assert!(slow.validate().unwrap_err().to_string().contains("twice log.heartbeat_ms"));
        for good in ["_zombi/log", "log", "a.b/c-d_e"] {
            let c = LogConfig { prefix: good.into(), ..LogConfig::default() };
            assert!(c.validate().is_ok(), "{good:?} refused");
        }
    }
}
