//! The warehouse: where data and metadata files go (`file://` under the data dir by
//! default, or `s3://`), and the `FileIO` that reads and writes them.

use std::sync::Arc;

use std::time::Duration;

use iceberg::io::{FileIO, FileIOBuilder};
use zombi_shared::config::NodeConfig;

use super::storage::{self, Policy, ResilientStorageFactory};

/// How the node bounds and retries its warehouse calls.
pub fn policy(config: &NodeConfig) -> Policy {
    Policy {
        timeout: Duration::from_millis(config.iceberg.io_timeout_ms),
        retries: config.iceberg.io_retries,
        backoff: Duration::from_millis(200),
    }
}

/// The warehouse root URL the node uses.
pub fn location(config: &NodeConfig) -> std::io::Result<String> {
    if !config.iceberg.warehouse.is_empty() {
        return Ok(config.iceberg.warehouse.trim_end_matches('/').to_owned());
    }
    let dir = config.data_dir.join("warehouse");
    std::fs::create_dir_all(&dir)?;
    let dir = std::fs::canonicalize(dir)?;
    Ok(format!("file://{}", dir.display()))
}

/// File IO for the warehouse, with S3 settings when configured.
pub fn file_io(config: &NodeConfig) -> FileIO {
    let s3 = &config.iceberg.s3;
    let mut props: Vec<(&str, String)> = vec![];
    if !s3.endpoint.is_empty() {
        props.push(("s3.endpoint", s3.endpoint.clone()));
    }
    if !s3.region.is_empty() {
        props.push(("s3.region", s3.region.clone()));
    }
    if !s3.access_key_id.is_empty() {
        props.push(("s3.access-key-id", s3.access_key_id.clone()));
        props.push(("s3.secret-access-key", s3.secret_access_key.clone()));
        // Explicit keys: never fall back to ambient AWS config or instance metadata.
        props.push(("s3.disable-config-load", "true".into()));
        props.push(("s3.disable-ec2-metadata", "true".into()));
    }
    props.push(("s3.path-style-access", s3.path_style.to_string()));
    FileIOBuilder::new(Arc::new(ResilientStorageFactory::new(policy(config))))
        .with_props(props)
        .build()
}

/// Lists the files under a warehouse folder. The `iceberg` crate's `FileIO` reads, writes
/// and deletes but cannot list, and finding files that nothing references (the orphans of
/// a crashed flush, files of expired snapshots) needs a listing.
pub struct Lister {
    op: opendal::Operator,
    policy: Policy,
    /// What turns an operator path back into a URI: `file:///` or `s3://bucket/`.
    uri_root: String,
}

impl Lister {
    pub fn new(config: &NodeConfig, warehouse: &str) -> Result<Lister, String> {
        if warehouse.starts_with("file://") {
            let op = opendal::Operator::new(opendal::services::Fs::default().root("/"))
                .map_err(|e| format!("cannot open the warehouse folder: {e}"))?
                .layer(opendal::layers::TimeoutLayer::new())
                .layer(opendal::layers::RetryLayer::new())
                .finish();
            return Ok(Lister { op, policy: policy(config), uri_root: "file:///".into() });
        }
        let rest = warehouse
            .strip_prefix("s3://")
            .ok_or_else(|| format!("cannot list warehouse {warehouse}"))?;
        let bucket = rest.split('/').next().unwrap_or_default();
        let op = crate::log::store::s3_operator(config, bucket, "/")?;
        Ok(Lister { op, policy: policy(config), uri_root: format!("s3://{bucket}/") })
    }

    /// Names of the folders directly in the folder `dir` (a URI); none when it does not
    /// exist. Bounded in time and retried like every warehouse call.
    pub async fn list_dirs(&self, dir: &str) -> iceberg::Result<Vec<String>> {
        let path = self.path_of(dir).map_err(io_error)?;
        let entries = self.entries(dir, false).await?;
        Ok(entries
            .into_iter()
            .filter(|e| {
                e.metadata().mode().is_dir()
                    && e.path().trim_end_matches('/') != path.trim_end_matches('/')
            })
            .filter_map(|e| e.name().trim_end_matches('/').rsplit('/').next().map(str::to_owned))
            .filter(|n| !n.is_empty())
            .collect())
    }

