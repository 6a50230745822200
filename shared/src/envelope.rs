//! The producer's JSON event envelope and the checks both edge and node apply to an event.

use std::borrow::Cow;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::wire::{EventRef, Payload, PayloadRef, WireEvent};

/// Longest accepted idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 256;
/// Latest accepted event time: 9999-12-31T23:59:59.999Z, so every event has a valid date.
pub const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

/// One event as a producer sends it. Only a JSON object is an envelope: serde would also
/// accept a struct written as an array (`[{"a":1}]`), which producers never mean.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(remote = "Self")]
pub struct Envelope<'a> {
    #[serde(borrow, default)]
    pub payload: Option<&'a RawValue>,
    #[serde(default)]
    pub payload_base64: Option<String>,
    #[serde(default)]
    pub partition: Option<u32>,
    #[serde(default)]
    pub timestamp_ms: Option<i64>,
    #[serde(borrow, default)]
    pub idempotency_key: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for ObjectOnly<'a> {
            type Value = Envelope<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an event envelope object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                Envelope::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(ObjectOnly(std::marker::PhantomData))
    }
}

/// Per-event limits, the same checks on edge and node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimits {
    /// Largest payload (JSON text or decoded bytes).
    pub max_event_bytes: usize,
    /// Highest partition accepted. Every snapshot carries the watermark of every partition,
    /// so partitions are meant to be few, like Kafka partitions, not keys.
    pub max_partition: u32,
    /// Oldest accepted `timestamp_ms`, as an age against this process's clock (0: any).
    pub max_event_age_ms: u64,
    /// Furthest accepted `timestamp_ms` ahead of this process's clock (0: any).
    pub max_future_skew_ms: u64,
}

impl EventLimits {
    /// Size and partition limits only; any event time from 0 to [`MAX_TIMESTAMP_MS`].
    pub const fn new(max_event_bytes: usize, max_partition: u32) -> Self {
        EventLimits { max_event_bytes, max_partition, max_event_age_ms: 0, max_future_skew_ms: 0 }
    }

    /// The limits a configuration names: sizes in bytes, event-time bounds in seconds.
    pub fn from_config(
        max_event_bytes: u64,
        max_partition: u32,
        max_event_age_secs: u64,
        max_future_skew_secs: u64,
    ) -> Self {
        EventLimits {
            max_event_bytes: usize::try_from(max_event_bytes).unwrap_or(usize::MAX),
            max_partition,
            max_event_age_ms: max_event_age_secs.saturating_mul(1000),
            max_future_skew_ms: max_future_skew_secs.saturating_mul(1000),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event needs exactly one of \"payload\" or \"payload_base64\"")]
    PayloadChoice,
    #[error("\"payload_base64\" is not valid base64: {0}")]
    BadBase64(String),
    #[error("timestamp_ms {0} is outside 0..={MAX_TIMESTAMP_MS}")]
    BadTimestamp(i64),
    #[error(
        "timestamp_ms {ts} ({}) is more than {} older than now; the limit is limits.max_event_age_secs",
        rfc3339(*ts),
        secs(*limit_ms)
    )]
    TooOld { ts: i64, limit_ms: u64 },
    #[error(
        "timestamp_ms {ts} ({}) is more than {} ahead of now; the limit is limits.max_future_skew_secs",
        rfc3339(*ts),
        secs(*limit_ms)
    )]
    TooFarAhead { ts: i64, limit_ms: u64 },
    #[error("idempotency_key must be 1..={MAX_IDEMPOTENCY_KEY_LEN} bytes")]
    BadIdempotencyKey,
    #[error("the Idempotency-Key header and the body's idempotency_key differ")]
    KeyConflict,
    #[error("partition {0} is above the highest accepted partition, {1}")]
    BadPartition(u32, u32),
    #[error("\"payload\" is not valid JSON: {0}")]
    BadJson(String),
    #[error("event payload is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| "out of range".into())
}

fn secs(ms: u64) -> String {
    format!("{} s", ms / 1000)
}

impl EventError {
    /// Size errors map to 413, the rest to 400.
    pub fn is_too_large(&self) -> bool {
        matches!(self, EventError::TooLarge { .. })
    }
}

