//! Table maintenance: compaction, manifest merging, snapshot expiry and file cleanup keep
//! every engine's answer exact, race the flusher safely, survive crashes at every step and
//! keep metadata bounded.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use zombi_tests::engines::{
    self, EngineOpts, assert_exact, expected, figures, files_under, iceberg_rust_rows, read_ipc,
    referenced_files, rows_of,
};
use zombi_tests::producer::{Acked, send_acked};
use zombi_tests::{Edge, Node, client, wait_for};

const HOUR: i64 = 3_600_000;
/// 2026-01-01T22:00:00Z: four hours from here span two dates.
const BASE: i64 = 1_767_304_800_000;
const HOURS: i64 = 4;
const PARTITIONS: u32 = 2;

/// Flushes happen on request only, and maintenance only on `POST /compact`.
const MANUAL: [(&str, &str); 2] =
    [("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000"), ("ZOMBI_NODE__MAINTENANCE__ENABLED", "false")];

/// A producer writing one event at a time to partition 0 of `table` (event `i` at
/// `time(i)`, value `i`), 3 ms apart, until `stop` is set, `limit` has passed or it has
/// written `max` events; answers the acknowledged events.
fn steady_writer(
    edge: &Edge,
    table: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    (limit, max): (Duration, i64),
    time: fn(i64) -> i64,
) -> tokio::task::JoinHandle<anyhow::Result<Vec<Acked>>> {
    let url = edge.url();
    let started = Instant::now();
    tokio::spawn(async move {
        let c = client();
        let mut acked = Vec::new();
        let mut i = 0i64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed)
            && started.elapsed() < limit
            && i < max
        {
            acked.extend(send_acked(&c, &url, table, 0, &[(time(i), i)]).await?);
            i += 1;
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        anyhow::Ok(acked)
    })
}

/// `rounds` rounds of `per` events per (hour, partition), each round its own commit, so
/// every hour gets one small file per round.
async fn write_rounds(
    node: &Node,
    edge: &Edge,
    table: &str,
    rounds: i64,
    per: i64,
    v0: i64,
) -> anyhow::Result<Vec<Acked>> {
    let c = client();
    let mut acked = Vec::new();
    let mut v = v0;
    for round in 0..rounds {
        for hour in 0..HOURS {
            for p in 0..PARTITIONS {
                let records: Vec<(i64, i64)> = (0..per)
                    .map(|k| {
                        v += 1;
                        (BASE + hour * HOUR + (round * per + k) * 1000 + p as i64, v)
                    })
                    .collect();
                acked.extend(send_acked(&c, &edge.url(), table, p, &records).await?);
            }
        }
        node.flush(table).await?;
    }
    Ok(acked)
}

fn data_dir_files(node: &Node, table: &str, sub: &str) -> BTreeSet<String> {
    let dir = node.data_dir().join("warehouse/zombi").join(table).join(sub);
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    files_under(&dir)
}

