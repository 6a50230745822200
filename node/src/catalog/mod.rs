//! Zombi's own Iceberg catalog: table metadata files live in the warehouse, and the pointer
//! to each table's current metadata file lives in a [`pointers::PointerStore`] (the node's
//! RocksDB). Swapping that pointer (one synced write) is the commit point of every Iceberg
//! commit, so transactions built with the `iceberg` crate commit through [`ZombiCatalog`]
//! like through any catalog.
//!
//! Engines read it over the Iceberg REST protocol ([`rest`]); the catalog is read-only
//! for them: only the flusher creates tables and commits snapshots.

mod adopt;
pub(crate) mod clock;
pub mod fence;
pub mod hint;
pub mod inflight;
mod lifecycle;
pub mod pointers;
pub mod readiness;
pub mod rest;
pub mod snapshot;
pub mod storage;
pub mod warehouse;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use iceberg::io::FileIO;
use iceberg::spec::{TableMetadata, TableMetadataBuilder};
use iceberg::table::Table;
use iceberg::{
    Catalog, Error, ErrorKind, MetadataLocation, Namespace, NamespaceIdent, Result, Runtime,
    TableCommit, TableCreation, TableIdent, TableRequirement, TableUpdate,
};

use crate::{schema, typed};
use inflight::{InFlight, InFlightGuard};
pub use lifecycle::DeclareError;
use pointers::PointerStore;

pub struct ZombiCatalog {
    pointers: Arc<dyn PointerStore>,
    file_io: FileIO,
    namespace: NamespaceIdent,
    /// `{warehouse}/{namespace}`: parent of every table location.
    namespace_location: String,
    /// Commits of one table are serialised; different tables commit in parallel.
    commit_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Last metadata read per table, keyed by its location (metadata files are immutable).
    cache: Mutex<HashMap<String, (String, Arc<TableMetadata>)>>,
    /// Files being written and not yet committed; file cleanup leaves them alone.
    inflight: InFlight,
    /// Lists warehouse folders (`None` if the warehouse cannot be listed).
    lister: Option<warehouse::Lister>,
    /// The typing of every table whose metadata this catalog read or committed.
    typing: Arc<typed::Registry>,
    /// Which tables take writes.
    readiness: readiness::TableReadiness,
    /// With `durability = "object"`: commits are fenced in the warehouse (see [`fence`]).
    fence: Option<fence::Fence>,
    /// A standby's read-only catalog: every read takes the table's committed state from the
    /// warehouse (see [`ZombiCatalog::following_the_warehouse`]).
    follows: bool,
}

/// The updates an engine may commit: schema and property changes.
fn engine_may_apply(update: &TableUpdate) -> bool {
    matches!(
        update,
        TableUpdate::AddSchema { .. }
            | TableUpdate::SetCurrentSchema { .. }
            | TableUpdate::AddSpec { .. }
            | TableUpdate::SetDefaultSpec { .. }
            | TableUpdate::SetProperties { .. }
            | TableUpdate::RemoveProperties { .. }
    )
}

/// Zombi's reasons for a partition spec an update adds, before Iceberg's (which only say
/// which transform does not fit which type). Checked against the schema the update adds, if
/// it adds one.
fn check_new_specs(current: &TableMetadata, updates: &[TableUpdate]) -> Result<()> {
    let schema = updates
        .iter()
        .rev()
        .find_map(|u| match u {
            TableUpdate::AddSchema { schema } => Some(schema),
            _ => None,
        })
        .unwrap_or(current.current_schema());
    for u in updates {
        if let TableUpdate::AddSpec { spec } = u {
            schema::partitioning::bind_checked(schema, spec.clone())
                .map_err(|e| Error::new(ErrorKind::DataInvalid, e))?;
        }
    }
    Ok(())
}

fn unsupported(what: &str) -> Error {
    Error::new(
        ErrorKind::FeatureUnsupported,
        format!(
            "{what} is not supported: Zombi tables are created and written by Zombi's ingest path only"
        ),
    )
}

impl std::fmt::Debug for ZombiCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZombiCatalog")
            .field("namespace", &self.namespace)
            .field("namespace_location", &self.namespace_location)
            .finish_non_exhaustive()
    }
}

