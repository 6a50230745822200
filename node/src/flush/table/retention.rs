//! Retention: flushed events leave the hot store once the watermark map that covers them
//! was committed at least `retention_secs` ago, except what real-time readers lease.
//!
//! The flusher keeps every map it committed with the time of the commit (its *history*),
//! oldest first. Commit times live in memory and restart with the process, so a restart
//! can only delay deletion, never bring it forward.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::{TableFlusher, m};
use crate::flush::FlushError;
use crate::hot;

/// Committed watermark maps with the time of their commit, oldest first.
pub(super) type History = VecDeque<(Instant, BTreeMap<u32, u64>)>;

/// The newest map of `history` committed at least `retention` before `now`.
fn newest_expired(
    history: &History,
    retention: Duration,
    now: Instant,
) -> Option<&BTreeMap<u32, u64>> {
    let cutoff = now.checked_sub(retention)?;
    history.iter().take_while(|(at, _)| *at <= cutoff).last().map(|(_, map)| map)
}

/// Forgets the maps older than the newest expired one, which stays: it is what deletion
/// goes up to.
fn forget_expired(history: &mut History, retention: Duration, now: Instant) {
    let Some(cutoff) = now.checked_sub(retention) else { return };
    while history.len() > 1 && history[1].0 <= cutoff {
        history.pop_front();
    }
}

/// Per partition, the range `[floor, target)` a deletion up to `target` removes: only
/// partitions whose target passes their floor.
fn deletion_ranges(
    target: &BTreeMap<u32, u64>,
    floors: &BTreeMap<u32, u64>,
) -> Vec<(u32, u64, u64)> {
    target
        .iter()
        .map(|(p, w)| (*p, floors.get(p).copied().unwrap_or(0), *w))
        .filter(|(_, floor, w)| w > floor)
        .collect()
}

impl TableFlusher {
    fn retention(&self) -> Duration {
        Duration::from_secs(self.settings.retention_secs)
    }

    /// Some committed watermark map is older than the retention window and above a floor
    /// (and above what readers lease).
    pub(super) fn deletion_due(&self) -> bool {
        self.deletion_target()
            .is_some_and(|target| !deletion_ranges(&target, &self.floors).is_empty())
    }

    /// Where retention may delete up to now: the newest watermark map committed at least a
    /// retention window ago, lowered to the watermarks real-time readers lease.
    fn deletion_target(&self) -> Option<BTreeMap<u32, u64>> {
        let mut target = newest_expired(&self.history, self.retention(), Instant::now())?.clone();
        self.ctx.leases.clamp(self.id, &mut target, &self.floors);
        Some(target)
    }

    /// Deletes events below the newest watermark map committed at least a retention
    /// window ago, except what real-time readers lease.
    pub(super) async fn delete_expired(&mut self) -> Result<(), FlushError> {
        let now = Instant::now();
        let retention = self.retention();
        forget_expired(&mut self.history, retention, now);
        if !self.deletion_due() {
            return Ok(());
        }
        let Some(target) = newest_expired(&self.history, self.retention(), now).cloned() else {
            return Ok(());
        };
        let store = self.ctx.store.clone();
        let leases = self.ctx.leases.clone();
        let (id, floors) = (self.id, self.floors.clone());
        // Clamped to the leases and deleted while no listing can lease (see `Leases`).
        let done = tokio::task::spawn_blocking(move || {
            leases.delete_clamped(id, target, &floors, |target| {
                let work = deletion_ranges(target, &floors);
                for &(p, floor, w) in &work {
                    store.delete_below(id, p, floor, w)?;
                }
                Ok::<_, hot::HotError>(work)
            })
        })
        .await??;
        let mut deleted = 0;
        for (p, floor, w) in done {
            self.floors.insert(p, w);
            deleted += w - floor;
        }
        metrics::counter!(m::HOT_DELETED).increment(deleted);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(u32, u64)]) -> BTreeMap<u32, u64> {
        entries.iter().copied().collect()
    }

    /// Commits at 0 s, 30 s, 60 s and 90 s after `t0`.
    fn history(t0: Instant) -> History {
        [0u64, 30, 60, 90]
            .into_iter()
            .enumerate()
            .map(|(i, s)| (t0 + Duration::from_secs(s), map(&[(0, 10 * (i as u64 + 1))])))
            .collect()
    }

    #[test]
    fn deletion_goes_up_to_the_newest_map_older_than_the_retention() {
        let t0 = Instant::now();
        let h = history(t0);
        let retention = Duration::from_secs(60);
        // Before any map is a retention old: nothing.
        assert_eq!(newest_expired(&h, retention, t0 + Duration::from_secs(59)), None);
        // At 65 s the map committed at 0 s is old enough, the one at 30 s is not.
        assert_eq!(
            newest_expired(&h, retention, t0 + Duration::from_secs(65)),
            Some(&map(&[(0, 10)]))
        );
        assert_eq!(
            newest_expired(&h, retention, t0 + Duration::from_secs(150)),
            Some(&map(&[(0, 40)]))
        );
    }

    #[test]
    fn forgetting_keeps_the_deletion_target_and_everything_newer() {
        let t0 = Instant::now();
        let mut h = history(t0);
        let retention = Duration::from_secs(60);
        forget_expired(&mut h, retention, t0 + Duration::from_secs(95));
        // The map at 30 s is the target now: the one at 0 s goes, the others stay.
        let kept: Vec<u64> = h.iter().map(|(_, m)| m[&0]).collect();
        assert_eq!(kept, [20, 30, 40]);
        assert_eq!(
            newest_expired(&h, retention, t0 + Duration::from_secs(95)),
            Some(&map(&[(0, 20)]))
        );
        // However long ago, the newest map stays.
        forget_expired(&mut h, retention, t0 + Duration::from_secs(10_000));
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn ranges_start_at_each_floor_and_skip_what_is_deleted_already() {
        let target = map(&[(0, 100), (1, 50), (2, 7)]);
        let floors = map(&[(0, 40), (1, 50), (3, 9)]);
        assert_eq!(deletion_ranges(&target, &floors), [(0, 40, 100), (2, 0, 7)]);
    }
}
