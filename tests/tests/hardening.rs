//! Hostile producers, unlucky operators and flaky warehouses never cost an acknowledged
//! event or stall a table.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use zombi_tests::engines::{assert_exact, assert_exact_with, files_under};
use zombi_tests::producer::{Acked, send_acked, send_bulk};
use zombi_tests::{Edge, Node, client, metric_sum, wait_for};

const HOUR: i64 = 3_600_000;
/// 2026-01-01T22:00:00Z.
const BASE: i64 = 1_767_304_800_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A `file://` warehouse in its own temp dir: (dir, uri).
fn warehouse() -> anyhow::Result<(tempfile::TempDir, PathBuf, String)> {
    let tmp = tempfile::tempdir()?;
    let dir = std::fs::canonicalize(tmp.path())?;
    let uri = format!("file://{}", dir.display());
    Ok((tmp, dir, uri))
}

/// The newest metadata file of `table` (names start with a zero-padded version).
fn current_metadata(warehouse: &Path, table: &str) -> anyhow::Result<PathBuf> {
    let dir = warehouse.join("zombi").join(table).join("metadata");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    // Not the `v<N>.metadata.json` copies of the warehouse pointer.
    files.retain(|p| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        name.ends_with(".metadata.json") && name.starts_with(|c: char| c.is_ascii_digit())
    });
    files.sort();
    files.pop().ok_or_else(|| anyhow::anyhow!("no metadata in {}", dir.display()))
}

/// Sends `records` until the edge acknowledges them (the table may not be ready yet).
async fn send_when_ready(
    edge: &Edge,
    table: &str,
    partition: u32,
    records: &[(i64, i64)],
) -> anyhow::Result<Vec<Acked>> {
    wait_for(&format!("{table} to take writes"), Duration::from_secs(30), || async {
        send_acked(&client(), &edge.url(), table, partition, records).await.ok()
    })
    .await
}

