//! `zombi load`: a file of events into a table through an edge's bulk endpoint.
//!
//! A reader thread turns the input into NDJSON batches of envelopes; up to `concurrency`
//! batches are in flight. Every record carries an idempotency key derived from the input
//! and its position (`zl-<digest of the first MiB>-<index>`), so a load that was
//! interrupted, run again on the same input, writes each record once: what was written
//! before comes back as duplicates.

mod progress;
pub mod records;

use std::io::Read;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::Value;
use zombi_shared::error_chain;

use progress::Progress;
use records::{Counter, Format, Shape};

/// What `zombi load` was asked.
pub struct LoadArgs {
    pub input: String,
    pub table: String,
    pub edge: String,
    pub token: Option<String>,
    pub format: Option<Format>,
    pub shape: Shape,
    pub load_id: Option<String>,
    pub batch_records: usize,
    pub batch_bytes: usize,
    pub concurrency: usize,
    /// How long one batch is retried (429, 503, no connection) before the load gives up.
    pub retry_for: Duration,
}

/// One bulk request: records `first..first + count` of the input.
struct Batch {
    first: u64,
    count: u64,
    body: Vec<u8>,
}

/// What the edge said of one batch.
struct Written {
    count: u64,
    duplicates: u64,
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    zombi_shared::validate_producer_table(&args.table)
        .map_err(|e| anyhow::anyhow!("invalid table name {:?}: {e}", args.table))?;
    let counter = Counter::default();
    let (raw, total): (Box<dyn Read + Send>, Option<u64>) = if args.input == "-" {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = std::fs::File::open(&args.input)
            .with_context(|| format!("cannot open {}", args.input))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let input = records::open(raw, counter.clone())
        .with_context(|| format!("cannot read {}", args.input))?;
    let format = records::detect(args.format, &args.input, &input).map_err(anyhow::Error::msg)?;
    let load_id = args.load_id.clone().unwrap_or_else(|| input.head_digest.clone());
    eprintln!(
        "loading {} into {} as {} (load id {load_id})",
        args.input,
        args.table,
        format!("{format:?}").to_lowercase()
    );

    // The reader thread: records → envelopes → batches, at most two per sender ahead.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Batch, String>>(args.concurrency * 2);
    let (shape, limits) = (args.shape.clone(), (args.batch_records, args.batch_bytes));
    let reader = std::thread::spawn(move || {
        let mut batch = Batch { first: 0, count: 0, body: Vec::new() };
        let mut index = 0u64;
        let result = records::for_each_record(format, input.reader, &shape, |record, place| {
            let line = records::envelope(record, index, &load_id, &shape)
                .map_err(|e| format!("{place}: {e}"))?;
            batch.body.extend_from_slice(line.as_bytes());
            batch.body.push(b'\n');
            batch.count += 1;
            index += 1;
            if batch.count as usize >= limits.0 || batch.body.len() >= limits.1 {
                let full = std::mem::replace(
                    &mut batch,
                    Batch { first: index, count: 0, body: Vec::new() },
                );
                tx.blocking_send(Ok(full)).map_err(|_| "the load stopped".to_owned())?;
            }
            Ok(())
        });
        let last = match result {
            Ok(()) if batch.count > 0 => Some(Ok(batch)),
            Ok(()) => None,
            Err(e) => Some(Err(e)),
        };
        if let Some(last) = last {
            let _ = tx.blocking_send(last);
        }
    });

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .no_proxy()
        .build()
        .context("cannot build the HTTP client")?;
    let url = format!("{}/tables/{}/bulk", args.edge.trim_end_matches('/'), args.table);
    let mut progress = Progress::new(total, counter);
    let batches = futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|b| (b, rx)) });
    let mut sends = Box::pin(
        batches
            .map(|batch| {
                let (http, url, token) = (&http, &url, args.token.as_deref());
                async move {
                    let batch = batch.map_err(anyhow::Error::msg)?;
                    send(http, url, token, batch, args.retry_for).await
                }
            })
            .buffer_unordered(args.concurrency),
    );
    let started = Instant::now();
    let mut outcome = Ok(());
    while let Some(result) = sends.next().await {
        match result {
            Ok(w) => progress.add(w.count, w.duplicates),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    // Closes the batches' channel: the reader thread stops at its next batch.
    drop(sends);
    progress.finish();
    let (events, duplicates) = progress.totals();
    let took = started.elapsed().as_secs_f64();
    match outcome {
        Ok(()) => {
            let _ = reader.join();
            eprintln!(
                "loaded {events} records into {}: {} new, {duplicates} already there, in {took:.1} s ({:.0} records/s)",
                args.table,
                events - duplicates,
                events as f64 / took.max(1e-3),
            );
            Ok(())
        }
        Err(e) => {
            eprintln!(
                "stopped after {events} records ({duplicates} already there); run the same command again to go on: records written before are not written twice"
            );
            Err(e)
        }
    }
}

/// Sends one batch, retrying on 429, 503 and connection failures (after `Retry-After`
/// when the edge gives one, else with exponential backoff) for up to `retry_for`. Any
/// other answer stops the load: its message names the record.
async fn send(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    batch: Batch,
    retry_for: Duration,
) -> anyhow::Result<Written> {
    let deadline = Instant::now() + retry_for;
    let mut backoff = Duration::from_millis(100);
    let records = format!("records {}..={}", batch.first, batch.first + batch.count - 1);
    loop {
        let mut request =
            http.post(url).header("content-type", "application/x-ndjson").body(batch.body.clone());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let (wait, why) = match request.send().await {
            Ok(r) => {
                let status = r.status();
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let body: Value = r.json().await.unwrap_or(Value::Null);
                match status {
                    StatusCode::OK => {
                        return Ok(Written {
                            count: body["accepted"].as_u64().unwrap_or(batch.count),
                            duplicates: body["duplicates"].as_u64().unwrap_or(0),
                        });
                    }
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => (
                        retry_after,
                        format!("HTTP {}: {}", status.as_u16(), crate::admin::error_message(&body)),
                    ),
                    _ => bail!(
                        "the edge refused {records} with HTTP {}: {}",
                        status.as_u16(),
                        absolute(&crate::admin::error_message(&body), batch.first)
                    ),
                }
            }
            Err(e) => (None, error_chain(&e)),
        };
        let wait = wait.unwrap_or(backoff);
        if Instant::now() + wait > deadline {
            bail!("gave up on {records} after {} s: {why}", retry_for.as_secs());
        }
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// The edge names a bad record by its index in the request (`record 3: …`): name it by its
/// index in the input instead.
fn absolute(message: &str, first: u64) -> String {
    let Some(at) = message.find("record ") else { return message.to_owned() };
    let rest = &message[at + "record ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    match digits.parse::<u64>() {
        Ok(i) => {
            format!("{}record {} of the input{}", &message[..at], first + i, &rest[digits.len()..])
        }
        Err(_) => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_numbers_become_positions_in_the_input() {
        assert_eq!(
            absolute("invalid_event: record 3: unknown field `x`", 1000),
            "invalid_event: record 1003 of the input: unknown field `x`"
        );
        assert_eq!(absolute("payload_too_large: too big", 5), "payload_too_large: too big");
    }
}
