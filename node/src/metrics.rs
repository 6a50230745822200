//! Metric names of the node's ingest path. Labels are bounded: never a table name or a
//! partition. The flusher's metrics are in `flush/metrics.rs`.
//!
//! | name | type | meaning |
//! |---|---|---|
//! | `zombi_node_ingest_requests_total{status}` | counter | internal batch requests by HTTP status |
//! | `zombi_node_ingest_events_total` | counter | events received in valid batches |
//! | `zombi_node_ingest_bytes_total` | counter | internal batch body bytes |
//! | `zombi_node_rejections_total{reason}` | counter | groups or batches refused |
//! | `zombi_node_events_written_total` | counter | events durably written to the hot store |
//! | `zombi_node_duplicates_total` | counter | events answered from the idempotency record |
//! | `zombi_node_combiner_inflight_bytes` | gauge | bytes admitted and not yet answered |
//! | `zombi_node_combiner_batch_events` | histogram | events per micro-batch (one `WriteBatch`) |
//! | `zombi_node_hot_write_seconds` | histogram | staging + RocksDB write time per micro-batch |
//! | `zombi_node_hot_write_errors_total` | counter | failed micro-batch writes |
//! | `zombi_node_hot_generations` | gauge | generations (column families) of events in the hot store; each is dropped whole once all its events are flushed and past retention |
//! | `zombi_node_combiner_panics_total` | counter | combiner worker panics (the worker is restarted) |
//! | `zombi_node_clock_behind_total` | counter | commits stamped after the table's last update because the wall clock was behind it |
//! | `zombi_node_warehouse_errors_total{op,kind}` | counter | failed warehouse call attempts (`kind`: `error`, `timeout`), retried or not |
//! | `zombi_node_warehouse_retries_total{op}` | counter | warehouse calls retried after a failed attempt |
//! | `zombi_node_tables_adopted_total` | counter | tables adopted from the warehouse's metadata (the catalog had no pointer) |
//! | `zombi_node_log_segments_total` | counter | log segments written (`durability = "object"`) |
//! | `zombi_node_log_segment_bytes` | histogram | size of each log segment written |
//! | `zombi_node_log_put_seconds` | histogram | time of each put-if-absent of a segment, failed ones too |
//! | `zombi_node_log_put_failures_total` | counter | segment puts that failed and were retried |
//! | `zombi_node_log_append_seconds` | histogram | time a hot-store write waited for its segment |
//! | `zombi_node_log_segments_truncated_total` | counter | segments deleted after a checkpoint covered them |
//! | `zombi_node_commit_waits_total` | counter | edges' waits for committed events (`?wait=committed`), by `result`: `committed`, `timeout` |

pub const INGEST_REQUESTS: &str = "zombi_node_ingest_requests_total";
pub const INGEST_EVENTS: &str = "zombi_node_ingest_events_total";
pub const INGEST_BYTES: &str = "zombi_node_ingest_bytes_total";
pub const REJECTIONS: &str = "zombi_node_rejections_total";
pub const EVENTS_WRITTEN: &str = "zombi_node_events_written_total";
pub const DUPLICATES: &str = "zombi_node_duplicates_total";
pub const DEAD_LETTERED: &str = "zombi_node_dead_lettered_total";
pub const REPLAYED: &str = "zombi_node_replayed_total";
pub const COMBINER_INFLIGHT_BYTES: &str = "zombi_node_combiner_inflight_bytes";
pub const COMBINER_BATCH_EVENTS: &str = "zombi_node_combiner_batch_events";
pub const HOT_WRITE_SECONDS: &str = "zombi_node_hot_write_seconds";
pub const HOT_WRITE_ERRORS: &str = "zombi_node_hot_write_errors_total";
pub const HOT_GENERATIONS: &str = "zombi_node_hot_generations";
pub const COMBINER_PANICS: &str = "zombi_node_combiner_panics_total";
pub const CLOCK_BEHIND: &str = "zombi_node_clock_behind_total";
pub const WAREHOUSE_ERRORS: &str = "zombi_node_warehouse_errors_total";
pub const WAREHOUSE_RETRIES: &str = "zombi_node_warehouse_retries_total";
pub const TABLES_ADOPTED: &str = "zombi_node_tables_adopted_total";
pub const LOG_SEGMENTS: &str = "zombi_node_log_segments_total";
pub const LOG_SEGMENT_BYTES: &str = "zombi_node_log_segment_bytes";
pub const LOG_PUT_SECONDS: &str = "zombi_node_log_put_seconds";
pub const LOG_PUT_FAILURES: &str = "zombi_node_log_put_failures_total";
pub const LOG_APPEND_SECONDS: &str = "zombi_node_log_append_seconds";
pub const LOG_SEGMENTS_TRUNCATED: &str = "zombi_node_log_segments_truncated_total";
pub const COMMIT_WAITS: &str = "zombi_node_commit_waits_total";

