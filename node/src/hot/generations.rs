//! Event generations: the hot store keeps its events in a series of column families, one
//! per *generation*, so that deleting flushed events costs nothing.
//!
//! Every write of events goes to the newest generation. A generation is sealed once it
//! holds [`GENERATION_BYTES`] of events or is [`GENERATION_AGE`] old, and a new one starts.
//! A sealed generation is dropped whole — its memtable discarded, its files unlinked — as
//! soon as every (table, partition) in it lies below that partition's deletion floor. Events
//! are never compacted (the column families have automatic compaction off) and never
//! rewritten: an event costs its WAL append, its memtable insert and, when memtables are
//! over their budget, one flush to a file, then is gone with its generation.
//!
//! Why order holds: one combiner shard writes a table, one batch after another, so a
//! partition's sequences never go back from one generation to the next. The one exception
//! is a log record applied again at recovery (`durability = "object"`): it may put an event
//! that an older generation already holds into the newest one. A scan therefore yields each
//! sequence once, the first time it sees it (both copies hold the same record).
//!
//! The first generation is the column family `events` (a store from before generations
//! has all its events there); the next ones are `events.<n>`, `n` counting up.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::keys::{CF_EVENTS, TableId};

/// A generation is sealed once its events' keys and values reach this size.
pub const GENERATION_BYTES: u64 = 64 << 20;
/// …or once it is this old and holds an event, so that a slow table's events still leave
/// the store soon after their retention.
pub const GENERATION_AGE: Duration = Duration::from_secs(10);

/// When a generation is sealed: [`GENERATION_BYTES`] and [`GENERATION_AGE`], smaller in
/// tests.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub bytes: u64,
    pub age: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { bytes: GENERATION_BYTES, age: GENERATION_AGE }
    }
}

/// `[first, end)` sequences per (table, partition) of one generation.
pub type Bounds = BTreeMap<(TableId, u32), (u64, u64)>;

/// Widens `bounds` to hold `sequence` of (table, partition).
pub fn widen(bounds: &mut Bounds, table: TableId, partition: u32, sequence: u64) {
    bounds
        .entry((table, partition))
        .and_modify(|(first, end)| {
            *first = (*first).min(sequence);
            *end = (*end).max(sequence + 1);
        })
        .or_insert((sequence, sequence + 1));
}

pub struct Generation {
    pub number: u64,
    bounds: Mutex<Bounds>,
    bytes: AtomicU64,
    born: Instant,
}

impl Generation {
    pub fn new(number: u64, bounds: Bounds, bytes: u64) -> Self {
        Generation {
            number,
            bounds: Mutex::new(bounds),
            bytes: AtomicU64::new(bytes),
            born: Instant::now(),
        }
    }

    /// The column family's name.
    pub fn name(&self) -> String {
        name_of(self.number)
    }

    /// Records a write of `bytes` that put the events of `added` here.
    pub fn record(&self, added: &Bounds, bytes: u64) {
        let mut bounds = self.bounds.lock().unwrap();
        for (&(t, p), &(first, end)) in added {
            widen(&mut bounds, t, p, first);
            widen(&mut bounds, t, p, end - 1);
        }
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Whether a scan of `[from, to)` of (table, partition) may find events here.
    pub fn overlaps(&self, table: TableId, partition: u32, from: u64, to: u64) -> bool {
        let bounds = self.bounds.lock().unwrap();
        bounds.get(&(table, partition)).is_some_and(|&(first, end)| first < to && from < end)
    }

    /// Whether every event here lies below its partition's floor.
    pub fn all_below(&self, floor: impl Fn(TableId, u32) -> u64) -> bool {
        let bounds = self.bounds.lock().unwrap();
        bounds.iter().all(|(&(t, p), &(_, end))| end <= floor(t, p))
    }

    pub fn is_empty(&self) -> bool {
        self.bounds.lock().unwrap().is_empty()
    }

    /// Whether the next write should go to a new generation.
    pub fn is_full(&self, limits: Limits) -> bool {
        self.bytes.load(Ordering::Relaxed) >= limits.bytes
            || (self.born.elapsed() >= limits.age && !self.is_empty())
    }
}

/// The column family name of generation `number`.
pub fn name_of(number: u64) -> String {
    if number == 0 { CF_EVENTS.to_owned() } else { format!("{CF_EVENTS}.{number}") }
}

/// The generation a column family name stands for, if it is one.
pub fn number_of(name: &str) -> Option<u64> {
    if name == CF_EVENTS {
        return Some(0);
    }
    let n = name.strip_prefix(CF_EVENTS)?.strip_prefix('.')?;
    // Only the canonical spelling: `events.01` is not generation 1.
    n.parse().ok().filter(|v: &u64| *v > 0 && v.to_string() == n)
}

/// The generations of a store, oldest first; the last one takes writes.
#[derive(Default)]
pub struct Generations {
    pub list: Vec<Arc<Generation>>,
    pub limits: Limits,
}

impl Generations {
    pub fn current(&self) -> &Arc<Generation> {
        self.list.last().expect("a store always has a generation")
    }

    /// Whether the newest generation should be sealed.
    pub fn current_is_full(&self) -> bool {
        self.current().is_full(self.limits)
    }

    /// Sealed generations that nobody writes to or scans, whose events all lie below
    /// their floors: the ones to drop.
    pub fn droppable(&self, floor: impl Fn(TableId, u32) -> u64) -> Vec<Arc<Generation>> {
        let sealed = &self.list[..self.list.len().saturating_sub(1)];
        sealed
            .iter()
            // One reference is the list's own: no batch or scan holds this one.
            .filter(|g| Arc::strong_count(g) == 1 && g.all_below(&floor))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_canonical_ones_count() {
        assert_eq!(name_of(0), "events");
        assert_eq!(name_of(12), "events.12");
        for n in [0, 1, 12, u64::MAX] {
            assert_eq!(number_of(&name_of(n)), Some(n));
        }
        for other in ["meta", "idem", "events.", "events.0", "events.01", "events.x", "eventsx"] {
            assert_eq!(number_of(other), None, "{other}");
        }
    }

    #[test]
    fn a_generation_is_droppable_once_every_partition_is_below_its_floor() {
        let mut bounds = Bounds::new();
        widen(&mut bounds, 1, 0, 10);
        widen(&mut bounds, 1, 0, 19);
        widen(&mut bounds, 2, 3, 5);
        let sealed = Arc::new(Generation::new(0, bounds, 0));
        let gens = Generations {
            list: vec![sealed.clone(), Arc::new(Generation::new(1, Bounds::new(), 0))],
            limits: Limits::default(),
        };
        assert!(sealed.overlaps(1, 0, 0, 11) && !sealed.overlaps(1, 0, 20, 30));
        assert!(!sealed.overlaps(1, 1, 0, 30));
        let floors = |t1: u64, t2: u64| move |t, _| if t == 1 { t1 } else { t2 };
        // Held by a scan or batch (the clone above): never dropped.
        assert!(gens.droppable(floors(20, 6)).is_empty());
        drop(sealed);
        assert!(gens.droppable(floors(19, 6)).is_empty());
        assert!(gens.droppable(floors(20, 5)).is_empty());
        assert_eq!(gens.droppable(floors(20, 6)).len(), 1);
        // The current generation is never dropped, even when empty.
        let only = Generations {
            list: vec![Arc::new(Generation::new(3, Bounds::new(), 0))],
            limits: Limits::default(),
        };
        assert!(only.droppable(|_, _| u64::MAX).is_empty());
    }
}
