//! Table lifecycle: deletes on request (`POST /tables/{t}/delete`) and retention remove
//! exactly the rows they name, committed and hot, readable by every engine, across
//! `kill -9` at every step, beside ingest.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use zombi_tests::engines::{self, EngineOpts, expected, figures, iceberg_rust_rows, rows_of};
use zombi_tests::producer::{Acked, send_bulk};
use zombi_tests::{Edge, Node, client};

const HOUR: i64 = 3_600_000;
/// 2026-01-01T22:00:00Z: four hours from here span two dates.
const BASE: i64 = 1_767_304_800_000;
/// BASE + 2 h.
const JAN2: &str = "2026-01-02T00:00:00Z";
const USERS: i64 = 7;
const ADMIN: &str = "admin-secret-0123456789";

fn manual() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "3600000"),
        ("ZOMBI_NODE__MAINTENANCE__ENABLED", "false"),
        ("ZOMBI_NODE__AUTH__ADMIN_TOKEN", ADMIN),
    ]
}

fn user_of(v: i64) -> String {
    format!("u{}", v.rem_euclid(USERS))
}

/// One acknowledged event: (partition, sequence, v) and its event time.
#[derive(Clone, Copy, Debug)]
struct Event {
    acked: Acked,
    ts: i64,
}

fn acked(events: &[Event]) -> Vec<Acked> {
    events.iter().map(|e| e.acked).collect()
}

/// Sends `records` (event time, v) to `partition`, each with payload `{"v", "user"}`.
async fn send(
    edge: &Edge,
    table: &str,
    partition: u32,
    records: &[(i64, i64)],
) -> anyhow::Result<Vec<Event>> {
    let envelopes: Vec<Value> = records
        .iter()
        .map(|(ts, v)| json!({"payload": {"v": v, "user": user_of(*v)}, "partition": partition, "timestamp_ms": ts}))
        .collect();
    let r = send_bulk(&client(), &edge.url(), table, &envelopes).await?;
    anyhow::ensure!(r.status == 200, "bulk to {table}: {} {}", r.status, r.body);
    let first = r.body["partitions"][0]["first_sequence"].as_u64().unwrap();
    Ok(records
        .iter()
        .enumerate()
        .map(|(i, (ts, v))| Event { acked: (partition, first + i as u64, *v), ts: *ts })
        .collect())
}

/// `per` events per (hour of 4, partition of 2), values from `*v`.
async fn round(edge: &Edge, table: &str, per: i64, v: &mut i64) -> anyhow::Result<Vec<Event>> {
    let mut out = Vec::new();
    for hour in 0..4 {
        for p in 0..2u32 {
            let records: Vec<(i64, i64)> = (0..per)
                .map(|k| {
                    *v += 1;
                    (BASE + hour * HOUR + k * 1000 + p as i64, *v)
                })
                .collect();
            out.extend(send(edge, table, p, &records).await?);
        }
    }
    Ok(out)
}

