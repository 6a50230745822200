//! Flusher metrics. Per-table gauges carry a `table` label: bounded by the number of tables,
//! which the operator controls; everything else is unlabelled or labelled by outcome.
//!
//! | name | type | meaning |
//! |---|---|---|
//! | `zombi_node_flush_total{result}` | counter | flush cycles that wrote data (`ok`, `error`) |
//! | `zombi_node_flush_seconds` | histogram | read + write time of a flush cycle |
//! | `zombi_node_flush_idle_skips_total` | counter | flush intervals skipped because the table had nothing to do |
//! | `zombi_node_commit_total{result}` | counter | Iceberg commits (`ok`, `error`, `recovered`) |
//! | `zombi_node_commit_seconds` | histogram | time of one Iceberg commit |
//! | `zombi_node_commit_rows` | histogram | rows per commit |
//! | `zombi_node_commit_files` | histogram | data files per commit |
//! | `zombi_node_flush_panics_total` | counter | table flusher panics (the table's loop is restarted) |
//! | `zombi_node_hot_deleted_rows_total` | counter | flushed events deleted after retention |
//! | `zombi_node_hot_gap_rows_total` | counter | sequences missing from the hot store when flushed (only after a crash with durability `none`) |
//! | `zombi_node_hot_backlog_rows{table}` | gauge | acknowledged events not yet committed |
//! | `zombi_node_hot_backlog_bytes{table}` | gauge | their payload bytes (estimated from the table's average event size) |
//! | `zombi_node_freshness_lag_seconds{table}` | gauge | age of the oldest uncommitted event's acceptance |
//! | `zombi_node_flush_consecutive_failures{table}` | gauge | failures since the last success |

pub const FLUSHES: &str = "zombi_node_flush_total";
pub const FLUSH_SECONDS: &str = "zombi_node_flush_seconds";
pub const IDLE_SKIPS: &str = "zombi_node_flush_idle_skips_total";
pub const COMMITS: &str = "zombi_node_commit_total";
pub const COMMIT_SECONDS: &str = "zombi_node_commit_seconds";
pub const COMMIT_ROWS: &str = "zombi_node_commit_rows";
pub const COMMIT_FILES: &str = "zombi_node_commit_files";
pub const PANICS: &str = "zombi_node_flush_panics_total";
pub const HOT_DELETED: &str = "zombi_node_hot_deleted_rows_total";
pub const HOT_GAPS: &str = "zombi_node_hot_gap_rows_total";
pub const BACKLOG_ROWS: &str = "zombi_node_hot_backlog_rows";
pub const BACKLOG_BYTES: &str = "zombi_node_hot_backlog_bytes";
pub const FRESHNESS_LAG: &str = "zombi_node_freshness_lag_seconds";
pub const CONSECUTIVE_FAILURES: &str = "zombi_node_flush_consecutive_failures";

pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(FLUSHES, "Flush cycles that wrote data, by result.");
    describe_histogram!(FLUSH_SECONDS, Unit::Seconds, "Read and write time of a flush cycle.");
    describe_counter!(IDLE_SKIPS, "Flush intervals skipped: the table had nothing to do.");
    describe_counter!(COMMITS, "Iceberg commits, by result.");
    describe_histogram!(COMMIT_SECONDS, Unit::Seconds, "Time of one Iceberg commit.");
    describe_histogram!(COMMIT_ROWS, Unit::Count, "Rows per commit.");
    describe_histogram!(COMMIT_FILES, Unit::Count, "Data files per commit.");
    describe_counter!(PANICS, "Table flusher panics; the table's loop was restarted.");
    describe_counter!(HOT_DELETED, Unit::Count, "Flushed events deleted after retention.");
    describe_counter!(HOT_GAPS, Unit::Count, "Sequences missing from the hot store at flush.");
    describe_gauge!(BACKLOG_ROWS, Unit::Count, "Acknowledged events not yet committed.");
    describe_gauge!(BACKLOG_BYTES, Unit::Bytes, "Payload bytes not yet committed (estimate).");
    describe_gauge!(FRESHNESS_LAG, Unit::Seconds, "Age of the oldest uncommitted event.");
    describe_gauge!(CONSECUTIVE_FAILURES, Unit::Count, "Flush failures since the last success.");
}
