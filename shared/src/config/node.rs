use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{
    ConfigError, Validate, check_event_time_bounds, check_range, check_token, check_tokens,
    is_loopback,
};

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
    pub flush: FlushConfig,
    /// Table maintenance: compaction, manifest merging, snapshot expiry, file cleanup.
    pub maintenance: MaintenanceConfig,
    /// Per-table overrides of the flush and maintenance settings, keyed by table name.
    pub tables: BTreeMap<String, TableOverrides>,
}

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlushConfig {
    /// How often each table's hot events are written to Iceberg, in ms.
    pub interval_ms: u64,
    /// Most events one flush reads; a larger backlog is flushed in several rounds.
    pub max_rows_per_flush: u64,
    /// About how many payload bytes one flush reads (bounds the flusher's memory).
    pub max_bytes_per_flush: u64,
    /// Most event-time hours one flush writes (each hour is at least one data file); events
    /// of further hours wait for the next flush, so no table holds a flush slot for long.
    pub max_hours_per_flush: u64,
    /// Flushed events stay in the hot store this long (for hot readers), then are deleted.
    pub retention_secs: u64,
    /// A hot-segment listing (`GET /tables/{t}/hot/segments`) keeps the events above the
    /// watermarks it was asked for this long, retention notwithstanding, so a query's
    /// segments stay readable while it runs, in seconds.
    pub hot_lease_secs: u64,
    pub snapshot: SnapshotPolicy,
    /// Tables flushed at the same time.
    pub max_concurrent: u64,
    /// First retry delay after a failed flush; doubles per failure up to `backoff_max_ms`.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
}

/// When written data files become an Iceberg snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotPolicy {
    /// `every_flush` (default): every flush commits. `thresholds`: data files accumulate
    /// until one of the thresholds below is reached.
    pub mode: SnapshotMode,
    pub max_files: u64,
    pub max_bytes: u64,
    pub max_age_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    #[default]
    EveryFlush,
    Thresholds,
}

