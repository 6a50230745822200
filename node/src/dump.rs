//! `zombi-node dump`: prints the events of the hot store as NDJSON, for operators and
//! tests. It opens RocksDB read-only, so it works while a node is running.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::json;
use zombi_shared::wire::Payload;

use crate::hot::HotStore;

pub fn dump(hot_dir: &Path, table: &str, out: &mut impl Write) -> anyhow::Result<u64> {
    let store = HotStore::open_read_only(hot_dir)
        .with_context(|| format!("cannot open the hot store at {}", hot_dir.display()))?;
    let Some(id) = store.table_id(table) else {
        return Ok(0);
    };
    let counters = store.table_counters(id)?;
    let mut count = 0;
    for (&partition, &hwm) in &counters.high_water_marks {
        for item in store.scan(id, partition, 0, hwm) {
            let (sequence, event) = item?;
            let mut line = json!({
                "partition": partition,
                "sequence": sequence,
                "timestamp_ms": event.timestamp_ms,
                "ingest_ms": event.ingest_ms,
                "idempotency_key": event.idempotency_key,
            });
            match event.payload {
                Payload::Json(text) => line["payload"] = json!(text),
                Payload::Bytes(bytes) => {
                    line["payload_base64"] =
                        json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            }
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
            count += 1;
        }
    }
    Ok(count)
}
