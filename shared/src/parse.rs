//! Turning request bodies into wire events. Bulk requests are all-or-nothing: the first bad
//! record fails the request and is named by its 0-based index.

use std::cell::Cell;
use std::fmt;

use crate::envelope::{Envelope, EventError};
use crate::wire::{EventRef, GroupEncoder, WireEvent};
use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{}{message}", record_prefix(*record))]
    InvalidJson { record: Option<usize>, message: String },
    #[error("{}{message}", record_prefix(*record))]
    InvalidEvent { record: Option<usize>, message: String },
    #[error("{}{source}", record_prefix(*record))]
    Event { record: Option<usize>, source: EventError },
    #[error("a bulk request holds at most {limit} records")]
    TooManyRecords { limit: usize },
    #[error("a bulk request needs at least one record")]
    NoRecords,
}

impl ParseError {
    /// Size errors are 413, everything else 400.
    pub fn is_too_large(&self) -> bool {
        match self {
            ParseError::TooManyRecords { .. } => true,
            ParseError::Event { source, .. } => source.is_too_large(),
            _ => false,
        }
    }

    fn from_json(record: Option<usize>, e: &serde_json::Error) -> Self {
        let message = e.to_string();
        match e.classify() {
            // Well-formed JSON that is not a valid envelope (unknown field, wrong type).
            Category::Data => ParseError::InvalidEvent { record, message },
            Category::Syntax | Category::Eof | Category::Io => {
                ParseError::InvalidJson { record, message }
            }
        }
    }
}

fn record_prefix(record: Option<usize>) -> String {
    record.map(|i| format!("record {i}: ")).unwrap_or_default()
}

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    pub event: crate::envelope::EventLimits,
    pub max_records: usize,
}

/// Where parsed events go: the edge encodes them at once ([`GroupEncoder`]); tests and
/// tools collect them as owned events.
pub trait EventSink {
    fn push(&mut self, event: EventRef<'_>);
}

impl EventSink for GroupEncoder {
    fn push(&mut self, event: EventRef<'_>) {
        GroupEncoder::push(self, &event);
    }
}

impl EventSink for Vec<WireEvent> {
    fn push(&mut self, event: EventRef<'_>) {
        Vec::push(self, event.to_owned_event());
    }
}

/// One event from a single-event request; `header_key` is its `Idempotency-Key` header.
pub fn single(
    body: &[u8],
    header_key: Option<&str>,
    limits: ParseLimits,
) -> Result<WireEvent, ParseError> {
    let mut events = Vec::with_capacity(1);
    single_into(body, header_key, limits, &mut events)?;
    Ok(events.pop().expect("a parsed single event"))
}

/// [`single`], into `sink`.
pub fn single_into(
    body: &[u8],
    header_key: Option<&str>,
    limits: ParseLimits,
    sink: &mut impl EventSink,
) -> Result<(), ParseError> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| ParseError::from_json(None, &e))?;
    let event = envelope
        .check(header_key, &limits.event)
        .map_err(|source| ParseError::Event { record: None, source })?;
    sink.push(event);
    Ok(())
}

/// NDJSON: one envelope per non-empty line; record indexes count only non-empty lines.
pub fn bulk_ndjson(body: &[u8], limits: ParseLimits) -> Result<Vec<WireEvent>, ParseError> {
    let mut events = Vec::new();
    bulk_ndjson_into(body, limits, &mut events)?;
    Ok(events)
}

/// [`bulk_ndjson`], into `sink`; returns the number of records.
pub fn bulk_ndjson_into(
    body: &[u8],
    limits: ParseLimits,
    sink: &mut impl EventSink,
) -> Result<usize, ParseError> {
    let mut records = 0;
    let mut start = 0;
    while start < body.len() {
        let end = memchr::memchr(b'\n', &body[start..]).map_or(body.len(), |i| start + i);
        let line = body[start..end].trim_ascii();
        start = end + 1;
        if line.is_empty() {
            continue;
        }
        let record = records;
        if record == limits.max_records {
            return Err(ParseError::TooManyRecords { limit: limits.max_records });
        }
        let envelope: Envelope =
            serde_json::from_slice(line).map_err(|e| ParseError::from_json(Some(record), &e))?;
        let event = envelope
            .check(None, &limits.event)
            .map_err(|source| ParseError::Event { record: Some(record), source })?;
        sink.push(event);
        records += 1;
    }
    if records == 0 {
        return Err(ParseError::NoRecords);
    }
    Ok(records)
}

/// `{"records": [...]}`. Records are validated while the array is streamed, so the first bad
/// one is known by index and an oversized array stops at the record limit instead of being
/// materialised first.
pub fn bulk_json(body: &[u8], limits: ParseLimits) -> Result<Vec<WireEvent>, ParseError> {
    let mut events = Vec::new();
    bulk_json_into(body, limits, &mut events)?;
    Ok(events)
}

