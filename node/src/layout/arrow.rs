//! Stored events → Arrow record batches in the table's schema (with Iceberg field ids),
//! split by (event_date, event_hour) as the partition spec requires.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    Date32Builder, Int32Builder, Int64Builder, LargeBinaryBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, SchemaRef as ArrowSchemaRef};
use zombi_shared::wire::Payload;

use super::Layout;
use crate::hot::StoredEvent;

const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

static ARROW_SCHEMA: LazyLock<ArrowSchemaRef> = LazyLock::new(|| {
    Arc::new(
        iceberg::arrow::schema_to_arrow_schema(&super::schema())
            .expect("the Zombi schema converts to Arrow"),
    )
});

pub fn arrow_schema() -> ArrowSchemaRef {
    ARROW_SCHEMA.clone()
}

/// UTC (days since epoch, hour of day) of an event time.
pub fn date_hour(timestamp_ms: i64) -> (i32, i32) {
    let days = timestamp_ms.div_euclid(MS_PER_DAY);
    let hour = timestamp_ms.rem_euclid(MS_PER_DAY) / MS_PER_HOUR;
    (days as i32, hour as i32)
}

/// Events of one (event_date, event_hour), sorted by (timestamp_ms, sequence).
pub struct HourBatch {
    pub event_date: i32,
    pub event_hour: i32,
    pub batch: RecordBatch,
}

/// One row to be: (partition, sequence, event).
pub type Row = (u32, u64, StoredEvent);

/// Splits rows at hour boundaries: every batch holds exactly one (event_date, event_hour),
/// so a range spanning hours (or late events) never makes a flush fail.
pub fn split_by_hour(rows: Vec<Row>, layout: &Layout) -> Result<Vec<HourBatch>, String> {
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

/// The ten system columns of `rows`, in field id order. `payload` replaces the payload
/// column's values (a typed table's: the JSON of the fields no column holds).
pub fn system_columns(rows: &[Row], payload: Option<Vec<Option<String>>>) -> [ArrayRef; 10] {
    let n = rows.len();
    let mut partition = Int32Builder::with_capacity(n);
    let mut sequence = Int64Builder::with_capacity(n);
    let mut timestamp_ms = Int64Builder::with_capacity(n);
    let mut event_time = TimestampMicrosecondBuilder::with_capacity(n);
    let mut ingest_time = TimestampMicrosecondBuilder::with_capacity(n);
    let mut key = StringBuilder::new();
    let mut payload_text = StringBuilder::new();
    let mut payload_bytes = LargeBinaryBuilder::new();
    let mut event_date = Date32Builder::with_capacity(n);
    let mut event_hour = Int32Builder::with_capacity(n);
    for (p, s, e) in rows {
        // Partitions are u32 on the wire and int in Iceberg: values above i32::MAX wrap to
        // negative numbers, which keeps them distinct.
        partition.append_value(*p as i32);
        sequence.append_value(*s as i64);
        timestamp_ms.append_value(e.timestamp_ms);
        event_time.append_value(e.timestamp_ms * 1000);
        ingest_time.append_value(e.ingest_ms * 1000);
        key.append_option(e.idempotency_key.as_deref());
        if payload.is_none() {
            match &e.payload {
                Payload::Json(text) => {
                    payload_text.append_value(text);
                    payload_bytes.append_null();
                }
                Payload::Bytes(bytes) => {
                    payload_text.append_null();
                    payload_bytes.append_value(bytes);
                }
            }
        } else {
            payload_bytes.append_null();
        }
        let (d, h) = date_hour(e.timestamp_ms);
        event_date.append_value(d);
        event_hour.append_value(h);
    }
    let payload_text: ArrayRef = match payload {
        Some(values) => Arc::new(StringArray::from(values)),
        None => Arc::new(payload_text.finish()),
    };
    let tz = match arrow_schema().field(3).data_type() {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    };
    [
        Arc::new(partition.finish()),
        Arc::new(sequence.finish()),
        Arc::new(timestamp_ms.finish()),
        Arc::new(event_time.finish().with_timezone_opt(tz.clone())),
        Arc::new(ingest_time.finish().with_timezone_opt(tz)),
        Arc::new(key.finish()),
        payload_text,
        Arc::new(payload_bytes.finish()),
        Arc::new(event_date.finish()),
        Arc::new(event_hour.finish()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn date_hour_is_utc() {
        assert_eq!(date_hour(0), (0, 0));
        assert_eq!(date_hour(1_767_225_600_000), (20454, 0)); // 2026-01-01T00:00Z
        assert_eq!(date_hour(1_767_225_600_000 - 1), (20453, 23));
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
