//! Trino reads Zombi's tables (docs/engines.md#trino, docs/realtime.md#trino): committed rows
//! through Trino's Iceberg connector on the node's REST catalog (`file://` and S3 warehouses,
//! raw and typed tables, across compaction and snapshot expiry), and committed + hot rows
//! exactly once through the `zombi` connector (plugins/trino), which agrees with the Spark
//! plugin and the Python reader at the same moment.

use serde_json::{Value, json};
use zombi_tests::engines::{self, EngineOpts, Figures, expected, figures};
use zombi_tests::producer::{Acked, send_acked, send_bulk};
use zombi_tests::trino::{self, Trino, figures_sql, rest_catalog};
use zombi_tests::{Edge, Node, client};

/// 2026-01-01T10:00:00Z and the next day, 11:00.
const DAY1_H10: i64 = 1_767_261_600_000;
const DAY2_H11: i64 = DAY1_H10 + 25 * 3_600_000;
const DAY1: &str = "2026-01-01";

/// Sends `n` events (payload `v` = `first_v + i`) to `partition` at `ts` + i ms.
async fn send(
    edge: &Edge,
    table: &str,
    partition: u32,
    ts: i64,
    first_v: i64,
    n: i64,
) -> anyhow::Result<Vec<Acked>> {
    let records: Vec<(i64, i64)> = (0..n).map(|i| (ts + i, first_v + i)).collect();
    send_acked(&client(), &edge.url(), table, partition, &records).await
}

/// Figures of `acked` where `day1` rows fall on `DAY1`.
fn with_date(acked: &[Acked], day1: usize) -> Figures {
    Figures { date_count: Some(day1 as i64), ..expected(acked) }
}

/// The figures Trino's query gives for `table` in `catalog`.
async fn trino_figures(trino: &Trino, catalog: &str, table: &str) -> anyhow::Result<Figures> {
    Ok(trino::figures(
        &trino.numbers(&figures_sql(&format!("{catalog}.zombi.{table}"), DAY1)).await?,
    ))
}

/// Node settings for the committed-rows scenario: manual flushes, maintenance on demand only,
/// one snapshot kept and files deleted at once, so a compaction rewrites and expires.
const COLD_NODE: [(&str, &str); 6] = [
    ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000"),
    ("ZOMBI_NODE__MAINTENANCE__ENABLED", "false"),
    ("ZOMBI_NODE__MAINTENANCE__MIN_INPUT_FILES", "2"),
    ("ZOMBI_NODE__MAINTENANCE__QUIET_SECS", "0"),
    ("ZOMBI_NODE__MAINTENANCE__MAX_SNAPSHOTS", "1"),
    ("ZOMBI_NODE__MAINTENANCE__FILE_GRACE_SECS", "0"),
];

