//! Reading a file of events: decompression (gzip and zstd are detected by their magic
//! bytes), the format (NDJSON, a JSON array, CSV with a header row), and each record turned
//! into an envelope with an idempotency key derived from the input and the record's place
//! in it.

use std::io::{BufRead, BufReader, Cursor, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// How much of the (decompressed) input names the load when `--load-id` is not given.
const HEAD_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON value per line.
    Ndjson,
    /// One JSON array of values.
    Json,
    /// A header row naming the fields, then one event per row.
    Csv,
}

/// How a record becomes an envelope.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Records are envelopes already (`payload`, `partition`, `timestamp_ms`, …).
    pub envelopes: bool,
    /// The top-level field of a record that holds its event time: ms since the epoch, or
    /// an RFC 3339 string.
    pub timestamp_field: Option<String>,
    pub partition: Option<u32>,
    /// CSV values stay strings instead of becoming numbers, booleans and nulls.
    pub csv_strings: bool,
}

/// Counts the bytes read from the raw input, for progress against its size.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

struct Counting<R> {
    inner: R,
    counter: Counter,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An opened input: its decompressed bytes, and the id that names this load.
pub struct Input {
    pub reader: Box<dyn BufRead + Send>,
    /// Hex digest of the first MiB of the decompressed input.
    pub head_digest: String,
    /// The first bytes, for format sniffing.
    first_byte: Option<u8>,
}

/// Opens `raw`, decompressing it if it starts like gzip or zstd.
pub fn open(raw: Box<dyn Read + Send>, counter: Counter) -> std::io::Result<Input> {
    let mut raw = BufReader::with_capacity(256 << 10, Counting { inner: raw, counter });
    let magic = raw.fill_buf()?.to_vec();
    let decoded: Box<dyn Read + Send> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(raw))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::Decoder::with_buffer(raw)?)
    } else {
        Box::new(raw)
    };
    let mut head = Vec::with_capacity(64 << 10);
    let mut decoded = decoded;
    (&mut decoded).take(HEAD_BYTES as u64).read_to_end(&mut head)?;
    let head_digest = hex(&Sha256::digest(&head)[..8]);
    let first_byte = head.iter().copied().find(|b| !b.is_ascii_whitespace());
    let reader = BufReader::with_capacity(256 << 10, Cursor::new(head).chain(decoded));
    Ok(Input { reader: Box::new(reader), head_digest, first_byte })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The format: as given, else by the file name, else by the first character.
pub fn detect(given: Option<Format>, name: &str, input: &Input) -> Result<Format, String> {
    if let Some(f) = given {
        return Ok(f);
    }
    let base = name.trim_end_matches(".gz").trim_end_matches(".zst").trim_end_matches(".zstd");
    if base.ends_with(".csv") {
        return Ok(Format::Csv);
    }
    match input.first_byte {
        Some(b'[') => Ok(Format::Json),
        Some(b'{') => Ok(Format::Ndjson),
        None => Ok(Format::Ndjson),
        Some(_) if base.ends_with(".ndjson") || base.ends_with(".jsonl") => Ok(Format::Ndjson),
        Some(_) => Err(format!(
            "cannot tell the format of {name}: it starts with neither '[' nor '{{'; say --format ndjson, json or csv"
        )),
    }
}

/// Where a record is in the input, for messages: a line, an array element, a CSV row.
#[derive(Debug, Clone, Copy)]
pub struct Place {
    pub format: Format,
    /// 1-based line (NDJSON), 0-based element (JSON), 1-based data row after the header (CSV).
    pub at: u64,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.format {
            Format::Ndjson => write!(f, "line {}", self.at),
            Format::Json => write!(f, "array element {}", self.at),
            Format::Csv => write!(f, "CSV row {}", self.at),
        }
    }
}