async fn delete(
    node: &Node,
    table: &str,
    body: &Value,
    token: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let mut request = client().post(format!("{}/tables/{table}/delete", node.url()));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let r = request.json(body).send().await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

fn by_user(user: &str) -> Value {
    json!({"where": [{"payload_field": "user", "op": "eq", "value": user}]})
}

async fn current_snapshot(node: &Node, table: &str) -> anyhow::Result<Value> {
    let m = node.table_metadata(table).await?;
    let id = &m["current-snapshot-id"];
    let snapshots = m["snapshots"].as_array().cloned().unwrap_or_default();
    Ok(snapshots.into_iter().find(|s| &s["snapshot-id"] == id).unwrap_or(Value::Null))
}

/// The rows iceberg-rust reads from the current snapshot, as a set.
async fn cold_rows(node: &Node, table: &str) -> anyhow::Result<BTreeSet<Acked>> {
    Ok(rows_of(&iceberg_rust_rows(&node.url(), table, None).await?).into_iter().collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_removes_one_users_rows_cold_and_hot_and_leaves_every_other_row()
-> anyhow::Result<()> {
    let node = Node::start(&manual()).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let mut v = 0;
    let mut events = Vec::new();
    for _ in 0..3 {
        events.extend(round(&edge, "events", 10, &mut v).await?);
        node.flush("events").await?;
    }
    // A round the flusher has not committed: hot rows.
    events.extend(round(&edge, "events", 10, &mut v).await?);
    let before = node.watermark("events").await?;

    // Requests that cannot apply change nothing: no flush, no commit.
    let admin = Some(ADMIN);
    let refused = [
        (by_user("u3"), None, 401, "token"),
        (json!({"where": []}), admin, 400, "at least one condition"),
        (
            json!({"where": [{"column": "nope", "op": "eq", "value": 1}]}),
            admin,
            400,
            "no column nope",
        ),
        (
            json!({"where": [{"column": "partition", "op": "eq", "value": "abc"}]}),
            admin,
            400,
            "is not a value of column partition",
        ),
        (
            json!({"where": [{"payload_field": "user", "op": "lt", "value": "u3"}]}),
            admin,
            400,
            "eq or in",
        ),
        (
            json!({"where": [{"column": "event_time", "op": "in", "value": "x"}]}),
            admin,
            400,
            "array",
        ),
        (
            json!({"where": [{"column": "payload_bytes", "op": "eq", "value": "x"}]}),
            admin,
            400,
            "binary",
        ),
        (
            json!({"where": [{"column": "partition", "payload_field": "v", "op": "eq", "value": 1}]}),
            admin,
            400,
            "one",
        ),
        (json!({"filter": {}}), admin, 400, "not valid"),
    ];
    for (body, token, status, says) in refused {
        let (got, answer) = delete(&node, "events", &body, token).await?;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer.to_string().contains(says), "{body}: {answer} should say {says}");
        assert!(!answer.to_string().contains("Some("), "no Debug output: {answer}");
    }
    let (got, answer) = delete(&node, "missing", &by_user("u3"), admin).await?;
    assert_eq!(got, 404, "{answer}");
    assert_eq!(node.watermark("events").await?, before, "a refused delete changed the table");

    // Ingest goes on during the delete: events of other users, all kept.
    let concurrent = {
        let edge_url = edge.url();
        tokio::spawn(async move {
            let mut out = Vec::new();
            for k in 0..20i64 {
                let v = 100_000 + k * USERS; // user u(100000 % 7) = u5, never u3
                let e = json!({"payload": {"v": v, "user": user_of(v)}, "partition": 0, "timestamp_ms": BASE + k});
                let r = send_bulk(&client(), &edge_url, "events", &[e]).await?;
                anyhow::ensure!(r.status == 200, "{} {}", r.status, r.body);
                let seq = r.body["partitions"][0]["first_sequence"].as_u64().unwrap();
                out.push(Event { acked: (0, seq, v), ts: BASE + k });
            }
            Ok(out)
        })
    };
    let (got, report) = delete(&node, "events", &by_user("u3"), admin).await?;
    assert_eq!(got, 200, "{report}");
    events.extend(concurrent.await??);
    let gone: Vec<Event> = events.iter().copied().filter(|e| user_of(e.acked.2) == "u3").collect();
    let kept: Vec<Event> = events.iter().copied().filter(|e| user_of(e.acked.2) != "u3").collect();
    assert!(!gone.is_empty());
    assert_eq!(report["rows_deleted"], gone.len() as u64, "{report}");
    // Every file holds some of u3's rows and some of others': rewritten, none removed whole.
    assert!(report["files_rewritten"].as_u64().unwrap() >= 16, "{report}");
    assert_eq!(report["files_removed"], 0, "{report}");
    assert_eq!(
        report["files_read"], report["files_scanned"],
        "a payload field prunes nothing: {report}"
    );
    let snapshot = current_snapshot(&node, "events").await?;
    assert_eq!(snapshot["summary"]["operation"], "overwrite", "{snapshot}");
    assert_eq!(snapshot["snapshot-id"], report["snapshot_id"], "{snapshot}");
    assert_eq!(snapshot["summary"]["total-delete-files"], "0", "no delete files: {snapshot}");

    // Every engine, cold and real-time, reads exactly the other users' rows.
    node.flush("events").await?; // the concurrent writes, so cold readers see them too
    let want = expected(&acked(&kept));
    let read = engines::python_engines(
        &node.url(),
        "events",
        &["pyiceberg", "duckdb", "spark", "zombi_python"],
        &EngineOpts::default(),
    )?;
    for engine in ["pyiceberg", "duckdb", "spark", "zombi_python"] {
        assert_eq!(figures(&read[engine])?, want, "{engine}: {}", read[engine]);
    }
    assert_eq!(cold_rows(&node, "events").await?, acked(&kept).into_iter().collect());

    // Again: nothing left to delete, nothing committed.
    let now = node.watermark("events").await?;
    let (got, again) = delete(&node, "events", &by_user("u3"), admin).await?;
    assert_eq!(got, 200, "{again}");
    assert_eq!(again["rows_deleted"], 0, "{again}");
    assert_eq!(again["snapshot_id"], now["snapshot_id"], "{again}");

    // Time travel to the snapshot before the delete still shows the rows: every event
    // acknowledged before the request, and of the concurrent ones those the flush took.
    let flushed = report["flushed_snapshot_id"].as_i64();
    let old: BTreeSet<Acked> =
        rows_of(&iceberg_rust_rows(&node.url(), "events", flushed).await?).into_iter().collect();
    let all: BTreeSet<Acked> = acked(&events).into_iter().collect();
    let before_delete: BTreeSet<Acked> =
        events.iter().filter(|e| e.acked.2 < 100_000).map(|e| e.acked).collect();
    assert!(old.is_superset(&before_delete) && old.is_subset(&all), "time travel");
    let opts = EngineOpts { snapshot_id: flushed, ..Default::default() };
    let read = engines::python_engines(&node.url(), "events", &["pyiceberg"], &opts)?;
    let old: Vec<Acked> = old.into_iter().collect();
    assert_eq!(figures(&read["pyiceberg"])?, expected(&old), "{}", read["pyiceberg"]);

    // Compaction with an expiry takes the deleted rows out of time travel.
    let r = node
        .admin(client().post(format!(
            "{}/tables/events/compact?expire_snapshots_older_than_secs=0",
            node.url()
        )))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let metadata = node.table_metadata("events").await?;
    let snapshots = metadata["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 1, "only the current snapshot is left: {metadata}");
    assert!(iceberg_rust_rows(&node.url(), "events", flushed).await.is_err(), "expired");

    // Column conditions: partition 1 before Jan 2. Files of Jan 2's hours are ruled out
    // by their bounds, unread.
    let body = json!({"where": [
        {"column": "partition", "op": "eq", "value": 1},
        {"column": "event_time", "op": "lt", "value": JAN2},
    ]});
    let (got, report) = delete(&node, "events", &body, admin).await?;
    assert_eq!(got, 200, "{report}");
    let jan2_ms = BASE + 2 * HOUR;
    let (gone, kept): (Vec<Event>, Vec<Event>) =
        kept.into_iter().partition(|e| e.acked.0 == 1 && e.ts < jan2_ms);
    assert_eq!(report["rows_deleted"], gone.len() as u64, "{report}");
    assert!(report["files_read"].as_u64() < report["files_scanned"].as_u64(), "{report}");
    let read = engines::python_engines(
        &node.url(),
        "events",
        &["pyiceberg", "duckdb"],
        &EngineOpts::default(),
    )?;
    for engine in ["pyiceberg", "duckdb"] {
        assert_eq!(figures(&read[engine])?, expected(&acked(&kept)), "{engine}: {}", read[engine]);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_cut_short_by_kill_9_at_any_step_deletes_all_or_nothing_and_finishes_when_repeated()
-> anyhow::Result<()> {
    let mut node = Node::start(&manual()).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let mut v = 0;
    let mut events = round(&edge, "events", 6, &mut v).await?;
    node.flush("events").await?;
    let points = [
        "delete-after-flush",
        "remove-after-rewrite",
        "remove-before-commit",
        "remove-after-commit",
    ];
    // What must stay: every acknowledged row, less those of users deleted since it was.
    let mut want: BTreeSet<Acked> = acked(&events).into_iter().collect();
    for (i, point) in points.iter().enumerate() {
        let user = format!("u{i}");
        node.set_env("FAILPOINTS", Some(&format!("{point}=return")));
        node.restart().await?;
        // Hot rows too: the delete flushes them first.
        let new = round(&edge, "events", 3, &mut v).await?;
        want.extend(acked(&new));
        events.extend(new);
        let r = delete(&node, "events", &by_user(&user), Some(ADMIN)).await;
        assert!(
            r.is_err() || r.as_ref().is_ok_and(|(s, _)| *s >= 500),
            "{point}: the node must die inside the delete: {r:?}"
        );
        assert!(!node.wait_exit(Duration::from_secs(60)).await?.success(), "{point}");
        node.set_env("FAILPOINTS", None);
        node.restart().await?;

        // Every event was flushed before the crash. The user's rows: all of them until
        // the commit, none after it; every other row, whatever the step.
        let rows = cold_rows(&node, "events").await?;
        let (users_rows, others): (BTreeSet<Acked>, BTreeSet<Acked>) =
            want.iter().partition(|a| user_of(a.2) == user);
        let want_users = if *point == "remove-after-commit" { BTreeSet::new() } else { users_rows };
        assert_eq!(rows, others.union(&want_users).copied().collect(), "{point}");
        // Repeating the request finishes the job.
        let (status, report) = delete(&node, "events", &by_user(&user), Some(ADMIN)).await?;
        assert_eq!(status, 200, "{point}: {report}");
        want = others;
        assert_eq!(cold_rows(&node, "events").await?, want, "{point}");
    }
    let kept: Vec<Acked> = want.into_iter().collect();
    let read = engines::python_engines(
        &node.url(),
        "events",
        &["pyiceberg", "zombi_python"],
        &EngineOpts::default(),
    )?;
    for engine in ["pyiceberg", "zombi_python"] {
        assert_eq!(figures(&read[engine])?, expected(&kept), "{engine}: {}", read[engine]);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_keeps_exactly_the_rows_inside_the_window_hot_and_cold() -> anyhow::Result<()> {
    let node = Node::start(&manual()).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    // A retention of 120 or 90 minutes, whichever puts the cutoff (rounded down to a 24th
    // of the retention, 5 or 3.75 minutes) between :10 and :50 of its hour: that hour's
    // files straddle it.
    let minutes =
        if (10..50).contains(&((now - 120 * 60_000).rem_euclid(HOUR) / 60_000)) { 120 } else { 90 };
    // An event every two minutes for four hours, in two partitions.
    let mut v = 0;
    let mut events = Vec::new();
    for p in 0..2u32 {
        let records: Vec<(i64, i64)> = (0..120)
            .map(|k| {
                v += 1;
                (now - 4 * HOUR + k * 120_000 + p as i64, v)
            })
            .collect();
        events.extend(send(&edge, "events", p, &records).await?);
    }
    node.flush("events").await?;
    // Late old events and new ones, not flushed yet.
    let late: Vec<(i64, i64)> =
        (0..6).map(|k| (now - 3 * HOUR - k * 600_000, 10_000 + k)).collect();
    events.extend(send(&edge, "events", 0, &late).await?);
    let fresh: Vec<(i64, i64)> = (0..6).map(|k| (now - k * 60_000, 20_000 + k)).collect();
    events.extend(send(&edge, "events", 1, &fresh).await?);

    // The retention is a table property, checked when set.
    let set = |value: &str| json!({"requirements": [], "updates": [{"action": "set-properties", "updates": {"zombi.retention": value}}]});
    let url = format!("{}/v1/namespaces/zombi/tables/events", node.url());
    let r = client().post(&url).json(&set("soon")).send().await?;
    assert_eq!(r.status(), 400);
    let text = r.text().await?;
    assert!(text.contains("not a duration"), "{text}");
    let r = client().post(&url).json(&set(&format!("{minutes}m"))).send().await?;
    assert_eq!(r.status(), 200, "{}", r.text().await?);

    let report = node.compact("events").await?;
    let retention = &report["retention"];
    assert_eq!(report["retention_secs"], minutes * 60, "{report}");
    let cutoff = report["retention_cutoff_ms"].as_i64().unwrap();
    let step = minutes * 60_000 / 24;
    assert!(cutoff <= now - minutes * 60_000 && cutoff > now - minutes * 60_000 - step - 60_000);
    let (gone, kept): (Vec<Event>, Vec<Event>) =
        events.iter().copied().partition(|e| e.ts < cutoff);
    assert_eq!(retention["rows_deleted"], gone.len() as u64, "{report}");
    assert!(retention["files_removed"].as_u64() > Some(0), "whole hours removed unread: {report}");
    assert!(
        retention["files_rewritten"].as_u64() > Some(0),
        "the cutoff's hour rewritten: {report}"
    );
    let read = engines::python_engines(
        &node.url(),
        "events",
        &["pyiceberg", "duckdb", "zombi_python"],
        &EngineOpts::default(),
    )?;
    for engine in ["pyiceberg", "duckdb", "zombi_python"] {
        assert_eq!(figures(&read[engine])?, expected(&acked(&kept)), "{engine}: {}", read[engine]);
    }
    let oldest = kept.iter().map(|e| e.ts).min().unwrap();
    let stats = node.stats().await?;
    assert_eq!(stats["tables"]["events"]["maintenance"]["oldest_event_time_ms"], oldest, "{stats}");
    assert_eq!(
        stats["tables"]["events"]["maintenance"]["rows_expired"],
        gone.len() as u64,
        "{stats}"
    );

    // A second run removes only what its own cutoff adds, if it moved a step on.
    let again = node.compact("events").await?;
    let cutoff = again["retention_cutoff_ms"].as_i64().unwrap();
    let more = kept.iter().filter(|e| e.ts < cutoff).count();
    assert_eq!(again["retention"]["rows_deleted"], more as u64, "{again}");
    Ok(())
}

/// Deletes on a typed table's own columns: a string and a decimal, committed and hot rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_on_typed_columns_removes_exactly_the_matching_rows() -> anyhow::Result<()> {
    let mut env = manual();
    env.extend([
        ("ZOMBI_NODE__TABLES__ORDERS__MODE", "typed"),
        (
            "ZOMBI_NODE__TABLES__ORDERS__COLUMNS",
            "customer_id string not null, amount decimal(12, 2)",
        ),
    ]);
    let node = Node::start(&env).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let customer = |v: i64| format!("c{}", v % 5);
    let mut rows: Vec<Acked> = Vec::new();
    for (batch, flush) in [(0..40i64, true), (40..60, false)] {
        for p in 0..2u32 {
            let envelopes: Vec<Value> = batch
                .clone()
                .map(|v| {
                    json!({"partition": p, "timestamp_ms": BASE + v * 60_000,
                           "payload": {"customer_id": customer(v), "amount": v as f64 + 0.5, "v": v}})
                })
                .collect();
            let r = send_bulk(&client(), &edge.url(), "orders", &envelopes).await?;
            anyhow::ensure!(r.status == 200, "{} {}", r.status, r.body);
            let first = r.body["partitions"][0]["first_sequence"].as_u64().unwrap();
            rows.extend(batch.clone().enumerate().map(|(i, v)| (p, first + i as u64, v)));
        }
        if flush {
            node.flush("orders").await?;
        }
    }
    let body = json!({"where": [
        {"column": "customer_id", "op": "in", "value": ["c2", "c3"]},
        {"column": "amount", "op": "gte", "value": "10.00"},
    ]});
    let (status, report) = delete(&node, "orders", &body, Some(ADMIN)).await?;
    assert_eq!(status, 200, "{report}");
    // amount = v + 0.50 ≥ 10.00 ⇔ v ≥ 10.
    let (gone, kept): (Vec<Acked>, Vec<Acked>) =
        rows.into_iter().partition(|(_, _, v)| (v % 5 == 2 || v % 5 == 3) && *v >= 10);
    assert_eq!(report["rows_deleted"], gone.len() as u64, "{report}");
    let read = engines::python_engines(
        &node.url(),
        "orders",
        &["pyiceberg", "duckdb", "zombi_python"],
        &EngineOpts::default(),
    )?;
    for engine in ["pyiceberg", "duckdb", "zombi_python"] {
        assert_eq!(figures(&read[engine])?, expected(&kept), "{engine}: {}", read[engine]);
    }
    // A decimal that does not fit the column is refused, naming it.
    let bad = json!({"where": [{"column": "amount", "op": "eq", "value": "1e40"}]});
    let (status, answer) = delete(&node, "orders", &bad, Some(ADMIN)).await?;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("amount (decimal(12, 2))"), "{answer}");
    Ok(())
}

/// Dead-letter rows removed by a delete before they were replayed are skipped by replay,
/// which replays the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_skips_dead_letter_rows_a_delete_removed() -> anyhow::Result<()> {
    let mut env = manual();
    env.extend([
        ("ZOMBI_NODE__TABLES__DL__MODE", "typed"),
        ("ZOMBI_NODE__TABLES__DL__COLUMNS", "order_id long not null, qty int"),
        ("ZOMBI_NODE__TABLES__DL__ON_ERROR", "dead_letter"),
    ]);
    let node = Node::start(&env).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    // qty beyond int: every event goes to dl__dlq.
    let records: Vec<Value> = (1..=6)
        .map(|i| json!({"payload": {"order_id": i, "qty": 3_000_000_000i64 + i}, "timestamp_ms": BASE + i}))
        .collect();
    let r = send_bulk(&client(), &edge.url(), "dl", &records).await?;
    assert_eq!((r.status, &r.body["dead_lettered"]), (200, &json!(6)), "{r:?}");
    let body = json!({"where": [{"payload_field": "order_id", "op": "in", "value": [2, 5]}]});
    let (status, report) = delete(&node, "dl__dlq", &body, Some(ADMIN)).await?;
    assert_eq!((status, &report["rows_deleted"]), (200, &json!(2)), "{report}");
    let r = node.admin(client().post(format!("{}/tables/dl/replay", node.url()))).send().await?;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await?;
    assert_eq!(
        (&report["deleted_skipped"], &report["dead_lettered_again"], &report["replayed"]),
        (&json!(2), &json!(4), &json!(0)),
        "{report}"
    );
    assert_eq!(report["cursors"]["0"], 6, "{report}");
    Ok(())
}
