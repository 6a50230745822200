//! `just bench`: throughput, latency and freshness of a node and an edge on this machine.
//! Spawns the release binaries (`ZOMBI_BIN_DIR`), drives them over loopback with bounded
//! loops, and prints one table. Figures are for reading, never for pass/fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Mutex;
use zombi_tests::producer::{Encoding, ndjson, post, send_one};
use zombi_tests::{Edge, Node, client, wait_for};

const RUN: Duration = Duration::from_secs(10);

struct Load {
    name: &'static str,
    producers: usize,
    events_per_request: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn run_load(edge: &str, load: &Load) -> anyhow::Result<()> {
    let ok = Arc::new(AtomicU64::new(0));
    let rejected = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..load.producers {
        let (edge, ok, rejected, latencies) =
            (edge.to_owned(), ok.clone(), rejected.clone(), latencies.clone());
        let per = load.events_per_request;
        tasks.push(tokio::spawn(async move {
            let c = client();
            let url = format!("{edge}/tables/bench/bulk");
            let mut local = Vec::new();
            for i in 0..1_000_000u64 {
                if started.elapsed() > RUN {
                    break;
                }
                let t = Instant::now();
                let status = if per == 1 {
                    let env = json!({"payload": {"producer": p, "i": i, "pad": "x".repeat(100)}, "partition": p % 4});
                    send_one(&c, &edge, "bench", &env).await.map(|r| r.status).unwrap_or(0)
                } else {
                    let records: Vec<_> = (0..per)
                        .map(|k| json!({"payload": {"producer": p, "i": i, "k": k, "pad": "x".repeat(100)}, "partition": p % 4}))
                        .collect();
                    post(&c, &url, Some("application/x-ndjson"), Encoding::Identity, &ndjson(&records), &[])
                        .await
                        .map(|r| r.status)
                        .unwrap_or(0)
                };
                local.push(t.elapsed().as_secs_f64() * 1000.0);
                if status == 200 {
                    ok.fetch_add(per as u64, Ordering::Relaxed);
                } else {
                    rejected.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies.lock().await.extend(local);
        }));
    }
    for t in tasks {
        t.await?;
    }
    let secs = started.elapsed().as_secs_f64();
    let mut l = latencies.lock().await.clone();
    l.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
        load.name,
        load.producers,
        load.events_per_request,
        ok.load(Ordering::Relaxed) as f64 / secs,
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        percentile(&l, 0.999),
        rejected.load(Ordering::Relaxed)
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let node = Node::start(&[]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    println!(
        "zombi bench: {}s per load, node + edge + load generator on one machine ({} cores)\n",
        RUN.as_secs(),
        std::thread::available_parallelism()?.get()
    );
    println!(
        "| load | producers | events/request | acked events/s | p50 ms | p99 ms | p99.9 ms | non-2xx |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for load in [
        Load { name: "single events", producers: 64, events_per_request: 1 },
        Load { name: "bulk", producers: 8, events_per_request: 100 },
    ] {
        run_load(&edge.url(), &load).await?;
    }
    // Freshness: from acknowledgement to the event being in a committed snapshot, with the
    // default flush interval, measured on a quiet table.
    let c = client();
    let mut fresh = Vec::new();
    for i in 0..20 {
        let r = send_one(&c, &edge.url(), "fresh", &json!({"payload": {"i": i}})).await?;
        let seq = r.body["sequence"].as_u64().unwrap();
        let t = Instant::now();
        wait_for("the event to be committed", Duration::from_secs(30), || async {
            let w = node.watermark("fresh").await.ok()?;
            (w["watermarks"]["0"].as_u64()? > seq).then_some(())
        })
        .await?;
        fresh.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    fresh.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "\nfreshness (ack → committed snapshot, flush.interval_ms = 1000): p50 {:.0} ms, max {:.0} ms over {} events",
        percentile(&fresh, 0.5),
        fresh.last().unwrap(),
        fresh.len()
    );
    let stats = node.stats().await?;
    println!(
        "node RSS {} MiB, edge RSS {} MiB; bench table: {} events, {} commits",
        node.rss_kib().unwrap_or(0) / 1024,
        edge.rss_kib().unwrap_or(0) / 1024,
        stats["tables"]["bench"]["events"],
        stats["tables"]["bench"]["flush"]["commits"]
    );
    Ok(())
}
