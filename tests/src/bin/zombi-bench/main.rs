//! `just bench`: Zombi's throughput, latency, freshness, CPU and memory on this machine,
//! each figure next to a baseline measured in the same run (machines here are shared and
//! their speed drifts, so only ratios compare across runs). Spawns the release binaries
//! (`ZOMBI_BIN_DIR`), drives them over loopback with bounded loops, prints a markdown table
//! and writes `bench-report.json` and `bench-report.md` at the repository root. Figures are
//! for reading, never for pass/fail. `ZOMBI_BENCH_QUICK=1` shortens every load to a smoke run,
//! `ZOMBI_BENCH_ONLY` picks loads (see [`Plan`]) and `ZOMBI_BENCH_REPORT_DIR` moves the reports.

mod lifecycle;
mod limits;
mod load;
mod object;
mod partitions;
mod sys;
mod typed;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use zombi_tests::producer::send_one;
use zombi_tests::{Edge, Node, client, wait_for};

use load::{Outcome, Target};

/// How long each load runs, and which run (`ZOMBI_BENCH_ONLY=bulk,single`: only those of
/// `http`, `storage`, `single`, `bulk`, `fsync`, `object`, `overload`, `realtime`, `typed`,
/// `lifecycle`, `partitions`; for profiling one load).
struct Plan {
    short: Duration,
    bulk: Duration,
    storage: Duration,
    fresh_events: usize,
    /// Events per reader in the real-time visibility run.
    realtime_samples: usize,
    only: Option<Vec<String>>,
}

impl Plan {
    fn runs(&self, section: &str) -> bool {
        self.only.as_ref().is_none_or(|only| only.iter().any(|s| s == section))
    }

    fn from_env() -> Plan {
        let only = std::env::var("ZOMBI_BENCH_ONLY")
            .ok()
            .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
        let mut plan = if std::env::var_os("ZOMBI_BENCH_QUICK").is_some() {
            Plan {
                short: Duration::from_secs(1),
                bulk: Duration::from_secs(3),
                storage: Duration::from_millis(200),
                fresh_events: 3,
                realtime_samples: 2,
                only,
            }
        } else {
            Plan {
                short: Duration::from_secs(10),
                bulk: Duration::from_secs(60),
                storage: Duration::from_secs(3),
                fresh_events: 20,
                realtime_samples: 20,
                only,
            }
        };
        // A longer bulk load shows the hot store's steady state (RocksDB compactions that
        // start only after a minute or more of ingest).
        if let Some(secs) = std::env::var("ZOMBI_BENCH_BULK_SECS").ok().and_then(|s| s.parse().ok())
        {
            plan.bulk = Duration::from_secs(secs);
        }
        plan
    }
}

const SINGLE_CONNECTIONS: usize = 64;
const LOW_CONNECTIONS: usize = 16;
const BULK_CONNECTIONS: usize = 8;
const BULK_EVENTS: usize = 1000;
const FLUSH_INTERVAL_MS: f64 = 1000.0;

