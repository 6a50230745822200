use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use iceberg::TableCreation;
use iceberg::spec::{
    ListType, MapType, NestedField, PrimitiveType, Schema, StructType, TableMetadataBuilder, Type,
    UnboundPartitionSpec,
};
use zombi_shared::wire::Payload;

use super::declare::declare;
use super::{TypedTable, USER_PROPERTIES};
use crate::hot::StoredEvent;
use crate::schema;

const LOCATION: &str = "file:///w/zombi/orders";

fn p(t: PrimitiveType) -> Type {
    Type::Primitive(t)
}

/// The columns of the issue's example, with ids as Spark sends them (from 0).
fn orders_schema(extra: Vec<NestedField>) -> Schema {
    let customer = StructType::new(vec![
        NestedField::optional(6, "id", p(PrimitiveType::String)).into(),
        NestedField::optional(7, "tier", p(PrimitiveType::String)).into(),
    ]);
    let mut fields = vec![
        NestedField::required(0, "order_id", p(PrimitiveType::Long)).into(),
        NestedField::optional(1, "amount", p(PrimitiveType::Decimal { precision: 12, scale: 2 }))
            .into(),
        NestedField::optional(2, "placed_at", p(PrimitiveType::Timestamptz)).into(),
        NestedField::optional(3, "customer", Type::Struct(customer)).into(),
        NestedField::optional(
            4,
            "tags",
            Type::List(ListType::new(
                NestedField::list_element(8, p(PrimitiveType::String), true).into(),
            )),
        )
        .into(),
        NestedField::optional(
            5,
            "attrs",
            Type::Map(MapType::new(
                NestedField::map_key_element(9, p(PrimitiveType::String)).into(),
                NestedField::map_value_element(10, p(PrimitiveType::Int), false).into(),
            )),
        )
        .into(),
    ];
    fields.extend(extra.into_iter().map(Arc::new));
    Schema::builder().with_fields(fields).build().unwrap()
}

