//! Reading the hot events to flush next: at most `max_rows_per_flush` rows, about
//! `max_bytes_per_flush` payload bytes and about `max_hours_per_flush` event-time hours (each
//! hour becomes at least one data file), shared fairly between the partitions that have a
//! backlog, so that one partition's backlog cannot hold the others back.

use std::collections::{BTreeMap, BTreeSet};

use super::{Read, TableFlusher, m};
use crate::flush::FlushError;
use crate::hot::{self, StoredEvent};
use crate::schema::Row;

/// What one partition may read in one flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Share {
    rows: u64,
    bytes: u64,
    hours: usize,
}

impl Share {
    /// The flush's limits divided between `partitions` partitions with a backlog.
    fn of(partitions: usize, max_rows: u64, max_bytes: u64, max_hours: usize) -> Share {
        let n = partitions.max(1);
        Share {
            rows: (max_rows / n as u64).max(1),
            bytes: (max_bytes / n as u64).max(1),
            hours: (max_hours / n).max(1),
        }
    }
}

/// What one partition's read returned.
#[derive(Debug, Default)]
struct PartitionRead {
    rows: Vec<(u64, StoredEvent)>,
    /// Where the read ended (exclusive): the next read starts here.
    end: u64,
    /// Ranges `[from, to)` of sequences the store lacked (only durability `none` loses
    /// acknowledged events): skipped rather than stalling the partition.
    gaps: Vec<(u64, u64)>,
}

/// Reads `[from, to)` of one partition from `events` (the store's scan of that range, in
/// sequence order) within `share`: the read stops before the first event of an hour beyond
/// the share, and after the event that reaches the share's bytes.
fn read_partition(
    events: impl Iterator<Item = hot::Result<(u64, StoredEvent)>>,
    from: u64,
    to: u64,
    share: Share,
) -> hot::Result<PartitionRead> {
    let mut out = PartitionRead { end: from, ..PartitionRead::default() };
    let mut hours = BTreeSet::new();
    let mut bytes = 0u64;
    for item in events {
        let (seq, event) = item?;
        let hour = event.timestamp_ms.div_euclid(3_600_000);
        if !hours.contains(&hour) {
            if hours.len() >= share.hours {
                return Ok(out);
            }
            hours.insert(hour);
        }
        if seq != out.end {
            out.gaps.push((out.end, seq));
        }
        bytes += event.payload.len() as u64;
        out.rows.push((seq, event));
        out.end = seq + 1;
        if bytes >= share.bytes {
            return Ok(out);
        }
    }
    // The whole range was read (events missing at its end included).
    out.end = to;
    Ok(out)
}

