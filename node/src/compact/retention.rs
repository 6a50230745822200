//! Retention: the rows of a table whose event time is older than its retention are removed
//! by each maintenance run (`remove.rs`). Files wholly older than the cutoff (with the
//! hourly partitions, every hour before the cutoff's) are removed unread in a `delete`
//! snapshot; only the files that straddle the cutoff are rewritten (`overwrite`).
//!
//! A table's `zombi.retention` property (set with the table, or later through the catalog)
//! wins over `maintenance.retention` of the node's configuration (`[tables.<name>.
//! maintenance]`, then `[maintenance]`); off unless one of them is set.

use std::collections::HashMap;

use arrow_array::{Array, BooleanArray, RecordBatch, TimestampMicrosecondArray};
use iceberg::spec::{DataFile, Datum, PrimitiveLiteral};
use zombi_shared::config::MaintenanceConfig;

use super::remove::{FileMatch, RowMatch};
use crate::schema::{self, properties};

/// The retention of a table with `properties` and maintenance `settings`, in seconds.
pub fn retention_secs(
    properties: &HashMap<String, String>,
    settings: &MaintenanceConfig,
) -> Result<Option<u64>, String> {
    match properties.get(properties::RETENTION) {
        Some(value) => properties::parse_retention(value),
        None => Ok(settings.retention_secs()),
    }
}

/// The cutoff of a retention of `secs` at `now_ms`: *now − retention*, rounded down to a
/// 24th of the retention, between a second and an hour. Each run then rewrites the files
/// that straddle the cutoff at most once per step (with hourly partitions and a retention of
/// a day or more, the cutoff falls on an hour's start and no file straddles it), and a row
/// is kept at most one step longer than the retention.
///
/// `grain_ms`: how finely the table's spec cuts event time (a day for `day(event_time)`,
/// see [`schema::partitioning::event_time_grain_ms`]). When it is at most an eighth of the
/// retention the cutoff falls on its boundaries instead, so that whole partitions leave
/// unread and none is rewritten (a row stays at most one grain longer).
pub fn cutoff_ms(now_ms: i64, secs: u64, grain_ms: Option<i64>) -> i64 {
    let retention_ms = (secs as i64).saturating_mul(1000);
    let mut step = (retention_ms / 24).clamp(1000, 3_600_000);
    if let Some(grain) = grain_ms.filter(|g| *g > step && *g <= retention_ms / 8) {
        step = grain;
    }
    now_ms.saturating_sub(retention_ms).div_euclid(step) * step
}

/// Rows whose event time is before `cutoff_us` (µs since the epoch).
pub struct OlderThan {
    pub cutoff_us: i64,
}

/// The value of a `timestamptz` bound.
fn micros(bound: Option<&Datum>) -> Option<i64> {
    match bound?.literal() {
        PrimitiveLiteral::Long(v) => Some(*v),
        _ => None,
    }
}

/// The lowest event time `file` may hold, from its metrics (µs).
pub fn oldest_event_us(file: &DataFile) -> Option<i64> {
    micros(file.lower_bounds().get(&schema::FIELD_EVENT_TIME))
}

impl RowMatch for OlderThan {
    fn file(&self, file: &DataFile) -> FileMatch {
        let upper = micros(file.upper_bounds().get(&schema::FIELD_EVENT_TIME));
        match (oldest_event_us(file), upper) {
            (Some(lower), _) if lower >= self.cutoff_us => FileMatch::None,
            (_, Some(upper)) if upper < self.cutoff_us => FileMatch::All,
            _ => FileMatch::Some,
        }
    }

    fn rows(&self, batch: &RecordBatch) -> Result<BooleanArray, String> {
        let times = batch
            .column_by_name("event_time")
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            .ok_or("the rows have no event_time column of microseconds")?;
        Ok(times.iter().map(|t| Some(t.is_some_and(|t| t < self.cutoff_us))).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    use super::*;

    #[test]
    fn a_table_property_wins_over_the_configuration() {
        let mut settings = MaintenanceConfig::default();
        let none = HashMap::new();
        assert_eq!(retention_secs(&none, &settings), Ok(None));
        settings.retention = "7d".into();
        assert_eq!(retention_secs(&none, &settings), Ok(Some(7 * 86_400)));
        let set = HashMap::from([(properties::RETENTION.to_owned(), "12h".to_owned())]);
        assert_eq!(retention_secs(&set, &settings), Ok(Some(12 * 3600)));
        let off = HashMap::from([(properties::RETENTION.to_owned(), "off".to_owned())]);
        assert_eq!(retention_secs(&off, &settings), Ok(None));
        let bad = HashMap::from([(properties::RETENTION.to_owned(), "soon".to_owned())]);
        assert!(retention_secs(&bad, &settings).is_err());
    }

    #[test]
    fn the_cutoff_moves_in_steps_of_a_24th_of_the_retention_within_a_second_and_an_hour() {
        const H: i64 = 3_600_000;
        let now = 1_767_304_800_000 + 17 * 60_000 + 4_321; // 22:17:04.321
        // 90 days: whole hours.
        assert_eq!(cutoff_ms(now, 90 * 86_400, None), 1_767_304_800_000 - 90 * 24 * H);
        // With daily partitions: whole days (2026-01-01T00:00Z minus 90 days).
        let day = Some(24 * H);
        assert_eq!(cutoff_ms(now, 90 * 86_400, day), 1_767_225_600_000 - 90 * 24 * H);
        // ... unless a day is more than an eighth of the retention.
        assert_eq!(cutoff_ms(now, 7 * 86_400, day), cutoff_ms(now, 7 * 86_400, None));
        // 2 hours: five minutes.
        assert_eq!(cutoff_ms(now, 7200, None), 1_767_304_800_000 - 2 * H + 15 * 60_000);
        // 10 seconds: whole seconds.
        assert_eq!(cutoff_ms(now, 10, None), now - 10_000 - 321);
        for secs in [1, 60, 3600, 86_400, 400 * 86_400] {
            let c = cutoff_ms(now, secs, None);
            let exact = now - secs as i64 * 1000;
            assert!(c <= exact && exact - c < ((secs as i64 * 1000) / 24).clamp(1000, H), "{secs}");
        }
    }

    #[test]
    fn rows_before_the_cutoff_match_and_at_it_do_not() {
        let m = OlderThan { cutoff_us: 100 };
        let field = Field::new(
            "event_time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            true,
        );
        let times = TimestampMicrosecondArray::from(vec![Some(99), Some(100), None, Some(5)])
            .with_timezone("+00:00");
        let batch = RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![Arc::new(times)])
            .unwrap();
        let hit = m.rows(&batch).unwrap();
        assert_eq!(
            hit.iter().collect::<Vec<_>>(),
            [Some(true), Some(false), Some(false), Some(true)]
        );
    }
}
