//! Events become Iceberg tables that real engines read, exactly once.

use std::time::Duration;

use serde_json::Value;
use zombi_tests::engines::{
    self, EngineOpts, assert_exact, expected, figures, iceberg_rust_rows, read_ipc, rows_of,
};
use zombi_tests::producer::{Acked, send_acked};
use zombi_tests::{Edge, Node, client, wait_for};

const HOUR: i64 = 3_600_000;
/// 2026-01-01T22:00:00Z: four hours from here cross into 2026-01-02.
const BASE: i64 = 1_767_304_800_000;

/// Events over four hours and `partitions` partitions, late ones included, through `edges`.
async fn write_spread(
    edges: &[&Edge],
    table: &str,
    partitions: u32,
    per_hour: i64,
    v0: i64,
) -> anyhow::Result<Vec<Acked>> {
    let c = client();
    let mut acked = Vec::new();
    let mut v = v0;
    for (i, hour) in [0, 1, 3, 2, 0].into_iter().enumerate() {
        // Hour 2 after hour 3 and hour 0 again: late events go to their own hour.
        for p in 0..partitions {
            let records: Vec<(i64, i64)> = (0..per_hour)
                .map(|k| {
                    v += 1;
                    (BASE + hour * HOUR + k * 1000 + p as i64, v)
                })
                .collect();
            let edge = edges[(i + p as usize) % edges.len()];
            acked.extend(send_acked(&c, &edge.url(), table, p, &records).await?);
        }
    }
    Ok(acked)
}