impl ZombiCatalog {
    pub fn new(
        pointers: Arc<dyn PointerStore>,
        file_io: FileIO,
        lister: Option<warehouse::Lister>,
        namespace: &str,
        warehouse: &str,
    ) -> Self {
        ZombiCatalog {
            pointers,
            file_io,
            namespace: NamespaceIdent::new(namespace.to_owned()),
            namespace_location: format!("{}/{namespace}", warehouse.trim_end_matches('/')),
            commit_locks: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
            inflight: InFlight::default(),
            lister,
            typing: Arc::default(),
            readiness: readiness::TableReadiness::default(),
            fence: None,
            follows: false,
        }
    }

    /// A standby's catalog, read-only (its REST surface refuses updates): each table read
    /// takes the table's highest committed version from the warehouse (`durability =
    /// "object"` commits are the `v<N>.metadata.json` copies, see [`fence`]), so engines
    /// pointed at the standby see what the active node committed.
    pub fn following_the_warehouse(mut self) -> Self {
        self.follows = true;
        self
    }

    /// Fenced: whether this node may still delete files (it owns the log); always when
    /// not fenced.
    pub async fn may_delete(&self) -> Result<bool> {
        match &self.fence {
            Some(fence) => fence.still_owner().await,
            None => Ok(true),
        }
    }

    /// Makes the warehouse the commit point of every commit (see [`fence`]).
    pub fn with_fence(mut self, fence: fence::Fence) -> Self {
        self.fence = Some(fence);
        self
    }

    /// Which tables take writes: the flusher reports, ingest waits (see [`readiness`]).
    pub fn readiness(&self) -> &readiness::TableReadiness {
        &self.readiness
    }

    /// How a loaded table's events become rows: from the typing compiled when its metadata
    /// was read, so a flush or a hot read does not compile the schema again.
    pub fn layout(
        &self,
        table: &Table,
    ) -> std::result::Result<crate::layout::Layout, typed::TypedError> {
        use crate::layout::Layout;
        let cached =
            table.metadata_location().and_then(|l| self.typing.at(table.identifier().name(), l));
        match cached {
            Some(typed::Typing::Typed(t)) => Ok(Layout::Typed(t)),
            Some(typed::Typing::Unusable(e)) => Err(e),
            // Raw and dead-letter tables compile nothing; metadata not recorded (older than
            // the registry's) is compiled here.
            Some(typed::Typing::Raw) | None => Layout::of(table.metadata()),
        }
    }

    /// The typing of tables, kept current with every metadata file read or committed.
    pub fn typing(&self) -> Arc<typed::Registry> {
        self.typing.clone()
    }

    pub fn lister(&self) -> Option<&warehouse::Lister> {
        self.lister.as_ref()
    }

    /// Registers `token` (a string in the names of files about to be written for `table`)
    /// as in flight until the guard is dropped; see [`inflight`].
    pub fn protect(&self, table: &str, token: String) -> InFlightGuard {
        self.inflight.protect(table, token)
    }

    /// Tokens of the files of `table` being written now.
    pub fn inflight_tokens(&self, table: &str) -> Vec<String> {
        self.inflight.tokens(table)
    }

    /// Commits metadata that `rebuild` derives from the table's current state, under the
    /// table's commit lock, so nothing commits in between: maintenance rebases onto
    /// whatever the flusher committed since it planned. `rebuild` answers `None` when there
    /// is nothing to commit. It must be quick: flusher commits of the table wait for it.
    pub async fn commit_rebuilt<F>(&self, ident: &TableIdent, rebuild: F) -> Result<Option<Table>>
    where
        F: AsyncFnOnce(&Table) -> Result<Option<TableMetadata>>,
    {
        let lock = self.commit_lock(ident.name());
        let _guard = lock.lock().await;
        let current = self.load_table(ident).await?;
        let Some(metadata) = rebuild(&current).await? else { return Ok(None) };
        let metadata = clock::monotonic_metadata(ident.name(), current.metadata(), metadata)?;
        let location = MetadataLocation::from_str(current.metadata_location_result()?)?
            .with_next_version()
            .with_new_metadata(&metadata);
        self.publish(ident.name(), &location, &metadata).await?;
        Ok(Some(self.build_table(ident.clone(), location.to_string(), Arc::new(metadata))?))
    }

    pub fn ident(&self, table: &str) -> TableIdent {
        TableIdent::new(self.namespace.clone(), table.to_owned())
    }

