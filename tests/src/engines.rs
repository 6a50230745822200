//! Reading tables back through real engines: PyIceberg, DuckDB and Spark (via
//! `tests/python/engines.py` in the project's venv) and iceberg-rust (in process).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use arrow_array::{Array, Int32Array, Int64Array, RecordBatch, StringArray};
use futures::TryStreamExt;
use iceberg::{Catalog, CatalogBuilder, TableIdent};
use iceberg_catalog_rest::RestCatalogBuilder;
use serde::Deserialize;

pub const PAIR_FACTOR: i64 = 1_000_003;

/// The figures every engine reports about a table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct Figures {
    pub count: i64,
    pub distinct: i64,
    pub pair_checksum: i64,
    pub sum_v: i64,
    #[serde(default)]
    pub date_count: Option<i64>,
}

/// Figures of an acknowledged set of (partition, sequence, v).
pub fn expected(acked: &[(u32, u64, i64)]) -> Figures {
    Figures {
        count: acked.len() as i64,
        distinct: acked
            .iter()
            .map(|(p, s, _)| (*p, *s))
            .collect::<std::collections::BTreeSet<_>>()
            .len() as i64,
        pair_checksum: acked.iter().map(|(p, s, _)| *p as i64 * PAIR_FACTOR + *s as i64).sum(),
        sum_v: acked.iter().map(|(_, _, v)| *v).sum(),
        date_count: None,
    }
}

pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("ZOMBI_VENV").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/zombi-venv")
    });
    venv.join("bin/python")
}

fn script() -> PathBuf {
    crate::package_dir().join("python/engines.py")
}

/// Extra options for the Python engines.
#[derive(Default, Clone)]
pub struct EngineOpts {
    pub date: Option<String>,
    pub token: Option<String>,
    pub snapshot_id: Option<i64>,
    /// (endpoint, key, secret)
    pub s3: Option<(String, String, String)>,
}

