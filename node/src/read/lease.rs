//! Reader leases: the watermarks real-time readers may still read hot events above.
//!
//! A segment listing plans a query's hot rows; the query reads them seconds or minutes
//! later. Retention deletes flushed events a fixed window after their commit, which alone
//! could delete a planned segment before it is read. So every listing leases the watermarks
//! it was asked for, and retention never deletes at or above a leased watermark until the
//! lease expires ([`Leases::clamp`]).
//!
//! Leases live in memory: after a restart none are held, and a query planned before it
//! gets `410 Gone` for a segment retention deleted since, which makes the reader plan again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::hot::TableId;

/// Leased watermark → when its lease ends (the latest end wins), for one partition.
type PartitionLeases = BTreeMap<u64, Instant>;

/// Per table and partition, the watermarks leased.
#[derive(Default)]
pub struct Leases {
    held: Mutex<HashMap<TableId, BTreeMap<u32, PartitionLeases>>>,
}

impl Leases {
    /// Leases `watermarks` of `table` for `ttl`.
    pub fn lease(&self, table: TableId, watermarks: &BTreeMap<u32, u64>, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let until = Instant::now() + ttl;
        let mut held = self.held.lock().unwrap();
        let partitions = held.entry(table).or_default();
        for (&p, &w) in watermarks {
            let ends = partitions.entry(p).or_default().entry(w).or_insert(until);
            *ends = (*ends).max(until);
        }
    }

    /// Lowers each deletion target of `table` to the lowest watermark still leased in its
    /// partition, dropping expired leases on the way.
    pub fn clamp(&self, table: TableId, targets: &mut BTreeMap<u32, u64>) {
        let now = Instant::now();
        let mut held = self.held.lock().unwrap();
        let Some(partitions) = held.get_mut(&table) else { return };
        partitions.retain(|_, leases| {
            leases.retain(|_, until| *until > now);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holds_deletion_below_its_watermark_until_it_expires() {
        let leases = Leases::default();
        leases.lease(1, &BTreeMap::from([(0, 100), (1, 7)]), Duration::from_secs(60));
        leases.lease(1, &BTreeMap::from([(0, 150)]), Duration::from_millis(1));
        leases.lease(2, &BTreeMap::from([(0, 5)]), Duration::from_secs(60));
        let mut targets = BTreeMap::from([(0, 200), (1, 3), (2, 9)]);
        leases.clamp(1, &mut targets);
        assert_eq!(targets, BTreeMap::from([(0, 100), (1, 3), (2, 9)]));

        let leases = Leases::default();
        leases.lease(1, &BTreeMap::from([(0, 100)]), Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        let mut targets = BTreeMap::from([(0, 200)]);
        leases.clamp(1, &mut targets);
        assert_eq!(targets, BTreeMap::from([(0, 200)]));
        assert!(leases.held.lock().unwrap().is_empty(), "expired leases are dropped");
    }

    #[test]
    fn a_zero_ttl_leases_nothing() {
        let leases = Leases::default();
        leases.lease(1, &BTreeMap::from([(0, 1)]), Duration::ZERO);
        let mut targets = BTreeMap::from([(0, 9)]);
        leases.clamp(1, &mut targets);
        assert_eq!(targets[&0], 9);
    }
}
