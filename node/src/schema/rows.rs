//! Stored events as rows of a table, and the Arrow columns of the ten system columns.

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{LargeBinaryBuilder, StringBuilder};
use arrow_array::{ArrayRef, StringArray};
use arrow_schema::{DataType, SchemaRef as ArrowSchemaRef};
use zombi_shared::wire::Payload;

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

/// One row to be: (partition, sequence, event).
pub type Row = (u32, u64, StoredEvent);

/// The ten system columns of `rows`, in field id order. `payload` replaces the payload
/// column's values (a typed table's: the JSON of the fields no column holds).
pub fn system_columns(rows: &[Row], payload: Option<Vec<Option<String>>>) -> [ArrayRef; 10] {
    let mut payload_text = StringBuilder::new();
    let mut payload_bytes = LargeBinaryBuilder::new();
    for (_, _, e) in rows {
        match (&payload, &e.payload) {
            (Some(_), _) => payload_bytes.append_null(),
            (None, Payload::Json(text)) => {
                payload_text.append_value(text);
                payload_bytes.append_null();
            }
            (None, Payload::Bytes(bytes)) => {
                payload_text.append_null();
                payload_bytes.append_value(bytes);
            }
        }
    }
    let payload_text: ArrayRef = match payload {
        Some(values) => Arc::new(StringArray::from(values)),
        None => Arc::new(payload_text.finish()),
    };
    let mut payload_bytes: Option<ArrayRef> = Some(Arc::new(payload_bytes.finish()));
    let mut payload_text = Some(payload_text);
    std::array::from_fn(|i| {
        let id = i as i32 + 1;
        match id {
            super::columns::FIELD_PAYLOAD => payload_text.take().expect("once"),
            super::columns::FIELD_PAYLOAD_BYTES => payload_bytes.take().expect("once"),
            _ => system_column(id, rows).expect("every other system column"),
        }
    })
}

/// Whether [`system_column`] builds the column of field `id`: every system column but the
/// payload's two.
pub fn is_event_column(id: i32) -> bool {
    use super::columns::*;
    super::is_system_field(id) && id != FIELD_PAYLOAD && id != FIELD_PAYLOAD_BYTES
}

/// One system column of `rows` (see [`is_event_column`]), as [`system_columns`] builds it.
pub fn system_column(id: i32, rows: &[Row]) -> Option<ArrayRef> {
    use super::columns::*;
    let tz = || match arrow_schema().field(3).data_type() {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    };
    let ints = |f: &dyn Fn(&Row) -> i32| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<arrow_array::Int32Array>())
    };
    let longs = |f: &dyn Fn(&Row) -> i64| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<arrow_array::Int64Array>())
    };
    let micros = |f: &dyn Fn(&Row) -> i64| -> ArrayRef {
        let values = arrow_array::TimestampMicrosecondArray::from_iter_values(rows.iter().map(f));
        Arc::new(values.with_timezone_opt(tz()))
    };
    Some(match id {
        // Partitions are u32 on the wire and int in Iceberg: values above i32::MAX wrap to
        // negative numbers, which keeps them distinct.
        FIELD_PARTITION => ints(&|(p, _, _)| *p as i32),
        FIELD_SEQUENCE => longs(&|(_, s, _)| *s as i64),
        FIELD_TIMESTAMP_MS => longs(&|(_, _, e)| e.timestamp_ms),
        FIELD_EVENT_TIME => micros(&|(_, _, e)| e.timestamp_ms * 1000),
        FIELD_INGEST_TIME => micros(&|(_, _, e)| e.ingest_ms * 1000),
        FIELD_IDEMPOTENCY_KEY => Arc::new(
            rows.iter().map(|(_, _, e)| e.idempotency_key.as_deref()).collect::<StringArray>(),
        ),
        FIELD_EVENT_DATE => Arc::new(arrow_array::Date32Array::from_iter_values(
            rows.iter().map(|(_, _, e)| date_hour(e.timestamp_ms).0),
        )),
        FIELD_EVENT_HOUR => ints(&|(_, _, e)| date_hour(e.timestamp_ms).1),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_hour_is_utc() {
        assert_eq!(date_hour(0), (0, 0));
        assert_eq!(date_hour(1_767_225_600_000), (20454, 0)); // 2026-01-01T00:00Z
        assert_eq!(date_hour(1_767_225_600_000 - 1), (20453, 23));
    }

    #[test]
    fn each_event_column_is_built_as_with_the_others() {
        let e = |ts: i64, key: Option<&str>| crate::hot::StoredEvent {
            timestamp_ms: ts,
            ingest_ms: ts + 5,
            idempotency_key: key.map(str::to_owned),
            payload: Payload::Json("{}".into()),
            role: Default::default(),
        };
        let rows: Vec<Row> =
            vec![(3, 9, e(1_767_225_600_000, Some("k"))), (u32::MAX, 10, e(-1, None))];
        let all = system_columns(&rows, None);
        for id in 1..=10 {
            match system_column(id, &rows) {
                Some(column) => assert_eq!(&column, &all[id as usize - 1], "field {id}"),
                None => assert!(!is_event_column(id), "field {id}"),
            }
        }
    }
}