/// [`bulk_json`], into `sink`; returns the number of records.
pub fn bulk_json_into(
    body: &[u8],
    limits: ParseLimits,
    sink: &mut impl EventSink,
) -> Result<usize, ParseError> {
    let state = BulkState { limits, current: Cell::new(None), failure: Cell::new(None) };
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = de.deserialize_map(BulkVisitor { state: &state, sink }).and_then(|records| {
        de.end()?;
        Ok(records)
    });
    match parsed {
        Ok(0) => Err(ParseError::NoRecords),
        Ok(records) => Ok(records),
        // Our own checks stash their structured error; serde only carries a message.
        Err(e) => Err(state.failure.take().unwrap_or_else(|| {
            let record = state.current.get();
            ParseError::from_json(record, &e)
        })),
    }
}

struct BulkState {
    limits: ParseLimits,
    /// Index of the record being read while inside the array.
    current: Cell<Option<usize>>,
    failure: Cell<Option<ParseError>>,
}

impl BulkState {
    fn fail<E: de::Error>(&self, error: ParseError) -> E {
        let message = error.to_string();
        self.failure.set(Some(error));
        E::custom(message)
    }
}

struct BulkVisitor<'s, S> {
    state: &'s BulkState,
    sink: &'s mut S,
}

impl<'de, S: EventSink> Visitor<'de> for BulkVisitor<'_, S> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"an object {"records": [...]}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut records = None;
        // Owned: a key written with escapes cannot be borrowed from the input.
        while let Some(key) = map.next_key::<String>()? {
            if key != "records" {
                return Err(de::Error::unknown_field(&key, &["records"]));
            }
            if records.is_some() {
                return Err(de::Error::duplicate_field("records"));
            }
            let seed = RecordsSeed { state: self.state, sink: &mut *self.sink };
            records = Some(map.next_value_seed(seed)?);
        }
        records.ok_or_else(|| de::Error::missing_field("records"))
    }
}

struct RecordsSeed<'s, S> {
    state: &'s BulkState,
    sink: &'s mut S,
}