/// With durability `none` a crash between commit and watermark persist leaves the hot
/// store's watermarks behind the snapshot, and the hot store's own high-water marks are
/// gone. Writes that arrive while the table's Iceberg metadata cannot be read must not be
/// given sequences the snapshot already holds: they wait (503) until the table is
/// reconciled, then continue above the snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn durability_none_never_reuses_a_sequence_that_iceberg_holds() -> anyhow::Result<()> {
    let (_keep, dir, uri) = warehouse()?;
    let mut node = Node::start(&[
        ("ZOMBI_NODE__DURABILITY", "none"),
        ("ZOMBI_NODE__ICEBERG__WAREHOUSE", &uri),
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000"),
        ("ZOMBI_NODE__FLUSH__BACKOFF_MAX_MS", "300"),
        ("ZOMBI_NODE__MAINTENANCE__ENABLED", "false"),
        ("ZOMBI_NODE__LIMITS__TABLE_READY_TIMEOUT_MS", "300"),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let first: Vec<(i64, i64)> = (0..20).map(|v| (BASE + v, v)).collect();
    let mut acked = send_acked(&client(), &edge.url(), "light", 0, &first).await?;
    node.flush("light").await?;

    // The next flush commits and then the node dies before it persists the watermarks.
    node.set_env("FAILPOINTS", Some("flush-after-commit=return"));
    node.restart().await?;
    let second: Vec<(i64, i64)> = (100..110).map(|v| (BASE + v, v)).collect();
    acked.extend(send_when_ready(&edge, "light", 0, &second).await?);
    assert_eq!(acked.last().unwrap().1, 29);
    assert!(node.flush("light").await.is_err(), "the node must die inside the flush");
    assert!(!node.wait_exit(Duration::from_secs(60)).await?.success());

    // Restart while the table's current metadata cannot be read.
    let metadata = current_metadata(&dir, "light")?;
    let hidden = metadata.with_extension("hidden");
    std::fs::rename(&metadata, &hidden)?;
    node.set_env("FAILPOINTS", None);
    node.restart().await?;
    let r = send_bulk(
        &client(),
        &edge.url(),
        "light",
        &[json!({"payload": {"v": 200}, "partition": 0, "timestamp_ms": BASE})],
    )
    .await?;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.code(), "table_not_ready", "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("light"), "{}", r.body);

    std::fs::rename(&hidden, &metadata)?;
    let third: Vec<(i64, i64)> = (200..205).map(|v| (BASE + v, v)).collect();
    let more = send_when_ready(&edge, "light", 0, &third).await?;
    assert_eq!(more[0].1, 30, "sequences continue above the snapshot's watermark");
    acked.extend(more);
    node.flush("light").await?;
    assert_exact(&node, "light", &acked, false).await
}

/// A node started on an empty data directory next to an existing warehouse adopts every
/// table from its newest metadata file and continues each partition's sequences above the
/// snapshot's watermarks; maintenance then deletes nothing the adopted tables reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_lost_its_data_dir_adopts_every_table_and_continues_above_it()
-> anyhow::Result<()> {
    let (_keep, dir, uri) = warehouse()?;
    let env = [
        ("ZOMBI_NODE__ICEBERG__WAREHOUSE", uri.as_str()),
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000"),
        ("ZOMBI_NODE__MAINTENANCE__ENABLED", "false"),
        ("ZOMBI_NODE__MAINTENANCE__FILE_GRACE_SECS", "0"),
    ];
    let mut first = Node::start(&env).await?;
    let edge = Edge::start(&first.url(), &[]).await?;
    let c = client();
    let mut acked: Vec<(&str, Vec<Acked>)> = Vec::new();
    for table in ["clicks", "orders"] {
        let mut rows = Vec::new();
        for p in 0..2u32 {
            let records: Vec<(i64, i64)> =
                (0..15).map(|k| (BASE + k * HOUR / 4, p as i64 * 100 + k)).collect();
            rows.extend(send_acked(&c, &edge.url(), table, p, &records).await?);
        }
        first.flush(table).await?;
        acked.push((table, rows));
    }
    // Acknowledged after the last commit: these are what a lost disk loses.
    send_acked(&c, &edge.url(), "orders", 0, &[(BASE, -1)]).await?;
    first.kill9();
    let before = files_under(&dir);

    // A new node: same warehouse, empty data directory.
    let second = Node::start(&env).await?;
    let edge = Edge::start(&second.url(), &[]).await?;
    let listed: Value =
        c.get(format!("{}/v1/namespaces/zombi/tables", second.url())).send().await?.json().await?;
    let names: Vec<&str> = listed["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names, ["clicks", "orders"], "{listed}");
    let metrics = second.metrics().await?;
    assert_eq!(metric_sum(&metrics, "zombi_node_tables_adopted_total"), 2.0);

    for (table, rows) in &mut acked {
        assert_exact(&second, table, rows, false).await?;
        // Sequences continue above the adopted snapshot in every partition.
        for p in 0..2u32 {
            let more =
                send_acked(&c, &edge.url(), table, p, &[(BASE + HOUR, 1000 + p as i64)]).await?;
            assert_eq!(more[0].1, 15, "{table} partition {p}");
            rows.extend(more);
        }
        second.flush(table).await?;
        assert_exact(&second, table, rows, false).await?;
        let report = second.compact(table).await?;
        assert_eq!(report["files_deleted"], 0, "{table}: {report}");
    }
    let after = files_under(&dir);
    let lost: Vec<&String> = before.iter().filter(|f| !after.contains(*f)).collect();
    assert!(lost.is_empty(), "files of the adopted tables were deleted: {lost:?}");
    Ok(())
}

/// The same on an S3 warehouse: a new node with an empty data directory adopts the table
/// from the bucket and continues above its snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_lost_its_data_dir_adopts_tables_from_an_s3_warehouse() -> anyhow::Result<()> {
    let moto = zombi_tests::moto::start().await?;
    let mut env = moto.node_env();
    env.extend([
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000"),
        ("ZOMBI_NODE__MAINTENANCE__ENABLED", "false"),
    ]);
    let mut first = Node::start(&env).await?;
    let edge = Edge::start(&first.url(), &[]).await?;
    let records: Vec<(i64, i64)> = (0..10).map(|v| (BASE + v * HOUR / 2, v)).collect();
    let mut acked = send_acked(&client(), &edge.url(), "s3kept", 0, &records).await?;
    first.flush("s3kept").await?;
    first.kill9();

    let second = Node::start(&env).await?;
    let edge = Edge::start(&second.url(), &[]).await?;
    let more = send_acked(&client(), &edge.url(), "s3kept", 0, &[(BASE + HOUR, 100)]).await?;
    assert_eq!(more[0].1, 10, "the sequence continues above the adopted snapshot");
    acked.extend(more);
    second.flush("s3kept").await?;
    assert_exact_with(&second, "s3kept", &acked, false, &moto.engine_opts()).await
}

/// Event-time bounds refuse events far in the past or future (naming the record), and the
/// table limit refuses a write that would create one table too many, clearly; the tables
/// that exist keep taking writes.
#[tokio::test]
async fn event_time_bounds_and_the_table_limit_are_clear_refusals() -> anyhow::Result<()> {
    let node = Node::start(&[
        ("ZOMBI_NODE__LIMITS__MAX_TABLES", "2"),
        ("ZOMBI_NODE__LIMITS__MAX_EVENT_AGE_SECS", "86400"),
    ])
    .await?;
    let edge = Edge::start(
        &node.url(),
        &[
            ("ZOMBI_EDGE__LIMITS__MAX_EVENT_AGE_SECS", "86400"),
            ("ZOMBI_EDGE__LIMITS__MAX_FUTURE_SKEW_SECS", "60"),
        ],
    )
    .await?;
    let c = client();
    let now = now_ms();
    let ok = json!({"payload": {"v": 1}, "timestamp_ms": now - HOUR});
    for (bad, words) in [
        (json!({"payload": {"v": 2}, "timestamp_ms": 1_767_304_800}), "max_event_age_secs"),
        (json!({"payload": {"v": 3}, "timestamp_ms": now + 10 * 60_000}), "max_future_skew_secs"),
    ] {
        let r = send_bulk(&c, &edge.url(), "t1", &[ok.clone(), bad]).await?;
        assert_eq!(r.status, 400, "{}", r.body);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("record 1") && message.contains(words), "{message}");
    }
    assert_eq!(node.table_events("t1").await?, 0, "a refused request stores nothing");

    for table in ["t1", "t2"] {
        let r = send_bulk(&c, &edge.url(), table, std::slice::from_ref(&ok)).await?;
        assert_eq!(r.status, 200, "{table}: {}", r.body);
    }
    let r = send_bulk(&c, &edge.url(), "t3", std::slice::from_ref(&ok)).await?;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.code(), "table_limit", "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("limits.max_tables"));
    let r = send_bulk(&c, &edge.url(), "t1", std::slice::from_ref(&ok)).await?;
    assert_eq!(r.status, 200, "{}", r.body);
    let stats = node.stats().await?;
    assert!(stats["tables"].get("t3").is_none(), "{stats}");
    Ok(())
}

