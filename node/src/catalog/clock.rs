//! Commit timestamps that never go backwards.
//!
//! iceberg-rust stamps a new snapshot with the wall clock and refuses one more than a
//! minute older than the table's last update; Java readers refuse metadata whose
//! `last-updated-ms` lies more than a minute before its last snapshot-log entry. After the
//! wall clock steps back (NTP correction, VM restore, a node moved to another host), every
//! commit would fail until the clock caught up. Zombi owns its catalog, so it stamps such a
//! commit just after the table's last update instead, and says so in the log and in
//! `zombi_node_clock_behind_total`: the order of snapshots stays the order of commits.

use iceberg::spec::TableMetadata;
use iceberg::{Error, ErrorKind, Result};

/// The earliest timestamp a new commit of `metadata` may carry.
fn floor(metadata: &TableMetadata) -> i64 {
    let logged = metadata.history().last().map_or(i64::MIN, |l| l.timestamp_ms);
    metadata.last_updated_ms().max(logged).saturating_add(1)
}

/// `value` with the JSON field at `pointer` set to `timestamp_ms`, through its serde form
/// (the one the Iceberg spec defines), so every other field stays as it is.
fn restamp<T: serde::Serialize + serde::de::DeserializeOwned>(
    value: &T,
    pointer: &str,
    timestamp_ms: i64,
) -> Result<T> {
    let invalid = |what: String| {
        Error::new(ErrorKind::Unexpected, format!("cannot restamp {pointer}: {what}"))
    };
    let mut json = serde_json::to_value(value).map_err(|e| invalid(e.to_string()))?;
    let field = json.pointer_mut(pointer).ok_or_else(|| invalid("no such field".into()))?;
    *field = timestamp_ms.into();
    serde_json::from_value(json).map_err(|e| invalid(e.to_string()))
}

/// How far the wall clock is behind the earliest time a new commit of `metadata` may carry
/// (0 when it is not).
pub(crate) fn behind_ms(metadata: &TableMetadata) -> i64 {
    (floor(metadata) - crate::hot::now_ms()).max(0)
}

/// When a commit of `metadata` made now is stamped: now, or just after the table's last
/// update if the clock is behind it.
pub(crate) fn commit_time(table: &str, metadata: &TableMetadata) -> i64 {
    let (now, floor) = (crate::hot::now_ms(), floor(metadata));
    if now < floor {
        report(table, now, floor);
    }
    now.max(floor)
}

/// Logs and counts a clock found behind the table; a millisecond or two is only commits
/// following each other quickly.
fn report(table: &str, stamped: i64, floor: i64) {
    if floor - stamped <= 1_000 {
        return;
    }
    tracing::warn!(
        table,
        behind_ms = floor - stamped,
        "the wall clock is behind the table's last commit (was it stepped back?); stamping the commit just after it"
    );
    metrics::counter!(crate::metrics::CLOCK_BEHIND).increment(1);
}

/// `built` (the successor of `previous`) with a `last-updated-ms` no earlier than
/// `previous`'s.
pub(super) fn monotonic_metadata(
    table: &str,
    previous: &TableMetadata,
    built: TableMetadata,
) -> Result<TableMetadata> {
    let floor = floor(previous);
    if built.last_updated_ms() >= floor {
        return Ok(built);
    }
    report(table, built.last_updated_ms(), floor);
    restamp(&built, "/last-updated-ms", floor)
}

#[cfg(test)]
mod tests {
    use iceberg::TableCreation;
    use iceberg::spec::TableMetadataBuilder;

    use super::*;

    #[test]
    fn metadata_older_than_its_predecessor_is_stamped_after_it() {
        let creation = TableCreation::builder()
            .name("t".into())
            .location("file:///w/t".into())
            .schema(crate::schema::schema().as_ref().clone())
            .build();
        let previous =
            TableMetadataBuilder::from_table_creation(creation).unwrap().build().unwrap();
        let previous = previous.metadata;
        // A successor built by a clock that stands still is stamped 1 ms later.
        let moved = monotonic_metadata("t", &previous, previous.clone()).unwrap();
        assert_eq!(moved.last_updated_ms(), previous.last_updated_ms() + 1);
        assert_eq!(moved.location(), previous.location());
        assert_eq!(moved.current_schema(), previous.current_schema());
        // One stamped later is kept as it is.
        let later = monotonic_metadata("t", &previous, moved.clone()).unwrap();
        assert_eq!(later.last_updated_ms(), moved.last_updated_ms());
    }
}
