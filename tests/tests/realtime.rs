//! The node's side of real-time reads (SPEC §7, docs/realtime.md): hot segments plus the
//! snapshot they are listed against hold every acknowledged event exactly once, leases
//! keep planned segments readable past retention, and the warehouse's `version-hint.text`
//! always names the current metadata.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;
use zombi_tests::driver::Driver;
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
        // Zombi's default spec: (event_date, event_hour).
        assert_eq!(s["spec_id"], 0);
        let hour = s["partition_values"][1].as_i64().unwrap();
        assert_eq!(s["lower_bounds"]["10"], hour);
        assert_eq!(s["upper_bounds"]["10"], hour);
        assert_eq!(s["lower_bounds"]["9"], s["partition_values"][0]);
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
    let (status, _, _) =
        read_segment(&node, "/tables/rt/hot/segments/0/5-4/0-5b5d.parquet").await?;
    assert_eq!(status, 400);
    let (status, _, _) =
        read_segment(&node, "/tables/rt/hot/segments/0/0-99999/0-5b5d.parquet").await?;
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
        read_segment(&node, "/tables/lease/hot/segments/0/0-10/0-5b5d.parquet").await?;
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
    // Each flush moves the hint to the version the catalog serves, whose copy is the same file.
    for round in 0..3 {
        write(&edge, table, 1, &[round], 5, &mut v).await?;
        let flushed = node.flush(table).await?;
        let hint = std::fs::read_to_string(metadata_dir.join("version-hint.text"))?;
        assert!(hint.bytes().all(|b| b.is_ascii_digit()), "{hint:?}: a bare number");
        let copy: Value = serde_json::from_slice(&std::fs::read(
            metadata_dir.join(format!("v{hint}.metadata.json")),
        )?)?;
        assert_eq!(copy["current-snapshot-id"], flushed["snapshot_id"], "round {round}");
        let current: Vec<String> = std::fs::read_dir(&metadata_dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(&format!("{:05}-", hint.parse::<u32>().unwrap())))
            .collect();
        assert_eq!(current.len(), 1, "v{hint} copies version {hint}");
        // The copy is a hard link to the committed file: its bytes were written once.
        use std::os::unix::fs::MetadataExt as _;
        let inode = |name: &str| std::fs::metadata(metadata_dir.join(name)).map(|m| m.ino());
        assert_eq!(inode(&format!("v{hint}.metadata.json"))?, inode(&current[0])?, "a link");
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

/// (count, distinct pairs, pair checksum, sum of v) of a set of acknowledged events.
fn expect(acked: &[Acked]) -> Value {
    let pairs: std::collections::BTreeSet<(u32, u64)> = acked.iter().map(|a| (a.0, a.1)).collect();
    serde_json::json!({
        "count": acked.len(),
        "distinct": pairs.len(),
        "pair_checksum": acked.iter().map(|a| a.0 as u64 * 1_000_003 + a.1).sum::<u64>(),
        "sum_v": acked.iter().map(|a| a.2).sum::<i64>(),
    })
}

fn assert_figures(label: &str, got: &Value, want: &Value) {
    for key in ["count", "distinct", "pair_checksum", "sum_v"] {
        assert_eq!(got[key], want[key], "{label}: {key} in {got}");
    }
}

/// A server that accepts connections and never answers (a hanging node).
fn hanging_server() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(1000) {
            held.extend(stream.ok());
        }
    });
    Ok(url)
}

/// A table with two snapshots and hot rows in committed and new hours, as the Spark driver
/// expects it: (acked, first snapshot's rows, first snapshot id, rows committed).
async fn spark_scenario(
    node: &Node,
    edge: &Edge,
    table: &str,
) -> anyhow::Result<(Vec<Acked>, usize, i64, usize)> {
    let mut v = 0;
    let mut acked = write(edge, table, 3, &[0, 1], 10, &mut v).await?;
    let first = node.flush(table).await?["snapshot_id"].as_i64().context("snapshot")?;
    let first_rows = acked.len();
    acked.extend(write(edge, table, 3, &[1, 2], 10, &mut v).await?);
    node.flush(table).await?;
    let committed = acked.len();
    // Hot: hour 2 (committed rows too), 3 and 0, in every partition.
    acked.extend(write(edge, table, 3, &[2, 3, 0], 10, &mut v).await?);
    Ok((acked, first_rows, first, committed))
}

fn driver_args(node: &Node, table: &str, first: i64, hang: &str) -> anyhow::Result<Vec<String>> {
    let warehouse = std::fs::canonicalize(node.data_dir().join("warehouse"))?;
    Ok([
        "--uri",
        &node.url(),
        "--hang-uri",
        hang,
        "--warehouse",
        &format!("file://{}", warehouse.display()),
        "--table",
        table,
        "--first-snapshot",
        &first.to_string(),
        // BASE + 2 h is 2026-01-02T00:00Z.
        "--date",
        "2026-01-02",
        "--hour",
        "0",
    ]
    .map(str::to_owned)
    .to_vec())
}