    fn check_namespace(&self, ns: &NamespaceIdent) -> Result<()> {
        if ns == &self.namespace {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::NamespaceNotFound,
                format!("namespace {} does not exist", ns.join(".")),
            ))
        }
    }

    fn commit_lock(&self, table: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.commit_locks.lock().unwrap().entry(table.to_owned()).or_default().clone()
    }

    /// Runs `f` on the pointer store off the async workers (a pointer write syncs to disk).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn PointerStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let pointers = self.pointers.clone();
        tokio::task::spawn_blocking(move || f(pointers.as_ref())).await.map_err(|e| {
            Error::new(ErrorKind::Unexpected, "the catalog pointer task failed").with_source(e)
        })?
    }

    async fn pointer(&self, table: &TableIdent) -> Result<Option<String>> {
        self.check_namespace(table.namespace())?;
        if self.follows {
            let lock = self.commit_lock(table.name());
            let _guard = lock.lock().await;
            self.adopt_committed(table.name()).await?;
        }
        let name = table.name().to_owned();
        self.blocking(move |s| s.pointer(&name)).await
    }

    async fn read_metadata(&self, table: &str, location: &str) -> Result<Arc<TableMetadata>> {
        if let Some((loc, meta)) = self.cache.lock().unwrap().get(table)
            && loc == location
        {
            return Ok(meta.clone());
        }
        let meta = Arc::new(TableMetadata::read_from(&self.file_io, location).await?);
        self.typing.observe(table, location, &meta);
        self.cache.lock().unwrap().insert(table.to_owned(), (location.to_owned(), meta.clone()));
        Ok(meta)
    }

    fn build_table(
        &self,
        ident: TableIdent,
        location: String,
        metadata: Arc<TableMetadata>,
    ) -> Result<Table> {
        Table::builder()
            .identifier(ident)
            .metadata_location(location)
            .metadata(metadata)
            .file_io(self.file_io.clone())
            .runtime(Runtime::try_current()?)
            .build()
    }

    /// Writes `metadata` to `location` and makes it current.
    async fn publish(
        &self,
        table: &str,
        location: &MetadataLocation,
        metadata: &TableMetadata,
    ) -> Result<()> {
        // Until the pointer names it, the new file is referenced by nothing: keep cleanup
        // off it (see `inflight`).
        let loc = location.to_string();
        let _inflight = self.protect(table, loc.clone());
        metadata.write_to(&self.file_io, location).await?;
        if let Some(fence) = &self.fence
            && fence.commit(&loc, metadata).await? == fence::Committed::Taken
        {
            // Another node committed this version: this node's view is behind. Take the
            // table's committed state again, so a retry (or its commit-id lookup) sees it.
            if let Err(e) = self.adopt_committed(table).await {
                tracing::warn!(table, error = %e, "cannot reload the table after a lost commit");
            }
            return Err(fence::taken(table, hint::version_of(&loc)));
        }
        let name = table.to_owned();
        let pointer = loc.clone();
        self.blocking(move |s| s.set_pointer(&name, &pointer)).await?;
        self.typing.observe(table, &loc, metadata);
        self.point_warehouse(table, &loc, metadata).await;
        Ok(())
    }

    /// Points the warehouse's `version-hint.text` at a committed metadata file (see
    /// [`hint`]); a failure is logged, and the next commit or start repairs it.
    async fn point_warehouse(&self, table: &str, location: &str, metadata: &TableMetadata) {
        // Fenced, the copy is the commit point and already there: only the hint is left.
        let written = match self.fence {
            Some(_) => hint::write_hint(&self.file_io, location, metadata).await,
            None => hint::write(&self.file_io, self.lister(), location, metadata).await,
        };
        if let Err(e) = written {
            tracing::warn!(table, error = %e, "cannot write the table's version-hint.text; path-based readers see an older snapshot until the next commit");
        }
    }

    /// Makes every table's `version-hint.text` name its current metadata (at start-up: a
    /// crash may have come between a commit and its hint).
    pub async fn repair_version_hints(&self) -> Result<()> {
        let tables = self.blocking(|s| s.pointers()).await?;
        for table in tables.into_keys() {
            // Under the commit lock, from the pointer as it is now: a commit running beside
            // this writes its own hint, and this must not move the hint back.
            let lock = self.commit_lock(&table);
            let _guard = lock.lock().await;
            let name = table.clone();
            let Some(location) = self.blocking(move |s| s.pointer(&name)).await? else {
                continue;
            };
            match self.read_metadata(&table, &location).await {
                Ok(metadata) => {
                    if !hint::is_current(&self.file_io, &location, metadata.location()).await {
                        tracing::info!(table, %location, "writing version-hint.text");
                        self.point_warehouse(&table, &location, &metadata).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(table, error = %e, "cannot read the current metadata to check version-hint.text")
                }
            }
        }
        Ok(())
    }

    /// Commits an engine's update of a table's metadata: schema, spec and property changes only,
    /// and only those Zombi can honour (see [`typed::evolve`]). The requirements are checked
    /// against the current metadata under the commit lock, so a stale update fails.
    pub async fn update_metadata(
        &self,
        ident: &TableIdent,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
    ) -> Result<Table> {
        if let Some(u) = updates.iter().find(|u| !engine_may_apply(u)) {
            let what = serde_json::to_value(u)
                .ok()
                .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "this update".to_owned());
            return Err(Error::new(
                ErrorKind::FeatureUnsupported,
                format!(
                    "{what} is refused: engines may change a table's schema, partition spec and properties only; Zombi's ingest path writes its data"
                ),
            ));
        }
        let committed = self
            .commit_rebuilt(ident, async |current: &Table| {
                for r in &requirements {
                    r.check(Some(current.metadata()))?;
                }
                check_new_specs(current.metadata(), &updates)?;
                let mut builder = TableMetadataBuilder::new_from_metadata(
                    current.metadata().clone(),
                    current.metadata_location().map(str::to_owned),
                );
                for u in updates.iter().cloned() {
                    builder = u.apply(builder)?;
                }
                let next = builder.build()?.metadata;
                typed::evolve::check_update(current.metadata(), &next)
                    .and_then(|()| typed::check_dead_letter_name(ident.name(), next.properties()))
                    .map_err(|e| Error::new(ErrorKind::DataInvalid, e.to_string()))?;
                Ok(Some(next))
            })
            .await?;
        match committed {
            Some(table) => Ok(table),
            None => self.load_table(ident).await,
        }
    }

    /// Creates a table of Zombi's layout (at a table's first write, see `lifecycle`).
    async fn create_raw(&self, creation: TableCreation) -> Result<Table> {
        zombi_shared::validate_table_name(&creation.name)
            .map_err(|e| Error::new(ErrorKind::DataInvalid, e.to_string()))?;
        self.create(creation).await
    }

    async fn create(&self, creation: TableCreation) -> Result<Table> {
        let ns = &self.namespace;
        let name = creation.name.clone();
        let lock = self.commit_lock(&name);
        let _guard = lock.lock().await;
        let ident = TableIdent::new(ns.clone(), name.clone());
        if self.pointer(&ident).await?.is_some() {
            return Err(Error::new(
                ErrorKind::TableAlreadyExists,
                format!("table {name} already exists"),
            ));
        }
        let table_location = format!("{}/{name}", self.namespace_location);
        // Metadata already in the folder belongs to a table this node has no pointer to:
        // it is adopted (see `adopt`), never hidden by a new table, whose cleanup would then
        // delete the old data as unreferenced.
        if let Some(lister) = &self.lister {
            let metadata_dir = format!("{table_location}/metadata");
            let existing = lister.list_files(&metadata_dir).await.map_err(|e| {
                Error::new(ErrorKind::Unexpected, format!("cannot list {metadata_dir}: {e}"))
            })?;
            // Version 0 alone, which adoption could not use, is what a crash while this
            // very creation wrote it leaves: it holds no data, and a new table replaces it.
            if existing.iter().any(|f| adopt::version_of(f).is_some_and(|v| v > 0)) {
                return Err(Error::new(
                    ErrorKind::TableAlreadyExists,
                    format!(
                        "{metadata_dir} already holds Iceberg metadata of table {name}; adopt it instead of creating a new table"
                    ),
                ));
            }
        }
        let creation = TableCreation { location: Some(table_location.clone()), ..creation };
        let metadata = TableMetadataBuilder::from_table_creation(creation)?.build()?.metadata;
        let location = MetadataLocation::new_with_metadata(table_location, &metadata);
        self.publish(&name, &location, &metadata).await?;
        self.build_table(ident, location.to_string(), Arc::new(metadata))
    }
}

