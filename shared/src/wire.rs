//! The MessagePack protocol between edge and node (`POST /internal/v1/batches`).
//!
//! A batch carries one [`Group`] per producer request. The node writes each group in a
//! single RocksDB `WriteBatch`, so a group (a bulk request) is stored entirely or not at
//! all, and answers with one [`GroupResult`] per group, in order.

use serde::{Deserialize, Serialize};

/// MIME type of request and response bodies on the internal endpoint.
pub const MSGPACK_CONTENT_TYPE: &str = "application/msgpack";
/// Path of the internal ingest endpoint on the node.
pub const INGEST_PATH: &str = "/internal/v1/batches";

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        self.payload.len() + self.idempotency_key.as_ref().map_or(0, String::len) + 32
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    fn garbage_is_an_error() {
        assert!(decode::<IngestBatch>(b"\xc1\xff not msgpack").is_err());
        assert!(decode::<IngestBatch>(&[]).is_err());
    }
}