/// Settings one table may override (`[tables.<name>]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TableOverrides {
    /// `typed`: a typed table declared here, created at start-up if the catalog has no
    /// table of this name (docs/typed-tables.md). Default: a raw table, created on the
    /// first write.
    pub mode: TableMode,
    /// A typed table's columns, as in SQL: `"order_id long not null, amount decimal(12, 2)"`
    /// (see [`super::columns`]).
    pub columns: Option<String>,
    /// A typed table's `zombi.evolve`, `zombi.on-error`, `zombi.unknown-fields` and
    /// `zombi.numbers-in-strings` table properties at creation.
    pub evolve: Option<Evolve>,
    pub on_error: Option<OnError>,
    pub unknown_fields: Option<UnknownFields>,
    pub numbers_in_strings: Option<bool>,
    pub flush_interval_ms: Option<u64>,
    pub retention_secs: Option<u64>,
    pub snapshot: Option<SnapshotPolicy>,
    /// Field by field over `[maintenance]`: a key left out keeps the node-wide value.
    pub maintenance: MaintenanceOverrides,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableMode {
    #[default]
    Raw,
    Typed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evolve {
    None,
    Additive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    Reject,
    DeadLetter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownFields {
    Keep,
    Drop,
}

impl TableOverrides {
    /// A typed table's `zombi.*` table properties, as this declaration sets them.
    pub fn typed_properties(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(e) = self.evolve {
            let v = if e == Evolve::Additive { "additive" } else { "none" };
            out.insert("zombi.evolve".to_owned(), v.to_owned());
        }
        if let Some(o) = self.on_error {
            let v = if o == OnError::DeadLetter { "dead_letter" } else { "reject" };
            out.insert("zombi.on-error".to_owned(), v.to_owned());
        }
        if let Some(u) = self.unknown_fields {
            let v = if u == UnknownFields::Drop { "drop" } else { "keep" };
            out.insert("zombi.unknown-fields".to_owned(), v.to_owned());
        }
        if let Some(n) = self.numbers_in_strings {
            out.insert("zombi.numbers-in-strings".to_owned(), n.to_string());
        }
        out
    }
}

/// Table maintenance (SPEC §6). Defaults keep a table that commits every second healthy
/// forever: bounded files per hour, manifests, snapshots and metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceConfig {
    /// Run maintenance in the background. `POST /tables/{t}/compact` works either way.
    pub enabled: bool,
    /// How often each table is maintained, in seconds.
    pub interval_secs: u64,
    /// An hour still receiving files compacts a size tier once it holds this many files.
    pub min_input_files: u64,
    /// An hour that got no new file for this long is compacted into files near
    /// `iceberg.target_file_size_bytes`.
    pub quiet_secs: u64,
    /// Most input bytes one maintenance run rewrites; the rest waits for the next run.
    pub max_rewrite_bytes_per_run: u64,
    /// Manifests the current snapshot may list before small ones are merged.
    pub max_manifests: u64,
    /// Snapshots kept at most (the current one included); older ones expire.
    pub max_snapshots: u64,
    /// Snapshots older than this expire (the current one never does), in seconds.
    pub max_snapshot_age_secs: u64,
    /// A file no retained snapshot references is deleted once it has been unreferenced
    /// this long, so engines reading an older snapshot can finish.
    pub file_grace_secs: u64,
    /// How often the warehouse is listed to delete unreferenced files, in seconds.
    pub cleanup_interval_secs: u64,
}

/// `[tables.<name>.maintenance]`: any subset of [`MaintenanceConfig`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceOverrides {
    pub enabled: Option<bool>,
    pub interval_secs: Option<u64>,
    pub min_input_files: Option<u64>,
    pub quiet_secs: Option<u64>,
    pub max_rewrite_bytes_per_run: Option<u64>,
    pub max_manifests: Option<u64>,
    pub max_snapshots: Option<u64>,
    pub max_snapshot_age_secs: Option<u64>,
    pub file_grace_secs: Option<u64>,
    pub cleanup_interval_secs: Option<u64>,
}

impl MaintenanceConfig {
    /// These settings with `o`'s keys over them.
    pub fn with(&self, o: &MaintenanceOverrides) -> MaintenanceConfig {
        MaintenanceConfig {
            enabled: o.enabled.unwrap_or(self.enabled),
            interval_secs: o.interval_secs.unwrap_or(self.interval_secs),
            min_input_files: o.min_input_files.unwrap_or(self.min_input_files),
            quiet_secs: o.quiet_secs.unwrap_or(self.quiet_secs),
            max_rewrite_bytes_per_run: o
                .max_rewrite_bytes_per_run
                .unwrap_or(self.max_rewrite_bytes_per_run),
            max_manifests: o.max_manifests.unwrap_or(self.max_manifests),
            max_snapshots: o.max_snapshots.unwrap_or(self.max_snapshots),
            max_snapshot_age_secs: o.max_snapshot_age_secs.unwrap_or(self.max_snapshot_age_secs),
            file_grace_secs: o.file_grace_secs.unwrap_or(self.file_grace_secs),
            cleanup_interval_secs: o.cleanup_interval_secs.unwrap_or(self.cleanup_interval_secs),
        }
    }

