//! Idempotency records: the first write of a key within the window, so a retry is answered
//! with the original sequence and writes nothing.

use super::keys::{self, CF_IDEM, TableId};
use super::{HotStore, Result, corrupt};

/// What an idempotency record remembers about the first write of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdemRecord {
    pub partition: u32,
    pub sequence: u64,
    pub accepted_ms: i64,
}

impl IdemRecord {
    pub(super) fn encode(&self) -> [u8; 20] {
        let mut v = [0u8; 20];
        v[..4].copy_from_slice(&self.partition.to_be_bytes());
        v[4..12].copy_from_slice(&self.sequence.to_be_bytes());
        v[12..].copy_from_slice(&self.accepted_ms.to_be_bytes());
        v
    }

    pub(super) fn decode(v: &[u8]) -> Option<Self> {
        let v: &[u8; 20] = v.try_into().ok()?;
        Some(IdemRecord {
            partition: u32::from_be_bytes(v[..4].try_into().unwrap()),
            sequence: u64::from_be_bytes(v[4..12].try_into().unwrap()),
            accepted_ms: i64::from_be_bytes(v[12..].try_into().unwrap()),
        })
    }
}

impl HotStore {
    /// The record of `key` if it was first written within the idempotency window.
    pub fn idempotency_lookup(
        &self,
        table: TableId,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<IdemRecord>> {
        let Some(v) = self.db.get_pinned_cf(&self.cf(CF_IDEM), keys::idem_key(table, key))? else {
            return Ok(None);
        };
        let record =
            IdemRecord::decode(&v).ok_or_else(|| corrupt(CF_IDEM, "idempotency record"))?;
        Ok((record.accepted_ms.saturating_add(self.idempotency_window_ms) >= now_ms)
            .then_some(record))
    }
}