impl<'de, S: EventSink> DeserializeSeed<'de> for RecordsSeed<'_, S> {
    type Value = usize;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, S: EventSink> Visitor<'de> for RecordsSeed<'_, S> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of event envelopes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let limits = self.state.limits;
        let mut records = 0;
        loop {
            let record = records;
            self.state.current.set(Some(record));
            let Some(envelope) = seq.next_element::<Envelope<'de>>()? else { break };
            if record == limits.max_records {
                return Err(self
                    .state
                    .fail(ParseError::TooManyRecords { limit: limits.max_records }));
            }
            let event = envelope.check(None, &limits.event).map_err(|source| {
                self.state.fail(ParseError::Event { record: Some(record), source })
            })?;
            self.sink.push(event);
            records += 1;
        }
        self.state.current.set(None);
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Payload;

    const LIMITS: ParseLimits =
        ParseLimits { event: crate::envelope::EventLimits::new(100, 1023), max_records: 3 };

    fn json_payload(event: &WireEvent) -> &str {
        match &event.payload {
            Payload::Json(s) => s,
            Payload::Bytes(_) => panic!("expected a JSON payload"),
        }
    }

    #[test]
    fn single_event() {
        let ev = single(br#"{"payload":{"a":1},"partition":2}"#, Some("k1"), LIMITS).unwrap();
        assert_eq!(json_payload(&ev), r#"{"a":1}"#);
        assert_eq!(ev.partition, 2);
        assert_eq!(ev.idempotency_key.as_deref(), Some("k1"));

        let err = single(br#"{"payload":1"#, None, LIMITS).unwrap_err();
        assert!(matches!(err, ParseError::InvalidJson { record: None, .. }), "{err}");
        let err = single(br#"{"payload":1,"extra":2}"#, None, LIMITS).unwrap_err();
        assert!(matches!(err, ParseError::InvalidEvent { record: None, .. }), "{err}");
        let err = single(br#"{"partition":1}"#, None, LIMITS).unwrap_err();
        assert!(err.to_string().starts_with("event needs exactly one of"), "{err}");
        let big = format!(r#"{{"payload":"{}"}}"#, "x".repeat(200));
        assert!(single(big.as_bytes(), None, LIMITS).unwrap_err().is_too_large());
    }

    #[test]
    fn events_encoded_while_parsed_are_the_events_parsed() {
        let body = br#"{"records": [{"payload": {"a":"\u00e9"}, "idempotency_key": "k\n"},
            {"payload_base64": "AP8=", "partition": 4, "timestamp_ms": 9}]}"#;
        let mut encoder = GroupEncoder::new("t", 0);
        assert_eq!(bulk_json_into(body, LIMITS, &mut encoder).unwrap(), 2);
        let batch = crate::wire::encode_batch(vec![encoder.finish()]);
        let decoded: crate::wire::IngestBatch = crate::wire::decode(&batch).unwrap();
        assert_eq!(decoded.groups[0].events, bulk_json(body, LIMITS).unwrap());
        assert_eq!(decoded.groups[0].events[0].idempotency_key.as_deref(), Some("k\n"));
        assert_eq!(json_payload(&decoded.groups[0].events[0]), r#"{"a":"\u00e9"}"#);
    }

    #[test]
    fn bulk_json_parses_records_in_order() {
        let body =
            br#" {"records": [{"payload": 1}, {"payload_base64": "AP8=", "partition": 4}]} "#;
        let events = bulk_json(body, LIMITS).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(json_payload(&events[0]), "1");
        assert_eq!(events[1].payload, Payload::Bytes(vec![0, 255]));
        assert_eq!(events[1].partition, 4);
        // Keys may be written with escapes.
        assert_eq!(bulk_json(br#"{"rec\u006frds": [{"payload": 1}]}"#, LIMITS).unwrap().len(), 1);
    }

    #[test]
    fn bulk_json_names_the_first_bad_record() {
        let body =
            br#"{"records": [{"payload": 1}, {"payload": 2}, {"partition": 1}, {"nope": 1}]}"#;
        let err = bulk_json(body, ParseLimits { max_records: 10, ..LIMITS }).unwrap_err();
        assert!(err.to_string().starts_with("record 2: event needs exactly one of"), "{err}");
        assert!(!err.is_too_large());

        let body = br#"{"records": [{"payload": 1}, {"payload": 2, "bogus": 1}]}"#;
        let err = bulk_json(body, LIMITS).unwrap_err();
        assert!(matches!(err, ParseError::InvalidEvent { record: Some(1), .. }), "{err}");
        assert!(err.to_string().starts_with("record 1: unknown field `bogus`"), "{err}");

        let body = br#"{"records": [{"payload": 1}, {"payload": ]}"#;
        let err = bulk_json(body, LIMITS).unwrap_err();
        assert!(matches!(err, ParseError::InvalidJson { record: Some(1), .. }), "{err}");

        let big =
            format!(r#"{{"records": [{{"payload": 1}}, {{"payload":"{}"}}]}}"#, "x".repeat(200));
        let err = bulk_json(big.as_bytes(), LIMITS).unwrap_err();
        assert!(err.is_too_large());
        assert!(err.to_string().starts_with("record 1: "), "{err}");
    }

    #[test]
    fn bulk_json_shape_is_strict() {
        for bad in [
            &br#"[{"payload": 1}]"#[..],
            br#"{"records": [{"payload": 1}], "extra": 1}"#,
            br#"{"records": [{"payload": 1}], "records": []}"#,
            br#"{"recs": []}"#,
            br#"{}"#,
            br#"{"records": {"payload": 1}}"#,
            br#"{"records": [{"payload": 1}]} trailing"#,
            b"",
        ] {
            let err = bulk_json(bad, LIMITS).unwrap_err();
            assert!(!err.is_too_large(), "{err}");
        }
        assert_eq!(bulk_json(br#"{"records": []}"#, LIMITS).unwrap_err(), ParseError::NoRecords);
    }

    #[test]
    fn bulk_json_stops_at_the_record_limit() {
        let body =
            br#"{"records": [{"payload": 1}, {"payload": 2}, {"payload": 3}, {"payload": 4}]}"#;
        let err = bulk_json(body, LIMITS).unwrap_err();
        assert_eq!(err, ParseError::TooManyRecords { limit: 3 });
        assert!(err.is_too_large());
    }

    #[test]
    fn ndjson_skips_blank_lines_and_names_bad_records() {
        let body = b"\n{\"payload\": 1}\r\n\n  \n{\"payload\": 2, \"partition\": 1}\n";
        let events = bulk_ndjson(body, LIMITS).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].partition, 1);

        let body = b"{\"payload\": 1}\n\n{\"payload\": 2}\n{\"payload\": \n";
        let err = bulk_ndjson(body, LIMITS).unwrap_err();
        assert!(matches!(err, ParseError::InvalidJson { record: Some(2), .. }), "{err}");
        assert!(err.to_string().starts_with("record 2: "), "{err}");

        let body = b"{\"payload\": 1}\n{\"payload\": 1, \"timestamp_ms\": -1}\n";
        let err = bulk_ndjson(body, LIMITS).unwrap_err();
        assert!(err.to_string().starts_with("record 1: timestamp_ms -1"), "{err}");

        assert_eq!(bulk_ndjson(b"\n \n", LIMITS).unwrap_err(), ParseError::NoRecords);
        // The last line needs no newline.
        assert_eq!(bulk_ndjson(b"{\"payload\": 1}\n {\"payload\": 2} ", LIMITS).unwrap().len(), 2);
        let body = b"{\"payload\":1}\n{\"payload\":1}\n{\"payload\":1}\n{\"payload\":1}\n";
        assert_eq!(bulk_ndjson(body, LIMITS).unwrap_err(), ParseError::TooManyRecords { limit: 3 });
    }
}
