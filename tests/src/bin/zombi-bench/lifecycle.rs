//! Deletes on request against compaction: the bulk events of a timed load in one raw
//! table, in two halves each flushed (so every hour has at least two files), then compacted
//! (the baseline: every row read and written once, into one file per hour), then a
//! delete of one user's events by payload field (every file read, those with the user's
//! rows rewritten) and the same delete again (every file read, nothing written).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use zombi_tests::{Edge, Node, client};

use crate::load;

const TABLE: &str = "erase";
/// One of the 8,000 users of the bulk bodies: one event in 8,000.
const USER: &str = "u-00000042";

pub struct Figures {
    pub rows: u64,
    pub rows_deleted: u64,
    pub files_read: u64,
    pub files_rewritten: u64,
    pub compact_secs: f64,
    pub delete_secs: f64,
    pub repeat_secs: f64,
}

async fn delete(node: &Node) -> Result<(Value, f64)> {
    let body = json!({"where": [{"payload_field": "user", "op": "eq", "value": USER}]});
    let started = Instant::now();
    let r = client()
        .post(format!("{}/tables/{TABLE}/delete", node.url()))
        .timeout(Duration::from_secs(3600))
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "delete: {} {}", r.status(), r.text().await?);
    let answer: Value = r.json().await?;
    Ok((answer, started.elapsed().as_secs_f64()))
}

pub async fn delete_vs_compaction(
    node: &Node,
    edge: &Edge,
    duration: Duration,
    connections: usize,
) -> Result<Figures> {
    let target = crate::bulk_target(crate::addr_of(&edge.url())?, TABLE);
    for _ in 0..2 {
        load::closed_loop(&target, connections, duration / 2).await?;
        node.flush(TABLE).await?;
    }
    let started = Instant::now();
    let compacted = node.compact(TABLE).await?;
    let compact_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        compacted["files_rewritten"].as_u64() > Some(1),
        "the baseline compaction merged nothing: {compacted}"
    );
    let rows = node.table_events(TABLE).await?;
    let (first, delete_secs) = delete(node).await?;
    let (again, repeat_secs) = delete(node).await?;
    let n = |v: &Value, k: &str| v[k].as_u64().with_context(|| format!("{k} in {v}"));
    anyhow::ensure!(n(&again, "rows_deleted")? == 0, "the repeated delete deleted rows: {again}");
    Ok(Figures {
        rows,
        rows_deleted: n(&first, "rows_deleted")?,
        files_read: n(&first, "files_read")?,
        files_rewritten: n(&first, "files_rewritten")?,
        compact_secs,
        delete_secs,
        repeat_secs,
    })
}
