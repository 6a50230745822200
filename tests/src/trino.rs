//! A Trino server for the tests (`scripts/trino.sh`): the suite's shared one when
//! `ZOMBI_TRINO_URL` is set (`just test` starts one per run), else one of this test's own.
//! Each test makes its own catalogs (`CREATE CATALOG … USING iceberg|zombi`) and drops them.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;

pub struct Trino {
    url: String,
    own: Option<tempfile::TempDir>,
}

fn script() -> PathBuf {
    crate::package_dir().join("../scripts/trino.sh")
}

impl Trino {
    /// The shared server, or a new one (20-60 s to start on 2 cores).
    pub fn start() -> Result<Trino> {
        if let Ok(url) = std::env::var("ZOMBI_TRINO_URL") {
            return Ok(Trino { url, own: None });
        }
        let dir = tempfile::tempdir()?;
        let out = Command::new(script()).arg("start").arg(dir.path()).output()?;
        anyhow::ensure!(
            out.status.success(),
            "scripts/trino.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout)?.lines().last().context("no URL")?.to_owned();
        Ok(Trino { url, own: Some(dir) })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs one statement and returns its rows; a failed query is an error with Trino's message.
    pub async fn query(&self, sql: &str) -> Result<Vec<Vec<Value>>> {
        let c = crate::client();
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut reply: Value = c
            .post(format!("{}/v1/statement", self.url))
            .header("X-Trino-User", "zombi-tests")
            .body(sql.to_owned())
            .send()
            .await?
            .json()
            .await?;
        let mut rows = Vec::new();
        loop {
            if let Some(data) = reply["data"].as_array() {
                rows.extend(data.iter().map(|r| r.as_array().cloned().unwrap_or_default()));
            }
            if let Some(error) = reply.get("error") {
                anyhow::bail!("trino: {sql}: {}", error["message"].as_str().unwrap_or("?"));
            }
            let Some(next) = reply["nextUri"].as_str() else { return Ok(rows) };
            anyhow::ensure!(Instant::now() < deadline, "trino: {sql}: no answer within 180 s");
            reply = c.get(next).send().await?.json().await?;
        }
    }

    /// One row of numbers (`SELECT count(*), …`), as i64s (nulls as 0).
    pub async fn numbers(&self, sql: &str) -> Result<Vec<i64>> {
        let rows = self.query(sql).await?;
        anyhow::ensure!(rows.len() == 1, "trino: {sql}: {} rows", rows.len());
        Ok(rows[0]
            .iter()
            .map(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(0))
            .collect())
    }

    /// Creates a catalog with a name no other test uses; dropped by [`Trino::drop_catalog`].
    pub async fn catalog(&self, connector: &str, props: &[(&str, String)]) -> Result<String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name =
            format!("{connector}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let with: Vec<String> =
            props.iter().map(|(k, v)| format!("\"{k}\" = '{}'", v.replace('\'', "''"))).collect();
        self.query(&format!("CREATE CATALOG {name} USING {connector} WITH ({})", with.join(", ")))
            .await?;
        Ok(name)
    }

    pub async fn drop_catalog(&self, name: &str) -> Result<()> {
        self.query(&format!("DROP CATALOG {name}")).await.map(|_| ())
    }
}

impl Drop for Trino {
    fn drop(&mut self) {
        if let Some(dir) = &self.own {
            let _ = Command::new(script()).arg("stop").arg(dir.path()).status();
        }
    }
}

/// Catalog properties for a node's REST catalog on a `file://` warehouse.
pub fn rest_catalog(node_url: &str, token: Option<&str>) -> Vec<(&'static str, String)> {
    let mut props = vec![
        ("iceberg.catalog.type", "rest".to_owned()),
        ("iceberg.rest-catalog.uri", node_url.to_owned()),
        ("fs.native-local.enabled", "true".to_owned()),
        ("local.location", "/".to_owned()),
    ];
    if let Some(token) = token {
        props.push(("iceberg.rest-catalog.security", "OAUTH2".to_owned()));
        props.push(("iceberg.rest-catalog.oauth2.token", token.to_owned()));
    }
    props
}

/// The figures of `crate::engines::Figures` in Trino SQL (`date`: `event_date` to count).
pub fn figures_sql(table: &str, date: &str) -> String {
    format!(
        "SELECT count(*), count(DISTINCT (partition, sequence)), \
         coalesce(sum(CAST(partition AS BIGINT) * {f} + sequence), 0), \
         coalesce(sum(CAST(json_extract_scalar(payload, '$.v') AS BIGINT)), 0), \
         count_if(event_date = DATE '{date}') FROM {table}",
        f = crate::engines::PAIR_FACTOR
    )
}

/// Parses the row of [`figures_sql`].
pub fn figures(row: &[i64]) -> crate::engines::Figures {
    crate::engines::Figures {
        count: row[0],
        distinct: row[1],
        pair_checksum: row[2],
        sum_v: row[3],
        date_count: Some(row[4]),
    }
}
