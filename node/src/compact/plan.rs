//! What a maintenance run does, decided from metadata alone (no I/O): which files of an
//! hour are rewritten together, and which snapshots expire.
//!
//! Compaction is size-tiered while an hour still receives files, so each byte is rewritten
//! only a few times (about log4 of target size ÷ flush size) however long the hour stays
//! active, and an hour holds at most a few dozen files. Once an hour is quiet, its small
//! files are merged into files near the target size.

/// A live data file of one hour.
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub size: u64,
    /// Written by a rewrite that did not reduce the number of files: merging it again
    /// would not either, so it counts as done.
    pub done: bool,
    /// When it was added to the table (Unix ms).
    pub added_ms: i64,
}

#[derive(Debug, Clone)]
pub struct PlanSettings {
    pub target_file_size: u64,
    pub min_input_files: usize,
    pub quiet_ms: i64,
    pub now_ms: i64,
    /// Treat every hour as quiet (an explicit `POST /tables/{t}/compact`).
    pub full: bool,
}

/// Files at least this share of the target size are done: never rewritten again.
fn settled(size: u64, target: u64) -> bool {
    size >= target / 4 * 3
}

/// Most files one rewrite merges: each holds a read buffer while the merge runs.
pub const MAX_GROUP_FILES: usize = 32;

/// The smallest size tier holds files below this; each tier above is 4× larger.
const TIER_BASE: u64 = 64 * 1024;

fn tier(size: u64) -> u32 {
    if size < TIER_BASE { 0 } else { (size / TIER_BASE).ilog(4) + 1 }
}

/// Groups of indexes into `files` to rewrite, each group into new files of one hour.
pub fn plan_hour(files: &[FileInfo], s: &PlanSettings) -> Vec<Vec<usize>> {
    let small: Vec<usize> = (0..files.len())
        .filter(|i| !files[*i].done && !settled(files[*i].size, s.target_file_size))
        .collect();
    if small.len() < 2 {
        return Vec::new();
    }
    let quiet = s.full || files.iter().all(|f| s.now_ms.saturating_sub(f.added_ms) >= s.quiet_ms);
    let target = s.target_file_size;
    if quiet {
        // Everything small, in groups of at most two targets' worth of input.
        return bounded_groups(&small, files, target)
            .into_iter()
            .filter(|g| g.len() >= 2 && shrinks(g, files, target))
            .collect();
    }
    let mut tiers: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
    for i in small {
        tiers.entry(tier(files[i].size)).or_default().push(i);
    }
    let mut groups = Vec::new();
    for members in tiers.into_values() {
        groups.extend(
            bounded_groups(&members, files, target)
                .into_iter()
                .filter(|g| g.len() >= s.min_input_files && shrinks(g, files, target)),
        );
    }
    groups
}

