//! Typed tables (docs/typed-tables.md): declared with PyIceberg's `create_table`, Spark's
//! `CREATE TABLE` or a raw REST request; events convert to typed columns that PyIceberg,
//! DuckDB, Spark, iceberg-rust and the real-time readers read with the declared types and
//! exact values; events that do not fit are refused with the record, the field and the
//! reason, and never stall the table.

use std::collections::BTreeMap;

use anyhow::Context as _;
use arrow_array::Array as _;
use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Int64Type};
use futures::TryStreamExt;
use iceberg::expr::Reference;
use iceberg::spec::Datum;
use serde_json::{Value, json};
use zombi_tests::driver::Driver;
use zombi_tests::engines::{load_table, read_ipc, venv_python};
use zombi_tests::producer::{Reply, send_bulk, send_one};
use zombi_tests::{Edge, Node, client};

/// 2026-01-01T10:00:00Z: every event of these tests falls in this hour.
const BASE: i64 = 1_767_261_600_000;
/// 2026-01-01T00:00:00Z in seconds.
const DAY0_SECS: i64 = 1_767_225_600;

/// The payload of order `i`: every declared type, nulls and missing fields, a nested
/// unknown field (`customer.since`) and a top-level one (`extra`).
fn order(i: i64) -> Value {
    let mut e = json!({
        "order_id": i,
        "amount": serde_json::from_str::<Value>(&amount(i)).unwrap(),
        "placed_at": format!("2026-01-01T{:02}:{:02}:00.123456+02:00", 10 + i / 60, i % 60),
        "attrs": {"a": i, "b": null},
        "ok": i % 2 == 0,
        "ratio": i as f64 / 8.0,
        "qty": i * 1000,
        "extra": format!("e{i}"),
    });
    if i % 5 != 0 {
        e["day"] = json!("2026-01-31");
    }
    e["customer"] = if i % 3 == 0 {
        Value::Null
    } else {
        json!({"id": format!("c{i}"), "tier": if i % 2 == 0 { "gold" } else { "silver" }, "since": i})
    };
    if i % 4 != 0 {
        e["tags"] = json!([format!("t{i}"), "x"]);
    }
    e
}

/// The amount of order `i` as a decimal literal with two places.
fn amount(i: i64) -> String {
    format!("{}.{:02}", i * 7, i % 100)
}

/// Order `i` as `tests/python/typed_engines.py` `canon` prints a row of it.
fn canonical(i: i64, keep_unknown: bool) -> Value {
    let customer = (i % 3 != 0).then(
        || json!({"id": format!("c{i}"), "tier": if i % 2 == 0 { "gold" } else { "silver" }}),
    );
    let placed = (DAY0_SECS + (10 + i / 60 - 2) * 3600 + (i % 60) * 60) * 1_000_000 + 123_456;
    let mut payload = serde_json::Map::new();
    if i % 3 != 0 {
        payload.insert("customer".into(), json!({"since": i}));
    }
    payload.insert("extra".into(), json!(format!("e{i}")));
    json!({
        "order_id": i,
        "amount": amount(i),
        "placed_at": placed,
        "day": (i % 5 != 0).then_some("2026-01-31"),
        "customer": customer,
        "tags": (i % 4 != 0).then(|| json!([format!("t{i}"), "x"])),
        "attrs": [["a", i], ["b", null]],
        "ok": i % 2 == 0,
        "ratio": i as f64 / 8.0,
        "qty": i * 1000,
        "payload": keep_unknown.then_some(Value::Object(payload)),
    })
}

async fn write_orders(
    edge: &Edge,
    table: &str,
    ids: std::ops::RangeInclusive<i64>,
) -> anyhow::Result<()> {
    let records: Vec<Value> =
        ids.map(|i| json!({"payload": order(i), "timestamp_ms": BASE + i * 1000})).collect();
    let reply = send_bulk(&client(), &edge.url(), table, &records).await?;
    anyhow::ensure!(reply.status == 200, "bulk write: {reply:?}");
    Ok(())
}

fn python(args: &[&str]) -> anyhow::Result<Value> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/typed_engines.py");
    let out = std::process::Command::new(venv_python()).arg(script).args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "typed_engines.py {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The rows a reader returned, as `Value`s in order_id order.