    /// `table`: these are a table's settings (error keys name `tables.<name>.maintenance`).
    fn validate(&self, table: bool) -> Result<(), ConfigError> {
        macro_rules! key {
            ($f:literal) => {
                if table {
                    concat!("tables.<name>.maintenance.", $f)
                } else {
                    concat!("maintenance.", $f)
                }
            };
        }
        check_range(key!("interval_secs"), self.interval_secs, 1, 24 * 3600)?;
        check_range(key!("min_input_files"), self.min_input_files, 2, 1000)?;
        check_range(key!("quiet_secs"), self.quiet_secs, 0, 7 * 24 * 3600)?;
        check_range(
            key!("max_rewrite_bytes_per_run"),
            self.max_rewrite_bytes_per_run,
            MIB,
            1024 * 1024 * MIB,
        )?;
        check_range(key!("max_manifests"), self.max_manifests, 2, 100_000)?;
        check_range(key!("max_snapshots"), self.max_snapshots, 1, 100_000)?;
        check_range(key!("max_snapshot_age_secs"), self.max_snapshot_age_secs, 0, 365 * 24 * 3600)?;
        check_range(key!("file_grace_secs"), self.file_grace_secs, 0, 30 * 24 * 3600)?;
        check_range(key!("cleanup_interval_secs"), self.cleanup_interval_secs, 0, 7 * 24 * 3600)
    }
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            enabled: true,
            interval_secs: 60,
            min_input_files: 8,
            quiet_secs: 600,
            max_rewrite_bytes_per_run: 2048 * MIB,
            max_manifests: 64,
            max_snapshots: 100,
            max_snapshot_age_secs: 24 * 3600,
            file_grace_secs: 600,
            cleanup_interval_secs: 300,
        }
    }
}

/// The flush settings in force for one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableFlushSettings {
    pub interval_ms: u64,
    pub retention_secs: u64,
    pub snapshot: SnapshotPolicy,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CombinerConfig {
    /// Writer threads; each table is owned by one.
    pub shards: u64,
    /// How long a micro-batch waits for more work once it has some, in µs. 0 (the
    /// default): it takes what is queued and writes at once; work that arrives during a
    /// write forms the next micro-batch (and shares its fsync).
    pub batch_window_us: u64,
    /// Events after which a micro-batch is written without waiting.
    pub batch_max_events: u64,
    /// Queued groups per shard; beyond it ingest answers "overloaded".
    pub queue_depth: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeLimits {
    /// Largest payload of one event.
    pub max_event_bytes: u64,
    /// Highest partition an event may name. Every snapshot summary carries one watermark
    /// per partition, so partitions are meant to be few.
    pub max_partition: u32,
    /// Largest internal batch body.
    pub max_batch_bytes: u64,
    /// Payload bytes accepted but not yet durable; beyond it ingest answers 429.
    pub max_inflight_bytes: u64,
    /// Events older than this many seconds are refused (0: any age). Checked on the node
    /// too, since the node never trusts an edge's configuration.
    pub max_event_age_secs: u64,
    /// Events this many seconds or more ahead of the node's clock are refused (0: no bound).
    pub max_future_skew_secs: u64,
    /// Most tables the node holds; a write that would create one more is refused.
    pub max_tables: u64,
    /// A request's line and headers must arrive within this many ms; otherwise the
    /// connection is closed. Also how long an idle keep-alive connection stays open.
    pub header_read_timeout_ms: u64,
    /// Hot reads (`GET /tables/{t}/hot`) running at once; more get 429. Each holds up to
    /// 64 MiB of events while it is answered.
    pub max_concurrent_hot_reads: u64,
    /// How long a write to a table waits for the table to be ready (its Iceberg table
    /// loaded and its sequences reconciled with the snapshot) before it gets 503, in ms.
    pub table_ready_timeout_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeAuth {
    /// Tokens edges must present on `/internal/…`. Empty: no internal auth.
    pub internal_tokens: Vec<String>,
    /// Token for admin endpoints (`/tables/{t}/flush`, `/stats`, …). None: no admin auth.
    pub admin_token: Option<String>,
    /// Token engines present to the Iceberg REST catalog and read APIs. None: no auth.
    pub catalog_token: Option<String>,
    /// Token the real-time readers present for hot segments only (listing and reads), so
    /// the token shipped to query executors opens nothing else. The catalog token is
    /// accepted there too. None: only the catalog token.
    pub hot_token: Option<String>,
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
            flush: FlushConfig::default(),
            maintenance: MaintenanceConfig::default(),
            tables: BTreeMap::new(),
        }
    }
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

impl Default for FlushConfig {
    fn default() -> Self {
        FlushConfig {
            interval_ms: 1_000,
            max_rows_per_flush: 100_000,
            max_bytes_per_flush: 32 * MIB,
            max_hours_per_flush: 256,
            retention_secs: 60,
            hot_lease_secs: 300,
            snapshot: SnapshotPolicy::default(),
            max_concurrent: 2,
            backoff_initial_ms: 200,
            backoff_max_ms: 30_000,
        }
    }
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy {
            mode: SnapshotMode::EveryFlush,
            max_files: 10,
            max_bytes: 256 * MIB,
            max_age_ms: 60_000,
        }
    }
}

