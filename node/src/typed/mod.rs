//! Typed tables: JSON payload fields become real Iceberg columns.
//!
//! A typed table is an Iceberg table of Zombi's layout (the ten system columns with their
//! SPEC §4 field ids, the hour partition spec, the sort order) plus the user's columns,
//! and its table properties say how events map onto them ([`Settings`]). The table's
//! metadata is the only place this lives: the combiner checks events against the current
//! schema ([`TypedTable::check`]) before it acknowledges them, and the flusher and the hot
//! readers convert stored JSON payloads into columns of the schema current when they run
//! ([`TypedTable::to_batch`]). Raw tables (today's layout) have none of this.
//!
//! - [`declare`]: a `createTable` request → a Zombi table creation, or a clear refusal;
//! - [`convert`]: JSON values → Arrow arrays, and the per-field checks;
//! - [`json`]: the JSON tree both read.

pub mod convert;
pub mod declare;
mod error;
pub mod evolve;
pub mod json;
mod registry;

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef as ArrowSchemaRef;
use iceberg::spec::{SchemaRef, TableMetadata};
use zombi_shared::wire::Payload;

use crate::schema::{self, Row, dead_letter, properties};
use convert::{Coercions, Column, FieldError, Path, Rest};
pub use error::TypedError;
pub use registry::{Registry, Typing};

use properties::{EVOLVE, NUMBERS_IN_STRINGS, ON_ERROR, UNKNOWN_FIELDS, USER_PROPERTIES};

/// How a typed table treats its events, from its table properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `zombi.evolve = additive`: a new top-level field becomes a new optional column.
    pub additive: bool,
    /// `zombi.on-error = dead_letter`: an event that does not fit goes to the table's
    /// dead-letter table (acknowledged) instead of refusing its request.
    pub dead_letter: bool,
    /// `zombi.unknown-fields = keep`: fields no column holds go to `payload` as JSON.
    pub keep_unknown: bool,
    pub coercions: Coercions,
}

impl Settings {
    pub fn from_properties(props: &HashMap<String, String>) -> Result<Self, TypedError> {
        check_properties(props)?;
        let get = |key: &str| props.get(key).map(String::as_str);
        Ok(Settings {
            additive: get(EVOLVE) == Some("additive"),
            dead_letter: get(ON_ERROR) == Some("dead_letter"),
            keep_unknown: get(UNKNOWN_FIELDS) != Some("drop"),
            coercions: Coercions { numbers_in_strings: get(NUMBERS_IN_STRINGS) == Some("true") },
        })
    }
}

/// Refuses unknown `zombi.*` user properties and values they do not take.
pub fn check_properties(props: &HashMap<String, String>) -> Result<(), TypedError> {
    for (key, value) in props {
        let Some(name) = key.strip_prefix("zombi.") else { continue };
        if properties::ZOMBI_PROPERTIES.contains(&key.as_str()) {
            continue;
        }
        if key == properties::RETENTION {
            properties::parse_retention(value).map_err(TypedError::Property)?;
            continue;
        }
        let Some((_, values)) = USER_PROPERTIES.iter().find(|(k, _)| *k == key) else {
            let mut known: Vec<&str> = USER_PROPERTIES.iter().map(|(k, _)| *k).collect();
            known.push(properties::RETENTION);
            return Err(TypedError::Property(format!(
                "unknown table property zombi.{name}; Zombi's table properties are {}",
                known.join(", ")
            )));
        };
        if !values.contains(&value.as_str()) {
            return Err(TypedError::Property(format!(
                "table property {key} is {}; it takes {}",
                zombi_shared::quote::quoted(value),
                values.join(" or ")
            )));
        }
    }
    Ok(())
}

/// Refuses `zombi.on-error = dead_letter` for a table whose dead-letter table's name
/// would be too long.
pub fn check_dead_letter_name(
    table: &str,
    props: &HashMap<String, String>,
) -> Result<(), TypedError> {
    let dlq = dead_letter::table_of(table);
    if props.get(ON_ERROR).map(String::as_str) == Some("dead_letter")
        && zombi_shared::validate_table_name(&dlq).is_err()
    {
        return Err(TypedError::Property(format!(
            "{ON_ERROR} = dead_letter needs a dead-letter table named {dlq}, which is longer than {} characters; use a shorter table name",
            zombi_shared::table_name::MAX_TABLE_NAME_LEN
        )));
    }
    Ok(())
}

/// A typed table's schema compiled for conversion.
#[derive(Debug)]
pub struct TypedTable {
    schema: SchemaRef,
    arrow: ArrowSchemaRef,
    /// The user columns, in schema order, each with its position in the schema.
    columns: Vec<(usize, Column)>,
    settings: Settings,
}

