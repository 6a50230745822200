//! Binary RocksDB key layout. Every key is fixed-width big-endian integers, optionally
//! followed by one variable-length tail that runs to the end of the key, so keys can never
//! be confused across tables or partitions (no separators to escape) and sort in
//! (table, partition, sequence) order — the order the flusher reads and deletes in.
//!
//! | column family | key | value |
//! |---|---|---|
//! | `events` | table_id u32 · partition u32 · first sequence u64 | [`super::run`] of [`super::record`]s |
//! | `meta` | `T` · table name | table_id u32 |
//! | `meta` | `H` · table_id u32 · partition u32 | next sequence u64 (high-water mark) |
//! | `meta` | `B` · table_id u32 | payload bytes accepted, u64 |
//! | `meta` | `W` · table_id u32 · partition u32 | flush watermark u64 (next sequence not in Iceberg) |
//! | `meta` | `F` · table_id u32 · partition u32 | deletion floor u64 (events below are gone) |
//! | `meta` | `I` · table name | location of the table's current Iceberg metadata file |
//! | `meta` | `C` · table_id u32 · index u32 | a typed table's inferred column not yet in its schema |
//! | `meta` | `R` · table_id u32 · partition u32 | replay cursor of a dead-letter table: rows below were replayed |
//! | `idem` | table_id u32 · idempotency key | partition u32 · sequence u64 · accepted_ms i64 |

pub type TableId = u32;

pub const CF_EVENTS: &str = "events";
pub const CF_META: &str = "meta";
pub const CF_IDEM: &str = "idem";

pub const TAG_TABLE: u8 = b'T';
pub const TAG_HWM: u8 = b'H';
pub const TAG_BYTES: u8 = b'B';
pub const TAG_WATERMARK: u8 = b'W';
pub const TAG_FLOOR: u8 = b'F';
const TAG_POINTER: u8 = b'I';
pub const TAG_COLUMN: u8 = b'C';
pub const TAG_REPLAYED: u8 = b'R';

pub fn event_key(table: TableId, partition: u32, sequence: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..4].copy_from_slice(&table.to_be_bytes());
    k[4..8].copy_from_slice(&partition.to_be_bytes());
    k[8..].copy_from_slice(&sequence.to_be_bytes());
    k
}

/// Splits an `events` key into (table, partition, sequence).
pub fn parse_event_key(key: &[u8]) -> Option<(TableId, u32, u64)> {
    let k: &[u8; 16] = key.try_into().ok()?;
    Some((
        u32::from_be_bytes(k[..4].try_into().unwrap()),
        u32::from_be_bytes(k[4..8].try_into().unwrap()),
        u64::from_be_bytes(k[8..].try_into().unwrap()),
    ))
}

/// `tag · name`: the shape of every per-table-name meta key.
fn named_key(tag: u8, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(tag);
    k.extend_from_slice(name.as_bytes());
    k
}

pub fn table_key(name: &str) -> Vec<u8> {
    named_key(TAG_TABLE, name)
}

pub fn table_prefix() -> [u8; 1] {
    [TAG_TABLE]
}

pub fn hwm_key(table: TableId, partition: u32) -> [u8; 9] {
    partition_key(TAG_HWM, table, partition)
}

/// `tag · table · partition`: the shape of every per-partition meta key.
pub fn partition_key(tag: u8, table: TableId, partition: u32) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = tag;
    k[1..5].copy_from_slice(&table.to_be_bytes());
    k[5..].copy_from_slice(&partition.to_be_bytes());
    k
}

/// Prefix of every `tag` key of one table.
pub fn partition_prefix(tag: u8, table: TableId) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[0] = tag;
    k[1..].copy_from_slice(&table.to_be_bytes());
    k
}

pub fn hwm_prefix(table: TableId) -> [u8; 5] {
    partition_prefix(TAG_HWM, table)
}

/// Splits a per-partition meta key into (table, partition).
pub fn parse_partition_key(key: &[u8]) -> Option<(TableId, u32)> {
    let k: &[u8; 9] = key.try_into().ok()?;
    Some((
        u32::from_be_bytes(k[1..5].try_into().unwrap()),
        u32::from_be_bytes(k[5..].try_into().unwrap()),
    ))
}

pub fn pointer_key(name: &str) -> Vec<u8> {
    named_key(TAG_POINTER, name)
}

pub fn pointer_prefix() -> [u8; 1] {
    [TAG_POINTER]
}

pub fn bytes_key(table: TableId) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[0] = TAG_BYTES;
    k[1..].copy_from_slice(&table.to_be_bytes());
    k
}

pub fn idem_key(table: TableId, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + key.len());
    k.extend_from_slice(&table.to_be_bytes());
    k.extend_from_slice(key.as_bytes());
    k
}

pub fn u64_value(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

pub fn parse_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

pub fn parse_u32(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_sort_by_table_partition_sequence() {
        let mut keys = [
            event_key(2, 0, 0),
            event_key(1, 1, 0),
            event_key(1, 0, 256),
            event_key(1, 0, 1),
            event_key(1, 0, u64::MAX),
        ];
        keys.sort();
        let parsed: Vec<_> = keys.iter().map(|k| parse_event_key(k).unwrap()).collect();
        assert_eq!(parsed, vec![(1, 0, 1), (1, 0, 256), (1, 0, u64::MAX), (1, 1, 0), (2, 0, 0)]);
    }

    #[test]
    fn hwm_keys_round_trip() {
        assert_eq!(parse_partition_key(&hwm_key(7, 9)), Some((7, 9)));
        assert!(hwm_key(7, 9).starts_with(&hwm_prefix(7)));
        assert_eq!(parse_partition_key(&bytes_key(7)), None);
        assert!(!partition_key(TAG_WATERMARK, 7, 9).starts_with(&hwm_prefix(7)));
    }
}
