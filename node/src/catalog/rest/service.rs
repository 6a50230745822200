//! What the catalog routes do, independent of HTTP: reads through any
//! [`iceberg::Catalog`], sorted stable paging, and snapshot filtering.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use iceberg::spec::TableMetadata;
use iceberg::{Catalog, ErrorKind, NamespaceIdent, TableCreation, TableIdent};
use iceberg_catalog_rest::{
    CommitTableRequest, CommitTableResponse, CreateTableRequest, LoadTableResult,
};
use serde::Serialize;
use serde_json::Value;

use super::TableUpdates;
use super::error::CatalogError;
use super::params::{PageRequest, SnapshotsMode, encode_token};

/// `GET /v1/config`.
#[derive(Debug, Serialize)]
pub struct ConfigResponse {
    pub defaults: BTreeMap<String, String>,
    pub overrides: BTreeMap<String, String>,
}

// The listing and namespace bodies are our own rather than `iceberg_catalog_rest`'s:
// those write `"next-page-token": null` on every listing and drop an empty `properties`,
// and strict clients parse both fields.

/// `GET /v1/namespaces`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ListNamespacesResponse {
    pub namespaces: Vec<NamespaceIdent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `GET /v1/namespaces/{namespace}`.
#[derive(Debug, Serialize)]
pub struct GetNamespaceResponse {
    pub namespace: NamespaceIdent,
    pub properties: HashMap<String, String>,
}

/// `GET /v1/namespaces/{namespace}/tables`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ListTablesResponse {
    pub identifiers: Vec<TableIdent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Catalog operations for engines.
pub struct CatalogService {
    catalog: Arc<dyn Catalog>,
    updates: Option<Arc<dyn TableUpdates>>,
    warehouse_location: String,
}

impl std::fmt::Debug for CatalogService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogService").field("catalog", &self.catalog).finish_non_exhaustive()
    }
}

impl CatalogService {
    pub fn new(
        catalog: Arc<dyn Catalog>,
        updates: Option<Arc<dyn TableUpdates>>,
        warehouse_location: String,
    ) -> Self {
        CatalogService { catalog, updates, warehouse_location }
    }

    pub fn config(&self) -> ConfigResponse {
        // Only a default: a client's own `warehouse` setting still wins, and no engine
        // needs it to read (table locations come with each table's metadata).
        let mut defaults = BTreeMap::new();
        if !self.warehouse_location.is_empty() {
            defaults.insert("warehouse".to_owned(), self.warehouse_location.clone());
            // The same under a key no client overrides with its own setting: the real-time
            // readers remember it to find `version-hint.text` when the node is down.
            defaults.insert("zombi.warehouse".to_owned(), self.warehouse_location.clone());
        }
        ConfigResponse { defaults, overrides: BTreeMap::new() }
    }