/// Whether a table's metadata is that of a typed table.
pub fn is_typed(metadata: &TableMetadata) -> bool {
    metadata.properties().get(properties::TABLE_MODE).map(String::as_str) == Some("typed")
}

impl TypedTable {
    /// The typed form of a table, or `None` for a raw table.
    pub fn of(metadata: &TableMetadata) -> Result<Option<Arc<Self>>, TypedError> {
        if !is_typed(metadata) {
            return Ok(None);
        }
        let settings = Settings::from_properties(metadata.properties())?;
        Self::compile(metadata.current_schema().clone(), settings).map(|t| Some(Arc::new(t)))
    }

    fn compile(schema: SchemaRef, settings: Settings) -> Result<Self, TypedError> {
        let unsupported = TypedError::Unsupported;
        let arrow = iceberg::arrow::schema_to_arrow_schema(&schema)
            .map_err(|e| unsupported(e.message().to_owned()))?;
        let arrow = Arc::new(arrow);
        let mut columns = Vec::new();
        for (i, field) in schema.as_struct().fields().iter().enumerate() {
            if !schema::is_system_field(field.id) {
                let column = Column::compile(field, &Arc::new(arrow.field(i).clone()));
                columns.push((i, column.map_err(unsupported)?));
            }
        }
        Ok(TypedTable { schema, arrow, columns, settings })
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The table's schema with the inferred columns it does not hold yet appended as
    /// optional columns (new field ids after the highest one); `None` if it holds them all.
    pub fn schema_with(
        &self,
        inferred: &[Inferred],
    ) -> Result<Option<iceberg::spec::Schema>, TypedError> {
        let mut next = self.schema.highest_field_id() + 1;
        let mut added: Vec<iceberg::spec::NestedFieldRef> = Vec::new();
        for column in inferred {
            if self.schema.field_by_name_case_insensitive(&column.name).is_some()
                || added.iter().any(|f| f.name.eq_ignore_ascii_case(&column.name))
            {
                continue;
            }
            let field =
                iceberg::spec::NestedField::optional(0, &column.name, column.field_type.clone());
            added.push(declare::renumber(&field, &mut next));
        }
        if added.is_empty() {
            return Ok(None);
        }
        let fields = self.schema.as_struct().fields().iter().cloned().chain(added);
        iceberg::spec::Schema::builder()
            .with_schema_id(self.schema.schema_id() + 1)
            .with_fields(fields)
            .build()
            .map(Some)
            .map_err(|e| TypedError::SchemaChange(e.message().to_owned()))
    }

    /// This table as it will be once `inferred` columns are in its schema.
    pub fn with_columns(self: &Arc<Self>, inferred: &[Inferred]) -> Result<Arc<Self>, TypedError> {
        match self.schema_with(inferred)? {
            None => Ok(self.clone()),
            Some(schema) => Self::compile(Arc::new(schema), self.settings).map(Arc::new),
        }
    }

    pub fn schema_id(&self) -> i32 {
        self.schema.schema_id()
    }

    pub fn arrow_schema(&self) -> ArrowSchemaRef {
        self.arrow.clone()
    }

    /// How many leaf (primitive) columns the user columns have.
    pub fn leaf_columns(&self) -> u64 {
        fn leaves(t: &arrow_schema::DataType) -> u64 {
            use arrow_schema::DataType as D;
            match t {
                D::Struct(fields) => fields.iter().map(|f| leaves(f.data_type())).sum(),
                D::List(f) | D::LargeList(f) | D::Map(f, _) => leaves(f.data_type()),
                _ => 1,
            }
        }
        self.columns.iter().map(|(i, _)| leaves(self.arrow.field(*i).data_type())).sum()
    }

    /// Checks one event before it is acknowledged. With `zombi.evolve = additive`, returns
    /// the columns its new top-level fields call for (type inferred from their values).
    pub fn check(&self, payload: &Payload) -> Result<Vec<Inferred>, FieldError> {
        let Payload::Json(text) = payload else {
            return Err(whole(
                "a typed table takes JSON payloads (\"payload\"), not \"payload_base64\"",
            ));
        };
        let node = json::parse(text).map_err(|e| whole(&format!("payload is not JSON: {e}")))?;
        self.split(&node, true)?;
        let json::Json::Object(entries) = &node.value else { return Ok(Vec::new()) };
        if !self.settings.additive {
            return Ok(Vec::new());
        }
        // A field becomes a column only under a name no column has, in any case (engines
        // resolve names case-insensitively), and without dots (they name nested fields).
        let system = schema::schema();
        let taken = |name: &str| {
            self.schema.field_by_name_case_insensitive(name).is_some()
                || system.as_struct().fields().iter().any(|f| f.name.eq_ignore_ascii_case(name))
        };
        let mut out: Vec<Inferred> = Vec::new();
        for (key, value) in entries {
            if key.is_empty()
                || key.contains('.')
                || taken(key)
                || out.iter().any(|c| c.name.eq_ignore_ascii_case(key))
            {
                continue;
            }
            if let Some(field_type) = evolve::infer(value) {
                out.push(Inferred { name: key.to_string(), field_type });
            }
        }
        Ok(out)
    }

    /// The event's value of each user column, and the JSON text of what no column holds
    /// (`None` when nothing is left or unknown fields are dropped). `strict` (at ingest)
    /// refuses any value that does not fit; otherwise (at flush) a value that does not fit
    /// an optional column is kept in the rest instead, so that a column added after an
    /// event was accepted can never make its flush fail or lose the value.
    fn split<'n>(
        &self,
        node: &'n json::Node<'n>,
        strict: bool,
    ) -> Result<(Vec<Option<&'n json::Node<'n>>>, Option<String>), FieldError> {
        let json::Json::Object(entries) = &node.value else {
            return Err(whole(&format!(
                "a typed table takes a JSON object as payload, got {}",
                convert::describe(node)
            )));
        };
        // At flush, numbers in strings always convert: an event accepted while the table
        // allowed them must still be written after the setting was turned off.
        let c =
            Coercions { numbers_in_strings: self.settings.coercions.numbers_in_strings || !strict };
        let mut values = Vec::with_capacity(self.columns.len());
        let mut rest: Vec<(&str, Rest)> = Vec::new();
        let mut path = Path::default();
        for (_, column) in &self.columns {
            let value = node.get(&column.name);
            path.push_field(&column.name);
            let checked = column.check(value, &mut path, c);
            path.pop();
            match checked {
                Ok(r) => {
                    values.push(value);
                    if let Some(r) = r.filter(|_| self.settings.keep_unknown) {
                        rest.push((column.name.as_str(), r));
                    }
                }
                Err(e) if strict || column.required => return Err(e),
                Err(_) => {
                    values.push(None);
                    rest.push((column.name.as_str(), Rest::Whole(value.map_or("null", |v| v.raw))));
                }
            }
        }
        if self.settings.keep_unknown {
            for (key, value) in entries {
                if !self.columns.iter().any(|(_, c)| c.name == *key) {
                    rest.push((key.as_ref(), Rest::Whole(value.raw)));
                }
            }
        }
        let rest = (!rest.is_empty()).then(|| {
            let mut out = String::new();
            Rest::Fields(rest).write(&mut out);
            out
        });
        Ok((values, rest))
    }

