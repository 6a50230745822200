//! The process's Prometheus recorder: histogram buckets for every subsystem's durations
//! and sizes, and the upkeep that drains histogram windows between scrapes. Installed by
//! `main` before the node starts; each subsystem names its own metrics (`metrics.rs` beside
//! it).

use crate::flush::metrics::{COMMIT_FILES, COMMIT_ROWS};
use crate::metrics::COMBINER_BATCH_EVENTS;

/// Installs the process-wide Prometheus recorder with histogram buckets (instead of
/// summaries) for durations and sizes.
pub fn install_recorder() -> anyhow::Result<metrics_exporter_prometheus::PrometheusHandle> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let seconds = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
    let counts = [1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0];
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)?
        .set_buckets_for_metric(Matcher::Full(COMBINER_BATCH_EVENTS.into()), &counts)?
        .set_buckets_for_metric(Matcher::Full(COMMIT_ROWS.into()), &counts)?
        .set_buckets_for_metric(Matcher::Full(COMMIT_FILES.into()), &counts)?
        .install_recorder()?)
}

/// Drains histogram data into the exporter's windows; without it memory grows until a
/// scrape. Runs until the task is dropped.
pub async fn run_upkeep(handle: metrics_exporter_prometheus::PrometheusHandle) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}
