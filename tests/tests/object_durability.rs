//! `durability = "object"`: acknowledgements backed by log segments in the warehouse's
//! object store (SeaweedFS with conditional writes, on loopback), so losing the node's
//! disk loses nothing acknowledged.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;
use zombi_tests::engines::{self, EngineOpts};
use zombi_tests::producer::{send_bulk, send_one};
use zombi_tests::seaweed::{self, Seaweed};
use zombi_tests::{Edge, Node, client, metric_sum, wait_for};

/// (partition, sequence, v) of every acknowledged event; v is unique per event sent.
type Acked = Arc<Mutex<Vec<(u32, u64, i64)>>>;

/// Answers producers got, with when: (status, at).
type Answers = Arc<Mutex<Vec<(u16, Instant)>>>;

fn object_env(weed: &Seaweed) -> Vec<(&'static str, &str)> {
    let mut env = weed.node_env();
    env.extend([
        ("ZOMBI_NODE__DURABILITY", "object"),
        ("ZOMBI_NODE__LOG__SEGMENT_WINDOW_MS", "10"),
        ("ZOMBI_NODE__LOG__TRUNCATE_INTERVAL_MS", "300"),
        ("ZOMBI_NODE__LOG__HEARTBEAT_MS", "200"),
        ("ZOMBI_NODE__LOG__TAKEOVER_AFTER_MS", "1000"),
        ("ZOMBI_NODE__LOG__CALL_TIMEOUT_MS", "2000"),
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "500"),
    ]);
    env
}

