//! Producer-side helpers: send events to an edge the way a client would.

use std::io::Write as _;

use anyhow::Result;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

pub fn compress(body: &[u8], encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Identity => body.to_vec(),
        Encoding::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(body).unwrap();
            enc.finish().unwrap()
        }
        Encoding::Zstd => zstd::encode_all(body, 1).unwrap(),
    }
}

/// The answer to one producer request.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

pub async fn post(
    client: &reqwest::Client,
    url: &str,
    content_type: Option<&str>,
    encoding: Encoding,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Result<Reply> {
    let mut req = client.post(url).body(compress(body, encoding));
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    match encoding {
        Encoding::Identity => {}
        Encoding::Gzip => req = req.header("content-encoding", "gzip"),
        Encoding::Zstd => req = req.header("content-encoding", "zstd"),
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let retry_after =
        resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = resp.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Reply { status, body, retry_after })
}

/// POSTs one event envelope to `{edge}/tables/{table}`.
pub async fn send_one(
    client: &reqwest::Client,
    edge: &str,
    table: &str,
    envelope: &Value,
) -> Result<Reply> {
    let body = serde_json::to_vec(envelope)?;
    post(
        client,
        &format!("{edge}/tables/{table}"),
        Some("application/json"),
        Encoding::Identity,
        &body,
        &[],
    )
    .await
}

/// POSTs envelopes as `{"records":[…]}` to `{edge}/tables/{table}/bulk`.
pub async fn send_bulk(
    client: &reqwest::Client,
    edge: &str,
    table: &str,
    records: &[Value],
) -> Result<Reply> {
    let body = serde_json::to_vec(&json!({ "records": records }))?;
    post(
        client,
        &format!("{edge}/tables/{table}/bulk"),
        Some("application/json"),
        Encoding::Identity,
        &body,
        &[],
    )
    .await
}

/// NDJSON body of the given envelopes.
pub fn ndjson(records: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        serde_json::to_writer(&mut out, r).unwrap();
        out.push(b'\n');
    }
    out
}

/// Sends a hand-written HTTP/1.1 request so the path reaches the server exactly as given
/// (URL libraries normalise `..` and re-encode). Returns the status and the body.
pub async fn raw_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut response = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(30), stream.read_to_end(&mut response))
        .await??;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status line in {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// One acknowledged event: (partition, sequence, v).
pub type Acked = (u32, u64, i64);

/// Sends `records` (envelopes whose payload carries an integer "v") in bulk requests of
/// `chunk`, all to one partition per request, and returns what was acknowledged.
pub async fn send_acked(
    client: &reqwest::Client,
    edge: &str,
    table: &str,
    partition: u32,
    records: &[(i64, i64)],
) -> Result<Vec<Acked>> {
    let envelopes: Vec<Value> = records
        .iter()
        .map(|(ts, v)| json!({"payload": {"v": v}, "partition": partition, "timestamp_ms": ts}))
        .collect();
    let r = send_bulk(client, edge, table, &envelopes).await?;
    anyhow::ensure!(r.status == 200, "bulk to {table}: {} {}", r.status, r.body);
    let first = r.body["partitions"][0]["first_sequence"].as_u64().unwrap();
    Ok(records.iter().enumerate().map(|(i, (_, v))| (partition, first + i as u64, *v)).collect())
}
