//! A partition spec of the owner's choice against Zombi's default: the same bulk load into
//! a table with `day(event_time), bucket(16, sequence)` and one with `event_date,
//! event_hour` (the baseline), each then listed as hot segments and flushed, both timed. The
//! bucketed table's rows split into 16 partitions where the default's fall in one or two
//! hours: the figures show what computing partition values and writing one set of files per
//! value costs.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;
use zombi_tests::{Edge, Node, client};

use crate::load;

pub const DEFAULT: &str = "hourly";
pub const SPEC: &str = "bucketed";

/// One table's figures.
pub struct Table {
    pub rows: u64,
    pub segments: u64,
    pub list_secs: f64,
    pub flush_secs: f64,
    pub files: u64,
}

async fn measure(
    node: &Node,
    edge: &Edge,
    table: &str,
    duration: Duration,
    connections: usize,
) -> Result<Table> {
    let target = crate::bulk_target(crate::addr_of(&edge.url())?, table);
    load::closed_loop(&target, connections, duration).await?;
    let rows = node.table_events(table).await?;
    let started = Instant::now();
    let r = client()
        .get(format!("{}/tables/{table}/hot/segments?watermarks=", node.url()))
        .timeout(Duration::from_secs(600))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "listing {table}: {}", r.status());
    let listing: Value = r.json().await?;
    let list_secs = started.elapsed().as_secs_f64();
    let segments = listing["segments"].as_array().context("segments")?.len() as u64;
    let started = Instant::now();
    node.flush(table).await?;
    let flush_secs = started.elapsed().as_secs_f64();
    let m = node.table_metadata(table).await?;
    let current = &m["current-snapshot-id"];
    let snapshot =
        m["snapshots"].as_array().into_iter().flatten().find(|s| &s["snapshot-id"] == current);
    let files = snapshot
        .and_then(|s| s["summary"]["total-data-files"].as_str())
        .and_then(|v| v.parse().ok())
        .context("total-data-files")?;
    Ok(Table { rows, segments, list_secs, flush_secs, files })
}

/// (the table with its own spec, the default one).
pub async fn spec_vs_default(duration: Duration, connections: usize) -> Result<(Table, Table)> {
    let node = Node::start(&[
        ("ZOMBI_NODE__DURABILITY", "wal"),
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000"),
        ("ZOMBI_NODE__FLUSH__RETENTION_SECS", "60"),
        ("ZOMBI_NODE__MAINTENANCE__ENABLED", "false"),
        (
            "ZOMBI_NODE__TABLES__BUCKETED__PARTITION_BY",
            r#"["day(event_time)", "bucket(16, sequence)"]"#,
        ),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let default = measure(&node, &edge, DEFAULT, duration, connections).await?;
    let spec = measure(&node, &edge, SPEC, duration, connections).await?;
    Ok((spec, default))
}
