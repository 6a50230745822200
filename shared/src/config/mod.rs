//! Configuration of both binaries. Layers, lowest first: defaults in code → TOML file
//! (`--config`) → environment (`ZOMBI_EDGE__…` / `ZOMBI_NODE__…`, nested keys split on
//! `__`) → command-line flags. Unknown keys are errors, and `validate()` runs before
//! anything binds.

pub mod columns;
mod edge;
mod node;

use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use edge::{EdgeAuth, EdgeConfig, EdgeLimits, ForwardConfig};
pub use node::{
    CombinerConfig, Durability, Evolve, FlushConfig, IcebergConfig, LogConfig, MaintenanceConfig,
    MaintenanceOverrides, NodeAuth, NodeConfig, NodeLimits, OnError, S3Config, SnapshotMode,
    SnapshotPolicy, TableFlushSettings, TableMode, TableOverrides, UnknownFields,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration: `{key}` {message}")]
    Invalid { key: &'static str, message: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: &'static str, message: impl Into<String>) -> Self {
        ConfigError::Invalid { key, message: message.into() }
    }
}

/// Loads a config: `defaults` → optional TOML file → environment with `env_prefix` →
/// `overrides` (flags; only the keys that were given), then validates it.
pub fn load<C>(
    defaults: C,
    file: Option<&Path>,
    env_prefix: &str,
    overrides: impl Serialize,
) -> Result<C, ConfigError>
where
    C: Serialize + DeserializeOwned + Validate,
{
    let mut figment = Figment::from(Serialized::defaults(defaults));
    if let Some(file) = file {
        if !file.is_file() {
            return Err(ConfigError::invalid(
                "--config",
                format!("{} is not a file", file.display()),
            ));
        }
        figment = figment.merge(Toml::file_exact(file));
    }
    let config: C = figment
        .merge(Env::prefixed(env_prefix).split("__"))
        .merge(Serialized::defaults(overrides))
        .extract()
        .map_err(Box::new)?;
    config.validate()?;
    Ok(config)
}

/// Cross-field checks run after loading and before anything binds.
pub trait Validate {
    fn validate(&self) -> Result<(), ConfigError>;
}

pub(crate) fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

pub(crate) fn check_range(
    key: &'static str,
    value: u64,
    min: u64,
    max: u64,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::invalid(key, format!("is {value}; it must be in {min}..={max}")));
    }
    Ok(())
}

/// `limits.max_event_age_secs` and `limits.max_future_skew_secs`: 0 (off) up to a century.
pub(crate) fn check_event_time_bounds(age_secs: u64, skew_secs: u64) -> Result<(), ConfigError> {
    const CENTURY: u64 = 100 * 366 * 24 * 3600;
    check_range("limits.max_event_age_secs", age_secs, 0, CENTURY)?;
    check_range("limits.max_future_skew_secs", skew_secs, 0, CENTURY)
}

pub(crate) fn check_tokens(key: &'static str, tokens: &[String]) -> Result<(), ConfigError> {
    for token in tokens {
        check_token(key, token)?;
    }
    Ok(())
}

