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
    Unusable(super::TypedError),
}

#[derive(Debug, Default)]
pub struct Registry {
    /// Keyed by table name, with the metadata location and last-updated time the typing
    /// comes from.
    tables: RwLock<HashMap<String, (String, i64, Typing)>>,
}

impl Registry {
    /// Records the typing of `table` from its current metadata at `location`.
    pub fn observe(&self, table: &str, location: &str, metadata: &TableMetadata) {
        let updated = metadata.last_updated_ms();
        // A read of an older metadata file can finish after a newer one was committed.
        let known = self.tables.read().unwrap().get(table).map(|(l, at, _)| (l == location, *at));
        if known.is_some_and(|(same, at)| same || at > updated) {
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
        let mut tables = self.tables.write().unwrap();
        if tables.get(table).is_some_and(|(_, at, _)| *at > updated) {
            return;
        }
        tables.insert(table.to_owned(), (location.to_owned(), updated, typing));
    }

    /// The typing of `table` compiled from the metadata file at `location`, if that is the
    /// one recorded.
    pub fn at(&self, table: &str, location: &str) -> Option<Typing> {
        let tables = self.tables.read().unwrap();
        tables.get(table).filter(|(l, _, _)| l == location).map(|(_, _, t)| t.clone())
    }

    /// The typing of `table`; `None` before its metadata was read.
    pub fn get(&self, table: &str) -> Option<Typing> {
        self.tables.read().unwrap().get(table).map(|(_, _, t)| t.clone())
    }
}
