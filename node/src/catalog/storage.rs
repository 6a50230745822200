//! The warehouse storage as the node uses it: iceberg-rust's OpenDAL storage behind a
//! wrapper that bounds every call in time (`iceberg.io_timeout_ms`), retries a call that
//! failed or timed out with backoff (`iceberg.io_retries` more attempts), and counts
//! failures per operation (`zombi_node_warehouse_errors_total{op,kind}`).
//!
//! OpenDAL's own retry layer (inside) already retries errors an object store marks as
//! temporary, so this one retries only what that layer cannot see: a call that hangs (a
//! dropped connection on which no error ever arrives) and injected faults. It keeps one
//! table's stuck upload from holding a flush slot for good. Streaming writes are bounded per chunk but not retried: the caller (a flush
//! cycle, a maintenance run) retries the whole file with backoff.
//!
//! In builds with the `failpoints` feature this is also the seam where tests inject
//! object-store faults: `FAILPOINTS=warehouse-<op>=<spec>` with `return(fail)`,
//! `return(hang)` or `return(delay:<ms>)`, e.g. `warehouse-write=3*return(fail)` (the
//! first three writes fail) or `warehouse-delete=50%return(fail)`. Ops: `read`, `write`,
//! `delete`, `exists`, `metadata`, `list`.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use iceberg::io::{
    FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage, StorageConfig,
    StorageFactory,
};
use iceberg::{Error, ErrorKind, Result};
use iceberg_storage_opendal::OpenDalResolvingStorageFactory;
use serde::{Deserialize, Serialize};

use crate::metrics as m;
use crate::tasks::Backoff;

/// How warehouse calls are bounded and retried.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Policy {
    /// Bound on one attempt of one call.
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// Delay before the first retry; doubles up to 5 s.
    pub backoff: Duration,
}

impl Policy {
    fn delay(&self, attempt: u32) -> Duration {
        Backoff::new(self.backoff, Duration::from_secs(5)).delay(attempt)
    }
}

/// Builds [`ResilientStorage`] over OpenDAL's storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResilientStorageFactory {
    inner: OpenDalResolvingStorageFactory,
    policy: Policy,
}

impl ResilientStorageFactory {
    pub fn new(policy: Policy) -> Self {
        ResilientStorageFactory { inner: OpenDalResolvingStorageFactory::new(), policy }
    }
}

#[typetag::serde(name = "zombi-resilient")]
impl StorageFactory for ResilientStorageFactory {
    fn build(&self, config: &StorageConfig) -> Result<Arc<dyn Storage>> {
        Ok(Arc::new(ResilientStorage { inner: self.inner.build(config)?, policy: self.policy }))
    }
}

#[derive(Debug, Clone)]
pub struct ResilientStorage {
    inner: Arc<dyn Storage>,
    policy: Policy,
}

/// What a test asked a warehouse call to do instead of its work. Only `failpoints` builds
/// construct one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
enum Fault {
    Fail,
    Hang,
    Delay(Duration),
}

/// The fault armed for `op`, if any (only in `failpoints` builds).
fn injected(op: &'static str) -> Option<Fault> {
    #[cfg(feature = "failpoints")]
    {
        let name = format!("warehouse-{op}");
        let arg = (|| -> Option<Option<String>> {
            fail::fail_point!(&name, Some);
            None
        })()?;
        match arg.as_deref().unwrap_or("fail") {
            "hang" => Some(Fault::Hang),
            other => match other.strip_prefix("delay:").and_then(|ms| ms.parse().ok()) {
                Some(ms) => Some(Fault::Delay(Duration::from_millis(ms))),
                None => Some(Fault::Fail),
            },
        }
    }
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = op;
        None
    }
}

/// The source of the errors this wrapper makes itself (a timeout, an injected fault):
/// the only ones it retries, since OpenDAL's retry layer already retried the others.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Interrupted(&'static str);

/// Whether an error of a warehouse call is one this wrapper retries.
fn transient(e: &Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<Interrupted>().is_some() {
            return true;
        }
        source = s.source();
    }
    false
}

fn failed(op: &'static str, kind: &'static str) {
    metrics::counter!(m::WAREHOUSE_ERRORS, "op" => op, "kind" => kind).increment(1);
}

/// One attempt of `call`, with the injected fault of `op` and the timeout applied.
async fn attempt<T, F>(op: &'static str, path: &str, timeout: Duration, call: F) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    match injected(op) {
        Some(Fault::Fail) => {
            failed(op, "error");
            return Err(Error::new(ErrorKind::Unexpected, format!("{op} of {path} failed"))
                .with_source(Interrupted("injected fault")));
        }
        Some(Fault::Hang) => {
            tokio::time::sleep(timeout).await;
            failed(op, "timeout");
            return Err(timed_out(op, path, timeout));
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            failed(op, "error");
            Err(e)
        }
        Err(_) => {
            failed(op, "timeout");
            Err(timed_out(op, path, timeout))
        }
    }
}

fn timed_out(op: &str, path: &str, timeout: Duration) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("warehouse {op} of {path} did not finish within {} ms", timeout.as_millis()),
    )
    .with_source(Interrupted("iceberg.io_timeout_ms passed"))
}

