//! What `/stats` and the metrics show of a table's flush: backlog, its bytes, and the
//! freshness lag.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{TableFlusher, m};
use crate::hot;

impl TableFlusher {
    pub(super) async fn update_status(
        &self,
        high_water_marks: &BTreeMap<u32, u64>,
        took: Duration,
    ) {
        let lagging: Vec<(u32, u64)> = high_water_marks
            .iter()
            .filter_map(|(p, h)| {
                let w = self.committed.get(p).copied().unwrap_or(0);
                (h > &w).then_some((*p, w))
            })
            .collect();
        let backlog: u64 = high_water_marks
            .iter()
            .map(|(p, h)| h.saturating_sub(self.committed.get(p).copied().unwrap_or(0)))
            .sum();
        let store = self.ctx.store.clone();
        let id = self.id;
        // The oldest uncommitted event of each lagging partition sits at its watermark.
        let (oldest_ms, counters) = tokio::task::spawn_blocking(move || {
            let oldest = lagging
                .into_iter()
                .filter_map(|(p, w)| {
                    store.scan(id, p, w, w + 1).next()?.ok().map(|(_, e)| e.ingest_ms)
                })
                .min();
            (oldest, store.table_counters(id).ok())
        })
        .await
        .unwrap_or((None, None));
        let backlog_bytes = counters.map_or(0, |c| {
            let events: u64 = c.high_water_marks.values().sum();
            (c.bytes as u128 * backlog as u128 / events.max(1) as u128) as u64
        });
        let lag = oldest_ms.map_or(0.0, |ms| (hot::now_ms() - ms).max(0) as f64 / 1000.0);
        let labels = [("table", self.name.clone())];
        metrics::gauge!(m::BACKLOG_ROWS, &labels).set(backlog as f64);
        metrics::gauge!(m::BACKLOG_BYTES, &labels).set(backlog_bytes as f64);
        metrics::gauge!(m::FRESHNESS_LAG, &labels).set(lag);
        let mut status = self.status.lock().unwrap();
        status.watermarks = self.committed.clone();
        status.floors = self.floors.clone();
        status.pending_files = self.pending.file_count();
        status.pending_rows = self.pending.rows;
        status.backlog_rows = backlog;
        status.backlog_bytes = backlog_bytes;
        status.freshness_lag_seconds = lag;
        status.last_flush_seconds = took.as_secs_f64();
    }
}
