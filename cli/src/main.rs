//! `zombi`: load files of events into Zombi tables through an edge, and see and steer a
//! node (`status`, `flush`, `compact`). See `docs/cli.md`.
#![forbid(unsafe_code)]

mod admin;
mod load;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use load::records::{Format, Shape};

#[derive(Parser)]
#[command(name = "zombi", version, about = "Load events into Zombi, and see and steer a node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct NodeArgs {
    /// The node's URL.
    #[arg(long, env = "ZOMBI_NODE_URL", default_value = "http://127.0.0.1:8090")]
    node: String,
    /// The node's admin token (`auth.admin_token`), if it has one.
    #[arg(long, env = "ZOMBI_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Load a file of events (NDJSON, a JSON array or CSV; gzip or zstd) into a table.
    ///
    /// Each record becomes one event's payload, with an idempotency key from the input's
    /// first MiB and the record's position: run the same load again after an interruption
    /// and every record is written once.
    Load {
        /// The file, or - for standard input.
        input: String,
        /// The table to write to.
        #[arg(long, short)]
        table: String,
        /// The edge's URL.
        #[arg(long, env = "ZOMBI_EDGE_URL", default_value = "http://127.0.0.1:8080")]
        edge: String,
        /// A producer token (`auth.producer_tokens`), if the edge asks for one.
        #[arg(long, env = "ZOMBI_PRODUCER_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The format; by default from the file name (.csv) or the first character
        /// ('[' a JSON array, '{' NDJSON).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Records are envelopes already (`payload`, `partition`, `timestamp_ms`,
        /// `idempotency_key`), not payloads.
        #[arg(long)]
        envelopes: bool,
        /// The record field that holds the event time: ms since the epoch or RFC 3339.
        #[arg(long)]
        timestamp_field: Option<String>,
        /// The partition of every event (default 0).
        #[arg(long)]
        partition: Option<u32>,
        /// Keep CSV values as strings (by default numbers, booleans and empty fields are
        /// typed).
        #[arg(long)]
        csv_strings: bool,
        /// Names the load in the idempotency keys instead of the input's first MiB: give
        /// the same id to a rerun whose input changed in its first MiB.
        #[arg(long)]
        load_id: Option<String>,
        /// Records per request.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        batch_records: u64,
        /// Bytes of envelopes per request, at most (below the edge's request limit).
        #[arg(long, default_value_t = 4 << 20, value_parser = clap::value_parser!(u64).range(1024..=(16 << 20)))]
        batch_bytes: u64,
        /// Requests in flight at once. With 1, sequences follow the file's order.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
        concurrency: u64,
        /// How long one request is retried on 429, 503 or no connection, in seconds.
        #[arg(long, default_value_t = 600)]
        retry_for_secs: u64,
    },
    /// The node's role and, per table: events, backlog, freshness lag, last commit, files,
    /// snapshots, maintenance and what is failing.
    Status {
        #[command(flatten)]
        node: NodeArgs,
        /// Print the node's /stats JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Commit everything acknowledged in a table now.
    Flush {
        table: String,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Run a table's maintenance now (retention, compaction, manifest merging, expiry,
    /// cleanup).
    Compact {
        table: String,
        /// Expire the snapshots older than this many seconds in this run; 0 keeps only the
        /// current snapshot (after a delete, the deleted rows leave time travel).
        #[arg(long)]
        expire_snapshots_older_than_secs: Option<u64>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Delete the rows of a table that match every condition given, committed and not yet
    /// committed (docs/deletes.md). Example: `zombi delete clicks --payload-field user_id=u-1842`.
    Delete {
        table: String,
        /// `NAME=VALUE`: the column NAME equals VALUE (converted to the column's type).
        #[arg(long = "column", value_name = "NAME=VALUE")]
        columns: Vec<String>,
        /// `NAME=VALUE`: the payload's top-level field NAME equals VALUE. VALUE is read as
        /// JSON when it is a number, a boolean or a quoted string, else as a string.
        #[arg(long = "payload-field", value_name = "NAME=VALUE")]
        payload_fields: Vec<String>,
        /// Only events whose event time is before this RFC 3339 time.
        #[arg(long, value_name = "TIME")]
        before: Option<String>,
        /// More conditions as the API takes them: a JSON array of
        /// `{"column"|"payload_field", "op", "value"}`.
        #[arg(long = "where", value_name = "JSON")]
        conditions: Option<String>,
        #[command(flatten)]
        node: NodeArgs,
    },
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run(Cli::parse().command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Load {
            input,
            table,
            edge,
            token,
            format,
            envelopes,
            timestamp_field,
            partition,
            csv_strings,
            load_id,
            batch_records,
            batch_bytes,
            concurrency,
            retry_for_secs,
        } => {
            load::run(load::LoadArgs {
                input,
                table,
                edge,
                token,
                format,
                shape: Shape { envelopes, timestamp_field, partition, csv_strings },
                load_id,
                batch_records: batch_records as usize,
                batch_bytes: batch_bytes as usize,
                concurrency: concurrency as usize,
                retry_for: Duration::from_secs(retry_for_secs),
            })
            .await
        }
        Command::Status { node, json } => {
            let stats = admin::Node::new(&node.node, node.admin_token)?.stats().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                print!("{}", admin::render_status(&stats, chrono::Utc::now().timestamp_millis()));
            }
            Ok(())
        }
        Command::Flush { table, node } => {
            let out = admin::Node::new(&node.node, node.admin_token)?.flush(&table).await?;
            println!(
                "{table}: committed up to {} in snapshot {}",
                out["watermarks"], out["snapshot_id"]
            );
            Ok(())
        }
        Command::Compact { table, expire_snapshots_older_than_secs, node } => {
            let out = admin::Node::new(&node.node, node.admin_token)?
                .compact(&table, expire_snapshots_older_than_secs)
                .await?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Delete { table, columns, payload_fields, before, conditions, node } => {
            let body = admin::delete_request(
                &columns,
                &payload_fields,
                before.as_deref(),
                conditions.as_deref(),
            )?;
            let out = admin::Node::new(&node.node, node.admin_token)?.delete(&table, &body).await?;
            println!(
                "{table}: {} rows deleted ({} files rewritten, {} removed) in snapshot {}",
                out["rows_deleted"],
                out["files_rewritten"],
                out["files_removed"],
                out["snapshot_id"]
            );
            Ok(())
        }
    }
}

/// The error and its causes on one line, as people read them.
fn chain(error: &anyhow::Error) -> String {
    error.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ")
}
