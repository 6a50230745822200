//! A bulk request body (`POST /tables/{t}/bulk`) as JSON (`{"records":[…]}`) or NDJSON:
//! parsing never panics, accepts at most `max_records`, every accepted event passes the
//! event checks, and the group the edge encodes while parsing decodes to the same events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zombi_shared::envelope::{EventLimits, check_event};
use zombi_shared::parse::{ParseLimits, bulk_json_into, bulk_ndjson_into};
use zombi_shared::wire::{self, GroupEncoder, IngestBatch, WireEvent};

const LIMITS: ParseLimits = ParseLimits { event: EventLimits::new(4096, 1023), max_records: 64 };

fuzz_target!(|data: &[u8]| {
    let Some((format, body)) = data.split_first() else { return };
    let mut events: Vec<WireEvent> = Vec::new();
    let mut group = GroupEncoder::new("t", 0);
    let (owned, encoded) = if format % 2 == 0 {
        (bulk_json_into(body, LIMITS, &mut events), bulk_json_into(body, LIMITS, &mut group))
    } else {
        (bulk_ndjson_into(body, LIMITS, &mut events), bulk_ndjson_into(body, LIMITS, &mut group))
    };
    assert_eq!(owned, encoded, "both sinks see the same records and errors");
    if let Ok(records) = owned {
        assert!(records > 0 && records <= LIMITS.max_records && records == events.len());
        for event in &events {
            check_event(event, &LIMITS.event).expect("an accepted event passes the event checks");
        }
        let batch = wire::encode_batch(vec![group.finish()]);
        let decoded: IngestBatch = wire::decode(&batch).expect("an encoded group decodes");
        assert_eq!(decoded.groups[0].events, events);
    }
});
