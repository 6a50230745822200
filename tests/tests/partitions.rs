//! Partition specs of a user's choice (docs/typed-tables.md#partition-specs): declared with
//! Spark SQL, PyIceberg and the config; followed by the flusher, compaction, deletes, hot
//! segments and every reader; evolved through the catalog while events keep coming; and
//! pruned on by every engine.

use futures::TryStreamExt as _;
use iceberg::expr::Reference;
use iceberg::spec::Datum;
use serde_json::{Value, json};
use zombi_tests::driver::Driver;
use zombi_tests::engines::{self, EngineOpts};
use zombi_tests::producer::send_bulk;
use zombi_tests::{Edge, Node, client};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2026-01-01T00:00:00Z.
const BASE: i64 = 1_767_225_600_000;
const ADMIN: &str = "admin-secret-0123456789";

/// One event of `orders` or `visits`: its key column's value and its `n` (unique).
#[derive(Clone, Debug)]
struct Sent {
    key: String,
    n: i64,
}

/// (rows, sum of n) of `sent` whose key passes `keep`.
fn figures(sent: &[Sent], keep: impl Fn(&str) -> bool) -> Value {
    let kept: Vec<&Sent> = sent.iter().filter(|s| keep(&s.key)).collect();
    json!([kept.len(), kept.iter().map(|s| s.n).sum::<i64>()])
}

/// Sends one event per (day of `days`, key of `keys`, `per`), spread over stream partitions
/// 0 and 1, with payload `{key_field: key, "n": n, "v": n}` (and `extra`).
async fn round(
    edge: &Edge,
    table: &str,
    (key_field, keys): (&str, &[String]),
    days: i64,
    per: i64,
    n: &mut i64,
    extra: &Value,
) -> anyhow::Result<Vec<Sent>> {
    let mut sent = Vec::new();
    for p in 0..2u32 {
        let mut envelopes = Vec::new();
        for day in 0..days {
            for (i, key) in keys.iter().enumerate().filter(|(i, _)| *i as u32 % 2 == p) {
                for j in 0..per {
                    *n += 1;
                    let mut payload = json!({key_field: key, "n": *n, "v": *n});
                    for (k, v) in extra.as_object().into_iter().flatten() {
                        payload[k] = v.clone();
                    }
                    let ts = BASE + day * DAY + (i as i64) * 60_000 + j * 1000 + (*n % 997);
                    envelopes.push(json!({"payload": payload, "partition": p, "timestamp_ms": ts}));
                    sent.push(Sent { key: key.clone(), n: *n });
                }
            }
        }
        if envelopes.is_empty() {
            continue;
        }
        let r = send_bulk(&client(), &edge.url(), table, &envelopes).await?;
        anyhow::ensure!(r.status == 200, "bulk to {table}: {} {}", r.status, r.body);
    }
    Ok(sent)
}

