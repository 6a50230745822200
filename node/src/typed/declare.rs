//! Declaring a typed table: an engine's `createTable` (Spark `CREATE TABLE`, PyIceberg
//! `create_table`) or a `[tables.<name>]` config entry names the user's columns; Zombi adds
//! its system columns (SPEC §4 field ids kept), its partition spec and sort order, and
//! refuses, with a message that says what to change, what it cannot honour.

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::TableCreation;
use iceberg::spec::{
    ListType, MapType, NestedField, NestedFieldRef, Schema, StructType, Type,
    UnboundPartitionField, UnboundPartitionSpec,
};
use zombi_shared::DEAD_LETTER_SUFFIX;
use zombi_shared::config::TableOverrides;
use zombi_shared::config::columns::{ColumnDecl, ColumnType, parse_columns};

use super::convert::Column;
use super::{TypedError, check_properties};
use crate::schema;
use crate::schema::properties::{LAYOUT_VERSION, TABLE_MODE as MODE, USER_PROPERTIES};

/// Turns a user's table creation into a typed Zombi table creation.
pub fn declare(creation: TableCreation, table_location: &str) -> Result<TableCreation, TypedError> {
    let name = creation.name.clone();
    if name.ends_with(DEAD_LETTER_SUFFIX) {
        return Err(TypedError::Declaration(format!(
            "table names ending in {DEAD_LETTER_SUFFIX} are reserved for dead-letter tables"
        )));
    }
    if let Some(location) = &creation.location
        && location.trim_end_matches('/') != table_location
    {
        return Err(TypedError::Declaration(format!(
            "a Zombi table lives at {table_location}; remove the LOCATION ({location})"
        )));
    }
    if creation.sort_order.as_ref().is_some_and(|o| !o.fields.is_empty()) {
        return Err(TypedError::Declaration(
            "Zombi sorts every table by timestamp_ms, sequence itself; declare the table without a write order".into(),
        ));
    }
    super::evolve::check_fields(&creation.schema).map_err(TypedError::Declaration)?;
    let user = creation.schema.as_struct().fields();
    if user.is_empty() {
        return Err(TypedError::Declaration("a typed table needs at least one column".into()));
    }
    let system = schema::schema();
    // A column named and typed as a system column that the spec partitions by is that
    // column: `event_time timestamp … PARTITIONED BY (days(event_time))`.
    let spec_sources: Vec<i32> =
        creation.partition_spec.iter().flat_map(|s| s.fields()).map(|f| f.source_id).collect();
    let mut own = Vec::new();
    for field in user {
        match system.as_struct().fields().iter().find(|s| s.name.eq_ignore_ascii_case(&field.name))
        {
            Some(s)
                if s.name == field.name
                    && s.field_type == field.field_type
                    && spec_sources.contains(&field.id) => {}
            Some(s) => {
                return Err(TypedError::Declaration(format!(
                    "column {} clashes with a system column every Zombi table has ({}); rename it (to partition by the system column, declare it as {} {})",
                    field.name,
                    system_names().join(", "),
                    s.name,
                    s.field_type
                )));
            }
            None => own.push(field.clone()),
        }
    }
    if own.is_empty() {
        return Err(TypedError::Declaration("a typed table needs at least one column".into()));
    }
    let mut props = creation.properties.clone();
    for (key, value) in &props {
        match key.as_str() {
            "format-version" if value != "2" => {
                return Err(TypedError::Declaration(format!(
                    "Zombi tables are Iceberg format version 2, not {value}"
                )));
            }
            "write.format.default" if !value.eq_ignore_ascii_case("parquet") => {
                return Err(TypedError::Declaration(format!(
                    "Zombi writes Parquet data files, not {value}"
                )));
            }
            _ => {}
        }
    }
    if props.contains_key(MODE) || props.contains_key(LAYOUT_VERSION) {
        return Err(TypedError::Declaration(format!(
            "table properties {MODE} and {LAYOUT_VERSION} are set by Zombi"
        )));
    }
    check_properties(&props)?;
    super::check_dead_letter_name(&name, &props)?;
    for (key, values) in USER_PROPERTIES {
        props.entry((*key).to_owned()).or_insert_with(|| values[0].to_owned());
    }
    props.extend(schema::table_properties());
    props.insert(MODE.to_owned(), "typed".to_owned());

    let mut next = schema::FIELD_EVENT_HOUR + 1;
    let user: Vec<NestedFieldRef> = own.iter().map(|f| renumber(f, &mut next)).collect();
    let fields = system.as_struct().fields().iter().cloned().chain(user);
    let schema = Schema::builder()
        .with_schema_id(0)
        .with_fields(fields)
        .build()
        .map_err(|e| TypedError::Declaration(format!("invalid schema: {}", e.message())))?;
    // Every column must convert from JSON: compile them as ingest and flush will.
    let arrow = iceberg::arrow::schema_to_arrow_schema(&schema)
        .map_err(|e| TypedError::Declaration(format!("invalid schema: {}", e.message())))?;
    for (i, field) in schema.as_struct().fields().iter().enumerate() {
        if !schema::is_system_field(field.id) {
            Column::compile(field, &Arc::new(arrow.field(i).clone()))
                .map_err(TypedError::Declaration)?;
        }
    }
    let spec = match creation.partition_spec.as_ref().filter(|s| !s.fields().is_empty()) {
        None => schema::partition_spec(),
        Some(spec) => renumber_spec(spec, &creation.schema, &schema)?,
    };
    Ok(TableCreation::builder()
        .name(name)
        .location(table_location.to_owned())
        .schema(schema)
        .partition_spec(spec)
        .sort_order(schema::sort_order())
        .properties(props)
        .build())
}