/// Calls `each` with every record of `input` as JSON text and its place, in order; stops
/// at the first record that is not valid, or when `each` fails.
pub fn for_each_record(
    format: Format,
    input: Box<dyn BufRead + Send>,
    shape: &Shape,
    mut each: impl FnMut(&str, Place) -> Result<(), String>,
) -> Result<(), String> {
    match format {
        Format::Ndjson => {
            for (i, line) in input.lines().enumerate() {
                let place = Place { format, at: i as u64 + 1 };
                let line = line.map_err(|e| format!("{place}: cannot read the input: {e}"))?;
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                serde_json::from_str::<&RawValue>(line)
                    .map_err(|e| format!("{place}: not valid JSON: {e}"))?;
                each(line, place)?;
            }
            Ok(())
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_reader(input);
            let mut failed = None;
            let visitor = Elements { each: &mut each, failed: &mut failed };
            let result = serde::Deserializer::deserialize_seq(&mut de, visitor);
            if let Some(e) = failed {
                return Err(e);
            }
            result.map_err(|e| format!("the input is not one JSON array of records: {e}"))?;
            de.end().map_err(|e| format!("text after the JSON array: {e}"))
        }
        Format::Csv => {
            let mut csv = csv::ReaderBuilder::new().flexible(false).from_reader(input);
            let headers = csv.headers().map_err(|e| format!("CSV header row: {e}"))?.clone();
            for (i, row) in csv.records().enumerate() {
                let place = Place { format, at: i as u64 + 1 };
                let row = row.map_err(|e| format!("{place}: {e}"))?;
                // Built as text so that the fields keep the header's order.
                let mut object = String::from("{");
                for (i, (name, value)) in headers.iter().zip(row.iter()).enumerate() {
                    if i > 0 {
                        object.push(',');
                    }
                    object.push_str(&Value::String(name.to_owned()).to_string());
                    object.push(':');
                    object.push_str(&csv_value(value, shape.csv_strings).to_string());
                }
                object.push('}');
                each(&object, place)?;
            }
            Ok(())
        }
    }
}

/// A CSV field as JSON: a field written as a JSON number (no leading zeros or `+`, so
/// `007` and ` 4` stay strings), `true`, `false`, or empty (null) is typed unless `strings`.
fn csv_value(field: &str, strings: bool) -> Value {
    if strings {
        return Value::String(field.to_owned());
    }
    match field {
        "" => Value::Null,
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ if field.trim() != field => Value::String(field.to_owned()),
        _ => match serde_json::from_str::<Value>(field) {
            Ok(n @ Value::Number(_)) => n,
            _ => Value::String(field.to_owned()),
        },
    }
}

/// Streams the elements of a JSON array to `each` without holding the array.
struct Elements<'a, F> {
    each: &'a mut F,
    failed: &'a mut Option<String>,
}

impl<'de, F: FnMut(&str, Place) -> Result<(), String>> serde::de::Visitor<'de> for Elements<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            let place = Place { format: Format::Json, at: i };
            if let Err(e) = (self.each)(raw.get(), place) {
                *self.failed = Some(e);
                return Err(serde::de::Error::custom("stopped"));
            }
            i += 1;
        }
        Ok(())
    }
}

/// The envelope of record number `index` (0-based, over the whole input) as one NDJSON
/// line. Its idempotency key is `zl-<load id>-<index>` unless the record is an envelope
/// with its own key.
pub fn envelope(record: &str, index: u64, load_id: &str, shape: &Shape) -> Result<String, String> {
    let key = format!("zl-{load_id}-{index}");
    if shape.envelopes {
        let mut object: Map<String, Value> = match serde_json::from_str(record) {
            Ok(Value::Object(o)) => o,
            _ => return Err("with --envelopes, every record must be a JSON object".into()),
        };
        object.entry("idempotency_key").or_insert(Value::String(key));
        if let Some(p) = shape.partition {
            object.entry("partition").or_insert(Value::from(p));
        }
        return Ok(Value::Object(object).to_string());
    }
    let mut out = String::with_capacity(record.len() + 96);
    out.push_str("{\"payload\":");
    out.push_str(record);
    out.push_str(",\"idempotency_key\":");
    out.push_str(&Value::String(key).to_string());
    if let Some(p) = shape.partition {
        out.push_str(&format!(",\"partition\":{p}"));
    }
    if let Some(field) = &shape.timestamp_field {
        let value: Value = serde_json::from_str(record).map_err(|e| e.to_string())?;
        let ts =
            value.get(field).ok_or_else(|| format!("no field {field:?} for the event time"))?;
        out.push_str(&format!(",\"timestamp_ms\":{}", timestamp_ms(ts, field)?));
    }
    out.push('}');
    Ok(out)
}

