//! The one definition of every `zombi.*` key Zombi writes into Iceberg metadata: the table
//! properties that say how a table takes events, and the snapshot summary properties that
//! carry the hot/cold watermark contract. The node, its configuration and the docs all
//! name these constants; the Spark and Python plugins read the summary keys by the same
//! strings.

/// Table property naming the table's mode: `typed` or `dead_letter`; absent for raw tables.
pub const TABLE_MODE: &str = "zombi.table-mode";
/// Table property with the version of Zombi's layout the table was created with.
pub const LAYOUT_VERSION: &str = "zombi.layout-version";
/// Table property naming the table a dead-letter table belongs to.
pub const SOURCE_TABLE: &str = "zombi.source-table";

/// `none` | `additive`: whether a new top-level payload field becomes a new column.
pub const EVOLVE: &str = "zombi.evolve";
/// `reject` | `dead_letter`: what happens to an event that does not fit the schema.
pub const ON_ERROR: &str = "zombi.on-error";
/// `keep` | `drop`: whether fields no column holds go to `payload` as JSON.
pub const UNKNOWN_FIELDS: &str = "zombi.unknown-fields";
/// `false` | `true`: whether numbers sent as strings convert into numeric columns.
pub const NUMBERS_IN_STRINGS: &str = "zombi.numbers-in-strings";

/// Every `zombi.*` table property a user may set, with the values it takes (first: default).
pub const USER_PROPERTIES: &[(&str, &[&str])] = &[
    (EVOLVE, &["none", "additive"]),
    (ON_ERROR, &["reject", "dead_letter"]),
    (UNKNOWN_FIELDS, &["keep", "drop"]),
    (NUMBERS_IN_STRINGS, &["false", "true"]),
];

/// The `zombi.*` table properties only Zombi sets.
pub const ZOMBI_PROPERTIES: &[&str] = &[TABLE_MODE, LAYOUT_VERSION, SOURCE_TABLE];

/// Snapshot summary key prefix of the watermark map: `zombi.watermark.<partition>` = the
/// next sequence of that partition not in the snapshot.
pub const WATERMARK_PREFIX: &str = "zombi.watermark.";
/// Snapshot summary key of the unique id of the flush that made the snapshot.
pub const COMMIT_ID: &str = "zombi.commit-id";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_a_zombi_key_and_defined_once() {
        let mut keys: Vec<&str> = USER_PROPERTIES.iter().map(|(k, _)| *k).collect();
        keys.extend(ZOMBI_PROPERTIES);
        keys.extend([WATERMARK_PREFIX, COMMIT_ID]);
        assert!(keys.iter().all(|k| k.starts_with("zombi.")), "{keys:?}");
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "{keys:?}");
    }
}