/// The client's `spec` (source ids of the client's `declared` schema) over the table's
/// `schema`, checked ([`schema::partitioning::check_spec`]).
fn renumber_spec(
    spec: &UnboundPartitionSpec,
    declared: &Schema,
    schema: &Schema,
) -> Result<UnboundPartitionSpec, TypedError> {
    let refuse = TypedError::Declaration;
    let mut fields = Vec::new();
    for field in spec.fields() {
        let name = declared.name_by_field_id(field.source_id).ok_or_else(|| {
            refuse(format!("partition field {}: its source column is not declared", field.name))
        })?;
        let source = schema.as_struct().field_by_name(name).ok_or_else(|| {
            refuse(format!(
                "partition field {}: partition by a top-level column, not {name}",
                field.name
            ))
        })?;
        fields.push(UnboundPartitionField {
            source_id: source.id,
            field_id: None,
            ..field.clone()
        });
    }
    let spec = UnboundPartitionSpec::builder()
        .with_spec_id(0)
        .add_partition_fields(fields)
        .map_err(|e| refuse(format!("invalid partition spec: {}", e.message())))?
        .build();
    schema::partitioning::bind_checked(schema, spec).map_err(refuse)
}

fn system_names() -> Vec<String> {
    schema::schema().as_struct().fields().iter().map(|f| f.name.clone()).collect()
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

/// The creation of a typed table declared in the node's config (`[tables.<name>]`), to go
/// through [`declare`] like an engine's.
pub fn from_config(name: &str, table: &TableOverrides) -> Result<TableCreation, TypedError> {
    let text = table.columns.as_deref().unwrap_or_default();
    let columns = parse_columns(text)
        .map_err(|e| TypedError::Declaration(format!("tables.{name}.columns: {e}")))?;
    let mut next = 1;
    let mut fields: Vec<NestedFieldRef> = columns.iter().map(|c| field(c, &mut next)).collect();
    let partition_by = table.partition_by.as_deref().unwrap_or_default();
    let invalid = |e: String| TypedError::Declaration(format!("tables.{name}.{e}"));
    // System columns the spec names join the declaration as themselves (see `declare`).
    for column in schema::partitioning::partition_by_columns(partition_by).map_err(invalid)? {
        let system = schema::schema();
        if let Some(s) = system.as_struct().field_by_name(column)
            && !fields.iter().any(|f| f.name == column)
        {
            fields.push(Arc::new(NestedField::new(next, column, (*s.field_type).clone(), false)));
            next += 1;
        }
    }
    let schema = Schema::builder()
        .with_fields(fields)
        .build()
        .map_err(|e| TypedError::Declaration(format!("tables.{name}.columns: {}", e.message())))?;
    let mut creation = TableCreation::builder()
        .name(name.to_owned())
        .schema(schema.clone())
        .properties(table.typed_properties().into_iter().collect::<HashMap<_, _>>())
        .build();
    if !partition_by.is_empty() {
        let spec =
            schema::partitioning::parse_partition_by(&schema, partition_by).map_err(invalid)?;
        creation.partition_spec = Some(spec);
    }
    Ok(creation)
}

fn field(c: &ColumnDecl, next: &mut i32) -> NestedFieldRef {
    let id = *next;
    *next += 1;
    Arc::new(NestedField::new(id, c.name.clone(), iceberg_type(&c.column_type, next), c.required))
}

fn iceberg_type(t: &ColumnType, next: &mut i32) -> Type {
    use iceberg::spec::PrimitiveType as P;
    let mut id = || {
        *next += 1;
        *next - 1
    };
    match t {
        ColumnType::Boolean => Type::Primitive(P::Boolean),
        ColumnType::Int => Type::Primitive(P::Int),
        ColumnType::Long => Type::Primitive(P::Long),
        ColumnType::Float => Type::Primitive(P::Float),
        ColumnType::Double => Type::Primitive(P::Double),
        ColumnType::Decimal { precision, scale } => {
            Type::Primitive(P::Decimal { precision: *precision, scale: *scale })
        }
        ColumnType::Date => Type::Primitive(P::Date),
        ColumnType::Time => Type::Primitive(P::Time),
        ColumnType::Timestamp => Type::Primitive(P::Timestamp),
        ColumnType::Timestamptz => Type::Primitive(P::Timestamptz),
        ColumnType::String => Type::Primitive(P::String),
        ColumnType::Uuid => Type::Primitive(P::Uuid),
        ColumnType::Fixed(n) => Type::Primitive(P::Fixed(*n)),
        ColumnType::Binary => Type::Primitive(P::Binary),
        ColumnType::Struct(fields) => {
            Type::Struct(StructType::new(fields.iter().map(|f| field(f, next)).collect()))
        }
        ColumnType::List(element) => {
            let element_id = id();
            let element = iceberg_type(element, next);
            Type::List(ListType::new(NestedField::list_element(element_id, element, false).into()))
        }
        ColumnType::Map(key, value) => {
            let (key_id, value_id) = (id(), id());
            let key = iceberg_type(key, next);
            let value = iceberg_type(value, next);
            Type::Map(MapType::new(
                NestedField::map_key_element(key_id, key).into(),
                NestedField::map_value_element(value_id, value, false).into(),
            ))
        }
    }
}
