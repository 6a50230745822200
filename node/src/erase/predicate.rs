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
}

/// A condition on a top-level payload field: the row's field equals one of `values`.
struct PayloadCondition {
    field: String,
    values: Vec<Value>,
    /// The JSON texts a matching payload holds as they are when it has no escape (no `\`):
    /// the field's name, and one of the values (strings and booleans; numbers have several
    /// spellings, so `None`). A payload without them is no match, unparsed.
    needles: Option<(String, Vec<String>)>,
}

impl PayloadCondition {
    fn new(field: String, values: Vec<Value>) -> Self {
        let texts: Option<Vec<String>> = values
            .iter()
            .map(|v| match v {
                Value::String(_) | Value::Bool(_) => Some(v.to_string()),
                _ => None,
            })
            .collect();
        let name = Value::String(field.clone()).to_string();
        PayloadCondition { field, values, needles: texts.map(|t| (name, t)) }
    }

    /// Whether `payload` cannot match, seen from its text alone.
    fn ruled_out(&self, payload: &str) -> bool {
        match &self.needles {
            Some((name, values)) if !payload.contains('\\') => {
                !payload.contains(name.as_str())
                    || !values.iter().any(|v| payload.contains(v.as_str()))
            }
            _ => false,
        }
    }
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
                    predicate.payload.push(PayloadCondition::new(field.clone(), values));
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
    // A value the column cannot hold exactly would match other rows than the one named.
    for (i, v) in text.iter().enumerate() {
        let v = v.unwrap_or_default();
        exact(v, &converted, i, primitive).map_err(|why| {
            format!("{} does not fit column {name} ({primitive}) exactly: {why}", quoted(v))
        })?;
    }
    let datums = (0..converted.len()).map(|i| datum(&converted, i)).collect();
    Ok(ColumnCondition { name: name.to_owned(), field_id: field.id, op, values: converted, datums })
}

fn quoted(v: &str) -> String {
    zombi_shared::quote::quoted(v).to_string()
}

/// Whether `text`, converted to `converted[i]` of type `primitive`, lost nothing: no digits
/// beyond a decimal's scale or beyond microseconds, no time of day in a date, no rounding
/// to a float.
fn exact(
    text: &str,
    converted: &ArrayRef,
    i: usize,
    primitive: &PrimitiveType,
) -> Result<(), &'static str> {
    use arrow_array::cast::AsArray as _;
    use arrow_array::types::Float32Type;
    let text = text.trim();
    match primitive {
        PrimitiveType::Decimal { scale, .. } => {
            if text.contains(['e', 'E']) {
                return Err("write it with digits, without an exponent");
            }
            let fraction = text.split_once('.').map_or("", |(_, f)| f).trim_end_matches('0');
            if fraction.len() > *scale as usize {
                return Err("it has more decimal places than the column keeps");
            }
        }
        PrimitiveType::Date if text.len() != 10 => {
            return Err("is not a date (YYYY-MM-DD) as the values of");
        }
        PrimitiveType::Time | PrimitiveType::Timestamp | PrimitiveType::Timestamptz => {
            // The digits after the seconds' point, up to a zone or the end.
            let seconds = text.rsplit(':').next().unwrap_or("");
            let digits: String = seconds
                .split_once('.')
                .map_or("", |(_, f)| f)
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if digits.len() > 6 && digits[6..].chars().any(|c| c != '0') {
                return Err("the column keeps microseconds");
            }
        }
        PrimitiveType::Float => {
            let held = converted.as_primitive::<Float32Type>().value(i) as f64;
            if text.parse::<f64>().ok() != Some(held) {
                return Err("a 32-bit float cannot hold it");
            }
        }
        _ => {}
    }
    Ok(())
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
        // Parquet cuts long string statistics and marks them inexact, and iceberg-rust
        // builds a file's string bounds from the exact ones only: over several row groups
        // they may not cover every value. One row group's bounds are exact or absent.
        if self.values.data_type() == &DataType::Utf8
            && file.split_offsets().is_none_or(|o| o.len() != 1)
        {
            return false;
        }
        let lower = file.lower_bounds().get(&self.field_id);
        let upper = file.upper_bounds().get(&self.field_id);
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
        let out = out.map_err(|e| e.to_string())?;
        // NaN is above every number to Arrow's kernels, and outside every file's bounds:
        // it matches nothing, wherever its row is.
        let nan = {
            use arrow_array::types::{Float32Type, Float64Type};
            match column.data_type() {
                DataType::Float32 => Some(not_nan::<Float32Type>(column, f32::is_nan)),
                DataType::Float64 => Some(not_nan::<Float64Type>(column, f64::is_nan)),
                _ => None,
            }
        };
        match nan {
            Some(not_nan) => {
                arrow_arith::boolean::and_kleene(&out, &not_nan).map_err(|e| e.to_string())
            }
            None => Ok(out),
        }
    }
}