/// Runs the named Python engines (`pyiceberg`, `duckdb`, `spark`) against the catalog.
pub fn python_engines(
    uri: &str,
    table: &str,
    engines: &[&str],
    opts: &EngineOpts,
) -> Result<HashMap<String, serde_json::Value>> {
    let python = venv_python();
    anyhow::ensure!(python.exists(), "{} missing: run `just venv`", python.display());
    let mut cmd = Command::new(python);
    cmd.arg(script()).args(["--uri", uri, "--table", table, "--engines", &engines.join(",")]);
    if let Some(d) = &opts.date {
        cmd.args(["--date", d]);
    }
    if let Some(t) = &opts.token {
        cmd.args(["--token", t]);
    }
    if let Some(id) = opts.snapshot_id {
        cmd.args(["--snapshot-id", &id.to_string()]);
    }
    if let Some((endpoint, key, secret)) = &opts.s3 {
        cmd.args(["--s3-endpoint", endpoint, "--s3-key", key, "--s3-secret", secret]);
    }
    let out = cmd.output().context("cannot run engines.py")?;
    anyhow::ensure!(
        out.status.success(),
        "engines.py failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let line = text.lines().last().context("engines.py printed nothing")?;
    Ok(serde_json::from_str(line)?)
}

pub fn figures(v: &serde_json::Value) -> Result<Figures> {
    Ok(serde_json::from_value(v.clone())?)
}

pub async fn load_table(
    uri: &str,
    table: &str,
    opts: &EngineOpts,
) -> Result<iceberg::table::Table> {
    let mut props = HashMap::from([("uri".to_owned(), uri.to_owned())]);
    if let Some((endpoint, key, secret)) = &opts.s3 {
        for (k, v) in [
            ("s3.endpoint", endpoint.as_str()),
            ("s3.access-key-id", key),
            ("s3.secret-access-key", secret),
            ("s3.region", "us-east-1"),
            ("s3.path-style-access", "true"),
        ] {
            props.insert(k.to_owned(), v.to_owned());
        }
    }
    let catalog = RestCatalogBuilder::default()
        .with_storage_factory(std::sync::Arc::new(
            iceberg_storage_opendal::OpenDalResolvingStorageFactory::new(),
        ))
        .load("zombi", props)
        .await?;
    Ok(catalog.load_table(&TableIdent::from_strs(["zombi", table])?).await?)
}

/// What a table's metadata needs from the warehouse, read with iceberg-rust.
#[derive(Debug, Default)]
pub struct Referenced {
    pub snapshots: usize,
    /// Metadata JSON files: the current one and the metadata log.
    pub metadata_files: std::collections::BTreeSet<String>,
    /// Manifest lists and manifests of every retained snapshot.
    pub manifest_files: std::collections::BTreeSet<String>,
    /// Live data files of every retained snapshot.
    pub data_files: std::collections::BTreeSet<String>,
    /// Live data files of the current snapshot.
    pub current_data_files: std::collections::BTreeSet<String>,
    /// Manifests the current snapshot lists.
    pub current_manifests: usize,
    pub metadata_json_bytes: u64,
}

/// Every file the retained snapshots of `zombi.<table>` reference.
pub async fn referenced_files(uri: &str, table: &str, opts: &EngineOpts) -> Result<Referenced> {
    let t = load_table(uri, table, opts).await?;
    let m = t.metadata();
    let mut out = Referenced { snapshots: m.snapshots().len(), ..Default::default() };
    let location = t.metadata_location().context("no metadata location")?.to_owned();
    out.metadata_json_bytes = t.file_io().new_input(&location)?.metadata().await?.size;
    out.metadata_files.insert(location);
    out.metadata_files.extend(m.metadata_log().iter().map(|l| l.metadata_file.clone()));
    let current = m.current_snapshot_id();
    for snapshot in m.snapshots() {
        out.manifest_files.insert(snapshot.manifest_list().to_owned());
        let list = t.manifest_list_reader(snapshot).load().await?;
        if Some(snapshot.snapshot_id()) == current {
            out.current_manifests = list.entries().len();
        }
        for manifest in list.entries() {
            out.manifest_files.insert(manifest.manifest_path.clone());
            for e in manifest.load_manifest(t.file_io()).await?.entries() {
                if e.status() != iceberg::spec::ManifestStatus::Deleted {
                    out.data_files.insert(e.file_path().to_owned());
                    if Some(snapshot.snapshot_id()) == current {
                        out.current_data_files.insert(e.file_path().to_owned());
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Files under a local folder, as `file://` URIs.
pub fn files_under(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(format!("file://{}", path.display()));
            }
        }
    }
    out
}

/// Loads `zombi.<table>` through the REST catalog with iceberg-rust and reads every row
/// (of `snapshot_id`, or of the current snapshot).
pub async fn iceberg_rust_rows(
    uri: &str,
    table: &str,
    snapshot_id: Option<i64>,
) -> Result<Vec<RecordBatch>> {
    iceberg_rust_rows_with(uri, table, snapshot_id, &EngineOpts::default()).await
}

/// [`iceberg_rust_rows`] with the warehouse settings of `opts` (e.g. S3 credentials).
pub async fn iceberg_rust_rows_with(
    uri: &str,
    table: &str,
    snapshot_id: Option<i64>,
    opts: &EngineOpts,
) -> Result<Vec<RecordBatch>> {
    let t = load_table(uri, table, opts).await?;
    let mut scan = t.scan().select_all();
    if let Some(id) = snapshot_id {
        scan = scan.snapshot_id(id);
    }
    let stream = scan.build()?.to_arrow().await?;
    Ok(stream.try_collect().await?)
}

/// (partition, sequence, v) of every row; v is the payload's "v" (0 when absent).
pub fn rows_of(batches: &[RecordBatch]) -> Vec<(u32, u64, i64)> {
    let mut out = Vec::new();
    for b in batches {
        let col = |name: &str| b.column(b.schema().index_of(name).unwrap()).clone();
        let p = col("partition");
        let s = col("sequence");
        let payload = col("payload");
        let p = p.as_any().downcast_ref::<Int32Array>().unwrap();
        let s = s.as_any().downcast_ref::<Int64Array>().unwrap();
        let payload = payload.as_any().downcast_ref::<StringArray>().unwrap();
        for i in 0..b.num_rows() {
            let v = if payload.is_null(i) {
                0
            } else {
                serde_json::from_str::<serde_json::Value>(payload.value(i))
                    .ok()
                    .and_then(|j| j["v"].as_i64())
                    .unwrap_or(0)
            };
            out.push((p.value(i) as u32, s.value(i) as u64, v));
        }
    }
    out
}

/// Decodes an Arrow IPC stream (the hot endpoint's answer).
pub fn read_ipc(bytes: &[u8]) -> Result<Vec<RecordBatch>> {
    let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// Counts rows per (partition, sequence) and returns the duplicated ones.
pub fn duplicates(rows: &[(u32, u64, i64)]) -> Vec<(u32, u64)> {
    let mut seen: BTreeMap<(u32, u64), u32> = BTreeMap::new();
    for (p, s, _) in rows {
        *seen.entry((*p, *s)).or_default() += 1;
    }
    seen.into_iter().filter(|(_, n)| *n > 1).map(|(k, _)| k).collect()
}

/// Verifies that Iceberg holds exactly `acked` (plus possibly unacknowledged extras when
/// `allow_extra`), each once.
pub async fn assert_exact(
    node: &crate::Node,
    table: &str,
    acked: &[(u32, u64, i64)],
    allow_extra: bool,
) -> anyhow::Result<()> {
    assert_exact_with(node, table, acked, allow_extra, &EngineOpts::default()).await
}

/// [`assert_exact`] reading with the warehouse settings of `opts`.
pub async fn assert_exact_with(
    node: &crate::Node,
    table: &str,
    acked: &[(u32, u64, i64)],
    allow_extra: bool,
    opts: &EngineOpts,
) -> anyhow::Result<()> {
    let rows = rows_of(&iceberg_rust_rows_with(&node.url(), table, None, opts).await?);
    let dups = duplicates(&rows);
    assert!(dups.is_empty(), "{table}: duplicated rows {dups:?}");
    let stored: std::collections::BTreeSet<(u32, u64, i64)> = rows.iter().copied().collect();
    for a in acked {
        assert!(stored.contains(a), "{table}: acknowledged {a:?} missing from Iceberg");
    }
    if !allow_extra {
        assert_eq!(rows.len(), acked.len(), "{table}: unexpected rows");
    }
    // Sequences are dense: no gaps per partition.
    let mut per: std::collections::BTreeMap<u32, Vec<u64>> = Default::default();
    for (p, s, _) in &rows {
        per.entry(*p).or_default().push(*s);
    }
    for (p, mut seqs) in per {
        seqs.sort();
        assert_eq!(
            seqs,
            (0..seqs.len() as u64).collect::<Vec<_>>(),
            "{table} partition {p} has gaps"
        );
    }
    Ok(())
}
