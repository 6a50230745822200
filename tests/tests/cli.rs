//! The `zombi` CLI against a real edge and node: files of every format loaded exactly as
//! written, an interrupted load run again writing each record once, bad input named by its
//! place, and the admin commands.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use zombi_tests::engines::{iceberg_rust_rows, rows_of};
use zombi_tests::{Edge, Node, binary, wait_for};

fn zombi(args: &[&str], node: &Node, edge: &Edge) -> Command {
    let mut cmd = Command::new(binary("zombi"));
    cmd.args(args).env("ZOMBI_EDGE_URL", edge.url()).env("ZOMBI_NODE_URL", node.url());
    cmd
}

fn run(mut cmd: Command) -> anyhow::Result<Output> {
    Ok(cmd.stdin(Stdio::null()).output()?)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `v` of every row of `table` in Iceberg, after a flush.
async fn committed_values(node: &Node, table: &str) -> anyhow::Result<Vec<i64>> {
    node.flush(table).await?;
    let mut v: Vec<i64> =
        rows_of(&iceberg_rust_rows(&node.url(), table, None).await?).iter().map(|r| r.2).collect();
    v.sort();
    Ok(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_every_format_load_exactly_and_bad_records_are_named() -> anyhow::Result<()> {
    let node = Node::start(&[]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let dir = tempfile::tempdir()?;

    // gzip NDJSON, 2,500 records, event times from a field.
    let ndjson: String = (0..2500)
        .map(|v| format!("{{\"v\":{v},\"ts\":\"2026-03-01T10:{:02}:00Z\"}}\n", v % 60))
        .collect();
    let gz = dir.path().join("events.ndjson.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(ndjson.as_bytes())?;
    std::fs::write(&gz, enc.finish()?)?;
    let out = run(zombi(
        &[
            "load",
            gz.to_str().unwrap(),
            "-t",
            "gz",
            "--timestamp-field",
            "ts",
            "--batch-records",
            "300",
        ],
        &node,
        &edge,
    ))?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("loaded 2500 records into gz: 2500 new, 0 already there"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(committed_values(&node, "gz").await?, (0..2500).collect::<Vec<_>>());
    // Every event is in the hour its field says (2026-03-01 10:00 UTC).
    let batches = iceberg_rust_rows(&node.url(), "gz", None).await?;
    for b in &batches {
        let hours = b.column(b.schema().index_of("event_hour")?);
        let hours = hours.as_any().downcast_ref::<arrow_array::Int32Array>().unwrap();
        assert!(hours.iter().all(|h| h == Some(10)));
    }

    // A zstd JSON array from standard input, partition 2.
    let array = serde_json::to_vec(&(0..700).map(|v| json!({"v": v})).collect::<Vec<_>>())?;
    let mut cmd = zombi(&["load", "-", "-t", "arr", "--partition", "2"], &node, &edge);
    let mut child = cmd.stdin(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    child.stdin.take().unwrap().write_all(&zstd::encode_all(&array[..], 3)?)?;
    let out = child.wait_with_output()?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(committed_values(&node, "arr").await?, (0..700).collect::<Vec<_>>());
    let partitions: std::collections::BTreeSet<u32> =
        rows_of(&iceberg_rust_rows(&node.url(), "arr", None).await?).iter().map(|r| r.0).collect();
    assert_eq!(partitions, [2].into());

    // CSV with a header row: values typed one by one (a number only as JSON writes it, so
    // `00501` stays text), in the header's order.
    let csv = dir.path().join("people.csv");
    std::fs::write(&csv, "v,name,zip,active\n1,ann,00501,true\n2,bob,10001,false\n")?;
    let out = run(zombi(&["load", csv.to_str().unwrap(), "-t", "people"], &node, &edge))?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    node.flush("people").await?;
    let batches = iceberg_rust_rows(&node.url(), "people", None).await?;
    let mut payloads: Vec<String> = Vec::new();
    for b in &batches {
        let col = b.column(b.schema().index_of("payload")?);
        let col = col.as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
        payloads.extend(col.iter().flatten().map(str::to_owned));
    }
    payloads.sort();
    assert_eq!(
        payloads,
        [
            r#"{"v":1,"name":"ann","zip":"00501","active":true}"#,
            r#"{"v":2,"name":"bob","zip":10001,"active":false}"#
        ]
    );

    // A bad line stops the load and names its line; nothing of its batch is stored.
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, "{\"v\":1}\n{\"v\":2}\n{oops}\n{\"v\":4}\n")?;
    let out = run(zombi(&["load", bad.to_str().unwrap(), "-t", "bad"], &node, &edge))?;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("error: line 3: not valid JSON"), "{err}");
    assert_eq!(node.table_events("bad").await?, 0);

    // A record the edge refuses is named by its place in the input.
    let refused = dir.path().join("refused.ndjson");
    let lines: String = (0..10)
        .map(|i| {
            if i == 7 {
                "{\"payload\":1,\"bogus\":2}\n".to_owned()
            } else {
                format!("{{\"payload\":{i}}}\n")
            }
        })
        .collect();
    std::fs::write(&refused, lines)?;
    let out = run(zombi(
        &[
            "load",
            refused.to_str().unwrap(),
            "-t",
            "refused",
            "--envelopes",
            "--batch-records",
            "5",
        ],
        &node,
        &edge,
    ))?;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("records 5..=9") && err.contains("record 7 of the input"), "{err}");

    // Admin commands.
    let out = run(zombi(&["status"], &node, &edge))?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = text(&out.stdout);
    assert!(status.starts_with("node: active"), "{status}");
    let gz_line = status.lines().find(|l| l.starts_with("gz ")).expect("a line for gz");
    assert!(gz_line.split_whitespace().nth(1) == Some("2500"), "{status}");
    let out = run(zombi(&["flush", "people"], &node, &edge))?;
    assert!(
        out.status.success() && text(&out.stdout).starts_with("people: committed up to"),
        "{}",
        text(&out.stderr)
    );
    let out = run(zombi(&["compact", "people"], &node, &edge))?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // `00501` is not a JSON number: a string, as the payload holds it.
    let out = run(zombi(&["delete", "people", "--payload-field", "zip=00501"], &node, &edge))?;
    assert!(
        out.status.success() && text(&out.stdout).starts_with("people: 1 rows deleted"),
        "{} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let left = rows_of(&iceberg_rust_rows(&node.url(), "people", None).await?);
    assert_eq!(left.iter().map(|r| r.2).collect::<Vec<_>>(), [2], "bob is left");
    let out = run(zombi(&["delete", "people"], &node, &edge))?;
    assert!(
        !out.status.success() && text(&out.stderr).contains("at least one condition"),
        "{}",
        text(&out.stderr)
    );
    let out = run(zombi(&["flush", "nosuch"], &node, &edge))?;
    assert!(
        !out.status.success() && text(&out.stderr).contains("HTTP 404"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_killed_mid_file_and_run_again_writes_each_record_once() -> anyhow::Result<()> {
    let node = Node::start(&[]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("big.ndjson");
    // Large enough that the first run is still going when it is killed, on any machine.
    let n = 200_000i64;
    let body: String =
        (0..n).map(|v| format!("{{\"v\":{v},\"pad\":\"{}\"}}\n", "x".repeat(64))).collect();
    std::fs::write(&file, body)?;
    let args = [
        "load",
        file.to_str().unwrap(),
        "-t",
        "big",
        "--batch-records",
        "200",
        "--concurrency",
        "2",
    ];

    let mut first =
        zombi(&args, &node, &edge).stdin(Stdio::null()).stderr(Stdio::null()).spawn()?;
    // Once part of the file is in, the loader dies without a word (kill -9).
    wait_for("part of the file to be loaded", Duration::from_secs(60), || async {
        let events = node.table_events("big").await.ok()?;
        (events >= 5_000).then_some(events)
    })
    .await?;
    first.kill()?;
    first.wait()?;
    let partial = node.table_events("big").await?;
    assert!(partial < n as u64, "the loader finished before it was killed ({partial} events)");

    let out = run(zombi(&args, &node, &edge))?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let summary = err.lines().find(|l| l.starts_with("loaded ")).expect("a summary line");
    assert!(summary.starts_with(&format!("loaded {n} records into big")), "{summary}");
    let already: u64 = summary
        .split(", ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // Everything the killed load wrote (and batches it had in flight) came back as
    // duplicates.
    assert!(already >= partial, "{partial} written before, but {summary}");
    assert_eq!(node.table_events("big").await?, n as u64, "a record was stored twice");
    assert_eq!(committed_values(&node, "big").await?, (0..n).collect::<Vec<_>>());
    let stats: Value = node.stats().await?;
    assert_eq!(stats["tables"]["big"]["events"].as_u64(), Some(n as u64));
    Ok(())
}
