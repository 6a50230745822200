//! Test harness: spawns the real `zombi-node` and `zombi-edge` binaries on port 0, each
//! with its own temp dir, and waits on conditions with deadlines (never fixed sleeps).
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

pub mod driver;
pub mod engines;
pub mod moto;
pub mod producer;
pub mod seaweed;
pub mod trino;

/// Directory holding the built binaries: `$ZOMBI_BIN_DIR`, else next to the test's `deps/`.
/// This package's folder (`tests/`): the one the test runner names at run time, else the
/// one it was built in. Builds in other checkouts share the target directory, and a library
/// built there would otherwise read another checkout's scripts.
pub fn package_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ZOMBI_BIN_DIR") {
        return dir.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

/// The path of a workspace binary, built by `cargo build --bins`.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(path.is_file(), "{} not found: run `cargo build --bins` first", path.display());
    path
}

/// Polls `check` until it returns `Some`, failing after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(5);
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

pub fn client() -> reqwest::Client {
    // Pooled connections are dropped before the servers' keep-alive idle time (their
    // header deadline, 60 s by default) runs out, as docs/configuration.md advises clients.
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// One spawned process that prints `… listening on http://ADDR` once bound.
struct Proc {
    child: Child,
    addr: SocketAddr,
}

impl Proc {
    fn spawn(mut cmd: Command, name: &str) -> Result<Proc> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).stdin(Stdio::null());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let mut child = cmd.spawn().with_context(|| format!("cannot spawn {name}"))?;
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let tag = format!("{name} listening on http://");
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix(&tag) {
                    let _ = tx.send(addr.trim().to_owned());
                    break;
                }
            }
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a.parse().context("bad listen address")?,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait()?;
                bail!("{name} did not report its address (exit: {status})");
            }
        };
        Ok(Proc { child, addr })
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                self.kill9();
                bail!("process did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.child.id(), "VmRSS")
    }

    fn signal(&self, signal: &str) -> Result<()> {
        let status = Command::new("kill").arg(signal).arg(self.child.id().to_string()).status()?;
        anyhow::ensure!(status.success(), "kill {signal} failed");
        Ok(())
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

async fn wait_healthy(url: &str) -> Result<()> {
    let client = client();
    let health = format!("{url}/health");
    wait_for(&format!("{health} to answer 200"), Duration::from_secs(60), || {
        let req = client.get(&health).timeout(Duration::from_secs(2)).send();
        async move { req.await.ok().filter(|r| r.status() == 200).map(|_| ()) }
    })
    .await
}

/// A `kB` field of `/proc/<pid>/status`, such as `VmRSS` (resident now) or `VmHWM` (peak).
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A running `zombi-node` with its own data directory.
pub struct Node {
    proc: Proc,
    data_dir: PathBuf,
    env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

impl Node {
    /// Starts a node on 127.0.0.1:0 in a fresh temp dir; `env` adds `ZOMBI_NODE__…` settings.
    pub async fn start(env: &[(&str, &str)]) -> Result<Node> {
        let node = Self::spawn_listening(env)?;
        wait_healthy(&node.url()).await?;
        Ok(node)
    }

    /// Starts a node like [`Node::start`] but returns once it listens, whatever its role
    /// (a standby answers `/health` with 503 until it takes over).
    pub fn spawn_listening(env: &[(&str, &str)]) -> Result<Node> {
        let tmp = tempfile::tempdir()?;
        let data_dir = tmp.path().join("data");
        let mut env: Vec<(String, String)> =
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        // Tests that read the hot store with `dump` must not race retention: unless a test
        // sets its own, flushed events stay for an hour.
        if !env.iter().any(|(k, _)| k == "ZOMBI_NODE__FLUSH__RETENTION_SECS") {
            env.push(("ZOMBI_NODE__FLUSH__RETENTION_SECS".into(), "3600".into()));
        }
        let proc = Self::spawn(&data_dir, &env, "127.0.0.1:0".parse().unwrap())?;
        Ok(Node { proc, data_dir, env, _tmp: Some(tmp) })
    }

    /// The role `/health` reports (`active`, `standby`, `starting`, `stepped_down`), if the
    /// node answers.
    pub async fn role(&self) -> Option<String> {
        let r = client()
            .get(format!("{}/health", self.url()))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        v["role"].as_str().map(str::to_owned)
    }

    /// Waits until `/health` reports `role`.
    pub async fn wait_role(&self, role: &str, timeout: Duration) -> Result<()> {
        wait_for(&format!("{} to be {role}", self.url()), timeout, || async {
            (self.role().await.as_deref() == Some(role)).then_some(())
        })
        .await
    }

    /// Freezes the process (SIGSTOP), as a machine that stops answering; [`Node::resume`]
    /// lets it go on where it was.
    pub fn pause(&self) -> Result<()> {
        self.proc.signal("-STOP")
    }

    pub fn resume(&self) -> Result<()> {
        self.proc.signal("-CONT")
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }

    /// Starts the node again on the same address and data directory, returning once it
    /// listens, whatever its role.
    pub async fn restart_listening(&mut self) -> Result<()> {
        if self.proc.is_running() {
            self.proc.kill9();
        }
        let addr = self.proc.addr;
        // The port was just released; another process could grab it in between, so retry
        // briefly rather than assume.
        let proc = wait_for("the node to rebind its port", Duration::from_secs(20), || {
            let r = Self::spawn(&self.data_dir, &self.env, addr).ok();
            async move { r }
        })
        .await?;
        self.proc = proc;
        Ok(())
    }

    fn spawn(data_dir: &Path, env: &[(String, String)], listen: SocketAddr) -> Result<Proc> {
        let mut cmd = Command::new(binary("zombi-node"));
        cmd.arg("--listen").arg(listen.to_string()).arg("--data-dir").arg(data_dir);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        Proc::spawn(cmd, "zombi-node")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.proc.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.proc.addr
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn kill9(&mut self) {
        self.proc.kill9();
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> Result<ExitStatus> {
        self.proc.terminate(Duration::from_secs(30))
    }

    /// Starts the node again on the same address and data directory.
    pub async fn restart(&mut self) -> Result<()> {
        self.restart_listening().await?;
        wait_healthy(&self.url()).await
    }

    pub fn rss_kib(&self) -> Option<u64> {
        self.proc.rss_kib()
    }

    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }

    /// Sets (or with `None` removes) an environment variable for the next (re)start.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.env.push((key.to_owned(), v.to_owned()));
        }
    }

    /// Waits for the process to exit by itself (e.g. at an armed failpoint).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let proc = &mut self.proc;
        wait_for("the node to exit", timeout, || {
            let status = proc.child.try_wait().ok().flatten();
            async move { status }
        })
        .await
    }

    /// `request` with the node's admin token, when it was started with one.
    pub fn admin(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.env.iter().find(|(k, _)| k == "ZOMBI_NODE__AUTH__ADMIN_TOKEN") {
            Some((_, token)) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `POST /tables/{table}/flush`: returns after the commit with snapshot and watermarks.
    pub async fn flush(&self, table: &str) -> Result<Value> {
        let r = self
            .admin(client().post(format!("{}/tables/{table}/flush", self.url())))
            .send()
            .await?;
        let status = r.status();
        let body: Value = r.json().await?;
        anyhow::ensure!(status == 200, "flush {table}: {status} {body}");
        Ok(body)
    }

    /// `POST /tables/{table}/compact`: runs maintenance now and returns its report.
    pub async fn compact(&self, table: &str) -> Result<Value> {
        let r = self
            .admin(client().post(format!("{}/tables/{table}/compact", self.url())))
            .send()
            .await?;
        let status = r.status();
        let body: Value = r.json().await?;
        anyhow::ensure!(status == 200, "compact {table}: {status} {body}");
        Ok(body)
    }

    /// The table's metadata, as the REST catalog's `loadTable` gives it.
    pub async fn table_metadata(&self, table: &str) -> Result<Value> {
        let url = format!("{}/v1/namespaces/zombi/tables/{table}", self.url());
        let r = client().get(url).send().await?;
        anyhow::ensure!(r.status() == 200, "load table {table}: {}", r.status());
        let body: Value = r.json().await?;
        Ok(body["metadata"].clone())
    }

    /// `GET /tables/{table}/watermark`.
    pub async fn watermark(&self, table: &str) -> Result<Value> {
        let r = client().get(format!("{}/tables/{table}/watermark", self.url())).send().await?;
        anyhow::ensure!(r.status() == 200, "watermark {table}: {}", r.status());
        Ok(r.json().await?)
    }

    /// `GET /tables/{table}/hot?{query}`: status and body.
    pub async fn hot(&self, table: &str, query: &str) -> Result<(u16, Vec<u8>)> {
        let r = client().get(format!("{}/tables/{table}/hot?{query}", self.url())).send().await?;
        Ok((r.status().as_u16(), r.bytes().await?.to_vec()))
    }

    /// Waits until every acknowledged event of `table` is committed (watermarks reach the
    /// high-water marks) by the flusher on its own.
    pub async fn wait_flushed(&self, table: &str, timeout: Duration) -> Result<Value> {
        wait_for(&format!("{table} to be fully committed"), timeout, || async {
            let w = self.watermark(table).await.ok()?;
            (w["watermarks"] == w["high_water_marks"] && w["snapshot_id"].is_i64()).then_some(w)
        })
        .await
    }

    /// `GET /metrics` as Prometheus text.
    pub async fn metrics(&self) -> Result<String> {
        Ok(client().get(format!("{}/metrics", self.url())).send().await?.text().await?)
    }

    pub async fn stats(&self) -> Result<Value> {
        let r = self.admin(client().get(format!("{}/stats", self.url()))).send().await?;
        anyhow::ensure!(r.status() == 200, "GET /stats: {}", r.status());
        Ok(r.json().await?)
    }

    /// Events accepted into `table` according to `/stats` (0 if the table is unknown).
    pub async fn table_events(&self, table: &str) -> Result<u64> {
        let stats = self.stats().await?;
        Ok(stats["tables"][table]["events"].as_u64().unwrap_or(0))
    }

    /// Every event of `table` in the hot store, read with `zombi-node dump`.
    pub fn dump(&self, table: &str) -> Result<Vec<Value>> {
        dump(&self.data_dir, table)
    }
}

/// Sum of every sample of metric `name` (whatever its labels) in Prometheus text.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Reads a table from a node's data directory with `zombi-node dump` (read-only).
pub fn dump(data_dir: &Path, table: &str) -> Result<Vec<Value>> {
    let out = Command::new(binary("zombi-node"))
        .arg("dump")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--table")
        .arg(table)
        .output()?;
    anyhow::ensure!(out.status.success(), "dump failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)?
        .lines()
        .map(|l| serde_json::from_str(l).context("dump line"))
        .collect()
}

/// A running `zombi-edge` pointed at a node.
pub struct Edge {
    proc: Proc,
}

impl Edge {
    /// Starts an edge on 127.0.0.1:0; `env` adds `ZOMBI_EDGE__…` settings.
    pub async fn start(node_url: &str, env: &[(&str, &str)]) -> Result<Edge> {
        let mut cmd = Command::new(binary("zombi-edge"));
        cmd.arg("--listen").arg("127.0.0.1:0").arg("--node-url").arg(node_url);
        cmd.envs(env.iter().copied());
        let proc = Proc::spawn(cmd, "zombi-edge")?;
        let edge = Edge { proc };
        wait_healthy(&edge.url()).await?;
        Ok(edge)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.proc.addr)
    }

    pub fn rss_kib(&self) -> Option<u64> {
        self.proc.rss_kib()
    }

    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }

    pub fn terminate(&mut self) -> Result<ExitStatus> {
        self.proc.terminate(Duration::from_secs(30))
    }

    /// `GET /metrics` as Prometheus text.
    pub async fn metrics(&self) -> Result<String> {
        Ok(client().get(format!("{}/metrics", self.url())).send().await?.text().await?)
    }
}
