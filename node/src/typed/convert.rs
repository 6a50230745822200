//! JSON → typed columns. A table's user columns compile into a tree of [`Column`]s; the
//! same scalar conversions serve both the check at ingest ([`Column::check`]: one event,
//! every error with its path) and the columnar build at flush ([`Column::build`]: many
//! events into one Arrow array), so what ingest accepted always converts.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, FixedSizeBinaryArray, Float32Array,
    Float64Array, Int32Array, Int64Array, LargeBinaryArray, ListArray, MapArray, StringArray,
    StructArray, Time64MicrosecondArray, TimestampMicrosecondArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, FieldRef};
use base64::Engine as _;
use iceberg::spec::{NestedField, PrimitiveType, Type};

use super::json::{Json, Node};

/// A value that does not fit its column: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// `amount`, `customer.tier`, `tags[2]`, `attributes["k"]`; empty for the payload itself.
    pub path: String,
    pub reason: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "field {}: {}", self.path, self.reason)
        }
    }
}

/// Conversions a table allows beyond the strict ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coercions {
    /// `"42"` for an int, long, float, double or decimal column.
    pub numbers_in_strings: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Decimal { precision: u32, scale: u32 },
    Date,
    Time,
    Timestamp,
    Timestamptz,
    String,
    Uuid,
    Fixed(usize),
    Binary,
}

impl Scalar {
    fn name(&self) -> String {
        match self {
            Scalar::Boolean => "boolean".into(),
            Scalar::Int => "int".into(),
            Scalar::Long => "long".into(),
            Scalar::Float => "float".into(),
            Scalar::Double => "double".into(),
            Scalar::Decimal { precision, scale } => format!("decimal({precision}, {scale})"),
            Scalar::Date => "date".into(),
            Scalar::Time => "time".into(),
            Scalar::Timestamp => "timestamp".into(),
            Scalar::Timestamptz => "timestamptz".into(),
            Scalar::String => "string".into(),
            Scalar::Uuid => "uuid".into(),
            Scalar::Fixed(n) => format!("fixed[{n}]"),
            Scalar::Binary => "binary".into(),
        }
    }

    fn of(p: &PrimitiveType) -> Result<Self, String> {
        Ok(match p {
            PrimitiveType::Boolean => Scalar::Boolean,
            PrimitiveType::Int => Scalar::Int,
            PrimitiveType::Long => Scalar::Long,
            PrimitiveType::Float => Scalar::Float,
            PrimitiveType::Double => Scalar::Double,
            PrimitiveType::Decimal { precision, scale } => {
                Scalar::Decimal { precision: *precision, scale: *scale }
            }
            PrimitiveType::Date => Scalar::Date,
            PrimitiveType::Time => Scalar::Time,
            PrimitiveType::Timestamp => Scalar::Timestamp,
            PrimitiveType::Timestamptz => Scalar::Timestamptz,
            PrimitiveType::String => Scalar::String,
            PrimitiveType::Uuid => Scalar::Uuid,
            PrimitiveType::Fixed(n) => Scalar::Fixed(*n as usize),
            PrimitiveType::Binary => Scalar::Binary,
            other => {
                return Err(format!(
                    "type {other} is not supported (nanosecond timestamps need Iceberg format v3); use timestamp or timestamptz"
                ));
            }
        })
    }
}

#[derive(Debug)]
enum Shape {
    Scalar(Scalar),
    Struct(Vec<Column>),
    List(Box<Column>),
    Map(Box<Column>),
}

/// One column (or nested field, list element or map value) and its Arrow field.
#[derive(Debug)]
pub struct Column {
    pub name: String,
    pub required: bool,
    shape: Shape,
    arrow: FieldRef,
}

/// What a check leaves over: fields the columns do not hold.
#[derive(Debug)]
pub enum Rest<'n> {
    /// This value as written.
    Whole(&'n str),
    /// Some fields of this object.
    Fields(Vec<(&'n str, Rest<'n>)>),
}

