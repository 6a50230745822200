//! Typed against raw: the same events, bulk-loaded into a typed table of 12 columns of
//! mixed types and into a raw table, one after the other on one node and edge; then the
//! Parquet bytes per event each table holds once everything is committed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use serde_json::{Value, json};
use zombi_tests::{Edge, Node, client, wait_for};

use crate::load::{self, Target};

pub const EVENTS_PER_REQUEST: usize = 1000;

/// The typed table's user columns: strings, numbers, a decimal, a timestamp, a boolean, a
/// list and a struct (12 columns).
fn declaration(name: &str) -> Value {
    let p = |id: i32, name: &str, t: Value| json!({"id": id, "name": name, "type": t, "required": false});
    json!({
        "name": name,
        "schema": {"type": "struct", "schema-id": 0, "fields": [
            p(1, "user", json!("string")),
            p(2, "action", json!("string")),
            p(3, "page", json!("string")),
            p(4, "session", json!("string")),
            p(5, "n", json!("long")),
            p(6, "qty", json!("int")),
            p(7, "amount", json!("decimal(12, 2)")),
            p(8, "score", json!("double")),
            p(9, "at", json!("timestamptz")),
            p(10, "ok", json!("boolean")),
            p(11, "tags", json!({"type": "list", "element-id": 13, "element": "string", "element-required": false})),
            p(12, "geo", json!({"type": "struct", "fields": [
                {"id": 14, "name": "country", "type": "string", "required": false},
                {"id": 15, "name": "city", "type": "string", "required": false},
            ]})),
        ]},
    })
}

/// One event of about 300 bytes with every column's field.
fn event(i: usize) -> Vec<u8> {
    let action = ["click", "view", "purchase", "scroll"][i % 4];
    let country = ["DE", "FR", "US"][i % 3];
    let body = json!({
        "payload": {
            "user": format!("u-{:08}", i % 100_000),
            "action": action,
            "page": format!("/products/{:06}/details?ref=campaign-{:04}", i % 50_000, i % 1000),
            "session": format!("s-{:016x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            "n": i,
            "qty": i % 100,
            "amount": serde_json::from_str::<Value>(&format!("{}.{:02}", i % 10_000, i % 100)).unwrap(),
            "score": (i % 1000) as f64 / 7.0,
            "at": format!("2026-01-01T{:02}:{:02}:{:02}.{:03}Z", (i / 3600) % 24, (i / 60) % 60, i % 60, i % 1000),
            "ok": i.is_multiple_of(3),
            "tags": [format!("t{}", i % 50), "x"],
            "geo": {"country": country, "city": format!("c{}", i % 200)},
        },
        "partition": i % 4,
    });
    serde_json::to_vec(&body).expect("serializable")
}

fn target(addr: std::net::SocketAddr, table: &str) -> Target {
    let bodies = (0..8)
        .map(|b| {
            let mut out = Vec::new();
            for i in 0..EVENTS_PER_REQUEST {
                out.extend_from_slice(&event(b * EVENTS_PER_REQUEST + i));
                out.push(b'\n');
            }
            Bytes::from(out)
        })
        .collect();
    Target {
        addr,
        path: format!("/tables/{table}/bulk"),
        content_type: "application/x-ndjson",
        bodies: Arc::new(bodies),
    }
}

/// One table's bulk figures.
pub struct Load {
    pub eps: f64,
    pub mib_s: f64,
    pub non_200: u64,
    pub parquet_bytes_per_event: f64,
}

/// (typed, raw): the same load for `duration` each, `connections` at a time.
pub async fn typed_vs_raw(
    node: &Node,
    edge: &Edge,
    duration: Duration,
    connections: usize,
) -> Result<(Load, Load)> {
    let r = client()
        .post(format!("{}/v1/namespaces/zombi/tables", node.url()))
        .json(&declaration("typed_bulk"))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "cannot declare the typed table: {}", r.text().await?);
    let addr = crate::addr_of(&edge.url())?;
    let mut out = Vec::new();
    for table in ["typed_bulk", "raw_bulk"] {
        let outcome = load::closed_loop(&target(addr, table), connections, duration).await?;
        node.flush(table).await?;
        let bytes_per_event = parquet_bytes_per_event(node, table).await?;
        out.push(Load {
            eps: outcome.ok_per_sec() * EVENTS_PER_REQUEST as f64,
            mib_s: outcome.request_bytes as f64 / (1024.0 * 1024.0) / outcome.secs,
            non_200: outcome.rejected + outcome.failed,
            parquet_bytes_per_event: bytes_per_event,
        });
    }
    let raw = out.pop().context("raw")?;
    let typed = out.pop().context("typed")?;
    Ok((typed, raw))
}

/// Data file bytes per record of the table's current snapshot.
async fn parquet_bytes_per_event(node: &Node, table: &str) -> Result<f64> {
    let url = format!("{}/v1/namespaces/zombi/tables/{table}", node.url());
    let summary = wait_for("a committed snapshot", Duration::from_secs(60), || async {
        let m: Value = client().get(&url).send().await.ok()?.json().await.ok()?;
        let current = m["metadata"]["current-snapshot-id"].as_i64()?;
        let snapshots = m["metadata"]["snapshots"].as_array()?;
        let s = snapshots.iter().find(|s| s["snapshot-id"].as_i64() == Some(current))?;
        Some(s["summary"].clone())
    })
    .await?;
    let number = |k: &str| summary[k].as_str().and_then(|v| v.parse::<f64>().ok());
    let (bytes, records) = (number("total-files-size"), number("total-records"));
    Ok(match (bytes, records) {
        (Some(b), Some(r)) if r > 0.0 => b / r,
        _ => f64::NAN,
    })
}