fn rows(v: &Value) -> Vec<Value> {
    v["rows"].as_array().cloned().unwrap_or_default()
}

fn assert_rows(reader: &str, got: &[Value], want: &[Value]) {
    assert_eq!(got.len(), want.len(), "{reader}: row count");
    for (g, w) in got.iter().zip(want) {
        // Spark's reading of `orders_sql` has no day/attrs/ok/ratio/qty columns.
        let w: serde_json::Map<String, Value> = w
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| g.get(k.as_str()).is_some())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(g, &Value::Object(w), "{reader}");
    }
}

/// The table declared with PyIceberg's `create_table` and the one declared with Spark SQL's
/// `CREATE TABLE` read back with their declared types and exact values in PyIceberg,
/// DuckDB, Spark, iceberg-rust and the real-time readers (cold and hot rows); a filter on
/// a typed column skips the files whose statistics exclude it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_tables_read_back_with_their_types_in_every_engine() -> anyhow::Result<()> {
    let node = Node::start(&[("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000")]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    // Spark starts slowly: it declares `orders_sql` while PyIceberg declares `orders`.
    let mut spark = Driver::start(
        "typed_spark.py",
        &[
            "--uri".into(),
            node.url(),
            "--create".into(),
            "orders_sql".into(),
            "--read".into(),
            "orders".into(),
            "--read".into(),
            "orders_sql".into(),
            "--read".into(),
            "additive".into(),
            "--dead-letters".into(),
            "additive__dlq".into(),
            "--min-order".into(),
            "61".into(),
        ],
    )?;
    let created = python(&["create", "--uri", &node.url(), "--table", "orders"])?;
    python(&[
        "create",
        "--uri",
        &node.url(),
        "--table",
        "additive",
        "--prop",
        "zombi.evolve=additive",
        "--prop",
        "zombi.on-error=dead_letter",
    ])?;
    let fields = &created["fields"];
    for (name, id) in
        [("partition", 1), ("sequence", 2), ("payload", 7), ("event_hour", 10), ("order_id", 11)]
    {
        assert_eq!(fields[name], id, "field ids: {created}");
    }
    assert_eq!(created["properties"]["zombi.on-error"], "reject", "{created}");

    // Two flushes (orders 1-60, 61-120), so `order_id >= 61` can skip the first file; then
    // 20 hot orders that only the real-time readers see.
    write_orders(&edge, "orders", 1..=60).await?;
    node.flush("orders").await?;
    write_orders(&edge, "orders", 61..=120).await?;
    node.flush("orders").await?;
    write_orders(&edge, "orders", 121..=140).await?;
    let cold: Vec<Value> = (1..=120).map(|i| canonical(i, true)).collect();
    let all: Vec<Value> = (1..=140).map(|i| canonical(i, true)).collect();

    // iceberg-rust, in process: types, exact values, and pruning by statistics.
    let table = load_table(&node.url(), "orders", &Default::default()).await?;
    let batches: Vec<_> =
        table.scan().select_all().build()?.to_arrow().await?.try_collect().await?;
    let mut seen = BTreeMap::new();
    for b in &batches {
        let ids = b.column_by_name("order_id").context("order_id")?.as_primitive::<Int64Type>();
        let amounts =
            b.column_by_name("amount").context("amount")?.as_primitive::<Decimal128Type>();
        assert_eq!(amounts.precision(), 12);
        for r in 0..b.num_rows() {
            seen.insert(ids.value(r), amounts.value(r));
        }
    }
    let want: BTreeMap<i64, i128> =
        (1..=120).map(|i| (i, (i as i128 * 7) * 100 + (i % 100) as i128)).collect();
    assert_eq!(seen, want, "iceberg-rust: order_id → amount (unscaled)");
    let plan = |filter: Option<iceberg::expr::Predicate>| {
        let mut scan = table.scan();
        if let Some(f) = filter {
            scan = scan.with_filter(f);
        }
        async move { anyhow::Ok(scan.build()?.plan_files().await?.try_collect::<Vec<_>>().await?.len()) }
    };
    let (all_files, filtered) = (
        plan(None).await?,
        plan(Some(Reference::new("order_id").greater_than_or_equal_to(Datum::long(61)))).await?,
    );
    assert!(
        filtered < all_files,
        "iceberg-rust: order_id >= 61 planned {filtered} of {all_files} files"
    );

    // The hot API serves typed rows in the table's schema.
    let (status, body) = node.hot("orders", "").await?;
    assert_eq!(status, 200);
    let hot = read_ipc(&body)?;
    let hot_ids: Vec<i64> = hot
        .iter()
        .flat_map(|b| {
            b.column_by_name("order_id").unwrap().as_primitive::<Int64Type>().values().to_vec()
        })
        .collect();
    assert_eq!(hot_ids.len(), 20, "hot rows");
    assert!(hot_ids.iter().all(|i| (121..=140).contains(i)), "{hot_ids:?}");

    // PyIceberg and DuckDB (committed rows), Zombi's Python reader (committed + hot).
    let read = python(&["read", "--uri", &node.url(), "--table", "orders", "--min-order", "61"])?;
    assert_rows("pyiceberg", &rows(&read["pyiceberg"]), &cold);
    assert_rows("duckdb", &rows(&read["duckdb"]), &cold);
    assert_rows("python reader", &rows(&read["python_reader"]), &all);
    let types = &read["pyiceberg"]["types"];
    assert_eq!(types["amount"], "decimal(12, 2)", "{types}");
    assert_eq!(types["placed_at"], "timestamptz", "{types}");
    assert_eq!(types["attrs"], "map<string, int>", "{types}");
    let (files, filtered) = (&read["pyiceberg"]["all_files"], &read["pyiceberg"]["filtered_files"]);
    assert!(
        filtered.as_u64() < files.as_u64(),
        "pyiceberg: order_id >= 61 planned {filtered} of {files}"
    );

    // Spark: `CREATE TABLE` declared orders_sql, a PARTITIONED BY on a double was refused; now write to
    // it and read both tables (through Zombi's plugin: committed and hot rows).
    let declared = spark.next_json().await?;
    let columns: Vec<String> = declared["created"]
        .as_array()
        .context("created")?
        .iter()
        .map(|c| format!("{} {}", c[0].as_str().unwrap(), c[1].as_str().unwrap()))
        .collect();
    for want in [
        "partition int",
        "event_time timestamp",
        "order_id bigint",
        "amount decimal(12,2)",
        "placed_at timestamp",
        "customer struct<id:string,tier:string>",
        "tags array<string>",
    ] {
        assert!(columns.iter().any(|c| c == want), "{want} in {columns:?}");
    }
    let refused = declared["refused"].as_str().context("PARTITIONED BY must be refused")?;
    assert!(refused.contains("floating-point"), "{refused}");
    write_orders(&edge, "orders_sql", 1..=60).await?;
    node.flush("orders_sql").await?;
    write_orders(&edge, "orders_sql", 61..=80).await?;
    node.flush("orders_sql").await?;
    write_orders(&edge, "orders_sql", 81..=90).await?;
    // An additive table: `coupon` arrives with order 4; Spark reads it as a column.
    for i in 1..=6 {
        let mut p = json!({"order_id": i, "qty": i});
        if i >= 4 {
            p["coupon"] = json!(format!("C{i}"));
        }
        let r = send_one(
            &client(),
            &edge.url(),
            "additive",
            &json!({"payload": p, "timestamp_ms": BASE + i}),
        )
        .await?;
        assert_eq!(r.status, 200, "{r:?}");
        if i == 3 {
            node.flush("additive").await?;
        }
    }
    // A coupon that is not a string goes to the dead-letter table.
    let bad = json!({"payload": {"order_id": 7, "coupon": 7}, "timestamp_ms": BASE + 7});
    let r = send_one(&client(), &edge.url(), "additive", &bad).await?;
    assert_eq!((r.status, &r.body["dead_lettered"]), (200, &json!(true)), "{r:?}");
    node.flush("additive").await?;
    node.flush("additive__dlq").await?;
    let dead = zombi_tests::engines::iceberg_rust_rows(&node.url(), "additive__dlq", None).await?;
    let errors: Vec<String> = dead
        .iter()
        .flat_map(|b| {
            let e = b.column_by_name("error").unwrap().as_string::<i32>();
            (0..b.num_rows()).map(|i| e.value(i).to_owned()).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        errors,
        ["field coupon: expected a string (string), got a number 7"],
        "iceberg-rust"
    );
    spark.say("read").await?;
    let read = spark.next_json().await?;
    spark.finish().await?;
    assert_rows("spark orders", &rows(&read["orders"]), &all);
    let sql: Vec<Value> = (1..=90).map(|i| canonical(i, false)).collect();
    assert_rows("spark orders_sql", &rows(&read["orders_sql"]), &sql);
    let additive: Vec<Value> = (1..=6)
        .map(|i| {
            json!({"order_id": i, "amount": null, "placed_at": null, "day": null, "customer": null,
                   "tags": null, "attrs": null, "ok": null, "ratio": null, "qty": i, "payload": null,
                   "coupon": (i >= 4).then(|| format!("C{i}"))})
        })
        .collect();
    assert_eq!(
        read["additive__dlq"]["rows"],
        json!([[
            6,
            "field coupon: expected a string (string), got a number 7",
            bad["payload"].to_string()
        ]]),
        "spark reads the dead-letter table"
    );
    assert_rows("spark additive", &rows(&read["additive"]), &additive);
    let columns = read["additive"]["columns"].as_array().context("columns")?;
    assert!(columns.iter().any(|c| c == "coupon"), "spark reads the inferred column: {columns:?}");
    for t in ["orders", "orders_sql"] {
        let (files, filtered) = (&read[t]["files"], &read[t]["filtered_files"]);
        assert!(
            filtered.as_u64() < files.as_u64(),
            "spark {t}: order_id >= 61 read {filtered} of {files} files"
        );
    }
    Ok(())
}

async fn create(node: &Node, body: &Value) -> anyhow::Result<(u16, Value)> {
    let r = client()
        .post(format!("{}/v1/namespaces/zombi/tables", node.url()))
        .json(body)
        .send()
        .await?;
    Ok((r.status().as_u16(), r.json().await?))
}

fn declaration(name: &str, props: Value) -> Value {
    json!({
        "name": name,
        "schema": {"type": "struct", "schema-id": 0, "fields": [
            {"id": 1, "name": "order_id", "type": "long", "required": true},
            {"id": 2, "name": "amount", "type": "decimal(12, 2)", "required": false},
            {"id": 3, "name": "placed_at", "type": "timestamptz", "required": false},
        ]},
        "properties": props,
    })
}

fn message(reply: &Reply) -> &str {
    reply.body["error"]["message"].as_str().unwrap_or("")
}

/// Events that do not fit a typed table get 400 naming the record, the field and the
/// reason, and nothing of their request is stored; the table keeps taking good events, a
/// restart keeps the table typed, and refused declarations say what to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_that_do_not_fit_are_refused_by_record_field_and_reason() -> anyhow::Result<()> {
    let mut node = Node::start(&[("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000")]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let c = client();

    let (status, body) = create(&node, &declaration("typed_orders", json!({}))).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metadata"]["properties"]["zombi.table-mode"], "typed");
    let (status, body) = create(&node, &declaration("typed_orders", json!({}))).await?;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (409, Some("AlreadyExistsException")),
        "{body}"
    );
    for (props, want) in [
        (json!({"zombi.on-error": "retry"}), "it takes reject or dead_letter"),
        (json!({"zombi.colour": "blue"}), "unknown table property zombi.colour"),
    ] {
        let (status, body) = create(&node, &declaration("other", props)).await?;
        assert_eq!(
            (status, body["error"]["type"].as_str()),
            (400, Some("BadRequestException")),
            "{body}"
        );
        assert!(body["error"]["message"].as_str().unwrap().contains(want), "{body}");
    }
    let mut clash = declaration("other", json!({}));
    clash["schema"]["fields"][0]["name"] = json!("sequence");
    let (status, body) = create(&node, &clash).await?;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("clashes with a system column"),
        "{body}"
    );
    let (status, body) = create(&node, &json!({"name": "x", "schema": {"type": "struct"}})).await?;
    assert_eq!(status, 400, "{body}");

    let good = |i: i64| json!({"payload": {"order_id": i, "amount": 1.5, "placed_at": "2026-01-01T10:00:00Z"}, "timestamp_ms": BASE});
    let r = send_one(&c, &edge.url(), "typed_orders", &good(1)).await?;
    assert_eq!(r.status, 200, "{r:?}");
    let r =
        send_one(&c, &edge.url(), "typed_orders", &json!({"payload": {"order_id": "one"}})).await?;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        message(&r)
            .contains("record 0: field order_id: expected an integer (long), got a string \"one\""),
        "{r:?}"
    );
    let bulk =
        vec![good(2), good(3), json!({"payload": {"order_id": 4, "amount": 1.234}}), good(5)];
    let r = send_bulk(&c, &edge.url(), "typed_orders", &bulk).await?;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        message(&r)
            .contains("record 2: field amount: 1.234 has more than 2 digits after the point"),
        "{r:?}"
    );
    let r = send_one(&c, &edge.url(), "typed_orders", &json!({"payload_base64": "AAE="})).await?;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(message(&r).contains("payload_base64"), "{r:?}");
    // Nothing of a refused request was stored: the next good event gets sequence 1.
    let r = send_one(&c, &edge.url(), "typed_orders", &good(6)).await?;
    assert_eq!((r.status, &r.body["sequence"]), (200, &json!(1)), "{r:?}");
    // A raw table beside it takes anything, as before.
    let r =
        send_one(&c, &edge.url(), "raw_events", &json!({"payload": {"order_id": "one"}})).await?;
    assert_eq!(r.status, 200, "{r:?}");
    let flushed = node.flush("typed_orders").await?;
    assert_eq!(flushed["watermarks"]["0"], 2, "{flushed}");

    // After kill -9 the table is still typed: its schema comes back from the catalog.
    node.kill9();
    node.restart().await?;
    let r =
        send_one(&c, &edge.url(), "typed_orders", &json!({"payload": {"order_id": 1.5}})).await?;
    assert_eq!(r.status, 400, "{r:?}");
    let r = send_one(&c, &edge.url(), "typed_orders", &good(7)).await?;
    assert_eq!((r.status, &r.body["sequence"]), (200, &json!(2)), "{r:?}");
    let flushed = node.flush("typed_orders").await?;
    assert_eq!(flushed["watermarks"]["0"], 3, "{flushed}");
    let batches =
        zombi_tests::engines::iceberg_rust_rows(&node.url(), "typed_orders", None).await?;
    let mut ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("order_id").unwrap().as_primitive::<Int64Type>().values().to_vec()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, vec![1, 6, 7]);
    Ok(())
}

