//! The partition specs a Zombi table may have: Zombi's default (`identity(event_date),
//! identity(event_hour)`), or one its owner chose (docs/typed-tables.md#partition-specs)
//! through the catalog (`PARTITIONED BY`, PyIceberg's `partition_spec`, `ADD PARTITION
//! FIELD`) or the config (`partition_by`). [`check_spec`] refuses what Zombi cannot keep
//! correct; [`parse_partition_by`] reads the config's form.

use iceberg::spec::{
    PartitionSpec, PrimitiveType, Schema, Transform, Type, UnboundPartitionField,
    UnboundPartitionSpec,
};

use zombi_shared::quote::quoted;

use super::columns::{
    FIELD_EVENT_DATE, FIELD_EVENT_HOUR, FIELD_EVENT_TIME, FIELD_PAYLOAD, FIELD_PAYLOAD_BYTES,
};

/// Checks that `spec` is one Zombi can write, list hot segments of, and keep correct.
pub fn check_spec(schema: &Schema, spec: &PartitionSpec) -> Result<(), String> {
    check_fields(schema, spec.fields().iter().map(|f| (&f.name, f.source_id, f.transform)))
}

fn check_fields<'a>(
    schema: &Schema,
    fields: impl Iterator<Item = (&'a String, i32, Transform)>,
) -> Result<(), String> {
    for (name, source_id, transform) in fields {
        let field = Field { name, source_id, transform };
        let Some(source) = schema.as_struct().field_by_id(field.source_id) else {
            let name = schema.name_by_field_id(field.source_id).unwrap_or("?");
            return Err(format!(
                "partition field {}: partition by a top-level column, not {name}",
                field.name
            ));
        };
        if field.source_id == FIELD_PAYLOAD || field.source_id == FIELD_PAYLOAD_BYTES {
            return Err(format!(
                "partition field {}: {} is the event's whole payload; partition by a column",
                field.name, source.name
            ));
        }
        let Type::Primitive(p) = source.field_type.as_ref() else {
            return Err(format!(
                "partition field {}: {} is a {}, partition by a column of a primitive type",
                field.name, source.name, source.field_type
            ));
        };
        let refuse = |why: &str| {
            Err(format!(
                "partition field {}: {} on {} ({p}) {why}",
                field.name, field.transform, source.name
            ))
        };
        match field.transform {
            Transform::Identity => match p {
                PrimitiveType::Float | PrimitiveType::Double => {
                    return refuse(
                        "is refused: floating-point values make one partition per value, and NaN has none engines agree on; use a decimal column or bucket it",
                    );
                }
                PrimitiveType::Binary | PrimitiveType::Fixed(_) | PrimitiveType::Uuid => {
                    return refuse("is refused: bucket it instead (bucket[N])");
                }
                _ => {}
            },
            Transform::Truncate(_) if matches!(p, PrimitiveType::Binary) => {
                return refuse("is refused: bucket it instead (bucket[N])");
            }
            Transform::Bucket(0) | Transform::Truncate(0) => {
                return refuse("is refused: the width must be at least 1");
            }
            Transform::Bucket(_)
            | Transform::Truncate(_)
            | Transform::Year
            | Transform::Month
            | Transform::Day
            | Transform::Hour
            | Transform::Void => {}
            Transform::Unknown => return refuse("is a transform Zombi does not know"),
        }
        if field.transform.result_type(&source.field_type).is_err() {
            return refuse("does not apply to this type");
        }
    }
    Ok(())
}

struct Field<'a> {
    name: &'a String,
    source_id: i32,
    transform: Transform,
}

