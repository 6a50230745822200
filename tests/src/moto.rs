//! A real S3-compatible server on loopback (moto, from the engines venv) as a warehouse.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Result;

use crate::engines::{self, EngineOpts};
use crate::{client, wait_for};

pub const BUCKET: &str = "warehouse";
const KEY: &str = "zombi";
const SECRET: &str = "zombi-secret";

pub struct Moto {
    child: Child,
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto on a free loopback port and creates the bucket `warehouse`.
pub async fn start() -> Result<Moto> {
    let bin = engines::venv_python().with_file_name("moto_server");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let moto = Moto { child, url: format!("http://127.0.0.1:{port}") };
    let c = client();
    wait_for("moto to answer", Duration::from_secs(30), || {
        let req = c.get(&moto.url).send();
        async move { req.await.ok().map(|_| ()) }
    })
    .await?;
    let r = c.put(format!("{}/{BUCKET}", moto.url)).send().await?;
    anyhow::ensure!(r.status().is_success(), "create bucket: {}", r.status());
    Ok(moto)
}

impl Moto {
    /// Node settings for a warehouse at `s3://warehouse/lake` on this server.
    pub fn node_env(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("ZOMBI_NODE__ICEBERG__WAREHOUSE", "s3://warehouse/lake"),
            ("ZOMBI_NODE__ICEBERG__S3__ENDPOINT", &self.url),
            ("ZOMBI_NODE__ICEBERG__S3__REGION", "us-east-1"),
            ("ZOMBI_NODE__ICEBERG__S3__ACCESS_KEY_ID", KEY),
            ("ZOMBI_NODE__ICEBERG__S3__SECRET_ACCESS_KEY", SECRET),
            ("ZOMBI_NODE__ICEBERG__S3__PATH_STYLE", "true"),
        ]
    }

    /// Engine options that read this server's objects.
    pub fn engine_opts(&self) -> EngineOpts {
        EngineOpts { s3: Some((self.url.clone(), KEY.into(), SECRET.into())), ..Default::default() }
    }

    /// Every key of `bucket` under `prefix` (ListObjectsV2, following continuation tokens).
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<String>> {
        let c = client();
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2".to_owned()), ("prefix", prefix.to_owned())];
            if let Some(t) = &token {
                query.push(("continuation-token", t.clone()));
            }
            let body =
                c.get(format!("{}/{bucket}", self.url)).query(&query).send().await?.text().await?;
            keys.extend(tags(&body, "Key"));
            token = tags(&body, "NextContinuationToken").into_iter().next();
            if token.is_none() {
                return Ok(keys);
            }
        }
    }
}

/// The text of every `<tag>…</tag>` in an XML document.
fn tags(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(open.as_str())
        .skip(1)
        .filter_map(|rest| rest.split(close.as_str()).next().map(str::to_owned))
        .collect()
}