/// Writes one event, retrying while the node says the table is not ready (after a restart).
async fn send_ready(edge: &Edge, table: &str, event: &Value) -> anyhow::Result<Reply> {
    zombi_tests::wait_for(
        "the table to take writes",
        std::time::Duration::from_secs(30),
        || async {
            let r = send_one(&client(), &edge.url(), table, event).await.ok()?;
            (r.status != 503).then_some(r)
        },
    )
    .await
}

/// `zombi.evolve = additive`: new top-level fields become optional columns (type from the
/// first value) committed by the node, also when it is killed right after that commit;
/// later values must fit; engines' own schema changes apply to later flushes (incompatible
/// ones are refused); older rows read null, also after compaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_fields_become_columns_and_engine_schema_changes_apply() -> anyhow::Result<()> {
    let mut node = Node::start(&[("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000")]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let t = "evolving";
    let created =
        python(&["create", "--uri", &node.url(), "--table", t, "--prop", "zombi.evolve=additive"])?;
    assert_eq!(created["properties"]["zombi.evolve"], "additive", "{created}");
    let event = |i: i64, extra: Value| {
        let mut p = json!({"order_id": i, "qty": i});
        p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"payload": p, "timestamp_ms": BASE + i})
    };
    for i in 1..=5 {
        assert_eq!(send_one(&client(), &edge.url(), t, &event(i, json!({}))).await?.status, 200);
    }
    node.flush(t).await?;

    // New fields; the node dies right after it committed them to the schema.
    node.set_env("FAILPOINTS", Some("flush-after-schema=return"));
    node.restart().await?;
    for i in 6..=10 {
        let extra = json!({"coupon": format!("C{i}"), "score": i * 10, "later": null});
        assert_eq!(send_ready(&edge, t, &event(i, extra)).await?.status, 200);
    }
    // The first value fixed the type: a string where a long was inferred does not fit.
    let r = send_one(&client(), &edge.url(), t, &event(11, json!({"score": "high"}))).await?;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        message(&r)
            .contains("record 0: field score: expected an integer (long), got a string \"high\""),
        "{r:?}"
    );
    assert!(node.flush(t).await.is_err(), "the node must die inside the flush");
    assert!(!node.wait_exit(std::time::Duration::from_secs(60)).await?.success());
    node.set_env("FAILPOINTS", None);
    node.restart().await?;
    let r = send_ready(&edge, t, &event(11, json!({"score": 110, "coupon": "C11"}))).await?;
    assert_eq!(r.status, 200, "{r:?}");
    node.flush(t).await?;

    // An engine's changes: a new column and int → long apply; rename and drop are refused.
    let changed = python(&["evolve", "--uri", &node.url(), "--table", t])?;
    let types = &changed["types"];
    assert_eq!(
        (types["coupon"].as_str(), types["score"].as_str()),
        (Some("string"), Some("long")),
        "{changed}"
    );
    assert_eq!(
        (types["note"].as_str(), types["qty"].as_str()),
        (Some("string"), Some("long")),
        "{changed}"
    );
    assert!(
        types.get("later").is_none(),
        "a field that was only ever null has no column: {changed}"
    );
    assert!(
        changed["rename"]
            .as_str()
            .unwrap_or("")
            .contains("renaming column ratio to r is not supported"),
        "{changed}"
    );
    assert!(
        changed["drop"].as_str().unwrap_or("").contains("dropping column ok is not supported"),
        "{changed}"
    );
    for i in 12..=13 {
        let extra = json!({"qty": 3_000_000_000i64 + i, "note": format!("n{i}")});
        assert_eq!(send_one(&client(), &edge.url(), t, &event(i, extra)).await?.status, 200);
    }
    // A property changed through the catalog applies to the next event.
    assert_eq!(changed["properties"]["zombi.numbers-in-strings"], "true", "{changed}");
    let r = send_one(&client(), &edge.url(), t, &event(14, json!({"qty": "14"}))).await?;
    assert_eq!(r.status, 200, "{r:?}");
    node.flush(t).await?;

    let want: Vec<Value> = (1i64..=14)
        .map(|i| {
            let coupon = (6..=11).contains(&i).then(|| format!("C{i}"));
            let score = (6..=11).contains(&i).then_some(i * 10);
            let note = (12..=13).contains(&i).then(|| format!("n{i}"));
            let qty = if (12..=13).contains(&i) { 3_000_000_000 + i } else { i };
            json!([i, coupon, score, note, qty])
        })
        .collect();
    // iceberg-rust sees the inferred column too: null for the rows before it.
    let batches = zombi_tests::engines::iceberg_rust_rows(&node.url(), t, None).await?;
    let mut coupons: Vec<(i64, Option<String>)> = Vec::new();
    for b in &batches {
        let ids = b.column_by_name("order_id").context("order_id")?.as_primitive::<Int64Type>();
        let c = b.column_by_name("coupon").context("coupon column")?.as_string::<i32>();
        for r in 0..b.num_rows() {
            coupons.push((ids.value(r), c.is_valid(r).then(|| c.value(r).to_owned())));
        }
    }
    coupons.sort();
    let want_coupons: Vec<(i64, Option<String>)> =
        (1..=14).map(|i| (i, (6..=11).contains(&i).then(|| format!("C{i}")))).collect();
    assert_eq!(coupons, want_coupons, "iceberg-rust");
    let read = |label: &str| -> anyhow::Result<()> {
        let got = python(&[
            "columns",
            "--uri",
            &node.url(),
            "--table",
            t,
            "--cols",
            "order_id,coupon,score,note,qty",
        ])?;
        for engine in ["pyiceberg", "duckdb"] {
            assert_eq!(got[engine].as_array().context("rows")?, &want, "{engine} {label}");
        }
        Ok(())
    };
    read("after the flushes")?;
    node.compact(t).await?;
    read("after compaction")?;
    Ok(())
}

