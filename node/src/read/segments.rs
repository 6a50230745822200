//! Hot segments (SPEC §7): the hot events above a snapshot's watermarks, cut into pinned
//! pieces that real-time readers plan as Iceberg data files.
//!
//! A segment is the rows of one partition with `from <= sequence < to` whose partition
//! value, in one of the table's partition specs (the current one when listed), is one
//! value. Events never change once written and sequences are dense, so the same segment
//! re-reads to the same rows for as long as retention keeps the range; the listing leases
//! it (see [`super::lease`]). The listing carries what an Iceberg data file carries (spec
//! and partition values, record count, value and null counts, bounds, a size), so engines
//! prune and push aggregates down on hot files as on cold ones.

use std::collections::BTreeMap;

use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::Serialize;
use zombi_shared::wire::Payload;

use crate::hot::StoredEvent;
use crate::layout::{self, Layout, Partitioner};
use crate::schema::{self, Row};
use crate::typed::TypedError;

/// Most rows and payload bytes in one segment: one segment is read into memory at once.
pub const MAX_SEGMENT_ROWS: u64 = 262_144;
pub const MAX_SEGMENT_PAYLOAD_BYTES: u64 = 64 << 20;

/// Most segments one listing returns; beyond it the listing is refused (the hot backlog
/// is far larger than a real-time read is meant for: the flusher is stalled).
pub const MAX_SEGMENTS: usize = 10_000;

/// Events whose partition values are computed at once, while listing or reading.
pub const CHUNK_ROWS: usize = 4096;

/// Which rows a segment is: its identity, and its path on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentId {
    pub partition: u32,
    pub from: u64,
    pub to: u64,
    /// The partition spec the value is of.
    pub spec_id: i32,
    /// The partition value, as the listing's `partition_values` (JSON text).
    pub value: String,
}

impl SegmentId {
    /// `/tables/{table}/hot/segments/{partition}/{from}-{to}/{spec_id}-{value}.parquet`, the
    /// value's JSON text in hex: any value makes a path every engine passes through as is.
    pub fn path(&self, table: &str) -> String {
        let hex: String = self.value.bytes().map(|b| format!("{b:02x}")).collect();
        format!(
            "/tables/{table}/hot/segments/{}/{}-{}/{}-{hex}.parquet",
            self.partition, self.from, self.to, self.spec_id
        )
    }

    /// Parses the three path pieces after `/hot/segments/`.
    pub fn parse(partition: &str, range: &str, file: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "segment path {partition}/{range}/{file} is not <partition>/<from>-<to>/<spec_id>-<partition value>.parquet (as a listing gives it)"
            )
        };
        let (from, to) = range.split_once('-').ok_or_else(bad)?;
        let (spec, hex) =
            file.strip_suffix(".parquet").and_then(|f| f.split_once('-')).ok_or_else(bad)?;
        if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
            .collect();
        let value = String::from_utf8(bytes).map_err(|_| bad())?;
        if !serde_json::from_str::<serde_json::Value>(&value).is_ok_and(|v| v.is_array()) {
            return Err(bad());
        }
        let id = SegmentId {
            partition: partition.parse().map_err(|_| bad())?,
            from: from.parse().map_err(|_| bad())?,
            to: to.parse().map_err(|_| bad())?,
            spec_id: spec.parse().map_err(|_| bad())?,
            value,
        };
        if id.from >= id.to {
            return Err(bad());
        }
        Ok(id)
    }
}

/// Hot events in chunks of [`CHUNK_ROWS`], each row with its partition value's JSON text
/// under one spec: how a listing and a segment read see them.
pub struct Valued<'a> {
    layout: &'a Layout,
    partitioner: &'a Partitioner,
    partition: u32,
    chunk: Vec<Row>,
}

impl<'a> Valued<'a> {
    pub fn new(layout: &'a Layout, partitioner: &'a Partitioner, partition: u32) -> Self {
        Valued { layout, partitioner, partition, chunk: Vec::with_capacity(CHUNK_ROWS) }
    }

