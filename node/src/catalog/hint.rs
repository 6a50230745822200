//! The warehouse's own pointer to each table's current metadata, so reads of committed
//! data do not depend on the node (SPEC §9): after every commit, `metadata/v<N>.metadata.json`
//! (a copy of the new metadata file, version `N`) and then `metadata/version-hint.text`
//! (`N`, no newline) — the convention of Iceberg's Hadoop tables, which DuckDB's
//! `iceberg_scan`, PyIceberg's `StaticTable` and Spark's Hadoop catalog follow.
//!
//! The copy is a hard link to the committed file on a local warehouse and a server-side
//! copy on S3, so the node serialises and uploads each commit's metadata once.
//!
//! The RocksDB pointer stays the commit point: the copy is written only after the commit,
//! so path-based readers never see an uncommitted version (a Hadoop reader looks for
//! `v<N+1>` beyond the hint, and a failed attempt never leaves one). Writing the pointer is
//! best effort: a failure is logged and the next commit (or the next start) writes it. Each
//! file is replaced whole (a local file is written aside and renamed), so a reader never
//! sees a partly written hint or copy.

use iceberg::io::FileIO;
use iceberg::spec::TableMetadata;
use iceberg::{Error, ErrorKind, Result};

use super::warehouse::Lister;

pub const HINT_FILE: &str = "version-hint.text";

/// The version `N` of a metadata file named `<N>-<uuid>.metadata.json`.
pub fn version_of(metadata_location: &str) -> Option<u64> {
    super::adopt::version_of(metadata_location)
}

/// `<table>/metadata/v<N>.metadata.json`, the copy of metadata file version `N`.
pub fn copy_location(table_location: &str, version: u64) -> String {
    format!("{}/metadata/v{version}.metadata.json", table_location.trim_end_matches('/'))
}

pub fn hint_location(table_location: &str) -> String {
    format!("{}/metadata/{HINT_FILE}", table_location.trim_end_matches('/'))
}

/// Writes the copy of `metadata` (at `metadata_location`) and then the hint naming it. The
/// copy is made from the committed file itself where `warehouse` can (a hard link, or a
/// server-side copy on S3), so a commit's metadata is serialised and uploaded once; it is
/// written from `metadata` otherwise, or when that fails.
pub async fn write(
    io: &FileIO,
    warehouse: Option<&Lister>,
    metadata_location: &str,
    metadata: &TableMetadata,
) -> Result<()> {
    let version = version_of(metadata_location).ok_or_else(|| {
        Error::new(
            ErrorKind::DataInvalid,
            format!("{metadata_location} is not named <version>-<uuid>.metadata.json"),
        )
    })?;
    let table = metadata.location();
    let copy = copy_location(table, version);
    let copied = match warehouse {
        Some(w) => match w.copy(metadata_location, &copy).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "cannot copy the metadata file in the store; writing it");
                false
            }
        },
        None => false,
    };
    if !copied {
        let json = serde_json::to_vec(metadata).map_err(|e| {
            Error::new(ErrorKind::DataInvalid, format!("cannot serialise table metadata: {e}"))
        })?;
        replace(io, &copy, json).await?;
    }
    replace(io, &hint_location(table), version.to_string().into_bytes()).await
}

/// Writes a whole file so that readers see the old content or the new, never a part: an
/// object store's PUT is atomic; a local file is written aside and renamed over.
async fn replace(io: &FileIO, location: &str, bytes: Vec<u8>) -> Result<()> {
    let Some(path) = location.strip_prefix("file://") else {
        return io.new_output(location)?.write(bytes.into()).await;
    };
    let path = std::path::PathBuf::from(path);
    let written = tokio::task::spawn_blocking(move || {
        let tmp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
        std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &path)).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    })
    .await;
    let failed = |e: &dyn std::fmt::Display| {
        Error::new(ErrorKind::Unexpected, format!("cannot write {location}: {e}"))
    };
    written.map_err(|e| failed(&e))?.map_err(|e| failed(&e))
}

/// Writes only the hint naming `metadata_location`'s version (its copy is written).
pub async fn write_hint(
    io: &FileIO,
    metadata_location: &str,
    metadata: &TableMetadata,
) -> Result<()> {
    let version = version_of(metadata_location).ok_or_else(|| {
        Error::new(
            ErrorKind::DataInvalid,
            format!("{metadata_location} is not named <version>-<uuid>.metadata.json"),
        )
    })?;
    replace(io, &hint_location(metadata.location()), version.to_string().into_bytes()).await
}

/// Whether the warehouse's hint already names `metadata_location`'s version.
pub async fn is_current(io: &FileIO, metadata_location: &str, table_location: &str) -> bool {
    let Some(version) = version_of(metadata_location) else { return false };
    let Ok(input) = io.new_input(hint_location(table_location)) else { return false };
    match input.read().await {
        Ok(bytes) => bytes.as_ref() == version.to_string().as_bytes(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_named_after_the_version() {
        let loc = "s3://b/w/zombi/events/metadata/00012-5f0c.metadata.json";
        assert_eq!(version_of(loc), Some(12));
        assert_eq!(
            copy_location("s3://b/w/zombi/events/", 12),
            "s3://b/w/zombi/events/metadata/v12.metadata.json"
        );
        assert_eq!(version_of(&copy_location("s3://b/w/zombi/events", 12)), None);
        assert_eq!(
            hint_location("file:///d/zombi/t"),
            "file:///d/zombi/t/metadata/version-hint.text"
        );
    }
}
