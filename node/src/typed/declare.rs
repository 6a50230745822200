//! Declaring a typed table: an engine's `createTable` (Spark `CREATE TABLE`, PyIceberg
//! `create_table`) or a `[tables.<name>]` config entry names the user's columns; Zombi adds
//! its system columns (SPEC §4 field ids kept), its partition spec and sort order, and
//! refuses, with a message that says what to change, what it cannot honour.

use std::sync::Arc;

use iceberg::TableCreation;
use iceberg::spec::{ListType, MapType, NestedField, NestedFieldRef, Schema, StructType, Type};

use super::convert::Column;
use super::{MODE, USER_PROPERTIES, check_properties};
use crate::layout;

use zombi_shared::DEAD_LETTER_SUFFIX;

/// Turns a user's table creation into a typed Zombi table creation.
pub fn declare(creation: TableCreation, table_location: &str) -> Result<TableCreation, String> {
    let name = creation.name.clone();
    if name.ends_with(DEAD_LETTER_SUFFIX) {
        return Err(format!(
            "table names ending in {DEAD_LETTER_SUFFIX} are reserved for dead-letter tables"
        ));
    }
    if let Some(location) = &creation.location
        && location.trim_end_matches('/') != table_location
    {
        return Err(format!(
            "a Zombi table lives at {table_location}; remove the LOCATION ({location})"
        ));
    }
    if creation.partition_spec.as_ref().is_some_and(|s| !s.fields().is_empty()) {
        return Err(
            "Zombi partitions every table by event_date and event_hour itself; declare the table without PARTITIONED BY (filters on event_time, event_date and event_hour prune files)".into(),
        );
    }
    if creation.sort_order.as_ref().is_some_and(|o| !o.fields.is_empty()) {
        return Err(
            "Zombi sorts every table by timestamp_ms, sequence itself; declare the table without a write order".into(),
        );
    }
    let user = creation.schema.as_struct().fields();
    if user.is_empty() {
        return Err("a typed table needs at least one column".into());
    }
    let system = layout::schema();
    for field in user {
        if system.as_struct().fields().iter().any(|s| s.name.eq_ignore_ascii_case(&field.name)) {
            return Err(format!(
                "column {} clashes with a system column every Zombi table has ({}); rename it",
                field.name,
                system_names().join(", ")
            ));
        }
    }
    let mut props = creation.properties.clone();
    for (key, value) in &props {
        match key.as_str() {
            "format-version" if value != "2" => {
                return Err(format!("Zombi tables are Iceberg format version 2, not {value}"));
            }
            "write.format.default" if !value.eq_ignore_ascii_case("parquet") => {
                return Err(format!("Zombi writes Parquet data files, not {value}"));
            }
            _ => {}
        }
    }
    if props.contains_key(MODE) || props.contains_key("zombi.layout-version") {
        return Err(format!("table property {MODE} and zombi.layout-version are set by Zombi"));
    }
    check_properties(&props)?;
    super::check_dead_letter_name(&name, &props)?;
    for (key, values) in USER_PROPERTIES {
        props.entry((*key).to_owned()).or_insert_with(|| values[0].to_owned());
    }
    props.extend(layout::table_properties());
    props.insert(MODE.to_owned(), "typed".to_owned());

    let mut next = layout::FIELD_EVENT_HOUR + 1;
    let user: Vec<NestedFieldRef> = user.iter().map(|f| renumber(f, &mut next)).collect();
    let fields = system.as_struct().fields().iter().cloned().chain(user);
    let schema = Schema::builder()
        .with_schema_id(0)
        .with_fields(fields)
        .build()
        .map_err(|e| format!("invalid schema: {}", e.message()))?;
    // Every column must convert from JSON: compile them as ingest and flush will.
    let arrow = iceberg::arrow::schema_to_arrow_schema(&schema)
        .map_err(|e| format!("invalid schema: {}", e.message()))?;
    for (i, field) in schema.as_struct().fields().iter().enumerate() {
        if !layout::is_system_field(field.id) {
            Column::compile(field, &Arc::new(arrow.field(i).clone()))?;
        }
    }
    Ok(TableCreation::builder()
        .name(name)
        .location(table_location.to_owned())
        .schema(schema)
        .partition_spec(layout::partition_spec())
        .sort_order(layout::sort_order())
        .properties(props)
        .build())
}

fn system_names() -> Vec<String> {
    layout::schema().as_struct().fields().iter().map(|f| f.name.clone()).collect()
}

/// A copy of `field` with fresh ids from `next` (the ids a client sent may clash with the
/// system columns'; Iceberg renumbers the whole schema level by level anyway).
pub(crate) fn renumber(field: &NestedField, next: &mut i32) -> NestedFieldRef {
    let id = *next;
    *next += 1;
    let field_type = match field.field_type.as_ref() {
        Type::Struct(s) => {
            Type::Struct(StructType::new(s.fields().iter().map(|f| renumber(f, next)).collect()))
        }
        Type::List(l) => Type::List(ListType { element_field: renumber(&l.element_field, next) }),
        Type::Map(m) => Type::Map(MapType {
            key_field: renumber(&m.key_field, next),
            value_field: renumber(&m.value_field, next),
        }),
        p => p.clone(),
    };
    let mut out = NestedField::new(id, field.name.clone(), field_type, field.required);
    out.doc = field.doc.clone();
    Arc::new(out)
}