    /// Adds an event (rows only); a full chunk is handed to `f` with its values.
    pub fn push(
        &mut self,
        sequence: u64,
        e: StoredEvent,
        f: &mut impl FnMut(Row, &str),
    ) -> Result<(), TypedError> {
        if e.is_row() {
            self.chunk.push((self.partition, sequence, e));
            if self.chunk.len() >= CHUNK_ROWS {
                self.drain(f)?;
            }
        }
        Ok(())
    }

    /// Hands every row still held to `f`.
    pub fn drain(&mut self, f: &mut impl FnMut(Row, &str)) -> Result<(), TypedError> {
        let values = self.partitioner.row_values(self.layout, &self.chunk)?;
        let texts = values
            .distinct
            .iter()
            .map(|v| Ok(self.partitioner.to_json(v)?.to_string()))
            .collect::<Result<Vec<String>, TypedError>>()?;
        for (row, id) in std::mem::take(&mut self.chunk).into_iter().zip(values.of_row) {
            f(row, &texts[id as usize]);
        }
        Ok(())
    }
}

/// One segment as the listing describes it. Metric maps are keyed by Iceberg field id.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Segment {
    pub path: String,
    pub partition: u32,
    pub from_sequence: u64,
    pub to_sequence: u64,
    /// The partition spec of `partition_values` (the table's current spec when listed).
    pub spec_id: i32,
    /// One value per field of the spec, as a manifest stores it: numbers for ints, longs,
    /// dates (days), times and timestamps (microseconds) and every transform's result but
    /// `truncate` of a string; strings; booleans; decimals as their text; `null`.
    pub partition_values: serde_json::Value,
    pub record_count: u64,
    /// An upper bound of the Parquet file's size (see [`size_bound`]).
    pub file_size_in_bytes: u64,
    pub value_counts: BTreeMap<i32, u64>,
    pub null_value_counts: BTreeMap<i32, u64>,
    /// Numeric and time columns only, in Iceberg's representation (date: days,
    /// timestamptz: microseconds).
    pub lower_bounds: BTreeMap<i32, i64>,
    pub upper_bounds: BTreeMap<i32, i64>,
}

/// What a listing gathers about one segment while it scans.
struct Acc {
    from: u64,
    last: u64,
    rows: u64,
    payload_bytes: u64,
    key_bytes: u64,
    null_keys: u64,
    null_payloads: u64,
    null_payload_bytes: u64,
    min_ts: i64,
    max_ts: i64,
    min_ingest: i64,
    max_ingest: i64,
}

impl Acc {
    fn new(sequence: u64) -> Self {
        Acc {
            from: sequence,
            last: sequence,
            rows: 0,
            payload_bytes: 0,
            key_bytes: 0,
            null_keys: 0,
            null_payloads: 0,
            null_payload_bytes: 0,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            min_ingest: i64::MAX,
            max_ingest: i64::MIN,
        }
    }

    fn add(&mut self, sequence: u64, e: &StoredEvent) {
        self.last = sequence;
        self.rows += 1;
        self.payload_bytes += e.payload.len() as u64;
        if let crate::hot::Role::DeadLetter { error, .. } = &e.role {
            // A dead-letter row's error and source sequence (see `size_bound`).
            self.key_bytes += error.len() as u64 + 8 + 5;
        }
        match &e.idempotency_key {
            Some(k) => self.key_bytes += k.len() as u64,
            None => self.null_keys += 1,
        }
        match e.payload {
            Payload::Json(_) => self.null_payload_bytes += 1,
            Payload::Bytes(_) => self.null_payloads += 1,
        }
        self.min_ts = self.min_ts.min(e.timestamp_ms);
        self.max_ts = self.max_ts.max(e.timestamp_ms);
        self.min_ingest = self.min_ingest.min(e.ingest_ms);
        self.max_ingest = self.max_ingest.max(e.ingest_ms);
    }

    fn full(&self) -> bool {
        self.rows >= MAX_SEGMENT_ROWS || self.payload_bytes >= MAX_SEGMENT_PAYLOAD_BYTES
    }

