//! The producer API end to end: table names, envelopes, encodings, limits, auth — each
//! checked for its status code and for what it left in the node.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use zombi_tests::producer::{Encoding, ndjson, post, raw_request, send_bulk, send_one};
use zombi_tests::{Edge, Node, client};

const JSON: Option<&str> = Some("application/json");
const NDJSON: Option<&str> = Some("application/x-ndjson");

#[tokio::test]
async fn bad_table_names_are_rejected_and_nothing_is_stored() -> anyhow::Result<()> {
    let node = Node::start(&[]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let addr: std::net::SocketAddr = edge.url().trim_start_matches("http://").parse()?;
    let long = format!("a{}", "b".repeat(128));
    let bad = [
        "a:b",
        "a/b",
        "..",
        "a..b",
        "",
        &long,
        "1abc",
        "_abc",
        "%C3%A9vents",
        "caf%C3%A9",
        "a%2Fb",
        "a%3Ab",
        "a.b",
        "a%20b",
    ];
    let body = br#"{"payload":{"x":1}}"#;
    let ndjson_body = b"{\"payload\":1}\n";
    for name in bad {
        for (path, ct, body) in [
            (format!("/tables/{name}"), "application/json", &body[..]),
            (format!("/tables/{name}/bulk"), "application/x-ndjson", &ndjson_body[..]),
        ] {
            let (status, text) =
                raw_request(addr, "POST", &path, &[("content-type", ct)], body).await?;
            assert_eq!(status, 400, "{path} → {status} {text}");
            assert!(text.contains("invalid_table_name"), "{path}: {text}");
        }
    }
    // The longest legal name works, proving the boundary is exactly 128.
    let ok = format!("a{}", "b".repeat(127));
    let r = send_one(&client(), &edge.url(), &ok, &json!({"payload": 1})).await?;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let stats = node.stats().await?;
    let tables: Vec<&String> = stats["tables"].as_object().unwrap().keys().collect();
    assert_eq!(tables, vec![&ok], "only the legal table may exist");
    Ok(())
}

/// A MessagePack internal batch of one event, for calling the node directly.
fn one_event_batch(table: &str, partition: u32, timestamp_ms: Option<i64>) -> Vec<u8> {
    use zombi_shared::wire::{Group, IngestBatch, Payload, WireEvent, encode};
    let event = WireEvent {
        partition,
        timestamp_ms,
        idempotency_key: None,
        payload: Payload::Json("1".into()),
    };
    encode(&IngestBatch { groups: vec![Group { table: table.into(), events: vec![event] }] })
}

/// Sequences of the acks in a reply, as (partition, first, last) per partition.
fn ranges(reply: &Value) -> BTreeMap<u64, (u64, u64, u64)> {
    reply["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition"].as_u64().unwrap(),
                (
                    p["first_sequence"].as_u64().unwrap(),
                    p["last_sequence"].as_u64().unwrap(),
                    p["count"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn single_and_bulk_writes_get_dense_sequences() -> anyhow::Result<()> {
    let node = Node::start(&[]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let c = client();
    let url = edge.url();

    for i in 0..5u64 {
        let r = send_one(
            &c,
            &url,
            "clicks",
            &json!({"payload": {"i": i}, "timestamp_ms": 1_767_225_600_000i64}),
        )
        .await?;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body, json!({"table": "clicks", "partition": 0, "sequence": i}));
    }
    for i in 0..3u64 {
        let r = send_one(&c, &url, "clicks", &json!({"payload_base64": "AP8=", "partition": 7}))
            .await?;
        assert_eq!((r.body["partition"].as_u64(), r.body["sequence"].as_u64()), (Some(7), Some(i)));
    }

    // Bulk as JSON, then NDJSON and JSON under each encoding; each continues the partitions.
    let records: Vec<Value> =
        (0..4).map(|i| json!({"payload": {"b": i}, "partition": i % 2})).collect();
    let r = send_bulk(&c, &url, "clicks", &records).await?;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["accepted"], 4);
    assert_eq!(ranges(&r.body), BTreeMap::from([(0, (5, 6, 2)), (1, (0, 1, 2))]));

    let mut next = BTreeMap::from([(0u64, 7u64), (1, 2)]);
    for enc in [Encoding::Identity, Encoding::Gzip, Encoding::Zstd] {
        for (ct, body) in [
            (NDJSON, ndjson(&records)),
            (JSON, serde_json::to_vec(&json!({ "records": records }))?),
        ] {
            let r = post(&c, &format!("{url}/tables/clicks/bulk"), ct, enc, &body, &[]).await?;
            assert_eq!(r.status, 200, "{enc:?} {ct:?}: {:?}", r.body);
            let got = ranges(&r.body);
            for (p, (first, last, count)) in &got {
                assert_eq!(*first, next[p], "partition {p} continues densely");
                assert_eq!(*last, first + count - 1);
                *next.get_mut(p).unwrap() += count;
            }
        }
    }
    // A gzip single event works too.
    let r =
        post(&c, &format!("{url}/tables/clicks"), JSON, Encoding::Gzip, br#"{"payload":"g"}"#, &[])
            .await?;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["sequence"].as_u64(), Some(next[&0]));

    // What is stored is exactly what was acknowledged: dense sequences, verbatim payloads.
    let events = node.dump("clicks")?;
    let mut per_partition: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for e in &events {
        per_partition
            .entry(e["partition"].as_u64().unwrap())
            .or_default()
            .push(e["sequence"].as_u64().unwrap());
    }
    assert_eq!(per_partition[&0], (0..next[&0] + 1).collect::<Vec<_>>());
    assert_eq!(per_partition[&1], (0..next[&1]).collect::<Vec<_>>());
    assert_eq!(per_partition[&7], vec![0, 1, 2]);
    assert_eq!(events[0]["payload"], r#"{"i":0}"#);
    assert_eq!(events[0]["timestamp_ms"], 1_767_225_600_000i64);
    let binary = events.iter().find(|e| e["partition"] == 7).unwrap();
    assert_eq!(binary["payload_base64"], "AP8=");
    assert_eq!(node.table_events("clicks").await?, events.len() as u64);
    Ok(())
}

#[tokio::test]
async fn bad_requests_get_the_right_status_and_store_nothing() -> anyhow::Result<()> {
    let node = Node::start(&[("ZOMBI_NODE__LIMITS__MAX_BATCH_BYTES", "1048576")]).await?;
    let edge = Edge::start(
        &node.url(),
        &[
            ("ZOMBI_EDGE__LIMITS__MAX_EVENT_BYTES", "1024"),
            ("ZOMBI_EDGE__LIMITS__MAX_REQUEST_BYTES", "65536"),
        ],
    )
    .await?;
    let c = client();
    let single = format!("{}/tables/t", edge.url());
    let bulk = format!("{}/tables/t/bulk", edge.url());
    let ok_event = br#"{"payload":{"a":1}}"#.to_vec();
    let big_payload = serde_json::to_vec(&json!({"payload": "x".repeat(2000)}))?;
    let over_request = vec![b' '; 70_000];
    // Expands past the 64 KiB request limit only once decompressed.
    let bomb_body = {
        let mut b = br#"{"payload":""#.to_vec();
        b.extend(std::iter::repeat_n(b'a', 200_000));
        b.extend(br#""}"#);
        b
    };
    let bulk_bad_third =
        ndjson(&[json!({"payload": 1}), json!({"payload": 2}), json!({"payload": 3, "bogus": 1})]);
    let bulk_big_second = ndjson(&[json!({"payload": 1}), json!({"payload": "y".repeat(2000)})]);

    // (what, url, content type, encoding, body, status, record index named in the message)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Encoding, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("text/plain", &single, Some("text/plain"), Encoding::Identity, ok_event.clone(), 415, ""),
        ("no content type", &single, None, Encoding::Identity, ok_event.clone(), 415, ""),
        ("ndjson on single", &single, NDJSON, Encoding::Identity, ok_event.clone(), 415, ""),
        ("malformed json", &single, JSON, Encoding::Identity, b"{\"payload\":".to_vec(), 400, ""),
        ("no payload", &single, JSON, Encoding::Identity, b"{\"partition\":1}".to_vec(), 400, ""),
        ("event too large", &single, JSON, Encoding::Identity, big_payload, 413, ""),
        ("body too large", &single, JSON, Encoding::Identity, over_request, 413, ""),
        ("decompressed too large", &single, JSON, Encoding::Gzip, bomb_body.clone(), 413, ""),
        ("zstd decompressed too large", &single, JSON, Encoding::Zstd, bomb_body, 413, ""),
        ("bulk bad record", &bulk, NDJSON, Encoding::Identity, bulk_bad_third, 400, "2"),
        ("bulk big record", &bulk, NDJSON, Encoding::Identity, bulk_big_second, 413, "1"),
        ("bulk empty", &bulk, JSON, Encoding::Identity, br#"{"records":[]}"#.to_vec(), 400, ""),
        (
            "bulk not records",
            &bulk,
            JSON,
            Encoding::Identity,
            br#"[{"payload":1}]"#.to_vec(),
            400,
            "",
        ),
    ];
    for (what, url, ct, enc, body, status, index) in cases {
        let r = post(&c, url, ct, enc, &body, &[]).await?;
        assert_eq!(r.status, status, "{what}: {:?}", r.body);
        assert!(r.body["error"]["code"].is_string(), "{what}: error body {:?}", r.body);
        if !index.is_empty() {
            let msg = r.body["error"]["message"].as_str().unwrap();
            assert!(msg.contains(&format!("record {index}")), "{what}: {msg}");
        }
    }
    // An unknown content encoding is refused too.
    let r = c
        .post(&single)
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body(ok_event.clone())
        .send()
        .await?;
    assert_eq!(r.status(), 415);
    assert_eq!(node.table_events("t").await?, 0, "nothing may be stored");

    // The node refuses hostile internal batches on its own.
    let internal = format!("{}{}", node.url(), zombi_shared::wire::INGEST_PATH);
    let msgpack = Some(zombi_shared::wire::MSGPACK_CONTENT_TYPE);
    let bad_name = one_event_batch("../etc", 0, None);
    let bad_ts = one_event_batch("t", 0, Some(-1));
    for (what, ct, body, status) in [
        ("garbage", msgpack, b"\xc1\x00garbage".to_vec(), 400),
        (
            "truncated",
            msgpack,
            zombi_shared::wire::encode(&json!({"groups": [{"table": "t"}]})),
            400,
        ),
        ("json body", JSON, b"{}".to_vec(), 415),
        ("bad table", msgpack, bad_name, 400),
        ("bad timestamp", msgpack, bad_ts, 400),
        ("too large", msgpack, vec![0x90; 1_500_000], 413),
    ] {
        let r = post(&c, &internal, ct, Encoding::Identity, &body, &[]).await?;
        assert_eq!(r.status, status, "node {what}: {:?}", r.body);
    }
    assert_eq!(node.table_events("t").await?, 0, "nothing may be stored");
    assert!(node.stats().await?["tables"].as_object().unwrap().is_empty());

    // A good request still works afterwards.
    let r = post(&c, &single, JSON, Encoding::Identity, &ok_event, &[]).await?;
    assert_eq!(r.status, 200, "{:?}", r.body);
    Ok(())
}

#[tokio::test]
async fn tokens_are_enforced_on_edge_and_node() -> anyhow::Result<()> {
    let internal = "internal-token-0123456789";
    let producer = "producer-token-0123456789";
    let node = Node::start(&[
        ("ZOMBI_NODE__AUTH__INTERNAL_TOKENS", &format!("[\"{internal}\"]")),
        ("ZOMBI_NODE__AUTH__ADMIN_TOKEN", "admin-token-0123456789"),
    ])
    .await?;
    let good_edge = Edge::start(
        &node.url(),
        &[
            ("ZOMBI_EDGE__AUTH__INTERNAL_TOKEN", internal),
            ("ZOMBI_EDGE__AUTH__PRODUCER_TOKENS", &format!("[\"{producer}\"]")),
        ],
    )
    .await?;
    let wrong_internal =
        Edge::start(&node.url(), &[("ZOMBI_EDGE__AUTH__INTERNAL_TOKEN", "not-the-internal-token")])
            .await?;
    let c = client();
    let body = br#"{"payload":1}"#;
    let url = format!("{}/tables/t", good_edge.url());
    let bearer = format!("Bearer {producer}");
    for (headers, status) in [
        (vec![], 401),
        (vec![("authorization", "Bearer nope-nope-nope-nope")], 403),
        (vec![("authorization", "Basic abc")], 401),
        (vec![("authorization", bearer.as_str())], 200),
    ] {
        let r = post(&c, &url, JSON, Encoding::Identity, body, &headers).await?;
        assert_eq!(r.status, status, "{headers:?}: {:?}", r.body);
    }
    // An edge with the wrong internal token gets no 2xx: the node refuses it.
    let r = post(
        &c,
        &format!("{}/tables/t", wrong_internal.url()),
        JSON,
        Encoding::Identity,
        body,
        &[],
    )
    .await?;
    assert!(r.status >= 500, "{:?}", r);
    // Direct internal calls without the token.
    let batch = zombi_shared::wire::encode(&zombi_shared::wire::IngestBatch { groups: vec![] });
    let internal_url = format!("{}{}", node.url(), zombi_shared::wire::INGEST_PATH);
    let r = post(&c, &internal_url, Some("application/msgpack"), Encoding::Identity, &batch, &[])
        .await?;
    assert_eq!(r.status, 401);
    // Admin endpoints need the admin token.
    assert_eq!(c.get(format!("{}/stats", node.url())).send().await?.status(), 401);
    let stats: Value = c
        .get(format!("{}/stats", node.url()))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(stats["tables"]["t"]["events"], 1, "exactly the one authorised event: {stats}");
    Ok(())
}

#[tokio::test]
async fn partitions_above_the_limit_are_refused() -> anyhow::Result<()> {
    let node = Node::start(&[]).await?;
    let edge = Edge::start(&node.url(), &[("ZOMBI_EDGE__LIMITS__MAX_PARTITION", "15")]).await?;
    let c = client();
    let r = send_one(&c, &edge.url(), "parts", &json!({"payload": 1, "partition": 16})).await?;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("partition 16"), "{:?}", r.body);
    let r = send_one(&c, &edge.url(), "parts", &json!({"payload": 1, "partition": 15})).await?;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // The node applies its own limit (1023 by default) to what reaches it directly.
    let batch = one_event_batch("parts", 1024, None);
    let url = format!("{}{}", node.url(), zombi_shared::wire::INGEST_PATH);
    let r = post(
        &c,
        &url,
        Some(zombi_shared::wire::MSGPACK_CONTENT_TYPE),
        Encoding::Identity,
        &batch,
        &[],
    )
    .await?;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(node.table_events("parts").await?, 1);
    Ok(())
}

/// `?wait=committed`: the answer comes once the events are in a committed snapshot that a
/// reader sees, or as 202 with the sequences when the wait runs out; bad wait parameters
/// are refused before anything is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_can_wait_until_their_events_are_committed() -> anyhow::Result<()> {
    use zombi_tests::engines::{iceberg_rust_rows, rows_of};
    let node = Node::start(&[("ZOMBI_NODE__FLUSH__INTERVAL_MS", "300")]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let c = client();
    let (catalog, base) = (node.url(), edge.url());
    let single = |query: &str| format!("{base}/tables/orders{query}");
    let event = serde_json::to_vec(&json!({"payload": {"v": 1}, "partition": 2}))?;

    let r = post(&c, &single("?wait=committed"), JSON, Encoding::Identity, &event, &[]).await?;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["committed"], true, "{:?}", r.body);
    let (partition, sequence) =
        (r.body["partition"].as_u64().unwrap(), r.body["sequence"].as_u64().unwrap());
    let snapshot = r.body["snapshot_id"].as_i64().expect("a committed write names its snapshot");
    // The snapshot it names holds the event, read through the catalog.
    let rows = rows_of(&iceberg_rust_rows(&catalog, "orders", Some(snapshot)).await?);
    assert!(rows.iter().any(|(p, s, _)| (*p as u64, *s) == (partition, sequence)), "{rows:?}");

    // Bulk, over three partitions, NDJSON: every record is in the answer's snapshot.
    let records: Vec<Value> =
        (0..30).map(|i| json!({"payload": {"v": i}, "partition": i % 3})).collect();
    let r = post(
        &c,
        &format!("{base}/tables/orders/bulk?wait=committed&timeout_ms=20000"),
        NDJSON,
        Encoding::Identity,
        &ndjson(&records),
        &[],
    )
    .await?;
    assert_eq!((r.status, &r.body["committed"]), (200, &json!(true)), "{:?}", r.body);
    let snapshot = r.body["snapshot_id"].as_i64().unwrap();
    let rows = rows_of(&iceberg_rust_rows(&catalog, "orders", Some(snapshot)).await?);
    for range in r.body["partitions"].as_array().unwrap() {
        let p = range["partition"].as_u64().unwrap() as u32;
        let (first, last) =
            (range["first_sequence"].as_u64().unwrap(), range["last_sequence"].as_u64().unwrap());
        for s in first..=last {
            assert!(rows.iter().any(|(rp, rs, _)| (*rp, *rs) == (p, s)), "({p}, {s}) missing");
        }
    }
    // A write that does not wait is answered as before, without a commit outcome.
    let r = post(&c, &single(""), JSON, Encoding::Identity, &event, &[]).await?;
    assert_eq!(r.status, 200);
    assert!(r.body.get("committed").is_none(), "{:?}", r.body);

    // Bad wait parameters: 400, nothing stored.
    let before = node.table_events("orders").await?;
    for query in [
        "?wait=true",
        "?timeout_ms=5",
        "?wait=committed&timeout_ms=0",
        "?wait=committed&timeout_ms=61000",
        "?wiat=committed",
    ] {
        let r = post(&c, &single(query), JSON, Encoding::Identity, &event, &[]).await?;
        assert_eq!((r.status, r.code()), (400, "invalid_request"), "{query}: {:?}", r.body);
    }
    assert_eq!(node.table_events("orders").await?, before);

    // The node refuses to wait for sequences it never acknowledged.
    let answer = c
        .post(format!("{catalog}/internal/v1/commit-wait"))
        .json(&json!({"table": "orders", "watermarks": {"2": 1_000_000}, "timeout_ms": 10}))
        .send()
        .await?;
    assert_eq!(answer.status().as_u16(), 400);
    Ok(())
}

/// A wait that runs out answers 202 with the sequences: the events are durable and are
/// committed later, so the producer must not write them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_wait_that_runs_out_answers_202_and_the_events_still_commit() -> anyhow::Result<()>
{
    // Commits only on request during the test.
    let node = Node::start(&[("ZOMBI_NODE__FLUSH__INTERVAL_MS", "600000")]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let c = client();
    let event = serde_json::to_vec(&json!({"payload": {"v": 7}}))?;
    // The table's first write starts its flusher, whose first cycle runs at once and may
    // commit that write: create the table and let that cycle pass first.
    let first =
        post(&c, &format!("{}/tables/slow", edge.url()), JSON, Encoding::Identity, &event, &[])
            .await?;
    assert_eq!(first.status, 200, "{:?}", first.body);
    node.flush("slow").await?;
    let url = format!("{}/tables/slow?wait=committed&timeout_ms=300", edge.url());
    let started = std::time::Instant::now();
    let r = post(&c, &url, JSON, Encoding::Identity, &event, &[]).await?;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(r.body["committed"], false);
    assert!(r.body.get("snapshot_id").is_none(), "{:?}", r.body);
    let sequence = r.body["sequence"].as_u64().unwrap();
    // Stored once; a flush commits it.
    let flushed = node.flush("slow").await?;
    assert_eq!(flushed["watermarks"]["0"].as_u64(), Some(sequence + 1), "{flushed:?}");
    assert_eq!(node.table_events("slow").await?, 2);
    let m = edge.metrics().await?;
    assert!(m.contains("zombi_edge_commit_waits_total{result=\"timeout\"} 1"), "{m}");
    Ok(())
}