#[async_trait]
impl rest::TableUpdates for ZombiCatalog {
    async fn update_table(
        &self,
        ident: &TableIdent,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
    ) -> Result<Table> {
        self.check_namespace(ident.namespace())?;
        self.update_metadata(ident, requirements, updates).await
    }
}

#[async_trait]
impl Catalog for ZombiCatalog {
    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> Result<Vec<NamespaceIdent>> {
        match parent {
            None => Ok(vec![self.namespace.clone()]),
            Some(p) => self.check_namespace(p).map(|()| Vec::new()),
        }
    }

    async fn create_namespace(
        &self,
        _: &NamespaceIdent,
        _: HashMap<String, String>,
    ) -> Result<Namespace> {
        Err(unsupported("creating a namespace"))
    }

    async fn get_namespace(&self, ns: &NamespaceIdent) -> Result<Namespace> {
        self.check_namespace(ns)?;
        Ok(Namespace::with_properties(
            ns.clone(),
            HashMap::from([("location".to_owned(), self.namespace_location.clone())]),
        ))
    }

    async fn namespace_exists(&self, ns: &NamespaceIdent) -> Result<bool> {
        Ok(ns == &self.namespace)
    }

    async fn update_namespace(&self, _: &NamespaceIdent, _: HashMap<String, String>) -> Result<()> {
        Err(unsupported("updating a namespace"))
    }

