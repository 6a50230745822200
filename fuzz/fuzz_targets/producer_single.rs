//! A single-event request body (`POST /tables/{t}`), with and without an
//! `Idempotency-Key` header: parsing never panics, and what it accepts passes the event
//! checks the node applies again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zombi_shared::envelope::{EventLimits, check_event};
use zombi_shared::parse::{ParseLimits, single};

const LIMITS: ParseLimits = ParseLimits { event: EventLimits::new(4096, 1023), max_records: 100 };

fuzz_target!(|data: &[u8]| {
    let (key, body) = match data.split_first() {
        Some((k, rest)) if *k < 8 => (Some("key-from-header"), rest),
        _ => (None, data),
    };
    if let Ok(event) = single(body, key, LIMITS) {
        check_event(&event, &LIMITS.event).expect("an accepted event passes the event checks");
        if let Some(k) = key {
            assert_eq!(event.idempotency_key.as_deref(), Some(k));
        }
    }
});
