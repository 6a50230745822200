//! Declaring a typed table: an engine's `createTable` (Spark `CREATE TABLE`, PyIceberg
//! `create_table`) or a `[tables.<name>]` config entry names the user's columns; Zombi adds
//! its system columns (SPEC §4 field ids kept), its partition spec and sort order, and
//! refuses, with a message that says what to change, what it cannot honour.

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::TableCreation;
use iceberg::spec::{ListType, MapType, NestedField, NestedFieldRef, Schema, StructType, Type};
use zombi_shared::DEAD_LETTER_SUFFIX;
use zombi_shared::config::TableOverrides;
use zombi_shared::config::columns::{ColumnDecl, ColumnType, parse_columns};

use super::convert::Column;
use super::{MODE, USER_PROPERTIES, check_properties};
use crate::layout;

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
    super::evolve::check_fields(&creation.schema)?;
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

/// The creation of a typed table declared in the node's config (`[tables.<name>]`), to go
/// through [`declare`] like an engine's.
pub fn from_config(name: &str, table: &TableOverrides) -> Result<TableCreation, String> {
    let text = table.columns.as_deref().unwrap_or_default();
    let columns = parse_columns(text).map_err(|e| format!("tables.{name}.columns: {e}"))?;
    let mut next = 1;
    let fields: Vec<NestedFieldRef> = columns.iter().map(|c| field(c, &mut next)).collect();
    let schema = Schema::builder()
        .with_fields(fields)
        .build()
        .map_err(|e| format!("tables.{name}.columns: {}", e.message()))?;
    Ok(TableCreation::builder()
        .name(name.to_owned())
        .schema(schema)
        .properties(table.typed_properties().into_iter().collect::<HashMap<_, _>>())
        .build())
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

/// Creates the typed tables the config declares that the catalog does not hold yet; a
/// declared table the catalog holds keeps its own schema (it evolves through the catalog),
/// and what the config says beyond it is logged.
pub async fn create_configured(
    catalog: &crate::catalog::ZombiCatalog,
    config: &zombi_shared::config::NodeConfig,
) -> Result<(), String> {
    use iceberg::Catalog as _;
    for (name, table) in &config.tables {
        if table.mode != zombi_shared::config::TableMode::Typed {
            continue;
        }
        let creation = from_config(name, table)?;
        let ident = catalog.ident(name);
        match catalog.load_table(&ident).await {
            Ok(existing) => {
                let schema = existing.metadata().current_schema();
                if !super::is_typed(existing.metadata()) {
                    tracing::error!(table = %name, "the config declares a typed table, but the catalog holds a raw table of this name: it stays raw");
                    continue;
                }
                let missing: Vec<&str> = creation
                    .schema
                    .as_struct()
                    .fields()
                    .iter()
                    .filter(|f| schema.field_by_name(&f.name).is_none())
                    .map(|f| f.name.as_str())
                    .collect();
                if !missing.is_empty() {
                    tracing::warn!(table = %name, ?missing, "the config declares columns the table does not have; add them through the catalog (ALTER TABLE … ADD COLUMN)");
                }
            }
            Err(e) if e.kind() == iceberg::ErrorKind::TableNotFound => {
                match catalog.create_table(ident.namespace(), creation).await {
                    Ok(_) => {
                        tracing::info!(table = %name, "created the typed table the config declares")
                    }
                    // The warehouse holds it and adoption, still running, will bring it.
                    Err(e) if e.kind() == iceberg::ErrorKind::TableAlreadyExists => {
                        tracing::warn!(table = %name, error = %e.message(), "the config declares a table the warehouse already holds; it is adopted as it is")
                    }
                    Err(e) => return Err(format!("tables.{name}: {}", e.message())),
                }
            }
            Err(e) => return Err(format!("tables.{name}: cannot load the table: {e}")),
        }
    }
    Ok(())
}