    pub async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
        page: Option<PageRequest>,
    ) -> Result<ListNamespacesResponse, CatalogError> {
        if let Some(parent) = parent {
            self.namespace_exists(parent).await?;
        }
        let mut namespaces = self.catalog.list_namespaces(parent).await?;
        namespaces.sort();
        namespaces.dedup();
        let (namespaces, next_page_token) = paginate(namespaces, page, |ns| ns.to_url_string());
        Ok(ListNamespacesResponse { namespaces, next_page_token })
    }

    pub async fn load_namespace(
        &self,
        namespace: &NamespaceIdent,
    ) -> Result<GetNamespaceResponse, CatalogError> {
        let loaded = self.catalog.get_namespace(namespace).await?;
        Ok(GetNamespaceResponse {
            namespace: loaded.name().clone(),
            properties: loaded.properties().clone(),
        })
    }

    /// `Ok` if the namespace exists, `NoSuchNamespace` otherwise.
    pub async fn namespace_exists(&self, namespace: &NamespaceIdent) -> Result<(), CatalogError> {
        if self.catalog.namespace_exists(namespace).await? {
            Ok(())
        } else {
            Err(no_such_namespace(namespace))
        }
    }

    pub async fn list_tables(
        &self,
        namespace: &NamespaceIdent,
        page: Option<PageRequest>,
    ) -> Result<ListTablesResponse, CatalogError> {
        let mut tables = self.catalog.list_tables(namespace).await?;
        if tables.is_empty() {
            // A catalog may answer an empty list for a missing namespace; engines need
            // the 404 to tell "no tables" from "no namespace".
            self.namespace_exists(namespace).await?;
        }
        tables.sort_by(|a, b| a.name().cmp(b.name()));
        tables.dedup();
        let (identifiers, next_page_token) = paginate(tables, page, |t| t.name().to_owned());
        Ok(ListTablesResponse { identifiers, next_page_token })
    }

    pub async fn load_table(
        &self,
        ident: &TableIdent,
        snapshots: SnapshotsMode,
    ) -> Result<LoadTableResult, CatalogError> {
        let table = match self.catalog.load_table(ident).await {
            Ok(table) => table,
            Err(e) if is_not_found(&e) => return Err(no_such_table(ident)),
            Err(e) => return Err(e.into()),
        };
        let metadata = match snapshots {
            SnapshotsMode::All => table.metadata().clone(),
            SnapshotsMode::Refs => referenced_snapshots_only(table.metadata())?,
        };
        Ok(LoadTableResult {
            metadata_location: table.metadata_location().map(str::to_owned),
            metadata,
            config: HashMap::new(),
            storage_credentials: None,
        })
    }

    /// Declares a table (a typed table, for Zombi's catalog). A staged creation (the first
    /// half of `CREATE TABLE … AS SELECT`) is refused: engines never write rows.
    pub async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        request: CreateTableRequest,
    ) -> Result<LoadTableResult, CatalogError> {
        if request.stage_create == Some(true) {
            return Err(CatalogError::read_only(
                "a staged table creation (CREATE TABLE … AS SELECT, REPLACE TABLE)",
            ));
        }
        let creation = TableCreation {
            name: request.name,
            location: request.location,
            schema: request.schema,
            partition_spec: request.partition_spec,
            sort_order: request.write_order,
            properties: request.properties,
            format_version: iceberg::spec::FormatVersion::V2,
        };
        let table =
            self.catalog.create_table(namespace, creation).await.map_err(|e| match e.kind() {
                ErrorKind::DataInvalid => CatalogError::BadRequest(e.message().to_owned()),
                ErrorKind::TableAlreadyExists => {
                    CatalogError::AlreadyExists(e.message().to_owned())
                }
                _ => e.into(),
            })?;
        Ok(LoadTableResult {
            metadata_location: table.metadata_location().map(str::to_owned),
            metadata: table.metadata().clone(),
            config: HashMap::new(),
            storage_credentials: None,
        })
    }

    /// Commits a schema or property change of a table (`body`: a `CommitTableRequest`).
    pub async fn update_table(
        &self,
        ident: &TableIdent,
        body: &[u8],
    ) -> Result<CommitTableResponse, CatalogError> {
        let Some(updates) = &self.updates else {
            return Err(CatalogError::read_only("updating a table"));
        };
        let request: CommitTableRequest = serde_json::from_slice(body).map_err(|e| {
            CatalogError::BadRequest(format!("the body is not a CommitTableRequest: {e}"))
        })?;
        let table = updates
            .update_table(ident, request.requirements, request.updates)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::TableNotFound | ErrorKind::NamespaceNotFound => no_such_table(ident),
                ErrorKind::DataInvalid => CatalogError::BadRequest(e.message().to_owned()),
                ErrorKind::CatalogCommitConflicts => {
                    CatalogError::CommitFailed(e.message().to_owned())
                }
                ErrorKind::FeatureUnsupported => CatalogError::Forbidden(e.message().to_owned()),
                _ => e.into(),
            })?;
        Ok(CommitTableResponse {
            metadata_location: table.metadata_location().unwrap_or_default().to_owned(),
            metadata: table.metadata().clone(),
        })
    }

    /// `Ok` if the table exists, `NoSuchTable` otherwise.
    pub async fn table_exists(&self, ident: &TableIdent) -> Result<(), CatalogError> {
        match self.catalog.table_exists(ident).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(no_such_table(ident)),
            Err(e) if is_not_found(&e) => Err(no_such_table(ident)),
            Err(e) => Err(e.into()),
        }
    }
}

/// Whether loading a table failed because it, or its namespace, does not exist.
fn is_not_found(e: &iceberg::Error) -> bool {
    matches!(e.kind(), ErrorKind::TableNotFound | ErrorKind::NamespaceNotFound)
}

/// A missing table is `NoSuchTableException` even when its namespace is missing too: Java
/// clients (Spark) read `ns.events.snapshots` by first asking for table `snapshots` in
/// namespace `ns.events`, and fall back to the metadata table of `ns.events` only on
/// `NoSuchTableException`. Iceberg's reference catalogs answer the same way.
fn no_such_table(ident: &TableIdent) -> CatalogError {
    CatalogError::NoSuchTable(format!(
        "table {}.{} does not exist",
        ident.namespace().join("."),
        ident.name()
    ))
}

fn no_such_namespace(namespace: &NamespaceIdent) -> CatalogError {
    CatalogError::NoSuchNamespace(format!("namespace {} does not exist", namespace.join(".")))
}

/// Cuts one page out of `items`, which must be sorted by `key` without duplicates, so a
/// token (the last key served) stays valid while entries are added or removed.
fn paginate<T>(
    items: Vec<T>,
    page: Option<PageRequest>,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let Some(page) = page else { return (items, None) };
    let mut rest: Vec<T> = match &page.after {
        Some(after) => {
            items.into_iter().filter(|item| key(item).as_str() > after.as_str()).collect()
        }
        None => items,
    };
    let next = match page.size {
        Some(size) if rest.len() > size => {
            rest.truncate(size);
            rest.last().map(|last| encode_token(&key(last)))
        }
        _ => None,
    };
    (rest, next)
}