    /// `typed_leaves`: the leaf columns of a typed table's user columns (`None`: raw).
    fn finish(
        self,
        table: &str,
        partition: u32,
        (spec_id, value): (i32, String),
        typed_leaves: Option<u64>,
    ) -> Segment {
        use schema::*;
        let id = SegmentId { partition, from: self.from, to: self.last + 1, spec_id, value };
        let (min_date, min_hour) = date_hour(self.min_ts);
        let (max_date, max_hour) = date_hour(self.max_ts);
        // Hours rise with time within a day only.
        let (min_hour, max_hour) =
            if min_date == max_date { (min_hour, max_hour) } else { (0, 23) };
        let n = self.rows;
        let value_counts = (FIELD_PARTITION..=FIELD_EVENT_HOUR).map(|f| (f, n)).collect();
        // A typed table's payload holds what no column does, known only after conversion:
        // its null count is left out (unknown to readers), never guessed.
        let null_value_counts = (FIELD_PARTITION..=FIELD_EVENT_HOUR)
            .filter_map(|f| match f {
                FIELD_IDEMPOTENCY_KEY => Some((f, self.null_keys)),
                FIELD_PAYLOAD if typed_leaves.is_some() => None,
                FIELD_PAYLOAD => Some((f, self.null_payloads)),
                FIELD_PAYLOAD_BYTES => Some((f, self.null_payload_bytes)),
                _ => Some((f, 0)),
            })
            .collect();
        // Partitions are u32 on the wire and int in Iceberg (see `layout::events_to_batch`).
        let p = i64::from(partition as i32);
        let (lo, hi) = (
            [
                (FIELD_PARTITION, p),
                (FIELD_SEQUENCE, self.from as i64),
                (FIELD_TIMESTAMP_MS, self.min_ts),
                (FIELD_EVENT_TIME, self.min_ts * 1000),
                (FIELD_INGEST_TIME, self.min_ingest * 1000),
                (FIELD_EVENT_DATE, i64::from(min_date)),
                (FIELD_EVENT_HOUR, i64::from(min_hour)),
            ],
            [
                (FIELD_PARTITION, p),
                (FIELD_SEQUENCE, self.last as i64),
                (FIELD_TIMESTAMP_MS, self.max_ts),
                (FIELD_EVENT_TIME, self.max_ts * 1000),
                (FIELD_INGEST_TIME, self.max_ingest * 1000),
                (FIELD_EVENT_DATE, i64::from(max_date)),
                (FIELD_EVENT_HOUR, i64::from(max_hour)),
            ],
        );
        let partition_values = serde_json::from_str(&id.value).unwrap_or_default();
        Segment {
            path: id.path(table),
            partition,
            from_sequence: id.from,
            to_sequence: id.to,
            spec_id: id.spec_id,
            partition_values,
            record_count: n,
            file_size_in_bytes: size_bound(n, self.payload_bytes + self.key_bytes, typed_leaves),
            value_counts,
            null_value_counts,
            lower_bounds: lo.into_iter().collect(),
            upper_bounds: hi.into_iter().collect(),
        }
    }
}

/// Cuts the hot rows of one partition, read in sequence order with their partition values
/// (see [`Valued`]), into segments: one open segment per partition value at a time, closed
/// when it is full or the rows end.
pub struct Segmenter<'a> {
    table: &'a str,
    partition: u32,
    spec_id: i32,
    typed_leaves: Option<u64>,
    open: BTreeMap<String, Acc>,
    done: Vec<Segment>,
}

impl<'a> Segmenter<'a> {
    /// `typed_leaves`: see [`Acc::finish`].
    pub fn new(table: &'a str, partition: u32, spec_id: i32, typed_leaves: Option<u64>) -> Self {
        Segmenter {
            table,
            partition,
            spec_id,
            typed_leaves,
            open: BTreeMap::new(),
            done: Vec::new(),
        }
    }

    /// Adds a row whose partition value's JSON text is `value`.
    pub fn add(&mut self, (_, sequence, e): &Row, value: &str) {
        let acc = match self.open.get_mut(value) {
            Some(acc) => acc,
            None => self.open.entry(value.to_owned()).or_insert_with(|| Acc::new(*sequence)),
        };
        acc.add(*sequence, e);
        if acc.full() {
            let acc = self.open.remove(value).expect("just used");
            let key = (self.spec_id, value.to_owned());
            self.done.push(acc.finish(self.table, self.partition, key, self.typed_leaves));
        }
    }

