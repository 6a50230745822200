//! Encoding of one stored event (the value in the `events` column family).
//!
//! `version u8 · flags u8 · timestamp_ms i64 · ingest_ms i64 · [key_len u16 · key] ·
//! [source_sequence u64 · error_len u16 · error] · payload`
//! where flags bit 0 = has idempotency key, bit 1 = payload is raw bytes (else JSON text),
//! bit 2 = diverted (a typed table's event that went to its dead-letter table: the record
//! keeps its sequence, and holds no payload), bit 3 = dead letter (a row of a dead-letter
//! table, with the source sequence and the error; all little-endian).

use zombi_shared::wire::Payload;

const VERSION: u8 = 1;
const HAS_KEY: u8 = 1;
const BYTES_PAYLOAD: u8 = 2;
const DIVERTED: u8 = 4;
const DEAD_LETTER: u8 = 8;
const HEADER: usize = 18;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub timestamp_ms: i64,
    pub ingest_ms: i64,
    pub idempotency_key: Option<String>,
    pub payload: Payload,
    pub role: Role,
}

/// What a stored record is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Role {
    /// An event: a row of its table.
    #[default]
    Event,
    /// The place of an event that went to the table's dead-letter table: it holds the
    /// event's sequence, so sequences stay dense, and is no row.
    Diverted,
    /// A row of a dead-letter table: why the event did not fit, and the sequence it has in
    /// its source table (same partition).
    DeadLetter { source_sequence: u64, error: String },
}

impl StoredEvent {
    /// Whether the record is a row of its table (a diverted event is not).
    pub fn is_row(&self) -> bool {
        self.role != Role::Diverted
    }
}

/// Longest error text a dead-letter record keeps (longer ones are cut at a char boundary).
const MAX_ERROR_LEN: usize = 4096;

#[cfg(test)]
pub fn encode(
    timestamp_ms: i64,
    ingest_ms: i64,
    idempotency_key: Option<&str>,
    payload: &Payload,
    role: &Role,
) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, timestamp_ms, ingest_ms, idempotency_key, payload, role);
    out
}

/// Appends the record to `out`.
pub fn encode_into(
    out: &mut Vec<u8>,
    timestamp_ms: i64,
    ingest_ms: i64,
    idempotency_key: Option<&str>,
    payload: &Payload,
    role: &Role,
) {
    let key_len = idempotency_key.map_or(0, |k| 2 + k.len());
    out.reserve(HEADER + key_len + payload.len());
    let mut flags = 0;
    if idempotency_key.is_some() {
        flags |= HAS_KEY;
    }
    if matches!(payload, Payload::Bytes(_)) {
        flags |= BYTES_PAYLOAD;
    }
    match role {
        Role::Event => {}
        Role::Diverted => flags |= DIVERTED,
        Role::DeadLetter { .. } => flags |= DEAD_LETTER,
    }
    out.push(VERSION);
    out.push(flags);
    out.extend_from_slice(&timestamp_ms.to_le_bytes());
    out.extend_from_slice(&ingest_ms.to_le_bytes());
    if let Some(k) = idempotency_key {
        // Keys are at most 256 bytes (validated), so u16 always fits.
        out.extend_from_slice(&(k.len() as u16).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
    }
    if let Role::DeadLetter { source_sequence, error } = role {
        let mut end = error.len().min(MAX_ERROR_LEN);
        while !error.is_char_boundary(end) {
            end -= 1;
        }
        out.extend_from_slice(&source_sequence.to_le_bytes());
        out.extend_from_slice(&(end as u16).to_le_bytes());
        out.extend_from_slice(&error.as_bytes()[..end]);
    }
    if *role != Role::Diverted {
        match payload {
            Payload::Json(s) => out.extend_from_slice(s.as_bytes()),
            Payload::Bytes(b) => out.extend_from_slice(b),
        }
    }
}

pub fn decode(bytes: &[u8]) -> Option<StoredEvent> {
    if bytes.len() < HEADER || bytes[0] != VERSION {
        return None;
    }
    let flags = bytes[1];
    let timestamp_ms = i64::from_le_bytes(bytes[2..10].try_into().ok()?);
    let ingest_ms = i64::from_le_bytes(bytes[10..18].try_into().ok()?);
    let mut rest = &bytes[HEADER..];
    let idempotency_key = if flags & HAS_KEY != 0 {
        let len = u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as usize;
        let key = std::str::from_utf8(rest.get(2..2 + len)?).ok()?.to_owned();
        rest = &rest[2 + len..];
        Some(key)
    } else {
        None
    };
    let role = if flags & DIVERTED != 0 {
        Role::Diverted
    } else if flags & DEAD_LETTER != 0 {
        let source_sequence = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
        let len = u16::from_le_bytes(rest.get(8..10)?.try_into().ok()?) as usize;
        let error = std::str::from_utf8(rest.get(10..10 + len)?).ok()?.to_owned();
        rest = &rest[10 + len..];
        Role::DeadLetter { source_sequence, error }
    } else {
        Role::Event
    };
    let payload = if flags & BYTES_PAYLOAD != 0 {
        Payload::Bytes(rest.to_vec())
    } else {
        Payload::Json(std::str::from_utf8(rest).ok()?.to_owned())
    };
    Some(StoredEvent { timestamp_ms, ingest_ms, idempotency_key, payload, role })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let dead = Role::DeadLetter { source_sequence: 42, error: "field a: é".into() };
        for (key, payload, role) in [
            (Some("k-1"), Payload::Json(r#"{"a":1}"#.into()), Role::Event),
            (None, Payload::Bytes(vec![0, 1, 255]), Role::Event),
            (None, Payload::Json(String::new()), Role::Event),
            (Some("k-2"), Payload::Json(r#"{"a":"x"}"#.into()), dead.clone()),
            (None, Payload::Bytes(vec![7]), dead),
            (Some("k-3"), Payload::Json(String::new()), Role::Diverted),
        ] {
            let enc = encode(5, 6, key, &payload, &role);
            let dec = decode(&enc).unwrap();
            assert_eq!(
                dec,
                StoredEvent {
                    timestamp_ms: 5,
                    ingest_ms: 6,
                    idempotency_key: key.map(Into::into),
                    payload,
                    role
                }
            );
        }
        assert!(decode(&[9; 30]).is_none());
    }
}
