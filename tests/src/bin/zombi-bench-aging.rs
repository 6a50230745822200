//! `just bench-aging`: commit time and metadata size as a table ages. A producer keeps one
//! table committing at `flush.interval_ms = 10` (100× the default rate) until it has made
//! `ZOMBI_AGING_COMMITS` commits (default 20,000). Maintenance runs with the default
//! settings, clocks included (a run every 60 s): what keeps the metadata small at this rate
//! is that a table holding twice `max_snapshots` snapshots is maintained at once. A baseline
//! run in the
//! same process does the same without maintenance up to `ZOMBI_AGING_BASELINE_COMMITS`
//! (default 3,000). Prints one markdown row per 1,000 commits. Figures are for reading,
//! never for pass/fail; both loops are bounded in count and time.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zombi_tests::producer::send_one;
use zombi_tests::{Edge, Node, client};

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// (sum, count) of the commit-time histogram.
async fn commit_seconds(node: &Node) -> anyhow::Result<(f64, f64)> {
    let text = client().get(format!("{}/metrics", node.url())).send().await?.text().await?;
    let value = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok()).unwrap_or(0.0)
    };
    Ok((value("zombi_node_commit_seconds_sum "), value("zombi_node_commit_seconds_count ")))
}

async fn age(label: &str, maintenance: bool, commits: u64, limit: Duration) -> anyhow::Result<()> {
    let enabled = if maintenance { "true" } else { "false" };
    let node = Node::start(&[
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "10"),
        ("ZOMBI_NODE__MAINTENANCE__ENABLED", enabled),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let started = Instant::now();
    let url = edge.url();
    let producer = tokio::spawn(async move {
        let c = client();
        let mut i = 0u64;
        while started.elapsed() < limit && i < 10_000_000 {
            let _ =
                send_one(&c, &url, "aging", &json!({"payload": {"i": i, "pad": "x".repeat(200)}}))
                    .await;
            i += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    println!("\n{label}\n");
    println!(
        "| commits | mean commit ms (last 1,000) | metadata JSON bytes | manifests | snapshots | data files | peak metadata bytes / manifests / snapshots (last 1,000) | elapsed s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut peak = (0u64, 0u64, 0u64);
    let mut next = 1_000;
    let mut last = commit_seconds(&node).await?;
    let mut stats: Value = Value::Null;
    while next <= commits && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stats = node.stats().await?;
        let m = &stats["tables"]["aging"]["maintenance"];
        let get = |k: &str| m[k].as_u64().unwrap_or(0);
        peak = (
            peak.0.max(get("metadata_json_bytes")),
            peak.1.max(get("manifests")),
            peak.2.max(get("snapshots")),
        );
        let made = stats["tables"]["aging"]["flush"]["commits"].as_u64().unwrap_or(0);
        if made < next {
            continue;
        }
        let now = commit_seconds(&node).await?;
        let mean_ms = (now.0 - last.0) / (now.1 - last.1).max(1.0) * 1000.0;
        last = now;
        let m = &stats["tables"]["aging"]["maintenance"];
        let field = |k: &str| if maintenance { m[k].to_string() } else { "—".to_owned() };
        let (json_bytes, manifests, files) =
            (field("metadata_json_bytes"), field("manifests"), field("data_files"));
        let snapshots = if maintenance { m["snapshots"].to_string() } else { made.to_string() };
        let peaks = if maintenance {
            format!("{} / {} / {}", peak.0, peak.1, peak.2)
        } else {
            "—".to_owned()
        };
        println!(
            "| {made} | {mean_ms:.1} | {json_bytes} | {manifests} | {snapshots} | {files} | {peaks} | {:.0} |",
            started.elapsed().as_secs_f64()
        );
        peak = (0, 0, 0);
        next += 1_000;
    }
    producer.abort();
    if maintenance {
        let report = node.compact("aging").await?;
        let stats = node.stats().await?;
        let m = &stats["tables"]["aging"]["maintenance"];
        println!(
            "\nafter an explicit compaction: {} data files, {} bytes, {} manifests, {} snapshots, metadata {} bytes (report: {report})",
            m["data_files"],
            m["data_bytes"],
            m["manifests"],
            m["snapshots"],
            m["metadata_json_bytes"]
        );
    } else {
        let _ = stats;
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let commits = env_u64("ZOMBI_AGING_COMMITS", 20_000);
    let baseline = env_u64("ZOMBI_AGING_BASELINE_COMMITS", 3_000);
    let limit = Duration::from_secs(env_u64("ZOMBI_AGING_SECS", 1_800));
    println!(
        "zombi aging bench: flush.interval_ms = 10, one table, {} cores",
        std::thread::available_parallelism()?.get()
    );
    age("baseline: maintenance off", false, baseline, limit).await?;
    age("maintenance on (defaults)", true, commits, limit).await
}