/// One producer envelope of about 290 bytes, as NDJSON line or single-event body.
fn event(i: usize) -> Vec<u8> {
    let action = ["click", "view", "purchase", "scroll"][i % 4];
    let body = json!({
        "payload": {
            "user": format!("u-{:08}", i % 100_000),
            "action": action,
            "page": format!("/products/{:06}/details?ref=campaign-{:04}", i % 50_000, i % 1000),
            "session": format!("s-{:016x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            "referrer": "https://www.example.com/search?q=iceberg+ingestion",
            "ua": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101",
            "n": i,
        },
        "partition": i % 4,
    });
    serde_json::to_vec(&body).expect("serializable")
}

fn ndjson(events: &[Vec<u8>]) -> Bytes {
    let mut out = Vec::with_capacity(events.iter().map(|e| e.len() + 1).sum());
    for e in events {
        out.extend_from_slice(e);
        out.push(b'\n');
    }
    out.into()
}

fn single_target(addr: std::net::SocketAddr, table: &str) -> Target {
    Target {
        addr,
        path: format!("/tables/{table}"),
        content_type: "application/json",
        bodies: Arc::new((0..256).map(|i| Bytes::from(event(i))).collect()),
    }
}

fn bulk_target(addr: std::net::SocketAddr, table: &str) -> Target {
    let bodies = (0..8)
        .map(|b| ndjson(&(0..BULK_EVENTS).map(|i| event(b * BULK_EVENTS + i)).collect::<Vec<_>>()))
        .collect();
    Target {
        addr,
        path: format!("/tables/{table}/bulk"),
        content_type: "application/x-ndjson",
        bodies: Arc::new(bodies),
    }
}

fn addr_of(url: &str) -> Result<std::net::SocketAddr> {
    url.trim_start_matches("http://").parse().context("bad address")
}

/// The report: figures by key, printed rows, and the machine.
struct Report {
    figures: Map<String, Value>,
    rows: Vec<[String; 5]>,
}

impl Report {
    fn set(&mut self, key: &str, value: f64) {
        let rounded =
            if value.abs() >= 100.0 { value.round() } else { (value * 100.0).round() / 100.0 };
        self.figures.insert(key.to_owned(), json!(rounded));
    }

    fn row(&mut self, figure: &str, value: String, baseline: String, ratio: String, target: &str) {
        self.rows.push([figure.to_owned(), value, baseline, ratio, target.to_owned()]);
    }

    fn markdown(&self) -> String {
        let mut out = String::from(
            "| figure | value | baseline (same run) | ratio | target |\n|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            out.push_str(&format!("| {} | {} | {} | {} | {} |\n", r[0], r[1], r[2], r[3], r[4]));
        }
        out
    }
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn ratio(a: f64, b: f64) -> String {
    format!("{:.2}×", a / b)
}

/// Starts a node and an edge with default settings (durability from `durability`).
async fn start_pair(durability: &str) -> Result<(Node, Edge)> {
    let node = Node::start(&[
        ("ZOMBI_NODE__DURABILITY", durability),
        // Node::start keeps flushed events an hour for the tests; the bench runs the default.
        ("ZOMBI_NODE__FLUSH__RETENTION_SECS", "60"),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    Ok((node, edge))
}

/// Acknowledgement → the event is in a committed snapshot, for `count` events written one
/// after another to `table`, while `stop` is unset.
async fn freshness(
    node: &Node,
    edge: &Edge,
    table: &str,
    count: usize,
    stop: &AtomicBool,
) -> Result<Outcome> {
    let c = client();
    let mut samples = Vec::new();
    for i in 0..count {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let r = send_one(&c, &edge.url(), table, &json!({"payload": {"i": i}})).await?;
        anyhow::ensure!(r.status == 200, "freshness write answered {}", r.status);
        let seq = r.body["sequence"].as_u64().context("no sequence")?;
        let t = Instant::now();
        wait_for("the event to be committed", Duration::from_secs(60), || async {
            let w = node.watermark(table).await.ok()?;
            (w["watermarks"]["0"].as_u64()? > seq).then_some(())
        })
        .await?;
        samples.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Outcome::from_latencies(samples))
}

fn backlog_rows(stats: &Value) -> u64 {
    stats["tables"]
        .as_object()
        .map(|t| t.values().filter_map(|v| v["flush"]["backlog_rows"].as_u64()).sum())
        .unwrap_or(0)
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

fn spawn_http_limit() -> Result<(std::process::Child, std::net::SocketAddr)> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("http-limit-server")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("http-limit listening on http://")
        .context("no address")?
        .parse()?;
    Ok((child, addr))
}

async fn bench() -> Result<()> {
    let plan = Plan::from_env();
    let machine = sys::machine();
    let mut report = Report { figures: Map::new(), rows: Vec::new() };
    eprintln!("zombi bench on {machine}");

    // The HTTP limit.
    let (mut http_limit, mut http_p50, mut http_p99) = (f64::NAN, f64::NAN, f64::NAN);
    let mut http_cpu_us = f64::NAN;
    if plan.runs("http") {
        let (mut server, addr) = spawn_http_limit()?;
        let cpu_before = sys::cpu_secs(server.id()).unwrap_or(f64::NAN);
        let mut http =
            load::closed_loop(&single_target(addr, "bench"), SINGLE_CONNECTIONS, plan.short)
                .await?;
        let cpu = sys::cpu_secs(server.id()).unwrap_or(f64::NAN) - cpu_before;
        http_cpu_us = cpu * 1e6 / http.ok as f64;
        report.set("http_limit_cpu_us_per_request", http_cpu_us);
        let _ = server.kill();
        let _ = server.wait();
        (http_limit, http_p50, http_p99) =
            (http.ok_per_sec(), http.percentile(0.5), http.percentile(0.99));
        report.set("http_limit_rps", http_limit);
        report.row(
            "HTTP limit, single-event requests/s (64 connections)",
            fmt(http_limit),
            "—".into(),
            "—".into(),
            "—",
        );
        eprintln!("http limit: {http_limit:.0} req/s, p50 {http_p50:.2} ms");
    }

    // Storage limits on one core, with the bulk load's events.
    let mut storage = None;
    if plan.runs("storage") {
        let events: Vec<Vec<u8>> = (0..20_000).map(event).collect();
        let limits = tokio::task::spawn_blocking({
            let (events, d) = (events.clone(), plan.storage);
            move || limits::storage_limits(&events, d)
        })
        .await??;
        report.set("storage_rocksdb_wal_mib_s", limits.rocksdb_wal_mib_s);
        report.set("storage_parquet_zstd_mib_s", limits.parquet_zstd_mib_s);
        report.set("storage_json_parse_mib_s", limits.json_parse_mib_s);
        eprintln!(
            "storage limits per core: rocksdb {:.0}, parquet {:.0}, json {:.0} MiB/s",
            limits.rocksdb_wal_mib_s, limits.parquet_zstd_mib_s, limits.json_parse_mib_s
        );
        storage = Some(limits);
    }

    // Single events, durability wal, and the quiet node's freshness.
    let (node, edge) = start_pair("wal").await?;
    let edge_addr = addr_of(&edge.url())?;
    let (mut single_eps, mut cold_p99) = (f64::NAN, f64::NAN);
    if plan.runs("single") {
        let stop = AtomicBool::new(false);
        let mut cold = freshness(&node, &edge, "fresh_quiet", plan.fresh_events, &stop).await?;
        cold_p99 = cold.percentile(0.99);
        report.set("freshness_cold_p50_ms", cold.percentile(0.5));
        report.set("freshness_cold_p99_ms", cold_p99);

        let cpu_before = (sys::cpu_secs(edge.pid()), sys::cpu_secs(node.pid()));
        let mut single =
            load::closed_loop(&single_target(edge_addr, "single"), SINGLE_CONNECTIONS, plan.short)
                .await?;
        single_eps = single.ok_per_sec();
        let per_event = |before: Option<f64>, pid: u32| {
            (sys::cpu_secs(pid).unwrap_or(f64::NAN) - before.unwrap_or(f64::NAN)) * 1e6
                / single.ok as f64
        };
        let edge_us = per_event(cpu_before.0, edge.pid());
        let node_us = per_event(cpu_before.1, node.pid());
        report.set("single_cpu_us_per_event_edge", edge_us);
        report.set("single_cpu_us_per_event_node", node_us);
        report.set("single_wal_eps", single_eps);
        report.set("single_wal_p50_ms", single.percentile(0.5));
        report.set("single_wal_p99_ms", single.percentile(0.99));
        report.set("single_wal_non_200", (single.rejected + single.failed) as f64);
        report.row(
            "single events/s, `wal`, 64 connections",
            fmt(single_eps),
            format!("HTTP limit {}", fmt(http_limit)),
            ratio(single_eps, http_limit),
            "≥ 0.6×",
        );
        report.row(
            "single events: edge + node CPU µs per event, 64 connections",
            format!("{} (edge {} + node {})", fmt(edge_us + node_us), fmt(edge_us), fmt(node_us)),
            format!("HTTP limit {} per request", fmt(http_cpu_us)),
            ratio(edge_us + node_us, http_cpu_us),
            "≤ 2.5×",
        );
        report.row(
            "single ack p50 / p99 ms, 64 connections",
            format!("{} / {}", fmt(single.percentile(0.5)), fmt(single.percentile(0.99))),
            format!("HTTP limit {} / {}", fmt(http_p50), fmt(http_p99)),
            "—".into(),
            "—",
        );

        let mut half =
            load::open_loop(&single_target(edge_addr, "single"), single_eps / 2.0, plan.short, 256)
                .await?;
        report.set("single_wal_half_rate_eps", half.ok_per_sec());
        report.set("single_wal_p99_half_rate_ms", half.percentile(0.99));
        report.row(
            "single ack p99 ms at half the maximum rate (open loop)",
            fmt(half.percentile(0.99)),
            format!("rate {} /s", fmt(single_eps / 2.0)),
            "—".into(),
            "≤ 10 ms",
        );

        let mut low =
            load::closed_loop(&single_target(edge_addr, "single"), LOW_CONNECTIONS, plan.short)
                .await?;
        report.set("single_wal_low_eps", low.ok_per_sec());
        report.set("single_wal_p50_low_ms", low.percentile(0.5));
        report.row(
            "single events/s and ack p50 ms, 16 connections",
            format!("{} / {} ms", fmt(low.ok_per_sec()), fmt(low.percentile(0.5))),
            format!("HTTP limit {}", fmt(http_limit)),
            ratio(low.ok_per_sec(), http_limit),
            "p50 ≤ 1 ms",
        );
    }

    // Bulk: 1,000-event NDJSON requests, sustained, with CPU, memory, backlog and freshness.
    let mut bulk_rps = 150.0;
    let (mut edge_rss, mut node_rss) = (f64::NAN, f64::NAN);
    if plan.runs("bulk") {
        let bulk_load = bulk_target(edge_addr, "bulk");
        let (node_pid, edge_pid) = (node.pid(), edge.pid());
        let node_cpu_before = sys::cpu_secs(node_pid).unwrap_or(0.0);
        let edge_cpu_before = sys::cpu_secs(edge_pid).unwrap_or(0.0);
        let sampling = Arc::new(AtomicBool::new(true));
        let backlog_max = Arc::new(AtomicU64::new(0));
        let disk_max = Arc::new(AtomicU64::new(0));
        let sampler = tokio::spawn({
            let (sampling, backlog_max, url) = (sampling.clone(), backlog_max.clone(), node.url());
            let (disk_max, hot_dir) = (disk_max.clone(), node.data_dir().join("hot"));
            async move {
                let c = client();
                while sampling.load(Ordering::Relaxed) {
                    disk_max.fetch_max(sys::dir_bytes(&hot_dir), Ordering::Relaxed);
                    if let Ok(r) = c.get(format!("{url}/stats")).send().await
                        && let Ok(stats) = r.json::<Value>().await
                    {
                        backlog_max.fetch_max(backlog_rows(&stats), Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        });
        let stop_fresh = Arc::new(AtomicBool::new(false));
        let (bulk, loaded) = tokio::join!(
            async {
                let out = load::closed_loop(&bulk_load, BULK_CONNECTIONS, plan.bulk).await;
                stop_fresh.store(true, Ordering::Relaxed);
                out
            },
            freshness(&node, &edge, "fresh_load", usize::MAX, &stop_fresh)
        );
        let mut bulk = bulk?;
        bulk_rps = bulk.ok_per_sec();
        let mut loaded = loaded?;
        sampling.store(false, Ordering::Relaxed);
        sampler.await?;
        let node_cpu = sys::cpu_secs(node_pid).unwrap_or(0.0) - node_cpu_before;
        let edge_cpu = sys::cpu_secs(edge_pid).unwrap_or(0.0) - edge_cpu_before;
        let cpu = node_cpu + edge_cpu;
        let bulk_mib_s = bulk.request_bytes as f64 / (1024.0 * 1024.0) / bulk.secs;
        let bulk_eps = bulk.ok_per_sec() * BULK_EVENTS as f64;
        let gib = bulk.request_bytes as f64 / (1024.0 * 1024.0 * 1024.0);
        // Everything acknowledged is committed before the figures are final.
        let backlog_after =
            wait_for("the bulk backlog to drain", Duration::from_secs(120), || async {
                let stats = node.stats().await.ok()?;
                (backlog_rows(&stats) == 0).then_some(0u64)
            })
            .await
            .is_ok();
        report.set("bulk_mib_s", bulk_mib_s);
        report.set("bulk_eps", bulk_eps);
        report.set("bulk_p99_ms", bulk.percentile(0.99));
        report.set("bulk_non_200", (bulk.rejected + bulk.failed) as f64);
        report.set("bulk_backlog_max_rows", backlog_max.load(Ordering::Relaxed) as f64);
        let disk_mib = disk_max.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0);
        report.set("bulk_hot_store_disk_max_mib", disk_mib);
        report.set("cpu_seconds_per_gib", cpu / gib);
        report.set("edge_cpu_seconds_per_gib", edge_cpu / gib);
        report.set("node_cpu_seconds_per_gib", node_cpu / gib);
        let storage_secs_per_gib =
            storage.as_ref().map_or(f64::NAN, limits::StorageLimits::cpu_seconds_per_gib);
        report.set("node_cpu_vs_storage_limits", node_cpu / gib / storage_secs_per_gib);
        report.set("freshness_under_load_p50_ms", loaded.percentile(0.5));
        report.set("freshness_under_load_p99_ms", loaded.percentile(0.99));
        edge_rss = sys::peak_rss_mib(edge_pid).unwrap_or(f64::NAN);
        node_rss = sys::peak_rss_mib(node_pid).unwrap_or(f64::NAN);
        report.set("edge_rss_max_mib", edge_rss);
        report.set("node_rss_max_mib", node_rss);
        let slowest = storage.as_ref().map_or(f64::NAN, limits::StorageLimits::slowest);
        report.row(
            &format!(
                "bulk request MiB/s ({} s, 8 connections, 1,000 × ~290 B events)",
                plan.bulk.as_secs()
            ),
            format!("{} ({} events/s)", fmt(bulk_mib_s), fmt(bulk_eps)),
            storage.as_ref().map_or("—".into(), |s| {
                format!(
                    "per core: RocksDB {} / Parquet {} / JSON {}",
                    fmt(s.rocksdb_wal_mib_s),
                    fmt(s.parquet_zstd_mib_s),
                    fmt(s.json_parse_mib_s)
                )
            }),
            format!("{} of the slowest", ratio(bulk_mib_s, slowest)),
            "≥ 80 MiB/s",
        );
        report.row(
            "bulk backlog, max rows (drained afterwards)",
            format!(
                "{} ({})",
                backlog_max.load(Ordering::Relaxed),
                if backlog_after { "yes" } else { "no" }
            ),
            "—".into(),
            "—".into(),
            "bounded",
        );
        report.row(
            "hot store on disk, max MiB (RocksDB files and WAL)",
            fmt(disk_mib),
            "—".into(),
            "—".into(),
            "—",
        );
        report.row(
            "edge + node CPU s per GiB of request body",
            fmt(cpu / gib),
            format!("edge {} + node {}", fmt(edge_cpu / gib), fmt(node_cpu / gib)),
            "—".into(),
            "edge ≤ 5",
        );
        report.row(
            "node CPU s per GiB against its storage limits (RocksDB + Parquet + JSON, one core)",
            fmt(node_cpu / gib),
            format!("storage limits {} s per GiB", fmt(storage_secs_per_gib)),
            ratio(node_cpu / gib, storage_secs_per_gib),
            "≤ 1.5×",
        );
        report.row(
            "freshness p99 ms, ack → committed snapshot: quiet / under the bulk load",
            format!("{} / {}", fmt(cold_p99), fmt(loaded.percentile(0.99))),
            format!("flush interval {FLUSH_INTERVAL_MS:.0} ms"),
            format!(
                "{} / {}",
                ratio(cold_p99, FLUSH_INTERVAL_MS),
                ratio(loaded.percentile(0.99), FLUSH_INTERVAL_MS)
            ),
            "≤ 2000 / ≤ 3000",
        );
    }
    drop(edge);
    drop(node);

    // fsync.
    if plan.runs("fsync") {
        let (node, edge) = start_pair("fsync").await?;
        let mut fsync = load::closed_loop(
            &single_target(addr_of(&edge.url())?, "single"),
            SINGLE_CONNECTIONS,
            plan.short,
        )
        .await?;
        report.set("single_fsync_eps", fsync.ok_per_sec());
        report.set("single_fsync_p99_ms", fsync.percentile(0.99));
        report.row(
            "single events/s and p99 ms, `fsync`, 64 connections",
            format!("{} / {} ms", fmt(fsync.ok_per_sec()), fmt(fsync.percentile(0.99))),
            format!("`wal` {}", fmt(single_eps)),
            ratio(fsync.ok_per_sec(), single_eps),
            "≥ 0.5×",
        );
        drop(edge);
        drop(node);
    }

    // `object`: acknowledgements backed by log segments in the object store, and takeover.
    if plan.runs("object") {
        let rounds = if plan.short < Duration::from_secs(5) { 1 } else { 3 };
        let mut f = object::run(LOW_CONNECTIONS, plan.short, rounds).await?;
        let (wal50, wal99) = (f.wal.percentile(0.5), f.wal.percentile(0.99));
        let (obj50, obj99) = (f.object.percentile(0.5), f.object.percentile(0.99));
        let (put50, put99) = (f.put.percentile(0.5), f.put.percentile(0.99));
        let bound = put99 + f.segment_window_ms + 5.0;
        report.set("object_ack_p50_ms", obj50);
        report.set("object_ack_p99_ms", obj99);
        report.set("object_eps", f.object.ok_per_sec());
        report.set("object_wal_ack_p50_ms", wal50);
        report.set("object_wal_ack_p99_ms", wal99);
        report.set("object_wal_eps", f.wal.ok_per_sec());
        report.set("object_put_p50_ms", put50);
        report.set("object_put_p99_ms", put99);
        report.set("object_segment_bytes", f.segment_bytes);
        report.row(
            "single ack p50 / p99 ms, `object` on SeaweedFS, 16 connections",
            format!("{} / {}", fmt(obj50), fmt(obj99)),
            format!("`wal` on the same store {} / {}", fmt(wal50), fmt(wal99)),
            format!("p99 {} of PUT p99 + window + 5 ms", ratio(obj99, bound)),
            "p99 ≤ PUT p99 + window + 5 ms",
        );
        report.row(
            "single events/s, `object`, 16 connections",
            fmt(f.object.ok_per_sec()),
            format!("`wal` {}", fmt(f.wal.ok_per_sec())),
            ratio(f.object.ok_per_sec(), f.wal.ok_per_sec()),
            "—",
        );
        report.row(
            &format!(
                "put-if-absent p50 / p99 ms of one {} KiB segment, SeaweedFS",
                fmt(f.segment_bytes / 1024.0)
            ),
            format!("{} / {}", fmt(put50), fmt(put99)),
            "—".into(),
            "—".into(),
            "—",
        );
        let ms: Vec<f64> = f.takeovers.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        let max = ms.iter().copied().fold(f64::NAN, f64::max);
        report.set("takeover_max_ms", max);
        report.set("takeover_rounds", ms.len() as f64);
        report.row(
            &format!(
                "takeover ms, last ack of the old owner → first of the new ({} rounds, defaults)",
                ms.len()
            ),
            ms.iter().map(|m| fmt(*m)).collect::<Vec<_>>().join(", "),
            "`log.takeover_after_ms` 5000".into(),
            ratio(max, 5000.0),
            "≤ 10000 ms",
        );
        eprintln!(
            "object: ack p50 {obj50:.1} p99 {obj99:.1} ms (wal {wal50:.2}/{wal99:.2}); put p50 {put50:.1} p99 {put99:.1} ms; takeovers {ms:?}"
        );
    }

    // Overload: bulk requests offered at 10× the rate the bulk load sustained.
    if plan.runs("overload") {
        let (node, edge) = start_pair("wal").await?;
        let rate = (bulk_rps * 10.0).max(1.0);
        let over =
            load::open_loop(&bulk_target(addr_of(&edge.url())?, "bulk"), rate, plan.short, 1024)
                .await?;
        let over_node = sys::peak_rss_mib(node.pid()).unwrap_or(f64::NAN);
        let over_edge = sys::peak_rss_mib(edge.pid()).unwrap_or(f64::NAN);
        report.set("overload_node_rss_max_mib", over_node);
        report.set("overload_edge_rss_max_mib", over_edge);
        report.set("overload_ok", over.ok as f64);
        report.set("overload_rejected", over.rejected as f64);
        report.row(
            "peak RSS MiB, edge / node: bulk load",
            format!("{} / {}", fmt(edge_rss), fmt(node_rss)),
            "—".into(),
            "—".into(),
            "≤ 64 / ≤ 1024",
        );
        report.row(
            &format!(
                "peak RSS MiB, edge / node: 10× overload ({} ok, {} refused)",
                over.ok, over.rejected
            ),
            format!("{} / {}", fmt(over_edge), fmt(over_node)),
            "—".into(),
            "—".into(),
            "≤ 64 / ≤ 1024",
        );
        drop(edge);
        drop(node);
    }

    // Real-time reads: acknowledgement → visible to a query, per reader, next to the cold
    // path (plain PyIceberg on committed snapshots), with default settings.
    if plan.runs("realtime") {
        let (node, edge) = start_pair("wal").await?;
        // The shared server of a test run, or one of the bench's own (scripts/trino.sh).
        let trino = zombi_tests::trino::Trino::start()?;
        let figures = realtime_visibility(&node, &edge, trino.url(), plan.realtime_samples)?;
        let cold_p50 = figures["cold"]["p50_ms"].as_f64().unwrap_or(f64::NAN);
        let trino_cold_p50 = figures["trino_cold"]["p50_ms"].as_f64().unwrap_or(f64::NAN);
        for (reader, label) in [
            ("cold", "plain PyIceberg (committed snapshots only)"),
            ("python", "zombi_iceberg (PyIceberg + hot segments)"),
            ("spark", "Spark SQL + ZombiCatalog plugin"),
            ("trino_cold", "Trino, Iceberg connector (committed snapshots only)"),
            ("trino", "Trino + zombi connector"),
        ] {
            let f = &figures[reader];
            let (p50, p99) = (
                f["p50_ms"].as_f64().unwrap_or(f64::NAN),
                f["p99_ms"].as_f64().unwrap_or(f64::NAN),
            );
            report.set(&format!("realtime_{reader}_p50_ms"), p50);
            report.set(&format!("realtime_{reader}_p99_ms"), p99);
            report.set(
                &format!("realtime_{reader}_query_p50_ms"),
                f["query_ms_p50"].as_f64().unwrap_or(f64::NAN),
            );
            report.row(
                &format!("ack → visible to a query, p50 / p99 ms: {label}"),
                format!("{} / {}", fmt(p50), fmt(p99)),
                match reader {
                    "cold" | "trino_cold" => format!("flush interval {FLUSH_INTERVAL_MS:.0} ms"),
                    "trino" => format!("Trino cold p50 {}", fmt(trino_cold_p50)),
                    _ => format!("cold p50 {}", fmt(cold_p50)),
                },
                match reader {
                    "cold" | "trino_cold" => ratio(p50, FLUSH_INTERVAL_MS),
                    "trino" => ratio(p50, trino_cold_p50),
                    _ => ratio(p50, cold_p50),
                },
                "—",
            );
        }
        drop(edge);
        drop(node);
    }

    // Typed tables: the same bulk load into a 12-column typed table and a raw table.
    if plan.runs("typed") {
        let (node, edge) = start_pair("wal").await?;
        let (typed, raw) =
            typed::typed_vs_raw(&node, &edge, plan.short * 2, BULK_CONNECTIONS).await?;
        report.set("typed_bulk_eps", typed.eps);
        report.set("typed_bulk_mib_s", typed.mib_s);
        report.set("typed_raw_bulk_eps", raw.eps);
        report.set("typed_raw_bulk_mib_s", raw.mib_s);
        report.set("typed_bulk_non_200", (typed.non_200 + raw.non_200) as f64);
        report.set("typed_parquet_bytes_per_event", typed.parquet_bytes_per_event);
        report.set("raw_parquet_bytes_per_event", raw.parquet_bytes_per_event);
        report.row(
            "typed table (12 columns) bulk events/s and MiB/s",
            format!("{} / {}", fmt(typed.eps), fmt(typed.mib_s)),
            format!("raw table {} / {}", fmt(raw.eps), fmt(raw.mib_s)),
            ratio(typed.eps, raw.eps),
            "—",
        );
        report.row(
            "Parquet bytes per event, typed table",
            fmt(typed.parquet_bytes_per_event),
            format!("raw table {}", fmt(raw.parquet_bytes_per_event)),
            ratio(typed.parquet_bytes_per_event, raw.parquet_bytes_per_event),
            "—",
        );
        drop(edge);
        drop(node);
    }

    if plan.runs("lifecycle") {
        let (node, edge) = start_pair("wal").await?;
        let f = lifecycle::delete_vs_compaction(&node, &edge, plan.short, BULK_CONNECTIONS).await?;
        report.set("lifecycle_table_rows", f.rows as f64);
        report.set("lifecycle_rows_deleted", f.rows_deleted as f64);
        report.set("lifecycle_files_read", f.files_read as f64);
        report.set("lifecycle_files_rewritten", f.files_rewritten as f64);
        report.set("lifecycle_compact_secs", f.compact_secs);
        report.set("lifecycle_delete_secs", f.delete_secs);
        report.set("lifecycle_delete_repeat_secs", f.repeat_secs);
        report.row(
            &format!(
                "delete one user's {} events of {} by payload field, s",
                f.rows_deleted, f.rows
            ),
            format!("{:.2}", f.delete_secs),
            format!("compaction of the table {:.2}", f.compact_secs),
            ratio(f.delete_secs, f.compact_secs),
            "—",
        );
        report.row(
            "the same delete again (nothing left), s",
            format!("{:.2}", f.repeat_secs),
            format!("compaction of the table {:.2}", f.compact_secs),
            ratio(f.repeat_secs, f.compact_secs),
            "—",
        );
        drop(edge);
        drop(node);
    }

    if plan.runs("partitions") {
        let (spec, default) = partitions::spec_vs_default(plan.short, BULK_CONNECTIONS).await?;
        let per_m = |secs: f64, rows: u64| secs / (rows.max(1) as f64 / 1e6);
        report.set("partitions_spec_rows", spec.rows as f64);
        report.set("partitions_default_rows", default.rows as f64);
        report.set("partitions_spec_files", spec.files as f64);
        report.set("partitions_default_files", default.files as f64);
        report.set("partitions_spec_segments", spec.segments as f64);
        report.set("partitions_default_segments", default.segments as f64);
        let (spec_flush, default_flush) =
            (per_m(spec.flush_secs, spec.rows), per_m(default.flush_secs, default.rows));
        let (spec_list, default_list) =
            (per_m(spec.list_secs, spec.rows), per_m(default.list_secs, default.rows));
        report.set("partitions_spec_flush_secs_per_m_rows", spec_flush);
        report.set("partitions_default_flush_secs_per_m_rows", default_flush);
        report.set("partitions_spec_list_secs_per_m_rows", spec_list);
        report.set("partitions_default_list_secs_per_m_rows", default_list);
        report.row(
            &format!("flush, s per million rows: day + bucket[16] ({} files)", spec.files),
            format!("{spec_flush:.2}"),
            format!("event_date + event_hour {default_flush:.2} ({} files)", default.files),
            ratio(spec_flush, default_flush),
            "—",
        );
        report.row(
            &format!(
                "hot listing, s per million rows: day + bucket[16] ({} segments)",
                spec.segments
            ),
            format!("{spec_list:.2}"),
            format!("event_date + event_hour {default_list:.2} ({} segments)", default.segments),
            ratio(spec_list, default_list),
            "—",
        );
    }

    let markdown = report.markdown();
    let summary = json!({
        "machine": machine,
        "plan": {"short_secs": plan.short.as_secs_f64(), "bulk_secs": plan.bulk.as_secs_f64()},
        "figures": report.figures,
    });
    // ZOMBI_BENCH_REPORT_DIR keeps a smoke run from overwriting the last real report.
    let root = std::env::var_os("ZOMBI_BENCH_REPORT_DIR").map_or_else(repo_root, PathBuf::from);
    std::fs::write(root.join("bench-report.json"), serde_json::to_string_pretty(&summary)? + "\n")?;
    std::fs::write(root.join("bench-report.md"), format!("Machine: {machine}\n\n{markdown}"))?;
    println!("{markdown}");
    println!("written: {}/bench-report.json and bench-report.md", root.display());
    Ok(())
}

/// Runs `tests/python/realtime_bench.py` (the venv's Python, the plugin jar, a Trino server with
/// the zombi connector) against a running node and edge and returns its figures per reader.
fn realtime_visibility(node: &Node, edge: &Edge, trino: &str, samples: usize) -> Result<Value> {
    let python = zombi_tests::engines::venv_python();
    anyhow::ensure!(python.exists(), "{} missing: run `just venv`", python.display());
    let out = std::process::Command::new(python)
        .arg(repo_root().join("tests/python/realtime_bench.py"))
        .args(["--edge", &edge.url(), "--node", &node.url(), "--samples", &samples.to_string()])
        .args(["--readers", "cold,python,spark,trino_cold,trino", "--trino", trino])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run realtime_bench.py")?;
    anyhow::ensure!(out.status.success(), "realtime_bench.py failed: {}", out.status);
    let text = String::from_utf8(out.stdout)?;
    let line = text.lines().last().context("realtime_bench.py printed nothing")?;
    Ok(serde_json::from_str(line)?)
}

fn main() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some("http-limit-server") {
        return limits::serve_http_limit();
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(bench())
}
