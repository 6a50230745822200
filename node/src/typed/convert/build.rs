//! Many events built into one Arrow array per column, at flush and for hot reads.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, FixedSizeBinaryArray, Float32Array,
    Float64Array, Int32Array, Int64Array, LargeBinaryArray, ListArray, MapArray, StringArray,
    StructArray, Time64MicrosecondArray, TimestampMicrosecondArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::DataType;

use super::scalar::{Value, convert};
use super::*;
use crate::typed::json::{Json, Node};

impl Column {
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
