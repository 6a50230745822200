//! Maintenance metrics. The `table` label is bounded by the number of tables.
//!
//! | name | type | meaning |
//! |---|---|---|
//! | `zombi_node_maintenance_runs_total{result}` | counter | maintenance runs (`ok`, `error`) |
//! | `zombi_node_maintenance_seconds` | histogram | duration of one run |
//! | `zombi_node_compaction_rewritten_files_total{table}` | counter | data files replaced by compaction |
//! | `zombi_node_compaction_rewritten_bytes_total{table}` | counter | bytes of those files |
//! | `zombi_node_compaction_written_files_total{table}` | counter | data files compaction wrote |
//! | `zombi_node_manifests_merged_total{table}` | counter | manifests replaced by merged ones |
//! | `zombi_node_snapshots_expired_total{table}` | counter | snapshots expired |
//! | `zombi_node_files_deleted_total{table}` | counter | unreferenced files deleted |
//! | `zombi_node_rows_deleted_total{table,reason}` | counter | rows removed by retention (`retention`) and deletes on request (`request`) |
//! | `zombi_node_maintenance_last_run_failed{table}` | gauge | 1 when the table's last run failed |
//! | `zombi_node_table_data_files{table}` | gauge | live data files in the current snapshot |
//! | `zombi_node_table_manifests{table}` | gauge | manifests the current snapshot lists |
//! | `zombi_node_table_snapshots{table}` | gauge | snapshots in the table metadata |
//! | `zombi_node_table_metadata_bytes{table}` | gauge | size of the current metadata JSON |

pub const RUNS: &str = "zombi_node_maintenance_runs_total";
pub const RUN_SECONDS: &str = "zombi_node_maintenance_seconds";
pub const REWRITTEN_FILES: &str = "zombi_node_compaction_rewritten_files_total";
pub const REWRITTEN_BYTES: &str = "zombi_node_compaction_rewritten_bytes_total";
pub const WRITTEN_FILES: &str = "zombi_node_compaction_written_files_total";
pub const MANIFESTS_MERGED: &str = "zombi_node_manifests_merged_total";
pub const SNAPSHOTS_EXPIRED: &str = "zombi_node_snapshots_expired_total";
pub const FILES_DELETED: &str = "zombi_node_files_deleted_total";
pub const ROWS_DELETED: &str = "zombi_node_rows_deleted_total";
pub const LAST_RUN_FAILED: &str = "zombi_node_maintenance_last_run_failed";
pub const DATA_FILES: &str = "zombi_node_table_data_files";
pub const MANIFESTS: &str = "zombi_node_table_manifests";
pub const SNAPSHOTS: &str = "zombi_node_table_snapshots";
pub const METADATA_BYTES: &str = "zombi_node_table_metadata_bytes";

pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(RUNS, "maintenance runs by result");
    describe_histogram!(RUN_SECONDS, metrics::Unit::Seconds, "duration of one maintenance run");
    describe_counter!(REWRITTEN_FILES, "data files replaced by compaction");
    describe_counter!(
        REWRITTEN_BYTES,
        metrics::Unit::Bytes,
        "bytes of data files replaced by compaction"
    );
    describe_counter!(WRITTEN_FILES, "data files written by compaction");
    describe_counter!(MANIFESTS_MERGED, "manifests replaced by merged ones");
    describe_counter!(SNAPSHOTS_EXPIRED, "snapshots expired");
    describe_counter!(FILES_DELETED, "unreferenced files deleted");
    describe_counter!(ROWS_DELETED, "rows removed by retention and by deletes on request");
    describe_gauge!(LAST_RUN_FAILED, "1 when the table's last maintenance run failed");
    describe_gauge!(DATA_FILES, "live data files in the current snapshot");
    describe_gauge!(MANIFESTS, "manifests the current snapshot lists");
    describe_gauge!(SNAPSHOTS, "snapshots in the table metadata");
    describe_gauge!(METADATA_BYTES, metrics::Unit::Bytes, "size of the current metadata JSON");
}
