//! The format of the log's objects. A segment and a checkpoint have the same shape:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `ZLOG` |
//! | 1 | format version, 1 |
//! | 1 | kind: 1 segment, 2 checkpoint, 3 claim (the empty segment a node takes the log with) |
//! | 16 | id of the writing process (fresh at every start) |
//! | 8 | number (big-endian): the segment's, or the first segment a checkpoint does not cover |
//! | 4 | record count |
//! | per record | length u32 · bytes |
//! | 4 | CRC-32 of everything before |
//!
//! A record is opaque here: the hot store's operations of one write (`hot/logged.rs`).
//! The writer's id makes two writers' objects differ even when their records are equal, so
//! a writer that finds its segment's name taken can tell its own earlier attempt (whose
//! answer was lost) from another node's segment by comparing bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};

const MAGIC: &[u8; 4] = b"ZLOG";
const VERSION: u8 = 1;
const HEADER: usize = 4 + 1 + 1 + 16 + 8 + 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Segment = 1,
    Checkpoint = 2,
    /// The empty segment a node takes the log with; never deleted (see `Log::truncate`).
    Claim = 3,
}

/// A decoded segment or checkpoint; its records share the object's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub kind: Kind,
    pub writer: u128,
    pub number: u64,
    pub records: Vec<Bytes>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("not a Zombi log object (bad magic)")]
    Magic,
    #[error("log object format version {0} is not supported (this node reads version 1)")]
    Version(u8),
    #[error("log object is truncated")]
    Truncated,
    #[error("log object checksum does not match its content")]
    Checksum,
    #[error("log object of unknown kind {0}")]
    Kind(u8),
}

pub fn encode<R: AsRef<[u8]>>(kind: Kind, writer: u128, number: u64, records: &[R]) -> Bytes {
    let len = HEADER + records.iter().map(|r| 4 + r.as_ref().len()).sum::<usize>() + 4;
    let mut out = BytesMut::with_capacity(len);
    out.put_slice(MAGIC);
    out.put_u8(VERSION);
    out.put_u8(kind as u8);
    out.put_u128(writer);
    out.put_u64(number);
    out.put_u32(records.len() as u32);
    for r in records {
        out.put_u32(r.as_ref().len() as u32);
        out.put_slice(r.as_ref());
    }
    let crc = crc32fast::hash(&out);
    out.put_u32(crc);
    out.freeze()
}

pub fn decode(bytes: Bytes) -> Result<Object, FormatError> {
    if bytes.len() < HEADER + 4 {
        return Err(if bytes.starts_with(MAGIC) || bytes.len() < 4 {
            FormatError::Truncated
        } else {
            FormatError::Magic
        });
    }
    if &bytes[..4] != MAGIC {
        return Err(FormatError::Magic);
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_be_bytes(crc.try_into().unwrap()) {
        return Err(FormatError::Checksum);
    }
    let mut buf = bytes.slice(4..bytes.len() - 4);
    let version = buf.get_u8();
    if version != VERSION {
        return Err(FormatError::Version(version));
    }
    let kind = match buf.get_u8() {
        1 => Kind::Segment,
        2 => Kind::Checkpoint,
        3 => Kind::Claim,
        k => return Err(FormatError::Kind(k)),
    };
    let writer = buf.get_u128();
    let number = buf.get_u64();
    let count = buf.get_u32() as usize;
    let mut records = Vec::with_capacity(count.min(buf.len() / 4));
    for _ in 0..count {
        if buf.remaining() < 4 {
            return Err(FormatError::Truncated);
        }
        let len = buf.get_u32() as usize;
        if buf.remaining() < len {
            return Err(FormatError::Truncated);
        }
        records.push(buf.split_to(len));
    }
    if buf.has_remaining() {
        return Err(FormatError::Truncated);
    }
    Ok(Object { kind, writer, number, records })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_round_trip_and_damage_is_detected() {
        let records = [b"one".to_vec(), Vec::new(), vec![7; 300]];
        let bytes = encode(Kind::Segment, 42, 9, &records);
        let object = decode(bytes.clone()).unwrap();
        assert_eq!((object.kind, object.writer, object.number), (Kind::Segment, 42, 9));
        assert_eq!(object.records.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), records);

        let empty = decode(encode::<Vec<u8>>(Kind::Checkpoint, 1, 0, &[])).unwrap();
        assert_eq!((empty.kind, empty.records.len()), (Kind::Checkpoint, 0));

        let mut flipped = bytes.to_vec();
        flipped[40] ^= 1;
        assert_eq!(decode(flipped.into()), Err(FormatError::Checksum));
        assert_eq!(decode(bytes.slice(..bytes.len() - 1)), Err(FormatError::Checksum));
        assert_eq!(decode(bytes.slice(..10)), Err(FormatError::Truncated));
        assert_eq!(
            decode(Bytes::from_static(b"PAR1 and more bytes than a header has")),
            Err(FormatError::Magic)
        );
    }

    #[test]
    fn two_writers_of_equal_records_write_different_objects() {
        let records = [b"same".to_vec()];
        assert_ne!(encode(Kind::Segment, 1, 5, &records), encode(Kind::Segment, 2, 5, &records));
    }
}