/// Per row of a float column: not NaN (nulls count as not NaN).
fn not_nan<T: arrow_array::ArrowPrimitiveType>(
    column: &ArrayRef,
    is_nan: fn(T::Native) -> bool,
) -> BooleanArray {
    use arrow_array::cast::AsArray as _;
    column.as_primitive::<T>().iter().map(|v| Some(!v.is_some_and(is_nan))).collect()
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
                    .filter(|p| !self.ruled_out(p))
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

/// JSON equality with numbers compared by value (`1` equals `1.0`): whole numbers exactly,
/// a whole number and a fraction as floats only where a float holds the whole number
/// exactly (below 2^53).
fn same_json(a: &Value, b: &Value) -> bool {
    const EXACT: u64 = 1 << 53;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let whole = |n: &serde_json::Number| {
                n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
            };
            match (whole(x), whole(y)) {
                (Some(x), Some(y)) => x == y,
                (Some(w), None) | (None, Some(w)) if w.unsigned_abs() > u128::from(EXACT) => false,
                _ => x.as_f64() == y.as_f64(),
            }
        }
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
        // Escaped spellings of the same field and value match too (the text prefilter steps
        // aside for a payload with escapes).
        let escaped = RecordBatch::try_new(
            Arc::new(ArrowSchema::new(vec![Field::new("payload", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec![
                r#"{"user":"u\u0031"}"#,
                r#"{"\u0075ser": "u1"}"#,
                r#"{"user":"u1"}"#,
                r#"{"user":"u10"}"#,
                r#"{"name":"u1"}"#,
            ]))],
        )
        .unwrap();
        let hit = bind(f("user", "u1".into())).unwrap().rows(&escaped).unwrap();
        assert_eq!(
            hit.iter().map(|h| h == Some(true)).collect::<Vec<_>>(),
            [true, true, true, false, false]
        );
        let any = serde_json::json!([{"payload_field": "user", "op": "in", "value": ["u1", "u2"]}]);
        assert_eq!(hits(any), [true, true, false, false, false]);
    }

    fn file(field: i32, lower: Datum, upper: Datum, values: u64, nulls: u64) -> DataFile {
        file_in_row_groups(field, lower, upper, values, nulls, &[4])
    }

    fn file_in_row_groups(
        field: i32,
        lower: Datum,
        upper: Datum,
        values: u64,
        nulls: u64,
        row_groups: &[i64],
    ) -> DataFile {
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
            .split_offsets(Some(row_groups.to_vec()))
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
    fn string_bounds_rule_a_file_out_only_with_one_row_group() {
        let key =
            |v: &str| serde_json::json!([{"column": "idempotency_key", "op": "eq", "value": v}]);
        let field = schema::FIELD_IDEMPOTENCY_KEY;
        let (low, high) = (Datum::string("k-0000"), Datum::string("k-0009"));
        let one = file_in_row_groups(field, low.clone(), high.clone(), 3, 0, &[4]);
        assert_eq!(judged(key("k-0010"), &one), FileMatch::None);
        assert_eq!(judged(key("a"), &one), FileMatch::None);
        assert_eq!(judged(key("k-0005"), &one), FileMatch::Some);
        // Over several row groups the bounds may leave out a row group whose statistics
        // Parquet cut: they rule nothing out.
        let two = file_in_row_groups(field, low.clone(), high.clone(), 3, 0, &[4, 9000]);
        assert_eq!(judged(key("k-0010"), &two), FileMatch::Some);
        assert_eq!(judged(key("a"), &two), FileMatch::Some);
        // Numbers are exact whatever the row groups.
        let ints = file_in_row_groups(
            schema::FIELD_PARTITION,
            Datum::int(2),
            Datum::int(5),
            3,
            0,
            &[4, 9000],
        );
        let p = serde_json::json!([{"column": "partition", "op": "eq", "value": 7}]);
        assert_eq!(judged(p, &ints), FileMatch::None);
    }

    fn typed_schema() -> Schema {
        use iceberg::spec::NestedField;
        let p = |t| Type::Primitive(t);
        Schema::builder()
            .with_fields([
                NestedField::optional(
                    1,
                    "amount",
                    p(PrimitiveType::Decimal { precision: 10, scale: 2 }),
                )
                .into(),
                NestedField::optional(2, "at", p(PrimitiveType::Timestamptz)).into(),
                NestedField::optional(3, "day", p(PrimitiveType::Date)).into(),
                NestedField::optional(4, "ratio", p(PrimitiveType::Float)).into(),
                NestedField::optional(5, "score", p(PrimitiveType::Double)).into(),
            ])
            .build()
            .unwrap()
    }

    #[test]
    fn a_value_the_column_cannot_hold_exactly_is_refused() {
        let bind = |column: &str, value: Value| {
            let r = request(serde_json::json!([{"column": column, "op": "eq", "value": value}]));
            Predicate::bind(&r, &typed_schema()).err()
        };
        for ok in [serde_json::json!("12.30"), serde_json::json!(12.5), serde_json::json!("-7")] {
            assert!(bind("amount", ok.clone()).is_none(), "{ok}");
        }
        let e = bind("amount", "12.345".into()).unwrap();
        assert!(e.contains("\"12.345\" does not fit column amount (decimal(10, 2)) exactly: it has more decimal places"), "{e}");
        assert!(bind("amount", "1.2e1".into()).is_some(), "no exponents");
        assert!(
            bind("at", "2026-01-02T00:00:00.1234567Z".into()).unwrap().contains("microseconds")
        );
        assert!(bind("at", "2026-01-02T00:00:00.1234560Z".into()).is_none());
        assert!(bind("at", "2026-01-02T00:00:00Z".into()).is_none());
        assert!(bind("day", "2026-01-02T10:00:00Z".into()).unwrap().contains("YYYY-MM-DD"));
        assert!(bind("day", "2026-01-02".into()).is_none());
        assert!(bind("ratio", serde_json::json!(0.1)).unwrap().contains("32-bit float"));
        assert!(bind("ratio", serde_json::json!(0.5)).is_none());
        assert!(bind("score", serde_json::json!(0.1)).is_none());
    }

    #[test]
    fn nan_matches_nothing_and_big_numbers_compare_exactly() {
        let schema = ArrowSchema::new(vec![Field::new("score", DataType::Float64, true)]);
        let scores =
            arrow_array::Float64Array::from(vec![Some(f64::NAN), Some(9.0), None, Some(1.0)]);
        let batch = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(scores)]).unwrap();
        let r = request(serde_json::json!([{"column": "score", "op": "gt", "value": 5}]));
        let hit = Predicate::bind(&r, &typed_schema()).unwrap().rows(&batch).unwrap();
        let hit: Vec<bool> = hit.iter().map(|h| h == Some(true)).collect();
        assert_eq!(hit, [false, true, false, false]);

        let n = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert!(same_json(&n("1"), &n("1.0")));
        assert!(same_json(&n("18446744073709551615"), &n("18446744073709551615")));
        assert!(!same_json(&n("18446744073709551615"), &n("18446744073709551614")));
        assert!(!same_json(&n("9007199254740993"), &n("9007199254740992.0")));
        assert!(!same_json(&n("-1"), &n("18446744073709551615")));
    }
}
