//! The snapshot summary properties every Zombi commit carries (SPEC §4): the complete
//! watermark map of the table and the commit id of the flush that made the snapshot.

use std::collections::{BTreeMap, HashMap};

pub use zombi_shared::properties::{COMMIT_ID, WATERMARK_PREFIX};

/// Reads the watermark map out of a snapshot summary's additional properties.
pub fn watermarks(props: &HashMap<String, String>) -> BTreeMap<u32, u64> {
    props
        .iter()
        .filter_map(|(k, v)| {
            let partition = k.strip_prefix(WATERMARK_PREFIX)?.parse().ok()?;
            Some((partition, v.parse().ok()?))
        })
        .collect()
}

/// The summary properties of a commit that moves the watermarks to `watermarks`.
pub fn properties(watermarks: &BTreeMap<u32, u64>, commit_id: &str) -> HashMap<String, String> {
    let mut props: HashMap<String, String> =
        watermarks.iter().map(|(p, w)| (format!("{WATERMARK_PREFIX}{p}"), w.to_string())).collect();
    props.insert(COMMIT_ID.to_owned(), commit_id.to_owned());
    props
}

/// The commit id a snapshot summary carries.
pub fn commit_id(props: &HashMap<String, String>) -> Option<&str> {
    props.get(COMMIT_ID).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commits_properties_read_back_as_its_watermarks_and_id() {
        let map = BTreeMap::from([(0, 180), (7, 0), (u32::MAX, 3)]);
        let mut props = properties(&map, "c-1");
        props.insert("zombi.watermark.x".into(), "1".into());
        props.insert("added-records".into(), "10".into());
        assert_eq!(watermarks(&props), map);
        assert_eq!(commit_id(&props), Some("c-1"));
    }
}