fn count_on_date(acked_ts: &[(i64, Acked)], date_start: i64) -> i64 {
    acked_ts.iter().filter(|(ts, _)| (date_start..date_start + 24 * HOUR).contains(ts)).count()
        as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_engine_reads_exactly_the_acknowledged_set() -> anyhow::Result<()> {
    let node = Node::start(&[("ZOMBI_NODE__FLUSH__INTERVAL_MS", "200")]).await?;
    let e1 = Edge::start(&node.url(), &[]).await?;
    let e2 = Edge::start(&node.url(), &[]).await?;
    let acked = write_spread(&[&e1, &e2], "events", 3, 40, 0).await?;
    // Timestamps are recomputed the way write_spread makes them, to count one date.
    let mut with_ts = Vec::new();
    for (i, hour) in [0i64, 1, 3, 2, 0].into_iter().enumerate() {
        for p in 0..3u32 {
            for k in 0..40i64 {
                let idx = i * 120 + p as usize * 40 + k as usize;
                with_ts.push((BASE + hour * HOUR + k * 1000 + p as i64, acked[idx]));
            }
        }
    }
    let flushed = node.flush("events").await?;
    assert!(flushed["snapshot_id"].is_i64(), "{flushed}");
    let w = node.watermark("events").await?;
    assert_eq!(w["watermarks"], w["high_water_marks"], "flush commits everything acknowledged");

    let jan2 = BASE + 2 * HOUR; // 2026-01-02T00:00Z
    let mut want = expected(&acked);
    want.date_count = Some(count_on_date(&with_ts, jan2));
    assert!(want.date_count.unwrap() > 0 && want.date_count.unwrap() < want.count);

    let opts = EngineOpts { date: Some("2026-01-02".into()), ..Default::default() };
    let got =
        engines::python_engines(&node.url(), "events", &["pyiceberg", "duckdb", "spark"], &opts)?;
    for engine in ["pyiceberg", "duckdb", "spark"] {
        assert_eq!(figures(&got[engine])?, want, "{engine} disagrees: {}", got[engine]);
    }
    // Partition pruning: the date filter plans only that date's files.
    let py = &got["pyiceberg"];
    assert!(py["date_files"].as_i64() < py["all_files"].as_i64(), "no pruning: {py}");
    assert!(py["date_files"].as_i64() > Some(0));

    let rows = rows_of(&iceberg_rust_rows(&node.url(), "events", None).await?);
    let mut rust = expected(&rows);
    rust.date_count = want.date_count;
    assert_eq!(rust, want, "iceberg-rust disagrees");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crashes_at_every_flush_step_leave_no_duplicate_and_no_gap() -> anyhow::Result<()> {
    for point in
        ["flush-after-write", "flush-before-commit", "flush-after-commit", "flush-after-watermark"]
    {
        // Flushes happen on request only, so the crash comes exactly at the flush below.
        let mut node = Node::start(&[("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000")]).await?;
        let edge = Edge::start(&node.url(), &[]).await?;
        // A first commit without the failpoint, so the crash hits a table with history.
        let mut acked = write_spread(&[&edge], "crashy", 2, 10, 0).await?;
        node.flush("crashy").await?;
        node.set_env("FAILPOINTS", Some(&format!("{point}=return")));
        node.restart().await?;
        // One request: acknowledged before the flush that crashes on it.
        let records: Vec<(i64, i64)> =
            (0..30).map(|k| (BASE + (k % 3) * HOUR + k, 1000 + k)).collect();
        acked.extend(send_acked(&client(), &edge.url(), "crashy", 1, &records).await?);
        // The node dies inside this flush, so the request itself fails.
        assert!(node.flush("crashy").await.is_err(), "{point}: the flush must not complete");
        let status = node.wait_exit(Duration::from_secs(60)).await?;
        assert!(!status.success(), "{point}: the node must die at the failpoint");
        node.set_env("FAILPOINTS", None);
        node.restart().await?;
        acked.extend(
            wait_for("writes after the crash", Duration::from_secs(30), || async {
                write_spread(&[&edge], "crashy", 2, 5, 5000).await.ok()
            })
            .await?,
        );
        node.flush("crashy").await?;
        assert_exact(&node, "crashy", &acked, false)
            .await
            .map_err(|e| anyhow::anyhow!("{point}: {e}"))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_during_flushes_keeps_iceberg_exact() -> anyhow::Result<()> {
    let mut node = Node::start(&[("ZOMBI_NODE__FLUSH__INTERVAL_MS", "20")]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let c = client();
    let mut acked: Vec<Acked> = Vec::new();
    let mut v = 0;
    for round in 0..3 {
        // Keep writing while the flusher commits every 20 ms, then kill mid-stream.
        let deadline = std::time::Instant::now() + Duration::from_millis(1500);
        let mut i = 0i64;
        while std::time::Instant::now() < deadline && i < 2000 {
            let records: Vec<(i64, i64)> = (0..20)
                .map(|k| {
                    v += 1;
                    (BASE + (i % 3) * HOUR + k, v)
                })
                .collect();
            if let Ok(a) = send_acked(&c, &edge.url(), "busy", (i % 2) as u32, &records).await {
                acked.extend(a);
            }
            i += 1;
        }
        node.kill9();
        node.restart().await?;
        eprintln!("round {round}: {} acknowledged so far", acked.len());
    }
    node.flush("busy").await?;
    assert_exact(&node, "busy", &acked, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_watermarks_plus_hot_reads_give_every_event_once() -> anyhow::Result<()> {
    // Flushing only on request: the interval is an hour.
    let node = Node::start(&[("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000")]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let mut acked = write_spread(&[&edge], "rt", 2, 15, 0).await?;
    let s1 = node.flush("rt").await?;
    let more = write_spread(&[&edge], "rt", 3, 7, 10_000).await?;
    acked.extend(more.iter().copied());

    let read = |snapshot: Value| {
        let node = &node;
        async move {
            let id = snapshot["snapshot_id"].as_i64().unwrap();
            let mut rows = rows_of(&iceberg_rust_rows(&node.url(), "rt", Some(id)).await?);
            for (p, w) in snapshot["watermarks"].as_object().unwrap() {
                let (status, body) =
                    node.hot("rt", &format!("partition={p}&from_sequence={w}")).await?;
                anyhow::ensure!(status == 200, "hot {p}: {status}");
                rows.extend(rows_of(&read_ipc(&body)?));
            }
            // Partitions the snapshot had not seen yet start at 0.
            let w = node.watermark("rt").await?;
            for p in w["high_water_marks"].as_object().unwrap().keys() {
                if snapshot["watermarks"].get(p).is_none() {
                    let (_, body) =
                        node.hot("rt", &format!("partition={p}&from_sequence=0")).await?;
                    rows.extend(rows_of(&read_ipc(&body)?));
                }
            }
            Ok::<_, anyhow::Error>(rows)
        }
    };
    let mut got = read(s1.clone()).await?;
    got.sort();
    let mut want = acked.clone();
    want.sort();
    assert_eq!(got, want, "S1 + hot from W1");
    // The default hot read starts at the committed watermarks.
    let (status, body) = node.hot("rt", "").await?;
    assert_eq!(status, 200);
    let mut hot = rows_of(&read_ipc(&body)?);
    hot.sort();
    let mut more_sorted = more.clone();
    more_sorted.sort();
    assert_eq!(hot, more_sorted);
    // Parquet form carries the same rows.
    let (status, parquet) = node.hot("rt", "format=parquet").await?;
    assert_eq!(status, 200);
    assert_eq!(&parquet[..4], b"PAR1");

    let s2 = node.flush("rt").await?;
    for s in [s1, s2] {
        let mut got = read(s).await?;
        got.sort();
        assert_eq!(got, want, "a recent snapshot plus hot stays exact after more flushes");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flushed_events_are_deleted_after_retention() -> anyhow::Result<()> {
    let node = Node::start(&[
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "100"),
        ("ZOMBI_NODE__FLUSH__RETENTION_SECS", "1"),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let c = client();
    let mut acked = Vec::new();
    let started = std::time::Instant::now();
    let mut v = 0;
    let mut max_retained = 0u64;
    let mut floor_during_ingest = 0u64;
    // Sustained ingest for 4 s (bounded in count too).
    for i in 0..4000i64 {
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
        let records: Vec<(i64, i64)> = (0..25)
            .map(|k| {
                v += 1;
                (BASE + k, v)
            })
            .collect();
        acked.extend(send_acked(&c, &edge.url(), "steady", (i % 2) as u32, &records).await?);
        if i % 50 == 0 {
            let stats = node.stats().await?;
            if let Some(f) = stats["tables"]["steady"]["flush"].as_object() {
                let hwm: u64 = stats["tables"]["steady"]["partitions"]
                    .as_object()
                    .unwrap()
                    .values()
                    .map(|p| p["high_water_mark"].as_u64().unwrap())
                    .sum();
                let floor: u64 =
                    f["floors"].as_object().unwrap().values().map(|x| x.as_u64().unwrap()).sum();
                max_retained = max_retained.max(hwm - floor);
                floor_during_ingest = floor;
            }
        }
    }
    let total = acked.len() as u64;
    // Once writes stop, everything gets committed and, a second later, deleted.
    wait_for("the hot store to drain", Duration::from_secs(30), || async {
        let stats = node.stats().await.ok()?;
        let t = &stats["tables"]["steady"];
        let f = t["flush"].as_object()?;
        let hwm: u64 = t["partitions"]
            .as_object()?
            .values()
            .filter_map(|p| p["high_water_mark"].as_u64())
            .sum();
        let floor: u64 = f["floors"].as_object()?.values().filter_map(|x| x.as_u64()).sum();
        (hwm == total && floor == total).then_some(())
    })
    .await?;
    let left = node.dump("steady")?;
    assert!(left.is_empty(), "RocksDB still holds {} flushed events", left.len());
    eprintln!("sustained ingest: {total} events; at most {max_retained} held in RocksDB at once");
    assert!(floor_during_ingest > 0, "deletion never happened during ingest");
    assert_exact(&node, "steady", &acked, false).await?;
    // Reading hot data below the deletion floor is refused rather than silently partial.
    let (status, _) = node.hot("steady", "partition=0&from_sequence=0").await?;
    assert_eq!(status, 410);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_table_backs_off_without_stalling_others() -> anyhow::Result<()> {
    let node = Node::start(&[
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "100"),
        ("ZOMBI_NODE__FLUSH__BACKOFF_MAX_MS", "500"),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let mut a = write_spread(&[&edge], "broken", 1, 5, 0).await?;
    let mut b = write_spread(&[&edge], "healthy", 1, 5, 0).await?;
    node.flush("broken").await?;
    node.flush("healthy").await?;
    // Make the broken table's data directory unwritable: a file where the directory was.
    let data = node.data_dir().join("warehouse/zombi/broken/data");
    let aside = node.data_dir().join("warehouse/zombi/broken/data.aside");
    std::fs::rename(&data, &aside)?;
    std::fs::write(&data, b"not a directory")?;
    a.extend(write_spread(&[&edge], "broken", 1, 5, 100).await?);
    b.extend(write_spread(&[&edge], "healthy", 1, 5, 100).await?);
    node.wait_flushed("healthy", Duration::from_secs(30)).await?;
    let stats = wait_for("the failure to show in /stats", Duration::from_secs(30), || async {
        let s = node.stats().await.ok()?;
        (s["tables"]["broken"]["flush"]["consecutive_failures"].as_u64()? >= 2).then_some(s)
    })
    .await?;
    assert!(stats["tables"]["broken"]["flush"]["last_error"].is_string(), "{stats}");
    let metrics = client().get(format!("{}/metrics", node.url())).send().await?.text().await?;
    assert!(metrics.contains("zombi_node_flush_total{result=\"error\"}"), "{metrics}");
    // Repair: the retry picks up exactly where it stopped.
    std::fs::remove_file(&data)?;
    std::fs::rename(&aside, &data)?;
    node.wait_flushed("broken", Duration::from_secs(30)).await?;
    assert_exact(&node, "broken", &a, false).await?;
    assert_exact(&node, "healthy", &b, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thresholds_policy_holds_files_until_a_threshold() -> anyhow::Result<()> {
    // `batched` commits every third data file (or after 10 minutes); `events` keeps the
    // default of one snapshot per flush.
    let node = Node::start(&[
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "50"),
        (
            "ZOMBI_NODE__TABLES",
            r#"{batched={snapshot={mode="thresholds",max_files=3,max_age_ms=600000}}}"#,
        ),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let c = client();
    let mut acked = Vec::new();
    for round in 1..=3u64 {
        acked.extend(send_acked(&c, &edge.url(), "batched", 0, &[(BASE, round as i64)]).await?);
        let status = wait_for("the round's data file", Duration::from_secs(30), || async {
            let s = node.stats().await.ok()?;
            let f = s["tables"]["batched"]["flush"].clone();
            let committed = f["commits"].as_u64()? > 0;
            (f["pending_files"].as_u64()? == round || committed).then_some(f)
        })
        .await?;
        if round < 3 {
            assert_eq!(status["commits"], 0, "no snapshot before the threshold: {status}");
            assert!(node.watermark("batched").await?["snapshot_id"].is_null());
        }
    }
    let w = node.wait_flushed("batched", Duration::from_secs(30)).await?;
    assert_eq!(w["watermarks"]["0"], 3);
    let stats = node.stats().await?;
    assert_eq!(stats["tables"]["batched"]["flush"]["commits"], 1, "one snapshot for three files");
    assert_exact(&node, "batched", &acked, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panicking_table_flusher_is_restarted() -> anyhow::Result<()> {
    // The first flush cycle of the process panics; the supervisor restarts the table's loop.
    let node = Node::start(&[
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "50"),
        ("FAILPOINTS", "flush-cycle=1*panic"),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let acked = write_spread(&[&edge], "phoenix", 2, 5, 0).await?;
    node.wait_flushed("phoenix", Duration::from_secs(30)).await?;
    let metrics = client().get(format!("{}/metrics", node.url())).send().await?.text().await?;
    assert!(metrics.contains("zombi_node_flush_panics_total 1"), "{metrics}");
    assert_exact(&node, "phoenix", &acked, false).await
}