    pub fn finish(mut self) -> Vec<Segment> {
        for (value, acc) in std::mem::take(&mut self.open) {
            let key = (self.spec_id, value);
            self.done.push(acc.finish(self.table, self.partition, key, self.typed_leaves));
        }
        self.done
    }
}

/// Rows of a segment, in the order the file holds them (`timestamp_ms`, `sequence`).
pub fn sort_rows(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by_key(|(_, s, e)| (e.timestamp_ms, *s));
    rows
}

/// The Parquet writer settings of segment files: one row group (its only split offset is
/// 4), plain encoding and no statistics (the listing carries the metrics), fast ZSTD. Both
/// keep [`size_bound`] a true upper bound.
fn segment_writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("valid zstd level")))
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_max_row_group_row_count(Some(MAX_SEGMENT_ROWS as usize))
        .set_max_row_group_bytes(None)
        .build()
}

/// Encodes a segment's rows as one Parquet file in the table's schema, with field ids.
pub fn to_parquet(layout: &layout::Layout, rows: &[Row]) -> Result<Vec<u8>, super::ReadError> {
    let batch = layout.to_batch(rows).map_err(super::ReadError::Schema)?;
    super::write_parquet(&layout.arrow_schema(), &[batch], Some(segment_writer_properties()))
        .map_err(|e| super::ReadError::Encode(Box::new(e)))
}

/// An upper bound of the size of a segment file of `rows` rows whose keys and payloads
/// total `var_bytes`: every value plain-encoded (fixed columns, 4-byte length prefixes,
/// definition levels), compression's worst-case growth, a page header per page and the
/// footer. A typed table (`typed_leaves` leaf columns) adds, per leaf and row, a value's
/// levels, and per payload byte the most one byte of JSON text can become (a 16-byte
/// decimal, its length prefix and levels). Readers use it only to plan splits; the one row
/// group always lies within it.
pub fn size_bound(rows: u64, var_bytes: u64, typed_leaves: Option<u64>) -> u64 {
    // 7 fixed-width columns (44 bytes), 3 optional variable-length ones (4-byte length
    // prefix, and a definition level each).
    let mut raw = rows * (44 + 3 * (4 + 1)) + var_bytes;
    if let Some(leaves) = typed_leaves {
        raw += rows * leaves * 4 + var_bytes * 22;
    }
    let pages = (10 + typed_leaves.unwrap_or(0)) * (rows / 10_000 + raw / (512 << 10) + 2);
    raw + raw / 64 + pages * 256 + (32 << 10)
}

