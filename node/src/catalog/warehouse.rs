//! The warehouse: where data and metadata files go (`file://` under the data dir by
//! default, or `s3://`), and the `FileIO` that reads and writes them.

use std::sync::Arc;

use iceberg::io::{FileIO, FileIOBuilder};
use iceberg_storage_opendal::OpenDalResolvingStorageFactory;
use zombi_shared::config::NodeConfig;

/// The warehouse root URL the node uses.
pub fn location(config: &NodeConfig) -> std::io::Result<String> {
    if !config.iceberg.warehouse.is_empty() {
        return Ok(config.iceberg.warehouse.trim_end_matches('/').to_owned());
    }
    let dir = config.data_dir.join("warehouse");
    std::fs::create_dir_all(&dir)?;
    let dir = std::fs::canonicalize(dir)?;
    Ok(format!("file://{}", dir.display()))
}

/// File IO for the warehouse, with S3 settings when configured.
pub fn file_io(config: &NodeConfig) -> FileIO {
    let s3 = &config.iceberg.s3;
    let mut props: Vec<(&str, String)> = vec![];
    if !s3.endpoint.is_empty() {
        props.push(("s3.endpoint", s3.endpoint.clone()));
    }
    if !s3.region.is_empty() {
        props.push(("s3.region", s3.region.clone()));
    }
    if !s3.access_key_id.is_empty() {
        props.push(("s3.access-key-id", s3.access_key_id.clone()));
        props.push(("s3.secret-access-key", s3.secret_access_key.clone()));
        // Explicit keys: never fall back to ambient AWS config or instance metadata.
        props.push(("s3.disable-config-load", "true".into()));
        props.push(("s3.disable-ec2-metadata", "true".into()));
    }
    props.push(("s3.path-style-access", s3.path_style.to_string()));
    FileIOBuilder::new(Arc::new(OpenDalResolvingStorageFactory::new())).with_props(props).build()
}