impl<'a> Envelope<'a> {
    /// Checks the envelope against `limits` and returns its event, borrowing the payload
    /// text from the request. `header_key` is the `Idempotency-Key` header of a
    /// single-event request.
    pub fn check(
        self,
        header_key: Option<&'a str>,
        limits: &EventLimits,
    ) -> Result<EventRef<'a>, EventError> {
        let payload = match (self.payload, self.payload_base64) {
            (Some(raw), None) => PayloadRef::Json(raw.get()),
            (None, Some(b64)) => PayloadRef::Bytes(Cow::Owned(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|e| EventError::BadBase64(e.to_string()))?,
            )),
            _ => return Err(EventError::PayloadChoice),
        };
        let idempotency_key = match (self.idempotency_key, header_key) {
            (Some(body), Some(header)) if body != header => {
                return Err(EventError::KeyConflict);
            }
            (Some(body), _) => Some(body),
            (None, header) => header.map(Cow::Borrowed),
        };
        let event = EventRef {
            partition: self.partition.unwrap_or(0),
            timestamp_ms: self.timestamp_ms,
            idempotency_key,
            payload,
        };
        check_shape(&event, limits)?;
        check_time(event.timestamp_ms, limits)?;
        Ok(event)
    }
}

/// [`check_event`] without the event-time bounds, plus, for a JSON payload, that it is
/// well-formed JSON. The node applies this to every event of a batch, since it never trusts
/// that an edge parsed the payload; it checks event times per group with
/// [`check_event_time`], as its clock may differ a little from the edge's.
pub fn check_event_strict(event: &WireEvent, limits: &EventLimits) -> Result<(), EventError> {
    check_shape(&event.as_ref(), limits)?;
    if let Payload::Json(text) = &event.payload {
        serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map_err(|e| EventError::BadJson(e.to_string()))?;
    }
    Ok(())
}

/// The checks every event passes on the edge: its shape, then its time.
pub fn check_event(event: &WireEvent, limits: &EventLimits) -> Result<(), EventError> {
    check_shape(&event.as_ref(), limits)?;
    check_event_time(event, limits)
}

/// The configured event-time bounds, against this process's clock (none: always `Ok`).
pub fn check_event_time(event: &WireEvent, limits: &EventLimits) -> Result<(), EventError> {
    check_time(event.timestamp_ms, limits)
}