/// Parses `watermarks=0:180,1:200` (empty: none).
pub fn parse_watermarks(s: &str) -> Result<BTreeMap<u32, u64>, String> {
    let mut out = BTreeMap::new();
    for pair in s.split(',').filter(|p| !p.is_empty()) {
        let parsed = pair.split_once(':').and_then(|(p, w)| {
            Some((p.trim().parse::<u32>().ok()?, w.trim().parse::<u64>().ok()?))
        });
        let Some((p, w)) = parsed else {
            return Err(format!(
                "watermarks: {} is not <partition>:<next sequence> (e.g. watermarks=0:180,1:200)",
                zombi_shared::quote::quoted(pair)
            ));
        };
        if out.insert(p, w).is_some() {
            return Err(format!("watermarks: partition {p} is given twice"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: i64, payload: Payload, key: Option<&str>) -> StoredEvent {
        StoredEvent {
            timestamp_ms: ts,
            ingest_ms: ts + 5,
            idempotency_key: key.map(str::to_owned),
            payload,
            role: Default::default(),
        }
    }

    const H: i64 = 3_600_000;
    const DAY0: i64 = 20_000 * 24 * H;

    fn default_partitioner() -> Partitioner {
        let schema = schema::schema();
        let spec = schema::partition_spec().bind(schema.clone()).unwrap();
        Partitioner::new(&schema, std::sync::Arc::new(spec)).unwrap()
    }

    /// Lists `events` of stream partition `p` as the node does.
    fn list(p: u32, partitioner: &Partitioner, events: Vec<(u64, StoredEvent)>) -> Vec<Segment> {
        let mut cut = Segmenter::new("t", p, partitioner.spec_id(), None);
        let mut valued = Valued::new(&Layout::Raw, partitioner, p);
        let mut add = |row: Row, value: &str| cut.add(&row, value);
        for (seq, e) in events {
            valued.push(seq, e, &mut add).unwrap();
        }
        valued.drain(&mut add).unwrap();
        cut.finish()
    }

    #[test]
    fn segments_split_by_partition_value_and_size_with_exact_metrics() {
        // Sequences 10..14 alternate between two hours; one event has a key, one is binary.
        let events = vec![
            (10, ev(DAY0 + H + 7, Payload::Json("{}".into()), Some("k"))),
            (11, ev(DAY0 + 2 * H, Payload::Bytes(vec![1, 2]), None)),
            (12, ev(DAY0 + H + 1, Payload::Json("{\"a\":1}".into()), None)),
            (13, ev(DAY0 + 2 * H + 9, Payload::Json("[]".into()), None)),
        ];
        let segs = list(3, &default_partitioner(), events);
        assert_eq!(segs.len(), 2);
        let (a, b) = (&segs[0], &segs[1]);
        assert_eq!(a.partition_values, serde_json::json!([20_000, 1]));
        assert_eq!(b.partition_values, serde_json::json!([20_000, 2]));
        assert_eq!((a.spec_id, a.from_sequence, a.to_sequence, a.record_count), (0, 10, 13, 2));
        assert_eq!((b.from_sequence, b.to_sequence, b.record_count), (11, 14, 2));
        // `[20000,1]` in hex.
        assert_eq!(a.path, "/tables/t/hot/segments/3/10-13/0-5b32303030302c315d.parquet");
        assert_eq!(a.null_value_counts[&schema::FIELD_IDEMPOTENCY_KEY], 1);
        assert_eq!(a.null_value_counts[&schema::FIELD_PAYLOAD_BYTES], 2);
        assert_eq!(b.null_value_counts[&schema::FIELD_PAYLOAD], 1);
        assert_eq!(a.lower_bounds[&schema::FIELD_TIMESTAMP_MS], DAY0 + H + 1);
        assert_eq!(a.upper_bounds[&schema::FIELD_SEQUENCE], 12);
        assert_eq!(a.upper_bounds[&schema::FIELD_INGEST_TIME], (DAY0 + H + 12) * 1000);
        assert_eq!(a.lower_bounds[&schema::FIELD_EVENT_DATE], 20_000);
        assert_eq!(a.upper_bounds[&schema::FIELD_EVENT_HOUR], 1);
        assert_eq!(a.value_counts.len(), 10);

        // A full segment closes and the value goes on in a new one.
        let events =
            (0..MAX_SEGMENT_ROWS + 1).map(|s| (s, ev(DAY0, Payload::Json("1".into()), None)));
        let segs = list(0, &default_partitioner(), events.collect());
        let ranges: Vec<_> = segs.iter().map(|s| (s.from_sequence, s.to_sequence)).collect();
        assert_eq!(ranges, vec![(0, MAX_SEGMENT_ROWS), (MAX_SEGMENT_ROWS, MAX_SEGMENT_ROWS + 1)]);
    }

    #[test]
    fn a_daily_spec_cuts_one_segment_per_day_with_hour_bounds_across_it() {
        let spec = iceberg::spec::UnboundPartitionSpec::builder()
            .add_partition_field(schema::FIELD_EVENT_TIME, "day", iceberg::spec::Transform::Day)
            .unwrap()
            .build();
        let schema = schema::schema();
        let spec = spec.bind(schema.clone()).unwrap();
        let daily = Partitioner::new(&schema, std::sync::Arc::new(spec)).unwrap();
        let events = (0..6u64)
            .map(|s| (s, ev(DAY0 + (s as i64) * 5 * H, Payload::Json("1".into()), None)))
            .collect();
        let segs = list(0, &daily, events);
        let shape: Vec<_> = segs
            .iter()
            .map(|s| {
                let (lo, hi) = (
                    s.lower_bounds[&schema::FIELD_EVENT_HOUR],
                    s.upper_bounds[&schema::FIELD_EVENT_HOUR],
                );
                (s.partition_values.clone(), s.record_count, lo, hi)
            })
            .collect();
        // Hours 0, 5, 10, 15, 20 of day 20000; 1 of day 20001.
        assert_eq!(
            shape,
            vec![(serde_json::json!([20_000]), 5, 0, 20), (serde_json::json!([20_001]), 1, 1, 1)]
        );
    }

    #[test]
    fn a_segment_reads_back_exactly_its_rows_within_its_size_bound() {
        let id = SegmentId::parse("1", "5-9", "0-5b32303030302c315d.parquet").unwrap();
        assert_eq!(id.value, "[20000,1]");
        let partitioner = default_partitioner();
        let mut rows = Vec::new();
        let mut keep = |row: Row, value: &str| {
            if value == id.value {
                rows.push(row);
            }
        };
        let mut valued = Valued::new(&Layout::Raw, &partitioner, 1);
        for s in id.from..id.to {
            let hour = if s % 2 == 0 { 1 } else { 2 };
            let e = ev(DAY0 + hour * H + 100 - s as i64, Payload::Json(format!("{s}")), None);
            valued.push(s, e, &mut keep).unwrap();
        }
        valued.drain(&mut keep).unwrap();
        let rows = sort_rows(rows);
        let seqs: Vec<u64> = rows.iter().map(|r| r.1).collect();
        // Hour 1 holds the even sequences; in [5, 9) those are 6 and 8, sorted by time.
        assert_eq!(seqs, vec![8, 6]);
        let file = to_parquet(&layout::Layout::Raw, &rows).unwrap();
        assert!((file.len() as u64) <= size_bound(2, 2, None));
        let meta =
            parquet::file::serialized_reader::SerializedFileReader::new(bytes::Bytes::from(file))
                .map(|r| parquet::file::reader::FileReader::metadata(&r).clone())
                .unwrap();
        assert_eq!(meta.num_row_groups(), 1);
        // The only split offset the listing promises: the row group starts after "PAR1".
        assert_eq!(meta.row_group(0).column(0).data_page_offset(), 4);
    }

    #[test]
    fn the_size_bound_holds_for_incompressible_and_tiny_payloads() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut random = |n: usize| {
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect::<Vec<u8>>()
        };
        for (rows, len) in
            [(1u64, 0usize), (1, 100_000), (3_000, 300), (50_000, 1), (20_000, 2_000)]
        {
            let events: Vec<Row> = (0..rows)
                .map(|s| {
                    let p = Payload::Bytes(random(len));
                    (0, s, ev(DAY0 + s as i64, p, Some("key-with-some-length")))
                })
                .collect();
            let var: u64 = events.iter().map(|r| r.2.payload.len() as u64 + 20).sum();
            let size = to_parquet(&layout::Layout::Raw, &events).unwrap().len() as u64;
            assert!(size <= size_bound(rows, var, None), "{rows} rows of {len} bytes: {size}");
        }
    }

    #[test]
    fn watermarks_and_paths_parse_strictly() {
        assert_eq!(parse_watermarks("").unwrap(), BTreeMap::new());
        assert_eq!(parse_watermarks("0:180,1:200").unwrap(), BTreeMap::from([(0, 180), (1, 200)]));
        assert!(parse_watermarks("0:1,0:2").unwrap_err().contains("twice"));
        assert!(parse_watermarks("x").unwrap_err().contains("<partition>:<next sequence>"));
        assert!(parse_watermarks("0:-1").is_err());
        let id =
            SegmentId::parse("3", "10-13", "2-5b225c75303030305c22222c6e756c6c5d.parquet").unwrap();
        assert_eq!((id.spec_id, id.value.as_str()), (2, r#"["\u0000\"",null]"#));
        assert_eq!(
            id.path("t"),
            "/tables/t/hot/segments/3/10-13/2-5b225c75303030305c22222c6e756c6c5d.parquet"
        );
        for (p, r, f) in [
            ("3", "13-10", "1-5b5d.parquet"),
            ("3", "1-2", "1-5b5.parquet"),
            ("3", "1-2", "1-7b7d.parquet"),
            ("3", "1-2", "1-zz.parquet"),
            ("x", "1-2", "1-5b5d.parquet"),
            ("3", "1-2", "1-5b5d.csv"),
        ] {
            assert!(SegmentId::parse(p, r, f).is_err(), "{p}/{r}/{f}");
        }
    }
}
