//! The node's side of real-time reads (SPEC §7, docs/realtime.md): hot segments plus the
//! snapshot they are listed against hold every acknowledged event exactly once, leases
//! keep planned segments readable past retention, and the warehouse's `version-hint.text`
//! always names the current metadata.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;
use zombi_tests::engines::{duplicates, iceberg_rust_rows, rows_of};
use zombi_tests::producer::{Acked, send_acked};
use zombi_tests::{Edge, Node, client, wait_for};

const HOUR: i64 = 3_600_000;
/// 2026-01-01T22:00:00Z.
const BASE: i64 = 1_767_304_800_000;
const LONG: Duration = Duration::from_secs(30);

/// Sends `n` events per (partition, hour) and returns what was acknowledged.
async fn write(
    edge: &Edge,
    table: &str,
    partitions: u32,
    hours: &[i64],
    n: i64,
    v0: &mut i64,
) -> anyhow::Result<Vec<Acked>> {
    let c = client();
    let mut acked = Vec::new();
    for &h in hours {
        for p in 0..partitions {
            let records: Vec<(i64, i64)> = (0..n)
                .map(|k| {
                    *v0 += 1;
                    (BASE + h * HOUR + k * 1000, *v0)
                })
                .collect();
            acked.extend(send_acked(&c, &edge.url(), table, p, &records).await?);
        }
    }
    Ok(acked)
}

fn watermark_param(w: &Value) -> String {
    let map = w
        .as_object()
        .map(|m| m.iter().map(|(p, s)| format!("{p}:{}", s.as_u64().unwrap())).collect::<Vec<_>>());
    map.unwrap_or_default().join(",")
}

async fn list(node: &Node, table: &str, watermarks: &str) -> anyhow::Result<(u16, Value)> {
    let r = client()
        .get(format!("{}/tables/{table}/hot/segments?watermarks={watermarks}", node.url()))
        .send()
        .await?;
    Ok((r.status().as_u16(), r.json().await?))
}

/// Reads one segment file: status, and its (partition, sequence, v) rows and raw size.
async fn read_segment(node: &Node, path: &str) -> anyhow::Result<(u16, Vec<Acked>, u64)> {
    let r = client().get(format!("{}{path}", node.url())).send().await?;
    let status = r.status().as_u16();
    let body = r.bytes().await?;
    if status != 200 {
        return Ok((status, Vec::new(), 0));
    }
    let size = body.len() as u64;
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(body)?.build()?;
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok((status, rows_of(&batches), size))
}

/// Every row the segments of `listing` hold, checked against what the listing says of them.
async fn read_listing(node: &Node, listing: &Value) -> anyhow::Result<Vec<Acked>> {
    let mut all = Vec::new();
    for seg in listing["segments"].as_array().context("segments")? {
        let path = seg["path"].as_str().unwrap();
        let (status, rows, size) = read_segment(node, path).await?;
        anyhow::ensure!(status == 200, "{path}: {status}");
        anyhow::ensure!(rows.len() as u64 == seg["record_count"].as_u64().unwrap(), "{seg}");
        anyhow::ensure!(size <= seg["file_size_in_bytes"].as_u64().unwrap(), "{path}: {size} B");
        let (from, to) =
            (seg["from_sequence"].as_u64().unwrap(), seg["to_sequence"].as_u64().unwrap());
        let seqs: Vec<u64> = rows.iter().map(|r| r.1).collect();
        anyhow::ensure!(seqs.iter().all(|s| (from..to).contains(s)), "{path}: {seqs:?}");
        anyhow::ensure!(
            seqs.iter().min() == seg["lower_bounds"]["2"].as_u64().as_ref()
                && seqs.iter().max() == seg["upper_bounds"]["2"].as_u64().as_ref(),
            "{path}: sequence bounds {seqs:?}"
        );
        let p = seg["partition"].as_u64().unwrap() as u32;
        anyhow::ensure!(rows.iter().all(|r| r.0 == p), "{path}: foreign partition");
        all.extend(rows);
    }
    Ok(all)
}

fn assert_exactly(label: &str, mut got: Vec<Acked>, acked: &[Acked]) {
    assert!(duplicates(&got).is_empty(), "{label}: duplicates {:?}", duplicates(&got));
    got.sort();
    let mut want = acked.to_vec();
    want.sort();
    assert_eq!(got.len(), want.len(), "{label}: row count");
    assert_eq!(got, want, "{label}: rows");
}