impl TableFlusher {
    /// Reads unflushed events from where the last read (or the committed watermarks) left
    /// off, within the flush's limits.
    pub(super) async fn read(&mut self) -> Result<Read, FlushError> {
        // Taken before the read: a write racing it moves the counter again.
        self.read_at_activity = Some(self.ctx.store.activity(self.id));
        let store = self.ctx.store.clone();
        let id = self.id;
        let flush = &self.ctx.config.flush;
        let (max_rows, max_bytes) = (flush.max_rows_per_flush, flush.max_bytes_per_flush);
        let max_hours = flush.max_hours_per_flush as usize;
        // Read starts: pending reads first, then committed watermarks, else 0.
        let mut starts = self.committed.clone();
        starts.extend(self.pending.read_to.iter().map(|(p, w)| (*p, *w)));
        let table = self.name.clone();
        let out = tokio::task::spawn_blocking(move || -> Result<_, hot::HotError> {
            let hwm = store.table_counters(id)?.high_water_marks;
            let backlog: Vec<(u32, u64, u64)> = hwm
                .iter()
                .map(|(p, h)| (*p, starts.get(p).copied().unwrap_or(0), *h))
                .filter(|(_, from, to)| to > from)
                .collect();
            let share = Share::of(backlog.len(), max_rows, max_bytes, max_hours);
            let mut rows: Vec<Row> = Vec::new();
            let mut read_to = BTreeMap::new();
            let mut more = false;
            for (p, from, to) in backlog {
                let to_now = to.min(from + share.rows);
                let read = read_partition(store.scan(id, p, from, to_now), from, to_now, share)?;
                for (gap_from, gap_to) in read.gaps {
                    tracing::error!(%table, partition = p, from = gap_from, to = gap_to, "events missing from the hot store");
                    ::metrics::counter!(m::HOT_GAPS).increment(gap_to - gap_from);
                }
                rows.extend(read.rows.into_iter().map(|(seq, e)| (p, seq, e)));
                more |= read.end < to;
                read_to.insert(p, read.end);
            }
            Ok(Read { rows, read_to, high_water_marks: hwm, more })
        })
        .await??;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use zombi_shared::wire::Payload;

    use super::*;

    const HOUR: i64 = 3_600_000;

    fn event(timestamp_ms: i64, payload: &str) -> StoredEvent {
        StoredEvent {
            timestamp_ms,
            ingest_ms: timestamp_ms,
            idempotency_key: None,
            payload: Payload::Json(payload.to_owned()),
            role: Default::default(),
        }
    }

    fn scan(
        events: Vec<(u64, StoredEvent)>,
    ) -> impl Iterator<Item = hot::Result<(u64, StoredEvent)>> {
        events.into_iter().map(Ok)
    }

    fn seqs(read: &PartitionRead) -> Vec<u64> {
        read.rows.iter().map(|(s, _)| *s).collect()
    }

    const WIDE: Share = Share { rows: 1000, bytes: 1 << 20, hours: 10 };

    #[test]
    fn limits_are_shared_between_partitions_and_never_zero() {
        assert_eq!(Share::of(4, 1000, 400, 10), Share { rows: 250, bytes: 100, hours: 2 });
        assert_eq!(Share::of(0, 1000, 400, 10), Share { rows: 1000, bytes: 400, hours: 10 });
        assert_eq!(Share::of(100, 10, 10, 10), Share { rows: 1, bytes: 1, hours: 1 });
    }

    #[test]
    fn a_whole_range_is_read_up_to_its_end() {
        let events = (5..8).map(|s| (s, event(0, "{}"))).collect();
        let read = read_partition(scan(events), 5, 8, WIDE).unwrap();
        assert_eq!((seqs(&read), read.end, read.gaps.len()), (vec![5, 6, 7], 8, 0));
    }

    #[test]
    fn a_read_stops_before_an_hour_beyond_its_share() {
        let events = vec![(0, event(0, "{}")), (1, event(HOUR, "{}")), (2, event(2 * HOUR, "{}"))];
        let read = read_partition(scan(events), 0, 3, Share { hours: 2, ..WIDE }).unwrap();
        assert_eq!((seqs(&read), read.end), (vec![0, 1], 2));
    }

    #[test]
    fn a_read_stops_after_the_event_that_reaches_its_bytes() {
        let events = (0..4).map(|s| (s, event(0, "12345"))).collect();
        let read = read_partition(scan(events), 0, 4, Share { bytes: 8, ..WIDE }).unwrap();
        assert_eq!((seqs(&read), read.end), (vec![0, 1], 2));
    }

    #[test]
    fn missing_sequences_are_skipped_and_reported() {
        // 3 and 4 are gone, and so is everything after 5 up to the range's end.
        let events = vec![(2, event(0, "{}")), (5, event(0, "{}"))];
        let read = read_partition(scan(events), 1, 9, WIDE).unwrap();
        assert_eq!((seqs(&read), read.end), (vec![2, 5], 9));
        assert_eq!(read.gaps, [(1, 2), (3, 5)]);
    }

    #[test]
    fn a_store_error_fails_the_read() {
        let events = vec![Ok((0, event(0, "{}"))), Err(hot::HotError::TableIdsExhausted)];
        assert!(read_partition(events.into_iter(), 0, 2, WIDE).is_err());
    }
}
