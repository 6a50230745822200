//! Success bodies of the producer API, built from the node's acks.

use std::collections::BTreeMap;

use serde::Serialize;
use zombi_shared::wire::Ack;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Accepted {
    Single(SingleAccepted),
    Bulk(BulkAccepted),
}

impl Accepted {
    /// Records how a wait for the commit (`?wait=committed`) ended.
    pub fn set_commit(&mut self, commit: CommitOutcome) {
        match self {
            Accepted::Single(s) => s.commit = Some(commit),
            Accepted::Bulk(b) => b.commit = Some(commit),
        }
    }

    /// How a wait for the commit ended; `None` when the producer did not wait.
    pub fn commit(&self) -> Option<&CommitOutcome> {
        match self {
            Accepted::Single(s) => s.commit.as_ref(),
            Accepted::Bulk(b) => b.commit.as_ref(),
        }
    }
}

/// Added to a reply when the producer waited for the commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitOutcome {
    /// Whether every event of the request is in a committed snapshot.
    pub committed: bool,
    /// That snapshot, when `committed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SingleAccepted {
    pub table: String,
    pub partition: u32,
    pub sequence: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// The event did not fit its typed table and went to its dead-letter table.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dead_lettered: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BulkAccepted {
    pub table: String,
    /// Events acknowledged, duplicates included.
    pub accepted: usize,
    pub duplicates: usize,
    /// Events that went to the table's dead-letter table (typed tables only).
    #[serde(skip_serializing_if = "is_zero")]
    pub dead_lettered: usize,
    /// Sorted by partition.
    pub partitions: Vec<PartitionRange>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionRange {
    pub partition: u32,
    pub first_sequence: u64,
    pub last_sequence: u64,
    pub count: usize,
}

impl SingleAccepted {
    pub fn new(table: String, ack: Ack) -> Self {
        SingleAccepted {
            table,
            partition: ack.partition,
            sequence: ack.sequence,
            duplicate: ack.duplicate,
            dead_lettered: ack.dead_lettered,
            commit: None,
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl BulkAccepted {
    pub fn new(table: String, acks: &[Ack]) -> Self {
        let mut ranges: BTreeMap<u32, PartitionRange> = BTreeMap::new();
        for ack in acks {
            ranges
                .entry(ack.partition)
                .and_modify(|r| {
                    // Duplicates carry their original, possibly older, sequence.
                    r.first_sequence = r.first_sequence.min(ack.sequence);
                    r.last_sequence = r.last_sequence.max(ack.sequence);
                    r.count += 1;
                })
                .or_insert(PartitionRange {
                    partition: ack.partition,
                    first_sequence: ack.sequence,
                    last_sequence: ack.sequence,
                    count: 1,
                });
        }
        BulkAccepted {
            table,
            accepted: acks.len(),
            duplicates: acks.iter().filter(|a| a.duplicate).count(),
            dead_lettered: acks.iter().filter(|a| a.dead_lettered).count(),
            partitions: ranges.into_values().collect(),
            commit: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(partition: u32, sequence: u64, duplicate: bool) -> Ack {
        Ack { partition, sequence, duplicate, dead_lettered: false }
    }

    #[test]
    fn single_reply_mentions_duplicates_only_when_true() {
        let json = serde_json::to_value(SingleAccepted::new("t".into(), ack(1, 7, false))).unwrap();
        assert_eq!(json, serde_json::json!({"table": "t", "partition": 1, "sequence": 7}));
        let json = serde_json::to_value(SingleAccepted::new("t".into(), ack(1, 7, true))).unwrap();
        assert_eq!(json["duplicate"], true);
    }

    #[test]
    fn a_commit_wait_adds_its_outcome() {
        let mut single = Accepted::Single(SingleAccepted::new("t".into(), ack(0, 3, false)));
        single.set_commit(CommitOutcome { committed: true, snapshot_id: Some(42) });
        let json = serde_json::to_value(&single).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"table": "t", "partition": 0, "sequence": 3, "committed": true, "snapshot_id": 42})
        );
        let mut bulk = Accepted::Bulk(BulkAccepted::new("t".into(), &[ack(0, 3, false)]));
        bulk.set_commit(CommitOutcome { committed: false, snapshot_id: None });
        let json = serde_json::to_value(&bulk).unwrap();
        assert_eq!(json["committed"], false);
        assert!(json.get("snapshot_id").is_none());
    }

    #[test]
    fn bulk_reply_has_sorted_ranges() {
        let acks = [ack(2, 10, false), ack(0, 5, false), ack(2, 11, false), ack(2, 3, true)];
        let json =
            serde_json::to_value(Accepted::Bulk(BulkAccepted::new("t".into(), &acks))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "table": "t", "accepted": 4, "duplicates": 1,
                "partitions": [
                    {"partition": 0, "first_sequence": 5, "last_sequence": 5, "count": 1},
                    {"partition": 2, "first_sequence": 3, "last_sequence": 11, "count": 3},
                ]
            })
        );
    }
}
