//! Schema and property changes of typed tables that engines commit through the catalog
//! (`ALTER TABLE … ADD COLUMN`, PyIceberg's `update_schema()`, `SET TBLPROPERTIES`): what
//! Zombi accepts, because events accepted before the change still convert after it.
//!
//! Accepted: new optional columns (also inside structs), int → long, float → double,
//! decimal(p, s) → decimal(p', s) with p' ≥ p, required → optional, column order, and the
//! `zombi.*` properties of [`super::USER_PROPERTIES`]. Refused, with a reason: dropping or
//! renaming a column (JSON fields map to columns by name), narrowing or changing a type,
//! optional → required, and any change to a system column or to a raw table's schema.
//!
//! Partition specs (`ALTER TABLE … ADD/DROP PARTITION FIELD`, PyIceberg's
//! `update_spec()`) change on raw and typed tables alike, to a spec that
//! [`schema::partitioning::check_spec`] accepts; a column a spec partitions by keeps its type.

use std::collections::HashMap;

use iceberg::spec::{NestedField, PrimitiveType, Schema, TableMetadata, Type};

use super::json::{Json, Node};

use super::{TypedError, check_properties, is_typed};
use crate::schema;
use crate::schema::properties::{LAYOUT_VERSION, TABLE_MODE};

/// Checks that `next` (a table's metadata after an engine's update) is a change Zombi can
/// honour from `current`.
pub fn check_update(current: &TableMetadata, next: &TableMetadata) -> Result<(), TypedError> {
    let (old, new) = (current.current_schema(), next.current_schema());
    let added: Vec<i32> = next
        .schemas_iter()
        .map(|s| s.schema_id())
        .filter(|id| current.schema_by_id(*id).is_none())
        .collect();
    if added.iter().any(|id| *id != next.current_schema_id()) {
        return Err(TypedError::SchemaChange(
            "a new schema must become the table's current schema (add-schema with set-current-schema -1)".into(),
        ));
    }
    if !added.is_empty() || old.schema_id() != new.schema_id() || old.as_struct() != new.as_struct()
    {
        if !is_typed(current) {
            return Err(TypedError::SchemaChange(
                "the schema of a raw table is Zombi's fixed layout; declare a typed table (CREATE TABLE with columns) to have columns of your own".into(),
            ));
        }
        check_schema(old, new).map_err(TypedError::SchemaChange)?;
    }
    check_property_change(current.properties(), next.properties())?;
    check_specs(current, next).map_err(TypedError::SchemaChange)?;
    if is_typed(next) {
        super::TypedTable::of(next)?;
    }
    Ok(())
}

/// A new default spec must be one Zombi can keep ([`schema::partitioning::check_spec`]), and
/// a column any spec partitions by keeps its type (old files' partition values are of it).
fn check_specs(current: &TableMetadata, next: &TableMetadata) -> Result<(), String> {
    let spec = next.default_partition_spec();
    if current.partition_spec_by_id(spec.spec_id()) != Some(spec) {
        schema::partitioning::check_spec(next.current_schema(), spec)?;
    }
    let (old, new) = (current.current_schema(), next.current_schema());
    for field in next.partition_specs_iter().flat_map(|s| s.fields()) {
        let (Some(was), Some(is)) =
            (old.field_by_id(field.source_id), new.field_by_id(field.source_id))
        else {
            continue;
        };
        if was.field_type != is.field_type {
            return Err(format!(
                "column {} keeps its type {}: partition field {} is computed from it",
                was.name, was.field_type, field.name
            ));
        }
    }
    Ok(())
}

fn check_property_change(
    old: &HashMap<String, String>,
    new: &HashMap<String, String>,
) -> Result<(), TypedError> {
    for key in [TABLE_MODE, LAYOUT_VERSION] {
        if old.get(key) != new.get(key) {
            return Err(TypedError::SchemaChange(format!(
                "table property {key} is Zombi's and cannot change"
            )));
        }
    }
    check_properties(new)
}

fn check_schema(old: &Schema, new: &Schema) -> Result<(), String> {
    let old_ids = all_ids(old);
    let new_ids = all_ids(new);
    for &(id, _) in &old_ids {
        let was = old.field_by_id(id).expect("listed");
        let name = old.name_by_field_id(id).unwrap_or(&was.name).to_owned();
        let Some(now) = new.field_by_id(id) else {
            return Err(format!(
                "dropping column {name} is not supported: Zombi maps JSON fields to columns by name, and stored events still carry it"
            ));
        };
        let new_name = new.name_by_field_id(id).unwrap_or(&now.name);
        if schema::is_system_field(id) && old.as_struct().field_by_id(id).is_some() {
            if was != now {
                return Err(format!("system column {name} cannot change"));
            }
            continue;
        }
        if new_name != name {
            return Err(format!(
                "renaming column {name} to {new_name} is not supported: Zombi maps JSON fields to columns by name; add a new column instead"
            ));
        }
        if !was.required && now.required {
            return Err(format!(
                "column {name} cannot become required: events without it were accepted"
            ));
        }
        if !widens(&was.field_type, &now.field_type) {
            return Err(format!(
                "column {name} cannot change from {} to {}: Zombi takes int → long, float → double and wider decimals of the same scale",
                was.field_type, now.field_type
            ));
        }
    }
    check_fields(new)?;
    for &(id, parent) in &new_ids {
        let field = new.field_by_id(id).expect("listed");
        if old.field_by_id(id).is_none() {
            let name = new.name_by_field_id(id).unwrap_or(&field.name);
            if field.required && !is_child_of_new(old, &new_ids, parent) {
                return Err(format!(
                    "new column {name} must be optional: events without it were accepted"
                ));
            }
            if schema::schema()
                .as_struct()
                .fields()
                .iter()
                .any(|s| s.name.eq_ignore_ascii_case(name))
            {
                return Err(format!("column {name} clashes with a system column"));
            }
        }
    }
    Ok(())
}