async fn replay(node: &Node, table: &str, query: &str) -> anyhow::Result<Value> {
    let r = client().post(format!("{}/tables/{table}/replay?{query}", node.url())).send().await?;
    anyhow::ensure!(r.status().is_success(), "replay: {} {}", r.status(), r.text().await?);
    Ok(r.json().await?)
}

/// `zombi.on-error = dead_letter`: events that do not fit are acknowledged and land in
/// `<table>__dlq` (every engine reads it); after an engine widened the column, replay lands
/// each of them in the table exactly once, also when killed mid-way and when repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_kept_and_replayed_exactly_once_after_a_schema_fix() -> anyhow::Result<()>
{
    let mut node = Node::start(&[("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000")]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let (t, dlq) = ("dl_orders", "dl_orders__dlq");
    let created = python(&[
        "create",
        "--uri",
        &node.url(),
        "--table",
        t,
        "--prop",
        "zombi.on-error=dead_letter",
    ])?;
    assert_eq!(created["properties"]["zombi.on-error"], "dead_letter", "{created}");
    // Every third order's qty is beyond int: it does not fit until qty is a long.
    let qty = |i: i64| if i % 3 == 0 { 3_000_000_000 + i } else { i };
    let records: Vec<Value> = (1..=10)
        .map(|i| {
            let mut r =
                json!({"payload": {"order_id": i, "qty": qty(i)}, "timestamp_ms": BASE + i});
            if i == 9 {
                r["idempotency_key"] = json!("key-9");
            }
            r
        })
        .collect();
    let r = send_bulk(&client(), &edge.url(), t, &records).await?;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!((&r.body["accepted"], &r.body["dead_lettered"]), (&json!(10), &json!(3)), "{r:?}");
    let retry = send_one(&client(), &edge.url(), t, &records[8]).await?;
    assert_eq!(
        (&retry.body["sequence"], &retry.body["duplicate"], &retry.body["dead_lettered"]),
        (&json!(8), &json!(true), &json!(true)),
        "{retry:?}"
    );
    // Producers cannot write a dead-letter table.
    let r = send_one(&client(), &edge.url(), dlq, &json!({"payload": {}})).await?;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(message(&r).contains("dead-letter tables, which only the node writes"), "{r:?}");

    node.flush(t).await?;
    node.flush(dlq).await?;
    let uri = node.url();
    let ids = |table: &str| -> anyhow::Result<Value> {
        python(&["columns", "--uri", &uri, "--table", table, "--cols", "order_id,qty"])
    };
    let committed = ids(t)?;
    let fits: Vec<Value> = [1, 2, 4, 5, 7, 8, 10].iter().map(|i| json!([i, i])).collect();
    assert_eq!(committed["pyiceberg"].as_array().context("rows")?, &fits, "{committed}");
    let dead = python(&[
        "columns",
        "--uri",
        &node.url(),
        "--table",
        dlq,
        "--cols",
        "source_sequence,sequence,error,payload,idempotency_key",
    ])?;
    for engine in ["pyiceberg", "duckdb"] {
        let rows = dead[engine].as_array().context("rows")?;
        let got: Vec<(i64, i64)> =
            rows.iter().map(|r| (r[0].as_i64().unwrap(), r[1].as_i64().unwrap())).collect();
        assert_eq!(got, vec![(2, 0), (5, 1), (8, 2)], "{engine}: {dead}");
        assert!(
            rows[0][2].as_str().unwrap().contains("field qty: 3000000003 is out of range for int"),
            "{dead}"
        );
        assert_eq!(
            serde_json::from_str::<Value>(rows[0][3].as_str().unwrap())?,
            json!({"order_id": 3, "qty": 3_000_000_003i64})
        );
        assert_eq!(rows[2][4], "key-9", "{dead}");
    }

    // Replay before the fix: nothing fits, the rows are dead-lettered again.
    let report = replay(&node, t, "").await?;
    assert_eq!(
        (&report["replayed"], &report["dead_lettered_again"]),
        (&json!(0), &json!(3)),
        "{report}"
    );
    assert_eq!(report["cursors"]["0"], 3, "{report}");

    // An engine widens qty; replay lands them, one row per write, and the node dies after
    // the first write. The next replay goes on from there, and a third finds nothing.
    let changed = python(&["evolve", "--uri", &node.url(), "--table", t])?;
    assert_eq!(changed["types"]["qty"], "long", "{changed}");
    node.set_env("FAILPOINTS", Some("replay-after-chunk=return"));
    node.restart().await?;
    assert!(replay(&node, t, "chunk=1").await.is_err(), "the node must die inside the replay");
    assert!(!node.wait_exit(std::time::Duration::from_secs(60)).await?.success());
    node.set_env("FAILPOINTS", None);
    node.restart().await?;
    let report = zombi_tests::wait_for(
        "the replay after the restart",
        std::time::Duration::from_secs(30),
        || async { replay(&node, t, "chunk=1").await.ok() },
    )
    .await?;
    assert_eq!(
        (&report["replayed"], &report["dead_lettered_again"]),
        (&json!(2), &json!(0)),
        "{report}"
    );
    assert_eq!(report["cursors"]["0"], 6, "{report}");
    let report = replay(&node, t, "").await?;
    assert_eq!(
        (&report["replayed"], &report["dead_lettered_again"]),
        (&json!(0), &json!(0)),
        "{report}"
    );

    node.flush(t).await?;
    let all: Vec<Value> = (1..=10).map(|i| json!([i, qty(i)])).collect();
    let committed = ids(t)?;
    for engine in ["pyiceberg", "duckdb"] {
        assert_eq!(
            committed[engine].as_array().context("rows")?,
            &all,
            "{engine}: each order once"
        );
    }
    // A flush of nothing but dead-lettered events commits their watermark (no data file).
    let r = send_one(&client(), &edge.url(), t, &json!({"payload": {"order_id": "x"}})).await?;
    assert_eq!((r.status, &r.body["dead_lettered"]), (200, &json!(true)), "{r:?}");
    let flushed = node.flush(t).await?;
    assert_eq!(flushed["watermarks"]["0"], r.body["sequence"].as_u64().unwrap() + 1, "{flushed}");
    // Since the last restart: two rows replayed, one event dead-lettered.
    let metrics = node.metrics().await?;
    assert_eq!(zombi_tests::metric_sum(&metrics, "zombi_node_replayed_total"), 2.0, "{metrics}");
    assert_eq!(
        zombi_tests::metric_sum(&metrics, "zombi_node_dead_lettered_total"),
        1.0,
        "{metrics}"
    );
    // A producer's retry of key-9 now names the replayed row.
    let retry = send_ready(&edge, t, &records[8]).await?;
    assert_eq!(retry.body["duplicate"], true, "{retry:?}");
    assert!(retry.body["sequence"].as_u64().unwrap() >= 10, "{retry:?}");
    Ok(())
}

/// A typed table declared in the node's config exists from start-up, before any event,
/// checks events like a declared one, and a restart keeps it as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_tables_declared_in_the_config_exist_from_start_up() -> anyhow::Result<()> {
    let mut node = Node::start(&[
        ("ZOMBI_NODE__TABLES__CFG_ORDERS__MODE", "typed"),
        (
            "ZOMBI_NODE__TABLES__CFG_ORDERS__COLUMNS",
            "order_id long not null, amount decimal(12, 2), tags list<string>",
        ),
        ("ZOMBI_NODE__TABLES__CFG_ORDERS__UNKNOWN_FIELDS", "drop"),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let load = |node: &Node| {
        let url = format!("{}/v1/namespaces/zombi/tables/cfg_orders", node.url());
        async move { anyhow::Ok(client().get(url).send().await?.json::<Value>().await?) }
    };
    let table = load(&node).await?;
    let schema = &table["metadata"]["schemas"][0]["fields"];
    let amount = schema
        .as_array()
        .context("fields")?
        .iter()
        .find(|f| f["name"] == "amount")
        .context("amount")?;
    assert_eq!(amount["type"], "decimal(12, 2)", "{table}");
    assert_eq!(table["metadata"]["properties"]["zombi.unknown-fields"], "drop", "{table}");
    let r =
        send_one(&client(), &edge.url(), "cfg_orders", &json!({"payload": {"amount": 1}})).await?;
    assert!(message(&r).contains("record 0: field order_id: is required"), "{r:?}");
    let r = send_one(
        &client(),
        &edge.url(),
        "cfg_orders",
        &json!({"payload": {"order_id": 1, "x": 2}}),
    )
    .await?;
    assert_eq!(r.status, 200, "{r:?}");
    node.restart().await?;
    let again = load(&node).await?;
    assert_eq!(again["metadata"]["table-uuid"], table["metadata"]["table-uuid"], "the same table");
    Ok(())
}