/// Spark SQL with the plugin (and the Python reader beside it) sees committed and hot rows
/// exactly once, prunes hot segments, keeps time travel cold, is unmoved by a flush, and
/// reads committed rows without an error when the node is down or hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spark_reads_hot_rows_exactly_once_and_survives_the_node() -> anyhow::Result<()> {
    let mut node = Node::start(&[("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000")]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let table = "sparkrt";
    let (mut acked, first_rows, first, committed) = spark_scenario(&node, &edge, table).await?;
    let hang = hanging_server()?;
    let mut driver = Driver::start("realtime_spark.py", &driver_args(&node, table, first, &hang)?)?;
    let got = driver.next_json().await?;
    let want = expect(&acked);
    let spark = &got["spark"];
    assert_figures("spark", spark, &want);
    assert_eq!(spark["sql_count"], want["count"], "count(*): {spark}");
    assert_eq!(spark["sql_distinct"], want["count"], "count(DISTINCT): {spark}");
    // Hour 2 holds 3 × 10 committed and 3 × 10 hot rows; hot rows are in 3 hours × 3
    // partitions = 9 segments, 3 of them in hour 2.
    assert_eq!(spark["hour_count"], 60, "{spark}");
    assert_eq!(spark["hot_files"], 9, "{spark}");
    assert_eq!(spark["hot_files_hour"], 3, "partition filters prune hot segments: {spark}");
    let p0_max = acked.iter().filter(|a| a.0 == 0).map(|a| a.1).max().unwrap();
    assert_eq!(spark["p0_min_max"], serde_json::json!([0, p0_max]), "{spark}");
    assert_eq!(spark["time_travel_count"], first_rows, "time travel is cold-only: {spark}");
    assert_figures("spark after a flush", &spark["after_flush"], &want);
    let cached = &got["spark_cached"];
    assert_figures("spark, catalog cache on", cached, &want);
    assert_figures("spark, catalog cache on, after a flush", &cached["after_flush"], &want);
    // The catalog answered but the hot API hung: committed rows, within the timeout.
    let hot_hang = &got["spark_hot_hang"];
    assert_figures("hot API hanging", hot_hang, &expect(&acked[..committed]));
    assert!(hot_hang["seconds"].as_f64().unwrap() < 60.0, "{hot_hang}");
    let python = &got["python"];
    assert_figures("python reader", python, &want);
    assert_eq!(python["hour_count"], 60, "{python}");
    assert_eq!(python["hot_segments_hour"], 3, "{python}");

    // Everything so far is committed (the driver flushed). Events acknowledged now stay hot;
    // then the node dies: every catalog reads exactly the committed rows, without an error.
    let committed = expect(&acked);
    let mut v = 10_000;
    acked.extend(write(&edge, table, 1, &[3], 5, &mut v).await?);
    node.kill9();
    driver.say("node stopped").await?;
    let down = driver.next_json().await?;
    // Path-based readers find the committed snapshot through version-hint.text.
    for name in ["zombi_hadoop", "pyiceberg_static", "duckdb_iceberg_scan"] {
        assert_figures(&format!("{name} with the node down"), &down[name], &committed);
    }
    for name in ["zombi", "zombi_down", "zombi_hang"] {
        assert_figures(&format!("{name} with the node down"), &down[name], &committed);
        // Three queries, each bounded by the 2 s planning timeout (generous slack: this
        // asserts "no hang", not speed).
        let secs = down[name]["seconds"].as_f64().unwrap();
        assert!(secs < 90.0, "{name}: {secs} s");
    }
    driver.finish().await
}

/// The same reads with executors in their own JVM (`local-cluster`): the hot FileIO is
/// serialised to the executor and reads segments there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spark_executors_in_their_own_jvm_read_hot_segments() -> anyhow::Result<()> {
    let node = Node::start(&[("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000")]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let table = "sparkexec";
    let (acked, first_rows, first, _) = spark_scenario(&node, &edge, table).await?;
    let mut args = driver_args(&node, table, first, &hanging_server()?)?;
    args.extend(["--master", "local-cluster[1,1,1024]", "--phase1-only"].map(str::to_owned));
    let mut driver = Driver::start("realtime_spark.py", &args)?;
    let got = driver.next_json().await?;
    let spark = &got["spark"];
    assert_figures("spark, separate executor", spark, &expect(&acked));
    assert_eq!(spark["hot_files"], 9, "{spark}");
    assert_eq!(spark["time_travel_count"], first_rows, "{spark}");
    driver.finish().await
}