    async fn drop_namespace(&self, _: &NamespaceIdent) -> Result<()> {
        Err(unsupported("dropping a namespace"))
    }

    async fn list_tables(&self, ns: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        self.check_namespace(ns)?;
        if self.follows && self.lister.is_some() {
            let mut tables = Vec::new();
            for name in self.table_dirs().await? {
                let ident = TableIdent::new(ns.clone(), name);
                if self.pointer(&ident).await?.is_some() {
                    tables.push(ident);
                }
            }
            return Ok(tables);
        }
        let pointers = self.blocking(|s| s.pointers()).await?;
        Ok(pointers.into_keys().map(|name| TableIdent::new(ns.clone(), name)).collect())
    }

    /// A user's table: a typed table declared through the REST catalog (see
    /// [`typed::declare`]). Zombi's own raw tables are created with [`Self::create_raw`].
    async fn create_table(&self, ns: &NamespaceIdent, creation: TableCreation) -> Result<Table> {
        self.check_namespace(ns)?;
        zombi_shared::validate_table_name(&creation.name)
            .map_err(|e| Error::new(ErrorKind::DataInvalid, e.to_string()))?;
        let location = format!("{}/{}", self.namespace_location, creation.name);
        let creation = typed::declare::declare(creation, &location)
            .map_err(|e| Error::new(ErrorKind::DataInvalid, e.to_string()))?;
        self.create(creation).await
    }

    async fn load_table(&self, ident: &TableIdent) -> Result<Table> {
        let Some(location) = self.pointer(ident).await? else {
            return Err(Error::new(
                ErrorKind::TableNotFound,
                format!("table {} does not exist", ident.name()),
            ));
        };
        let metadata = self.read_metadata(ident.name(), &location).await?;
        self.build_table(ident.clone(), location, metadata)
    }

    async fn drop_table(&self, _: &TableIdent) -> Result<()> {
        Err(unsupported("dropping a table"))
    }

    async fn purge_table(&self, _: &TableIdent) -> Result<()> {
        Err(unsupported("purging a table"))
    }

    async fn table_exists(&self, ident: &TableIdent) -> Result<bool> {
        if ident.namespace() != &self.namespace {
            return Ok(false);
        }
        Ok(self.pointer(ident).await?.is_some())
    }

    async fn rename_table(&self, _: &TableIdent, _: &TableIdent) -> Result<()> {
        Err(unsupported("renaming a table"))
    }

    async fn register_table(&self, _: &TableIdent, _: String) -> Result<Table> {
        Err(unsupported("registering a table"))
    }

    async fn update_table(&self, commit: TableCommit) -> Result<Table> {
        let ident = commit.identifier().clone();
        let lock = self.commit_lock(ident.name());
        let _guard = lock.lock().await;
        // Requirements are checked against the current metadata under the lock, so a stale
        // transaction fails instead of overwriting a newer snapshot.
        // Zombi's own writers commit with `commit_rebuilt`; this serves the trait.
        let current = self.load_table(&ident).await?;
        let staged = commit.apply(current)?;
        let location = MetadataLocation::from_str(staged.metadata_location_result()?)?;
        self.publish(ident.name(), &location, staged.metadata()).await?;
        Ok(staged)
    }
}

use std::str::FromStr as _;

#[cfg(test)]
mod tests;
