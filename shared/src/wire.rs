//! The MessagePack protocol between edge and node (`POST /internal/v1/batches`).
//!
//! A batch carries one [`Group`] per producer request. The node writes each group in a
//! single RocksDB `WriteBatch`, so a group (a bulk request) is stored entirely or not at
//! all, and answers with one [`GroupResult`] per group, in order.
//!
//! Besides, an edge may wait for acknowledged events to be committed to Iceberg
//! (`POST /internal/v1/commit-wait`, JSON: [`CommitWait`]).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// MIME type of request and response bodies on the internal endpoint.
pub const MSGPACK_CONTENT_TYPE: &str = "application/msgpack";
/// Path of the internal ingest endpoint on the node.
pub const INGEST_PATH: &str = "/internal/v1/batches";

/// Path of the internal endpoint where an edge waits for acknowledged events to be in a
/// committed snapshot (a producer's `?wait=committed`). JSON bodies: [`CommitWait`] in,
/// [`CommitWaitAnswer`] out.
pub const COMMIT_WAIT_PATH: &str = "/internal/v1/commit-wait";
/// The longest wait a producer may ask for, in ms.
pub const MAX_COMMIT_WAIT_MS: u64 = 60_000;

/// Wait until every partition of `table` named in `watermarks` has a committed watermark
/// at least that high (one past the last sequence to wait for), for at most `timeout_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitWait {
    pub table: String,
    pub watermarks: BTreeMap<u32, u64>,
    pub timeout_ms: u64,
}

impl CommitWait {
    /// What a producer waits for after `acks`: one past the highest sequence per partition.
    pub fn after(table: &str, acks: &[Ack], timeout_ms: u64) -> Self {
        let mut watermarks = BTreeMap::new();
        for ack in acks {
            let next = watermarks.entry(ack.partition).or_insert(0);
            *next = (*next).max(ack.sequence + 1);
        }
        CommitWait { table: table.to_owned(), watermarks, timeout_ms }
    }
}

/// The table's committed state when the wait ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitWaitAnswer {
    /// Whether the committed watermarks reached the ones waited for.
    pub committed: bool,
    /// The current snapshot, which holds the events when `committed`.
    pub snapshot_id: Option<i64>,
    /// Its complete watermark map.
    pub watermarks: BTreeMap<u32, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestBatch {
    pub groups: Vec<Group>,
}

/// The events of one producer request: one table, written atomically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub table: String,
    pub events: Vec<WireEvent>,
}

/// Written as a MessagePack array `[partition, timestamp_ms, idempotency_key, payload]`
/// (see [`EventRef`]); read from that array or from a map of the named fields, what edges
/// wrote before.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WireEvent {
    pub partition: u32,
    /// Event time; `None` means "time of acceptance by the node".
    pub timestamp_ms: Option<i64>,
    pub idempotency_key: Option<String>,
    pub payload: Payload,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Payload {
    /// JSON text, exactly as the producer sent it.
    Json(String),
    /// Raw bytes (from `payload_base64`).
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
}

impl Payload {
    pub fn len(&self) -> usize {
        match self {
            Payload::Json(s) => s.len(),
            Payload::Bytes(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl WireEvent {
    /// Bytes this event accounts for in limits and in-flight budgets.
    pub fn weight(&self) -> usize {
        self.as_ref().weight()
    }

    /// The event as an [`EventRef`] borrowing from it.
    pub fn as_ref(&self) -> EventRef<'_> {
        EventRef {
            partition: self.partition,
            timestamp_ms: self.timestamp_ms,
            idempotency_key: self.idempotency_key.as_deref().map(Cow::Borrowed),
            payload: match &self.payload {
                Payload::Json(text) => PayloadRef::Json(text),
                Payload::Bytes(bytes) => PayloadRef::Bytes(Cow::Borrowed(bytes)),
            },
        }
    }
}

/// A [`WireEvent`] that borrows what it can from the request it was parsed from, so the
/// edge encodes it without copying its payload first. Encoded the same way as a
/// `WireEvent`: an array of its four fields in order, since field names would be a fifth
/// of a typical event's bytes and most of the node's work to decode it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRef<'a> {
    pub partition: u32,
    pub timestamp_ms: Option<i64>,
    pub idempotency_key: Option<Cow<'a, str>>,
    pub payload: PayloadRef<'a>,
}

/// A [`Payload`] that borrows its JSON text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum PayloadRef<'a> {
    Json(&'a str),
    Bytes(#[serde(with = "serde_bytes")] Cow<'a, [u8]>),
}

impl PayloadRef<'_> {
    pub fn len(&self) -> usize {
        match self {
            PayloadRef::Json(text) => text.len(),
            PayloadRef::Bytes(bytes) => bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Serialize for EventRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.partition, self.timestamp_ms, &self.idempotency_key, &self.payload)
            .serialize(serializer)
    }
}

impl Serialize for WireEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_ref().serialize(serializer)
    }
}

