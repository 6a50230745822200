//! Stored events → Arrow record batches in the table's schema (with Iceberg field ids),
//! split by (event_date, event_hour) as the partition spec requires.

use std::collections::BTreeMap;

use arrow_array::RecordBatch;

use super::Layout;
use crate::schema::{Row, arrow_schema, date_hour, system_columns};
use crate::typed::TypedError;

/// Events of one (event_date, event_hour), sorted by (timestamp_ms, sequence).
pub struct HourBatch {
    pub event_date: i32,
    pub event_hour: i32,
    pub batch: RecordBatch,
}

/// Splits rows at hour boundaries: every batch holds exactly one (event_date, event_hour),
/// so a range spanning hours (or late events) never makes a flush fail.
pub fn split_by_hour(rows: Vec<Row>, layout: &Layout) -> Result<Vec<HourBatch>, TypedError> {
    let mut groups: BTreeMap<(i32, i32), Vec<Row>> = BTreeMap::new();
    for row in rows {
        groups.entry(date_hour(row.2.timestamp_ms)).or_default().push(row);
    }
    groups
        .into_iter()
        .map(|((event_date, event_hour), mut rows)| {
            rows.sort_by_key(|(p, s, e)| (e.timestamp_ms, *s, *p));
            Ok(HourBatch { event_date, event_hour, batch: layout.to_batch(&rows)? })
        })
        .collect()
}

/// Builds one record batch of a raw table, rows in the given order.
pub fn events_to_batch(rows: &[Row]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    RecordBatch::try_new(arrow_schema(), system_columns(rows, None).to_vec())
}

#[cfg(test)]
mod tests {
    use zombi_shared::wire::Payload;

    use super::*;
    use crate::hot::StoredEvent;

    const MS_PER_HOUR: i64 = 3_600_000;

    fn ev(ts: i64) -> StoredEvent {
        StoredEvent {
            timestamp_ms: ts,
            ingest_ms: ts,
            idempotency_key: None,
            payload: Payload::Json("{}".into()),
            role: Default::default(),
        }
    }

    #[test]
    fn batches_split_at_hour_boundaries_and_sort() {
        let h = MS_PER_HOUR;
        let rows =
            vec![(0, 0, ev(2 * h + 5)), (0, 1, ev(h + 1)), (1, 0, ev(2 * h + 1)), (0, 2, ev(h))];
        let out = split_by_hour(rows, &Layout::Raw).unwrap();
        let shape: Vec<_> = out.iter().map(|b| (b.event_hour, b.batch.num_rows())).collect();
        assert_eq!(shape, vec![(1, 2), (2, 2)]);
        let ts = out[0].batch.column(2).as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
        assert_eq!(ts.values().to_vec(), vec![h, h + 1]);
        assert_eq!(
            out[0].batch.schema().field(0).metadata().get("PARQUET:field_id").map(String::as_str),
            Some("1")
        );
    }
}