/// How finely `spec` cuts event time, when it does: the finest of `hour`/`day` of
/// `event_time` (or `timestamp_ms`'s identity columns `event_hour`/`event_date`).
pub fn event_time_grain_ms(spec: &PartitionSpec) -> Option<i64> {
    const HOUR: i64 = 3_600_000;
    spec.fields()
        .iter()
        .filter_map(|f| match (f.source_id, f.transform) {
            (FIELD_EVENT_TIME, Transform::Hour) | (FIELD_EVENT_HOUR, Transform::Identity) => {
                Some(HOUR)
            }
            (FIELD_EVENT_TIME, Transform::Day) | (FIELD_EVENT_DATE, Transform::Identity) => {
                Some(24 * HOUR)
            }
            _ => None,
        })
        .min()
}

/// The spec of the config's `partition_by` (`["day(event_time)", "bucket(16, customer_id)"]`)
/// over `schema`: each item is a column name, or a transform of one: `identity(c)`,
/// `bucket(N, c)`, `truncate(W, c)`, `year(c)`, `month(c)`, `day(c)`, `hour(c)` (Spark's
/// `years`, `months`, `days`, `hours` too). Not checked: [`check_spec`] does that on the
/// table's final schema.
pub fn parse_partition_by(
    schema: &Schema,
    items: &[String],
) -> Result<UnboundPartitionSpec, String> {
    let mut fields = Vec::new();
    for item in items {
        let (transform, column) = parse_item(item)?;
        let source = schema.as_struct().field_by_name(column).ok_or_else(|| {
            format!("partition_by {}: the table has no column {}", quoted(item), quoted(column))
        })?;
        let suffix = match transform {
            Transform::Identity => String::new(),
            Transform::Bucket(_) => "_bucket".into(),
            Transform::Truncate(_) => "_trunc".into(),
            Transform::Year => "_year".into(),
            Transform::Month => "_month".into(),
            Transform::Day => "_day".into(),
            Transform::Hour => "_hour".into(),
            _ => unreachable!("parse_item returns these only"),
        };
        fields.push(UnboundPartitionField {
            source_id: source.id,
            field_id: None,
            name: format!("{}{suffix}", source.name),
            transform,
        });
    }
    Ok(UnboundPartitionSpec::builder()
        .with_spec_id(0)
        .add_partition_fields(fields)
        .map_err(|e| format!("partition_by: {}", e.message()))?
        .build())
}

/// The columns `partition_by` names.
pub fn partition_by_columns(items: &[String]) -> Result<Vec<&str>, String> {
    items.iter().map(|i| parse_item(i).map(|(_, c)| c)).collect()
}

/// `spec` bound to `schema` and checked: what a table may be created with.
pub fn bind_checked(
    schema: &Schema,
    spec: UnboundPartitionSpec,
) -> Result<UnboundPartitionSpec, String> {
    // Zombi's reasons first; Iceberg's check of the whole spec after.
    check_fields(schema, spec.fields().iter().map(|f| (&f.name, f.source_id, f.transform)))?;
    let bound = spec
        .clone()
        .bind(std::sync::Arc::new(schema.clone()))
        .map_err(|e| format!("invalid partition spec: {}", e.message()))?;
    check_spec(schema, &bound)?;
    Ok(spec)
}

fn parse_item(item: &str) -> Result<(Transform, &str), String> {
    let bad = || {
        format!(
            "partition_by {} is not a column or one of identity(c), bucket(N, c), truncate(W, c), year(c), month(c), day(c), hour(c)",
            quoted(item)
        )
    };
    let text = item.trim();
    let Some((name, rest)) = text.split_once('(') else {
        return if text.is_empty() || text.contains(|c: char| c.is_whitespace() || c == ')') {
            Err(bad())
        } else {
            Ok((Transform::Identity, text))
        };
    };
    let args: Vec<&str> =
        rest.strip_suffix(')').ok_or_else(bad)?.split(',').map(str::trim).collect();
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "identity" => (Transform::Identity, one(&args).ok_or_else(bad)?),
        "bucket" => {
            let (n, c) = width(&args).ok_or_else(bad)?;
            (Transform::Bucket(n), c)
        }
        "truncate" => {
            let (n, c) = width(&args).ok_or_else(bad)?;
            (Transform::Truncate(n), c)
        }
        "year" | "years" => (Transform::Year, one(&args).ok_or_else(bad)?),
        "month" | "months" => (Transform::Month, one(&args).ok_or_else(bad)?),
        "day" | "days" => (Transform::Day, one(&args).ok_or_else(bad)?),
        "hour" | "hours" => (Transform::Hour, one(&args).ok_or_else(bad)?),
        _ => return Err(bad()),
    })
}

