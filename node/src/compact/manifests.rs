//! Manifest entries by manifest path. Manifests are immutable, so entries read once serve
//! every later run (planning, rewriting, cleanup) until no retained snapshot lists them.

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::Result;
use iceberg::spec::{ManifestContentType, ManifestEntry, ManifestFile};
use iceberg::table::Table;

pub type Entries = Arc<Vec<Arc<ManifestEntry>>>;

#[derive(Default)]
pub struct ManifestCache {
    entries: HashMap<String, Entries>,
}

impl ManifestCache {
    /// The entries of `manifest`, with sequence numbers and snapshot ids inherited from
    /// its manifest-list entry.
    pub async fn entries(&mut self, table: &Table, manifest: &ManifestFile) -> Result<Entries> {
        if let Some(e) = self.entries.get(&manifest.manifest_path) {
            return Ok(e.clone());
        }
        let loaded = manifest.load_manifest(table.file_io()).await?;
        let entries: Entries = Arc::new(loaded.entries().to_vec());
        self.entries.insert(manifest.manifest_path.clone(), entries.clone());
        Ok(entries)
    }

    /// The data manifests of `table`'s current snapshot with their entries (none without a
    /// snapshot).
    pub async fn data_manifests(&mut self, table: &Table) -> Result<Vec<(ManifestFile, Entries)>> {
        let Some(snapshot) = table.metadata().current_snapshot() else { return Ok(Vec::new()) };
        let list = table.manifest_list_reader(snapshot).load().await?;
        let mut out = Vec::new();
        for manifest in list.entries() {
            if manifest.content == ManifestContentType::Data {
                out.push((manifest.clone(), self.entries(table, manifest).await?));
            }
        }
        Ok(out)
    }

    /// Keeps only the manifests `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.entries.retain(|path, _| keep(path));
    }
}
