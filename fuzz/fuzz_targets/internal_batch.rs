//! The node's decoder of internal MessagePack batches (what an edge, or anyone holding an
//! internal token, sends): decoding and the node's strict event checks never panic, and a
//! decoded batch encodes back to an equal batch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zombi_shared::envelope::{EventLimits, check_event_strict};
use zombi_shared::wire::{IngestBatch, decode, encode};

const LIMITS: EventLimits = EventLimits::new(4096, 1023);

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = decode::<IngestBatch>(data) else { return };
    for group in &batch.groups {
        let _ = zombi_shared::validate_table_name(&group.table);
        for event in &group.events {
            let _ = check_event_strict(event, &LIMITS);
        }
    }
    let again: IngestBatch = decode(&encode(&batch)).expect("an encoded batch decodes");
    assert_eq!(again, batch);
});
