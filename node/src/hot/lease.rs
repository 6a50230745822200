//! Reader leases: the watermarks real-time readers may still read hot events above.
//!
//! A segment listing plans a query's hot rows; the query reads them seconds or minutes
//! later. Retention deletes flushed events a fixed window after their commit, which alone
//! could delete a planned segment before it is read. So every listing leases the watermarks
//! it was asked for, and retention never deletes at or above a leased watermark until the
//! lease expires ([`Leases::clamp`]).
//!
//! Leases live in memory: after a restart none are held, and a query planned before it
//! gets `410 Gone` for a segment retention deleted since (docs/realtime.md says what each
//! reader does then).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::TableId;

/// Leased watermark → when its lease ends (the latest end wins), for one partition.
type PartitionLeases = BTreeMap<u64, Instant>;

/// The time leases are measured by: the monotonic clock, or a test's.
pub type Clock = Box<dyn Fn() -> Instant + Send + Sync>;

/// Per table and partition, the watermarks leased.
pub struct Leases {
    held: Mutex<HashMap<TableId, BTreeMap<u32, PartitionLeases>>>,
    clock: Clock,
}

impl Default for Leases {
    fn default() -> Self {
        Leases::with_clock(Box::new(Instant::now))
    }
}

impl Leases {
    pub fn with_clock(clock: Clock) -> Self {
        Leases { held: Mutex::default(), clock }
    }

    /// Leases `watermarks` of `table` for `ttl`.
    pub fn lease(&self, table: TableId, watermarks: &BTreeMap<u32, u64>, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let now = (self.clock)();
        let until = now + ttl;
        let mut held = self.held.lock().unwrap();
        let partitions = held.entry(table).or_default();
        for (&p, &w) in watermarks {
            let leases = partitions.entry(p).or_default();
            // Expired leases go here too, so the map stays as small as the live leases.
            leases.retain(|_, ends| *ends > now);
            let ends = leases.entry(w).or_insert(until);
            *ends = (*ends).max(until);
        }
    }

    /// Lowers each deletion target of `table` to the lowest watermark still leased in its
    /// partition, dropping expired leases and leases below the partition's deletion floor
    /// (their events are gone: they protect nothing).
    pub fn clamp(
        &self,
        table: TableId,
        targets: &mut BTreeMap<u32, u64>,
        floors: &BTreeMap<u32, u64>,
    ) {
        let mut held = self.held.lock().unwrap();
        clamp_held(&mut held, table, targets, floors, (self.clock)());
    }

    /// Runs `delete` with the targets clamped as by [`Leases::clamp`], holding the leases
    /// until it returns: a listing cannot lease between the clamp and the deletion, so one
    /// that leases after it sees the new floors, and one that leased before is honoured.
    pub fn delete_clamped<R>(
        &self,
        table: TableId,
        mut targets: BTreeMap<u32, u64>,
        floors: &BTreeMap<u32, u64>,
        delete: impl FnOnce(&BTreeMap<u32, u64>) -> R,
    ) -> R {
        let mut held = self.held.lock().unwrap();
        clamp_held(&mut held, table, &mut targets, floors, (self.clock)());
        delete(&targets)
    }
}

fn clamp_held(
    held: &mut HashMap<TableId, BTreeMap<u32, PartitionLeases>>,
    table: TableId,
    targets: &mut BTreeMap<u32, u64>,
    floors: &BTreeMap<u32, u64>,
    now: Instant,
) {
    let Some(partitions) = held.get_mut(&table) else { return };
    partitions.retain(|p, leases| {
        let floor = floors.get(p).copied().unwrap_or(0);
        leases.retain(|w, until| *until > now && *w >= floor);
        !leases.is_empty()
    });
    for (p, target) in targets.iter_mut() {
        if let Some(lowest) = partitions.get(p).and_then(|l| l.keys().next()) {
            *target = (*target).min(*lowest);
        }
    }
    if partitions.is_empty() {
        held.remove(&table);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holds_deletion_below_its_watermark_until_it_expires() {
        let leases = Leases::default();
        leases.lease(1, &BTreeMap::from([(0, 100), (1, 7)]), Duration::from_secs(60));
        leases.lease(1, &BTreeMap::from([(0, 150)]), Duration::from_secs(60));
        leases.lease(2, &BTreeMap::from([(0, 5)]), Duration::from_secs(60));
        let mut targets = BTreeMap::from([(0, 200), (1, 3), (2, 9)]);
        leases.clamp(1, &mut targets, &BTreeMap::new());
        assert_eq!(targets, BTreeMap::from([(0, 100), (1, 3), (2, 9)]));
        // A lease below the floor protects nothing: the lowest one at or above it counts.
        let mut targets = BTreeMap::from([(0, 200), (1, 30)]);
        leases.clamp(1, &mut targets, &BTreeMap::from([(0, 120), (1, 8)]));
        assert_eq!(targets, BTreeMap::from([(0, 150), (1, 30)]));
        let deleted =
            leases.delete_clamped(2, BTreeMap::from([(0, 9)]), &BTreeMap::new(), |t| t.clone());
        assert_eq!(deleted, BTreeMap::from([(0, 5)]));
    }

    #[test]
    fn a_lease_ends_when_its_time_is_up() {
        let now = std::sync::Arc::new(Mutex::new(Instant::now()));
        let clock = now.clone();
        let leases = Leases::with_clock(Box::new(move || *clock.lock().unwrap()));
        leases.lease(1, &BTreeMap::from([(0, 100)]), Duration::from_secs(30));
        let clamped = |leases: &Leases| {
            let mut targets = BTreeMap::from([(0, 200)]);
            leases.clamp(1, &mut targets, &BTreeMap::new());
            targets[&0]
        };
        *now.lock().unwrap() += Duration::from_secs(29);
        assert_eq!(clamped(&leases), 100);
        *now.lock().unwrap() += Duration::from_secs(1);
        assert_eq!(clamped(&leases), 200);
        assert!(leases.held.lock().unwrap().is_empty(), "expired leases are dropped");
    }

    #[test]
    fn a_zero_ttl_leases_nothing() {
        let leases = Leases::default();
        leases.lease(1, &BTreeMap::from([(0, 1)]), Duration::ZERO);
        let mut targets = BTreeMap::from([(0, 9)]);
        leases.clamp(1, &mut targets, &BTreeMap::new());
        assert_eq!(targets[&0], 9);
    }
}
