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

/// How long a table keeps its events, by event time (`90d`, `12h`, `off`); see
/// [`parse_retention`]. Takes a duration rather than one of a list of values.
pub const RETENTION: &str = "zombi.retention";

/// Every `zombi.*` table property a user may set, with the values it takes (first: default).
/// [`RETENTION`] is settable too, and takes a duration.
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

/// Parses a retention: a whole number and a unit, `s`, `m`, `h`, `d` or `w` (`90d`), into
/// seconds, or `off` (keep everything) into `None`.
pub fn parse_retention(value: &str) -> Result<Option<u64>, String> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let bad = || {
        format!(
            "retention {} is not a duration such as 90d, 12h, 30m, 2w or off",
            crate::quote::quoted(value)
        )
    };
    let split = v.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = v.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    // At most a thousand years: beyond it, `off` says it better.
    match n.checked_mul(unit_secs) {
        Some(0) => Err(format!(
            "retention {} keeps nothing; use at least 1s, or off",
            crate::quote::quoted(value)
        )),
        Some(secs) if secs <= 1000 * 365 * 86_400 => Ok(Some(secs)),
        _ => Err(format!(
            "retention {} is longer than a thousand years; use off to keep everything",
            crate::quote::quoted(value)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_parses_whole_units_and_off() {
        assert_eq!(parse_retention("90d"), Ok(Some(90 * 86_400)));
        assert_eq!(parse_retention("12h"), Ok(Some(12 * 3600)));
        assert_eq!(parse_retention("30m"), Ok(Some(1800)));
        assert_eq!(parse_retention("2w"), Ok(Some(14 * 86_400)));
        assert_eq!(parse_retention("45s"), Ok(Some(45)));
        assert_eq!(parse_retention("off"), Ok(None));
        for bad in ["", "d", "90", "1.5d", "-1d", "90 days", "0d", "99999999999999999999d"] {
            let e = parse_retention(bad).unwrap_err();
            assert!(e.contains("retention"), "{bad}: {e}");
        }
        assert!(parse_retention("1001y").is_err());
        assert!(parse_retention("400000d").unwrap_err().contains("thousand years"));
    }

    #[test]
    fn every_key_is_a_zombi_key_and_defined_once() {
        let mut keys: Vec<&str> = USER_PROPERTIES.iter().map(|(k, _)| *k).collect();
        keys.extend(ZOMBI_PROPERTIES);
        keys.push(RETENTION);
        keys.extend([WATERMARK_PREFIX, COMMIT_ID]);
        assert!(keys.iter().all(|k| k.starts_with("zombi.")), "{keys:?}");
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "{keys:?}");
    }
}
