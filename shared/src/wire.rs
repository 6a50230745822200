//! The MessagePack protocol between edge and node (`POST /internal/v1/batches`).
//!
//! A batch carries one [`Group`] per producer request. The node writes each group in a
//! single RocksDB `WriteBatch`, so a group (a bulk request) is stored entirely or not at
//! all, and answers with one [`GroupResult`] per group, in order.
//!
//! Besides, an edge may wait for acknowledged events to be committed to Iceberg
//! (`POST /internal/v1/commit-wait`, JSON: [`CommitWait`]).

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
    fn garbage_is_an_error() {
        assert!(decode::<IngestBatch>(b"\xc1\xff not msgpack").is_err());
        assert!(decode::<IngestBatch>(&[]).is_err());
    }
}
