//! Runs: the records of consecutive sequences of one (table, partition), stored as one
//! value under the key of the first (see [`super::keys`]).
//!
//! `RUN u8 · count u32 · (length u32 · record)*`, all little-endian, each record as
//! [`super::record`] encodes it. A value whose first byte is not [`RUN`] is a single
//! record (a store written before runs holds only those), at its key's sequence.
//!
//! Why: RocksDB's costs per key — the memtable's skip-list insert, the key comparisons,
//! the per-entry work of a flush to a file and of an iterator — were a third of the node's
//! CPU under bulk load with one key per event (`docs/benchmarks.md`). A run pays them once
//! for up to [`RUN_BYTES`] of records. A read of one sequence decodes only the length
//! prefixes before it.

/// The first byte of a run (a single record starts with its version, 1).
const RUN: u8 = 2;
const HEADER: usize = 5;
/// A run is closed once its records reach this size, so that reading one sequence out of
/// it stays cheap.
pub const RUN_BYTES: usize = 64 << 10;

/// A run being written.
pub struct RunWriter {
    first: u64,
    count: u32,
    value: Vec<u8>,
}

impl RunWriter {
    /// An empty run whose first record will have sequence `first`.
    pub fn new(first: u64) -> Self {
        let mut value = Vec::with_capacity(HEADER + 1024);
        value.push(RUN);
        value.extend_from_slice(&0u32.to_le_bytes());
        RunWriter { first, count: 0, value }
    }

    /// The sequence the next record must have to join this run.
    pub fn next(&self) -> u64 {
        self.first + u64::from(self.count)
    }

    /// Whether the run should take no more records.
    pub fn is_full(&self) -> bool {
        self.value.len() >= RUN_BYTES || self.count == u32::MAX
    }

    /// Appends the record of sequence [`Self::next`], written by `encode`.
    pub fn push(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        let at = self.value.len();
        self.value.extend_from_slice(&[0; 4]);
        encode(&mut self.value);
        let len = (self.value.len() - at - 4) as u32;
        self.value[at..at + 4].copy_from_slice(&len.to_le_bytes());
        self.count += 1;
    }

    /// `(first sequence, count, value)`; `None` for a run that holds no record.
    pub fn finish(mut self) -> Option<(u64, u32, Vec<u8>)> {
        if self.count == 0 {
            return None;
        }
        self.value[1..HEADER].copy_from_slice(&self.count.to_le_bytes());
        Some((self.first, self.count, self.value))
    }
}

/// How many sequences a stored value holds (1 for a single record); `None` if it is
/// malformed.
pub fn count(value: &[u8]) -> Option<u64> {
    match value.first()? {
        &RUN => Some(u64::from(u32::from_le_bytes(value.get(1..HEADER)?.try_into().ok()?))),
        _ => Some(1),
    }
}

/// The records of a stored value, in sequence order from its key's.
pub fn records(value: &[u8]) -> Records<'_> {
    match value.first() {
        Some(&RUN) => Records { value, offset: HEADER, single: false },
        _ => Records { value, offset: 0, single: true },
    }
}

/// An iterator over the records of a value; an item is `None` where the value is
/// malformed (and nothing follows it).
pub struct Records<'a> {
    value: &'a [u8],
    /// Where the next record starts; past the end once done or malformed.
    offset: usize,
    /// A value that is one record (from before runs).
    single: bool,
}

impl<'a> Records<'a> {
    /// The records of `value` from `offset`, a position [`Self::offset`] gave for it.
    pub fn resume(value: &'a [u8], offset: usize) -> Self {
        Records { offset, ..records(value) }
    }

    /// Where the next record starts, for [`Self::resume`].
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Option<&'a [u8]>> {
        let rest = self.value.get(self.offset..).filter(|r| !r.is_empty())?;
        if self.single {
            self.offset = self.value.len();
            return Some(Some(rest));
        }
        let record = rest
            .split_at_checked(4)
            .and_then(|(len, r)| r.get(..u32::from_le_bytes(len.try_into().ok()?) as usize));
        match record {
            Some(record) => {
                self.offset += 4 + record.len();
                Some(Some(record))
            }
            None => {
                self.offset = usize::MAX;
                Some(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(first: u64, records: &[&[u8]]) -> (u64, u32, Vec<u8>) {
        let mut w = RunWriter::new(first);
        for r in records {
            assert_eq!(w.next(), first + (w.count as u64));
            w.push(|out| out.extend_from_slice(r));
        }
        w.finish().unwrap()
    }

    #[test]
    fn a_run_reads_back_its_records_in_order() {
        let (first, n, value) = run(7, &[b"\x01a", b"", b"\x01ccc"]);
        assert_eq!((first, n), (7, 3));
        assert_eq!(count(&value), Some(3));
        let read: Vec<_> = records(&value).map(Option::unwrap).collect();
        assert_eq!(read, [&b"\x01a"[..], b"", b"\x01ccc"]);
        let mut rs = records(&value);
        assert_eq!(rs.next(), Some(Some(&b"\x01a"[..])));
        let mut resumed = Records::resume(&value, rs.offset());
        assert_eq!(resumed.next(), Some(Some(&b""[..])));
        assert_eq!(resumed.next(), Some(Some(&b"\x01ccc"[..])));
        assert_eq!(resumed.next(), None);
        assert!(RunWriter::new(0).finish().is_none());
    }

    #[test]
    fn a_single_record_is_a_run_of_one() {
        let single = b"\x01single record";
        assert_eq!(count(single), Some(1));
        assert_eq!(records(single).collect::<Vec<_>>(), [Some(&single[..])]);
    }

    #[test]
    fn a_malformed_run_says_so_and_ends() {
        let (_, _, value) = run(0, &[b"abc", b"defg"]);
        let cut = &value[..value.len() - 1];
        assert_eq!(records(cut).collect::<Vec<_>>(), [Some(&b"abc"[..]), None]);
        assert_eq!(count(&[RUN, 1]), None);
    }

    #[test]
    fn a_run_is_full_at_its_size() {
        let mut w = RunWriter::new(0);
        while !w.is_full() {
            w.push(|out| out.extend_from_slice(&[1; 1000]));
        }
        assert!(w.value.len() >= RUN_BYTES && w.value.len() < RUN_BYTES + 1004);
    }
}