/// Describes every metric once so `/metrics` carries HELP lines.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(INGEST_REQUESTS, "Internal batch requests by HTTP status.");
    describe_counter!(INGEST_EVENTS, Unit::Count, "Events received in valid batches.");
    describe_counter!(INGEST_BYTES, Unit::Bytes, "Internal batch body bytes.");
    describe_counter!(REJECTIONS, "Batches or groups refused, by reason.");
    describe_counter!(
        COMMIT_WAITS,
        "Edges' waits for acknowledged events to be committed, by result (committed, timeout)."
    );
    describe_counter!(EVENTS_WRITTEN, Unit::Count, "Events durably written to the hot store.");
    describe_counter!(DUPLICATES, Unit::Count, "Events answered from an idempotency record.");
    describe_counter!(
        DEAD_LETTERED,
        Unit::Count,
        "Events of typed tables written to their dead-letter table (at ingest and again at replay)."
    );
    describe_counter!(
        REPLAYED,
        Unit::Count,
        "Dead-letter rows replayed into their table (`POST /tables/{t}/replay`)."
    );
    describe_gauge!(COMBINER_INFLIGHT_BYTES, Unit::Bytes, "Bytes admitted, not yet answered.");
    describe_histogram!(COMBINER_BATCH_EVENTS, Unit::Count, "Events per micro-batch.");
    describe_histogram!(HOT_WRITE_SECONDS, Unit::Seconds, "Micro-batch write time.");
    describe_counter!(HOT_WRITE_ERRORS, Unit::Count, "Failed micro-batch writes.");
    describe_gauge!(HOT_GENERATIONS, Unit::Count, "Generations of events in the hot store.");
    describe_counter!(COMBINER_PANICS, "Combiner worker panics; the worker was restarted.");
    describe_counter!(CLOCK_BEHIND, "Commits stamped after the last update: clock was behind.");
    describe_counter!(WAREHOUSE_ERRORS, "Failed warehouse call attempts, by op and kind.");
    describe_counter!(WAREHOUSE_RETRIES, "Warehouse calls retried after a failed attempt.");
    describe_counter!(TABLES_ADOPTED, Unit::Count, "Tables adopted from warehouse metadata.");
    describe_counter!(LOG_SEGMENTS, Unit::Count, "Log segments written (durability object).");
    describe_histogram!(LOG_SEGMENT_BYTES, Unit::Bytes, "Size of each log segment written.");
    describe_histogram!(
        LOG_PUT_SECONDS,
        Unit::Seconds,
        "Time of each put-if-absent of a log segment, failed ones too."
    );
    describe_counter!(LOG_PUT_FAILURES, Unit::Count, "Log segment puts that failed (retried).");
    describe_histogram!(
        LOG_APPEND_SECONDS,
        Unit::Seconds,
        "Time a hot-store write waited for its log segment to exist."
    );
    describe_counter!(
        LOG_SEGMENTS_TRUNCATED,
        Unit::Count,
        "Log segments deleted after a checkpoint covered them."
    );
}

pub fn adopted_table() {
    metrics::counter!(TABLES_ADOPTED).increment(1);
}