/// A request whose events span thousands of hours cannot hold a flush slot for long: each
/// commit carries at most `flush.max_hours_per_flush` hours, the rest follow in later
/// cycles, and another table keeps committing meanwhile. Idle tables cost no flush cycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_spanning_thousands_of_hours_does_not_starve_the_others() -> anyhow::Result<()> {
    let (_keep, dir, uri) = warehouse()?;
    let node = Node::start(&[
        ("ZOMBI_NODE__ICEBERG__WAREHOUSE", &uri),
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "50"),
        ("ZOMBI_NODE__FLUSH__MAX_CONCURRENT", "1"),
        ("ZOMBI_NODE__FLUSH__MAX_HOURS_PER_FLUSH", "100"),
        ("ZOMBI_NODE__MAINTENANCE__ENABLED", "false"),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let c = client();
    // 1,500 events, each in its own hour, going back about two months.
    let now = now_ms();
    let wide: Vec<(i64, i64)> = (0..1500).map(|i| (now - i * HOUR, i)).collect();
    let wide_acked = send_acked(&c, &edge.url(), "wide", 0, &wide).await?;
    // While "wide" works through its hours, "narrow" commits too.
    let narrow_acked = send_acked(&c, &edge.url(), "narrow", 0, &[(now, 1), (now, 2)]).await?;
    let narrow = node.wait_flushed("narrow", Duration::from_secs(60)).await?;
    let wide_then = node.watermark("wide").await?;
    let wide_done = wide_then["watermarks"]["0"].as_u64().unwrap_or(0);
    assert!(wide_done < 1500, "narrow waited for all of wide: {wide_then} / {narrow}");
    node.wait_flushed("wide", Duration::from_secs(120)).await?;
    assert_exact(&node, "wide", &wide_acked, false).await?;
    assert_exact(&node, "narrow", &narrow_acked, false).await?;

    // Every commit of "wide" added at most 100 files.
    let metadata: Value = serde_json::from_slice(&std::fs::read(current_metadata(&dir, "wide")?)?)?;
    let added: Vec<u64> = metadata["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["summary"]["added-data-files"].as_str()?.parse().ok())
        .collect();
    assert!(added.len() >= 15, "{added:?}");
    assert!(added.iter().all(|n| *n <= 100), "{added:?}");
    assert_eq!(added.iter().sum::<u64>(), 1500);

    // Idle now: the flush loop skips both tables without a flush cycle.
    let cycles = |m: &str| metric_sum(m, "zombi_node_flush_seconds_count");
    let skips = |m: &str| metric_sum(m, "zombi_node_flush_idle_skips_total");
    let m0 = wait_for("a first idle skip", Duration::from_secs(30), || async {
        let m = node.metrics().await.ok()?;
        (skips(&m) > 0.0).then_some(m)
    })
    .await?;
    wait_for("idle skips", Duration::from_secs(30), || async {
        let m = node.metrics().await.ok()?;
        (skips(&m) >= skips(&m0) + 20.0).then_some(())
    })
    .await?;
    let m1 = node.metrics().await?;
    assert_eq!(cycles(&m1), cycles(&m0), "idle tables ran flush cycles");
    Ok(())
}

/// Connections that announce a large body and then send nothing, or stop half-way through
/// their headers, cannot lock other producers out: a request holds only the bytes it has
/// sent, a body that does not arrive in time gets 408, and a request head that does not
/// arrive in time closes its connection, at the edge and at the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_uploads_cannot_lock_producers_out() -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let node = Node::start(&[("ZOMBI_NODE__LIMITS__HEADER_READ_TIMEOUT_MS", "500")]).await?;
    let edge = Edge::start(
        &node.url(),
        &[
            ("ZOMBI_EDGE__LIMITS__MAX_REQUEST_BYTES", "1048576"),
            ("ZOMBI_EDGE__LIMITS__MAX_INFLIGHT_BYTES", "2097152"),
            ("ZOMBI_EDGE__LIMITS__BODY_READ_TIMEOUT_MS", "1500"),
            ("ZOMBI_EDGE__LIMITS__HEADER_READ_TIMEOUT_MS", "500"),
        ],
    )
    .await?;
    let addr: std::net::SocketAddr = edge.url().trim_start_matches("http://").parse()?;
    // Four uploads that announce 1,000,000 bytes each (twice the budget in all) and send
    // 1,000 of them.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let head = format!(
            "POST /tables/slow/bulk HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-ndjson\r\ncontent-length: 1000000\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await?;
        s.write_all(&[b' '; 1000]).await?;
        stalled.push(s);
    }
    // A producer with a small head that never ends.
    let mut half = tokio::net::TcpStream::connect(addr).await?;
    half.write_all(b"POST /tables/slow HTTP/1.1\r\nhost: x\r\n").await?;
    // The same at the node's internal API.
    let mut half_internal = tokio::net::TcpStream::connect(node.addr()).await?;
    half_internal.write_all(b"POST /internal/v1/batches HTTP/1.1\r\nhost: x\r\n").await?;

    let c = client();
    let r = send_bulk(&c, &edge.url(), "fast", &[json!({"payload": 1})]).await?;
    assert_eq!(r.status, 200, "other producers are served: {}", r.body);
    let metrics = c.get(format!("{}/metrics", edge.url())).send().await?.text().await?;
    let held = metric_sum(&metrics, "zombi_edge_inflight_bytes");
    assert!(held <= 8_000.0, "stalled uploads hold {held} bytes");

    for mut s in stalled {
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut response)).await??;
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(
            text.contains("request_timeout") && text.contains("body_read_timeout_ms"),
            "{text}"
        );
    }
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(10), half.read_to_end(&mut rest)).await??;
    assert_eq!(n, 0, "the half-sent head gets no answer: {}", String::from_utf8_lossy(&rest));
    let n = tokio::time::timeout(Duration::from_secs(10), half_internal.read_to_end(&mut rest))
        .await??;
    assert_eq!(n, 0, "the node closes a half-sent head too");
    let metrics = c.get(format!("{}/metrics", edge.url())).send().await?.text().await?;
    assert_eq!(metric_sum(&metrics, "zombi_edge_inflight_bytes"), 0.0);
    Ok(())
}