/// Cold rows of the current snapshot plus hot segments listed against its watermarks.
async fn cold_plus_hot(node: &Node, table: &str) -> anyhow::Result<(Vec<Acked>, Value)> {
    let w = node.watermark(table).await?;
    let snapshot = w["snapshot_id"].as_i64().context("a snapshot")?;
    let cold = rows_of(&iceberg_rust_rows(&node.url(), table, Some(snapshot)).await?);
    let (status, listing) = list(node, table, &watermark_param(&w["watermarks"])).await?;
    anyhow::ensure!(status == 200, "listing: {status} {listing}");
    let mut rows = cold;
    rows.extend(read_listing(node, &listing).await?);
    Ok((rows, listing))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_and_the_hot_segments_above_it_hold_every_event_once() -> anyhow::Result<()> {
    // Only explicit flushes commit.
    let node = Node::start(&[("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000")]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let table = "rt";
    let mut v = 0;
    let mut acked = write(&edge, table, 3, &[0, 1], 30, &mut v).await?;
    node.flush(table).await?;
    // Hot: new hours, an hour already committed, and a late one, in every partition.
    acked.extend(write(&edge, table, 3, &[2, 1, 3, 0], 20, &mut v).await?);

    let (rows, listing) = cold_plus_hot(&node, table).await?;
    assert_exactly("snapshot + segments", rows, &acked);
    let segs = listing["segments"].as_array().unwrap();
    // One segment per (partition, hour) with hot rows: 3 partitions × 4 hours.
    assert_eq!(segs.len(), 12, "{listing}");
    for s in segs {
        assert_eq!(s["record_count"], 20);
        let hour = s["event_hour"].as_i64().unwrap();
        assert_eq!(s["lower_bounds"]["10"], hour);
        let ts_lo = s["lower_bounds"]["3"].as_i64().unwrap();
        assert_eq!((22 + (ts_lo - BASE).div_euclid(HOUR)) % 24, hour, "BASE is 22:00");
        assert_eq!(s["null_value_counts"]["8"], 20, "no binary payloads");
        assert_eq!(s["lower_bounds"]["4"].as_i64().unwrap(), ts_lo * 1000);
    }

    // A flush racing the reader: the segments it planned read the same rows afterwards,
    // and the new snapshot with its own (empty) hot set still holds everything once.
    let before = read_listing(&node, &listing).await?;
    node.flush(table).await?;
    let after = read_listing(&node, &listing).await?;
    assert_eq!(before, after, "a pinned segment re-reads to the same rows");
    let (rows, listing) = cold_plus_hot(&node, table).await?;
    assert!(listing["segments"].as_array().unwrap().is_empty(), "{listing}");
    assert_exactly("after the flush", rows, &acked);

    // A table that was never flushed: everything is hot.
    let mut fresh = write(&edge, "rt_fresh", 1, &[0], 5, &mut v).await?;
    let (status, listing) = list(&node, "rt_fresh", "").await?;
    assert_eq!(status, 200, "{listing}");
    assert_exactly("no snapshot", read_listing(&node, &listing).await?, &fresh);
    fresh.clear();

    // Bad requests name the problem; unknown tables and segments are 404.
    let (status, body) = list(&node, table, "0:x").await?;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("<partition>:<next sequence>"));
    let (status, _) = list(&node, "nope", "").await?;
    assert_eq!(status, 404);
    let (status, _, _) = read_segment(&node, "/tables/rt/hot/segments/0/5-4/1-1.parquet").await?;
    assert_eq!(status, 400);
    let (status, _, _) =
        read_segment(&node, "/tables/rt/hot/segments/0/0-99999/1-1.parquet").await?;
    assert_eq!(status, 404);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leased_segments_outlive_retention_and_older_watermarks_get_410() -> anyhow::Result<()> {
    let node = Node::start(&[
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "100"),
        ("ZOMBI_NODE__FLUSH__RETENTION_SECS", "0"),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let table = "lease";
    let mut v = 0;
    write(&edge, table, 2, &[0], 10, &mut v).await?;
    node.wait_flushed(table, LONG).await?;
    let floors = |want: BTreeMap<String, u64>| {
        let node = &node;
        async move {
            wait_for(&format!("floors {want:?}"), LONG, || async {
                let s = node.stats().await.ok()?;
                let f: BTreeMap<String, u64> =
                    serde_json::from_value(s["tables"][table]["flush"]["floors"].clone()).ok()?;
                (f == want).then_some(())
            })
            .await
        }
    };
    let at = |a: u64, b: u64| BTreeMap::from([("0".to_owned(), a), ("1".to_owned(), b)]);
    // Retention 0: committed events go at once.
    floors(at(10, 10)).await?;

    // A reader plans partition 0 above 10 (the events about to come) and partition 1 above 20.
    let b = write(&edge, table, 1, &[0], 10, &mut v).await?;
    let (status, listing) = list(&node, table, "0:10,1:20").await?;
    assert_eq!(status, 200, "{listing}");
    // Partition 1 moves on to 30 and commits; retention deletes up to the leases only.
    write(&edge, table, 2, &[0], 20, &mut v).await?;
    node.wait_flushed(table, LONG).await?;
    floors(at(10, 20)).await?;
    let planned = read_listing(&node, &listing).await?;
    let mut planned_p0: Vec<Acked> = planned.into_iter().filter(|r| r.0 == 0).collect();
    planned_p0.sort();
    assert_eq!(planned_p0, b, "the planned segments are still readable, exactly");

    // A reader whose snapshot is older than the floor is told so, with the floor.
    let (status, body) = list(&node, table, "0:0,1:20").await?;
    assert_eq!(status, 410, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("deletion floor 10") && msg.contains("reload the table"), "{msg}");
    let (status, _, _) =
        read_segment(&node, "/tables/lease/hot/segments/0/0-10/1-1.parquet").await?;
    assert_eq!(status, 410);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_warehouse_names_the_current_metadata_in_version_hint() -> anyhow::Result<()> {
    let mut node = Node::start(&[
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000"),
        ("ZOMBI_NODE__MAINTENANCE__FILE_GRACE_SECS", "0"),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let table = "hinted";
    let metadata_dir = node.data_dir().join("warehouse/zombi").join(table).join("metadata");
    let mut v = 0;
    // Each flush moves the hint to the version the catalog serves, whose copy is identical.
    for round in 0..3 {
        write(&edge, table, 1, &[round], 5, &mut v).await?;
        let flushed = node.flush(table).await?;
        let hint = std::fs::read_to_string(metadata_dir.join("version-hint.text"))?;
        assert!(hint.bytes().all(|b| b.is_ascii_digit()), "{hint:?}: a bare number");
        let copy: Value = serde_json::from_slice(&std::fs::read(
            metadata_dir.join(format!("v{hint}.metadata.json")),
        )?)?;
        assert_eq!(copy["current-snapshot-id"], flushed["snapshot_id"], "round {round}");
        let current = std::fs::read_dir(&metadata_dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(&format!("{:05}-", hint.parse::<u32>().unwrap())))
            .count();
        assert_eq!(current, 1, "v{hint} copies version {hint}");
    }
    // Maintenance deletes unreferenced files at once here, but never the pointer's copy.
    node.compact(table).await?;
    let hint = std::fs::read_to_string(metadata_dir.join("version-hint.text"))?;
    assert!(metadata_dir.join(format!("v{hint}.metadata.json")).exists());

    // A crash between a commit and its hint: the next start writes it.
    std::fs::remove_file(metadata_dir.join("version-hint.text"))?;
    node.kill9();
    drop(edge);
    node.restart().await?;
    wait_for("version-hint.text to be repaired", LONG, || async {
        let h = std::fs::read_to_string(metadata_dir.join("version-hint.text")).ok()?;
        (h == hint).then_some(())
    })
    .await?;
    Ok(())
}

/// The Python reader (`plugins/python`, PyIceberg + DuckDB) against the real binaries:
/// exactly once, pruning, time travel, racing flushes, 410/429, node down and hanging.
#[test]
fn the_python_reader_suite_passes() -> anyhow::Result<()> {
    let python = zombi_tests::engines::venv_python();
    anyhow::ensure!(python.exists(), "{} missing: run `just venv`", python.display());
    let suite = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/python/tests/test_realtime.py");
    let out = std::process::Command::new(python)
        .arg(&suite)
        .args(["-q", "-p", "no:cacheprovider"])
        .env("ZOMBI_BIN_DIR", zombi_tests::bin_dir())
        .output()?;
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} failed:\n{report}\n{}",
        suite.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // pytest skips what the venv cannot run: none may be skipped here.
    assert!(report.contains(" passed") && !report.contains("skipped"), "{report}");
    Ok(())
}