fn parquet_on_disk(node: &Node, table: &str) -> BTreeSet<String> {
    data_dir_files(node, table, "data").into_iter().filter(|f| f.ends_with(".parquet")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compaction_keeps_every_engine_exact_and_time_travel_and_hot_reads_working()
-> anyhow::Result<()> {
    let node = Node::start(&MANUAL).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let acked = write_rounds(&node, &edge, "events", 12, 5, 0).await?;
    let rounds_files = 12 * HOURS;
    let jan2 = BASE + 2 * HOUR;
    let mut want = expected(&acked);
    want.date_count = Some(acked.len() as i64 / 2);
    let opts = EngineOpts { date: Some("2026-01-02".into()), ..Default::default() };

    let before = engines::python_engines(&node.url(), "events", &["pyiceberg", "duckdb"], &opts)?;
    for engine in ["pyiceberg", "duckdb"] {
        assert_eq!(figures(&before[engine])?, want, "{engine} before: {}", before[engine]);
    }
    // One file per hour per round (the flusher's first cycle at table creation may add one).
    let files_before = before["pyiceberg"]["all_files"].as_i64().unwrap();
    assert!(files_before >= rounds_files, "{}", before["pyiceberg"]);
    let pre = node.watermark("events").await?;
    let on_disk_before = parquet_on_disk(&node, "events");
    assert_eq!(on_disk_before.len() as i64, files_before);

    let report = node.compact("events").await?;
    assert_eq!(report["files_rewritten"], files_before, "{report}");
    assert_eq!(report["files_written"], HOURS, "one file per hour: {report}");
    assert_eq!(report["partitions_compacted"], HOURS, "{report}");
    assert_ne!(report["snapshot_id"], pre["snapshot_id"], "{report}");

    // Same rows in every engine, a quarter of the files.
    let after =
        engines::python_engines(&node.url(), "events", &["pyiceberg", "duckdb", "spark"], &opts)?;
    for engine in ["pyiceberg", "duckdb", "spark"] {
        assert_eq!(figures(&after[engine])?, want, "{engine} after: {}", after[engine]);
    }
    assert_eq!(after["pyiceberg"]["all_files"], HOURS, "{}", after["pyiceberg"]);
    assert_eq!(after["pyiceberg"]["date_files"], 2, "pruning by date: {}", after["pyiceberg"]);
    let rust = rows_of(&iceberg_rust_rows(&node.url(), "events", None).await?);
    assert_eq!(expected(&rust).pair_checksum, want.pair_checksum);
    assert_exact(&node, "events", &acked, false).await?;
    // Each merged file is sorted by (timestamp_ms, sequence): a batch comes from one file.
    for b in iceberg_rust_rows(&node.url(), "events", None).await? {
        let col = |name: &str| {
            let c = b.column(b.schema().index_of(name).unwrap()).clone();
            c.as_any().downcast_ref::<arrow_array::Int64Array>().unwrap().values().to_vec()
        };
        let keys: Vec<(i64, i64)> = col("timestamp_ms").into_iter().zip(col("sequence")).collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "a compacted file is not sorted");
    }
    // A replace snapshot with correct totals and the watermark map carried over.
    let table: serde_json::Value = client()
        .get(format!("{}/v1/namespaces/zombi/tables/events", node.url()))
        .send()
        .await?
        .json()
        .await?;
    let current = &table["metadata"]["current-snapshot-id"];
    let snapshot = table["metadata"]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| &s["snapshot-id"] == current)
        .unwrap();
    let summary = &snapshot["summary"];
    assert_eq!(summary["operation"], "replace", "{summary}");
    assert_eq!(summary["total-records"], acked.len().to_string(), "{summary}");
    assert_eq!(summary["total-data-files"], HOURS.to_string(), "{summary}");
    assert_eq!(summary["deleted-data-files"], files_before.to_string(), "{summary}");
    for (p, w) in pre["watermarks"].as_object().unwrap() {
        assert_eq!(summary[format!("zombi.watermark.{p}")], w.to_string(), "{summary}");
    }

    // Time travel to the retained pre-compaction snapshot reads the old files.
    let old = EngineOpts { snapshot_id: pre["snapshot_id"].as_i64(), ..Default::default() };
    let travel = engines::python_engines(&node.url(), "events", &["pyiceberg"], &old)?;
    let mut want_all = want.clone();
    want_all.date_count = None;
    assert_eq!(figures(&travel["pyiceberg"])?, want_all, "{}", travel["pyiceberg"]);
    assert!(on_disk_before.is_subset(&parquet_on_disk(&node, "events")));

    // The watermark map carries over: cold from the new snapshot + hot from its watermarks
    // gives every event once, also for events acknowledged after the compaction.
    let w = node.watermark("events").await?;
    assert_eq!(w["watermarks"], pre["watermarks"], "{w}");
    let c = client();
    let mut all = acked.clone();
    for p in 0..PARTITIONS {
        let records: Vec<(i64, i64)> = (0..7).map(|k| (jan2 + k * 1000, 10_000 + k)).collect();
        all.extend(send_acked(&c, &edge.url(), "events", p, &records).await?);
    }
    let mut seen = rows_of(&iceberg_rust_rows(&node.url(), "events", None).await?);
    for (p, from) in w["watermarks"].as_object().unwrap() {
        let (status, body) =
            node.hot("events", &format!("partition={p}&from_sequence={from}")).await?;
        assert_eq!(status, 200);
        seen.extend(rows_of(&read_ipc(&body)?));
    }
    assert!(engines::duplicates(&seen).is_empty());
    assert_eq!(expected(&seen), expected(&all), "cold + hot after compaction");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compaction_racing_a_20ms_flusher_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let node = Node::start(&[
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "20"),
        ("ZOMBI_NODE__MAINTENANCE__INTERVAL_SECS", "1"),
        ("ZOMBI_NODE__MAINTENANCE__MIN_INPUT_FILES", "2"),
        ("ZOMBI_NODE__MAINTENANCE__MAX_MANIFESTS", "8"),
        ("ZOMBI_NODE__MAINTENANCE__MAX_SNAPSHOTS", "10"),
        ("ZOMBI_NODE__MAINTENANCE__FILE_GRACE_SECS", "0"),
        ("ZOMBI_NODE__MAINTENANCE__CLEANUP_INTERVAL_SECS", "0"),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let deadline = Instant::now() + Duration::from_secs(8);
    let writers: Vec<_> = (0..PARTITIONS)
        .map(|p| {
            let url = edge.url();
            tokio::spawn(async move {
                let c = client();
                let mut acked = Vec::new();
                let mut i = 0i64;
                // Bounded in time and count.
                while Instant::now() < deadline && i < 4_000 {
                    let records: Vec<(i64, i64)> = (0..5)
                        .map(|k| (BASE + ((i + k) % 3) * HOUR + i * 10, i * 10 + k))
                        .collect();
                    acked.extend(send_acked(&c, &url, "busy", p, &records).await?);
                    i += 5;
                }
                anyhow::Ok(acked)
            })
        })
        .collect();
    wait_for("the first write", Duration::from_secs(30), || async {
        (node.table_events("busy").await.ok()? > 0).then_some(())
    })
    .await?;
    // Explicit runs on top of the background ones, while the writers write.
    let mut compactions = 0;
    while Instant::now() < deadline {
        let report = node.compact("busy").await?;
        compactions += report["files_rewritten"].as_u64().unwrap_or(0);
    }
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await??);
    }
    node.wait_flushed("busy", Duration::from_secs(30)).await?;
    assert_exact(&node, "busy", &acked, false).await?;
    assert!(compactions > 0, "no file was compacted");
    let stats = node.stats().await?;
    let flush = &stats["tables"]["busy"]["flush"];
    assert_eq!(flush["consecutive_failures"], 0, "{flush}");
    assert!(flush["last_error"].is_null(), "{flush}");
    let metrics = client().get(format!("{}/metrics", node.url())).send().await?.text().await?;
    assert!(
        !metrics.lines().any(|l| l.starts_with("zombi_node_commit_total{result=\"error\"}")),
        "a flusher commit failed:\n{metrics}"
    );
    let m = &stats["tables"]["busy"]["maintenance"];
    assert!(m["runs"].as_u64() > Some(1), "{m}");
    assert!(m["files_rewritten"].as_u64() > Some(0), "{m}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crashes_at_every_maintenance_step_leave_the_table_exact_and_orphans_are_removed()
-> anyhow::Result<()> {
    for point in [
        "flush-after-write",
        "compact-after-rewrite",
        "compact-before-commit",
        "compact-after-commit",
        "compact-during-cleanup",
    ] {
        let mut env = MANUAL.to_vec();
        env.extend([
            ("ZOMBI_NODE__MAINTENANCE__MAX_SNAPSHOTS", "1"),
            ("ZOMBI_NODE__MAINTENANCE__FILE_GRACE_SECS", "0"),
        ]);
        let mut node = Node::start(&env).await?;
        let edge = Edge::start(&node.url(), &[]).await?;
        let mut acked = write_rounds(&node, &edge, "crashy", 3, 4, 0).await?;

        node.set_env("FAILPOINTS", Some(&format!("{point}=return")));
        node.restart().await?;
        let c = client();
        // The flush crash leaves written, never committed files behind.
        if point == "flush-after-write" {
            let records: Vec<(i64, i64)> = (0..4).map(|k| (BASE + k * 1000, 500 + k)).collect();
            acked.extend(send_acked(&c, &edge.url(), "crashy", 0, &records).await?);
            let r = c.post(format!("{}/tables/crashy/flush", node.url())).send().await;
            assert!(r.is_err() || !r.unwrap().status().is_success(), "{point}: flush survived");
        } else {
            let r = c.post(format!("{}/tables/crashy/compact", node.url())).send().await;
            assert!(r.is_err() || !r.unwrap().status().is_success(), "{point}: compact survived");
        }
        node.wait_exit(Duration::from_secs(30)).await?;
        node.set_env("FAILPOINTS", None);
        node.restart().await?;

        node.flush("crashy").await?;
        assert_exact(&node, "crashy", &acked, false).await?;
        // A later run finishes the job and removes what the crash left behind.
        let report = node.compact("crashy").await?;
        assert_exact(&node, "crashy", &acked, false).await?;
        let refs = referenced_files(&node.url(), "crashy", &EngineOpts::default()).await?;
        assert_eq!(refs.snapshots, 1, "{point}: {report}");
        assert_eq!(
            parquet_on_disk(&node, "crashy"),
            refs.current_data_files,
            "{point}: data files on disk are exactly the referenced ones ({report})"
        );
        let avro: BTreeSet<String> = data_dir_files(&node, "crashy", "metadata")
            .into_iter()
            .filter(|f| f.ends_with(".avro"))
            .collect();
        assert_eq!(avro, refs.manifest_files, "{point}: manifests on disk ({report})");
        let mut want = expected(&acked);
        want.date_count = None;
        // Spark too, once: its session is the slowest part of a check.
        let readers: &[&str] = if point == "compact-during-cleanup" {
            &["pyiceberg", "duckdb", "spark"]
        } else {
            &["pyiceberg", "duckdb"]
        };
        let got = engines::python_engines(&node.url(), "crashy", readers, &EngineOpts::default())?;
        for engine in readers {
            assert_eq!(figures(&got[*engine])?, want, "{point}: {engine}: {}", got[*engine]);
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_small_commits_keep_metadata_and_files_bounded() -> anyhow::Result<()> {
    const COMMITS: u64 = 1_200;
    let node = Node::start(&[
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "10"),
        ("ZOMBI_NODE__MAINTENANCE__INTERVAL_SECS", "1"),
        ("ZOMBI_NODE__MAINTENANCE__MIN_INPUT_FILES", "4"),
        ("ZOMBI_NODE__MAINTENANCE__MAX_MANIFESTS", "16"),
        ("ZOMBI_NODE__MAINTENANCE__MAX_SNAPSHOTS", "20"),
        ("ZOMBI_NODE__MAINTENANCE__FILE_GRACE_SECS", "0"),
        ("ZOMBI_NODE__MAINTENANCE__CLEANUP_INTERVAL_SECS", "0"),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Small writes, one at a time, so nearly every 10 ms cycle commits a few events.
    let bounds = (Duration::from_secs(200), 200_000);
    let writer = steady_writer(&edge, "aging", stop.clone(), bounds, |i| BASE + (i % 4) * HOUR + i);
    let (max_metadata, max_snapshots) = (Cell::new(0u64), Cell::new(0u64));
    let commits = wait_for("enough commits", Duration::from_secs(200), || async {
        let s = node.stats().await.ok()?;
        let t = &s["tables"]["aging"];
        let m = &t["maintenance"];
        max_metadata.set(max_metadata.get().max(m["metadata_json_bytes"].as_u64().unwrap_or(0)));
        max_snapshots.set(max_snapshots.get().max(m["snapshots"].as_u64().unwrap_or(0)));
        let n = t["flush"]["commits"].as_u64()?;
        (n >= COMMITS).then_some(n)
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = writer.await??;
    let commits = commits?;
    node.wait_flushed("aging", Duration::from_secs(30)).await?;
    let report = node.compact("aging").await?;
    assert_exact(&node, "aging", &acked, false).await?;

    let refs = referenced_files(&node.url(), "aging", &EngineOpts::default()).await?;
    assert!(refs.snapshots <= 20, "{} snapshots retained after {commits} commits", refs.snapshots);
    assert!(refs.current_manifests <= 16, "{} manifests ({report})", refs.current_manifests);
    assert!(refs.metadata_json_bytes < 1 << 20, "metadata {} bytes", refs.metadata_json_bytes);
    // Between runs (1 s apart) the flusher adds snapshots; expiry brings them back down.
    let (max_metadata, max_snapshots) = (max_metadata.get(), max_snapshots.get());
    assert!(max_metadata < 1 << 20, "metadata reached {max_metadata} bytes while aging");
    assert!(max_snapshots < 20 + 200, "{max_snapshots} snapshots while aging");
    // Files of expired snapshots are gone; every file of a retained one is present.
    let data = parquet_on_disk(&node, "aging");
    assert!(refs.data_files.is_subset(&data), "a retained data file is missing");
    assert_eq!(data, refs.data_files, "data files beyond the retained snapshots remain");
    let meta = data_dir_files(&node, "aging", "metadata");
    let avro: BTreeSet<String> = meta.iter().filter(|f| f.ends_with(".avro")).cloned().collect();
    assert_eq!(avro, refs.manifest_files, "manifests beyond the retained snapshots remain");
    // The warehouse pointer's `v<N>.metadata.json` copies (docs/realtime.md) live exactly as
    // long as the metadata files they copy.
    let (copies, json): (BTreeSet<String>, BTreeSet<String>) = meta
        .iter()
        .filter(|f| f.ends_with(".metadata.json"))
        .cloned()
        .partition(|f| f.rsplit('/').next().is_some_and(|n| n.starts_with('v')));
    assert_eq!(json, refs.metadata_files, "metadata files beyond the metadata log remain");
    assert!(json.len() <= 101, "{} metadata files", json.len());
    let copied: BTreeSet<String> = json
        .iter()
        .map(|f| {
            let (dir, name) = f.rsplit_once('/').unwrap();
            let version: u64 = name.split('-').next().unwrap().parse().unwrap();
            format!("{dir}/v{version}.metadata.json")
        })
        .collect();
    assert_eq!(copies, copied, "the version-hint copies follow the metadata log");
    // Files per hour stay few: one file per hour after the explicit run.
    assert!(refs.current_data_files.len() <= 4, "{} data files", refs.current_data_files.len());
    Ok(())
}

/// A table committing every few milliseconds is maintained as soon as it holds twice the
/// snapshots expiry keeps, though its interval is a day: its metadata stays small without
/// retuning maintenance.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_that_commits_fast_is_maintained_before_its_interval() -> anyhow::Result<()> {
    let node = Node::start(&[
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "10"),
        ("ZOMBI_NODE__MAINTENANCE__INTERVAL_SECS", "86400"),
        ("ZOMBI_NODE__MAINTENANCE__MAX_SNAPSHOTS", "5"),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bounds = (Duration::from_secs(60), 50_000);
    let writer = steady_writer(&edge, "fast", stop.clone(), bounds, |i| BASE + i);
    let maintained =
        wait_for("runs brought forward by the count", Duration::from_secs(60), || async {
            let s = node.stats().await.ok()?;
            let m = s["tables"]["fast"]["maintenance"].clone();
            (m["runs"].as_u64()? >= 2 && m["snapshots_expired"].as_u64()? > 0).then_some(m)
        })
        .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = writer.await??;
    let maintained = maintained?;
    // Measured right after a run: about what expiry keeps.
    assert!(maintained["snapshots"].as_u64() <= Some(10), "{maintained}");
    node.wait_flushed("fast", Duration::from_secs(30)).await?;
    assert_exact(&node, "fast", &acked, false).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn maintenance_on_the_s3_warehouse() -> anyhow::Result<()> {
    let moto = zombi_tests::moto::start().await?;
    let mut env = MANUAL.to_vec();
    env.extend(moto.node_env());
    env.extend([
        ("ZOMBI_NODE__MAINTENANCE__MAX_SNAPSHOTS", "1"),
        ("ZOMBI_NODE__MAINTENANCE__FILE_GRACE_SECS", "0"),
    ]);
    let node = Node::start(&env).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let acked = write_rounds(&node, &edge, "s3m", 4, 3, 0).await?;
    let files_before =
        referenced_files(&node.url(), "s3m", &moto.engine_opts()).await?.current_data_files.len();
    assert!(files_before >= 4 * HOURS as usize);
    let report = node.compact("s3m").await?;
    assert!(report["files_deleted"].as_u64() > Some(0), "{report}");
    assert_eq!(report["files_rewritten"], files_before, "{report}");
    assert_eq!(report["files_written"], HOURS, "{report}");
    // Exact: count, distinct pairs and their checksum all match the acknowledged set.
    let mut want = expected(&acked);
    want.date_count = None;
    let got =
        engines::python_engines(&node.url(), "s3m", &["pyiceberg", "duckdb"], &moto.engine_opts())?;
    for engine in ["pyiceberg", "duckdb"] {
        assert_eq!(figures(&got[engine])?, want, "{engine}: {}", got[engine]);
    }
    // The bucket holds exactly the live data files.
    let refs = referenced_files(&node.url(), "s3m", &moto.engine_opts()).await?;
    let keys = moto.list("warehouse", "lake/zombi/s3m/data/").await?;
    let parquet: BTreeSet<String> = keys
        .into_iter()
        .filter(|k| k.ends_with(".parquet"))
        .map(|k| format!("s3://warehouse/{k}"))
        .collect();
    assert_eq!(parquet, refs.current_data_files);
    Ok(())
}