pub(crate) fn check_token(key: &'static str, token: &str) -> Result<(), ConfigError> {
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::invalid(
            key,
            "holds a token that is shorter than 16 characters or not printable ASCII",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error.
mod tests {
    use super::*;
    use figment::Jail;

    /// The node config from the file `path` (inside a `Jail`), over the defaults.
    fn load_node(path: &str) -> Result<NodeConfig, ConfigError> {
        load(NodeConfig::default(), Some(Path::new(path)), "ZOMBI_NODE__", NoFlags {})
    }

    #[derive(Serialize)]
    struct NoFlags {}

    #[test]
    fn layers_apply_in_order() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "node.toml",
                r#"
                listen = "127.0.0.1:9000"
                data_dir = "/tmp/from-file"
                [combiner]
                shards = 3
                "#,
            )?;
            jail.set_env("ZOMBI_NODE__DATA_DIR", "/tmp/from-env");
            jail.set_env("ZOMBI_NODE__COMBINER__BATCH_MAX_EVENTS", "77");
            #[derive(Serialize)]
            struct Flags {
                listen: &'static str,
            }
            let cfg: NodeConfig = load(
                NodeConfig::default(),
                Some(Path::new("node.toml")),
                "ZOMBI_NODE__",
                Flags { listen: "127.0.0.1:0" },
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(cfg.listen.to_string(), "127.0.0.1:0");
            assert_eq!(cfg.data_dir, Path::new("/tmp/from-env"));
            assert_eq!(cfg.combiner.shards, 3);
            assert_eq!(cfg.combiner.batch_max_events, 77);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_errors() {
        Jail::expect_with(|jail| {
            jail.create_file("edge.toml", "listen = \"127.0.0.1:1\"\nnode_ulr = \"x\"\n")?;
            let err = load(
                EdgeConfig::default(),
                Some(Path::new("edge.toml")),
                "ZOMBI_EDGE__",
                NoFlags {},
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("node_ulr"), "{err}");
            jail.create_file("ok.toml", "")?;
            jail.set_env("ZOMBI_EDGE__LIMITS__MAX_EVENT_BYTEZ", "1");
            let err =
                load(EdgeConfig::default(), Some(Path::new("ok.toml")), "ZOMBI_EDGE__", NoFlags {})
                    .unwrap_err()
                    .to_string();
            assert!(err.contains("max_event_bytez"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn validate_names_the_key() {
        let mut cfg = NodeConfig::default();
        cfg.combiner.shards = 0;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("combiner.shards"), "{err}");

        let mut cfg = EdgeConfig::default();
        cfg.limits.max_event_bytes = cfg.limits.max_request_bytes + 1;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("limits.max_event_bytes"), "{err}");

        let cfg = EdgeConfig { node_url: "ftp://x".into(), ..Default::default() };
        assert!(cfg.validate().unwrap_err().to_string().contains("node_url"));

        let mut cfg = NodeConfig::default();
        cfg.auth.admin_token = Some("short".into());
        assert!(cfg.validate().unwrap_err().to_string().contains("auth.admin_token"));
    }

    #[test]
    fn typed_tables_are_declared_in_the_config() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "node.toml",
                r#"
                [tables.orders]
                mode = "typed"
                columns = "order_id long not null, amount decimal(12, 2), tags list<string>"
                on_error = "dead_letter"
                evolve = "additive"
                "#,
            )?;
            let cfg: NodeConfig = load_node("node.toml").map_err(|e| e.to_string())?;
            let orders = &cfg.tables["orders"];
            assert_eq!(orders.mode, TableMode::Typed);
            let props = orders.typed_properties();
            assert_eq!(props["zombi.on-error"], "dead_letter");
            assert_eq!(props["zombi.evolve"], "additive");
            for (toml, want) in [
                ("[tables.t]\nmode = \"typed\"\n", "tables.<name>.columns` is required"),
                ("[tables.t]\nmode = \"typed\"\ncolumns = \"a integr\"\n", "unknown type"),
                ("[tables.t]\ncolumns = \"a int\"\n", "tables.<name>.mode` must be \"typed\""),
                (
                    "[tables.t]\nmode = \"typed\"\ncolumns = \"a int\"\non_error = \"retry\"\n",
                    "retry",
                ),
            ] {
                jail.create_file("bad.toml", toml)?;
                let err = load_node("bad.toml").unwrap_err().to_string();
                assert!(err.contains(want), "{toml}: {err}");
            }
            Ok(())
        });
    }

    #[test]
    fn table_maintenance_overrides_apply_key_by_key() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "node.toml",
                r#"
                [maintenance]
                interval_secs = 30
                max_snapshots = 50
                [tables.clicks.maintenance]
                max_snapshots = 500
                [tables.quiet.maintenance]
                enabled = false
                "#,
            )?;
            let cfg: NodeConfig = load_node("node.toml").map_err(|e| e.to_string())?;
            let clicks = cfg.table_maintenance("clicks");
            assert_eq!((clicks.interval_secs, clicks.max_snapshots), (30, 500));
            assert!(clicks.enabled);
            assert!(!cfg.table_maintenance("quiet").enabled);
            let other = cfg.table_maintenance("other");
            assert_eq!((other.interval_secs, other.max_snapshots), (30, 50));
            assert_eq!(other.file_grace_secs, MaintenanceConfig::default().file_grace_secs);

            jail.create_file(
                "bad.toml",
                "[tables.clicks.maintenance]
max_manifests = 1
",
            )?;
            let err = load_node("bad.toml").unwrap_err().to_string();
            assert!(err.contains("tables.<name>.maintenance.max_manifests"), "{err}");
            jail.create_file(
                "typo.toml",
                "[maintenance]
max_snapshot = 3
",
            )?;
            let err = load_node("typo.toml").unwrap_err().to_string();
            assert!(err.contains("max_snapshot"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn defaults_are_valid() {
        NodeConfig::default().validate().unwrap();
        EdgeConfig::default().validate().unwrap();
    }
}
