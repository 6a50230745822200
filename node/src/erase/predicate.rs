//! The predicate of a delete request, bound to a table's schema: a conjunction of
//! conditions on top-level primitive columns (system or typed: `eq`, `in`, `lt`, `lte`,
//! `gt`, `gte`) and on top-level fields of the JSON `payload` column (`eq`, `in`).
//!
//! A column condition's value is converted to the column's type once, when the request is
//! bound (a value that does not convert is refused), then compared with Arrow's kernels;
//! a file's bounds and null counts rule out files no row of which can match. A payload
//! condition parses each row's payload, and rules out no file.

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, Scalar, StringArray};
use arrow_cast::cast::{CastOptions, cast_with_options};
use arrow_schema::DataType;
use iceberg::spec::{DataFile, Datum, PrimitiveType, Schema, Type};
use serde::Deserialize;
use serde_json::Value;

use crate::compact::{FileMatch, RowMatch};

/// Most conditions in one request, and values in one `in`.
pub const MAX_CONDITIONS: usize = 32;
pub const MAX_IN_VALUES: usize = 10_000;

/// Parquet statistics of strings are cut to this many characters; an upper bound of this
/// length may be a cut one, and is not used to rule a file out.
const TRUNCATED_BOUND_CHARS: usize = 16;

/// The body of `POST /tables/{t}/delete`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteRequest {
    /// Every condition must hold for a row to be deleted.
    #[serde(rename = "where")]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// A top-level column of the table.
    pub column: Option<String>,
    /// A top-level field of the JSON `payload` column.
    pub payload_field: Option<String>,
    pub op: Op,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Eq,
    In,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::In => "in",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Gt => "gt",
            Op::Gte => "gte",
        }
    }
}

/// A condition on a column, its values in the column's Arrow type.
struct ColumnCondition {
    name: String,
    field_id: i32,
    op: Op,
    /// One value, or the values of `in`.
    values: ArrayRef,
    /// The same values for comparing with file bounds, where the type allows it.
    datums: Option<Vec<Datum>>,
    is_string: bool,
}

/// A condition on a top-level payload field: the row's field equals one of `values`.
struct PayloadCondition {
    field: String,
    values: Vec<Value>,
}

/// A delete request's predicate bound to a table.
pub struct Predicate {
    columns: Vec<ColumnCondition>,
    payload: Vec<PayloadCondition>,
}

impl Predicate {
    /// Binds `request` to `schema` (the table's current schema), refusing what cannot apply.
    pub fn bind(request: &DeleteRequest, schema: &Schema) -> Result<Predicate, String> {
        if request.conditions.is_empty() {
            return Err("a delete needs at least one condition in \"where\"".into());
        }
        if request.conditions.len() > MAX_CONDITIONS {
            return Err(format!("a delete takes at most {MAX_CONDITIONS} conditions"));
        }
        let mut predicate = Predicate { columns: Vec::new(), payload: Vec::new() };
        for (i, c) in request.conditions.iter().enumerate() {
            let values = condition_values(c).map_err(|e| format!("condition {i}: {e}"))?;
            match (&c.column, &c.payload_field) {
                (Some(column), None) => predicate.columns.push(
                    bind_column(schema, column, c.op, &values)
                        .map_err(|e| format!("condition {i}: {e}"))?,
                ),
                (None, Some(field)) => {
                    if !matches!(c.op, Op::Eq | Op::In) {
                        return Err(format!(
                            "condition {i}: a payload field takes eq or in, not {}",
                            c.op.as_str()
                        ));
                    }
                    let payload = schema.field_by_name("payload");
                    if !payload
                        .is_some_and(|f| *f.field_type == Type::Primitive(PrimitiveType::String))
                    {
                        return Err(format!(
                            "condition {i}: the table has no JSON payload column for payload_field {field}"
                        ));
                    }
                    if field.is_empty() {
                        return Err(format!("condition {i}: payload_field is empty"));
                    }
                    predicate.payload.push(PayloadCondition { field: field.clone(), values });
                }
                _ => {
                    return Err(format!(
                        "condition {i} names neither or both of \"column\" and \"payload_field\"; it takes one"
                    ));
                }
            }
        }
        Ok(predicate)
    }
}

