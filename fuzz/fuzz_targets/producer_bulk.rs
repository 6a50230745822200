//! A bulk request body (`POST /tables/{t}/bulk`) as JSON (`{"records":[…]}`) or NDJSON:
//! parsing never panics, accepts at most `max_records`, and every accepted event passes the
//! event checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zombi_shared::envelope::{EventLimits, check_event};
use zombi_shared::parse::{ParseLimits, bulk_json, bulk_ndjson};

const LIMITS: ParseLimits = ParseLimits { event: EventLimits::new(4096, 1023), max_records: 64 };

fuzz_target!(|data: &[u8]| {
    let Some((format, body)) = data.split_first() else { return };
    let parsed = if format % 2 == 0 { bulk_json(body, LIMITS) } else { bulk_ndjson(body, LIMITS) };
    if let Ok(events) = parsed {
        assert!(!events.is_empty() && events.len() <= LIMITS.max_records);
        for event in &events {
            check_event(event, &LIMITS.event).expect("an accepted event passes the event checks");
        }
    }
});
