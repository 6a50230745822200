//! The load generator: HTTP/1.1 over hyper's connection API, one request at a time per
//! connection, with prepared bodies, so that it costs little next to the servers it drives.
//! The same generator measures the HTTP limit and Zombi, so their ratio is fair.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What to send: every connection cycles through `bodies`.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub path: String,
    pub content_type: &'static str,
    pub bodies: Arc<Vec<Bytes>>,
}

impl Target {
    pub fn body_bytes(&self, i: usize) -> &Bytes {
        &self.bodies[i % self.bodies.len()]
    }
}

/// The outcome of one load: answers by kind and the latency of every answered request.
#[derive(Default)]
pub struct Outcome {
    pub ok: u64,
    pub rejected: u64,
    pub failed: u64,
    pub request_bytes: u64,
    pub secs: f64,
    latencies_ms: Vec<f64>,
    sorted: bool,
}

impl Outcome {
    /// An outcome of successful requests with these latencies (for measured waits).
    pub fn from_latencies(latencies: Vec<Duration>) -> Outcome {
        let mut out = Outcome::default();
        for l in latencies {
            out.record(Some(200), 0, l);
        }
        out
    }

    pub fn ok_per_sec(&self) -> f64 {
        self.ok as f64 / self.secs
    }

    /// The `p` quantile (0..=1) of the latencies in ms, NaN without samples.
    pub fn percentile(&mut self, p: f64) -> f64 {
        if !self.sorted {
            self.latencies_ms.sort_by(f64::total_cmp);
            self.sorted = true;
        }
        if self.latencies_ms.is_empty() {
            return f64::NAN;
        }
        self.latencies_ms[((self.latencies_ms.len() as f64 - 1.0) * p).round() as usize]
    }

    fn merge(&mut self, other: Outcome) {
        self.ok += other.ok;
        self.rejected += other.rejected;
        self.failed += other.failed;
        self.request_bytes += other.request_bytes;
        self.latencies_ms.extend(other.latencies_ms);
        self.sorted = false;
    }

    fn record(&mut self, status: Option<u16>, bytes: usize, latency: Duration) {
        match status {
            Some(200) => self.ok += 1,
            Some(_) => self.rejected += 1,
            None => self.failed += 1,
        }
        if status.is_some() {
            self.request_bytes += bytes as u64;
            self.latencies_ms.push(latency.as_secs_f64() * 1000.0);
        }
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream =
        TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole answer; `None` when the connection failed.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    body: Bytes,
) -> Option<u16> {
    let request = hyper::Request::post(target.path.as_str())
        .header(hyper::header::HOST, target.addr.to_string())
        .header(hyper::header::CONTENT_TYPE, target.content_type)
        .body(Full::new(body))
        .ok()?;
    sender.ready().await.ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    response.into_body().collect().await.ok()?;
    Some(status)
}

/// `connections` connections each send a request as soon as the previous one is answered,
/// for `duration`.
pub async fn closed_loop(
    target: &Target,
    connections: usize,
    duration: Duration,
) -> Result<Outcome> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            let mut sender = None;
            let mut i = c;
            while Instant::now() < deadline {
                if sender.is_none() {
                    match connect(target.addr).await {
                        Ok(s) => sender = Some(s),
                        Err(_) => {
                            out.failed += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let body = target.body_bytes(i).clone();
                let len = body.len();
                let t = Instant::now();
                let status = exchange(sender.as_mut().unwrap(), &target, body).await;
                out.record(status, len, t.elapsed());
                if status.is_none() {
                    sender = None;
                }
                i += connections;
            }
            out
        }));
    }
    let mut total = Outcome::default();
    for t in tasks {
        total.merge(t.await?);
    }
    total.secs = started.elapsed().as_secs_f64();
    Ok(total)
}

/// Requests start at a fixed rate for `duration`, whatever the answers take (open loop).
/// A request's latency counts from the moment it was due, so a server that falls behind
/// shows it (no coordinated omission). At most `max_connections` are open; a request due
/// while all are busy waits for one, and that wait counts too.
pub async fn open_loop(
    target: &Target,
    rate: f64,
    duration: Duration,
    max_connections: usize,
) -> Result<Outcome> {
    let idle: Arc<Mutex<Vec<SendRequest<Full<Bytes>>>>> = Arc::new(Mutex::new(Vec::new()));
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let results = Arc::new(Mutex::new(Outcome::default()));
    let period = Duration::from_secs_f64(1.0 / rate);
    let started = Instant::now();
    let total = (duration.as_secs_f64() * rate) as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..total {
        let due = started + period.mul_f64(k as f64);
        tokio::time::sleep_until(due.into()).await;
        let (target, idle, slots, results) =
            (target.clone(), idle.clone(), slots.clone(), results.clone());
        tasks.spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else { return };
            let pooled = idle.lock().unwrap().pop();
            let mut sender = match pooled {
                Some(s) => s,
                None => match connect(target.addr).await {
                    Ok(s) => s,
                    Err(_) => {
                        results.lock().unwrap().failed += 1;
                        return;
                    }
                },
            };
            let body = target.body_bytes(k as usize).clone();
            let len = body.len();
            let status = exchange(&mut sender, &target, body).await;
            results.lock().unwrap().record(status, len, due.elapsed());
            if status.is_some() {
                idle.lock().unwrap().push(sender);
            }
        });
        // Reap finished requests so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let mut out = std::mem::take(&mut *results.lock().unwrap());
    out.secs = started.elapsed().as_secs_f64();
    Ok(out)
}