/// The condition's value(s): one scalar, or for `in` a non-empty array of scalars.
fn condition_values(c: &Condition) -> Result<Vec<Value>, String> {
    let scalar = |v: &Value| match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(v.clone()),
        Value::Null => Err("null matches nothing; give a value".to_owned()),
        _ => Err("a value is a string, a number or a boolean".to_owned()),
    };
    match (c.op, &c.value) {
        (Op::In, Value::Array(values)) => {
            if values.is_empty() || values.len() > MAX_IN_VALUES {
                return Err(format!("in takes 1 to {MAX_IN_VALUES} values"));
            }
            values.iter().map(scalar).collect()
        }
        (Op::In, _) => Err("in takes an array of values".into()),
        (_, v) => Ok(vec![scalar(v)?]),
    }
}

fn bind_column(
    schema: &Schema,
    name: &str,
    op: Op,
    values: &[Value],
) -> Result<ColumnCondition, String> {
    let field = schema
        .as_struct()
        .fields()
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| format!("the table has no column {name}"))?;
    let Type::Primitive(primitive) = field.field_type.as_ref() else {
        return Err(format!(
            "column {name} is not of a primitive type; conditions take primitive columns"
        ));
    };
    if matches!(primitive, PrimitiveType::Binary | PrimitiveType::Fixed(_) | PrimitiveType::Uuid) {
        return Err(format!(
            "column {name} is {primitive}; conditions take numbers, strings, booleans, dates and timestamps"
        ));
    }
    let arrow = iceberg::arrow::type_to_arrow_type(&field.field_type)
        .map_err(|e| format!("column {name}: {e}"))?;
    let text: StringArray = values
        .iter()
        .map(|v| match v {
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        })
        .collect();
    let converted =
        cast_with_options(&text, &arrow, &CastOptions { safe: false, ..Default::default() })
            .map_err(|_| {
                let shown: Vec<String> = values.iter().map(Value::to_string).collect();
                format!("{} is not a value of column {name} ({primitive})", shown.join(", "))
            })?;
    if converted.null_count() > 0 {
        return Err(format!("a value of the condition on {name} does not convert to {primitive}"));
    }
    let datums = (0..converted.len()).map(|i| datum(&converted, i)).collect();
    Ok(ColumnCondition {
        name: name.to_owned(),
        field_id: field.id,
        op,
        values: converted,
        datums,
        is_string: matches!(primitive, PrimitiveType::String),
    })
}

/// Value `i` of `a` as an Iceberg datum, for comparing with file bounds; `None` for types
/// compared by rows only.
fn datum(a: &ArrayRef, i: usize) -> Option<Datum> {
    use arrow_array::cast::AsArray as _;
    use arrow_array::types::*;
    Some(match a.data_type() {
        DataType::Boolean => Datum::bool(a.as_boolean().value(i)),
        DataType::Int32 => Datum::int(a.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => Datum::long(a.as_primitive::<Int64Type>().value(i)),
        DataType::Float32 => Datum::float(a.as_primitive::<Float32Type>().value(i)),
        DataType::Float64 => Datum::double(a.as_primitive::<Float64Type>().value(i)),
        DataType::Date32 => Datum::date(a.as_primitive::<Date32Type>().value(i)),
        DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, None) => {
            Datum::timestamp_micros(a.as_primitive::<TimestampMicrosecondType>().value(i))
        }
        DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some(_)) => {
            Datum::timestamptz_micros(a.as_primitive::<TimestampMicrosecondType>().value(i))
        }
        DataType::Utf8 => Datum::string(a.as_string::<i32>().value(i)),
        _ => return None,
    })
}