/// The metadata with only the snapshots a branch or tag references (`snapshots=refs`).
/// `TableMetadata` keeps its snapshot map private, so the filtering happens on its JSON
/// form, which is what the client receives anyway.
fn referenced_snapshots_only(metadata: &TableMetadata) -> Result<TableMetadata, CatalogError> {
    let internal = |e: serde_json::Error| {
        CatalogError::Internal(format!("cannot filter snapshots of table metadata: {e}"))
    };
    let mut json = serde_json::to_value(metadata).map_err(internal)?;
    let mut referenced: HashSet<i64> = json
        .get("refs")
        .and_then(Value::as_object)
        .map(|refs| refs.values().filter_map(|r| r.get("snapshot-id")?.as_i64()).collect())
        .unwrap_or_default();
    referenced.extend(metadata.current_snapshot_id());
    if metadata.snapshots().all(|s| referenced.contains(&s.snapshot_id())) {
        return Ok(metadata.clone());
    }
    if let Some(Value::Array(snapshots)) = json.get_mut("snapshots") {
        snapshots.retain(|s| {
            s.get("snapshot-id").and_then(Value::as_i64).is_some_and(|id| referenced.contains(&id))
        });
    }
    serde_json::from_value(json).map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(after: Option<&str>, size: Option<usize>) -> Option<PageRequest> {
        Some(PageRequest { after: after.map(str::to_owned), size })
    }

    #[test]
    fn paginate_walks_sorted_keys() {
        let items = vec!["a", "b", "c"];
        let key = |s: &&str| s.to_string();
        assert_eq!(paginate(items.clone(), None, key), (items.clone(), None));
        assert_eq!(paginate(items.clone(), page(None, None), key), (items.clone(), None));
        let (first, token) = paginate(items.clone(), page(None, Some(2)), key);
        assert_eq!(first, vec!["a", "b"]);
        assert_eq!(token.as_deref(), Some(encode_token("b").as_str()));
        assert_eq!(paginate(items.clone(), page(Some("b"), Some(2)), key), (vec!["c"], None));
        // Exactly a full last page: no token, so no empty extra page.
        assert_eq!(paginate(items.clone(), page(Some("a"), Some(2)), key), (vec!["b", "c"], None));
        // A token whose entry was removed meanwhile still resumes in order.
        assert_eq!(paginate(vec!["a", "c"], page(Some("b"), Some(5)), key), (vec!["c"], None));
    }

    #[test]
    fn refs_mode_keeps_only_referenced_snapshots() {
        let metadata: TableMetadata =
            serde_json::from_value(metadata_with_two_snapshots()).expect("valid metadata");
        assert_eq!(metadata.snapshots().len(), 2);
        let filtered = referenced_snapshots_only(&metadata).expect("filtered");
        let ids: Vec<i64> = filtered.snapshots().map(|s| s.snapshot_id()).collect();
        assert_eq!(ids, vec![2]);
        assert_eq!(filtered.current_snapshot_id(), Some(2));
        assert_eq!(filtered.location(), metadata.location());
    }

    fn metadata_with_two_snapshots() -> Value {
        let snapshot = |id: i64, parent: Option<i64>, seq: i64| {
            serde_json::json!({
                "snapshot-id": id,
                "parent-snapshot-id": parent,
                "sequence-number": seq,
                "timestamp-ms": 1_767_225_600_000_i64 + seq,
                "manifest-list": format!("file:///w/t/metadata/snap-{id}.avro"),
                "summary": {"operation": "append"},
                "schema-id": 0
            })
        };
        serde_json::json!({
            "format-version": 2,
            "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1",
            "location": "file:///w/t",
            "last-sequence-number": 2,
            "last-updated-ms": 1_767_225_600_010_i64,
            "last-column-id": 1,
            "current-schema-id": 0,
            "schemas": [{"type": "struct", "schema-id": 0, "fields": [
                {"id": 1, "name": "id", "required": true, "type": "long"}
            ]}],
            "default-spec-id": 0,
            "partition-specs": [{"spec-id": 0, "fields": []}],
            "last-partition-id": 999,
            "default-sort-order-id": 0,
            "sort-orders": [{"order-id": 0, "fields": []}],
            "properties": {},
            "current-snapshot-id": 2,
            "refs": {"main": {"snapshot-id": 2, "type": "branch"}},
            "snapshots": [snapshot(1, None, 1), snapshot(2, Some(1), 2)],
            "snapshot-log": [
                {"snapshot-id": 1, "timestamp-ms": 1_767_225_600_001_i64},
                {"snapshot-id": 2, "timestamp-ms": 1_767_225_600_002_i64}
            ],
            "metadata-log": []
        })
    }
}
