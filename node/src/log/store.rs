//! The object store under the log: the warehouse's S3 bucket (through OpenDAL) or its
//! local folder. Four calls, each bounded in time: put-if-absent, get, list and delete.
//!
//! Put-if-absent is what makes the log safe with more than one node: the store itself
//! refuses a second object under a name, so of two writers of one segment exactly one
//! wins. On S3 it is `If-None-Match: *` (a loser gets 412, or 409 from AWS under a race);
//! on a local folder the object is written to a temporary file, synced, and hard-linked
//! under its name, which fails if the name exists.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use zombi_shared::config::NodeConfig;

/// What a put-if-absent found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Created,
    /// An object of that name exists (perhaps ours, from an attempt whose answer was lost).
    Exists,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object store call `{op}` on {key} failed")]
    S3 {
        op: &'static str,
        key: String,
        #[source]
        source: Box<opendal::Error>,
    },
    #[error("object store call `{op}` on {key} failed")]
    Fs {
        op: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("object store call `{op}` on {key} took longer than {timeout_ms} ms")]
    Timeout { op: &'static str, key: String, timeout_ms: u128 },
    #[error("cannot open the object store: {0}")]
    Open(String),
}

#[derive(Clone)]
enum Backend {
    S3(opendal::Operator),
    Fs(PathBuf),
}

/// The warehouse as an object store, keys relative to the warehouse root.
#[derive(Clone)]
pub struct ObjectStore {
    backend: Backend,
    timeout: Duration,
}

/// An OpenDAL operator on `bucket` of the configured S3 store, rooted at `root`, with
/// OpenDAL's timeout and retry layers (transient errors are retried inside).
pub fn s3_operator(
    config: &NodeConfig,
    bucket: &str,
    root: &str,
) -> Result<opendal::Operator, String> {
    Ok(s3_service(config, bucket, root)?
        .layer(opendal::layers::TimeoutLayer::new())
        .layer(opendal::layers::RetryLayer::new())
        .finish())
}

/// The operator of [`s3_operator`] without its layers.
fn s3_service(
    config: &NodeConfig,
    bucket: &str,
    root: &str,
) -> Result<opendal::OperatorBuilder<impl opendal::raw::Access>, String> {
    let s3 = &config.iceberg.s3;
    let mut b = opendal::services::S3::default().bucket(bucket).root(root);
    if !s3.endpoint.is_empty() {
        b = b.endpoint(&s3.endpoint);
    }
    if !s3.region.is_empty() {
        b = b.region(&s3.region);
    }
    if !s3.access_key_id.is_empty() {
        b = b
            .access_key_id(&s3.access_key_id)
            .secret_access_key(&s3.secret_access_key)
            .disable_config_load()
            .disable_ec2_metadata();
    }
    if !s3.path_style {
        b = b.enable_virtual_host_style();
    }
    opendal::Operator::new(b).map_err(|e| format!("cannot open the S3 warehouse: {e}"))
}

impl ObjectStore {
    /// The store of a warehouse URI (`file:///…` or `s3://bucket/prefix`) for the log:
    /// every call bounded by `log.call_timeout_ms` and not retried inside (the log retries
    /// what needs it, with the same bytes).
    pub fn open(config: &NodeConfig, warehouse: &str) -> Result<ObjectStore, StoreError> {
        let timeout = Duration::from_millis(config.log.call_timeout_ms);
        if let Some(path) = warehouse.strip_prefix("file://") {
            return Ok(ObjectStore { backend: Backend::Fs(PathBuf::from(path)), timeout });
        }
        let rest = warehouse
            .strip_prefix("s3://")
            .ok_or_else(|| StoreError::Open(format!("unsupported warehouse {warehouse}")))?;
        let (bucket, root) = rest.split_once('/').unwrap_or((rest, ""));
        let op = s3_service(config, bucket, &format!("/{}", root.trim_matches('/')))
            .map_err(StoreError::Open)?
            .layer(
                opendal::layers::TimeoutLayer::new().with_timeout(timeout).with_io_timeout(timeout),
            )
            .finish();
        Ok(ObjectStore { backend: Backend::S3(op), timeout })
    }

    /// A store on a local folder (tests).
    pub fn local(root: &Path, timeout: Duration) -> ObjectStore {
        ObjectStore { backend: Backend::Fs(root.to_owned()), timeout }
    }

    /// Creates `key` holding `body` unless an object of that name exists.
    pub async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<Put, StoreError> {
        self.bounded("put", key, async {
            match &self.backend {
                Backend::S3(op) => match op.write_with(key, body).if_not_exists(true).await {
                    Ok(_) => Ok(Put::Created),
                    Err(e) if e.kind() == opendal::ErrorKind::ConditionNotMatch => Ok(Put::Exists),
                    Err(e) => {
                        Err(StoreError::S3 { op: "put", key: key.into(), source: Box::new(e) })
                    }
                },
                Backend::Fs(root) => {
                    let path = root.join(key);
                    blocking("put", key, move || fs_put_if_absent(&path, &body)).await
                }
            }
        })
        .await
    }

