//! A table's Iceberg fields compiled into [`Column`]s, with the Arrow fields iceberg-rust
//! derives from them.

use arrow_schema::{DataType, FieldRef};
use iceberg::spec::{NestedField, PrimitiveType, Type};

use super::*;

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
}
