//! An S3 warehouse on a real S3-compatible server (moto, on loopback), and the catalog's
//! auth and error contract seen over HTTP.

use serde_json::Value;
use zombi_tests::engines::{self, EngineOpts, expected, figures};
use zombi_tests::producer::send_acked;
use zombi_tests::{Edge, Node, client};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_warehouse_is_read_back_by_pyiceberg_and_duckdb() -> anyhow::Result<()> {
    let moto = zombi_tests::moto::start().await?;
    let node = Node::start(&moto.node_env()).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let c = client();
    let mut acked = Vec::new();
    for p in 0..2u32 {
        let records: Vec<(i64, i64)> =
            (0..50).map(|k| (1_767_225_600_000 + k * 60_000, k + 100 * p as i64)).collect();
        acked.extend(send_acked(&c, &edge.url(), "s3events", p, &records).await?);
    }
    let flushed = node.flush("s3events").await?;
    let w = node.watermark("s3events").await?;
    assert_eq!(w["watermarks"], w["high_water_marks"], "{flushed}");
    let metadata: Value = c
        .get(format!("{}/v1/namespaces/zombi/tables/s3events", node.url()))
        .send()
        .await?
        .json()
        .await?;
    let location = metadata["metadata-location"].as_str().unwrap();
    assert!(location.starts_with("s3://warehouse/lake/zombi/s3events/metadata/"), "{location}");

    let opts = moto.engine_opts();
    let got = engines::python_engines(&node.url(), "s3events", &["pyiceberg", "duckdb"], &opts)?;
    for engine in ["pyiceberg", "duckdb"] {
        assert_eq!(figures(&got[engine])?, expected(&acked), "{engine}: {}", got[engine]);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalog_speaks_iceberg_errors_and_checks_tokens() -> anyhow::Result<()> {
    let token = "catalog-token-0123456789";
    let node = Node::start(&[("ZOMBI_NODE__AUTH__CATALOG_TOKEN", token)]).await?;
    let edge = Edge::start(&node.url(), &[]).await?;
    let acked = send_acked(&client(), &edge.url(), "guarded", 0, &[(1_767_225_600_000, 7)]).await?;
    node.flush("guarded").await?;
    let c = client();
    let base = node.url();
    let get = |path: &str, auth: Option<&str>| {
        let mut r = c.get(format!("{base}{path}"));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    let bearer = format!("Bearer {token}");
    assert_eq!(get("/v1/config", None).await?.status(), 401);
    assert_eq!(get("/v1/config", Some("Bearer None")).await?.status(), 401);
    assert_eq!(get("/v1/config", Some(&bearer)).await?.status(), 200);
    assert_eq!(get("/tables/guarded/watermark", None).await?.status(), 401);

    let missing = get("/v1/namespaces/zombi/tables/nope", Some(&bearer)).await?;
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await?;
    assert_eq!(body["error"]["type"], "NoSuchTableException", "{body}");
    assert_eq!(body["error"]["code"], 404);
    let no_ns = get("/v1/namespaces/other/tables", Some(&bearer)).await?;
    assert_eq!(no_ns.status(), 404);
    // Engines declare typed tables (a table without columns is refused with an Iceberg
    // error) and cannot drop one.
    let create = c
        .post(format!("{base}/v1/namespaces/zombi/tables"))
        .header("authorization", &bearer)
        .json(&serde_json::json!({"name": "x", "schema": {"type": "struct", "fields": []}}))
        .send()
        .await?;
    assert_eq!(create.status(), 400);
    let body: Value = create.json().await?;
    assert_eq!(body["error"]["type"], "BadRequestException", "{body}");
    let drop = c
        .delete(format!("{base}/v1/namespaces/zombi/tables/guarded"))
        .header("authorization", &bearer)
        .send()
        .await?;
    assert_eq!(drop.status(), 403);
    assert!(drop.json::<Value>().await?["error"]["message"].is_string());

    // PyIceberg with the token reads the table.
    let opts = EngineOpts { token: Some(token.into()), ..Default::default() };
    let got = engines::python_engines(&base, "guarded", &["pyiceberg"], &opts)?;
    assert_eq!(figures(&got["pyiceberg"])?, expected(&acked));
    Ok(())
}