/// A raw and a typed table through Trino's Iceberg connector (`props`): Trino's figures equal
/// the acknowledged set and PyIceberg's, with date and hour filters, before and after a
/// compaction that rewrites files and expires snapshots.
async fn committed_rows_scenario(
    trino: &Trino,
    node: &Node,
    props: &[(&str, String)],
    mut opts: EngineOpts,
    token: Option<&str>,
) -> anyhow::Result<()> {
    let edge = Edge::start(&node.url(), &[]).await?;

    // Raw table: three commits over two days, two partitions, so several files per hour.
    let mut acked = Vec::new();
    let mut day1 = 0;
    for round in 0..3 {
        acked.extend(send(&edge, "clicks", 0, DAY1_H10 + round * 1000, round * 100, 40).await?);
        acked.extend(
            send(&edge, "clicks", 1, DAY2_H11 + round * 1000, 10_000 + round * 100, 30).await?,
        );
        day1 += 40;
        node.flush("clicks").await?;
    }

    // Typed table: declared through the REST catalog, events convert to its columns; two
    // commits so that compaction has files to merge.
    let mut declare = client().post(format!("{}/v1/namespaces/zombi/tables", node.url()));
    if let Some(token) = token {
        declare = declare.bearer_auth(token);
    }
    let declared = declare
        .json(&json!({
            "name": "orders",
            "schema": {"type": "struct", "schema-id": 0, "fields": [
                {"id": 1, "name": "order_id", "type": "long", "required": true},
                {"id": 2, "name": "amount", "type": "decimal(12, 2)", "required": false},
                {"id": 3, "name": "placed_at", "type": "timestamptz", "required": false},
            ]},
        }))
        .send()
        .await?;
    anyhow::ensure!(declared.status() == 200, "declare orders: {}", declared.text().await?);
    for half in [1..=25, 26..=50] {
        let orders: Vec<Value> = half
            .map(|i: i64| {
                json!({"payload": {"order_id": i, "amount": format!("{}.{:02}", i * 7, i % 100).parse::<f64>().unwrap(),
                                   "placed_at": format!("2026-01-01T10:{:02}:00Z", i % 60)},
                       "timestamp_ms": DAY1_H10 + i})
            })
            .collect();
        let r = send_bulk(&client(), &edge.url(), "orders", &orders).await?;
        anyhow::ensure!(r.status == 200, "orders: {} {}", r.status, r.body);
        node.flush("orders").await?;
    }
    let order_sum: i64 = (1..=50).sum();
    let amount_cents: i64 = (1..=50).map(|i| i * 700 + i % 100).sum();

    let catalog = trino.catalog("iceberg", props).await?;
    let want = with_date(&acked, day1);
    opts.date = Some(DAY1.into());
    opts.token = token.map(str::to_owned);
    for phase in ["before compaction", "after compaction and expiry"] {
        let got = trino_figures(trino, &catalog, "clicks").await?;
        assert_eq!(got, want, "trino, {phase}");
        let py = engines::python_engines(&node.url(), "clicks", &["pyiceberg"], &opts)?;
        assert_eq!(figures(&py["pyiceberg"])?, want, "pyiceberg, {phase}");
        // Partition filters on the event time: one hour of one day.
        let hour = trino
            .numbers(&format!(
                "SELECT count(*), min(sequence), max(sequence) FROM {catalog}.zombi.clicks \
                 WHERE event_date = DATE '2026-01-02' AND event_hour = 11"
            ))
            .await?;
        assert_eq!(hour, vec![90, 0, 89], "trino hour filter, {phase}");
        let typed = trino
            .numbers(&format!(
                "SELECT count(*), sum(order_id), CAST(sum(amount) * 100 AS BIGINT), \
                 count_if(placed_at >= TIMESTAMP '2026-01-01 10:00:00 UTC') FROM {catalog}.zombi.orders"
            ))
            .await?;
        assert_eq!(typed, vec![50, order_sum, amount_cents, 50], "trino typed, {phase}");

        if phase == "before compaction" {
            for table in ["clicks", "orders"] {
                let report = node.compact(table).await?;
                assert!(report["files_rewritten"].as_u64() > Some(0), "{table}: {report}");
                assert!(report["snapshots_expired"].as_u64() > Some(0), "{table}: {report}");
            }
        }
    }
    trino.drop_catalog(&catalog).await
}

/// A `file://` warehouse behind a catalog token, with the catalog file of docs/engines.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trino_reads_committed_rows_on_a_file_warehouse() -> anyhow::Result<()> {
    let trino = Trino::start()?;
    let token = "trino-catalog-token-0123456789";
    let mut env = COLD_NODE.to_vec();
    env.push(("ZOMBI_NODE__AUTH__CATALOG_TOKEN", token));
    let node = Node::start(&env).await?;
    let props = rest_catalog(&node.url(), Some(token));
    committed_rows_scenario(&trino, &node, &props, EngineOpts::default(), Some(token)).await
}

/// An S3 warehouse (SeaweedFS): Trino's native S3 file system reads what the node wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trino_reads_committed_rows_on_s3() -> anyhow::Result<()> {
    let trino = Trino::start()?;
    let weed = zombi_tests::seaweed::start().await?;
    let mut env = COLD_NODE.to_vec();
    env.extend(weed.node_env());
    let node = Node::start(&env).await?;
    let opts = weed.engine_opts();
    let (endpoint, key, secret) = opts.s3.clone().unwrap();
    let mut props: Vec<(&str, String)> = rest_catalog(&node.url(), None)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("fs.native-local") && *k != "local.location")
        .collect();
    props.extend([
        ("fs.native-s3.enabled", "true".to_owned()),
        ("s3.endpoint", endpoint),
        ("s3.region", "us-east-1".to_owned()),
        ("s3.path-style-access", "true".to_owned()),
        ("s3.aws-access-key", key),
        ("s3.aws-secret-key", secret),
    ]);
    committed_rows_scenario(&trino, &node, &props, opts, None).await
}

