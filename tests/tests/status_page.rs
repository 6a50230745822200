//! The node's status page (`GET /ui`) in a real browser: headless Chromium, driven over the
//! DevTools protocol by `tests/python/ui_check.py`.

use std::time::Duration;

use serde_json::{Value, json};
use zombi_tests::producer::send_one;
use zombi_tests::{Edge, Node, bin_dir, client, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_status_page_shows_live_figures_and_a_failing_flush() -> anyhow::Result<()> {
    let token = "admin-token-0123456789";
    let node = Node::start(&[
        ("ZOMBI_NODE__AUTH__ADMIN_TOKEN", token),
        ("ZOMBI_NODE__FLUSH__INTERVAL_MS", "200"),
        ("ZOMBI_NODE__FLUSH__BACKOFF_MAX_MS", "500"),
        ("ZOMBI_NODE__TABLES__ORDERS__MAINTENANCE__RETENTION", "400d"),
        // Only the maintenance run below: a background run could commit another snapshot
        // between it and the page's reading of the table's snapshot id.
        ("ZOMBI_NODE__MAINTENANCE__ENABLED", "false"),
    ])
    .await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let c = client();
    for table in ["orders", "broken"] {
        for v in 0..30 {
            let r = send_one(&c, &edge.url(), table, &json!({"payload": {"v": v}})).await?;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
    }
    node.flush("orders").await?;
    // A maintenance run, so that the page has the retention and the oldest event to show.
    let snapshot = node.compact("orders").await?["snapshot_id"].as_i64().expect("a snapshot");
    node.flush("broken").await?;
    // `broken` cannot write data files any more: a file where its data folder was.
    let data = node.data_dir().join("warehouse/zombi/broken/data");
    std::fs::rename(&data, node.data_dir().join("warehouse/zombi/broken/data.aside"))?;
    std::fs::write(&data, b"not a directory")?;
    send_one(&c, &edge.url(), "broken", &json!({"payload": {"v": 30}})).await?;
    wait_for("the failing flush in /stats", Duration::from_secs(30), || async {
        let s = node.stats().await.ok()?;
        (s["tables"]["broken"]["flush"]["consecutive_failures"].as_u64()? >= 1).then_some(())
    })
    .await?;

    // Protected like /stats.
    let page = c.get(format!("{}/ui", node.url())).send().await?;
    assert_eq!(page.status().as_u16(), 401);
    let page = c.get(format!("{}/ui?token={token}", node.url())).send().await?;
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.headers()["content-type"].to_str()?.starts_with("text/html"));
    let html = page.text().await?;
    // One file: no script, style or image from elsewhere.
    for outside in ["src=", "href=", "<link", "@import", "url("] {
        assert!(!html.contains(outside), "the page loads something from elsewhere: {outside}");
    }

    let screenshot = bin_dir().join("artifacts/status-page.png");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/ui_check.py");
    let ui = format!("{}/ui?token={token}", node.url());
    let out = std::process::Command::new(zombi_tests::engines::venv_python())
        .arg(script)
        .args([ui.as_str(), &edge.url(), "orders", "broken", screenshot.to_str().unwrap()])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_str(stdout.trim())?;
    assert_eq!(seen["role"], "active", "{seen}");
    assert_eq!(seen["events_first"].as_u64(), Some(30), "{seen}");
    assert_eq!(seen["events_after"].as_u64(), node.table_events("orders").await.ok(), "{seen}");
    // The 64-bit snapshot id, digit for digit.
    assert_eq!(seen["snapshot"].as_str(), Some(snapshot.to_string().as_str()), "{seen}");
    let refreshes = seen["refreshes"].as_array().unwrap();
    assert!(refreshes[1].as_u64() > refreshes[0].as_u64(), "{seen}");
    assert!(seen["problem"].as_str().unwrap().starts_with("flush failing"), "{seen}");
    assert!(seen["retention"].as_str().is_some_and(|r| r.starts_with("400 d, oldest ")), "{seen}");
    let png = std::fs::read(&screenshot)?;
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
    eprintln!("status page screenshot: {}", screenshot.display());
    Ok(())
}