impl ColumnCondition {
    /// Whether file bounds `[lower, upper]` rule out every row.
    fn rules_out(&self, file: &DataFile) -> bool {
        let Some(datums) = &self.datums else { return false };
        let (values, nulls) =
            (file.value_counts().get(&self.field_id), file.null_value_counts().get(&self.field_id));
        if let (Some(v), Some(n)) = (values, nulls)
            && v == n
        {
            return true; // only nulls, which match nothing
        }
        let lower = file.lower_bounds().get(&self.field_id);
        let upper = file.upper_bounds().get(&self.field_id).filter(|u| {
            !(self.is_string
                && matches!(u.literal(), iceberg::spec::PrimitiveLiteral::String(s) if s.chars().count() >= TRUNCATED_BOUND_CHARS))
        });
        let below = |v: &Datum| {
            lower.is_some_and(|l| matches!(v.partial_cmp(l), Some(std::cmp::Ordering::Less)))
        };
        let above = |v: &Datum| {
            upper.is_some_and(|u| matches!(v.partial_cmp(u), Some(std::cmp::Ordering::Greater)))
        };
        let le_lower = |v: &Datum| {
            lower.is_some_and(|l| {
                matches!(
                    v.partial_cmp(l),
                    Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                )
            })
        };
        let ge_upper = |v: &Datum| {
            upper.is_some_and(|u| {
                matches!(
                    v.partial_cmp(u),
                    Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                )
            })
        };
        match self.op {
            Op::Eq | Op::In => datums.iter().all(|v| below(v) || above(v)),
            // Every row is >= lower: none is < v when v <= lower.
            Op::Lt => le_lower(&datums[0]),
            Op::Lte => below(&datums[0]),
            Op::Gt => ge_upper(&datums[0]),
            Op::Gte => above(&datums[0]),
        }
    }

    fn rows(&self, batch: &RecordBatch) -> Result<BooleanArray, String> {
        use arrow_ord::cmp;
        let column = batch
            .column_by_name(&self.name)
            .ok_or_else(|| format!("the rows have no column {}", self.name))?;
        // The values were converted to the schema's type; a file read with another
        // timezone label or width gets them in its own.
        let values = if self.values.data_type() == column.data_type() {
            self.values.clone()
        } else {
            arrow_cast::cast(&self.values, column.data_type()).map_err(|e| e.to_string())?
        };
        let one = |i: usize| Scalar::new(values.slice(i, 1));
        let out = match self.op {
            Op::Eq => cmp::eq(column, &one(0)),
            Op::Lt => cmp::lt(column, &one(0)),
            Op::Lte => cmp::lt_eq(column, &one(0)),
            Op::Gt => cmp::gt(column, &one(0)),
            Op::Gte => cmp::gt_eq(column, &one(0)),
            Op::In => {
                let mut any = BooleanArray::from(vec![false; column.len()]);
                for i in 0..values.len() {
                    let hit = cmp::eq(column, &one(i)).map_err(|e| e.to_string())?;
                    any = arrow_arith::boolean::or_kleene(&any, &hit).map_err(|e| e.to_string())?;
                }
                Ok(any)
            }
        };
        out.map_err(|e| e.to_string())
    }
}

