//! A fake node for tests: a real HTTP peer speaking the batch protocol.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use zombi_shared::wire::{
    self, Ack, BatchResponse, GroupError, GroupErrorCode, GroupResult, IngestBatch,
};

/// What the fake node saw.
#[derive(Debug, Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<IngestBatch>>>);

impl Seen {
    /// The group count of every batch, in arrival order.
    pub fn batches(&self) -> Vec<usize> {
        self.0.lock().unwrap().iter().map(|b| b.groups.len()).collect()
    }

    pub fn events(&self) -> usize {
        let batches = self.0.lock().unwrap();
        batches.iter().flat_map(|b| &b.groups).map(|g| g.events.len()).sum()
    }
}

/// Holds the fake node's answers until the test lets them go: each batch waits for one
/// permit after it was recorded as seen.
#[derive(Debug, Clone)]
pub struct Gate(Arc<Semaphore>);

impl Gate {
    /// Answers every batch from now on.
    pub fn open(&self) {
        self.0.add_permits(Semaphore::MAX_PERMITS / 2);
    }
}

/// Serves the node's ingest endpoint on 127.0.0.1:0 and returns its base URL; it answers
/// every batch at once. Each event gets the next sequence. Table names steer failures: a
/// group for "overloaded" or "failing" gets that group error, "dup" acks are duplicates,
/// and a batch holding "reject" or "busy" is answered with HTTP 400 or 503.
pub async fn fake_node() -> (String, Seen) {
    let (url, seen, gate) = gated_node().await;
    gate.open();
    (url, seen)
}

/// Like [`fake_node`], but a batch is answered only once the [`Gate`] lets it go (it is
/// in [`Seen`] as soon as it arrived).
pub async fn gated_node() -> (String, Seen, Gate) {
    async fn ingest(
        State((seen, gate)): State<(Seen, Gate)>,
        body: Bytes,
    ) -> (StatusCode, Vec<u8>) {
        let batch: IngestBatch = wire::decode(&body).unwrap();
        seen.0.lock().unwrap().push(batch.clone());
        gate.0.acquire().await.unwrap().forget();
        let has = |table: &str| batch.groups.iter().any(|g| g.table == table);
        if has("reject") {
            let body = br#"{"error":{"code":"invalid","message":"no such thing"}}"#;
            return (StatusCode::BAD_REQUEST, body.to_vec());
        }
        if has("busy") {
            return (StatusCode::SERVICE_UNAVAILABLE, b"shutting down".to_vec());
        }
        let mut sequence = 0;
        let groups = batch
            .groups
            .into_iter()
            .map(|g| {
                let error = |code| GroupResult::Err(GroupError { code, message: "busy".into() });
                match g.table.as_str() {
                    "overloaded" => return error(GroupErrorCode::Overloaded),
                    "failing" => return error(GroupErrorCode::Internal),
                    _ => {}
                }
                let acks = g.events.iter().map(|e| {
                    sequence += 1;
                    Ack {
                        partition: e.partition,
                        sequence,
                        duplicate: g.table == "dup",
                        dead_lettered: false,
                    }
                });
                GroupResult::Ok(acks.collect())
            })
            .collect();
        (StatusCode::OK, wire::encode(&BatchResponse { groups }))
    }
    let seen = Seen::default();
    let gate = Gate(Arc::new(Semaphore::new(0)));
    let app = axum::Router::new()
        .route(wire::INGEST_PATH, post(ingest))
        .with_state((seen.clone(), gate.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen, gate)
}

/// Polls `check` every 10 ms until it holds, panicking after 10 s.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
