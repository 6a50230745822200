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
