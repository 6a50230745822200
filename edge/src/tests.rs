//! The edge served by [`crate::run`] on an ephemeral port in front of a fake node.

use std::io::Write as _;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zombi_shared::config::EdgeConfig;

use crate::test_support::{Seen, fake_node, gated_node, wait_until};

const TOKEN: &str = "producer-token-0123456789";

struct Edge {
    addr: String,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    http: reqwest::Client,
}

impl Edge {
    async fn start(mut config: EdgeConfig) -> Edge {
        config.listen = "127.0.0.1:0".parse().unwrap();
        let listener = TcpListener::bind(config.listen).await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(crate::run(config, listener, shutdown.clone()));
        Edge { addr, shutdown, task, http: reqwest::Client::builder().no_proxy().build().unwrap() }
    }

    fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::RequestBuilder {
        self.http
            .post(format!("http://{}{path}", self.addr))
            .header("content-type", content_type)
            .body(body)
    }

    /// Sends `request` as written, with no URL normalisation, and returns status and body.
    async fn raw(&self, request: String) -> (u16, Value) {
        let mut stream = TcpStream::connect(&self.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        // Read until EOF or reset: a server that answers before reading a body may reset.
        let mut response = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut chunk).await {
            response.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&response);
        let status = text[9..12].parse().unwrap();
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

fn config(node_url: &str) -> EdgeConfig {
    let mut config = EdgeConfig { node_url: node_url.into(), ..EdgeConfig::default() };
    config.forward.linger_us = 0;
    config
}

async fn edge_with_node() -> (Edge, Seen) {
    let (url, seen) = fake_node().await;
    (Edge::start(config(&url)).await, seen)
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn raw_post(path: &str, headers: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: edge\r\nconnection: close\r\ncontent-length: {}\r\n{headers}\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn single_events_are_acknowledged() {
    let (edge, seen) = edge_with_node().await;
    let (status, body) = answer(
        edge.post(
            "/tables/events",
            "application/json; charset=utf-8",
            r#"{"payload":{"a":1},"partition":3}"#,
        )
        .header("idempotency-key", "k-1")
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((status, body), (200, json!({"table": "events", "partition": 3, "sequence": 1})));

    let (status, body) = answer(
        edge.post("/tables/dup", "application/json", r#"{"payload":1}"#).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["duplicate"], true);
    assert_eq!(seen.events(), 2);
}

#[tokio::test]
async fn bulk_requests_report_ranges_per_partition() {
    let (edge, _) = edge_with_node().await;
    let records = json!({"records": [
        {"payload": 1, "partition": 2}, {"payload": 2}, {"payload_base64": "AA==", "partition": 2},
    ]});
    let (status, body) = answer(
        edge.post("/tables/events/bulk", "application/json", records.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"table": "events", "accepted": 3, "duplicates": 0, "partitions": [
            {"partition": 0, "first_sequence": 2, "last_sequence": 2, "count": 1},
            {"partition": 2, "first_sequence": 1, "last_sequence": 3, "count": 2},
        ]})
    );

    // NDJSON, gzip-compressed.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"{\"payload\": 1}\n\n{\"payload\": 2}\n").unwrap();
    let (status, body) = answer(
        edge.post("/tables/events/bulk", "application/x-ndjson", gz.finish().unwrap())
            .header("content-encoding", "gzip")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["accepted"].clone()), (200, json!(2)));

    // A single event, zstd-compressed.
    let zstd = zstd::stream::encode_all(&br#"{"payload": "z"}"#[..], 3).unwrap();
    let response = edge
        .post("/tables/events", "application/json", zstd)
        .header("content-encoding", "zstd")
        .send()
        .await;
    assert_eq!(response.unwrap().status(), 200);
}

#[tokio::test]
async fn bad_table_names_are_rejected_before_forwarding() {
    let (edge, seen) = edge_with_node().await;
    let long = format!("a{}", "b".repeat(128));
    for table in ["a:b", "a/b", "..", "", &long, "1abc", "%C3%A9", "a%2Fb", "a%2fb", "a.b"] {
        for suffix in ["", "/bulk"] {
            let path = format!("/tables/{table}{suffix}");
            let (status, body) = edge
                .raw(raw_post(&path, "content-type: application/json\r\n", r#"{"payload":1}"#))
                .await;
            assert_eq!(status, 400, "{path}: {body}");
            assert_eq!(body["error"]["code"], "invalid_table_name", "{path}");
        }
    }
    let (status, _) =
        edge.raw(raw_post("/tables", "content-type: application/json\r\n", "{}")).await;
    assert_eq!(status, 400);
    assert_eq!(seen.events(), 0);
}

#[tokio::test]
async fn checks_run_in_order_and_cheap_ones_first() {
    let (url, seen) = fake_node().await;
    let mut config = config(&url);
    config.auth.producer_tokens = vec![TOKEN.into()];
    config.limits.max_request_bytes = 4096;
    config.limits.max_event_bytes = 100;
    config.limits.max_records_per_request = 2;
    let edge = Edge::start(config).await;
    let json_ct = "content-type: application/json\r\n";
    let auth = format!("authorization: Bearer {TOKEN}\r\n");
    let (huge, big_event) = ("x".repeat(5000), format!(r#"{{"payload": "{}"}}"#, "x".repeat(200)));
    let cases: Vec<(String, String, &str, u16, &str)> = vec![
        ("/tables/a:b".into(), json_ct.into(), "{}", 401, "unauthorized"),
        (
            "/tables/a:b".into(),
            format!("{json_ct}authorization: Bearer nope-nope-nope-nope\r\n"),
            "{}",
            403,
            "forbidden",
        ),
        ("/tables/a:b".into(), format!("{json_ct}{auth}"), "{}", 400, "invalid_table_name"),
        (
            "/tables/t".into(),
            format!("content-type: text/plain\r\n{auth}"),
            "{}",
            415,
            "unsupported_media_type",
        ),
        ("/tables/t".into(), auth.clone(), "{}", 415, "unsupported_media_type"),
        (
            "/tables/t".into(),
            format!("content-type: application/x-ndjson\r\n{auth}"),
            "{}",
            415,
            "unsupported_media_type",
        ),
        (
            "/tables/t".into(),
            format!("{json_ct}content-encoding: br\r\n{auth}"),
            "{}",
            415,
            "unsupported_media_type",
        ),
        ("/tables/t".into(), format!("{json_ct}{auth}"), &huge, 413, "payload_too_large"),
        ("/tables/t".into(), format!("{json_ct}{auth}"), r#"{"payload": "#, 400, "invalid_json"),
        (
            "/tables/t".into(),
            format!("{json_ct}{auth}"),
            r#"{"payload": 1, "x": 1}"#,
            400,
            "invalid_event",
        ),
        ("/tables/t".into(), format!("{json_ct}{auth}"), &big_event, 413, "payload_too_large"),
        (
            "/tables/t/bulk".into(),
            format!("{json_ct}{auth}idempotency-key: k\r\n"),
            r#"{"records":[{"payload":1}]}"#,
            400,
            "invalid_request",
        ),
        (
            "/tables/t/bulk".into(),
            format!("{json_ct}{auth}"),
            r#"{"records":[]}"#,
            400,
            "invalid_event",
        ),
        (
            "/tables/t/bulk".into(),
            format!("{json_ct}{auth}"),
            r#"{"records":[{"payload":1},{"payload":1},{"payload":1}]}"#,
            413,
            "payload_too_large",
        ),
        (
            "/tables/t/bulk".into(),
            format!("{json_ct}{auth}"),
            r#"{"records":[{"payload":1},{"payload":1,"partition":-1}]}"#,
            400,
            "invalid_event",
        ),
    ];
    for (path, headers, body, status, code) in cases {
        let mut request = raw_post(&path, &headers, body);
        if body.len() > 4096 {
            // Declared only: a too-large body is refused before it is read.
            request.truncate(request.len() - body.len());
        }
        let (got, response) = edge.raw(request).await;
        assert_eq!(
            (got, response["error"]["code"].as_str()),
            (status, Some(code)),
            "{path} {headers:?} {body}"
        );
        // Messages are for people: no Rust debug output such as `Some("text/plain")`.
        let message = response["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.contains("Some(") && !message.contains("None"), "{message}");
    }
    let text_plain = raw_post("/tables/t", &format!("content-type: text/plain\r\n{auth}"), "{}");
    let (_, response) = edge.raw(text_plain).await;
    assert_eq!(
        response["error"]["message"],
        "Content-Type must be application/json, not text/plain"
    );
    let (_, response) = edge
        .raw(raw_post(
            "/tables/t/bulk",
            &format!("{json_ct}{auth}"),
            r#"{"records":[{"payload":1},{"partition":1}]}"#,
        ))
        .await;
    let message = response["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("record 1: event needs exactly one of"), "{message}");

    let (status, _) =
        edge.raw(raw_post("/tables/t", &format!("{json_ct}{auth}"), r#"{"payload":1}"#)).await;
    assert_eq!(status, 200);
    assert_eq!(seen.events(), 1);
}

#[tokio::test]
async fn a_stalled_upload_holds_the_bytes_it_sent_not_what_it_declared() {
    let (url, _) = fake_node().await;
    let mut config = config(&url);
    config.limits.max_request_bytes = 4096;
    config.limits.max_inflight_bytes = 6000;
    config.limits.retry_after_secs = 7;
    let edge = Edge::start(config).await;

    // Declares a full-size body and sends 1,000 bytes of it: only those are held.
    let mut holder = TcpStream::connect(&edge.addr).await.unwrap();
    let head = "POST /tables/t HTTP/1.1\r\nhost: e\r\ncontent-type: application/json\r\ncontent-length: 4096\r\n\r\n";
    holder.write_all(head.as_bytes()).await.unwrap();
    holder.write_all(&[b' '; 1000]).await.unwrap();
    let body = format!(r#"{{"payload": "{}"}}"#, "x".repeat(3000));
    let response = edge.post("/tables/t", "application/json", body.clone()).send().await.unwrap();
    assert_eq!(response.status(), 200);

    // Sending more, it holds more: 4,000 bytes leave no room for another 3 KB request.
    holder.write_all(&[b' '; 3000]).await.unwrap();
    wait_until("the holder's bytes to be reserved", || {
        let request = edge.post("/tables/t", "application/json", body.clone()).send();
        async move { request.await.unwrap().status() == 429 }
    })
    .await;
    let response = edge.post("/tables/t", "application/json", body.clone()).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(answer(response).await.1["error"]["code"], "overloaded");

    drop(holder);
    // The closed connection releases its reservation; then writes fit again.
    wait_until("the reservation to be released", || {
        let request = edge.post("/tables/t", "application/json", body.clone()).send();
        async move { request.await.unwrap().status() == 200 }
    })
    .await;
}

#[tokio::test]
async fn node_answers_map_to_producer_statuses() {
    let (edge, _) = edge_with_node().await;
    for (table, status, code) in [
        ("overloaded", 429, "overloaded"),
        ("failing", 502, "bad_gateway"),
        ("reject", 502, "bad_gateway"),
        ("busy", 503, "node_unavailable"),
    ] {
        let response = edge
            .post(&format!("/tables/{table}"), "application/json", r#"{"payload":1}"#)
            .send()
            .await
            .unwrap();
        if status == 429 {
            assert_eq!(response.headers()["retry-after"], "1");
        }
        let (got, body) = answer(response).await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{table}: {body}");
        if table == "reject" {
            assert!(body["error"]["message"].as_str().unwrap().contains("no such thing"), "{body}");
        }
    }
}

#[tokio::test]
async fn unreachable_node_is_503_quickly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config = config(&format!("http://127.0.0.1:{port}"));
    // A refused connection is answered at once, not after the request timeout.
    config.forward.request_timeout_ms = 600_000;
    let edge = Edge::start(config).await;
    let request = edge.post("/tables/t", "application/json", r#"{"payload":1}"#).send();
    let response = tokio::time::timeout(Duration::from_secs(60), request)
        .await
        .expect("a refused connection must not wait for the request timeout")
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("node_unavailable")));
}

#[tokio::test]
async fn other_routes_and_methods() {
    let (edge, _) = edge_with_node().await;
    let url = |path: &str| format!("http://{}{path}", edge.addr);
    let (status, body) = answer(edge.http.get(url("/health")).send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body) = answer(edge.http.get(url("/tables/events")).send().await.unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (405, Some("method_not_allowed")));
    assert_eq!(edge.http.put(url("/tables/events/bulk")).send().await.unwrap().status(), 405);
    let (status, body) = answer(edge.http.get(url("/nope")).send().await.unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    let response = edge.http.get(url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain; version=0.0.4");
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let (url, seen, gate) = gated_node().await;
    let edge = Edge::start(config(&url)).await;
    let request = edge.post("/tables/t", "application/json", r#"{"payload":1}"#).send();
    let in_flight = tokio::spawn(request);
    wait_until("the request to reach the node", || {
        let n = seen.events();
        async move { n == 1 }
    })
    .await;
    edge.shutdown.cancel();
    // Shutdown has begun with the request at the node; its answer still reaches the producer.
    gate.open();
    assert_eq!(in_flight.await.unwrap().unwrap().status(), 200);
    edge.task.await.unwrap().unwrap();
    // Stopped accepting.
    assert!(TcpStream::connect(&edge.addr).await.is_err());
}

#[tokio::test]
async fn shutdown_is_bounded_by_the_timeout() {
    // The node never answers.
    let (url, seen, _gate) = gated_node().await;
    let mut config = config(&url);
    config.shutdown_timeout_ms = 200;
    let edge = Edge::start(config).await;
    let _in_flight =
        tokio::spawn(edge.post("/tables/t", "application/json", r#"{"payload":1}"#).send());
    wait_until("the request to reach the node", || {
        let n = seen.events();
        async move { n == 1 }
    })
    .await;
    edge.shutdown.cancel();
    // Returning at all is the check: the request in flight never finishes.
    edge.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn requests_after_shutdown_began_are_refused() {
    use crate::forward::{BatchLimits, Forwarder, NodeClient};
    use crate::ingest::{IngestService, Target};

    let config = EdgeConfig::default();
    let client = NodeClient::new(&config).unwrap();
    let (forwarder, _dispatcher) =
        Forwarder::new(BatchLimits::from(&config.forward), 1, client.clone());
    let shutdown = CancellationToken::new();
    let service = IngestService::new(&config, forwarder, client, shutdown.clone());
    shutdown.cancel();
    let uri = axum::http::Uri::from_static("/tables/t");
    let err = service
        .ingest(
            Target::from_path("/tables/t"),
            &uri,
            &Default::default(),
            axum::body::Body::empty(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code().as_str(), "shutting_down");
    assert_eq!(err.code().status(), 503);
}