/// `members` in order, cut into groups of at most `MAX_GROUP_FILES` files and two targets'
/// worth of input bytes (what one merge holds in memory is bounded by both).
fn bounded_groups(members: &[usize], files: &[FileInfo], target: u64) -> Vec<Vec<usize>> {
    let mut groups = Vec::new();
    let mut group: Vec<usize> = Vec::new();
    let mut bytes = 0;
    for &i in members {
        if !group.is_empty()
            && (group.len() >= MAX_GROUP_FILES || bytes + files[i].size > 2 * target)
        {
            groups.push(std::mem::take(&mut group));
            bytes = 0;
        }
        bytes += files[i].size;
        group.push(i);
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

/// A merge is worth it only if it leaves fewer files than it takes, so a quiet hour is
/// never rewritten over and over into the same number of files.
fn shrinks(group: &[usize], files: &[FileInfo], target: u64) -> bool {
    let bytes: u64 = group.iter().map(|i| files[*i].size).sum();
    bytes.div_ceil(target.max(1)) < group.len() as u64
}

/// A snapshot as expiry sees it.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    pub id: i64,
    pub sequence_number: i64,
    pub timestamp_ms: i64,
    /// A branch or tag points at it (the current snapshot is `main`).
    pub referenced: bool,
}

/// Snapshots to expire: those beyond the newest `max_count` (counting one more about to be
/// added when `adding`) or older than `max_age_ms` (0: no age limit), unless a ref points
/// at them.
pub fn snapshots_to_expire(
    snapshots: &[SnapshotInfo],
    adding: bool,
    max_count: u64,
    max_age_ms: i64,
    now_ms: i64,
) -> Vec<i64> {
    let mut newest_first: Vec<&SnapshotInfo> = snapshots.iter().collect();
    newest_first.sort_by_key(|s| std::cmp::Reverse((s.sequence_number, s.timestamp_ms)));
    let first_rank = u64::from(adding);
    newest_first
        .into_iter()
        .enumerate()
        .filter(|(rank, s)| {
            let too_many = first_rank + *rank as u64 >= max_count;
            let too_old = max_age_ms > 0 && now_ms.saturating_sub(s.timestamp_ms) > max_age_ms;
            !s.referenced && (too_many || too_old)
        })
        .map(|(_, s)| s.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn settings(full: bool) -> PlanSettings {
        PlanSettings {
            target_file_size: 128 * MIB,
            min_input_files: 4,
            quiet_ms: 600_000,
            now_ms: 10_000_000,
            full,
        }
    }

    fn files(sizes: &[u64], added_ms: i64) -> Vec<FileInfo> {
        sizes.iter().map(|s| FileInfo { size: *s, added_ms, done: false }).collect()
    }

    #[test]
    fn an_active_hour_compacts_a_tier_once_it_has_enough_files() {
        let s = settings(false);
        let recent = s.now_ms - 1_000;
        // Three tiny files: not enough yet.
        assert!(plan_hour(&files(&[1000, 2000, 3000], recent), &s).is_empty());
        // Four tiny files and two larger ones of another tier: only the tiny ones merge.
        let f = files(&[1000, 2000, 3000, 4000, 300_000, 310_000], recent);
        assert_eq!(plan_hour(&f, &s), vec![vec![0, 1, 2, 3]]);
    }

    #[test]
    fn a_quiet_hour_merges_every_small_file_and_leaves_settled_ones() {
        let s = settings(false);
        let old = s.now_ms - 700_000;
        let f = files(&[1000, 500_000, 120 * MIB, 3 * MIB], old);
        assert_eq!(plan_hour(&f, &s), vec![vec![0, 1, 3]]);
        // A single small file beside a settled one is already as good as it gets.
        assert!(plan_hour(&files(&[1000, 120 * MIB], old), &s).is_empty());
        // An explicit run treats an active hour as quiet.
        let recent = files(&[1000, 2000], s.now_ms);
        assert!(plan_hour(&recent, &s).is_empty());
        assert_eq!(plan_hour(&recent, &settings(true)), vec![vec![0, 1]]);
    }

    #[test]
    fn groups_are_bounded_in_files_and_bytes() {
        let s = settings(true);
        let many = files(&vec![1000; 70], 0);
        let groups = plan_hour(&many, &s);
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), vec![32, 32, 6]);
        let big = files(&[90 * MIB, 90 * MIB, 90 * MIB, 10], 0);
        let groups = plan_hour(&big, &s);
        // 2 × target of input at most per group; two 90 MiB files would come out as two
        // files again, so only the last group is worth a rewrite.
        assert_eq!(groups, vec![vec![2, 3]]);
        // Two files that would come out as two files are not rewritten.
        let halves = files(&[80 * MIB, 80 * MIB], 0);
        assert!(plan_hour(&halves, &PlanSettings { target_file_size: 100 * MIB, ..s }).is_empty());
    }

    #[test]
    fn tiers_grow_by_four() {
        assert_eq!(tier(0), 0);
        assert_eq!(tier(64 * 1024 - 1), 0);
        assert_eq!(tier(64 * 1024), 1);
        assert_eq!(tier(4 * 64 * 1024 - 1), 1);
        assert_eq!(tier(4 * 64 * 1024), 2);
    }

    fn snaps(n: i64, now: i64) -> Vec<SnapshotInfo> {
        (0..n)
            .map(|i| SnapshotInfo {
                id: 100 + i,
                sequence_number: i + 1,
                timestamp_ms: now - (n - i) * 1000,
                referenced: i == n - 1,
            })
            .collect()
    }

    #[test]
    fn expiry_keeps_the_newest_and_never_a_referenced_snapshot() {
        let now = 1_000_000;
        let s = snaps(10, now);
        let mut gone = snapshots_to_expire(&s, false, 4, 0, now);
        gone.sort();
        assert_eq!(gone, (100..106).collect::<Vec<_>>());
        // One more about to be added takes a place.
        assert_eq!(snapshots_to_expire(&s, true, 4, 0, now).len(), 7);
        // By age: older than 5.5 s.
        let mut old = snapshots_to_expire(&s, false, 100, 5_500, now);
        old.sort();
        assert_eq!(old, (100..105).collect::<Vec<_>>());
        // The current snapshot stays even when everything else goes.
        let all = snapshots_to_expire(&s, false, 1, 1, now + 100_000);
        assert_eq!(all.len(), 9);
        assert!(!all.contains(&109));
    }
}
