//! `zombi status`, `zombi flush`, `zombi compact`, `zombi delete`: the node's admin API
//! from a terminal.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// How long `zombi delete` waits for the node's answer (other commands: 300 s).
const DELETE_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

pub struct Node {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl Node {
    pub fn new(url: &str, token: Option<String>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .no_proxy()
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Node { http, url: url.trim_end_matches('/').to_owned(), token })
    }

    async fn call(&self, method: reqwest::Method, path: &str) -> anyhow::Result<Value> {
        self.call_with(method, path, None).await
    }

    async fn call_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            // A delete reads and rewrites files for as long as the table needs: wait for it.
            request = request.json(body).timeout(DELETE_TIMEOUT);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the node at {}", self.url))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "the node answered {path} with HTTP {}: {}",
                status.as_u16(),
                error_message(&body)
            );
        }
        Ok(body)
    }

    pub async fn stats(&self) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, "/stats").await
    }

    pub async fn flush(&self, table: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, &format!("/tables/{table}/flush")).await
    }

    pub async fn compact(
        &self,
        table: &str,
        expire_after_secs: Option<u64>,
    ) -> anyhow::Result<Value> {
        let query = expire_after_secs
            .map_or(String::new(), |s| format!("?expire_snapshots_older_than_secs={s}"));
        self.call(reqwest::Method::POST, &format!("/tables/{table}/compact{query}")).await
    }

    pub async fn delete(&self, table: &str, body: &Value) -> anyhow::Result<Value> {
        self.call_with(reqwest::Method::POST, &format!("/tables/{table}/delete"), Some(body)).await
    }
}

/// The body of `POST /tables/{t}/delete` from `zombi delete`'s flags.
pub fn delete_request(
    columns: &[String],
    payload_fields: &[String],
    before: Option<&str>,
    conditions: Option<&str>,
) -> anyhow::Result<Value> {
    let pair = |flag: &str, arg: &str| -> anyhow::Result<(String, String)> {
        match arg.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
            _ => bail!("--{flag} takes NAME=VALUE, not {arg:?}"),
        }
    };
    let mut out: Vec<Value> = Vec::new();
    for arg in columns {
        let (name, value) = pair("column", arg)?;
        out.push(serde_json::json!({"column": name, "op": "eq", "value": value}));
    }
    for arg in payload_fields {
        let (name, value) = pair("payload-field", arg)?;
        // A number, a boolean or a quoted string as JSON; anything else as a string.
        let value = match serde_json::from_str::<Value>(&value) {
            Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::String(_))) => v,
            _ => Value::String(value),
        };
        out.push(serde_json::json!({"payload_field": name, "op": "eq", "value": value}));
    }
    if let Some(time) = before {
        out.push(serde_json::json!({"column": "event_time", "op": "lt", "value": time}));
    }
    if let Some(json) = conditions {
        match serde_json::from_str::<Value>(json).context("--where is not JSON")? {
            Value::Array(more) => out.extend(more),
            _ => bail!("--where takes a JSON array of conditions"),
        }
    }
    if out.is_empty() {
        bail!("give at least one condition: --column, --payload-field, --before or --where");
    }
    Ok(serde_json::json!({ "where": out }))
}

/// A Zombi error body (`{"error":{"code","message"}}`, edge or node) as `code: message`;
/// any other body as it is.
pub fn error_message(body: &Value) -> String {
    match (body["error"]["code"].as_str(), body["error"]["message"].as_str()) {
        (Some(code), Some(m)) => format!("{code}: {m}"),
        _ => body.to_string(),
    }
}