/// An event time: whole ms since the epoch, or an RFC 3339 string.
fn timestamp_ms(value: &Value, field: &str) -> Result<i64, String> {
    match value {
        Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64().unwrap()),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|e| format!("field {field:?} is not an RFC 3339 time ({s:?}: {e})")),
        other => Err(format!(
            "field {field:?} must be ms since the epoch or an RFC 3339 string, not {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(format: Format, text: &str, shape: &Shape) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        let input = Box::new(Cursor::new(text.as_bytes().to_vec()));
        for_each_record(format, input, shape, |r, _| {
            out.push(r.to_owned());
            Ok(())
        })?;
        Ok(out)
    }

    fn plain() -> Shape {
        Shape { envelopes: false, timestamp_field: None, partition: None, csv_strings: false }
    }

    #[test]
    fn ndjson_json_and_csv_give_the_same_records() {
        let ndjson = "{\"a\":1,\"b\":\"x\"}\n\n{\"a\":2,\"b\":null}\r\n";
        let json = "[{\"a\":1,\"b\":\"x\"}, {\"a\":2,\"b\":null}]";
        let csv = "a,b\n1,x\n2,\n";
        let want = vec![r#"{"a":1,"b":"x"}"#.to_owned(), r#"{"a":2,"b":null}"#.to_owned()];
        assert_eq!(records(Format::Ndjson, ndjson, &plain()).unwrap(), want);
        let json: Vec<String> = records(Format::Json, json, &plain())
            .unwrap()
            .iter()
            .map(|r| serde_json::from_str::<Value>(r).unwrap().to_string())
            .collect();
        assert_eq!(json, want);
        assert_eq!(records(Format::Csv, csv, &plain()).unwrap(), want);
    }

    #[test]
    fn csv_values_are_typed_unless_asked_not_to() {
        let csv = "i,f,t,s,e,z,y\n-3,2.5e3,true,007,,+1, 4\n";
        let typed = records(Format::Csv, csv, &plain()).unwrap();
        assert_eq!(typed, [r#"{"i":-3,"f":2500.0,"t":true,"s":"007","e":null,"z":"+1","y":" 4"}"#]);
        let strings = Shape { csv_strings: true, ..plain() };
        let kept = records(Format::Csv, csv, &strings).unwrap();
        assert_eq!(
            kept,
            [r#"{"i":"-3","f":"2.5e3","t":"true","s":"007","e":"","z":"+1","y":" 4"}"#]
        );
    }

    #[test]
    fn bad_records_are_named_by_their_place() {
        let err = records(Format::Ndjson, "{\"a\":1}\n{oops\n", &plain()).unwrap_err();
        assert!(err.starts_with("line 2: not valid JSON"), "{err}");
        let err = records(Format::Csv, "a,b\n1,2\n3\n", &plain()).unwrap_err();
        assert!(err.starts_with("CSV row 2"), "{err}");
        let err = records(Format::Json, "{\"a\":1}", &plain()).unwrap_err();
        assert!(err.contains("not one JSON array"), "{err}");
    }

    #[test]
    fn envelopes_carry_a_key_from_the_load_and_the_position() {
        let e = envelope(
            r#"{"ts":"2026-01-01T00:00:00Z","n":1}"#,
            41,
            "ab12",
            &Shape { timestamp_field: Some("ts".into()), partition: Some(3), ..plain() },
        )
        .unwrap();
        let v: Value = serde_json::from_str(&e).unwrap();
        assert_eq!(v["idempotency_key"], "zl-ab12-41");
        assert_eq!(v["partition"], 3);
        assert_eq!(v["timestamp_ms"], 1_767_225_600_000i64);
        assert_eq!(v["payload"]["n"], 1);
        // An envelope keeps its own key.
        let shape = Shape { envelopes: true, ..plain() };
        let e = envelope(r#"{"payload":1,"idempotency_key":"mine"}"#, 0, "ab12", &shape).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&e).unwrap()["idempotency_key"], "mine");
        assert!(envelope("[1]", 0, "ab12", &shape).is_err());
        let no_time = Shape { timestamp_field: Some("ts".into()), ..plain() };
        assert!(envelope(r#"{"n":1}"#, 0, "x", &no_time).unwrap_err().contains("\"ts\""));
    }

    #[test]
    fn compressed_inputs_are_detected_and_named_by_their_content() {
        let text = b"{\"a\":1}\n".repeat(10);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &text).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&text[..], 1).unwrap();
        let mut digests = Vec::new();
        for raw in [text.clone(), gz, zst] {
            let mut input = open(Box::new(Cursor::new(raw)), Counter::default()).unwrap();
            let mut out = Vec::new();
            input.reader.read_to_end(&mut out).unwrap();
            assert_eq!(out, text);
            assert_eq!(detect(None, "-", &input).unwrap(), Format::Ndjson);
            digests.push(input.head_digest);
        }
        assert!(digests.iter().all(|d| *d == digests[0] && d.len() == 16), "{digests:?}");
    }
}
