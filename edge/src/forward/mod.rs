//! Forwarding producer requests to the node. Each request is one [`EncodedGroup`]; a
//! dispatcher coalesces the groups queued while earlier batches are in flight into one
//! MessagePack batch, so under load the node sees few large batches instead of many small
//! ones. A small batch also waits, briefly, while others are in flight (`forward.hold_us`):
//! each batch costs both processes an HTTP request, so a second small batch beside the
//! first costs more than it saves in latency.
//!
//! A producer is answered from its group's result only: a 2xx is never given before the
//! node has acknowledged the group as durable.

mod client;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use zombi_shared::config::ForwardConfig;
use zombi_shared::wire::{Ack, EncodedGroup, GroupError, GroupErrorCode, GroupResult};

pub use client::{ClientError, NodeClient};

use crate::body::Reservation;
use crate::metrics;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ForwardError {
    #[error("too many requests are waiting for the node")]
    QueueFull,
    #[error("the node is overloaded: {0}")]
    NodeOverloaded(String),
    #[error("the node is unavailable: {0}")]
    Unavailable(String),
    /// The node's own words, meant for the producer.
    #[error("{0}")]
    TableNotReady(String),
    #[error("{0}")]
    TableLimit(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the node rejected the batch with HTTP {status}: {message}")]
    Rejected { status: u16, message: String },
    #[error("the node failed to write the events: {0}")]
    NodeFailed(String),
    #[error("unexpected answer from the node: {0}")]
    Protocol(String),
    #[error("the forwarder has stopped")]
    Stopped,
}

impl From<GroupError> for ForwardError {
    fn from(e: GroupError) -> Self {
        match e.code {
            GroupErrorCode::Overloaded => ForwardError::NodeOverloaded(e.message),
            GroupErrorCode::Unavailable => ForwardError::Unavailable(e.message),
            GroupErrorCode::Internal => ForwardError::NodeFailed(e.message),
            GroupErrorCode::NotReady => ForwardError::TableNotReady(e.message),
            GroupErrorCode::TableLimit => ForwardError::TableLimit(e.message),
            GroupErrorCode::Invalid => ForwardError::Invalid(e.message),
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<Ack>, ForwardError>>;

struct Submission {
    group: EncodedGroup,
    weight: usize,
    /// The producer's byte reservation: released when the batch is answered, not when the
    /// producer stops waiting, so queued work always counts against the budget.
    hold: Option<Reservation>,
    reply: Reply,
}

/// How batches are formed, from [`ForwardConfig`].
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_events: usize,
    pub max_bytes: usize,
    pub linger: Duration,
    pub max_inflight: usize,
    /// How long a small batch waits while others are in flight.
    pub hold: Duration,
}

/// A batch of at least this much event weight leaves whenever a slot is free: its HTTP
/// request is small next to its events.
const LARGE_BATCH_BYTES: usize = 64 * 1024;

impl From<&ForwardConfig> for BatchLimits {
    fn from(c: &ForwardConfig) -> Self {
        BatchLimits {
            max_events: c.max_batch_events as usize,
            max_bytes: c.max_batch_bytes as usize,
            linger: Duration::from_micros(c.linger_us),
            max_inflight: c.max_inflight_batches as usize,
            hold: Duration::from_micros(c.hold_us),
        }
    }
}

/// The handlers' side: submits groups and waits for their results.
#[derive(Debug, Clone)]
pub struct Forwarder {
    queue: mpsc::Sender<Submission>,
}

impl std::fmt::Debug for Submission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submission")
            .field("table", &self.group.table)
            .field("events", &self.group.events)
            .finish()
    }
}

impl Forwarder {
    /// A forwarder and the dispatcher that must run for it to make progress.
    pub fn new(limits: BatchLimits, queue_depth: usize, client: NodeClient) -> (Self, Dispatcher) {
        let (tx, rx) = mpsc::channel(queue_depth.max(1));
        let dispatcher = Dispatcher {
            queue: rx,
            client,
            limits,
            slots: Arc::new(Semaphore::new(limits.max_inflight.max(1))),
            answered: Arc::new(Notify::new()),
        };
        (Forwarder { queue: tx }, dispatcher)
    }

    /// Sends `group` to the node within a batch and returns one ack per event, in order.
    ///
    /// Cancel-safe: if the caller goes away, the batch still completes and the result is
    /// dropped.
    pub async fn submit(&self, group: EncodedGroup) -> Result<Vec<Ack>, ForwardError> {
        self.submit_holding(group, None).await
    }

    /// Like [`Forwarder::submit`], keeping `hold` alive until the batch is answered.
    pub async fn submit_holding(
        &self,
        group: EncodedGroup,
        hold: Option<Reservation>,
    ) -> Result<Vec<Ack>, ForwardError> {
        let weight = group.weight;
        let (reply, result) = oneshot::channel();
        self.queue.try_send(Submission { group, weight, hold, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ForwardError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => ForwardError::Stopped,
        })?;
        result.await.map_err(|_| ForwardError::Stopped)?
    }

    /// Submissions waiting in the queue for the dispatcher.
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// Forms batches from queued submissions and sends them, at most `max_inflight` at a time.
pub struct Dispatcher {
    queue: mpsc::Receiver<Submission>,
    client: NodeClient,
    limits: BatchLimits,
    slots: Arc<Semaphore>,
    /// Signalled each time a batch in flight is answered.
    answered: Arc<Notify>,
}

impl Dispatcher {
    /// Runs until every [`Forwarder`] is dropped and the batches in flight are answered.
    pub async fn run(mut self) {
        // A submission that did not fit into the previous batch opens the next one; groups
        // are never split.
        let mut carried: Option<Submission> = None;
        loop {
            let slot = Arc::clone(&self.slots)
                .acquire_owned()
                .await
                .expect("the batch slot semaphore is never closed");
            let first = match carried.take() {
                Some(first) => first,
                None => match self.queue.recv().await {
                    Some(first) => first,
                    None => break,
                },
            };
            let mut batch = PendingBatch::new(first);
            carried = self.fill(&mut batch).await;
            if carried.is_none() {
                carried = self.hold(&mut batch).await;
            }
            metrics::queue_depth(self.queue.len());
            let (client, answered) = (self.client.clone(), self.answered.clone());
            tokio::spawn(async move {
                batch.send(&client).await;
                drop(slot);
                answered.notify_one();
            });
        }
        let all = u32::try_from(self.limits.max_inflight.max(1)).unwrap_or(u32::MAX);
        let _ = self.slots.acquire_many(all).await;
    }

    /// Adds queued submissions while the batch has room, lingering for more if configured.
    /// Returns the submission that did not fit, if any.
    async fn fill(&mut self, batch: &mut PendingBatch) -> Option<Submission> {
        while batch.has_room(&self.limits) {
            let Ok(next) = self.queue.try_recv() else { break };
            if let Err(next) = batch.try_add(next, &self.limits) {
                return Some(next);
            }
        }
        if self.limits.linger.is_zero() {
            return None;
        }
        let deadline = tokio::time::Instant::now() + self.limits.linger;
        while batch.has_room(&self.limits) {
            let Ok(Some(next)) = tokio::time::timeout_at(deadline, self.queue.recv()).await else {
                break;
            };
            if let Err(next) = batch.try_add(next, &self.limits) {
                return Some(next);
            }
        }
        None
    }

    /// Batches in flight besides the one being formed (which holds a slot already).
    fn in_flight(&self) -> usize {
        self.limits.max_inflight.max(1) - self.slots.available_permits() - 1
    }

    /// Keeps a small batch while other batches are in flight, for at most `limits.hold`,
    /// adding the submissions that arrive meanwhile. Returns the submission that did not
    /// fit, if any.
    async fn hold(&mut self, batch: &mut PendingBatch) -> Option<Submission> {
        if self.limits.hold.is_zero() || self.in_flight() == 0 || batch.is_large(&self.limits) {
            return None;
        }
        let deadline = tokio::time::sleep(self.limits.hold);
        tokio::pin!(deadline);
        loop {
            // Registered before the check, so an answer in between is not missed.
            let answered = self.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            if self.in_flight() == 0 || batch.is_large(&self.limits) {
                return None;
            }
            tokio::select! {
                () = answered => {}
                () = &mut deadline => return None,
                next = self.queue.recv() => {
                    let next = next?;
                    if let Err(next) = batch.try_add(next, &self.limits) {
                        return Some(next);
                    }
                }
            }
        }
    }
}

struct PendingBatch {
    submissions: Vec<Submission>,
    events: usize,
    bytes: usize,
}

impl PendingBatch {
    fn new(first: Submission) -> Self {
        let (events, bytes) = (first.group.events, first.weight);
        PendingBatch { submissions: vec![first], events, bytes }
    }

    fn has_room(&self, limits: &BatchLimits) -> bool {
        self.events < limits.max_events && self.bytes < limits.max_bytes
    }

    /// Whether the batch is worth a request of its own beside those in flight.
    fn is_large(&self, limits: &BatchLimits) -> bool {
        self.bytes >= LARGE_BATCH_BYTES || !self.has_room(limits)
    }

    fn try_add(&mut self, next: Submission, limits: &BatchLimits) -> Result<(), Submission> {
        let events = self.events + next.group.events;
        let bytes = self.bytes + next.weight;
        if events > limits.max_events || bytes > limits.max_bytes {
            return Err(next);
        }
        self.events = events;
        self.bytes = bytes;
        self.submissions.push(next);
        Ok(())
    }

    /// Sends the batch and answers every submission.
    async fn send(self, client: &NodeClient) {
        let group_count = self.submissions.len();
        let mut groups = Vec::with_capacity(group_count);
        let mut waiters = Vec::with_capacity(group_count);
        let mut holds = Vec::with_capacity(group_count);
        for Submission { group, reply, hold, .. } in self.submissions {
            waiters.push((group.events, reply));
            groups.push(group);
            holds.push(hold);
        }
        let started = Instant::now();
        let result = client.send(groups).await;
        metrics::batch_sent(self.events, group_count, started.elapsed(), result.is_ok());

        let results: Vec<Result<Vec<Ack>, ForwardError>> = match result {
            Ok(response) if response.groups.len() == group_count => response
                .groups
                .into_iter()
                .zip(&waiters)
                .map(|(result, (events, _))| match result {
                    GroupResult::Ok(acks) if acks.len() == *events => Ok(acks),
                    GroupResult::Ok(acks) => Err(ForwardError::Protocol(format!(
                        "{} acks for a group of {events} events",
                        acks.len()
                    ))),
                    GroupResult::Err(e) => Err(e.into()),
                })
                .collect(),
            Ok(response) => {
                let e = ForwardError::Protocol(format!(
                    "{} group results for a batch of {group_count} groups",
                    response.groups.len()
                ));
                vec![Err(e); group_count]
            }
            Err(e) => vec![Err(e); group_count],
        };
        for ((_, reply), result) in waiters.into_iter().zip(results) {
            // A closed reply means the producer went away; its group was handled anyway.
            let _ = reply.send(result);
        }
        drop(holds);
    }
}

#[cfg(test)]
mod tests {
    use zombi_shared::config::EdgeConfig;
    use zombi_shared::wire::{Group, Payload, WireEvent};

    use super::*;
    use crate::test_support::{Seen, fake_node, gated_node, wait_until};

    fn group(table: &str, events: usize) -> EncodedGroup {
        let event = WireEvent {
            partition: 0,
            timestamp_ms: None,
            idempotency_key: None,
            payload: Payload::Json("1".into()),
        };
        EncodedGroup::encode(&Group { table: table.into(), events: vec![event; events] })
    }

    fn forwarder(url: &str, limits: BatchLimits) -> Forwarder {
        let config = EdgeConfig { node_url: url.into(), ..EdgeConfig::default() };
        let (forwarder, dispatcher) =
            Forwarder::new(limits, 100, NodeClient::new(&config).unwrap());
        tokio::spawn(dispatcher.run());
        forwarder
    }

    const LIMITS: BatchLimits = BatchLimits {
        max_events: 1000,
        max_bytes: 1 << 20,
        linger: Duration::ZERO,
        max_inflight: 1,
        hold: Duration::ZERO,
    };

    /// Waits until `n` submissions wait in the forwarder's queue.
    async fn queued(forwarder: &Forwarder, n: usize) {
        wait_until(&format!("{n} queued submissions"), || {
            let queued = forwarder.queued();
            async move { queued == n }
        })
        .await;
    }

    /// Waits until the node has seen `n` batches.
    async fn seen_batches(seen: &Seen, n: usize) {
        wait_until(&format!("{n} batches at the node"), || {
            let count = seen.batches().len();
            async move { count == n }
        })
        .await;
    }

    #[tokio::test]
    async fn concurrent_submissions_share_one_batch() {
        let (url, seen, gate) = gated_node().await;
        let forwarder = forwarder(&url, LIMITS);
        // The first batch occupies the only slot; the next five queue and coalesce.
        let first = tokio::spawn({
            let f = forwarder.clone();
            async move { f.submit(group("t", 1)).await }
        });
        seen_batches(&seen, 1).await;
        let rest: Vec<_> = (0..5)
            .map(|i| {
                let f = forwarder.clone();
                tokio::spawn(async move { f.submit(group("t", i + 1)).await })
            })
            .collect();
        queued(&forwarder, 5).await;
        gate.open();
        assert_eq!(first.await.unwrap().unwrap().len(), 1);
        let mut sequences = Vec::new();
        for (i, handle) in rest.into_iter().enumerate() {
            let acks = handle.await.unwrap().unwrap();
            assert_eq!(acks.len(), i + 1);
            sequences.extend(acks.iter().map(|a| a.sequence));
        }
        assert_eq!(seen.batches(), vec![1, 5]);
        // Each group got its own slice of the batch's acks.
        assert_eq!(sequences, (1..=15).collect::<Vec<_>>());
    }

    /// Submits `group` and polls it once, so that it is in the forwarder's queue.
    async fn submitted(
        forwarder: &Forwarder,
        group: EncodedGroup,
    ) -> std::pin::Pin<Box<impl Future<Output = Result<Vec<Ack>, ForwardError>> + '_>> {
        let mut submission = Box::pin(forwarder.submit(group));
        assert!(futures::poll!(submission.as_mut()).is_pending());
        submission
    }

    #[tokio::test]
    async fn a_small_batch_waits_for_the_batch_in_flight() {
        let (url, seen, gate) = gated_node().await;
        let limits = BatchLimits { max_inflight: 4, hold: Duration::from_secs(600), ..LIMITS };
        let forwarder = forwarder(&url, limits);
        // Nothing is in flight: the first batch leaves at once.
        let first = submitted(&forwarder, group("t", 1)).await;
        seen_batches(&seen, 1).await;
        // Three slots are free, but the next requests wait for the first batch's answer
        // and leave together.
        let mut rest = Vec::new();
        for events in 1..=3 {
            rest.push(submitted(&forwarder, group("t", events)).await);
        }
        queued(&forwarder, 0).await;
        assert_eq!(seen.batches(), vec![1]);
        gate.open();
        first.await.unwrap();
        for (submission, events) in rest.into_iter().zip(1..) {
            assert_eq!(submission.await.unwrap().len(), events);
        }
        assert_eq!(seen.batches(), vec![1, 3]);
    }

    #[tokio::test]
    async fn a_held_batch_leaves_when_its_time_is_up_or_it_is_large() {
        let (url, seen, gate) = gated_node().await;
        let limits = BatchLimits { max_inflight: 4, hold: Duration::from_millis(20), ..LIMITS };
        let timed = forwarder(&url, limits);
        let first = submitted(&timed, group("t", 1)).await;
        seen_batches(&seen, 1).await;
        // The first batch is never answered while the second waits: it leaves anyway.
        let second = submitted(&timed, group("t", 2)).await;
        seen_batches(&seen, 2).await;

        // A large batch does not wait at all, however long the hold.
        let (url, large_seen, large_gate) = gated_node().await;
        let limits = BatchLimits { max_inflight: 4, hold: Duration::from_secs(600), ..LIMITS };
        let held = forwarder(&url, limits);
        let small = submitted(&held, group("t", 1)).await;
        seen_batches(&large_seen, 1).await;
        let payload = Payload::Json(format!("\"{}\"", "x".repeat(LARGE_BATCH_BYTES)));
        let event = WireEvent { partition: 0, timestamp_ms: None, idempotency_key: None, payload };
        let large = Group { table: "t".into(), events: vec![event] };
        let large = submitted(&held, EncodedGroup::encode(&large)).await;
        seen_batches(&large_seen, 2).await;

        gate.open();
        large_gate.open();
        for submission in [first, second] {
            submission.await.unwrap();
        }
        assert_eq!(small.await.unwrap().len() + large.await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn linger_coalesces_without_load() {
        let (url, seen) = fake_node().await;
        let limits = BatchLimits { linger: Duration::from_millis(200), max_inflight: 4, ..LIMITS };
        let forwarder = forwarder(&url, limits);
        let submissions = (0..3).map(|_| forwarder.submit(group("t", 2)));
        for acks in futures::future::join_all(submissions).await {
            assert_eq!(acks.unwrap().len(), 2);
        }
        assert_eq!(seen.batches(), vec![3]);
    }

    #[tokio::test]
    async fn batches_respect_limits_without_splitting_groups() {
        let (url, seen, gate) = gated_node().await;
        let limits = BatchLimits { max_events: 10, ..LIMITS };
        let forwarder = forwarder(&url, limits);
        let blocker = tokio::spawn({
            let f = forwarder.clone();
            async move { f.submit(group("t", 1)).await }
        });
        seen_batches(&seen, 1).await;
        // Queued behind the blocker, in this order: 6 + 4 fill one batch, 7 opens the next,
        // and 25 is larger than any batch and goes alone.
        let sizes = [6, 4, 7, 25];
        let mut handles = Vec::new();
        for (queued_before, size) in sizes.into_iter().enumerate() {
            let f = forwarder.clone();
            handles.push(tokio::spawn(async move { f.submit(group("t", size)).await }));
            queued(&forwarder, queued_before + 1).await;
        }
        gate.open();
        blocker.await.unwrap().unwrap();
        for (handle, size) in handles.into_iter().zip(sizes) {
            assert_eq!(handle.await.unwrap().unwrap().len(), size);
        }
        assert_eq!(seen.batches(), vec![1, 2, 1, 1]);
    }

    #[tokio::test]
    async fn group_errors_reach_only_their_group() {
        let (url, _) = fake_node().await;
        let limits = BatchLimits { linger: Duration::from_millis(100), ..LIMITS };
        let forwarder = forwarder(&url, limits);
        let (ok, busy) =
            tokio::join!(forwarder.submit(group("t", 1)), forwarder.submit(group("overloaded", 1)));
        assert_eq!(ok.unwrap().len(), 1);
        assert!(matches!(busy, Err(ForwardError::NodeOverloaded(m)) if m == "busy"));
    }

    #[tokio::test]
    async fn unreachable_node_is_unavailable_not_a_hang() {
        // Bind and drop to find a port nothing listens on: the connection is refused, and
        // the producer hears so instead of waiting for a timeout.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = EdgeConfig {
            node_url: format!("http://127.0.0.1:{port}"),
            // A hang would wait for this; a refused connection must not.
            forward: zombi_shared::config::ForwardConfig {
                request_timeout_ms: 600_000,
                ..Default::default()
            },
            ..EdgeConfig::default()
        };
        let (forwarder, dispatcher) =
            Forwarder::new(LIMITS, 100, NodeClient::new(&config).unwrap());
        tokio::spawn(dispatcher.run());
        let submitted =
            tokio::time::timeout(Duration::from_secs(60), forwarder.submit(group("t", 1)));
        let err = submitted.await.expect("no answer before the request timeout").unwrap_err();
        assert!(matches!(&err, ForwardError::Unavailable(m) if m.contains("onnect")), "{err}");
    }

    /// A node that answers every batch with 503 `not_owner` (a standby), counting them.
    async fn standby_node() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().fallback(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async {
                let body = r#"{"error":{"code":"not_owner","message":"this node is a standby"}}"#;
                (axum::http::StatusCode::SERVICE_UNAVAILABLE, body)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, hits)
    }

    #[tokio::test]
    async fn batches_move_to_the_node_that_takes_them_and_stay_there() {
        let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let (standby, standby_hits) = standby_node().await;
        let (active, seen) = fake_node().await;
        let forwarder = forwarder(&format!("http://{refused},{standby}/,{active}"), LIMITS);
        assert_eq!(forwarder.submit(group("t", 2)).await.unwrap().len(), 2);
        assert_eq!(seen.batches(), vec![1]);
        assert_eq!(standby_hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        // The next batches go straight to the node that took the last one.
        for _ in 0..3 {
            forwarder.submit(group("t", 1)).await.unwrap();
        }
        assert_eq!(seen.batches().len(), 4);
        assert_eq!(standby_hits.load(std::sync::atomic::Ordering::SeqCst), 1);

        // No node takes it: the producer hears the last refusal, as a 503 to retry.
        let forwarder = forwarder_to_nodes(&[format!("http://{refused}"), standby]);
        let err = forwarder.submit(group("t", 1)).await.unwrap_err();
        assert!(matches!(&err, ForwardError::Unavailable(m) if m.contains("standby")), "{err}");
    }

    fn forwarder_to_nodes(urls: &[String]) -> Forwarder {
        forwarder(&urls.join(","), LIMITS)
    }
}