impl Rest<'_> {
    /// Appends the JSON text of these fields.
    pub fn write(&self, out: &mut String) {
        match self {
            Rest::Whole(raw) => out.push_str(raw),
            Rest::Fields(fields) => {
                out.push('{');
                for (i, (key, rest)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(key).expect("strings serialize"));
                    out.push(':');
                    rest.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl Column {
    /// Compiles an Iceberg field with the Arrow field iceberg-rust derives from it.
    pub fn compile(field: &NestedField, arrow: &FieldRef) -> Result<Column, String> {
        let name = field.name.clone();
        let shape = match (field.field_type.as_ref(), arrow.data_type()) {
            (Type::Primitive(p), _) => {
                Shape::Scalar(Scalar::of(p).map_err(|e| format!("{name}: {e}"))?)
            }
            (Type::Struct(s), DataType::Struct(fields)) => Shape::Struct(
                s.fields()
                    .iter()
                    .zip(fields.iter())
                    .map(|(f, a)| Column::compile(f, a))
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("{name}.{e}"))?,
            ),
            (Type::List(l), DataType::List(element)) => Shape::List(Box::new(
                Column::compile(&l.element_field, element).map_err(|e| format!("{name}: {e}"))?,
            )),
            (Type::Map(m), DataType::Map(entries, _)) => {
                if !matches!(
                    m.key_field.field_type.as_ref(),
                    Type::Primitive(PrimitiveType::String)
                ) {
                    return Err(format!(
                        "{name}: map keys must be strings (JSON object keys are strings)"
                    ));
                }
                let DataType::Struct(kv) = entries.data_type() else {
                    return Err(format!("{name}: unexpected Arrow map type"));
                };
                Shape::Map(Box::new(
                    Column::compile(&m.value_field, &kv[1]).map_err(|e| format!("{name}: {e}"))?,
                ))
            }
            _ => return Err(format!("{name}: unexpected Arrow type {}", arrow.data_type())),
        };
        Ok(Column { name, required: field.required, shape, arrow: arrow.clone() })
    }

    /// Checks one value (`None`: the field is missing) and returns what the column does not
    /// hold of it: unknown fields of objects, and whole lists or maps with unknown fields.
    pub fn check<'n>(
        &self,
        value: Option<&'n Node<'n>>,
        path: &mut Path,
        c: Coercions,
    ) -> Result<Option<Rest<'n>>, FieldError> {
        let Some(node) = value.filter(|n| !n.is_null()) else {
            return if self.required {
                Err(path.error("is required and missing or null".into()))
            } else {
                Ok(None)
            };
        };
        match &self.shape {
            Shape::Scalar(s) => {
                convert(*s, node, c).map_err(|reason| path.error(reason))?;
                Ok(None)
            }
            Shape::Struct(children) => {
                let Json::Object(entries) = &node.value else {
                    return Err(path.error(format!("expected an object, got {}", describe(node))));
                };
                let mut rest = Vec::new();
                for child in children {
                    // The last entry of a repeated key, as `Node::get` reads it.
                    let entry = entries.iter().rev().find(|(k, _)| *k == child.name);
                    path.push_field(&child.name);
                    let r = child.check(entry.map(|(_, v)| v), path, c);
                    path.pop();
                    if let (Some(r), Some((key, _))) = (r?, entry) {
                        rest.push((key.as_ref(), r));
                    }
                }
                for (key, value) in entries {
                    if !children.iter().any(|c| c.name == *key) {
                        rest.push((key.as_ref(), Rest::Whole(value.raw)));
                    }
                }
                Ok((!rest.is_empty()).then_some(Rest::Fields(rest)))
            }
            Shape::List(element) => {
                let Json::Array(items) = &node.value else {
                    return Err(path.error(format!("expected an array, got {}", describe(node))));
                };
                let mut unknown = false;
                for (i, item) in items.iter().enumerate() {
                    path.push_index(i);
                    let r = element.check(Some(item), path, c);
                    path.pop();
                    unknown |= r?.is_some();
                }
                Ok(unknown.then_some(Rest::Whole(node.raw)))
            }
            Shape::Map(value) => {
                let Json::Object(entries) = &node.value else {
                    return Err(path.error(format!("expected an object, got {}", describe(node))));
                };
                let mut unknown = false;
                for (key, item) in entries {
                    path.push_key(key);
                    let r = value.check(Some(item), path, c);
                    path.pop();
                    unknown |= r?.is_some();
                }
                Ok(unknown.then_some(Rest::Whole(node.raw)))
            }
        }
    }

    /// Builds the Arrow array of this column from one value per row (`None`: missing).
    /// Values are expected to have passed [`Column::check`]; one that does not fails the
    /// whole build.
    pub fn build(
        &self,
        values: &[Option<&Node<'_>>],
        c: Coercions,
    ) -> Result<ArrayRef, FieldError> {
        let present = |v: &Option<&Node>| v.is_some_and(|n| !n.is_null());
        let nulls = || {
            let validity: Vec<bool> = values.iter().map(present).collect();
            let nulls = NullBuffer::from(validity);
            (nulls.null_count() > 0).then_some(nulls)
        };
        let err = |e: arrow_schema::ArrowError| FieldError {
            path: self.name.clone(),
            reason: e.to_string(),
        };
        match &self.shape {
            Shape::Scalar(s) => build_scalar(*s, self.arrow.data_type(), values, c)
                .map_err(|reason| FieldError { path: self.name.clone(), reason }),
            Shape::Struct(children) => {
                let DataType::Struct(fields) = self.arrow.data_type() else { unreachable!() };
                let arrays = children
                    .iter()
                    .map(|child| {
                        let vals: Vec<_> = values
                            .iter()
                            .map(|v| v.filter(|n| !n.is_null()).and_then(|n| n.get(&child.name)))
                            .collect();
                        child.build(&vals, c).map_err(|e| e.within(&self.name))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Arc::new(StructArray::try_new(fields.clone(), arrays, nulls()).map_err(err)?))
            }
            Shape::List(element) => {
                let DataType::List(element_field) = self.arrow.data_type() else { unreachable!() };
                let mut offsets = Vec::with_capacity(values.len() + 1);
                offsets.push(0i32);
                let mut items: Vec<Option<&Node>> = Vec::new();
                for v in values {
                    if let Some(Node { value: Json::Array(list), .. }) = v {
                        items.extend(list.iter().map(Some));
                    }
                    offsets.push(items.len() as i32);
                }
                let array = element.build(&items, c).map_err(|e| e.within(&self.name))?;
                let offsets = OffsetBuffer::new(offsets.into());
                Ok(Arc::new(
                    ListArray::try_new(element_field.clone(), offsets, array, nulls())
                        .map_err(err)?,
                ))
            }
            Shape::Map(value) => {
                let DataType::Map(entries_field, _) = self.arrow.data_type() else {
                    unreachable!()
                };
                let DataType::Struct(kv) = entries_field.data_type() else { unreachable!() };
                let mut offsets = Vec::with_capacity(values.len() + 1);
                offsets.push(0i32);
                let (mut keys, mut items): (Vec<&str>, Vec<Option<&Node>>) =
                    (Vec::new(), Vec::new());
                for v in values {
                    if let Some(Node { value: Json::Object(entries), .. }) = v {
                        // A repeated key keeps its last value, as everywhere else.
                        let last: std::collections::HashMap<&str, usize> =
                            entries.iter().enumerate().map(|(i, (k, _))| (k.as_ref(), i)).collect();
                        for (i, (key, item)) in entries.iter().enumerate() {
                            if last[key.as_ref()] == i {
                                keys.push(key);
                                items.push(Some(item));
                            }
                        }
                    }
                    offsets.push(keys.len() as i32);
                }
                let key_array: ArrayRef = Arc::new(StringArray::from(keys));
                let value_array = value.build(&items, c).map_err(|e| e.within(&self.name))?;
                let entries = StructArray::try_new(kv.clone(), vec![key_array, value_array], None)
                    .map_err(err)?;
                let offsets = OffsetBuffer::new(offsets.into());
                Ok(Arc::new(
                    MapArray::try_new(entries_field.clone(), offsets, entries, nulls(), false)
                        .map_err(err)?,
                ))
            }
        }
    }
}

impl FieldError {
    fn within(mut self, parent: &str) -> Self {
        self.path = format!("{parent}.{}", self.path);
        self
    }
}

/// The path of the value being checked, for error messages.
#[derive(Debug, Default)]
pub struct Path(Vec<String>);

impl Path {
    pub fn push_field(&mut self, name: &str) {
        self.0.push(if self.0.is_empty() { name.to_owned() } else { format!(".{name}") });
    }
    fn push_index(&mut self, i: usize) {
        self.0.push(format!("[{i}]"));
    }
    fn push_key(&mut self, key: &str) {
        self.0.push(format!("[{}]", serde_json::to_string(key).expect("strings serialize")));
    }
    pub fn pop(&mut self) {
        self.0.pop();
    }
    fn error(&self, reason: String) -> FieldError {
        FieldError { path: self.0.concat(), reason }
    }
}

/// A short description of a value for error messages: its kind and its text, cut short.
pub fn describe(node: &Node) -> String {
    const MAX: usize = 40;
    let raw = node.raw;
    let text = if raw.len() > MAX {
        let mut end = MAX;
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &raw[..end])
    } else {
        raw.to_owned()
    };
    match node.value {
        Json::Null => "null".into(),
        _ => format!("{} {text}", node.kind()),
    }
}

/// A converted scalar.
enum Value<'n> {
    Bool(bool),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    I128(i128),
    Str(&'n str),
    Bytes(Vec<u8>),
}

fn convert<'n>(s: Scalar, node: &'n Node<'n>, c: Coercions) -> Result<Value<'n>, String> {
    let wrong = || format!("expected {}, got {}", expectation(s), describe(node));
    let number = || -> Result<&'n str, String> {
        match &node.value {
            Json::Number(text) => Ok(text),
            Json::String(text) if c.numbers_in_strings => {
                let t = text.trim();
                if serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok()
                    && matches!(t.as_bytes().first(), Some(b'-' | b'0'..=b'9'))
                {
                    // Borrowed from the payload whenever the string has no escapes, which a
                    // number never needs.
                    match text {
                        Cow::Borrowed(b) => Ok(b.trim()),
                        Cow::Owned(_) => Err(wrong()),
                    }
                } else {
                    Err(wrong())
                }
            }
            _ => Err(wrong()),
        }
    };
    let string = || match &node.value {
        Json::String(text) => Ok(text.as_ref()),
        _ => Err(wrong()),
    };
    Ok(match s {
        Scalar::Boolean => match node.value {
            Json::Bool(b) => Value::Bool(b),
            _ => return Err(wrong()),
        },
        Scalar::Int => {
            let v = integer(number()?).ok_or_else(wrong)?;
            Value::I32(i32::try_from(v).map_err(|_| format!("{v} is out of range for int"))?)
        }
        Scalar::Long => Value::I64(integer(number()?).ok_or_else(|| {
            let t = number().unwrap_or_default();
            if is_integer_text(t) { format!("{t} is out of range for long") } else { wrong() }
        })?),
        Scalar::Float => {
            let v: f64 = number()?.parse().map_err(|_| wrong())?;
            let f = v as f32;
            if f.is_infinite() {
                return Err(format!("{v} is out of range for float"));
            }
            Value::F32(f)
        }
        Scalar::Double => {
            let v: f64 = number()?.parse().map_err(|_| wrong())?;
            if v.is_infinite() {
                return Err(format!("{} is out of range for double", number()?));
            }
            Value::F64(v)
        }
        Scalar::Decimal { precision, scale } => Value::I128(decimal(number()?, precision, scale)?),
        Scalar::Date => {
            let d =
                chrono::NaiveDate::parse_from_str(string()?, "%Y-%m-%d").map_err(|_| wrong())?;
            Value::I32(d.to_epoch_days())
        }
        Scalar::Time => {
            let t = string()?;
            let parsed = chrono::NaiveTime::parse_from_str(t, "%H:%M:%S%.f")
                .or_else(|_| chrono::NaiveTime::parse_from_str(t, "%H:%M"))
                .map_err(|_| wrong())?;
            let micros = chrono::Timelike::num_seconds_from_midnight(&parsed) as i64 * 1_000_000
                + (chrono::Timelike::nanosecond(&parsed) as i64 % 1_000_000_000) / 1000;
            Value::I64(micros)
        }
        Scalar::Timestamp | Scalar::Timestamptz => {
            Value::I64(timestamp_micros(string()?).ok_or_else(wrong)?)
        }
        Scalar::String => Value::Str(string()?),
        Scalar::Uuid => {
            let u = uuid::Uuid::parse_str(string()?).map_err(|_| wrong())?;
            Value::Bytes(u.as_bytes().to_vec())
        }
        Scalar::Fixed(n) => {
            let b =
                base64::engine::general_purpose::STANDARD.decode(string()?).map_err(|_| wrong())?;
            if b.len() != n {
                return Err(format!("expected {n} bytes (base64), got {}", b.len()));
            }
            Value::Bytes(b)
        }
        Scalar::Binary => Value::Bytes(
            base64::engine::general_purpose::STANDARD.decode(string()?).map_err(|_| wrong())?,
        ),
    })
}

