//! Overload and outages: a flood gets only 429s and bounded memory; a missing node gets
//! 503s quickly; both recover.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use zombi_tests::producer::{Encoding, ndjson, post, send_one};
use zombi_tests::{Edge, Node, client, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flood_gets_429s_with_bounded_memory() -> anyhow::Result<()> {
    let node = Node::start(&[
        ("ZOMBI_NODE__LIMITS__MAX_INFLIGHT_BYTES", "1048576"),
        ("ZOMBI_NODE__LIMITS__MAX_BATCH_BYTES", "1048576"),
    ])
    .await?;
    let edge = Edge::start(
        &node.url(),
        &[
            ("ZOMBI_EDGE__LIMITS__MAX_INFLIGHT_BYTES", "2097152"),
            ("ZOMBI_EDGE__LIMITS__MAX_REQUEST_BYTES", "524288"),
            ("ZOMBI_EDGE__LIMITS__MAX_EVENT_BYTES", "65536"),
            ("ZOMBI_EDGE__FORWARD__MAX_BATCH_BYTES", "524288"),
            // A slow node on a loaded machine must show as 429s, not forward timeouts.
            ("ZOMBI_EDGE__FORWARD__REQUEST_TIMEOUT_MS", "120000"),
        ],
    )
    .await?;
    let url = format!("{}/tables/flood/bulk", edge.url());
    // ~400 KiB per request: a handful fill the edge's 2 MiB budget.
    let records: Vec<_> =
        (0..100).map(|i| json!({"payload": {"i": i, "pad": "z".repeat(4000)}})).collect();
    let body = Arc::new(ndjson(&records));
    let (rss_edge_before, rss_node_before) = (edge.rss_kib().unwrap(), node.rss_kib().unwrap());

    // ZOMBI_FLOOD_SECS stretches the flood into a soak (default 8 s).
    let secs = std::env::var("ZOMBI_FLOOD_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for t in 0..48 {
        let (url, body) = (url.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
            for i in 0..100_000 {
                if Instant::now() > deadline {
                    break;
                }
                // Half the producers stream bodies without Content-Length.
                let status = if t % 2 == 0 {
                    match post(
                        &c,
                        &url,
                        Some("application/x-ndjson"),
                        Encoding::Identity,
                        &body,
                        &[],
                    )
                    .await
                    {
                        Ok(r) => {
                            if r.status == 429 {
                                assert!(r.retry_after.is_some(), "429 without Retry-After");
                            }
                            r.status
                        }
                        Err(_) => 0,
                    }
                } else {
                    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                        body.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
                    let stream = futures::stream::iter(chunks);
                    match c
                        .post(&url)
                        .header("content-type", "application/x-ndjson")
                        .body(reqwest::Body::wrap_stream(stream))
                        .send()
                        .await
                    {
                        Ok(r) => r.status().as_u16(),
                        // The edge may answer 429 and close before the stream ends.
                        Err(_) => 0,
                    }
                };
                *statuses.entry(status).or_default() += 1;
                let _ = i;
            }
            statuses
        }));
    }
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut peak_edge = 0;
    let mut peak_node = 0;
    while tasks.iter().any(|t| !t.is_finished()) {
        peak_edge = peak_edge.max(edge.rss_kib().unwrap_or(0));
        peak_node = peak_node.max(node.rss_kib().unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for t in tasks {
        for (s, n) in t.await? {
            *statuses.entry(s).or_default() += n;
        }
    }
    eprintln!(
        "flood statuses {statuses:?}; peak RSS edge {peak_edge} KiB (from {rss_edge_before}), node {peak_node} KiB (from {rss_node_before})"
    );
    let unexpected: Vec<_> = statuses.keys().filter(|s| ![200u16, 429, 0].contains(s)).collect();
    assert!(unexpected.is_empty(), "only 200 and 429 are acceptable under a flood: {statuses:?}");
    assert!(
        statuses.get(&429).copied().unwrap_or(0) > 0,
        "the flood must be pushed back: {statuses:?}"
    );
    assert!(
        statuses.get(&200).copied().unwrap_or(0) > 0,
        "some requests must get through: {statuses:?}"
    );
    // Connection errors are only acceptable for streamed bodies cut short by an early 429.
    assert!(
        statuses.get(&0).copied().unwrap_or(0) <= statuses.get(&429).copied().unwrap_or(0),
        "{statuses:?}"
    );
    // Bounded: the edge holds at most its 2 MiB budget of bodies plus buffers; the node its
    // 1 MiB budget plus RocksDB memtables and one flush cycle (32 MiB of payload, a few
    // copies). The flood offers gigabytes (every 429 is ~400 KiB refused), so an unbounded
    // queue would blow far past these limits.
    assert!(peak_edge < rss_edge_before + 150 * 1024, "edge RSS grew to {peak_edge} KiB");
    assert!(peak_node < rss_node_before + 600 * 1024, "node RSS grew to {peak_node} KiB");

    // Both processes survived, and a normal write works.
    let r = send_one(&client(), &edge.url(), "flood", &json!({"payload": "after"})).await?;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Everything acknowledged is stored: 100 per 200 plus the final event.
    let stored = node.table_events("flood").await?;
    assert_eq!(stored, statuses[&200] * 100 + 1);
    Ok(())
}

#[tokio::test]
async fn node_down_means_503_quickly_and_recovery_after() -> anyhow::Result<()> {
    let mut node = Node::start(&[]).await?;
    // A long request timeout: a fast 503 must come from the refused connection itself.
    let edge =
        Edge::start(&node.url(), &[("ZOMBI_EDGE__FORWARD__REQUEST_TIMEOUT_MS", "60000")]).await?;
    let c = client();
    let r = send_one(&c, &edge.url(), "t", &json!({"payload": 1})).await?;
    assert_eq!(r.status, 200);

    node.kill9();
    for _ in 0..3 {
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            send_one(&c, &edge.url(), "t", &json!({"payload": 2})),
        )
        .await
        .expect("a down node must not leave producers waiting")?;
        assert_eq!(r.status, 503, "{:?}", r.body);
        assert_eq!(r.code(), "node_unavailable");
    }
    // The edge itself stays healthy: it is stateless and the node is someone else's concern.
    assert_eq!(c.get(format!("{}/health", edge.url())).send().await?.status(), 200);

    node.restart().await?;
    let r = wait_for("writes through the edge to succeed again", Duration::from_secs(30), || {
        let (c, url) = (c.clone(), edge.url());
        async move {
            send_one(&c, &url, "t", &json!({"payload": 3})).await.ok().filter(|r| r.status == 200)
        }
    })
    .await?;
    assert_eq!(r.body["sequence"].as_u64(), Some(1), "sequence continues after the outage");
    Ok(())
}