/// Refuses what no column of a typed table may have: an empty name, or a default value
/// (defaults are Iceberg format v3).
pub fn check_fields(schema: &Schema) -> Result<(), String> {
    for (id, _) in all_ids(schema) {
        let field = schema.field_by_id(id).expect("listed");
        if field.name.is_empty() {
            return Err("every column and field needs a name".into());
        }
        if matches!(field.field_type.as_ref(), Type::Struct(s) if s.fields().is_empty()) {
            return Err(format!("struct column {} needs at least one field", field.name));
        }
        if field.initial_default.is_some() || field.write_default.is_some() {
            return Err(format!(
                "column {} has a default value: defaults need Iceberg format v3",
                field.name
            ));
        }
    }
    Ok(())
}

/// Whether `next` can hold every value of `was` (same kind; primitive widening only).
fn widens(was: &Type, next: &Type) -> bool {
    use PrimitiveType as P;
    match (was, next) {
        (Type::Primitive(a), Type::Primitive(b)) => match (a, b) {
            (P::Int, P::Long) | (P::Float, P::Double) => true,
            (P::Decimal { precision: p1, scale: s1 }, P::Decimal { precision: p2, scale: s2 }) => {
                s1 == s2 && p2 >= p1
            }
            _ => a == b,
        },
        (Type::Struct(_), Type::Struct(_))
        | (Type::List(_), Type::List(_))
        | (Type::Map(_), Type::Map(_)) => true,
        _ => false,
    }
}

/// A required field is fine inside a struct, list or map that is itself new.
fn is_child_of_new(old: &Schema, ids: &[(i32, Option<i32>)], mut parent: Option<i32>) -> bool {
    while let Some(p) = parent {
        if old.field_by_id(p).is_none() {
            return true;
        }
        parent = ids.iter().find(|(id, _)| *id == p).and_then(|(_, up)| *up);
    }
    false
}

/// Every field id of a schema, nested ones included, each with its parent's.
fn all_ids(schema: &Schema) -> Vec<(i32, Option<i32>)> {
    fn walk(f: &NestedField, parent: Option<i32>, out: &mut Vec<(i32, Option<i32>)>) {
        out.push((f.id, parent));
        let me = Some(f.id);
        match f.field_type.as_ref() {
            Type::Struct(s) => s.fields().iter().for_each(|c| walk(c, me, out)),
            Type::List(l) => walk(&l.element_field, me, out),
            Type::Map(m) => {
                walk(&m.key_field, me, out);
                walk(&m.value_field, me, out);
            }
            Type::Primitive(_) => {}
        }
    }
    let mut out = Vec::new();
    schema.as_struct().fields().iter().for_each(|f| walk(f, None, &mut out));
    out
}

/// The type a new field's first value calls for: boolean, long (integers), double (other
/// numbers), string, a list of its first non-null element's type, or a struct of its
/// fields' types (all optional). `None` while it cannot tell: null, an empty list or
/// object, or nothing but nulls.
pub fn infer(value: &Node) -> Option<Type> {
    use iceberg::spec::{ListType, StructType};
    Some(match &value.value {
        Json::Null => return None,
        Json::Bool(_) => Type::Primitive(PrimitiveType::Boolean),
        Json::Number(text) => {
            let digits = text.strip_prefix('-').unwrap_or(text);
            if digits.bytes().all(|b| b.is_ascii_digit()) && text.parse::<i64>().is_ok() {
                Type::Primitive(PrimitiveType::Long)
            } else {
                Type::Primitive(PrimitiveType::Double)
            }
        }
        Json::String(_) => Type::Primitive(PrimitiveType::String),
        Json::Array(items) => {
            let element = items.iter().find_map(infer)?;
            Type::List(ListType::new(NestedField::list_element(0, element, false).into()))
        }
        Json::Object(entries) => {
            let mut fields: Vec<(String, Type)> = Vec::new();
            for (key, v) in entries {
                if let Some(t) = infer(v) {
                    match fields.iter_mut().find(|(k, _)| k == key) {
                        Some(f) => f.1 = t,
                        None => fields.push((key.to_string(), t)),
                    }
                }
            }
            if fields.is_empty() {
                return None;
            }
            Type::Struct(StructType::new(
                fields.into_iter().map(|(k, t)| NestedField::optional(0, k, t).into()).collect(),
            ))
        }
    })
}