/// `[N, column]` or `[column, N]`.
fn width<'a>(args: &[&'a str]) -> Option<(u32, &'a str)> {
    match args {
        [a, b] => match (a.parse::<u32>(), b.parse::<u32>()) {
            (Ok(n), Err(_)) => Some((n, *b)),
            (Err(_), Ok(n)) => Some((n, *a)),
            _ => None,
        },
        _ => None,
    }
}

/// `[column]`.
fn one<'a>(args: &[&'a str]) -> Option<&'a str> {
    match args {
        [c] if !c.is_empty() => Some(*c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use iceberg::spec::NestedField;

    use super::*;
    use crate::schema;

    fn typed_schema() -> Schema {
        let p = |t| Arc::new(Type::Primitive(t));
        let mut fields: Vec<_> = schema::schema().as_struct().fields().to_vec();
        fields.push(Arc::new(NestedField::optional(
            11,
            "customer_id",
            p(PrimitiveType::String).as_ref().clone(),
        )));
        fields.push(Arc::new(NestedField::optional(
            12,
            "price",
            p(PrimitiveType::Double).as_ref().clone(),
        )));
        fields.push(Arc::new(NestedField::optional(
            13,
            "blob",
            p(PrimitiveType::Binary).as_ref().clone(),
        )));
        Schema::builder().with_fields(fields).build().unwrap()
    }

    fn spec_of(items: &[&str]) -> Result<Vec<(String, i32, Transform)>, String> {
        let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        let spec = parse_partition_by(&typed_schema(), &items)?;
        let spec = bind_checked(&typed_schema(), spec)?;
        Ok(spec.fields().iter().map(|f| (f.name.clone(), f.source_id, f.transform)).collect())
    }

    #[test]
    fn the_config_form_names_columns_and_transforms() {
        assert_eq!(
            spec_of(&[
                "days(event_time)",
                "bucket(16, customer_id)",
                "truncate(customer_id, 4)",
                "partition"
            ])
            .unwrap(),
            vec![
                ("event_time_day".into(), 4, Transform::Day),
                ("customer_id_bucket".into(), 11, Transform::Bucket(16)),
                ("customer_id_trunc".into(), 11, Transform::Truncate(4)),
                ("partition".into(), 1, Transform::Identity),
            ]
        );
        assert_eq!(spec_of(&["identity(event_date)"]).unwrap()[0].2, Transform::Identity);
        assert_eq!(spec_of(&["hour(event_time)"]).unwrap()[0].0, "event_time_hour");
    }

    #[test]
    fn what_zombi_cannot_keep_correct_is_refused_with_the_reason() {
        let cases: [(&[&str], &str); 8] = [
            (&["payload"], "whole payload"),
            (&["price"], "floating-point"),
            (&["blob"], "bucket it instead"),
            (&["day(customer_id)"], "does not apply"),
            (&["nope"], "no column \"nope\""),
            (&["bucket(0, customer_id)"], "at least 1"),
            (&["frob(customer_id)"], "is not a column or one of"),
            (&["bucket(customer_id)"], "is not a column or one of"),
        ];
        for (items, expect) in cases {
            let e = spec_of(items).unwrap_err();
            assert!(e.contains(expect), "{items:?}: {e}");
        }
        assert!(spec_of(&["bucket(8, blob)"]).is_ok());
    }
}