    /// Builds one record batch in the table's current schema, rows in the given order.
    pub fn to_batch(&self, rows: &[Row]) -> Result<RecordBatch, TypedError> {
        let parsed = rows
            .iter()
            .map(|(p, s, e)| match &e.payload {
                Payload::Json(text) => json::parse(text).map_err(|err| {
                    TypedError::Rows(format!(
                        "partition {p} sequence {s}: payload is not JSON: {err}"
                    ))
                }),
                Payload::Bytes(_) => Err(TypedError::Rows(format!(
                    "partition {p} sequence {s}: a binary payload in a typed table"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut per_column: Vec<Vec<Option<&json::Node>>> =
            vec![Vec::with_capacity(rows.len()); self.columns.len()];
        let mut rests = Vec::with_capacity(rows.len());
        for (node, (p, s, _)) in parsed.iter().zip(rows) {
            let (values, rest) = self
                .split(node, false)
                .map_err(|e| TypedError::Rows(format!("partition {p} sequence {s}: {e}")))?;
            for (column, value) in per_column.iter_mut().zip(values) {
                column.push(value);
            }
            rests.push(rest);
        }
        let system = schema::system_columns(rows, Some(rests));
        let mut columns: Vec<Option<ArrayRef>> = vec![None; self.arrow.fields().len()];
        for (i, field) in self.schema.as_struct().fields().iter().enumerate() {
            if schema::is_system_field(field.id) {
                columns[i] = Some(system[(field.id - 1) as usize].clone());
            }
        }
        for ((i, column), values) in self.columns.iter().zip(&per_column) {
            let lenient = Coercions { numbers_in_strings: true };
            columns[*i] =
                Some(column.build(values, lenient).map_err(|e| TypedError::Rows(e.to_string()))?);
        }
        let columns = columns.into_iter().map(|c| c.expect("every field has a column")).collect();
        Ok(RecordBatch::try_new(self.arrow.clone(), columns)?)
    }
}

/// A column Zombi inferred from a new top-level field (`zombi.evolve = additive`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Inferred {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: iceberg::spec::Type,
}

fn whole(reason: &str) -> FieldError {
    FieldError { path: String::new(), reason: reason.to_owned() }
}

#[cfg(test)]
mod tests;