/// What a column takes, for error messages.
fn expectation(s: Scalar) -> String {
    match s {
        Scalar::Boolean => "a boolean (boolean)".into(),
        Scalar::Int | Scalar::Long => format!("an integer ({})", s.name()),
        Scalar::Float | Scalar::Double | Scalar::Decimal { .. } => {
            format!("a number ({})", s.name())
        }
        Scalar::Date => "an ISO-8601 date string like \"2026-01-31\" (date)".into(),
        Scalar::Time => "an ISO-8601 time string like \"13:45:00.250\" (time)".into(),
        Scalar::Timestamp | Scalar::Timestamptz => {
            format!("an ISO-8601 timestamp string like \"2026-01-31T13:45:00.250Z\" ({})", s.name())
        }
        Scalar::String => "a string (string)".into(),
        Scalar::Uuid => "a UUID string (uuid)".into(),
        Scalar::Fixed(_) | Scalar::Binary => format!("a base64 string ({})", s.name()),
    }
}

fn is_integer_text(t: &str) -> bool {
    let digits = t.strip_prefix('-').unwrap_or(t);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// An integer written without fraction or exponent, within i64.
fn integer(t: &str) -> Option<i64> {
    if is_integer_text(t) { t.parse().ok() } else { None }
}

/// The unscaled value of a decimal literal (`-12.5`, `1e3`, `0.125E-1`) at `scale`, exact:
/// digits that the scale would cut off and values beyond the precision are errors, never
/// rounded.
fn decimal(text: &str, precision: u32, scale: u32) -> Result<i128, String> {
    let bad = || format!("{text} is not a number");
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_only = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty() || !digits_only(int_part) || !digits_only(frac_part) {
        return Err(bad());
    }
    let exponent = match exponent {
        None => 0,
        Some(e) => {
            let unsigned = e.strip_prefix(['-', '+']).unwrap_or(e);
            if unsigned.is_empty() || !digits_only(unsigned) {
                return Err(bad());
            }
            if int_part.bytes().chain(frac_part.bytes()).all(|b| b == b'0') {
                return Ok(0);
            }
            match e.parse::<i64>() {
                Ok(e) if e.abs() <= 1000 => e as i32,
                _ => return Err(format!("{text} does not fit decimal({precision}, {scale})")),
            }
        }
    };
    // value = digits × 10^(exponent − frac_len); unscaled = value × 10^scale.
    let mut digits: String = format!("{int_part}{frac_part}");
    let shift = exponent as i64 - frac_part.len() as i64 + scale as i64;
    if shift < 0 {
        let cut = (-shift) as usize;
        let keep = digits.len().saturating_sub(cut);
        if digits[keep..].bytes().any(|b| b != b'0') {
            return Err(format!("{text} has more than {scale} digits after the point"));
        }
        digits.truncate(keep);
    } else {
        if shift > 76 {
            return Err(format!("{text} does not fit decimal({precision}, {scale})"));
        }
        digits.extend(std::iter::repeat_n('0', shift as usize));
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > precision as usize {
        return Err(format!("{text} does not fit decimal({precision}, {scale})"));
    }
    let unscaled: i128 =
        if significant.is_empty() { 0 } else { significant.parse().map_err(|_| bad())? };
    Ok(if negative { -unscaled } else { unscaled })
}

/// Microseconds since the epoch of an ISO-8601 date-time: `T` or a space between date and
/// time, optional fraction (beyond microseconds truncated), optional `Z` or `±hh:mm` (then
/// the instant is taken in UTC; without one, the time is taken as UTC).
fn timestamp_micros(text: &str) -> Option<i64> {
    let t = text.trim();
    if t.len() < 16 {
        return None;
    }
    let normalized: Cow<str> = if t.as_bytes()[10] == b' ' {
        Cow::Owned(format!("{}T{}", &t[..10], &t[11..]))
    } else {
        Cow::Borrowed(t)
    };
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(&normalized) {
        return Some(dt.timestamp_micros());
    }
    if let Ok(dt) = chrono::DateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M%#z") {
        return Some(dt.timestamp_micros());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(&normalized, f).ok())
        .map(|dt| dt.and_utc().timestamp_micros())
}

fn build_scalar(
    s: Scalar,
    data_type: &DataType,
    values: &[Option<&Node<'_>>],
    c: Coercions,
) -> Result<ArrayRef, String> {
    let mut converted = Vec::with_capacity(values.len());
    for v in values {
        converted.push(match v.filter(|n| !n.is_null()) {
            Some(n) => Some(convert(s, n, c)?),
            None => None,
        });
    }
    macro_rules! collect {
        ($variant:ident) => {
            converted.into_iter().map(|v| match v {
                Some(Value::$variant(x)) => Some(x),
                _ => None,
            })
        };
    }
    let array: ArrayRef = match s {
        Scalar::Boolean => Arc::new(BooleanArray::from_iter(collect!(Bool))),
        Scalar::Int => Arc::new(Int32Array::from_iter(collect!(I32))),
        Scalar::Long => Arc::new(Int64Array::from_iter(collect!(I64))),
        Scalar::Float => Arc::new(Float32Array::from_iter(collect!(F32))),
        Scalar::Double => Arc::new(Float64Array::from_iter(collect!(F64))),
        Scalar::Decimal { precision, scale } => Arc::new(
            Decimal128Array::from_iter(collect!(I128))
                .with_precision_and_scale(precision as u8, scale as i8)
                .map_err(|e| e.to_string())?,
        ),
        Scalar::Date => Arc::new(Date32Array::from_iter(collect!(I32))),
        Scalar::Time => Arc::new(Time64MicrosecondArray::from_iter(collect!(I64))),
        Scalar::Timestamp | Scalar::Timestamptz => {
            let tz = match data_type {
                DataType::Timestamp(_, tz) => tz.clone(),
                _ => None,
            };
            Arc::new(TimestampMicrosecondArray::from_iter(collect!(I64)).with_timezone_opt(tz))
        }
        Scalar::String => Arc::new(StringArray::from_iter(collect!(Str))),
        Scalar::Binary => Arc::new(LargeBinaryArray::from_iter(collect!(Bytes))),
        Scalar::Uuid | Scalar::Fixed(_) => {
            let size = match data_type {
                DataType::FixedSizeBinary(n) => *n,
                _ => return Err(format!("unexpected Arrow type {data_type}")),
            };
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(collect!(Bytes), size)
                    .map_err(|e| e.to_string())?,
            )
        }
    };
    Ok(array)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact_or_refused() {
        assert_eq!(decimal("12.34", 12, 2), Ok(1234));
        assert_eq!(decimal("-0.5", 3, 2), Ok(-50));
        assert_eq!(decimal("7", 5, 2), Ok(700));
        assert_eq!(decimal("1.5e2", 5, 2), Ok(15000));
        assert_eq!(decimal("1250e-3", 5, 2), Ok(125));
        assert_eq!(decimal("12.340", 12, 2), Ok(1234), "trailing zeros fit");
        assert!(decimal("12.345", 12, 2).unwrap_err().contains("more than 2 digits"));
        assert!(decimal("1234567890123", 12, 2).unwrap_err().contains("does not fit"));
        assert_eq!(
            decimal("12345678901234567890123456.789012345678", 38, 12),
            Ok(12345678901234567890123456789012345678)
        );
        assert!(decimal("1.2.3", 5, 2).is_err());
        assert_eq!(decimal("0e100", 5, 2), Ok(0));
        assert_eq!(decimal("-0.000e-99999999999", 5, 2), Ok(0));
        assert!(decimal("1e99999999999", 5, 2).unwrap_err().contains("does not fit"));
        assert!(decimal("1e-99999999999", 5, 2).unwrap_err().contains("does not fit"));
        assert!(decimal("1ex", 5, 2).unwrap_err().contains("is not a number"));
        assert!(decimal(".5", 5, 2).is_err());
    }

    #[test]
    fn timestamps_take_iso_forms() {
        let base = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
        assert_eq!(timestamp_micros("2026-01-01T00:00:00Z"), Some(base));
        assert_eq!(timestamp_micros("2026-01-01 00:00:00"), Some(base));
        assert_eq!(timestamp_micros("2026-01-01T01:00:00+01:00"), Some(base));
        assert_eq!(timestamp_micros("2026-01-01T00:00:00.000250Z"), Some(base + 250));
        assert_eq!(timestamp_micros("2026-01-01T00:00:00.0002509Z"), Some(base + 250));
        assert_eq!(timestamp_micros("2026-01-01T00:00"), Some(base));
        assert_eq!(timestamp_micros("2026-01-01"), None);
        assert_eq!(timestamp_micros("yesterday at noon"), None);
    }
}
