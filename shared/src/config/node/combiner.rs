//! `[combiner]`: the shard workers that assign sequences and write micro-batches.

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, check_range};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CombinerConfig {
    /// Writer threads; each table is owned by one.
    pub shards: u64,
    /// How long a micro-batch waits for more work once it has some, in µs. 0 (the
    /// default): it takes what is queued and writes at once; work that arrives during a
    /// write forms the next micro-batch (and shares its fsync).
    pub batch_window_us: u64,
    /// Events after which a micro-batch is written without waiting.
    pub batch_max_events: u64,
    /// Queued groups per shard; beyond it ingest answers "overloaded".
    pub queue_depth: u64,
}

impl Default for CombinerConfig {
    fn default() -> Self {
        CombinerConfig { shards: 2, batch_window_us: 0, batch_max_events: 4096, queue_depth: 1024 }
    }
}

impl CombinerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let c = self;
        check_range("combiner.shards", c.shards, 1, 64)?;
        check_range("combiner.batch_window_us", c.batch_window_us, 0, 1_000_000)?;
        check_range("combiner.batch_max_events", c.batch_max_events, 1, 1_000_000)?;
        check_range("combiner.queue_depth", c.queue_depth, 1, 1_000_000)?;
        Ok(())
    }
}