/// Runs `make()` until it succeeds, fails for good, or runs out of attempts.
pub(crate) async fn with_retries<T, F, Fut>(
    policy: &Policy,
    op: &'static str,
    path: &str,
    mut make: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tries = 0u32;
    loop {
        match attempt(op, path, policy.timeout, make()).await {
            Ok(v) => return Ok(v),
            Err(e) if tries < policy.retries && transient(&e) => {
                tries += 1;
                metrics::counter!(m::WAREHOUSE_RETRIES, "op" => op).increment(1);
                tracing::debug!(op, path, error = %e, tries, "warehouse call failed; retrying");
                tokio::time::sleep(policy.delay(tries)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A streaming write: every chunk and the close are bounded in time; failures are counted
/// and returned (the caller rewrites the whole file).
struct BoundedWrite {
    inner: Box<dyn FileWrite>,
    path: String,
    timeout: Duration,
}

#[async_trait]
impl FileWrite for BoundedWrite {
    async fn write(&mut self, bs: Bytes) -> Result<()> {
        let (path, timeout) = (self.path.clone(), self.timeout);
        attempt("write", &path, timeout, self.inner.write(bs)).await
    }

    async fn close(&mut self) -> Result<()> {
        let (path, timeout) = (self.path.clone(), self.timeout);
        attempt("write", &path, timeout, self.inner.close()).await
    }
}

/// A ranged reader whose reads are retried like every other call.
struct RetriedRead {
    inner: Box<dyn FileRead>,
    path: String,
    policy: Policy,
}

#[async_trait]
impl FileRead for RetriedRead {
    async fn read(&self, range: Range<u64>) -> Result<Bytes> {
        with_retries(&self.policy, "read", &self.path, || self.inner.read(range.clone())).await
    }
}

impl Serialize for ResilientStorage {
    fn serialize<S: serde::Serializer>(&self, _: S) -> std::result::Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("the node's warehouse storage is not serializable"))
    }
}

impl<'de> Deserialize<'de> for ResilientStorage {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> std::result::Result<Self, D::Error> {
        Err(serde::de::Error::custom("the node's warehouse storage is not serializable"))
    }
}

#[async_trait]
#[typetag::serde(name = "zombi-resilient-storage")]
impl Storage for ResilientStorage {
    async fn exists(&self, path: &str) -> Result<bool> {
        with_retries(&self.policy, "exists", path, || self.inner.exists(path)).await
    }

    async fn metadata(&self, path: &str) -> Result<FileMetadata> {
        with_retries(&self.policy, "metadata", path, || self.inner.metadata(path)).await
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        with_retries(&self.policy, "read", path, || self.inner.read(path)).await
    }

    async fn reader(&self, path: &str) -> Result<Box<dyn FileRead>> {
        let inner = with_retries(&self.policy, "read", path, || self.inner.reader(path)).await?;
        Ok(Box::new(RetriedRead { inner, path: path.to_owned(), policy: self.policy }))
    }

    async fn write(&self, path: &str, bs: Bytes) -> Result<()> {
        with_retries(&self.policy, "write", path, || self.inner.write(path, bs.clone())).await
    }

    async fn writer(&self, path: &str) -> Result<Box<dyn FileWrite>> {
        let inner = with_retries(&self.policy, "write", path, || self.inner.writer(path)).await?;
        Ok(Box::new(BoundedWrite { inner, path: path.to_owned(), timeout: self.policy.timeout }))
    }

    async fn delete(&self, path: &str) -> Result<()> {
        with_retries(&self.policy, "delete", path, || self.inner.delete(path)).await
    }

    async fn delete_prefix(&self, path: &str) -> Result<()> {
        with_retries(&self.policy, "delete", path, || self.inner.delete_prefix(path)).await
    }

    async fn delete_stream(&self, paths: BoxStream<'static, String>) -> Result<()> {
        // Not retried: a stream is consumed once. Zombi deletes file by file.
        attempt("delete", "a stream of paths", self.policy.timeout, self.inner.delete_stream(paths))
            .await
    }

    fn new_input(&self, path: &str) -> Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_owned()))
    }

    fn new_output(&self, path: &str) -> Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_seconds() {
        let p = Policy {
            timeout: Duration::from_secs(1),
            retries: 10,
            backoff: Duration::from_millis(200),
        };
        let d: Vec<u128> = (1..=7).map(|a| p.delay(a).as_millis()).collect();
        assert_eq!(d, vec![200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[test]
    fn only_timeouts_and_injected_faults_are_retried_here() {
        let io = |kind| {
            Error::new(ErrorKind::Unexpected, "io").with_source(opendal::Error::new(kind, "x"))
        };
        // OpenDAL's retry layer has already retried these.
        assert!(!transient(&io(opendal::ErrorKind::Unexpected)));
        assert!(!transient(&io(opendal::ErrorKind::NotFound)));
        assert!(!transient(&Error::new(ErrorKind::DataInvalid, "bad path")));
        assert!(transient(&timed_out("read", "x", Duration::from_secs(1))));
    }

    #[tokio::test]
    async fn a_call_that_hangs_is_cut_off_and_retried() {
        let p = Policy {
            timeout: Duration::from_millis(50),
            retries: 2,
            backoff: Duration::from_millis(1),
        };
        let mut calls = 0;
        let out = with_retries(&p, "read", "x", || {
            calls += 1;
            let first = calls == 1;
            async move {
                if first {
                    std::future::pending::<()>().await;
                }
                Ok(7)
            }
        })
        .await
        .unwrap();
        assert_eq!((out, calls), (7, 2));
    }
}
