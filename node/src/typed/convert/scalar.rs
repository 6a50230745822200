//! The scalar types of typed columns and how one JSON value converts into each: exactly,
//! or with a reason it does not.

use std::borrow::Cow;

use base64::Engine as _;
use iceberg::spec::PrimitiveType;

use super::*;
use crate::typed::json::{Json, Node};

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
    pub(super) fn name(&self) -> String {
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

    pub(super) fn of(p: &PrimitiveType) -> Result<Self, String> {
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

/// A converted scalar.
pub(super) enum Value<'n> {
    Bool(bool),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    I128(i128),
    Str(&'n str),
    Bytes(Vec<u8>),
}

pub(super) fn convert<'n>(
    s: Scalar,
    node: &'n Node<'n>,
    c: Coercions,
) -> Result<Value<'n>, String> {
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
pub(super) fn expectation(s: Scalar) -> String {
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

pub(super) fn is_integer_text(t: &str) -> bool {
    let digits = t.strip_prefix('-').unwrap_or(t);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// An integer written without fraction or exponent, within i64.
pub(super) fn integer(t: &str) -> Option<i64> {
    if is_integer_text(t) { t.parse().ok() } else { None }
}

/// The unscaled value of a decimal literal (`-12.5`, `1e3`, `0.125E-1`) at `scale`, exact:
/// digits that the scale would cut off and values beyond the precision are errors, never
/// rounded.
pub(super) fn decimal(text: &str, precision: u32, scale: u32) -> Result<i128, String> {
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
pub(super) fn timestamp_micros(text: &str) -> Option<i64> {
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
