//! The baselines Zombi's figures are compared with, measured in the same run:
//! - the HTTP limit: a minimal axum server that reads the body and answers a small JSON,
//!   run as a child process (`zombi-bench http-limit-server`) like the edge;
//! - the storage limits: what one core does with the same events through raw RocksDB
//!   `WriteBatch`es with the WAL, raw Parquet ZSTD encoding and raw JSON parsing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Runs the HTTP-limit server until killed; prints its address like the Zombi binaries.
pub fn serve_http_limit() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("http-limit listening on http://{}", listener.local_addr()?);
        let counter = Arc::new(AtomicU64::new(0));
        let app = Router::new().route("/tables/{table}", post(answer)).with_state(counter);
        axum::serve(listener, app).await?;
        Ok(())
    })
}

async fn answer(
    State(counter): State<Arc<AtomicU64>>,
    body: Bytes,
) -> axum::Json<serde_json::Value> {
    let sequence = counter.fetch_add(1, Ordering::Relaxed);
    axum::Json(
        serde_json::json!({"table": "bench", "partition": 0, "sequence": sequence, "bytes": body.len()}),
    )
}

/// MiB/s of event bytes one core gets through each storage step.
pub struct StorageLimits {
    pub rocksdb_wal_mib_s: f64,
    pub parquet_zstd_mib_s: f64,
    pub json_parse_mib_s: f64,
}

impl StorageLimits {
    pub fn slowest(&self) -> f64 {
        self.rocksdb_wal_mib_s.min(self.parquet_zstd_mib_s).min(self.json_parse_mib_s)
    }

    /// CPU-seconds one core spends per GiB on all three steps, one after the other: what
    /// the node's work costs at the machine's own limits.
    pub fn cpu_seconds_per_gib(&self) -> f64 {
        [self.rocksdb_wal_mib_s, self.parquet_zstd_mib_s, self.json_parse_mib_s]
            .iter()
            .map(|mib_s| 1024.0 / mib_s)
            .sum()
    }
}

/// Runs each step over `events` (NDJSON envelopes) for about `duration`, on this thread.
pub fn storage_limits(events: &[Vec<u8>], duration: Duration) -> Result<StorageLimits> {
    Ok(StorageLimits {
        json_parse_mib_s: json_parse(events, duration)?,
        rocksdb_wal_mib_s: rocksdb_wal(events, duration)?,
        parquet_zstd_mib_s: parquet_zstd(events, duration)?,
    })
}

fn mib_s(bytes: u64, started: Instant) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / started.elapsed().as_secs_f64()
}

/// The envelope as a minimal parser sees it: the payload stays raw JSON text.
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow)]
    payload: &'a RawValue,
    #[serde(default)]
    partition: u32,
}

fn json_parse(events: &[Vec<u8>], duration: Duration) -> Result<f64> {
    let started = Instant::now();
    let mut bytes = 0u64;
    let mut check = 0u64;
    while started.elapsed() < duration {
        for e in events {
            let env: RawEnvelope = serde_json::from_slice(e)?;
            check += env.payload.get().len() as u64 + u64::from(env.partition);
            bytes += e.len() as u64;
        }
    }
    std::hint::black_box(check);
    Ok(mib_s(bytes, started))
}

fn rocksdb_wal(events: &[Vec<u8>], duration: Duration) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    let db = rocksdb::DB::open(&opts, dir.path())?;
    let started = Instant::now();
    let (mut bytes, mut seq) = (0u64, 0u64);
    while started.elapsed() < duration {
        for chunk in events.chunks(1000) {
            let mut batch = rocksdb::WriteBatch::default();
            for e in chunk {
                let mut key = [0u8; 16];
                key[..8].copy_from_slice(&7u64.to_be_bytes());
                key[8..].copy_from_slice(&seq.to_be_bytes());
                batch.put(key, e);
                seq += 1;
                bytes += e.len() as u64;
            }
            db.write(batch)?;
        }
    }
    Ok(mib_s(bytes, started))
}

fn parquet_zstd(events: &[Vec<u8>], duration: Duration) -> Result<f64> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("partition", DataType::Int32, false),
        Field::new("sequence", DataType::Int64, false),
        Field::new("timestamp_ms", DataType::Int64, false),
        Field::new("payload", DataType::Utf8, true),
    ]));
    let payloads: Vec<String> = events
        .iter()
        .map(|e| serde_json::from_slice::<RawEnvelope>(e).map(|env| env.payload.get().to_owned()))
        .collect::<Result<_, _>>()?;
    let n = events.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from_iter_values((0..n).map(|i| (i % 4) as i32))),
        Arc::new(Int64Array::from_iter_values(0..n as i64)),
        Arc::new(Int64Array::from_iter_values((0..n as i64).map(|i| 1_767_225_600_000 + i))),
        Arc::new(StringArray::from_iter_values(&payloads)),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let event_bytes: u64 = events.iter().map(|e| e.len() as u64).sum();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .build();
    let started = Instant::now();
    let mut bytes = 0u64;
    while started.elapsed() < duration {
        let mut writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone()))?;
        writer.write(&batch)?;
        std::hint::black_box(writer.into_inner()?);
        bytes += event_bytes;
    }
    Ok(mib_s(bytes, started))
}