/// The node never trusts an edge: a JSON payload that is not JSON is refused whole, and
/// nothing is stored.
#[tokio::test]
async fn the_node_refuses_a_json_payload_that_is_not_json() -> anyhow::Result<()> {
    use zombi_shared::wire::{Group, IngestBatch, Payload, WireEvent, encode};
    let node = Node::start(&[]).await?;
    let event = |text: &str| WireEvent {
        partition: 0,
        timestamp_ms: None,
        idempotency_key: None,
        payload: Payload::Json(text.into()),
    };
    let batch = IngestBatch {
        groups: vec![Group { table: "strict".into(), events: vec![event("{}"), event("{\"a\":")] }],
    };
    let r = client()
        .post(format!("{}/internal/v1/batches", node.url()))
        .header("content-type", "application/msgpack")
        .body(encode(&batch))
        .send()
        .await?;
    let status = r.status();
    let body = r.text().await?;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("event 1") && body.contains("not valid JSON"), "{body}");
    assert_eq!(node.table_events("strict").await?, 0);
    Ok(())
}

/// Hot reads hold up to 64 MiB each while they are answered: beyond
/// `limits.max_concurrent_hot_reads` at once they get 429, and the slots come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_reads_beyond_the_limit_get_429() -> anyhow::Result<()> {
    let node = Node::start(&[
        ("ZOMBI_NODE__LIMITS__MAX_CONCURRENT_HOT_READS", "1"),
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000"),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let payload = "x".repeat(500);
    for chunk in 0..10 {
        let records: Vec<Value> = (0..2000)
            .map(|i| json!({"payload": {"i": chunk * 2000 + i, "pad": payload}}))
            .collect();
        let r = send_bulk(&client(), &edge.url(), "busy", &records).await?;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let mut statuses = Vec::new();
    for _burst in 0..10 {
        let reads = (0..6).map(|_| node.hot("busy", "from_sequence=0"));
        for r in futures::future::join_all(reads).await {
            let (status, body) = r?;
            assert!(status == 200 || status == 429, "{status}: {}", String::from_utf8_lossy(&body));
            if status == 429 {
                let text = String::from_utf8_lossy(&body);
                assert!(text.contains("max_concurrent_hot_reads"), "{text}");
            }
            statuses.push(status);
        }
        if statuses.contains(&429) {
            break;
        }
    }
    assert!(statuses.contains(&429), "no hot read was refused: {statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    let (status, _) = node.hot("busy", "from_sequence=0&limit=10").await?;
    assert_eq!(status, 200, "the slot is released after each read");
    Ok(())
}

/// A combiner worker that panics is restarted: the write it was handling fails (and is
/// not stored), and every later write to its tables succeeds.
#[tokio::test]
async fn a_combiner_worker_that_panics_is_restarted() -> anyhow::Result<()> {
    let mut node = Node::start(&[("ZOMBI_NODE__COMBINER__SHARDS", "1")]).await?;
    node.set_env("FAILPOINTS", Some("combiner-write=1*panic"));
    node.restart().await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let c = client();
    let first = send_bulk(&c, &edge.url(), "sturdy", &[json!({"payload": 1})]).await?;
    assert_eq!(first.status, 503, "{}", first.body);
    for i in 0..3u64 {
        let r = send_bulk(&c, &edge.url(), "sturdy", &[json!({"payload": i})]).await?;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["partitions"][0]["first_sequence"], i, "{}", r.body);
    }
    let metrics = node.metrics().await?;
    assert_eq!(metric_sum(&metrics, "zombi_node_combiner_panics_total"), 1.0);
    Ok(())
}

/// With snapshot policy `thresholds`, a commit attempt whose outcome is unknown is settled
/// by the next cycle, after its backoff: the table neither spins through cycles nor waits
/// for `max_age_ms` to commit what was already attempted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thresholds_table_settles_an_unknown_commit_without_spinning() -> anyhow::Result<()> {
    let node = Node::start(&[
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "100"),
        ("ZOMBI_NODE__FLUSH__SNAPSHOT__MODE", "thresholds"),
        ("ZOMBI_NODE__FLUSH__SNAPSHOT__MAX_FILES", "1000"),
        ("ZOMBI_NODE__FLUSH__SNAPSHOT__MAX_AGE_MS", "600000"),
        ("FAILPOINTS", "flush-commit-unknown=1*return"),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let records: Vec<(i64, i64)> = (0..10).map(|v| (BASE + v, v)).collect();
    let acked = send_acked(&client(), &edge.url(), "patient", 0, &records).await?;
    let r = client().post(format!("{}/tables/patient/flush", node.url())).send().await?;
    assert!(!r.status().is_success(), "the armed commit fails");
    node.wait_flushed("patient", Duration::from_secs(20)).await?;
    let cycles = metric_sum(&node.metrics().await?, "zombi_node_flush_seconds_count");
    assert!(cycles < 100.0, "{cycles} flush cycles: the table spun");
    assert_exact(&node, "patient", &acked, false).await
}

/// After the wall clock steps back two hours, commits and maintenance keep going: new
/// snapshots are stamped just after the last one (and the node says so), and the engines
/// read the table exactly. (DuckDB 1.5.5 refuses a table whose metadata log lies in its
/// future until its clock passes it, whatever wrote the table: it is not asked here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_keep_going_after_the_wall_clock_steps_back() -> anyhow::Result<()> {
    let faketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    anyhow::ensure!(
        Path::new(faketime).exists(),
        "{faketime} is missing: scripts/install-deps.sh installs Debian's faketime"
    );
    let (_keep, dir, uri) = warehouse()?;
    let mut node = Node::start(&[
        ("ZOMBI_NODE__ICEBERG__WAREHOUSE", &uri),
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000"),
        ("ZOMBI_NODE__MAINTENANCE__ENABLED", "false"),
        ("ZOMBI_NODE__MAINTENANCE__MAX_SNAPSHOTS", "2"),
        ("LD_PRELOAD", faketime),
        ("FAKETIME", "+2h"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let c = client();
    let mut acked = Vec::new();
    for round in 0..2 {
        let records: Vec<(i64, i64)> = (0..10).map(|v| (BASE + v, round * 100 + v)).collect();
        acked.extend(send_acked(&c, &edge.url(), "clocked", 0, &records).await?);
        node.flush("clocked").await?;
    }
    // The clock steps back by two hours.
    for key in ["LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC"] {
        node.set_env(key, None);
    }
    node.restart().await?;
    for round in 2..4 {
        let records: Vec<(i64, i64)> = (0..10).map(|v| (BASE + v, round * 100 + v)).collect();
        acked.extend(send_when_ready(&edge, "clocked", 0, &records).await?);
        node.flush("clocked").await?;
    }
    // Snapshot expiry rewrites the metadata without a new snapshot.
    node.compact("clocked").await?;
    let metrics = node.metrics().await?;
    assert!(metric_sum(&metrics, "zombi_node_clock_behind_total") >= 2.0, "not reported");

    let metadata: Value =
        serde_json::from_slice(&std::fs::read(current_metadata(&dir, "clocked")?)?)?;
    let log: Vec<i64> = metadata["snapshot-log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["timestamp-ms"].as_i64().unwrap())
        .collect();
    assert!(log.windows(2).all(|w| w[0] < w[1]), "snapshot log out of order: {log:?}");
    assert!(metadata["last-updated-ms"].as_i64() >= log.last().copied(), "{metadata}");

    assert_exact(&node, "clocked", &acked, false).await?;
    let want = zombi_tests::engines::expected(&acked);
    let got = zombi_tests::engines::python_engines(
        &node.url(),
        "clocked",
        &["pyiceberg", "spark"],
        &Default::default(),
    )?;
    for engine in ["pyiceberg", "spark"] {
        assert_eq!(zombi_tests::engines::figures(&got[engine])?, want, "{engine}");
    }
    Ok(())
}

/// Behind an S3 warehouse that fails the first writes, hangs the first reads and fails
/// half of the deletes, flushes, commits and file cleanup are retried with backoff: two
/// tables written at once both end up exact, unreferenced files are deleted in the end,
/// and the faults show in the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn object_store_faults_are_retried_and_lose_nothing() -> anyhow::Result<()> {
    let moto = zombi_tests::moto::start().await?;
    let mut env = moto.node_env();
    env.extend([
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "50"),
        ("ZOMBI_NODE__FLUSH__BACKOFF_MAX_MS", "500"),
        ("ZOMBI_NODE__ICEBERG__IO_TIMEOUT_MS", "500"),
        ("ZOMBI_NODE__ICEBERG__IO_RETRIES", "3"),
        ("ZOMBI_NODE__MAINTENANCE__ENABLED", "false"),
        ("ZOMBI_NODE__MAINTENANCE__MAX_SNAPSHOTS", "1"),
        ("ZOMBI_NODE__MAINTENANCE__FILE_GRACE_SECS", "0"),
        (
            "FAILPOINTS",
            "warehouse-write=6*return(fail);warehouse-read=2*return(hang);warehouse-delete=50%return(fail)",
        ),
    ]);
    let node = Node::start(&env).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let opts = moto.engine_opts();
    let mut acked: Vec<(&str, Vec<Acked>)> =
        vec![("faulty_a", Vec::new()), ("faulty_b", Vec::new())];
    for round in 0..4i64 {
        for (table, rows) in &mut acked {
            let records: Vec<(i64, i64)> =
                (0..20).map(|k| (BASE + (k % 4) * HOUR + round, round * 100 + k)).collect();
            rows.extend(send_when_ready(&edge, table, (round % 2) as u32, &records).await?);
            // One commit per round, so that maintenance has files to merge and delete.
            wait_for("a flush through the faults", Duration::from_secs(60), || async {
                node.flush(table).await.ok()
            })
            .await?;
        }
    }
    for (table, rows) in &acked {
        node.wait_flushed(table, Duration::from_secs(60)).await?;
        assert_exact_with(&node, table, rows, false, &opts).await?;
    }
    let metrics = node.metrics().await?;
    let errors = |op: &str, kind: &str| {
        metric_sum(
            &metrics
                .lines()
                .filter(|l| {
                    l.contains(&format!("op=\"{op}\"")) && l.contains(&format!("kind=\"{kind}\""))
                })
                .collect::<Vec<_>>()
                .join("\n"),
            "zombi_node_warehouse_errors_total",
        )
    };
    assert!(errors("write", "error") >= 6.0, "{metrics}");
    assert!(errors("read", "timeout") >= 2.0, "{metrics}");
    assert!(metric_sum(&metrics, "zombi_node_warehouse_retries_total") >= 6.0, "{metrics}");

    // Cleanup deletes every unreferenced file despite failing deletes (runs are retried).
    let deleted = std::sync::atomic::AtomicU64::new(0);
    for (table, _) in &acked {
        wait_for(
            &format!("{table}'s unreferenced files to be deleted"),
            Duration::from_secs(60),
            || async {
                let r = client()
                    .post(format!("{}/tables/{table}/compact", node.url()))
                    .send()
                    .await
                    .ok()?;
                if !r.status().is_success() {
                    return None;
                }
                let report: Value = r.json().await.ok()?;
                let n = report["files_deleted"].as_u64().unwrap_or(0);
                deleted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                let refs =
                    zombi_tests::engines::referenced_files(&node.url(), table, &moto.engine_opts())
                        .await
                        .ok()?;
                let keys =
                    moto.list("warehouse", &format!("lake/zombi/{table}/data/")).await.ok()?;
                let parquet: std::collections::BTreeSet<String> = keys
                    .into_iter()
                    .filter(|k| k.ends_with(".parquet"))
                    .map(|k| format!("s3://warehouse/{k}"))
                    .collect();
                (parquet == refs.current_data_files).then_some(())
            },
        )
        .await?;
    }
    assert!(deleted.into_inner() > 0, "maintenance deleted nothing");
    let metrics = node.metrics().await?;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("zombi_node_warehouse_errors_total")
                && l.contains("op=\"delete\"")),
        "{metrics}"
    );
    for (table, rows) in &acked {
        assert_exact_with(&node, table, rows, false, &opts).await?;
    }
    Ok(())
}

/// Schemathesis sends generated requests to every operation of the Iceberg REST OpenAPI
/// spec (`tests/python/conformance.py`): no 5xx, and every answer conforms to the spec's
/// schemas, for unknown names and for the node's real namespace and tables alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rest_catalog_conforms_to_the_iceberg_openapi_spec() -> anyhow::Result<()> {
    let token = "catalog-token-0123456789";
    let node = Node::start(&[("ZOMBI_NODE__AUTH__CATALOG_TOKEN", token)]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    for table in ["orders", "clicks"] {
        send_acked(&client(), &edge.url(), table, 0, &[(BASE, 1), (BASE + HOUR, 2)]).await?;
        node.flush(table).await?;
    }
    let text =
        python("conformance.py", &[&node.url(), "40", "zombi", "orders,clicks,missing", token])?;
    assert!(text.contains("passed"), "{text}");
    Ok(())
}

/// Runs `tests/python/<script>` in the engines venv; its stdout, or an error with its output.
fn python(script: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new(zombi_tests::engines::venv_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python").join(script))
        .args(args)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(
        out.status.success(),
        "{script}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(text)
}

/// `{url}/openapi.json` is `<component>/openapi/openapi.json` of the repository; then
/// schemathesis runs against it (`tests/python/openapi_check.py`).
async fn served_document_conforms(
    component: &str,
    url: &str,
    args: &[&str],
) -> anyhow::Result<String> {
    let spec =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../{component}/openapi/openapi.json"));
    let served: Value = client().get(format!("{url}/openapi.json")).send().await?.json().await?;
    let kept: Value = serde_json::from_slice(&std::fs::read(&spec)?)?;
    assert_eq!(served, kept, "the {component} serves another document than the repository's");
    python("openapi_check.py", &[&[spec.to_str().unwrap(), url], args].concat())
}

/// The edge serves its OpenAPI document (the one in the repository), and schemathesis sends
/// generated requests, valid and invalid, to every operation of it
/// (`tests/python/openapi_check.py`): no 5xx, every status, content type and body as
/// documented, and every request that breaks the schema refused with a 4xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_producer_api_conforms_to_its_openapi_document() -> anyhow::Result<()> {
    let token = "producer-token-0123456789";
    let node = Node::start(&[]).await?;
    let edge = Edge::start(
        &node.url(),
        &[("ZOMBI_EDGE__AUTH__PRODUCER_TOKENS", &format!("[\"{token}\"]"))],
    )
    .await?;
    let served = client().get(format!("{}/openapi.json", edge.url())).send().await?;
    assert_eq!(served.headers()["content-type"], "application/json");
    let text = served_document_conforms("edge", &edge.url(), &["30", token]).await?;
    assert!(text.contains("No issues found"), "{text}");
    Ok(())
}

/// The node's admin API, the same way: its document (`node/openapi/openapi.json`) is what
/// it serves, and schemathesis finds every answer as documented, for tables that do not
/// exist and for one that does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_node_admin_api_conforms_to_its_openapi_document() -> anyhow::Result<()> {
    let token = "admin-token-0123456789";
    let node = Node::start(&[
        ("ZOMBI_NODE__AUTH__ADMIN_TOKEN", token),
        ("ZOMBI_NODE__AUTH__CATALOG_TOKEN", token),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    send_acked(&client(), &edge.url(), "orders", 0, &[(BASE, 1), (BASE + HOUR, 2)]).await?;
    let text =
        served_document_conforms("node", &node.url(), &["30", token, "orders,missing"]).await?;
    assert!(text.matches(" passed").count() >= 2, "{text}");
    Ok(())
}

/// The node checks event times against its own clock, which may differ a little from the
/// edge's: an event outside its bounds refuses only the request (group) that holds it, never
/// the other producers' requests combined into the same batch.
#[tokio::test]
async fn the_nodes_event_time_bounds_refuse_only_the_group_that_breaks_them() -> anyhow::Result<()>
{
    use zombi_shared::wire::{
        BatchResponse, Group, GroupErrorCode, GroupResult, IngestBatch, Payload, WireEvent, decode,
        encode,
    };
    let node = Node::start(&[("ZOMBI_NODE__LIMITS__MAX_EVENT_AGE_SECS", "3600")]).await?;
    let event = |ts: i64| WireEvent {
        partition: 0,
        timestamp_ms: Some(ts),
        idempotency_key: None,
        payload: Payload::Json("{}".into()),
    };
    let now = now_ms();
    let batch = IngestBatch {
        groups: vec![
            Group { table: "timely".into(), events: vec![event(now), event(now - 60_000)] },
            Group { table: "timely".into(), events: vec![event(now), event(now - 2 * HOUR)] },
        ],
    };
    let r = client()
        .post(format!("{}/internal/v1/batches", node.url()))
        .header("content-type", "application/msgpack")
        .body(encode(&batch))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let answer: BatchResponse = decode(&r.bytes().await?)?;
    assert!(matches!(&answer.groups[0], GroupResult::Ok(acks) if acks.len() == 2), "{answer:?}");
    match &answer.groups[1] {
        GroupResult::Err(e) => {
            assert_eq!(e.code, GroupErrorCode::Invalid);
            assert!(e.message.starts_with("record 1: ") && e.message.contains("max_event_age"));
        }
        other => panic!("the old event's group must be refused: {other:?}"),
    }
    assert_eq!(node.table_events("timely").await?, 2);
    Ok(())
}
