//! `[maintenance]` and `[tables.<name>.maintenance]`: compaction, manifest merging,
//! snapshot expiry and file cleanup.

use serde::{Deserialize, Serialize};

use super::MIB;
use crate::config::{ConfigError, check_range};

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
    /// How long tables keep their events, by event time (`90d`, `12h`, …, or `off`): older
    /// rows are deleted by maintenance runs. A table's `zombi.retention` property wins.
    pub retention: String,
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
    pub retention: Option<String>,
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
            retention: o.retention.clone().unwrap_or_else(|| self.retention.clone()),
        }
    }

    /// `table`: these are a table's settings (error keys name `tables.<name>.maintenance`).
    pub(super) fn validate(&self, table: bool) -> Result<(), ConfigError> {
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
        check_range(key!("cleanup_interval_secs"), self.cleanup_interval_secs, 0, 7 * 24 * 3600)?;
        crate::properties::parse_retention(&self.retention).map(|_| ()).map_err(|reason| {
            ConfigError::invalid(key!("retention"), format!("is not valid: {reason}"))
        })
    }

    /// The retention in seconds, `None` when off (a valid configuration parses).
    pub fn retention_secs(&self) -> Option<u64> {
        crate::properties::parse_retention(&self.retention).ok().flatten()
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
            retention: "off".into(),
        }
    }
}