/// `/stats` as a table for people: one line per table.
pub fn render_status(stats: &Value, now_ms: i64) -> String {
    let node = &stats["node"];
    let mut out = format!("node: {}", node["role"].as_str().unwrap_or("unknown"));
    if let Some(since) = node["since_ms"].as_i64() {
        out.push_str(&format!(" for {}", ago(now_ms - since)));
    }
    if let Some(log) = stats.get("log").filter(|l| l.is_object()) {
        out.push_str(&format!(
            ", log: next segment {}, {} retained",
            log["next_segment"], log["retained_segments"]
        ));
    }
    out.push('\n');
    let header = [
        "TABLE",
        "EVENTS",
        "BACKLOG",
        "LAG",
        "SNAPSHOT",
        "LAST COMMIT",
        "FILES",
        "SNAPSHOTS",
        "MAINTENANCE",
        "RETENTION",
        "PROBLEM",
    ];
    let mut rows = vec![header.map(str::to_owned).to_vec()];
    let empty = serde_json::Map::new();
    for (name, t) in stats["tables"].as_object().unwrap_or(&empty) {
        let (f, m) = (&t["flush"], &t["maintenance"]);
        let num = |v: &Value| v.as_u64().map_or("-".to_owned(), |n| n.to_string());
        let problem = match (f["last_error"].as_str(), m["last_error"].as_str()) {
            (Some(e), _) => format!("flush failing ({}x): {e}", num(&f["consecutive_failures"])),
            (None, Some(e)) => format!("maintenance failed: {e}"),
            _ => String::new(),
        };
        let maintenance = match (m["last_run_ms"].as_i64(), m["last_outcome"].as_str()) {
            (Some(at), Some(outcome)) => format!("{outcome} {} ago", ago(now_ms - at)),
            _ => "-".to_owned(),
        };
        // The retention, and how old the oldest event the table still holds is.
        let retention = match (m["retention_secs"].as_u64(), m["oldest_event_time_ms"].as_i64()) {
            (Some(secs), Some(oldest)) => {
                format!("{}, oldest {}", span(secs), ago(now_ms - oldest))
            }
            (Some(secs), None) => span(secs),
            (None, _) if m.is_object() => "off".to_owned(),
            (None, _) => "-".to_owned(),
        };
        rows.push(vec![
            name.clone(),
            num(&t["events"]),
            num(&f["backlog_rows"]),
            f["freshness_lag_seconds"].as_f64().map_or("-".into(), |s| format!("{s:.1}s")),
            f["snapshot_id"].as_i64().map_or("-".into(), |s| s.to_string()),
            f["last_commit_ms"]
                .as_i64()
                .map_or("-".into(), |at| format!("{} ago", ago(now_ms - at))),
            num(&m["data_files"]),
            num(&m["snapshots"]),
            maintenance,
            retention,
            problem,
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> =
            row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A retention in seconds in the unit it was most likely given in: `90d`, `12h`, `30m`.
fn span(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A duration in ms as people read it: `850ms`, `12s`, `4m05s`, `3h02m`.
fn ago(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{}s", ms / 1_000),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1_000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_flags_become_the_apis_conditions() {
        let body = delete_request(
            &["customer_id=c-7".into()],
            &["user=u-1".into(), "n=42".into(), "zip=00501".into(), "id=\"42\"".into()],
            Some("2026-01-01T00:00:00Z"),
            Some(r#"[{"column": "partition", "op": "in", "value": [1, 2]}]"#),
        )
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"where": [
                {"column": "customer_id", "op": "eq", "value": "c-7"},
                {"payload_field": "user", "op": "eq", "value": "u-1"},
                {"payload_field": "n", "op": "eq", "value": 42},
                {"payload_field": "zip", "op": "eq", "value": "00501"},
                {"payload_field": "id", "op": "eq", "value": "42"},
                {"column": "event_time", "op": "lt", "value": "2026-01-01T00:00:00Z"},
                {"column": "partition", "op": "in", "value": [1, 2]},
            ]})
        );
        assert!(
            delete_request(&[], &[], None, None).unwrap_err().to_string().contains("at least one")
        );
        assert!(
            delete_request(&["x".into()], &[], None, None)
                .unwrap_err()
                .to_string()
                .contains("NAME=VALUE")
        );
        assert!(
            delete_request(&[], &[], None, Some("{}")).unwrap_err().to_string().contains("array")
        );
    }

    #[test]
    fn status_shows_each_table_on_a_line() {
        let stats = serde_json::json!({
            "node": {"role": "active", "since_ms": 1_000},
            "tables": {
                "clicks": {
                    "events": 120,
                    "flush": {"backlog_rows": 20, "freshness_lag_seconds": 0.8, "snapshot_id": 77,
                              "last_commit_ms": 61_000, "last_error": null},
                    "maintenance": {"data_files": 3, "snapshots": 9, "last_run_ms": 2_000,
                                    "last_outcome": "ok", "last_error": null,
                                    "retention_secs": 7_776_000, "oldest_event_time_ms": 2_500}
                },
                "orders": {"events": 5, "flush": {"last_error": "the catalog or the warehouse failed",
                                                  "consecutive_failures": 4}, "maintenance": null}
            }
        });
        let out = render_status(&stats, 62_500);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "node: active for 1m01s");
        assert!(lines[1].starts_with("TABLE "), "{out}");
        assert!(lines[2].starts_with("clicks "), "{out}");
        for cell in
            ["120", "20", "0.8s", "77", "1s ago", "3", "9", "ok 1m00s ago", "90d, oldest 1m00s"]
        {
            assert!(lines[2].contains(cell), "{cell} in {out}");
        }
        assert!(
            lines[3].contains("flush failing (4x): the catalog or the warehouse failed"),
            "{out}"
        );
    }
}