/// The `zombi` connector: committed + hot rows exactly once, the same figures as the Spark
/// plugin and the Python reader at the same moment, across a flush that commits the hot rows;
/// time travel reads the pinned snapshot only; the plain Iceberg catalog reads committed rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_zombi_connector_reads_hot_rows_exactly_once() -> anyhow::Result<()> {
    let trino = Trino::start()?;
    let node = Node::start(&[
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000"),
        ("ZOMBI_NODE__MAINTENANCE__ENABLED", "false"),
        // A spec of the owner's choice: hot segments carry its values to the connector.
        (
            "ZOMBI_NODE__TABLES__BY_DAY__PARTITION_BY",
            r#"["day(event_time)", "bucket(2, partition)"]"#,
        ),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let mut committed = send(&edge, "live", 0, DAY1_H10, 0, 50).await?;
    committed.extend(send(&edge, "live", 1, DAY2_H11, 1000, 30).await?);
    let flushed = node.flush("live").await?;
    let pinned = flushed["snapshot_id"].as_i64().unwrap();
    let mut all = committed.clone();
    all.extend(send(&edge, "live", 0, DAY1_H10 + 10_000, 100, 25).await?);
    all.extend(send(&edge, "live", 1, DAY2_H11 + 10_000, 2000, 15).await?);
    all.extend(send(&edge, "live", 3, DAY2_H11 + 20_000, 3000, 5).await?);

    let mut zombi_props = rest_catalog(&node.url(), None);
    zombi_props.push(("zombi.planning-timeout-ms", "2000".to_owned()));
    zombi_props.push(("zombi.node-retry-interval-ms", "1000".to_owned()));
    let zombi = trino.catalog("zombi", &zombi_props).await?;
    let iceberg = trino.catalog("iceberg", &rest_catalog(&node.url(), None)).await?;
    let want_all = with_date(&all, 75);
    let want_committed = with_date(&committed, 50);

    assert_eq!(
        trino_figures(&trino, &zombi, "live").await?,
        want_all,
        "zombi connector: committed + hot"
    );
    assert_eq!(
        trino_figures(&trino, &iceberg, "live").await?,
        want_committed,
        "iceberg connector: committed"
    );
    let mut others = engines::python_engines(
        &node.url(),
        "live",
        &["zombi_python", "zombi_spark"],
        &EngineOpts { date: Some(DAY1.into()), ..Default::default() },
    )?;
    for reader in ["zombi_python", "zombi_spark"] {
        assert_eq!(figures(&others.remove(reader).unwrap())?, want_all, "{reader}");
    }

    // Filters prune hot segments like cold files, and stay exact.
    let z = format!("{zombi}.zombi.live");
    let hour = trino
        .numbers(&format!(
            "SELECT count(*), count(DISTINCT (partition, sequence)), min(sequence), max(sequence) \
             FROM {z} WHERE event_date = DATE '2026-01-02' AND event_hour = 11 AND partition = 1"
        ))
        .await?;
    assert_eq!(hour, vec![45, 45, 0, 44], "hour and partition filter");
    let max = trino.numbers(&format!("SELECT max(sequence) FROM {z} WHERE partition = 3")).await?;
    assert_eq!(max, vec![4], "a partition with hot rows only");

    // Time travel is cold-only: the pinned snapshot's rows and nothing hot.
    let travel = trino
        .numbers(&format!("SELECT count(*), count(DISTINCT (partition, sequence)) FROM {z} FOR VERSION AS OF {pinned}"))
        .await?;
    assert_eq!(travel, vec![committed.len() as i64; 2], "FOR VERSION AS OF");

    // A flush commits the hot rows: still each exactly once.
    node.flush("live").await?;
    assert_eq!(
        trino_figures(&trino, &zombi, "live").await?,
        want_all,
        "zombi connector after the flush"
    );
    assert_eq!(
        trino_figures(&trino, &iceberg, "live").await?,
        want_all,
        "iceberg connector after the flush"
    );

    // A table partitioned by day and bucket(2, partition): committed and hot rows exactly
    // once, whole and filtered on a partition source column.
    let mut by_day = send(&edge, "by_day", 0, DAY1_H10, 0, 20).await?;
    by_day.extend(send(&edge, "by_day", 1, DAY2_H11, 100, 10).await?);
    node.flush("by_day").await?;
    by_day.extend(send(&edge, "by_day", 2, DAY1_H10 + 5_000, 200, 7).await?);
    by_day.extend(send(&edge, "by_day", 1, DAY2_H11 + 5_000, 300, 4).await?);
    assert_eq!(
        trino_figures(&trino, &zombi, "by_day").await?,
        with_date(&by_day, 27),
        "zombi connector: a table with its own spec"
    );
    let one = trino
        .numbers(&format!(
            "SELECT count(*), count(DISTINCT sequence) FROM {zombi}.zombi.by_day \
             WHERE partition = 1 AND event_time >= TIMESTAMP '2026-01-02 00:00:00 UTC'"
        ))
        .await?;
    assert_eq!(one, vec![14, 14], "partition 1 on the second day: committed 10, hot 4");

    trino.drop_catalog(&zombi).await?;
    trino.drop_catalog(&iceberg).await?;
    Ok(())
}
