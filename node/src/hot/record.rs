//! Encoding of one stored event (the value in the `events` column family).
//!
//! `version u8 · flags u8 · timestamp_ms i64 · ingest_ms i64 · [key_len u16 · key] · payload`
//! where flags bit 0 = has idempotency key, bit 1 = payload is raw bytes (else JSON text).

use zombi_shared::wire::Payload;

const VERSION: u8 = 1;
const HAS_KEY: u8 = 1;
const BYTES_PAYLOAD: u8 = 2;
const HEADER: usize = 18;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub timestamp_ms: i64,
    pub ingest_ms: i64,
    pub idempotency_key: Option<String>,
    pub payload: Payload,
}

pub fn encode(
    timestamp_ms: i64,
    ingest_ms: i64,
    idempotency_key: Option<&str>,
    payload: &Payload,
) -> Vec<u8> {
    let key_len = idempotency_key.map_or(0, |k| 2 + k.len());
    let mut out = Vec::with_capacity(HEADER + key_len + payload.len());
    let mut flags = 0;
    if idempotency_key.is_some() {
        flags |= HAS_KEY;
    }
    if matches!(payload, Payload::Bytes(_)) {
        flags |= BYTES_PAYLOAD;
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
    match payload {
        Payload::Json(s) => out.extend_from_slice(s.as_bytes()),
        Payload::Bytes(b) => out.extend_from_slice(b),
    }
    out
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
    let payload = if flags & BYTES_PAYLOAD != 0 {
        Payload::Bytes(rest.to_vec())
    } else {
        Payload::Json(std::str::from_utf8(rest).ok()?.to_owned())
    };
    Some(StoredEvent { timestamp_ms, ingest_ms, idempotency_key, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (key, payload) in [
            (Some("k-1"), Payload::Json(r#"{"a":1}"#.into())),
            (None, Payload::Bytes(vec![0, 1, 255])),
            (None, Payload::Json(String::new())),
        ] {
            let enc = encode(5, 6, key, &payload);
            let dec = decode(&enc).unwrap();
            assert_eq!(
                dec,
                StoredEvent {
                    timestamp_ms: 5,
                    ingest_ms: 6,
                    idempotency_key: key.map(Into::into),
                    payload
                }
            );
        }
        assert!(decode(&[9; 30]).is_none());
    }
}
