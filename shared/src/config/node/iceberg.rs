//! `[iceberg]`: the namespace, the warehouse (local or S3) and how data files are written
//! and the warehouse is called.

use serde::{Deserialize, Serialize};

use super::{MIB, zombi_table_name_ok};
use crate::config::{ConfigError, check_range};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IcebergConfig {
    /// Catalog namespace holding every Zombi table.
    pub namespace: String,
    /// Warehouse root: `file:///abs/path` or `s3://bucket/prefix`. Empty: `file://` under
    /// `data_dir/warehouse` (the embedded default).
    pub warehouse: String,
    pub s3: S3Config,
    /// Target size of a data file; larger flushes roll over to new files.
    pub target_file_size_bytes: u64,
    /// Bound on one attempt of one warehouse call (a read, a write, a chunk of a streamed
    /// write, a delete, a listing), in ms.
    pub io_timeout_ms: u64,
    /// More attempts of a warehouse call that failed or timed out, with backoff.
    pub io_retries: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Endpoint of an S3-compatible store, e.g. `http://127.0.0.1:9000`. Empty: AWS.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Path-style URLs (`endpoint/bucket/key`), needed by most S3-compatible stores.
    pub path_style: bool,
}

impl Default for IcebergConfig {
    fn default() -> Self {
        IcebergConfig {
            namespace: "zombi".into(),
            warehouse: String::new(),
            s3: S3Config::default(),
            target_file_size_bytes: 128 * MIB,
            io_timeout_ms: 60_000,
            io_retries: 3,
        }
    }
}

impl IcebergConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let ns = &self.namespace;
        if zombi_table_name_ok(ns).is_err() {
            return Err(ConfigError::invalid(
                "iceberg.namespace",
                "must match ^[a-zA-Z][a-zA-Z0-9_-]{0,127}$",
            ));
        }
        let w = &self.warehouse;
        if !(w.is_empty() || w.starts_with("file:///") || w.starts_with("s3://")) {
            return Err(ConfigError::invalid(
                "iceberg.warehouse",
                "must be empty (file:// under data_dir), file:///absolute/path or s3://bucket/prefix",
            ));
        }
        if w.starts_with("s3://") && w.trim_start_matches("s3://").trim_matches('/').is_empty() {
            return Err(ConfigError::invalid(
                "iceberg.warehouse",
                "needs a bucket: s3://bucket/prefix",
            ));
        }
        check_range(
            "iceberg.target_file_size_bytes",
            self.target_file_size_bytes,
            MIB,
            4096 * MIB,
        )?;
        check_range("iceberg.io_timeout_ms", self.io_timeout_ms, 100, 3_600_000)?;
        check_range("iceberg.io_retries", self.io_retries as u64, 0, 20)?;
        Ok(())
    }
}
