//! `[tables.<name>]`: per-table overrides, and the typed tables the config declares.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::flush::check_snapshot;
use super::{MaintenanceConfig, MaintenanceOverrides, SnapshotPolicy, zombi_table_name_ok};
use crate::config::{ConfigError, check_range};
use crate::properties;

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
    /// The table's partition spec at creation, e.g. `["day(event_time)", "bucket(16,
    /// customer_id)"]` (docs/typed-tables.md#partition-specs); the node checks it against the
    /// table's columns. Left out: Zombi's `event_date`, `event_hour`. A raw table that sets
    /// it is created at start-up.
    pub partition_by: Option<Vec<String>>,
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
            out.insert(properties::EVOLVE.to_owned(), v.to_owned());
        }
        if let Some(o) = self.on_error {
            let v = if o == OnError::DeadLetter { "dead_letter" } else { "reject" };
            out.insert(properties::ON_ERROR.to_owned(), v.to_owned());
        }
        if let Some(u) = self.unknown_fields {
            let v = if u == UnknownFields::Drop { "drop" } else { "keep" };
            out.insert(properties::UNKNOWN_FIELDS.to_owned(), v.to_owned());
        }
        if let Some(n) = self.numbers_in_strings {
            out.insert(properties::NUMBERS_IN_STRINGS.to_owned(), n.to_string());
        }
        out
    }
}

/// Checks every `[tables.<name>]`, each with its maintenance over the node-wide one.
pub(super) fn validate_tables(
    tables: &BTreeMap<String, TableOverrides>,
    maintenance: &MaintenanceConfig,
) -> Result<(), ConfigError> {
    for (name, t) in tables {
        if zombi_table_name_ok(name).is_err() {
            return Err(ConfigError::invalid(
                "tables",
                format!("{} is not a valid table name", crate::quote::quoted(name)),
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
                crate::config::columns::parse_columns(columns).map_err(|e| {
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
        if t.partition_by.as_ref().is_some_and(|p| p.is_empty()) {
            return Err(ConfigError::invalid(
                "tables.<name>.partition_by",
                format!("of {name} is empty: leave it out for Zombi's event_date, event_hour"),
            ));
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
        maintenance.with(&t.maintenance).validate(true)?;
    }
    Ok(())
}
