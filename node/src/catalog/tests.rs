//! The catalog on its own: pointers in memory, metadata in a local warehouse. What it
//! creates, commits and refuses, without a node around it.

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::spec::TableMetadataBuilder;
use iceberg::{Catalog as _, ErrorKind, TableRequirement, TableUpdate};
use zombi_shared::config::{NodeConfig, TableMode, TableOverrides};

use super::ZombiCatalog;
use super::pointers::{MemoryPointers, PointerStore};
use crate::schema::{self, dead_letter, properties};

struct Fixture {
    catalog: ZombiCatalog,
    pointers: Arc<MemoryPointers>,
    warehouse: tempfile::TempDir,
}

fn catalog() -> Fixture {
    let warehouse = tempfile::tempdir().unwrap();
    let pointers = Arc::new(MemoryPointers::default());
    let location = format!("file://{}", warehouse.path().display());
    let io = super::warehouse::file_io(&NodeConfig::default());
    let catalog = ZombiCatalog::new(pointers.clone(), io, None, "zombi", &location);
    Fixture { catalog, pointers, warehouse }
}

#[tokio::test]
async fn a_first_write_creates_a_raw_table_and_later_ones_load_it() {
    let f = catalog();
    let created = f.catalog.load_or_create("clicks").await.unwrap();
    let metadata = created.metadata();
    assert_eq!(metadata.current_schema().as_struct(), schema::schema().as_struct());
    assert_eq!(metadata.properties()[properties::LAYOUT_VERSION], "1");
    assert!(!metadata.properties().contains_key(properties::TABLE_MODE));
    // The commit point is the pointer; the warehouse's hint names the same file.
    let pointer = f.pointers.pointer("clicks").unwrap().unwrap();
    assert_eq!(created.metadata_location(), Some(pointer.as_str()));
    let hint = f.warehouse.path().join("zombi/clicks/metadata/version-hint.text");
    assert!(hint.is_file(), "{}", hint.display());
    let loaded = f.catalog.load_or_create("clicks").await.unwrap();
    assert_eq!(loaded.metadata_location(), created.metadata_location());
}

#[tokio::test]
async fn a_dead_letter_table_is_created_with_its_own_schema() {
    let f = catalog();
    let name = dead_letter::table_of("orders");
    let table = f.catalog.load_or_create(&name).await.unwrap();
    let props = table.metadata().properties();
    assert_eq!(props[properties::TABLE_MODE], "dead_letter");
    assert_eq!(props[properties::SOURCE_TABLE], "orders");
    let schema = table.metadata().current_schema();
    assert!(
        schema.field_by_name("error").is_some()
            && schema.field_by_name("source_sequence").is_some()
    );
}

#[tokio::test]
async fn a_rebuilt_commit_moves_the_pointer_and_nothing_moves_without_one() {
    let f = catalog();
    let ident = f.catalog.ident("clicks");
    let before = f.catalog.load_or_create("clicks").await.unwrap();
    let committed = f
        .catalog
        .commit_rebuilt(&ident, async |current: &iceberg::table::Table| {
            let builder = TableMetadataBuilder::new_from_metadata(
                current.metadata().clone(),
                current.metadata_location().map(str::to_owned),
            );
            let props = HashMap::from([("owner".to_owned(), "data-eng".to_owned())]);
            Ok(Some(builder.set_properties(props)?.build()?.metadata))
        })
        .await
        .unwrap()
        .expect("a commit");
    assert_ne!(committed.metadata_location(), before.metadata_location());
    let loaded = f.catalog.load_table(&ident).await.unwrap();
    assert_eq!(loaded.metadata().properties()["owner"], "data-eng");
    // A rebuild that answers nothing commits nothing.
    let none = f.catalog.commit_rebuilt(&ident, async |_: &iceberg::table::Table| Ok(None));
    assert!(none.await.unwrap().is_none());
    let after = f.pointers.pointer("clicks").unwrap();
    assert_eq!(after.as_deref(), loaded.metadata_location());
}

#[tokio::test]
async fn engines_may_not_commit_data_or_change_a_raw_tables_schema() {
    let f = catalog();
    let ident = f.catalog.ident("clicks");
    let table = f.catalog.load_or_create("clicks").await.unwrap();
    let snapshot = TableUpdate::RemoveSnapshots { snapshot_ids: vec![1] };
    let refused = f.catalog.update_metadata(&ident, vec![], vec![snapshot]).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::FeatureUnsupported);
    assert!(refused.message().contains("remove-snapshots is refused"), "{}", refused.message());
    // A stale requirement fails instead of overwriting newer metadata.
    let stale = TableRequirement::UuidMatch { uuid: uuid::Uuid::nil() };
    let props = TableUpdate::SetProperties {
        updates: HashMap::from([("owner".to_owned(), "x".to_owned())]),
    };
    let refused = f.catalog.update_metadata(&ident, vec![stale], vec![props]).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::CatalogCommitConflicts, "{refused}");
    // Nothing moved.
    let now = f.catalog.load_table(&ident).await.unwrap();
    assert_eq!(now.metadata_location(), table.metadata_location());
}