impl Default for CombinerConfig {
    fn default() -> Self {
        CombinerConfig { shards: 2, batch_window_us: 0, batch_max_events: 4096, queue_depth: 1024 }
    }
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_event_bytes: MIB,
            max_partition: 1023,
            max_batch_bytes: 64 * MIB,
            max_inflight_bytes: 256 * MIB,
            max_event_age_secs: 0,
            max_future_skew_secs: 24 * 3600,
            max_tables: 1000,
            max_concurrent_hot_reads: 4,
            header_read_timeout_ms: 60_000,
            table_ready_timeout_ms: 5_000,
        }
    }
}

impl Validate for NodeConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("data_dir", "must not be empty"));
        }
        let c = &self.combiner;
        check_range("combiner.shards", c.shards, 1, 64)?;
        check_range("combiner.batch_window_us", c.batch_window_us, 0, 1_000_000)?;
        check_range("combiner.batch_max_events", c.batch_max_events, 1, 1_000_000)?;
        check_range("combiner.queue_depth", c.queue_depth, 1, 1_000_000)?;
        let l = &self.limits;
        check_range("limits.max_batch_bytes", l.max_batch_bytes, 1024, 4096 * MIB)?;
        // Arrow string columns hold at most 2 GiB per batch; keep single events far below.
        check_range(
            "limits.max_event_bytes",
            l.max_event_bytes,
            1,
            l.max_batch_bytes.min(256 * MIB),
        )?;
        // A batch must fit the budget, or it could never be admitted.
        check_range(
            "limits.max_inflight_bytes",
            l.max_inflight_bytes,
            l.max_batch_bytes,
            u64::MAX >> 2,
        )?;
        check_event_time_bounds(l.max_event_age_secs, l.max_future_skew_secs)?;
        check_range("limits.max_tables", l.max_tables, 1, 1_000_000)?;
        check_range("limits.max_concurrent_hot_reads", l.max_concurrent_hot_reads, 1, 1024)?;
        check_range("limits.header_read_timeout_ms", l.header_read_timeout_ms, 10, 600_000)?;
        check_range("limits.table_ready_timeout_ms", l.table_ready_timeout_ms, 1, 600_000)?;
        check_range("idempotency_window_secs", self.idempotency_window_secs, 1, 30 * 24 * 3600)?;
        check_range("shutdown_timeout_ms", self.shutdown_timeout_ms, 0, 600_000)?;
        check_tokens("auth.internal_tokens", &self.auth.internal_tokens)?;
        if let Some(t) = &self.auth.admin_token {
            check_token("auth.admin_token", t)?;
        }
        if let Some(t) = &self.auth.catalog_token {
            check_token("auth.catalog_token", t)?;
        }
        if let Some(t) = &self.auth.hot_token {
            check_token("auth.hot_token", t)?;
        }
        let ns = &self.iceberg.namespace;
        if zombi_table_name_ok(ns).is_err() {
            return Err(ConfigError::invalid(
                "iceberg.namespace",
                "must match ^[a-zA-Z][a-zA-Z0-9_-]{0,127}$",
            ));
        }
        let w = &self.iceberg.warehouse;
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
            self.iceberg.target_file_size_bytes,
            MIB,
            4096 * MIB,
        )?;
        check_range("iceberg.io_timeout_ms", self.iceberg.io_timeout_ms, 100, 3_600_000)?;
        check_range("iceberg.io_retries", self.iceberg.io_retries as u64, 0, 20)?;
        let f = &self.flush;
        check_range("flush.interval_ms", f.interval_ms, 10, 3_600_000)?;
        check_range("flush.max_rows_per_flush", f.max_rows_per_flush, 1, 100_000_000)?;
        check_range("flush.max_bytes_per_flush", f.max_bytes_per_flush, MIB, 1024 * MIB)?;
        check_range("flush.max_hours_per_flush", f.max_hours_per_flush, 1, 100_000)?;
        check_range("flush.retention_secs", f.retention_secs, 0, 7 * 24 * 3600)?;
        check_range("flush.hot_lease_secs", f.hot_lease_secs, 0, 24 * 3600)?;
        check_range("flush.max_concurrent", f.max_concurrent, 1, 64)?;
        check_range("flush.backoff_initial_ms", f.backoff_initial_ms, 1, 600_000)?;
        check_range("flush.backoff_max_ms", f.backoff_max_ms, f.backoff_initial_ms, 3_600_000)?;
        check_snapshot("flush.snapshot", &f.snapshot)?;
        self.maintenance.validate(false)?;
        for (name, t) in &self.tables {
            if zombi_table_name_ok(name).is_err() {
                return Err(ConfigError::invalid(
                    "tables",
                    format!("{name:?} is not a valid table name"),
                ));
            }
            match (t.mode, &t.columns) {
                (TableMode::Typed, None) => {
                    return Err(ConfigError::invalid(
                        "tables.<name>.columns",
                        format!("is required for the typed table {name}"),
                    ));
                }
                (TableMode::Typed, Some(columns)) => {
                    super::columns::parse_columns(columns).map_err(|e| {
                        ConfigError::invalid("tables.<name>.columns", format!("of {name}: {e}"))
                    })?;
                }
                (TableMode::Raw, _) if t.columns.is_some() || !t.typed_properties().is_empty() => {
                    return Err(ConfigError::invalid(
                        "tables.<name>.mode",
                        format!(
                            "must be \"typed\" for {name}: columns, evolve, on_error, unknown_fields and numbers_in_strings belong to typed tables"
                        ),
                    ));
                }
                (TableMode::Raw, _) => {}
            }
            if let Some(ms) = t.flush_interval_ms {
                check_range("tables.<name>.flush_interval_ms", ms, 10, 3_600_000)?;
            }
            if let Some(s) = t.retention_secs {
                check_range("tables.<name>.retention_secs", s, 0, 7 * 24 * 3600)?;
            }
            if let Some(p) = &t.snapshot {
                check_snapshot("tables.<name>.snapshot", p)?;
            }
            self.maintenance.with(&t.maintenance).validate(true)?;
        }
        Ok(())
    }
}

fn zombi_table_name_ok(name: &str) -> Result<(), crate::TableNameError> {
    crate::validate_table_name(name)
}

fn check_snapshot(key: &'static str, p: &SnapshotPolicy) -> Result<(), ConfigError> {
    if p.mode == SnapshotMode::Thresholds && p.max_age_ms == 0 {
        // Without an age bound a quiet table would never become visible.
        return Err(ConfigError::invalid(key, "thresholds mode needs snapshot.max_age_ms > 0"));
    }
    check_range(key, p.max_age_ms, 0, 24 * 3_600_000)
}

impl NodeLimits {
    /// The per-event checks these limits ask for.
    pub fn event_limits(&self) -> crate::envelope::EventLimits {
        crate::envelope::EventLimits::from_config(
            self.max_event_bytes,
            self.max_partition,
            self.max_event_age_secs,
            self.max_future_skew_secs,
        )
    }
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