impl EventRef<'_> {
    /// Bytes this event accounts for in limits and in-flight budgets.
    pub fn weight(&self) -> usize {
        self.payload.len() + self.idempotency_key.as_ref().map_or(0, |k| k.len()) + 32
    }

    pub fn to_owned_event(&self) -> WireEvent {
        WireEvent {
            partition: self.partition,
            timestamp_ms: self.timestamp_ms,
            idempotency_key: self.idempotency_key.as_deref().map(str::to_owned),
            payload: match &self.payload {
                PayloadRef::Json(text) => Payload::Json((*text).to_owned()),
                PayloadRef::Bytes(bytes) => Payload::Bytes(bytes.to_vec()),
            },
        }
    }
}

/// One group already encoded as a batch carries it: the edge encodes each producer request
/// as it parses it, and a batch is these bytes one after another.
#[derive(Clone, PartialEq)]
pub struct EncodedGroup {
    pub table: String,
    /// Events in the group.
    pub events: usize,
    /// Sum of the events' [`EventRef::weight`].
    pub weight: usize,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for EncodedGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedGroup")
            .field("table", &self.table)
            .field("events", &self.events)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl EncodedGroup {
    /// Encodes a whole group at once.
    pub fn encode(group: &Group) -> Self {
        let mut encoder = GroupEncoder::new(&group.table, 0);
        for event in &group.events {
            encoder.push(&event.as_ref());
        }
        encoder.finish()
    }

    /// Size of the encoded group.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Builds an [`EncodedGroup`] one event at a time.
pub struct GroupEncoder {
    table: String,
    bytes: Vec<u8>,
    /// Where the event count goes once known.
    count_at: usize,
    events: usize,
    weight: usize,
}

impl GroupEncoder {
    /// Starts the group of `table`, with room for `capacity` bytes.
    pub fn new(table: &str, capacity: usize) -> Self {
        let mut bytes = Vec::with_capacity(capacity.max(64 + table.len()));
        // What `encode` writes for a `Group`: a map of its two named fields. The event
        // count is written last, in the 32-bit form whatever its size, so its place is
        // known before the events are.
        write(rmp::encode::write_map_len(&mut bytes, 2));
        write(rmp::encode::write_str(&mut bytes, "table"));
        write(rmp::encode::write_str(&mut bytes, table));
        write(rmp::encode::write_str(&mut bytes, "events"));
        let count_at = bytes.len();
        bytes.extend_from_slice(&[rmp::Marker::Array32.to_u8(), 0, 0, 0, 0]);
        GroupEncoder { table: table.to_owned(), bytes, count_at, events: 0, weight: 0 }
    }

    pub fn push(&mut self, event: &EventRef<'_>) {
        let mut serializer = rmp_serde::Serializer::new(&mut self.bytes).with_struct_map();
        event.serialize(&mut serializer).expect("in-memory msgpack encoding cannot fail");
        self.events += 1;
        self.weight += event.weight();
    }

    pub fn finish(mut self) -> EncodedGroup {
        let count = u32::try_from(self.events).expect("a group holds fewer than 2^32 events");
        self.bytes[self.count_at + 1..self.count_at + 5].copy_from_slice(&count.to_be_bytes());
        EncodedGroup {
            table: self.table,
            events: self.events,
            weight: self.weight,
            bytes: self.bytes,
        }
    }
}

fn write<T, E: std::fmt::Debug>(result: Result<T, E>) {
    result.expect("writing msgpack to memory cannot fail");
}

/// An [`IngestBatch`] of `groups`, encoded: it decodes as what [`encode`] writes for the
/// same groups. Each group's bytes are freed once copied.
pub fn encode_batch(groups: Vec<EncodedGroup>) -> Vec<u8> {
    let size = groups.iter().map(EncodedGroup::len).sum::<usize>() + 16;
    let mut bytes = Vec::with_capacity(size);
    let count = u32::try_from(groups.len()).expect("a batch holds fewer than 2^32 groups");
    write(rmp::encode::write_map_len(&mut bytes, 1));
    write(rmp::encode::write_str(&mut bytes, "groups"));
    write(rmp::encode::write_array_len(&mut bytes, count));
    for group in groups {
        bytes.extend_from_slice(&group.bytes);
    }
    bytes
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchResponse {
    pub groups: Vec<GroupResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GroupResult {
    /// Every event of the group is durable; one entry per event, in order.
    Ok(Vec<Ack>),
    /// Nothing of the group was stored.
    Err(GroupError),
}

/// Written as a MessagePack array `[partition, sequence, duplicate, dead_lettered]`: a bulk
/// answer holds one ack per event, and field names would be most of its bytes and of the
/// work of both ends. Read from that array or from a map of the named fields (what nodes
/// wrote before), as serde reads any struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Ack {
    pub partition: u32,
    pub sequence: u64,
    /// True when the idempotency key was seen within the window: nothing was written and
    /// `sequence` is the original one.
    pub duplicate: bool,
    /// True when the event did not fit its typed table and went to the table's dead-letter
    /// table (`zombi.on-error = dead_letter`); `sequence` is its place in the table.
    #[serde(default)]
    pub dead_lettered: bool,
}

impl Serialize for Ack {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.partition, self.sequence, self.duplicate, self.dead_lettered).serialize(serializer)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupError {
    pub code: GroupErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupErrorCode {
    /// The node is over its in-flight budget; retry later.
    Overloaded,
    /// The node is shutting down.
    Unavailable,
    /// The write failed inside the node.
    Internal,
    /// The table cannot take writes yet (its Iceberg table is not loaded and reconciled);
    /// retry later. The message is for the producer.
    NotReady,
    /// Writing would create a table beyond the node's table limit. The message is for the
    /// producer.
    TableLimit,
    /// An event of the group breaks a check that depends on the node (its clock); nothing
    /// of the group was stored. The message, naming the record, is for the producer.
    Invalid,
}

/// Encodes a wire value as MessagePack.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Named fields keep the format self-describing and tolerant of added optional fields.
    rmp_serde::to_vec_named(value).expect("in-memory msgpack encoding cannot fail")
}

pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_wait_covers_the_highest_sequence_of_each_partition() {
        let ack = |partition, sequence| Ack {
            partition,
            sequence,
            duplicate: false,
            dead_lettered: false,
        };
        let wait = CommitWait::after("t", &[ack(0, 4), ack(2, 9), ack(0, 7), ack(0, 5)], 100);
        assert_eq!(wait.watermarks, BTreeMap::from([(0, 8), (2, 10)]));
        assert_eq!((wait.table.as_str(), wait.timeout_ms), ("t", 100));
    }

    #[test]
    fn batch_round_trips() {
        let batch = IngestBatch {
            groups: vec![Group {
                table: "events".into(),
                events: vec![
                    WireEvent {
                        partition: 3,
                        timestamp_ms: Some(1_767_225_600_000),
                        idempotency_key: Some("k".into()),
                        payload: Payload::Json(r#"{"a":1}"#.into()),
                    },
                    WireEvent {
                        partition: 0,
                        timestamp_ms: None,
                        idempotency_key: None,
                        payload: Payload::Bytes(vec![0, 255, 7]),
                    },
                ],
            }],
        };
        let bytes = encode(&batch);
        assert_eq!(decode::<IngestBatch>(&bytes).unwrap(), batch);
    }

    #[test]
    fn acks_are_arrays_and_named_acks_are_read_too() {
        let ack = Ack { partition: 7, sequence: 1 << 40, duplicate: true, dead_lettered: false };
        let response = BatchResponse { groups: vec![GroupResult::Ok(vec![ack; 3])] };
        let bytes = encode(&response);
        assert_eq!(decode::<BatchResponse>(&bytes).unwrap(), response);
        // Each ack: a 4-element array of ints and bools, no field names.
        let one = encode(&ack);
        assert_eq!(one[0], 0x94, "{one:?}");
        assert_eq!(one.len(), 1 + 1 + 9 + 1 + 1);

        // What nodes wrote before: a map per ack, `dead_lettered` possibly absent.
        #[derive(Serialize)]
        struct NamedAck {
            partition: u32,
            sequence: u64,
            duplicate: bool,
        }
        let named = rmp_serde::to_vec_named(&vec![NamedAck {
            partition: 7,
            sequence: 1 << 40,
            duplicate: true,
        }])
        .unwrap();
        assert_eq!(decode::<Vec<Ack>>(&named).unwrap(), vec![ack]);
        // And an array without its last, defaulted, element.
        let short = rmp_serde::to_vec(&(7u32, 1u64 << 40, true)).unwrap();
        assert_eq!(decode::<Ack>(&short).unwrap(), ack);
    }

    #[test]
    fn groups_encoded_event_by_event_decode_as_the_batch() {
        let event = |partition, key: Option<&str>, payload| WireEvent {
            partition,
            timestamp_ms: (partition % 2 == 0).then_some(1_767_225_600_000),
            idempotency_key: key.map(str::to_owned),
            payload,
        };
        let groups = vec![
            Group {
                table: "events".into(),
                events: (0..20)
                    .map(|i| event(i, Some("k"), Payload::Json(format!(r#"{{"i":{i}}}"#))))
                    .collect(),
            },
            Group {
                table: "é".into(), events: vec![event(1, None, Payload::Bytes(vec![0, 255]))]
            },
            Group { table: "t".into(), events: vec![] },
        ];
        let batch = IngestBatch { groups };
        let encoded: Vec<EncodedGroup> = batch.groups.iter().map(EncodedGroup::encode).collect();
        assert_eq!(encoded.iter().map(|g| g.events).collect::<Vec<_>>(), [20, 1, 0]);
        let weights =
            batch.groups.iter().map(|g| g.events.iter().map(WireEvent::weight).sum::<usize>());
        assert!(encoded.iter().map(|g| g.weight).eq(weights));
        assert_eq!(decode::<IngestBatch>(&encode_batch(encoded)).unwrap(), batch);

        // An event encodes the same whether owned or borrowed.
        for event in &batch.groups[0].events[..2] {
            let borrowed = rmp_serde::to_vec_named(&event.as_ref()).expect("in-memory encoding");
            assert_eq!(borrowed, encode(event));
            assert_eq!(event.as_ref().to_owned_event(), *event);
        }
    }

    #[test]
    fn events_are_arrays_and_named_events_are_read_too() {
        let event = WireEvent {
            partition: 3,
            timestamp_ms: Some(1_767_225_600_000),
            idempotency_key: Some("k".into()),
            payload: Payload::Json(r#"{"a":1}"#.into()),
        };
        let bytes = encode(&event);
        assert_eq!(bytes[0], 0x94, "a 4-element array: {bytes:?}");
        assert!(!bytes.windows(9).any(|w| w == b"partition"), "no field names");
        assert_eq!(decode::<WireEvent>(&bytes).unwrap(), event);

        // What edges wrote before: a map of the named fields.
        #[derive(Serialize)]
        struct NamedEvent<'a> {
            partition: u32,
            timestamp_ms: Option<i64>,
            idempotency_key: Option<&'a str>,
            payload: &'a Payload,
        }
        let named = rmp_serde::to_vec_named(&NamedEvent {
            partition: 3,
            timestamp_ms: Some(1_767_225_600_000),
            idempotency_key: Some("k"),
            payload: &event.payload,
        })
        .unwrap();
        assert_eq!(decode::<WireEvent>(&named).unwrap(), event);
        assert!(named.len() > bytes.len() + 40, "{} against {}", named.len(), bytes.len());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode::<IngestBatch>(b"\xc1\xff not msgpack").is_err());
        assert!(decode::<IngestBatch>(&[]).is_err());
    }
}