#[tokio::test]
async fn typed_tables_the_config_declares_exist_and_bad_declarations_name_their_table() {
    let f = catalog();
    let mut config = NodeConfig::default();
    let typed = TableOverrides {
        mode: TableMode::Typed,
        columns: Some("order_id long not null, amount decimal(12, 2)".into()),
        ..TableOverrides::default()
    };
    config.tables.insert("orders".into(), typed);
    f.catalog.create_configured(&config).await.unwrap();
    let orders = f.catalog.load_table(&f.catalog.ident("orders")).await.unwrap();
    assert_eq!(orders.metadata().properties()[properties::TABLE_MODE], "typed");
    assert!(orders.metadata().current_schema().field_by_name("order_id").is_some());
    // Running it again keeps the table as it is.
    f.catalog.create_configured(&config).await.unwrap();
    let again = f.catalog.load_table(&f.catalog.ident("orders")).await.unwrap();
    assert_eq!(again.metadata_location(), orders.metadata_location());

    let clash = TableOverrides {
        mode: TableMode::Typed,
        columns: Some("sequence long".into()),
        ..TableOverrides::default()
    };
    config.tables.insert("bad".into(), clash);
    let refused = f.catalog.create_configured(&config).await.unwrap_err().to_string();
    assert!(refused.starts_with("tables.bad: "), "{refused}");
}

/// (transform, source id) of each field of the table's default spec.
fn spec_of(table: &iceberg::table::Table) -> Vec<(String, i32)> {
    let spec = table.metadata().default_partition_spec();
    spec.fields().iter().map(|f| (f.transform.to_string(), f.source_id)).collect()
}

#[tokio::test]
async fn the_config_and_the_catalog_choose_a_tables_spec_and_zombi_refuses_what_it_cannot_keep() {
    let f = catalog();
    let mut config = NodeConfig::default();
    let partitioned = |mode, columns: Option<&str>, by: &[&str]| TableOverrides {
        mode,
        columns: columns.map(str::to_owned),
        partition_by: Some(by.iter().map(|s| s.to_string()).collect()),
        ..TableOverrides::default()
    };
    let orders = partitioned(
        TableMode::Typed,
        Some("customer_id string, amount decimal(12, 2)"),
        &["day(event_time)", "bucket(8, customer_id)"],
    );
    config.tables.insert("orders".into(), orders);
    config.tables.insert("daily".into(), partitioned(TableMode::Raw, None, &["event_date"]));
    f.catalog.create_configured(&config).await.unwrap();
    let orders = f.catalog.load_table(&f.catalog.ident("orders")).await.unwrap();
    let customer = orders.metadata().current_schema().field_by_name("customer_id").unwrap().id;
    assert_eq!(
        spec_of(&orders),
        vec![("day".into(), schema::FIELD_EVENT_TIME), ("bucket[8]".into(), customer)]
    );
    let event_times = orders.metadata().current_schema().as_struct().fields().iter();
    assert_eq!(event_times.filter(|f| f.name == "event_time").count(), 1, "no second event_time");
    let daily = f.catalog.load_table(&f.catalog.ident("daily")).await.unwrap();
    assert_eq!(spec_of(&daily), vec![("identity".into(), schema::FIELD_EVENT_DATE)]);
    assert!(!daily.metadata().properties().contains_key(properties::TABLE_MODE), "raw");

    let mut bad = NodeConfig::default();
    bad.tables.insert("bad".into(), partitioned(TableMode::Raw, None, &["identity(payload)"]));
    let refused = f.catalog.create_configured(&bad).await.unwrap_err().to_string();
    assert!(refused.starts_with("tables.bad: ") && refused.contains("payload"), "{refused}");

    // Evolution through the catalog: a spec Zombi keeps becomes the default; one it cannot
    // keep is refused with the reason and changes nothing.
    let ident = f.catalog.ident("daily");
    let evolve = |source_id, transform| {
        let spec = iceberg::spec::UnboundPartitionSpec::builder()
            .add_partition_field(source_id, "f", transform)
            .unwrap()
            .build();
        vec![TableUpdate::AddSpec { spec }, TableUpdate::SetDefaultSpec { spec_id: -1 }]
    };
    use iceberg::spec::Transform;
    let before = f.catalog.load_table(&ident).await.unwrap();
    let refused = f
        .catalog
        .update_metadata(&ident, vec![], evolve(schema::FIELD_PAYLOAD_BYTES, Transform::Bucket(4)))
        .await
        .unwrap_err();
    assert!(refused.message().contains("whole payload"), "{refused}");
    let refused = f
        .catalog
        .update_metadata(&ident, vec![], evolve(schema::FIELD_SEQUENCE, Transform::Day))
        .await
        .unwrap_err();
    assert!(refused.message().contains("does not apply"), "{refused}");
    let now = f.catalog.load_table(&ident).await.unwrap();
    assert_eq!(now.metadata_location(), before.metadata_location());
    let evolved = f
        .catalog
        .update_metadata(&ident, vec![], evolve(schema::FIELD_PARTITION, Transform::Bucket(4)))
        .await
        .unwrap();
    assert_eq!(spec_of(&evolved), vec![("bucket[4]".into(), schema::FIELD_PARTITION)]);
    assert_eq!(evolved.metadata().partition_specs_iter().len(), 2, "the old spec stays");
}
