//! What the combiner knows of each table's typing: kept current by the catalog, which
//! tells it every metadata file it reads or commits, so an event is checked against the
//! schema and properties of the table's current metadata.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use iceberg::spec::TableMetadata;

use super::TypedTable;

#[derive(Debug, Clone)]
pub enum Typing {
    Raw,
    Typed(Arc<TypedTable>),
    /// A typed table whose metadata Zombi cannot convert to (its writes are refused).
    Unusable(String),
}

#[derive(Debug, Default)]
pub struct Registry {
    /// Keyed by table name, with the metadata location the typing comes from.
    tables: RwLock<HashMap<String, (String, Typing)>>,
}

impl Registry {
    /// Records the typing of `table` from its current metadata at `location`.
    pub fn observe(&self, table: &str, location: &str, metadata: &TableMetadata) {
        if self.tables.read().unwrap().get(table).is_some_and(|(l, _)| l == location) {
            return;
        }
        let typing = match TypedTable::of(metadata) {
            Ok(None) => Typing::Raw,
            Ok(Some(t)) => Typing::Typed(t),
            Err(e) => {
                tracing::error!(table, error = %e, "the table's schema cannot take events");
                Typing::Unusable(e)
            }
        };
        self.tables.write().unwrap().insert(table.to_owned(), (location.to_owned(), typing));
    }

    /// The typing of `table`; `None` before its metadata was read.
    pub fn get(&self, table: &str) -> Option<Typing> {
        self.tables.read().unwrap().get(table).map(|(_, t)| t.clone())
    }
}