    /// URIs of every file below the folder `dir` (a URI); none when it does not exist.
    /// Bounded in time and retried like every warehouse call.
    pub async fn list_files(&self, dir: &str) -> iceberg::Result<Vec<String>> {
        let entries = self.entries(dir, true).await?;
        Ok(entries
            .into_iter()
            .filter(|e| e.metadata().mode().is_file())
            .map(|e| format!("{}{}", self.uri_root, e.path().trim_start_matches('/')))
            .collect())
    }

    /// The entries in (`recursive`: below) the folder `dir`; none when it does not exist.
    async fn entries(&self, dir: &str, recursive: bool) -> iceberg::Result<Vec<opendal::Entry>> {
        use futures::TryStreamExt as _;
        let path = self.path_of(dir).map_err(io_error)?;
        // OpenDAL bounds each page of a listing; a whole listing of a large table takes
        // many pages, so it gets ten times a single call's bound.
        let policy = Policy { timeout: self.policy.timeout.saturating_mul(10), ..self.policy };
        storage::with_retries(&policy, "list", dir, || async {
            let lister = match self.op.lister_with(&path).recursive(recursive).await {
                Ok(l) => l,
                Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io_error(e)),
            };
            lister.try_collect().await.map_err(io_error)
        })
        .await
    }

    /// Makes `to` (a URI in the warehouse) a copy of the file `from` without the bytes
    /// passing through the node: a hard link on a local warehouse (made aside and renamed
    /// over, so a reader sees the old file or the new), a server-side copy on S3 (a PUT is
    /// atomic). Bounded in time and retried like every warehouse call.
    pub async fn copy(&self, from: &str, to: &str) -> iceberg::Result<()> {
        if self.uri_root == "file:///" {
            let to_uri = to.to_owned();
            let (from, to) = (local_path(from)?, local_path(to)?);
            let linked = tokio::task::spawn_blocking(move || {
                let aside = to.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
                std::fs::hard_link(&from, &aside)
                    .and_then(|()| std::fs::rename(&aside, &to))
                    .inspect_err(|_| {
                        let _ = std::fs::remove_file(&aside);
                    })
            })
            .await;
            let failed = |e: &dyn std::fmt::Display| {
                iceberg::Error::new(
                    iceberg::ErrorKind::Unexpected,
                    format!("cannot link {to_uri}: {e}"),
                )
            };
            return linked.map_err(|e| failed(&e))?.map_err(|e| failed(&e));
        }
        let path = |uri: &str| {
            uri.strip_prefix(self.uri_root.as_str()).map(str::to_owned).ok_or_else(|| {
                iceberg::Error::new(
                    iceberg::ErrorKind::DataInvalid,
                    format!("{uri} is outside the warehouse"),
                )
            })
        };
        let (from_path, to_path) = (path(from)?, path(to)?);
        storage::with_retries(&self.policy, "copy", to, || async {
            self.op.copy(&from_path, &to_path).await.map(|_| ()).map_err(io_error)
        })
        .await
    }

    /// The operator path (ending in `/`) of the folder `dir`, a URI in the warehouse.
    fn path_of(&self, dir: &str) -> Result<String, opendal::Error> {
        let Some(path) = dir.strip_prefix(self.uri_root.as_str()) else {
            return Err(opendal::Error::new(
                opendal::ErrorKind::Unexpected,
                format!("{dir} is outside the warehouse"),
            ));
        };
        Ok(format!("{}/", path.trim_end_matches('/')))
    }
}

/// The local path of a `file://` URI.
fn local_path(uri: &str) -> iceberg::Result<std::path::PathBuf> {
    uri.strip_prefix("file://").map(std::path::PathBuf::from).ok_or_else(|| {
        iceberg::Error::new(iceberg::ErrorKind::DataInvalid, format!("{uri} is not a local file"))
    })
}

fn io_error(e: opendal::Error) -> iceberg::Error {
    iceberg::Error::new(iceberg::ErrorKind::Unexpected, "warehouse listing failed").with_source(e)
}