fn creation(schema: Schema, props: &[(&str, &str)]) -> TableCreation {
    TableCreation::builder()
        .name("orders".into())
        .schema(schema)
        .properties(
            props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .build()
}

fn typed(props: &[(&str, &str)]) -> Arc<TypedTable> {
    let declared = declare(creation(orders_schema(vec![]), props), LOCATION).unwrap();
    let metadata = TableMetadataBuilder::from_table_creation(declared).unwrap().build().unwrap();
    TypedTable::of(&metadata.metadata).unwrap().expect("a typed table")
}

fn row(seq: u64, payload: &str) -> schema::Row {
    let event = StoredEvent {
        timestamp_ms: 1_767_225_600_000,
        ingest_ms: 1_767_225_600_001,
        idempotency_key: None,
        payload: Payload::Json(payload.into()),
        role: Default::default(),
    };
    (0, seq, event)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a Arc<dyn Array> {
    batch.column(batch.schema().index_of(name).unwrap())
}

#[test]
fn a_declaration_gets_the_system_columns_their_ids_and_zombis_layout() {
    let declared = declare(creation(orders_schema(vec![]), &[("owner", "ana")]), LOCATION).unwrap();
    let metadata = TableMetadataBuilder::from_table_creation(declared).unwrap().build().unwrap();
    let m = metadata.metadata;
    let schema = m.current_schema();
    for f in schema::schema().as_struct().fields() {
        let got = schema.field_by_name(&f.name).unwrap();
        assert_eq!((got.id, &got.field_type), (f.id, &f.field_type), "system column {}", f.name);
    }
    let ids: Vec<(String, i32)> =
        schema.as_struct().fields().iter().skip(10).map(|f| (f.name.clone(), f.id)).collect();
    let names = ["order_id", "amount", "placed_at", "customer", "tags", "attrs"];
    assert_eq!(ids, names.iter().zip(11..).map(|(n, i)| (n.to_string(), i)).collect::<Vec<_>>());
    assert_eq!(schema.field_by_name("customer.tier").unwrap().id, 18, "nested ids follow");
    assert_eq!(m.default_partition_spec().fields().len(), 2);
    assert_eq!(m.default_sort_order().fields.len(), 2);
    let props = m.properties();
    assert_eq!(props["zombi.table-mode"], "typed");
    assert_eq!(props["owner"], "ana");
    for (key, values) in USER_PROPERTIES {
        assert_eq!(props[*key], values[0], "{key} is stored with its default");
    }
    assert_eq!(m.location(), LOCATION);
}

#[test]
fn declarations_zombi_cannot_honour_are_refused_with_what_to_change() {
    let refused = |c: TableCreation| declare(c, LOCATION).unwrap_err().to_string();
    let clash =
        orders_schema(vec![NestedField::optional(20, "Event_Time", p(PrimitiveType::Long))]);
    assert!(refused(creation(clash, &[])).contains("Event_Time clashes with a system column"));

    let spec = |fields: &[(i32, &str, iceberg::spec::Transform)]| {
        let mut b = UnboundPartitionSpec::builder();
        for (id, name, t) in fields {
            b = b.add_partition_field(*id, *name, *t).unwrap();
        }
        Some(b.build())
    };
    use iceberg::spec::Transform::{Bucket, Day, Identity};
    // A declared system column is that column, and a spec may partition by it.
    let event_time = NestedField::optional(20, "event_time", p(PrimitiveType::Timestamptz));
    let payload = NestedField::optional(21, "payload", p(PrimitiveType::String));
    let mut c = creation(orders_schema(vec![event_time.clone()]), &[]);
    c.partition_spec = spec(&[(20, "day", Day), (0, "order_bucket", Bucket(16))]);
    let declared = declare(c, LOCATION).unwrap();
    let fields: Vec<_> = declared
        .partition_spec
        .unwrap()
        .fields()
        .iter()
        .map(|f| (f.source_id, f.transform))
        .collect();
    assert_eq!(fields, vec![(schema::FIELD_EVENT_TIME, Day), (11, Bucket(16))]);
    assert_eq!(declared.schema.as_struct().fields().len(), 16, "event_time is not declared twice");
    for (extra, fields, expect) in [
        (vec![], vec![(3, "customer", Identity)], "of a primitive type"),
        (vec![payload], vec![(21, "payload", Identity)], "whole payload"),
        (vec![], vec![(2, "placed_at", Bucket(0))], "at least 1"),
        (vec![], vec![(0, "order_id", Day)], "does not apply"),
    ] {
        let mut c = creation(orders_schema(extra), &[]);
        c.partition_spec = spec(&fields);
        let e = refused(c);
        assert!(e.contains(expect), "{fields:?}: {e}");
    }

    let e = refused(creation(orders_schema(vec![]), &[("zombi.evlove", "none")]));
    assert!(e.contains("unknown table property zombi.evlove"), "{e}");
    let e = refused(creation(orders_schema(vec![]), &[("zombi.unknown-fields", "ignore")]));
    assert!(e.contains("it takes keep or drop"), "{e}");
    let e = refused(creation(orders_schema(vec![]), &[("format-version", "3")]));
    assert!(e.contains("format version 2"), "{e}");

    let ns = orders_schema(vec![NestedField::optional(20, "at", p(PrimitiveType::TimestampNs))]);
    assert!(refused(creation(ns, &[])).contains("nanosecond"));
    let int_keys = orders_schema(vec![NestedField::optional(
        20,
        "counts",
        Type::Map(MapType::new(
            NestedField::map_key_element(21, p(PrimitiveType::Int)).into(),
            NestedField::map_value_element(22, p(PrimitiveType::Int), false).into(),
        )),
    )]);
    assert!(refused(creation(int_keys, &[])).contains("map keys must be strings"));

    let mut c = creation(orders_schema(vec![]), &[]);
    c.name = "orders__dlq".into();
    assert!(refused(c).contains("reserved"));
    let mut c = creation(orders_schema(vec![]), &[]);
    c.location = Some("file:///elsewhere".into());
    assert!(refused(c).contains("remove the LOCATION"));
    let empty = Schema::builder().build().unwrap();
    assert!(refused(creation(empty, &[])).contains("at least one column"));
}

#[test]
fn events_convert_to_exact_typed_values_and_the_rest_stays_in_payload() {
    let t = typed(&[]);
    let rows = vec![
        row(
            0,
            r#"{"order_id": 7, "amount": 12.34, "placed_at": "2026-01-01T10:00:00+02:00",
                "customer": {"id": "c1", "tier": "gold", "since": 2019},
                "tags": ["a", "b"], "attrs": {"x": 1, "y": 2}, "note": "hi"}"#,
        ),
        row(1, r#"{"order_id": 8, "amount": null, "tags": [], "attrs": {}}"#),
        row(2, r#"{"order_id": 9223372036854775807, "amount": "1", "customer": null}"#),
    ];
    // "1" is a string: ingest refuses it unless the table takes numbers in strings, but a
    // flush always converts it (it was accepted while the table took them).
    assert!(t.check(&rows[2].2.payload).unwrap_err().to_string().contains("field amount"));
    let with = typed(&[("zombi.numbers-in-strings", "true")]);
    assert_eq!(with.check(&rows[2].2.payload), Ok(Vec::new()));
    // A value a flush cannot convert (had the column been added after the event was
    // accepted) stays in payload rather than fail the flush or be lost.
    let odd = [row(3, r#"{"order_id": 1, "amount": "abc"}"#)];
    let b = t.to_batch(&odd).unwrap();
    assert!(column(&b, "amount").is_null(0));
    assert_eq!(column(&b, "payload").as_string::<i32>().value(0), r#"{"amount":"abc"}"#);
    let dropped = typed(&[("zombi.unknown-fields", "drop")]).to_batch(&odd).unwrap();
    assert_eq!(column(&dropped, "payload").as_string::<i32>().value(0), r#"{"amount":"abc"}"#);
    let b = t.to_batch(&rows).unwrap();
    let ids = column(&b, "order_id").as_primitive::<Int64Type>();
    assert_eq!(ids.values().to_vec(), vec![7, 8, i64::MAX]);
    let amount = column(&b, "amount").as_primitive::<Decimal128Type>();
    assert_eq!((amount.value(0), amount.is_null(1), amount.value(2)), (1234, true, 100));
    let at = column(&b, "placed_at").as_primitive::<TimestampMicrosecondType>();
    assert_eq!(at.value(0), 1_767_254_400_000_000, "10:00+02:00 is 08:00Z");
    assert!(at.is_null(1));
    let customer = column(&b, "customer").as_struct();
    assert!(customer.is_valid(0) && customer.is_null(1) && customer.is_null(2));
    assert_eq!(customer.column_by_name("tier").unwrap().as_string::<i32>().value(0), "gold");
    let tags = column(&b, "tags").as_list::<i32>();
    assert_eq!(tags.value_length(0), 2);
    assert!(tags.is_valid(1) && tags.value_length(1) == 0 && tags.is_null(2));
    let attrs = column(&b, "attrs").as_map();
    assert_eq!(attrs.value_length(0), 2);
    assert_eq!(attrs.values().as_primitive::<Int32Type>().values().to_vec(), vec![1, 2]);
    let payload = column(&b, "payload").as_string::<i32>();
    assert_eq!(payload.value(0), r#"{"customer":{"since":2019},"note":"hi"}"#);
    assert!(payload.is_null(1) && payload.is_null(2), "nothing left over");
    assert_eq!(column(&b, "payload_bytes").null_count(), 3);
    assert_eq!(b.schema().field(10).metadata()["PARQUET:field_id"], "11");

    let dropped = typed(&[("zombi.unknown-fields", "drop")]).to_batch(&rows[..2]).unwrap();
    assert_eq!(column(&dropped, "payload").null_count(), 2);
}

#[test]
fn a_check_names_the_field_and_the_reason() {
    let t = typed(&[]);
    let check = |payload: &str| t.check(&Payload::Json(payload.into())).map_err(|e| e.to_string());
    assert_eq!(check(r#"{"order_id": 1}"#), Ok(Vec::new()));
    let cases = [
        (r#"{"amount": 1}"#, "field order_id: is required and missing or null"),
        (r#"{"order_id": "7"}"#, "field order_id: expected an integer (long), got a string \"7\""),
        (r#"{"order_id": 1.5}"#, "field order_id: expected an integer (long), got a number 1.5"),
        (r#"{"order_id": 1, "amount": 12.345}"#, "field amount: 12.345 has more than 2 digits"),
        (
            r#"{"order_id": 1, "placed_at": "noon"}"#,
            "field placed_at: expected an ISO-8601 timestamp",
        ),
        (r#"{"order_id": 1, "customer": {"tier": 3}}"#, "field customer.tier: expected a string"),
        (r#"{"order_id": 1, "tags": ["a", 2]}"#, "field tags[1]: expected a string"),
        (r#"{"order_id": 1, "tags": ["a", null]}"#, "field tags[1]: is required"),
        (
            r#"{"order_id": 1, "attrs": {"k": "v"}}"#,
            "field attrs[\"k\"]: expected an integer (int)",
        ),
        (r#"{"order_id": 1, "attrs": {"k": 3000000000}}"#, "3000000000 is out of range for int"),
        (r#"[1, 2]"#, "a typed table takes a JSON object as payload, got an array"),
    ];
    for (payload, want) in cases {
        let got = check(payload).expect_err(payload);
        assert!(got.contains(want), "{payload}: {got}");
    }
    let bytes = t.check(&Payload::Bytes(vec![1])).unwrap_err().to_string();
    assert!(bytes.contains("payload_base64"), "{bytes}");
}

#[test]
fn every_scalar_type_converts() {
    let fields = [
        ("b", PrimitiveType::Boolean, "true"),
        ("i", PrimitiveType::Int, "-5"),
        ("f", PrimitiveType::Float, "1.5"),
        ("d", PrimitiveType::Double, "2e-3"),
        ("day", PrimitiveType::Date, "\"2026-01-31\""),
        ("t", PrimitiveType::Time, "\"13:45:00.250\""),
        ("ts", PrimitiveType::Timestamp, "\"2026-01-31 13:45:00\""),
        ("u", PrimitiveType::Uuid, "\"67e55044-10b1-426f-9247-bb680e5fe0c8\""),
        ("fx", PrimitiveType::Fixed(2), "\"AAE=\""),
        ("bin", PrimitiveType::Binary, "\"aGk=\""),
    ];
    let schema = Schema::builder()
        .with_fields(
            fields
                .iter()
                .enumerate()
                .map(|(i, (n, t, _))| NestedField::optional(i as i32 + 1, *n, p(t.clone())).into()),
        )
        .build()
        .unwrap();
    let declared = declare(creation(schema, &[]), LOCATION).unwrap();
    let metadata = TableMetadataBuilder::from_table_creation(declared).unwrap().build().unwrap();
    let t = TypedTable::of(&metadata.metadata).unwrap().unwrap();
    let payload = format!(
        "{{{}}}",
        fields.iter().map(|(n, _, v)| format!("\"{n}\": {v}")).collect::<Vec<_>>().join(", ")
    );
    let b = t.to_batch(&[row(0, &payload), row(1, "{}")]).unwrap();
    for (n, _, _) in fields {
        let c = column(&b, n);
        assert!(c.is_valid(0) && c.is_null(1), "{n}");
    }
    assert_eq!(column(&b, "day").as_primitive::<arrow_array::types::Date32Type>().value(0), 20484);
    assert_eq!(
        column(&b, "t").as_primitive::<arrow_array::types::Time64MicrosecondType>().value(0),
        (13 * 3600 + 45 * 60) * 1_000_000 + 250_000
    );
    assert_eq!(column(&b, "fx").as_fixed_size_binary().value(0), [0, 1]);
    assert_eq!(column(&b, "bin").as_binary::<i64>().value(0), b"hi");
    assert!(t.check(&Payload::Json(r#"{"fx": "AAEC"}"#.into())).is_err(), "3 bytes for fixed[2]");
}

#[test]
fn additive_tables_infer_columns_from_first_values_and_hold_later_ones_to_them() {
    let t = typed(&[("zombi.evolve", "additive")]);
    let new = t
        .check(&Payload::Json(
            r#"{"order_id": 1, "coupon": "X", "n": 3, "r": 2.5, "meta": {"a": [1.5], "b": null},
                "none": null, "empty": [], "sequence": 5}"#
                .into(),
        ))
        .unwrap();
    let names: Vec<&str> = new.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["coupon", "n", "r", "meta"], "null, empty and system-named fields wait");
    assert_eq!(new[1].field_type, p(PrimitiveType::Long));
    assert_eq!(new[2].field_type, p(PrimitiveType::Double));
    let Type::Struct(meta) = &new[3].field_type else { panic!("{:?}", new[3]) };
    assert_eq!(meta.fields().len(), 1, "b was null: no field yet");
    let Type::List(a) = meta.fields()[0].field_type.as_ref() else { panic!("{meta:?}") };
    assert_eq!(*a.element_field.field_type, p(PrimitiveType::Double));
    let wider = t.with_columns(&new).unwrap();
    let err = wider.check(&Payload::Json(r#"{"order_id": 2, "n": "x"}"#.into())).unwrap_err();
    assert!(err.to_string().contains("field n: expected an integer (long)"), "{err}");
    assert!(wider.check(&Payload::Json(r#"{"order_id": 2, "r": 7}"#.into())).unwrap().is_empty());
    let schema = t.schema_with(&new).unwrap().unwrap();
    let coupon = schema.field_by_name("coupon").unwrap();
    assert!(!coupon.required && coupon.id > t.schema().highest_field_id());
    assert!(t.schema_with(&[]).unwrap().is_none());
    // A table without `additive` infers nothing.
    assert!(
        typed(&[])
            .check(&Payload::Json(r#"{"order_id": 1, "coupon": "X"}"#.into()))
            .unwrap()
            .is_empty()
    );
}

/// The metadata of `typed(&[])`'s table after `change` (on its builder) and a check.
fn changed(
    change: impl FnOnce(&iceberg::spec::TableMetadata) -> iceberg::spec::TableMetadataBuilder,
) -> Result<(), String> {
    let declared = declare(creation(orders_schema(vec![]), &[]), LOCATION).unwrap();
    let current =
        TableMetadataBuilder::from_table_creation(declared).unwrap().build().unwrap().metadata;
    let next = change(&current).build().map_err(|e| e.to_string())?.metadata;
    super::evolve::check_update(&current, &next).map_err(|e| e.to_string())
}

fn with_schema(
    current: &iceberg::spec::TableMetadata,
    edit: impl FnOnce(Vec<Arc<NestedField>>) -> Vec<Arc<NestedField>>,
    make_current: bool,
) -> iceberg::spec::TableMetadataBuilder {
    let fields = edit(current.current_schema().as_struct().fields().to_vec());
    let schema = Schema::builder().with_schema_id(1).with_fields(fields).build().unwrap();
    let b = TableMetadataBuilder::new_from_metadata(current.clone(), None);
    if make_current { b.add_current_schema(schema).unwrap() } else { b.add_schema(schema).unwrap() }
}

#[test]
fn engine_schema_changes_that_keep_events_convertible_are_accepted_and_others_refused() {
    let retype = |name: &str, t: Type, required: bool| {
        let name = name.to_owned();
        move |fields: Vec<Arc<NestedField>>| -> Vec<Arc<NestedField>> {
            fields
                .into_iter()
                .map(|f| {
                    if f.name == name {
                        Arc::new(NestedField::new(f.id, &f.name, t.clone(), required))
                    } else {
                        f
                    }
                })
                .collect()
        }
    };
    let add = |f: NestedField| {
        move |mut fields: Vec<Arc<NestedField>>| {
            fields.push(Arc::new(f));
            fields
        }
    };
    let decimal = |p| Type::Primitive(PrimitiveType::Decimal { precision: p, scale: 2 });
    // Accepted: a new optional column, a wider decimal, required → optional.
    assert_eq!(
        changed(|m| with_schema(
            m,
            add(NestedField::optional(30, "note", p(PrimitiveType::String))),
            true
        )),
        Ok(())
    );
    assert_eq!(changed(|m| with_schema(m, retype("amount", decimal(20), false), true)), Ok(()));
    assert_eq!(
        changed(|m| with_schema(m, retype("order_id", p(PrimitiveType::Long), false), true)),
        Ok(())
    );
    // Refused, each with its reason.
    for (got, want) in [
        (
            changed(|m| with_schema(m, retype("amount", decimal(10), false), true)),
            "column amount cannot change from decimal(12",
        ),
        (
            changed(|m| with_schema(m, retype("amount", p(PrimitiveType::String), false), true)),
            "cannot change",
        ),
        (
            changed(|m| {
                with_schema(m, retype("placed_at", p(PrimitiveType::Timestamptz), true), true)
            }),
            "cannot become required",
        ),
        (
            changed(|m| {
                with_schema(m, add(NestedField::required(30, "must", p(PrimitiveType::Int))), true)
            }),
            "must be optional",
        ),
        (
            changed(|m| {
                with_schema(m, |f| f.into_iter().filter(|f| f.name != "tags").collect(), true)
            }),
            "dropping column tags",
        ),
        (
            changed(|m| with_schema(m, retype("partition", p(PrimitiveType::Long), true), true)),
            "system column partition",
        ),
        (
            changed(|m| {
                with_schema(
                    m,
                    add(NestedField::optional(30, "note", p(PrimitiveType::String))),
                    false,
                )
            }),
            "must become the table's current schema",
        ),
        (
            changed(|m| {
                with_schema(m, add(NestedField::optional(30, "", p(PrimitiveType::String))), true)
            }),
            "needs a name",
        ),
        (
            changed(|m| {
                TableMetadataBuilder::new_from_metadata(m.clone(), None)
                    .set_properties([("zombi.table-mode".to_owned(), "raw".to_owned())].into())
                    .unwrap()
            }),
            "table property zombi.table-mode is Zombi's and cannot change",
        ),
    ] {
        let e = got.expect_err(want);
        assert!(e.contains(want), "{want}: {e}");
    }
}