impl PayloadCondition {
    fn rows(&self, batch: &RecordBatch) -> Result<BooleanArray, String> {
        use arrow_array::cast::AsArray as _;
        let payload = batch.column_by_name("payload").ok_or("the rows have no payload column")?;
        let payload = payload.as_string_opt::<i32>().ok_or("the payload column is not a string")?;
        Ok(payload
            .iter()
            .map(|p| {
                let hit = p
                    .and_then(|p| serde_json::from_str::<serde_json::Map<String, Value>>(p).ok())
                    .is_some_and(|obj| {
                        obj.get(&self.field)
                            .is_some_and(|v| self.values.iter().any(|want| same_json(v, want)))
                    });
                Some(hit)
            })
            .collect())
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

impl RowMatch for Predicate {
    fn file(&self, file: &DataFile) -> FileMatch {
        if self.columns.iter().any(|c| c.rules_out(file)) {
            FileMatch::None
        } else {
            FileMatch::Some
        }
    }

    fn rows(&self, batch: &RecordBatch) -> Result<BooleanArray, String> {
        let mut all = BooleanArray::from(vec![true; batch.num_rows()]);
        for c in &self.columns {
            all = arrow_arith::boolean::and_kleene(&all, &c.rows(batch)?)
                .map_err(|e| e.to_string())?;
        }
        for c in &self.payload {
            all = arrow_arith::boolean::and_kleene(&all, &c.rows(batch)?)
                .map_err(|e| e.to_string())?;
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow_array::{Int32Array, TimestampMicrosecondArray};
    use arrow_schema::{Field, Schema as ArrowSchema, TimeUnit};
    use iceberg::spec::{DataContentType, DataFileBuilder, DataFileFormat, Struct};

    use super::*;
    use crate::schema;

    fn request(conditions: Value) -> DeleteRequest {
        serde_json::from_value(json_where(conditions)).unwrap()
    }

    fn json_where(conditions: Value) -> Value {
        serde_json::json!({ "where": conditions })
    }

    fn bind(conditions: Value) -> Result<Predicate, String> {
        Predicate::bind(&request(conditions), &schema::schema())
    }

    #[test]
    fn requests_that_cannot_apply_are_refused_with_a_reason() {
        let cases = [
            (serde_json::json!([]), "at least one condition"),
            (serde_json::json!([{"column": "nope", "op": "eq", "value": 1}]), "no column nope"),
            (
                serde_json::json!([{"column": "partition", "op": "eq", "value": "abc"}]),
                "not a value of column partition",
            ),
            (
                serde_json::json!([{"column": "event_time", "op": "lt", "value": "yesterday"}]),
                "not a value of column event_time",
            ),
            (serde_json::json!([{"column": "payload_bytes", "op": "eq", "value": "x"}]), "binary"),
            (serde_json::json!([{"payload_field": "u", "op": "gt", "value": 1}]), "eq or in"),
            (serde_json::json!([{"payload_field": "", "op": "eq", "value": 1}]), "empty"),
            (serde_json::json!([{"column": "partition", "op": "in", "value": 1}]), "array"),
            (serde_json::json!([{"column": "partition", "op": "in", "value": []}]), "1 to"),
            (serde_json::json!([{"column": "partition", "op": "eq", "value": null}]), "null"),
            (serde_json::json!([{"column": "partition", "op": "eq", "value": {"a": 1}}]), "string"),
            (serde_json::json!([{"op": "eq", "value": 1}]), "neither or both"),
        ];
        for (conditions, says) in cases {
            let e = bind(conditions.clone()).err().unwrap_or_else(|| panic!("{conditions} bound"));
            assert!(e.contains(says), "{conditions}: {e}");
        }
        let many: Vec<Value> = (0..=MAX_CONDITIONS)
            .map(|_| serde_json::json!({"column": "partition", "op": "eq", "value": 1}))
            .collect();
        assert!(bind(Value::Array(many)).err().unwrap().contains("at most"));
        assert!(
            serde_json::from_value::<DeleteRequest>(json_where(
                serde_json::json!([{"column": "partition", "op": "like", "value": 1}])
            ))
            .is_err()
        );
    }

    fn batch() -> RecordBatch {
        let tz = || Some("+00:00".into());
        let schema = ArrowSchema::new(vec![
            Field::new("partition", DataType::Int32, false),
            Field::new("event_time", DataType::Timestamp(TimeUnit::Microsecond, tz()), false),
            Field::new("payload", DataType::Utf8, true),
        ]);
        let payloads = [
            Some(r#"{"user": "u1", "n": 1}"#),
            Some(r#"{"user": "u2", "n": 1.0}"#),
            None,
            Some(r#"["user", "u1"]"#),
            Some(r#"{"user": {"id": "u1"}, "n": 2}"#),
        ];
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int32Array::from(vec![0, 1, 2, 3, 4])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![
                        0, 1_000_000, 2_000_000, 3_000_000, 4_000_000,
                    ])
                    .with_timezone("+00:00"),
                ),
                Arc::new(StringArray::from(payloads.to_vec())),
            ],
        )
        .unwrap()
    }

    fn hits(conditions: Value) -> Vec<bool> {
        let hit = bind(conditions).unwrap().rows(&batch()).unwrap();
        hit.iter().map(|h| h == Some(true)).collect()
    }

    #[test]
    fn rows_match_every_condition_in_the_columns_type() {
        let p =
            |op: &str, v: Value| serde_json::json!([{"column": "partition", "op": op, "value": v}]);
        assert_eq!(hits(p("eq", 2.into())), [false, false, true, false, false]);
        assert_eq!(hits(p("eq", "2".into())), [false, false, true, false, false]);
        assert_eq!(hits(p("in", serde_json::json!([0, 4, 9]))), [true, false, false, false, true]);
        assert_eq!(hits(p("lt", 2.into())), [true, true, false, false, false]);
        assert_eq!(hits(p("lte", 2.into())), [true, true, true, false, false]);
        assert_eq!(hits(p("gt", 2.into())), [false, false, false, true, true]);
        assert_eq!(hits(p("gte", 2.into())), [false, false, true, true, true]);
        let before = serde_json::json!([
            {"column": "event_time", "op": "lt", "value": "1970-01-01T00:00:02Z"},
            {"column": "partition", "op": "gte", "value": 1},
        ]);
        assert_eq!(hits(before), [false, true, false, false, false]);
    }

    #[test]
    fn payload_fields_match_top_level_json_values_and_nothing_else() {
        let f = |field: &str, v: Value| serde_json::json!([{"payload_field": field, "op": "eq", "value": v}]);
        // Not a nested field, not an array's element, not a null payload.
        assert_eq!(hits(f("user", "u1".into())), [true, false, false, false, false]);
        // Numbers by value: 1 equals 1.0.
        assert_eq!(hits(f("n", 1.into())), [true, true, false, false, false]);
        assert_eq!(hits(f("n", serde_json::json!(2.0))), [false, false, false, false, true]);
        assert_eq!(hits(f("n", "1".into())), [false; 5]);
        let any = serde_json::json!([{"payload_field": "user", "op": "in", "value": ["u1", "u2"]}]);
        assert_eq!(hits(any), [true, true, false, false, false]);
    }

    fn file(field: i32, lower: Datum, upper: Datum, values: u64, nulls: u64) -> DataFile {
        DataFileBuilder::default()
            .content(DataContentType::Data)
            .file_path("f.parquet".into())
            .file_format(DataFileFormat::Parquet)
            .partition(Struct::empty())
            .record_count(values)
            .file_size_in_bytes(1)
            .value_counts(HashMap::from([(field, values)]))
            .null_value_counts(HashMap::from([(field, nulls)]))
            .lower_bounds(HashMap::from([(field, lower)]))
            .upper_bounds(HashMap::from([(field, upper)]))
            .build()
            .unwrap()
    }

    fn judged(conditions: Value, file: &DataFile) -> FileMatch {
        bind(conditions).unwrap().file(file)
    }

    #[test]
    fn file_bounds_rule_out_only_what_cannot_match() {
        let f = file(schema::FIELD_PARTITION, Datum::int(2), Datum::int(5), 10, 0);
        let p =
            |op: &str, v: Value| serde_json::json!([{"column": "partition", "op": op, "value": v}]);
        for (op, v, want) in [
            ("eq", 7, FileMatch::None),
            ("eq", 1, FileMatch::None),
            ("eq", 3, FileMatch::Some),
            ("lt", 2, FileMatch::None),
            ("lte", 2, FileMatch::Some),
            ("gt", 5, FileMatch::None),
            ("gte", 5, FileMatch::Some),
        ] {
            assert_eq!(judged(p(op, v.into()), &f), want, "{op} {v}");
        }
        assert_eq!(judged(p("in", serde_json::json!([0, 9])), &f), FileMatch::None);
        assert_eq!(judged(p("in", serde_json::json!([0, 4])), &f), FileMatch::Some);
        // A payload condition rules out nothing.
        let payload = serde_json::json!([{"payload_field": "user", "op": "eq", "value": "u"}]);
        assert_eq!(judged(payload, &f), FileMatch::Some);
        // Only nulls: nothing matches.
        let nulls = file(schema::FIELD_PARTITION, Datum::int(2), Datum::int(5), 10, 10);
        assert_eq!(judged(p("eq", 3.into()), &nulls), FileMatch::None);
    }

    #[test]
    fn a_string_upper_bound_that_may_be_cut_short_rules_nothing_out() {
        let key =
            |v: &str| serde_json::json!([{"column": "idempotency_key", "op": "eq", "value": v}]);
        let field = schema::FIELD_IDEMPOTENCY_KEY;
        // Parquet cuts string statistics to 16 characters: "k-0000000000000z" may stand for
        // a longer key above it.
        let cut = file(field, Datum::string("k-0000"), Datum::string("k-0000000000000z"), 3, 0);
        assert_eq!(judged(key("k-0000000000000z-9"), &cut), FileMatch::Some);
        let whole = file(field, Datum::string("k-0000"), Datum::string("k-0009"), 3, 0);
        assert_eq!(judged(key("k-0010"), &whole), FileMatch::None);
        assert_eq!(judged(key("k-0005"), &whole), FileMatch::Some);
        // Below a lower bound, cut or not, is always ruled out.
        assert_eq!(judged(key("a"), &cut), FileMatch::None);
    }
}