fn check_time(timestamp_ms: Option<i64>, limits: &EventLimits) -> Result<(), EventError> {
    let (age, skew) = (limits.max_event_age_ms, limits.max_future_skew_ms);
    let Some(ts) = timestamp_ms else { return Ok(()) };
    if age == 0 && skew == 0 {
        return Ok(());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    if age > 0 && ts < now.saturating_sub(age as i64) {
        return Err(EventError::TooOld { ts, limit_ms: age });
    }
    if skew > 0 && ts > now.saturating_add(skew as i64) {
        return Err(EventError::TooFarAhead { ts, limit_ms: skew });
    }
    Ok(())
}

/// Partition, timestamp range, key and size.
fn check_shape(event: &EventRef<'_>, limits: &EventLimits) -> Result<(), EventError> {
    let max_event_bytes = limits.max_event_bytes;
    if event.partition > limits.max_partition {
        return Err(EventError::BadPartition(event.partition, limits.max_partition));
    }
    if let Some(ts) = event.timestamp_ms
        && !(0..=MAX_TIMESTAMP_MS).contains(&ts)
    {
        return Err(EventError::BadTimestamp(ts));
    }
    if let Some(key) = &event.idempotency_key
        && (key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN)
    {
        return Err(EventError::BadIdempotencyKey);
    }
    if event.payload.len() > max_event_bytes {
        return Err(EventError::TooLarge { size: event.payload.len(), limit: max_event_bytes });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: EventLimits = EventLimits::new(1024, 100);
    const SMALL: EventLimits = EventLimits::new(10, 100);

    fn parse(json: &str) -> Result<WireEvent, String> {
        let env: Envelope = serde_json::from_str(json).map_err(|e| e.to_string())?;
        env.check(None, &LIMITS).map(|e| e.to_owned_event()).map_err(|e| e.to_string())
    }

    #[test]
    fn payload_text_is_kept_verbatim() {
        let ev =
            parse(r#"{"payload": {"b":1, "a":[1,2]}, "partition": 2, "timestamp_ms": 5}"#).unwrap();
        assert_eq!(ev.payload, Payload::Json(r#"{"b":1, "a":[1,2]}"#.into()));
        assert_eq!((ev.partition, ev.timestamp_ms), (2, Some(5)));
    }

    #[test]
    fn base64_payload_is_decoded() {
        let ev = parse(r#"{"payload_base64": "AP8H"}"#).unwrap();
        assert_eq!(ev.payload, Payload::Bytes(vec![0, 255, 7]));
    }

    #[test]
    fn bad_envelopes_are_rejected() {
        for bad in [
            r#"{}"#,
            r#"{"payload": 1, "payload_base64": "AA=="}"#,
            r#"{"payload_base64": "!!"}"#,
            r#"{"payload": 1, "partition": -1}"#,
            r#"{"payload": 1, "partition": 4294967296}"#,
            r#"{"payload": 1, "partition": 101}"#,
            r#"{"payload": 1, "timestamp_ms": -5}"#,
            r#"{"payload": 1, "idempotency_key": ""}"#,
            r#"{"payload": 1, "extra": true}"#,
            r#"{"payload": "x"#,
            r#"[1]"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} must be rejected");
        }
    }

    #[test]
    fn event_time_bounds_apply_only_when_set() {
        let now = chrono::Utc::now().timestamp_millis();
        let hour = 3_600_000;
        let bounded = EventLimits {
            max_event_age_ms: 24 * hour as u64,
            max_future_skew_ms: hour as u64,
            ..LIMITS
        };
        let event = |ts: i64| WireEvent {
            partition: 0,
            timestamp_ms: Some(ts),
            idempotency_key: None,
            payload: Payload::Json("1".into()),
        };
        assert!(check_event(&event(now - 23 * hour), &bounded).is_ok());
        assert!(check_event(&event(now + hour / 2), &bounded).is_ok());
        let old = check_event(&event(0), &bounded).unwrap_err().to_string();
        assert!(old.contains("1970-01-01T00:00:00.000Z") && old.contains("max_event_age"), "{old}");
        let ahead = check_event(&event(now + 2 * hour), &bounded).unwrap_err().to_string();
        assert!(ahead.contains("max_future_skew"), "{ahead}");
        // Without bounds every valid time is accepted.
        assert!(check_event(&event(0), &LIMITS).is_ok());
        assert!(check_event(&event(MAX_TIMESTAMP_MS), &LIMITS).is_ok());
    }

    #[test]
    fn strict_check_refuses_a_json_payload_that_is_not_json() {
        let event = |text: &str| WireEvent {
            partition: 0,
            timestamp_ms: None,
            idempotency_key: None,
            payload: Payload::Json(text.into()),
        };
        assert!(check_event_strict(&event(r#"{"a":[1,2]}"#), &LIMITS).is_ok());
        for bad in ["", "{", "{\"a\":1} trailing", "nul\u{0}"] {
            let err = check_event_strict(&event(bad), &LIMITS).unwrap_err();
            assert!(matches!(err, EventError::BadJson(_)), "{bad:?}: {err}");
            assert!(check_event(&event(bad), &LIMITS).is_ok(), "the edge's check parses elsewhere");
        }
    }

    #[test]
    fn size_limit_is_413() {
        let big = format!(r#"{{"payload": "{}"}}"#, "x".repeat(2000));
        let env: Envelope = serde_json::from_str(&big).unwrap();
        assert!(env.check(None, &LIMITS).unwrap_err().is_too_large());
    }

    #[test]
    fn header_key_must_agree_with_body_key() {
        let env: Envelope = serde_json::from_str(r#"{"payload":1}"#).unwrap();
        assert_eq!(env.check(Some("h"), &SMALL).unwrap().idempotency_key.as_deref(), Some("h"));
        let env: Envelope = serde_json::from_str(r#"{"payload":1,"idempotency_key":"b"}"#).unwrap();
        assert!(env.check(Some("h"), &SMALL).is_err());
    }
}