/// One producer: alternates single events and bulk requests of five, each event with a
/// unique `v` and idempotency key, until `stop` or its bounds. A request that gets no 200
/// is retried with the same keys until it does: one whose answer was lost (the node died
/// after its segment was written) comes back as a duplicate with its original sequence.
/// Records acknowledgements, every answer, and how many retries were duplicates.
async fn produce(
    edge: String,
    producer: i64,
    acked: Acked,
    answers: Answers,
    stop: Arc<AtomicBool>,
) {
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(300);
    let stopped = || stop.load(Ordering::Acquire) || Instant::now() > deadline;
    let mut duplicates = 0;
    for round in 0..50_000i64 {
        let partition = ((producer + round) % 3) as u32;
        let v = producer * 1_000_000_000 + round * 10;
        let key = |i: i64| format!("p{producer}-r{round}-{i}");
        while !stopped() {
            let (status, events) = if round % 2 == 0 {
                let env =
                    json!({"payload": {"v": v}, "partition": partition, "idempotency_key": key(0)});
                match send_one(&c, &edge, "orders", &env).await {
                    Ok(r) if r.status == 200 => {
                        duplicates += usize::from(r.body["duplicate"] == true);
                        let seq = r.body["sequence"].as_u64().unwrap();
                        (200, vec![(partition, seq, v)])
                    }
                    Ok(r) => (r.status, vec![]),
                    Err(_) => (0, vec![]),
                }
            } else {
                let records: Vec<Value> = (0..5)
                    .map(|i| json!({"payload": {"v": v + i}, "partition": partition, "idempotency_key": key(i)}))
                    .collect();
                match send_bulk(&c, &edge, "orders", &records).await {
                    Ok(r) if r.status == 200 => {
                        // A group is stored whole or not at all: all five new, or all five
                        // duplicates of one earlier group, with consecutive sequences.
                        duplicates += usize::from(r.body["duplicates"].as_u64() == Some(5));
                        let first = r.body["partitions"][0]["first_sequence"].as_u64().unwrap();
                        (200, (0..5).map(|i| (partition, first + i as u64, v + i as i64)).collect())
                    }
                    Ok(r) => (r.status, vec![]),
                    Err(_) => (0, vec![]),
                }
            };
            answers.lock().await.push((status, Instant::now()));
            acked.lock().await.extend(events);
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if stopped() {
            break;
        }
    }
    if duplicates > 0 {
        eprintln!(
            "producer {producer}: {duplicates} retries found their write already acknowledged"
        );
    }
}

struct Load {
    acked: Acked,
    answers: Answers,
    stop: Arc<AtomicBool>,
    producers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(edges: &[Edge], producers: i64) -> Load {
        let (acked, answers): (Acked, Answers) = Default::default();
        let stop = Arc::new(AtomicBool::new(false));
        let producers = (0..producers)
            .map(|p| {
                let edge = edges[p as usize % edges.len()].url();
                tokio::spawn(produce(edge, p + 1, acked.clone(), answers.clone(), stop.clone()))
            })
            .collect();
        Load { acked, answers, stop, producers }
    }

    async fn acked(&self) -> usize {
        self.acked.lock().await.len()
    }

    async fn wait_acked(&self, n: usize, what: &str) -> anyhow::Result<()> {
        wait_for(what, Duration::from_secs(90), || {
            let acked = self.acked.clone();
            async move { (acked.lock().await.len() >= n).then_some(()) }
        })
        .await
    }

    async fn stop(self) -> anyhow::Result<(Vec<(u32, u64, i64)>, Vec<(u16, Instant)>)> {
        self.stop.store(true, Ordering::Release);
        for p in self.producers {
            p.await?;
        }
        let acked = self.acked.lock().await.clone();
        let answers = self.answers.lock().await.clone();
        Ok((acked, answers))
    }
}

/// Flushes `table` and checks that Iceberg holds every acknowledged event exactly once
/// (iceberg-rust), that no event was stored twice, and that PyIceberg agrees.
async fn assert_iceberg_holds(
    node: &Node,
    acked: &[(u32, u64, i64)],
    opts: &EngineOpts,
) -> anyhow::Result<()> {
    node.flush("orders").await?;
    node.wait_flushed("orders", Duration::from_secs(60)).await?;
    engines::assert_exact_with(node, "orders", acked, true, opts).await?;
    let rows = engines::rows_of(
        &engines::iceberg_rust_rows_with(&node.url(), "orders", None, opts).await?,
    );
    let distinct_v: BTreeSet<i64> = rows.iter().map(|r| r.2).collect();
    assert_eq!(distinct_v.len(), rows.len(), "an event was stored twice under two sequences");
    let py = engines::python_engines(&node.url(), "orders", &["pyiceberg"], opts)?;
    let figures = engines::figures(&py["pyiceberg"])?;
    assert_eq!((figures.count, figures.distinct), (rows.len() as i64, rows.len() as i64));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_the_disk_under_load_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let weed = seaweed::start().await?;
    let mut node = Node::start(&object_env(&weed)).await?;
    let edges = [Edge::start(&node.url(), &[]).await?, Edge::start(&node.url(), &[]).await?];
    let load = Load::start(&edges, 4);
    for round in 1..=3 {
        let before = load.acked().await;
        load.wait_acked(before + 300, "300 more acknowledged events").await?;
        // The machine is gone: the process and its whole disk.
        node.kill9();
        std::fs::remove_dir_all(node.data_dir())?;
        let at_kill = load.acked().await;
        let started = Instant::now();
        node.restart().await?;
        eprintln!("round {round}: {at_kill} acknowledged; node back in {:?}", started.elapsed());
    }
    let after = load.acked().await;
    load.wait_acked(after + 300, "300 acknowledged events after the last loss").await?;
    let (acked, _) = load.stop().await?;
    assert_iceberg_holds(&node, &acked, &weed.engine_opts()).await?;
    let metrics = node.metrics().await?;
    assert!(metric_sum(&metrics, "zombi_node_log_segments_total") > 0.0);
    eprintln!("{} events acknowledged across three disk losses", acked.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keyed_retries_after_a_disk_loss_return_the_original_sequence() -> anyhow::Result<()> {
    let weed = seaweed::start().await?;
    let mut node = Node::start(&object_env(&weed)).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let c = client();
    let send = |key: &str, n: i64| {
        let env = json!({"payload": {"v": n}, "partition": 1, "idempotency_key": key});
        let (c, url) = (c.clone(), edge.url());
        async move { send_one(&c, &url, "orders", &env).await }
    };
    let mut first = Vec::new();
    for i in 0..20 {
        let r = send(&format!("k{i}"), i).await?;
        assert_eq!(r.status, 200, "{:?}", r.body);
        first.push(r.body["sequence"].as_u64().unwrap());
    }
    // Half of them committed to Iceberg and their segments truncated: their keys live on
    // in a checkpoint; the other half only in segments.
    node.flush("orders").await?;
    wait_for("the committed segments to be truncated", Duration::from_secs(30), || async {
        let m = node.metrics().await.ok()?;
        (metric_sum(&m, "zombi_node_log_segments_truncated_total") > 0.0).then_some(())
    })
    .await?;
    for i in 20..40 {
        let r = send(&format!("k{i}"), i).await?;
        assert_eq!(r.status, 200, "{:?}", r.body);
        first.push(r.body["sequence"].as_u64().unwrap());
    }
    node.kill9();
    std::fs::remove_dir_all(node.data_dir())?;
    node.restart().await?;
    for (i, seq) in first.iter().enumerate() {
        let r = wait_for("the edge to reach the node again", Duration::from_secs(30), || async {
            send(&format!("k{i}"), 1_000 + i as i64).await.ok().filter(|r| r.status == 200)
        })
        .await?;
        assert_eq!(
            (r.body["sequence"].as_u64(), r.body["duplicate"].as_bool()),
            (Some(*seq), Some(true)),
            "key k{i} after the disk loss"
        );
    }
    let fresh = send("new", 99).await?;
    assert_eq!(fresh.body["sequence"].as_u64(), Some(40), "{:?}", fresh.body);
    let acked: Vec<(u32, u64, i64)> =
        first.iter().enumerate().map(|(i, s)| (1, *s, i as i64)).chain([(1, 40, 99)]).collect();
    assert_iceberg_holds(&node, &acked, &weed.engine_opts()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_object_store_gets_no_acknowledgement_and_loses_nothing() -> anyhow::Result<()> {
    let weed = seaweed::start().await?;
    let mut env = object_env(&weed);
    env.push(("ZOMBI_NODE__ICEBERG__IO_TIMEOUT_MS", "1000"));
    let node = Node::start(&env).await?;
    let edge =
        Edge::start(&node.url(), &[("ZOMBI_EDGE__FORWARD__REQUEST_TIMEOUT_MS", "2000")]).await?;
    let load = Load::start(std::slice::from_ref(&edge), 3);
    load.wait_acked(200, "200 acknowledged events").await?;

    // A keyed write that is sent while the store hangs: its segment lands when the store
    // is back, though its producer has given up by then.
    weed.pause()?;
    let paused = Instant::now();
    let c = client();
    let keyed = json!({"payload": {"v": -1}, "partition": 0, "idempotency_key": "lost-answer"});
    let lost = send_one(&c, &edge.url(), "orders", &keyed).await?;
    assert_eq!(lost.status, 503, "{:?}", lost.body);
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(paused.elapsed())).await;
    let resumed = Instant::now();
    weed.resume()?;
    let during = load.acked().await;
    load.wait_acked(during + 200, "200 acknowledged events after the store came back").await?;
    let (acked, answers) = load.stop().await?;

    // Nothing was acknowledged while no segment could be written (a grace of two seconds
    // for segments already written when the store stopped); producers got retryable
    // errors meanwhile.
    let frozen = |at: &Instant| *at > paused + Duration::from_secs(2) && *at < resumed;
    let in_pause: Vec<u16> = answers.iter().filter(|(_, at)| frozen(at)).map(|(s, _)| *s).collect();
    assert!(!in_pause.is_empty(), "producers sent nothing during the pause");
    assert!(!in_pause.contains(&200), "acknowledged while the object store was stopped");
    assert!(
        in_pause.iter().all(|s| [0, 429, 503].contains(s)),
        "non-retryable answers: {in_pause:?}"
    );
    // The retry of the write whose answer was lost finds it.
    let retry = wait_for("the keyed retry", Duration::from_secs(30), || async {
        send_one(&c, &edge.url(), "orders", &keyed).await.ok().filter(|r| r.status == 200)
    })
    .await?;
    assert_eq!(retry.body["duplicate"].as_bool(), Some(true), "{:?}", retry.body);
    let mut acked = acked;
    acked.push((0, retry.body["sequence"].as_u64().unwrap(), -1));
    assert_iceberg_holds(&node, &acked, &weed.engine_opts()).await?;
    Ok(())
}

/// The settings of a second node for the same log: the same warehouse and prefix.
fn standby_env(weed: &Seaweed) -> Vec<(&'static str, &str)> {
    let mut env = object_env(weed);
    env.push(("ZOMBI_NODE__MAINTENANCE__FILE_GRACE_SECS", "0"));
    env
}

/// When the last answer before `at` and the first 200 after it arrived: the gap producers
/// saw between the old owner's last acknowledgement and the new owner's first.
fn ack_gap(answers: &[(u16, Instant)], at: Instant) -> Option<Duration> {
    let last = answers.iter().filter(|(s, t)| *s == 200 && *t <= at).map(|(_, t)| *t).max()?;
    let first = answers.iter().filter(|(s, t)| *s == 200 && *t > at).map(|(_, t)| *t).min()?;
    Some(first - last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_takes_over_when_the_active_node_and_its_disk_are_lost() -> anyhow::Result<()> {
    let weed = seaweed::start().await?;
    let env = standby_env(&weed);
    let mut nodes = [Node::start(&env).await?, Node::spawn_listening(&env)?];
    nodes[1].wait_role("standby", Duration::from_secs(30)).await?;
    let urls = format!("{},{}", nodes[0].url(), nodes[1].url());
    let edges = [Edge::start(&urls, &[]).await?, Edge::start(&urls, &[]).await?];
    let load = Load::start(&edges, 4);
    let mut active = 0;
    let mut losses = Vec::new();
    for round in 1..=10 {
        let before = load.acked().await;
        load.wait_acked(before + 200, "200 more acknowledged events").await?;
        // The active node's machine is gone: its process and its disk.
        nodes[active].kill9();
        let lost_at = Instant::now();
        std::fs::remove_dir_all(nodes[active].data_dir())?;
        let standby = 1 - active;
        nodes[standby].wait_role("active", Duration::from_secs(60)).await?;
        let acked = load.acked().await;
        load.wait_acked(acked + 100, "acknowledgements from the new owner").await?;
        // The lost machine comes back empty, as the new standby.
        nodes[active].restart_listening().await?;
        nodes[active].wait_role("standby", Duration::from_secs(60)).await?;
        losses.push(lost_at);
        eprintln!("round {round}: node {active} lost, node {standby} took over");
        active = standby;
    }
    let (acked, answers) = load.stop().await?;
    let gaps: Vec<Duration> = losses.iter().filter_map(|&at| ack_gap(&answers, at)).collect();
    eprintln!("last ack of the old owner → first ack of the new one: {gaps:?}");
    assert_eq!(gaps.len(), losses.len(), "a takeover without acknowledgements on both sides");
    let metrics = edges[0].metrics().await?;
    assert!(metric_sum(&metrics, "zombi_edge_node_failovers_total") > 0.0, "the edge never moved");
    assert_iceberg_holds(&nodes[active], &acked, &weed.engine_opts()).await?;
    // Spark agrees, and the standby serves catalog reads of the same committed state.
    let through = |node: &Node, engines: &[&str]| {
        engines::python_engines(&node.url(), "orders", engines, &weed.engine_opts())
    };
    let on_active = through(&nodes[active], &["pyiceberg", "spark"])?;
    let on_standby = through(&nodes[1 - active], &["pyiceberg"])?;
    let committed = engines::figures(&on_active["pyiceberg"])?;
    assert_eq!(engines::figures(&on_active["spark"])?, committed, "Spark disagrees");
    assert_eq!(
        engines::figures(&on_standby["pyiceberg"])?,
        committed,
        "the standby's catalog shows another state"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_node_resumed_after_a_takeover_acknowledges_and_commits_nothing()
-> anyhow::Result<()> {
    let weed = seaweed::start().await?;
    let env = standby_env(&weed);
    let mut old = Node::start(&env).await?;
    let new = Node::spawn_listening(&env)?;
    new.wait_role("standby", Duration::from_secs(30)).await?;
    // One edge knows only the old node, so its producers keep sending to it after it wakes.
    let timeout = [("ZOMBI_EDGE__FORWARD__REQUEST_TIMEOUT_MS", "2000")];
    let to_old = Edge::start(&old.url(), &timeout).await?;
    let to_both = Edge::start(&format!("{},{}", old.url(), new.url()), &timeout).await?;
    let edges = [to_old, to_both];
    let load = Load::start(&edges, 4);
    load.wait_acked(300, "300 acknowledged events").await?;

    old.pause()?;
    let paused_at = Instant::now();
    new.wait_role("active", Duration::from_secs(60)).await?;
    let acked = load.acked().await;
    load.wait_acked(acked + 200, "acknowledgements from the new owner").await?;
    let resumed_at = Instant::now();
    old.resume()?;
    // It learns it lost the log at its next segment (a heartbeat at the latest), refuses
    // writes and exits with an error.
    let status = old.wait_exit(Duration::from_secs(60)).await?;
    assert!(!status.success(), "the old node exited as if nothing happened");
    let acked = load.acked().await;
    load.wait_acked(acked + 100, "more acknowledgements after the old node left").await?;
    let (acked, answers) = load.stop().await?;
    eprintln!(
        "paused {:?} before the resume; {} acknowledged in all",
        resumed_at - paused_at,
        acked.len()
    );
    assert!(answers.iter().any(|(s, t)| *s != 200 && *t > resumed_at), "no refusal seen");

    // Every acknowledgement — the old node's included — is in Iceberg once, through the
    // new owner.
    assert_iceberg_holds(&new, &acked, &weed.engine_opts()).await?;
    // No version after the new owner's takeover commit was written by the old node: each
    // names the new owner.
    let keys = weed.list(seaweed::BUCKET, "lake/zombi/orders/metadata/").await?;
    let mut copies: Vec<(u64, String)> = keys
        .iter()
        .filter_map(|k| {
            let v = k.rsplit('/').next()?.strip_prefix('v')?.strip_suffix(".metadata.json")?;
            Some((v.parse().ok()?, k.clone()))
        })
        .collect();
    copies.sort();
    let mut owners = Vec::new();
    for (version, key) in &copies {
        let meta: Value = serde_json::from_slice(&weed.read(seaweed::BUCKET, key).await?)?;
        owners.push((*version, meta["properties"]["zombi.log-owner"].as_str().map(str::to_owned)));
    }
    let takeover =
        owners.iter().rposition(|(_, o)| o != &owners.last().unwrap().1).map_or(0, |i| i + 1);
    assert!(owners[takeover].1.is_some(), "the new owner never fenced the table: {owners:?}");
    assert!(
        owners[takeover..].iter().all(|(_, o)| o == &owners[takeover].1),
        "a version after the takeover names another owner: {owners:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_nodes_started_at_once_for_one_log_exactly_one_serves() -> anyhow::Result<()> {
    let weed = seaweed::start().await?;
    let env = standby_env(&weed);
    let nodes = [Node::spawn_listening(&env)?, Node::spawn_listening(&env)?];
    // Each node starts ("starting") before it either claims the log or stands by; wait
    // until both have settled.
    wait_for("one node active and one standing by", Duration::from_secs(60), || async {
        let mut roles = [nodes[0].role().await, nodes[1].role().await];
        roles.sort();
        (roles == [Some("active".to_owned()), Some("standby".to_owned())]).then_some(())
    })
    .await?;
    // For longer than a takeover takes, exactly one is active and the other stands by.
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        let roles = [nodes[0].role().await, nodes[1].role().await];
        let active = roles.iter().filter(|r| r.as_deref() == Some("active")).count();
        let standby = roles.iter().filter(|r| r.as_deref() == Some("standby")).count();
        assert_eq!((active, standby), (1, 1), "{roles:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Writes through either address end up at the active node only.
    let c = client();
    for node in &nodes {
        let r = send_one(
            &c,
            &Edge::start(&node.url(), &[]).await?.url(),
            "orders",
            &json!({"payload": 1}),
        )
        .await?;
        let active = node.role().await.as_deref() == Some("active");
        assert_eq!(r.status == 200, active, "{:?}", r.body);
        if !active {
            assert_eq!(r.code(), "node_unavailable", "{:?}", r.body);
        }
    }
    Ok(())
}
