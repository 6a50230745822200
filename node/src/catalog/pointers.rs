//! Where the catalog keeps each table's current metadata location: the commit point of
//! every Iceberg commit. The node keeps it in its RocksDB ([`HotStore`]); tests keep it in
//! memory ([`MemoryPointers`]). A store answers only once a new pointer is durable.

use std::collections::BTreeMap;
use std::sync::Mutex;

use iceberg::{Error, ErrorKind, Result};

use crate::hot::{HotError, HotStore};

pub trait PointerStore: Send + Sync + 'static {
    /// The location of `table`'s current metadata file, if the catalog has the table.
    fn pointer(&self, table: &str) -> Result<Option<String>>;

    /// Every table, name → metadata location, sorted by name.
    fn pointers(&self) -> Result<BTreeMap<String, String>>;

    /// Points `table` at `location`, durably: once this returns, the commit happened.
    fn set_pointer(&self, table: &str, location: &str) -> Result<()>;

    /// Points a table adopted from the warehouse at `location` and makes it known to the
    /// node, so that its flusher starts.
    fn adopt(&self, table: &str, location: &str) -> Result<()>;
}

fn hot_error(what: &'static str) -> impl FnOnce(HotError) -> Error {
    move |e| Error::new(ErrorKind::Unexpected, what).with_source(e)
}

impl PointerStore for HotStore {
    fn pointer(&self, table: &str) -> Result<Option<String>> {
        self.catalog_pointer(table).map_err(hot_error("cannot read the table's catalog pointer"))
    }

    fn pointers(&self) -> Result<BTreeMap<String, String>> {
        self.catalog_pointers().map_err(hot_error("cannot read the catalog pointers"))
    }

    fn set_pointer(&self, table: &str, location: &str) -> Result<()> {
        self.set_catalog_pointer(table, location)
            .map_err(hot_error("cannot write the table's catalog pointer"))
    }

    fn adopt(&self, table: &str, location: &str) -> Result<()> {
        self.set_pointer(table, location)?;
        self.ensure_table(table).map(|_| ()).map_err(hot_error("cannot register the table"))
    }
}

/// Pointers in memory: for tests of the catalog and what builds on it, and for a standby's
/// catalog, which follows the warehouse and keeps nothing of its own.
#[derive(Debug, Default)]
pub struct MemoryPointers(Mutex<BTreeMap<String, String>>);

impl PointerStore for MemoryPointers {
    fn pointer(&self, table: &str) -> Result<Option<String>> {
        Ok(self.0.lock().unwrap().get(table).cloned())
    }

    fn pointers(&self) -> Result<BTreeMap<String, String>> {
        Ok(self.0.lock().unwrap().clone())
    }

    fn set_pointer(&self, table: &str, location: &str) -> Result<()> {
        self.0.lock().unwrap().insert(table.to_owned(), location.to_owned());
        Ok(())
    }

    fn adopt(&self, table: &str, location: &str) -> Result<()> {
        self.set_pointer(table, location)
    }
}
