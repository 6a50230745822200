//! Acknowledged means durable: `kill -9` of the node under load, restarts, idempotent
//! retries across restarts, graceful shutdown.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;
use zombi_tests::producer::{send_bulk, send_one};
use zombi_tests::{Edge, Node, client, wait_for};

/// What producers were told: event id → (partition, sequence).
type Acked = Arc<Mutex<HashMap<String, (u64, u64)>>>;

/// One producer: alternates single and bulk requests with unique ids until `stop` or its
/// bounds (count and time), recording every acknowledged event.
async fn produce(
    edge: String,
    producer: usize,
    acked: Acked,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) {
    let c = client();
    // A backstop only: the test stops producers through `stop`.
    let deadline = Instant::now() + Duration::from_secs(300);
    for round in 0..20_000u64 {
        if stop.load(Ordering::Acquire) || Instant::now() > deadline {
            break;
        }
        let partition = (producer as u64 + round) % 3;
        if round % 2 == 0 {
            let id = format!("p{producer}-r{round}");
            let env = json!({"payload": {"id": id}, "partition": partition});
            sent.fetch_add(1, Ordering::Relaxed);
            if let Ok(r) = send_one(&c, &edge, "orders", &env).await
                && r.status == 200
            {
                let seq = r.body["sequence"].as_u64().unwrap();
                acked.lock().await.insert(id, (partition, seq));
            }
        } else {
            let ids: Vec<String> = (0..5).map(|i| format!("p{producer}-r{round}-{i}")).collect();
            let records: Vec<Value> = ids
                .iter()
                .map(|id| json!({"payload": {"id": id}, "partition": partition}))
                .collect();
            sent.fetch_add(5, Ordering::Relaxed);
            if let Ok(r) = send_bulk(&c, &edge, "orders", &records).await
                && r.status == 200
            {
                // One partition per request, so the range maps onto the records in order.
                let first = r.body["partitions"][0]["first_sequence"].as_u64().unwrap();
                let mut acked = acked.lock().await;
                for (i, id) in ids.into_iter().enumerate() {
                    acked.insert(id, (partition, first + i as u64));
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_under_load_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    kill9_under_load("wal").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_under_load_with_fsync_durability() -> anyhow::Result<()> {
    kill9_under_load("fsync").await
}

#[tokio::test]
async fn durability_none_keeps_everything_over_a_graceful_restart() -> anyhow::Result<()> {
    let mut node = Node::start(&[("ZOMBI_NODE__DURABILITY", "none")]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let c = client();
    let records: Vec<Value> =
        (0..50).map(|i| json!({"payload": {"i": i}, "partition": i % 2})).collect();
    let r = send_bulk(&c, &edge.url(), "light", &records).await?;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(node.terminate()?.success());
    node.restart().await?;
    let r = wait_for("writes after the restart", Duration::from_secs(30), || {
        let (c, url) = (c.clone(), edge.url());
        async move {
            send_one(&c, &url, "light", &json!({"payload": 1}))
                .await
                .ok()
                .filter(|r| r.status == 200)
        }
    })
    .await?;
    assert_eq!(r.body["sequence"].as_u64(), Some(25), "partition 0 continues after 25 events");
    node.terminate()?;
    assert_eq!(node.dump("light")?.len(), 51);
    Ok(())
}

async fn kill9_under_load(durability: &str) -> anyhow::Result<()> {
    let mut node = Node::start(&[("ZOMBI_NODE__DURABILITY", durability)]).await?;
    let edges = [Edge::start(&node.url(), &[]).await?, Edge::start(&node.url(), &[]).await?];
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut producers = Vec::new();
    for p in 0..4 {
        let edge = edges[p % 2].url();
        producers.push(tokio::spawn(produce(edge, p, acked.clone(), stop.clone(), sent.clone())));
    }

    let count = || {
        let acked = acked.clone();
        move || {
            let acked = acked.clone();
            async move { Some(acked.lock().await.len()) }
        }
    };
    let at_least = |n: usize| {
        let acked = acked.clone();
        move || {
            let acked = acked.clone();
            async move { (acked.lock().await.len() >= n).then_some(()) }
        }
    };
    wait_for("400 acknowledged events", Duration::from_secs(60), at_least(400)).await?;
    node.kill9();
    let before_crash = count()().await.unwrap();
    node.restart().await?;
    wait_for(
        "400 more acknowledged events after restart",
        Duration::from_secs(60),
        at_least(before_crash + 400),
    )
    .await?;
    stop.store(true, Ordering::Release);
    for p in producers {
        p.await?;
    }
    node.terminate()?;

    let acked = acked.lock().await;
    let stored = zombi_tests::dump(node.data_dir(), "orders")?;
    let mut by_id: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
    let mut by_partition: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for e in &stored {
        let payload: Value = serde_json::from_str(e["payload"].as_str().unwrap())?;
        let (p, s) = (e["partition"].as_u64().unwrap(), e["sequence"].as_u64().unwrap());
        by_id.entry(payload["id"].as_str().unwrap().to_owned()).or_default().push((p, s));
        by_partition.entry(p).or_default().push(s);
    }
    // Every id was sent once, so no id may be stored twice.
    let dups: Vec<_> = by_id.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(dups.is_empty(), "duplicated events: {dups:?}");
    // Every acknowledged event is stored, under the sequence it was acknowledged with.
    for (id, at) in acked.iter() {
        assert_eq!(by_id.get(id).map(|v| v[0]), Some(*at), "acknowledged {id} missing or moved");
    }
    // Sequences are dense per partition: none skipped, none reused across the restart.
    for (p, seqs) in &by_partition {
        let expected: Vec<u64> = (0..seqs.len() as u64).collect();
        assert_eq!(seqs, &expected, "partition {p} sequences");
    }
    assert!(acked.len() >= before_crash + 400);
    eprintln!(
        "sent {} events, {} acknowledged ({before_crash} before the crash), {} stored",
        sent.load(Ordering::Relaxed),
        acked.len(),
        stored.len()
    );
    Ok(())
}

#[tokio::test]
async fn idempotent_retries_survive_restarts() -> anyhow::Result<()> {
    let mut node = Node::start(&[]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let c = client();
    let url = edge.url();

    let first = send_one(
        &c,
        &url,
        "pay",
        &json!({"payload": {"n": 1}, "partition": 2, "idempotency_key": "k-1"}),
    )
    .await?;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let seq = first.body["sequence"].as_u64().unwrap();
    // Same key via the header, different payload: still the original sequence, nothing new.
    let r = zombi_tests::producer::post(
        &c,
        &format!("{url}/tables/pay"),
        Some("application/json"),
        zombi_tests::producer::Encoding::Identity,
        br#"{"payload":{"n":2},"partition":2}"#,
        &[("idempotency-key", "k-1")],
    )
    .await?;
    assert_eq!(
        (r.status, r.body["sequence"].as_u64(), r.body["duplicate"].as_bool()),
        (200, Some(seq), Some(true))
    );

    // Bulk with keys, one repeated inside the request.
    let records = vec![
        json!({"payload": 1, "idempotency_key": "b-1"}),
        json!({"payload": 2, "idempotency_key": "b-2"}),
        json!({"payload": 3, "idempotency_key": "b-1"}),
    ];
    let bulk = send_bulk(&c, &url, "pay", &records).await?;
    assert_eq!(bulk.status, 200, "{:?}", bulk.body);
    assert_eq!(
        (bulk.body["accepted"].as_u64(), bulk.body["duplicates"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(node.table_events("pay").await?, 3);

    // Across a graceful restart and a kill -9, retries return the original sequences.
    for crash in [false, true] {
        if crash {
            node.kill9();
        } else {
            assert!(node.terminate()?.success(), "graceful shutdown exits 0");
        }
        node.restart().await?;
        let r = wait_for("the edge to reach the restarted node", Duration::from_secs(30), || {
            let c = c.clone();
            let url = url.clone();
            async move {
                let env = json!({"payload": {"n": 3}, "partition": 2, "idempotency_key": "k-1"});
                send_one(&c, &url, "pay", &env).await.ok().filter(|r| r.status == 200)
            }
        })
        .await?;
        assert_eq!(
            (r.body["sequence"].as_u64(), r.body["duplicate"].as_bool()),
            (Some(seq), Some(true))
        );
        let again = send_bulk(&c, &url, "pay", &records).await?;
        assert_eq!(
            ranges_of(&again.body),
            ranges_of(&bulk.body),
            "bulk retry after restart (crash={crash})"
        );
        assert_eq!(again.body["duplicates"].as_u64(), Some(3));
    }
    node.terminate()?;
    let stored = node.dump("pay")?;
    assert_eq!(stored.len(), 3, "one stored event per key: {stored:?}");
    let keys: BTreeSet<&str> =
        stored.iter().map(|e| e["idempotency_key"].as_str().unwrap()).collect();
    assert_eq!(keys, BTreeSet::from(["k-1", "b-1", "b-2"]));
    // New keys after the restarts continue the sequence instead of reusing one.
    node.restart().await?;
    let r = wait_for("a fresh write", Duration::from_secs(30), || {
        let c = c.clone();
        let url = url.clone();
        async move {
            let env = json!({"payload": 9, "partition": 2, "idempotency_key": "k-2"});
            send_one(&c, &url, "pay", &env).await.ok().filter(|r| r.status == 200)
        }
    })
    .await?;
    assert_eq!(r.body["sequence"].as_u64(), Some(seq + 1));
    Ok(())
}

fn ranges_of(v: &Value) -> Value {
    v["partitions"].clone()
}