    /// The object `key`, or `None` if there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.bounded("get", key, async {
            match &self.backend {
                Backend::S3(op) => match op.read(key).await {
                    Ok(buf) => Ok(Some(buf.to_bytes())),
                    Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
                    Err(e) => {
                        Err(StoreError::S3 { op: "get", key: key.into(), source: Box::new(e) })
                    }
                },
                Backend::Fs(root) => {
                    let path = root.join(key);
                    blocking("get", key, move || match std::fs::read(&path) {
                        Ok(b) => Ok(Some(Bytes::from(b))),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                        Err(e) => Err(e),
                    })
                    .await
                }
            }
        })
        .await
    }

    /// Whether the object `key` exists (a HEAD, not a read).
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.bounded("exists", key, async {
            match &self.backend {
                Backend::S3(op) => op.exists(key).await.map_err(|e| StoreError::S3 {
                    op: "exists",
                    key: key.into(),
                    source: Box::new(e),
                }),
                Backend::Fs(root) => {
                    let path = root.join(key);
                    blocking("exists", key, move || path.try_exists()).await
                }
            }
        })
        .await
    }

    /// Names of the objects directly in the folder `dir`, sorted; none if it does not exist.
    pub async fn list(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        use futures::TryStreamExt as _;
        let dir = format!("{}/", dir.trim_end_matches('/'));
        // A listing takes pages; it gets ten times a single call's bound.
        let mut names = self
            .bounded_for(self.timeout.saturating_mul(10), "list", &dir, async {
                match &self.backend {
                    Backend::S3(op) => {
                        let entries: Vec<opendal::Entry> = match op.lister(&dir).await {
                            Ok(l) => l.try_collect().await,
                            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(Vec::new()),
                            Err(e) => Err(e),
                        }
                        .map_err(|e| StoreError::S3 {
                            op: "list",
                            key: dir.clone(),
                            source: Box::new(e),
                        })?;
                        Ok(entries
                            .into_iter()
                            .filter(|e| e.metadata().mode().is_file())
                            .map(|e| e.name().to_owned())
                            .collect())
                    }
                    Backend::Fs(root) => {
                        let path = root.join(&dir);
                        blocking("list", &dir, move || fs_list(&path)).await
                    }
                }
            })
            .await?;
        names.sort();
        Ok(names)
    }

    /// Deletes `key`; deleting what is not there succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.bounded("delete", key, async {
            match &self.backend {
                Backend::S3(op) => op.delete(key).await.map_err(|e| StoreError::S3 {
                    op: "delete",
                    key: key.into(),
                    source: Box::new(e),
                }),
                Backend::Fs(root) => {
                    let path = root.join(key);
                    blocking("delete", key, move || match std::fs::remove_file(&path) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                        _ => Ok(()),
                    })
                    .await
                }
            }
        })
        .await
    }

    async fn bounded<T>(
        &self,
        op: &'static str,
        key: &str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.bounded_for(self.timeout, op, key, call).await
    }

    async fn bounded_for<T>(
        &self,
        timeout: Duration,
        op: &'static str,
        key: &str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(timeout, call).await {
            Ok(r) => r,
            Err(_) => {
                Err(StoreError::Timeout { op, key: key.into(), timeout_ms: timeout.as_millis() })
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    op: &'static str,
    key: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    let fs = |source| StoreError::Fs { op, key: key.into(), source };
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(fs),
        Err(e) => Err(fs(std::io::Error::other(e.to_string()))),
    }
}

/// Writes `body` to a temporary file beside `path`, syncs it, and links it as `path`: the
/// link fails if `path` exists, so exactly one of several writers creates it, and a reader
/// never sees a partial object. The folder is synced so the name survives a crash.
fn fs_put_if_absent(path: &Path, body: &[u8]) -> std::io::Result<Put> {
    use std::io::Write as _;
    let dir = path.parent().ok_or_else(|| std::io::Error::other("an object needs a folder"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    let mut file = std::fs::File::create(&tmp)?;
    let written = file.write_all(body).and_then(|()| file.sync_all());
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            std::fs::File::open(dir)?.sync_all()?;
            Ok(Put::Created)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Put::Exists),
        Err(e) => Err(e),
    }
}

fn fs_list(dir: &Path) -> std::io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && !name.starts_with(".tmp-") {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_folder_creates_each_name_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::local(dir.path(), Duration::from_secs(5));
        assert_eq!(store.get("log/a").await.unwrap(), None);
        assert!(store.list("log").await.unwrap().is_empty());
        // Many writers race for one name: exactly one creates it, and it holds its body.
        let mut racers = tokio::task::JoinSet::new();
        for i in 0..16u8 {
            let store = store.clone();
            racers.spawn(async move {
                (i, store.put_if_absent("log/a", Bytes::from(vec![i; 1000])).await.unwrap())
            });
        }
        let mut winners = Vec::new();
        while let Some(r) = racers.join_next().await {
            let (i, put) = r.unwrap();
            if put == Put::Created {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "{winners:?}");
        let body = store.get("log/a").await.unwrap().unwrap();
        assert_eq!(body.as_ref(), vec![winners[0]; 1000].as_slice());
        assert_eq!(
            store.put_if_absent("log/b", Bytes::from_static(b"b")).await.unwrap(),
            Put::Created
        );
        assert_eq!(store.list("log").await.unwrap(), ["a", "b"]);
        store.delete("log/a").await.unwrap();
        store.delete("log/a").await.unwrap();
        assert_eq!(store.list("log/").await.unwrap(), ["b"]);
    }
}