/// (transform, source column) of each field of the table's default spec.
async fn default_spec(node: &Node, table: &str) -> anyhow::Result<Vec<(String, String)>> {
    let m = node.table_metadata(table).await?;
    let id = &m["default-spec-id"];
    let spec = m["partition-specs"].as_array().unwrap().iter().find(|s| &s["spec-id"] == id);
    let schema =
        m["schemas"].as_array().unwrap().iter().find(|s| s["schema-id"] == m["current-schema-id"]);
    let name_of = |source: &Value| {
        schema.unwrap()["fields"].as_array().unwrap().iter().find(|f| &f["id"] == source).unwrap()["name"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    Ok(spec.unwrap()["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["transform"].as_str().unwrap().to_owned(), name_of(&f["source-id"])))
        .collect())
}

/// Committed data files iceberg-rust plans for the table, without and with `column = value`.
async fn iceberg_rust_files(
    node: &Node,
    table: &str,
    column: &str,
    value: &str,
) -> anyhow::Result<(usize, usize)> {
    let t = engines::load_table(&node.url(), table, &EngineOpts::default()).await?;
    let all: Vec<_> = t.scan().select_all().build()?.plan_files().await?.try_collect().await?;
    let filter = Reference::new(column).equal_to(Datum::string(value));
    let some: Vec<_> = t
        .scan()
        .select_all()
        .with_filter(filter)
        .build()?
        .plan_files()
        .await?
        .try_collect()
        .await?;
    Ok((all.len(), some.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn specs_of_a_users_choice_partition_every_write_and_every_engine_prunes_by_them()
-> anyhow::Result<()> {
    let node = Node::start(&[
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000"),
        ("ZOMBI_NODE__MAINTENANCE__ENABLED", "false"),
        ("ZOMBI_NODE__AUTH__ADMIN_TOKEN", ADMIN),
        // A raw table by day instead of hour, created at start-up.
        ("ZOMBI_NODE__TABLES__DAILY__PARTITION_BY", r#"["day(event_time)"]"#),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    assert_eq!(default_spec(&node, "daily").await?, vec![("day".into(), "event_time".into())]);

    // Spark declares `orders`, PyIceberg `visits`; what Zombi cannot keep is refused.
    let mut driver = Driver::start(
        "partitions.py",
        &[
            "--uri".into(),
            node.url(),
            "--spark-table".into(),
            "orders".into(),
            "--pyiceberg-table".into(),
            "visits".into(),
        ],
    )?;
    let declared = driver.next_json().await?;
    let refused = &declared["refused"];
    assert!(
        refused["pyiceberg"].as_str().unwrap_or_default().contains("floating-point"),
        "{declared}"
    );
    assert!(refused["spark"].as_str().unwrap_or_default().contains("whole payload"), "{declared}");
    assert_eq!(
        default_spec(&node, "orders").await?,
        vec![("day".into(), "event_time".into()), ("bucket[4]".into(), "customer_id".into())]
    );
    assert_eq!(default_spec(&node, "visits").await?, vec![("identity".into(), "region".into())]);

    let customers: Vec<String> = (0..10).map(|c| format!("c{c}")).collect();
    let regions: Vec<String> = (0..3).map(|r| format!("r{r}")).collect();
    let none = json!({});
    let price = json!({"price": 2.5});
    let (mut orders, mut visits, mut daily) = (Vec::new(), Vec::new(), Vec::new());
    let mut n = 0;
    // Two committed rounds, so that compaction has files to merge in each partition.
    for _ in 0..2 {
        orders.extend(
            round(&edge, "orders", ("customer_id", &customers), 3, 2, &mut n, &none).await?,
        );
        visits.extend(round(&edge, "visits", ("region", &regions), 2, 3, &mut n, &price).await?);
        daily.extend(round(&edge, "daily", ("k", &["a".to_owned()]), 2, 5, &mut n, &none).await?);
        for table in ["orders", "visits", "daily"] {
            node.flush(table).await?;
        }
    }
    // Flushes cut files by partition value: 3 days × at most 4 buckets for orders.
    let (files, c3_files) = iceberg_rust_files(&node, "orders", "customer_id", "c3").await?;
    assert!(files > 6 && files <= 2 * 12, "orders: {files} files after two flushes");
    assert!(
        c3_files > 0 && c3_files * 2 < files,
        "iceberg-rust: customer c3 planned {c3_files} of {files}"
    );
    let report = node.compact("orders").await?;
    assert!(report["files_rewritten"].as_u64().unwrap() > 0, "{report}");
    let (merged, _) = iceberg_rust_files(&node, "orders", "customer_id", "c3").await?;
    assert!(merged * 2 <= files, "compaction merged {files} files into {merged}");

    // Spec evolution through the catalog: `visits` adds day(event_time); events keep coming.
    driver.say("evolve").await?;
    let evolved = driver.next_json().await?;
    assert_eq!(evolved["evolved"], 1, "{evolved}");
    assert!(
        evolved["refused"].as_str().unwrap_or_default().contains("floating-point"),
        "{evolved}"
    );
    assert_eq!(
        default_spec(&node, "visits").await?,
        vec![("identity".into(), "region".into()), ("day".into(), "event_time".into())]
    );
    orders.extend(round(&edge, "orders", ("customer_id", &customers), 3, 1, &mut n, &none).await?);
    visits.extend(round(&edge, "visits", ("region", &regions), 2, 2, &mut n, &price).await?);
    node.flush("orders").await?;
    node.flush("visits").await?;

    // A delete rewrites files of the spec: customer c5 is gone, every other row stays.
    let r = node
        .admin(client().post(format!("{}/tables/orders/delete", node.url())))
        .json(&json!({"where": [{"column": "customer_id", "op": "eq", "value": "c5"}]}))
        .send()
        .await?;
    let deleted: Value = r.json().await?;
    let c5 = orders.iter().filter(|s| s.key == "c5").count();
    assert_eq!(deleted["rows_deleted"], c5, "{deleted}");
    orders.retain(|s| s.key != "c5");

    // A round left hot: real-time readers cut and prune it by the spec too.
    orders.extend(round(&edge, "orders", ("customer_id", &customers), 3, 1, &mut n, &none).await?);
    visits.extend(round(&edge, "visits", ("region", &regions), 2, 1, &mut n, &price).await?);
    let hot_orders = 3 * customers.len();
    let hot_visits = 2 * regions.len();

    driver.say("read").await?;
    let read = driver.next_json().await?;
    driver.finish().await?;
    eprintln!("what the engines read and planned: {read}");
    let cold = |sent: &[Sent], hot: usize| sent[..sent.len() - hot].to_vec();
    for (table, sent, hot, key) in
        [("orders", &orders, hot_orders, "c3"), ("visits", &visits, hot_visits, "r1")]
    {
        let r = &read[table];
        let committed = cold(sent, hot);
        for (engine, rows) in [
            ("pyiceberg", &committed),
            ("duckdb", &committed),
            ("zombi_python", sent),
            ("spark", sent),
        ] {
            let e = &r[engine];
            assert_eq!(e["rows"], figures(rows, |_| true), "{table} {engine}: {e}");
            assert_eq!(e["filtered_rows"], figures(rows, |k| k == key), "{table} {engine}: {e}");
        }
        for engine in ["pyiceberg", "spark"] {
            let e = &r[engine];
            let (all, some) = (e["files"].as_u64().unwrap(), e["filtered_files"].as_u64().unwrap());
            assert!(
                0 < some && some < all,
                "{table} {engine}: {key} planned {some} of {all} files"
            );
        }
        if let (Some(all), Some(some)) =
            (r["duckdb"]["files"].as_u64(), r["duckdb"]["filtered_files"].as_u64())
        {
            assert!(some < all, "{table} duckdb: {key} read {some} of {all} files");
        }
        for engine in ["zombi_python", "spark"] {
            let e = &r[engine];
            let (all, some) =
                (e["segments"].as_u64().unwrap(), e["filtered_segments"].as_u64().unwrap());
            assert!(
                0 < some && some < all,
                "{table} {engine}: {key} kept {some} of {all} hot segments"
            );
        }
    }
    // Files of both specs of `visits` are read, each checked against its partition tuple.
    let per_spec = &read["visits"]["pyiceberg"]["files_per_spec"];
    assert!(per_spec["0"].as_u64() > Some(0) && per_spec["1"].as_u64() > Some(0), "{per_spec}");
    assert_eq!(read["orders"]["pyiceberg"]["files_per_spec"].as_object().unwrap().len(), 1);

    // Hot segments carry their spec and values: orders' hold one (day, bucket) each.
    let w = node.watermark("orders").await?;
    let marks: Vec<String> = w["watermarks"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(p, s)| format!("{p}:{}", s.as_u64().unwrap()))
        .collect();
    let listing: Value = client()
        .get(format!("{}/tables/orders/hot/segments?watermarks={}", node.url(), marks.join(",")))
        .send()
        .await?
        .json()
        .await?;
    let segments = listing["segments"].as_array().unwrap();
    assert!(!segments.is_empty());
    for s in segments {
        assert_eq!(s["spec_id"], 0, "{s}");
        let values = s["partition_values"].as_array().unwrap();
        assert_eq!(values.len(), 2, "{s}");
        let day = values[0].as_i64().unwrap();
        assert!((BASE / DAY..BASE / DAY + 3).contains(&day), "{s}");
        assert!((0..4).contains(&values[1].as_i64().unwrap()), "{s}");
        assert_eq!(s["lower_bounds"]["9"].as_i64(), Some(day), "event_date within the day: {s}");
    }

    // The raw table by day: one file per day and flush, pruned by date.
    let opts = EngineOpts { date: Some("2026-01-02".into()), ..Default::default() };
    let e = engines::python_engines(&node.url(), "daily", &["pyiceberg"], &opts)?;
    let p = &e["pyiceberg"];
    assert_eq!(p["count"], daily.len(), "{p}");
    assert_eq!(p["sum_v"], daily.iter().map(|s| s.n).sum::<i64>(), "{p}");
    assert_eq!(p["all_files"], 4, "two days in each of two flushes: {p}");
    assert_eq!(p["date_files"], 2, "{p}");
    Ok(())
}
