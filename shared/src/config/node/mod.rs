//! The node's configuration: [`NodeConfig`] and one file per section, each with its
//! defaults and its `validate()`.

mod auth;
mod combiner;
mod flush;
mod iceberg;
mod limits;
mod log;
mod maintenance;
mod tables;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use auth::NodeAuth;
pub use combiner::CombinerConfig;
pub use flush::{FlushConfig, SnapshotMode, SnapshotPolicy, TableFlushSettings};
pub use iceberg::{IcebergConfig, S3Config};
pub use limits::NodeLimits;
pub use log::LogConfig;
pub use maintenance::{MaintenanceConfig, MaintenanceOverrides};
pub use tables::{Evolve, OnError, TableMode, TableOverrides, UnknownFields};

use super::{ConfigError, Validate, check_range, is_loopback};

const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Address of the node's HTTP API (ingest, catalog, admin).
    pub listen: SocketAddr,
    /// Where RocksDB (`hot/`) and the default warehouse live.
    pub data_dir: PathBuf,
    pub durability: Durability,
    pub combiner: CombinerConfig,
    pub limits: NodeLimits,
    /// A retried idempotency key within this window returns the original sequence.
    pub idempotency_window_secs: u64,
    pub auth: NodeAuth,
    /// How long a graceful shutdown may take to drain, in ms.
    pub shutdown_timeout_ms: u64,
    pub iceberg: IcebergConfig,
    /// The log in the object store (`durability = "object"`).
    pub log: LogConfig,
    pub flush: FlushConfig,
    /// Table maintenance: compaction, manifest merging, snapshot expiry, file cleanup.
    pub maintenance: MaintenanceConfig,
    /// Per-table overrides of the flush and maintenance settings, keyed by table name.
    pub tables: BTreeMap<String, TableOverrides>,
}

/// When an acknowledged event is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Written to the RocksDB WAL before the ack: survives a crash of the process.
    #[default]
    Wal,
    /// WAL synced to disk before the ack (group commit): survives power loss.
    Fsync,
    /// No WAL: a crash loses every event not yet flushed to Iceberg. Opt-in only.
    None,
    /// In a log segment created with put-if-absent in the warehouse's object store before
    /// the ack (see `[log]`): survives the loss of the node's disk.
    Object,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: "127.0.0.1:8090".parse().unwrap(),
            data_dir: PathBuf::from("./data"),
            durability: Durability::Wal,
            combiner: CombinerConfig::default(),
            limits: NodeLimits::default(),
            idempotency_window_secs: 24 * 3600,
            auth: NodeAuth::default(),
            shutdown_timeout_ms: 10_000,
            iceberg: IcebergConfig::default(),
            log: LogConfig::default(),
            flush: FlushConfig::default(),
            maintenance: MaintenanceConfig::default(),
            tables: BTreeMap::new(),
        }
    }
}

impl Validate for NodeConfig {
    /// Section by section, in the order of the file.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("data_dir", "must not be empty"));
        }
        self.combiner.validate()?;
        self.limits.validate()?;
        check_range("idempotency_window_secs", self.idempotency_window_secs, 1, 30 * 24 * 3600)?;
        check_range("shutdown_timeout_ms", self.shutdown_timeout_ms, 0, 600_000)?;
        self.auth.validate()?;
        self.iceberg.validate()?;
        self.log.validate()?;
        self.flush.validate()?;
        self.maintenance.validate(false)?;
        tables::validate_tables(&self.tables, &self.maintenance)
    }
}

fn zombi_table_name_ok(name: &str) -> Result<(), crate::TableNameError> {
    crate::validate_table_name(name)
}

impl NodeConfig {
    /// True when the node accepts unauthenticated requests from beyond loopback.
    pub fn auth_off_beyond_loopback(&self) -> bool {
        (self.auth.internal_tokens.is_empty()
            || self.auth.admin_token.is_none()
            || self.auth.catalog_token.is_none())
            && !is_loopback(&self.listen)
    }

    pub fn hot_dir(&self) -> PathBuf {
        self.data_dir.join("hot")
    }

    /// The maintenance settings of `table`: `[tables.<name>.maintenance]` over `[maintenance]`.
    pub fn table_maintenance(&self, table: &str) -> MaintenanceConfig {
        match self.tables.get(table) {
            Some(o) => self.maintenance.with(&o.maintenance),
            None => self.maintenance.clone(),
        }
    }

    /// The flush settings of `table`: its `[tables.<name>]` overrides over `[flush]`.
    pub fn table_flush(&self, table: &str) -> TableFlushSettings {
        let o = self.tables.get(table);
        TableFlushSettings {
            interval_ms: o.and_then(|o| o.flush_interval_ms).unwrap_or(self.flush.interval_ms),
            retention_secs: o.and_then(|o| o.retention_secs).unwrap_or(self.flush.retention_secs),
            snapshot: o
                .and_then(|o| o.snapshot.clone())
                .unwrap_or_else(|| self.flush.snapshot.clone()),
        }
    }
}
