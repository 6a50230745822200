//! `durability = "object"` (docs/durability.md): acknowledgement latency next to the object
//! store's own put-if-absent latency for a segment-sized object and next to `wal`, on one
//! SeaweedFS (`weed mini`) on loopback; and takeover time, from the old owner's last
//! acknowledgement to the new owner's first, over repeated `kill -9`s of the active node.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;
use zombi_tests::producer::send_one;
use zombi_tests::seaweed::{self, Seaweed};
use zombi_tests::{Edge, Node, client, metric_sum};

use crate::load::{self, Outcome};
use crate::{addr_of, single_target};

pub struct Figures {
    pub wal: Outcome,
    pub object: Outcome,
    pub put: Outcome,
    pub segment_bytes: f64,
    pub segment_window_ms: f64,
    pub takeovers: Vec<Duration>,
}

/// Edge settings: a batch to an `object` node waits about a segment window, so the edge
/// keeps more batches in flight than its default 4 (docs/durability.md); `wal` gets the same.
const EDGE_ENV: [(&str, &str); 1] = [("ZOMBI_EDGE__FORWARD__MAX_INFLIGHT_BATCHES", "32")];

/// Node settings on the SeaweedFS warehouse.
fn env<'a>(weed: &'a Seaweed, durability: &'a str) -> Vec<(&'static str, &'a str)> {
    let mut env = weed.node_env();
    env.push(("ZOMBI_NODE__DURABILITY", durability));
    env.push(("ZOMBI_NODE__FLUSH__RETENTION_SECS", "60"));
    env
}

pub async fn run(connections: usize, duration: Duration, takeovers: usize) -> Result<Figures> {
    let weed = seaweed::start().await?;

    // `wal` on the same warehouse: the baseline.
    let wal = {
        let node = Node::start(&env(&weed, "wal")).await?;
        let edge = Edge::start(&node.url(), &EDGE_ENV).await?;
        let target = single_target(addr_of(&edge.url())?, "wal");
        load::closed_loop(&target, connections, duration).await?
    };

    // `object`, defaults otherwise.
    let (object, segment_bytes) = {
        let node = Node::start(&env(&weed, "object")).await?;
        let edge = Edge::start(&node.url(), &EDGE_ENV).await?;
        let target = single_target(addr_of(&edge.url())?, "object");
        let out = load::closed_loop(&target, connections, duration).await?;
        let m = node.metrics().await?;
        let bytes = metric_sum(&m, "zombi_node_log_segment_bytes_sum")
            / metric_sum(&m, "zombi_node_log_segment_bytes_count").max(1.0);
        (out, bytes)
    };

    // The store's own put-if-absent of an object of the mean segment size, one at a time.
    let put = {
        let op = weed.operator(seaweed::BUCKET)?;
        let body = vec![7u8; segment_bytes.max(1.0) as usize];
        let mut samples = Vec::new();
        let deadline = Instant::now() + duration;
        for i in 0..10_000 {
            if Instant::now() > deadline {
                break;
            }
            let t = Instant::now();
            op.write_with(&format!("bench/put/{i:08}"), body.clone()).if_not_exists(true).await?;
            samples.push(t.elapsed());
        }
        Outcome::from_latencies(samples)
    };

    let takeovers = takeover_times(&weed, takeovers).await?;
    Ok(Figures { wal, object, put, segment_bytes, segment_window_ms: 50.0, takeovers })
}

/// An active node and a standby with default settings, one edge that knows both, and four
/// producers writing single events; `rounds` times, the active node is killed (`kill -9`)
/// and comes back as the standby. Each figure: the last acknowledgement before the kill →
/// the first after it.
async fn takeover_times(weed: &Seaweed, rounds: usize) -> Result<Vec<Duration>> {
    let env = env(weed, "object");
    let mut nodes = [Node::start(&env).await?, Node::spawn_listening(&env)?];
    nodes[1].wait_role("standby", Duration::from_secs(60)).await?;
    let edge = Edge::start(&format!("{},{}", nodes[0].url(), nodes[1].url()), &[]).await?;
    let acks = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut producers = Vec::new();
    for p in 0..4 {
        let (acks, stop, url) = (acks.clone(), stop.clone(), edge.url());
        producers.push(tokio::spawn(async move {
            let c = client();
            let deadline = Instant::now() + Duration::from_secs(600);
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                i += 1;
                let env = json!({"payload": {"p": p, "i": i}});
                match send_one(&c, &url, "takeover", &env).await {
                    Ok(r) if r.status == 200 => acks.lock().unwrap().push(Instant::now()),
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }
    let mut active = 0;
    let mut times = Vec::new();
    for _ in 0..rounds {
        tokio::time::sleep(Duration::from_secs(3)).await;
        nodes[active].kill9();
        let killed = Instant::now();
        let standby = 1 - active;
        nodes[standby].wait_role("active", Duration::from_secs(120)).await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let first_after = loop {
            if let Some(t) = acks.lock().unwrap().iter().copied().find(|t| *t > killed) {
                break Some(t);
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let last_before = acks.lock().unwrap().iter().copied().filter(|t| *t <= killed).max();
        if let (Some(a), Some(b)) = (last_before, first_after) {
            times.push(b - a);
        }
        nodes[active].restart_listening().await?;
        nodes[active].wait_role("standby", Duration::from_secs(120)).await?;
        active = standby;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for p in producers {
        p.await?;
    }
    Ok(times)
}
