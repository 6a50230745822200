//! One shard worker: a dedicated thread that owns the sequences of its tables.

use std::collections::{BTreeMap, BTreeSet, HashMap, hash_map::Entry};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use zombi_shared::wire::{Ack, Group, Payload, WireEvent};

use super::{CombinerError, Job};
use crate::hot::{self, HotStore, IdemRecord, Role, TableId, record};
use crate::metrics as m;
use crate::schema::dead_letter;
use crate::typed::{Inferred, Registry, Typing};

#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub window: Duration,
    pub max_events: usize,
}

/// What a worker knows about a table it owns. Only this thread changes it, and only after
/// the write that makes the change durable succeeded.
#[derive(Debug, Clone)]
struct TableState {
    id: TableId,
    next_sequence: BTreeMap<u32, u64>,
    bytes: u64,
    /// Columns inferred for new fields of a typed table (`zombi.evolve = additive`), as
    /// persisted; the flusher commits them to the schema. Once there they are ignored.
    columns: Vec<Inferred>,
    /// Index of the next inferred column's record.
    next_column: u32,
}

impl TableState {
    /// Records columns inferred for the table's new fields in the write being built.
    fn stage_columns(&mut self, batch: &mut hot::HotBatch<'_>, columns: Vec<Inferred>) {
        for column in columns {
            let json = serde_json::to_vec(&column).expect("columns serialize");
            batch.put_pending_column(self.id, self.next_column, &json);
            self.next_column += 1;
            self.columns.push(column);
        }
    }
}

pub(super) fn run(store: Arc<HotStore>, typing: &Registry, rx: &Receiver<Job>, settings: Settings) {
    let mut tables: HashMap<String, TableState> = HashMap::new();
    while let Ok(first) = rx.recv() {
        let next = |wait: Duration| {
            if wait.is_zero() { rx.try_recv().ok() } else { rx.recv_timeout(wait).ok() }
        };
        let (jobs, events) = gather(first, |j: &Job| j.group.events.len(), settings, next);
        write_micro_batch(&store, typing, &mut tables, jobs, events);
    }
}

/// Gathers one micro-batch after its `first` job: more jobs while the batch holds fewer
/// than `settings.max_events` events (a job is never split, so the last one may pass the
/// bound), each waited for until `settings.window` after the start; with no window, only
/// what is queued already. `next(wait)` answers one job, waiting at most `wait` (zero: only
/// one already queued). Returns the jobs and their events.
fn gather<J>(
    first: J,
    events_of: impl Fn(&J) -> usize,
    settings: Settings,
    mut next: impl FnMut(Duration) -> Option<J>,
) -> (Vec<J>, usize) {
    let mut events = events_of(&first);
    let mut jobs = vec![first];
    let deadline = Instant::now() + settings.window;
    while events < settings.max_events {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(job) = next(left) else { break };
        events += events_of(&job);
        jobs.push(job);
    }
    (jobs, events)
}

fn write_micro_batch(
    store: &HotStore,
    typing: &Registry,
    tables: &mut HashMap<String, TableState>,
    jobs: Vec<Job>,
    events: usize,
) {
    let started = Instant::now();
    crate::failpoints::panic_point("combiner-write");
    let result = stage(store, typing, tables, &jobs).and_then(|staged| {
        staged.batch.commit()?;
        metrics::counter!(m::DEAD_LETTERED).increment(staged.dead_lettered);
        metrics::counter!(m::REPLAYED).increment(staged.rows_replayed);
        Ok((staged.acks, staged.tables, staged.written, staged.duplicates))
    });
    metrics::histogram!(m::HOT_WRITE_SECONDS).record(started.elapsed().as_secs_f64());
    metrics::histogram!(m::COMBINER_BATCH_EVENTS).record(events as f64);
    match result {
        Ok((acks, staged_tables, written, duplicates)) => {
            tables.extend(staged_tables);
            metrics::counter!(m::EVENTS_WRITTEN).increment(written);
            metrics::counter!(m::DUPLICATES).increment(duplicates);
            for (job, acks) in jobs.into_iter().zip(acks) {
                let _ = job.reply.send(acks);
            }
        }
        Err(e) => {
            // Nothing of the micro-batch is stored and the in-memory state is unchanged,
            // so producers may retry every group.
            tracing::error!(error = %crate::error::Chain(&e), events, "hot store write failed");
            metrics::counter!(m::HOT_WRITE_ERRORS).increment(1);
            let e = CombinerError::from(e);
            for job in jobs {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}

/// Idempotency keys first written by the micro-batch being staged, with whether their
/// event went to the dead-letter table.
type FreshKeys = HashMap<(TableId, String), (IdemRecord, bool)>;

struct Staged<'a> {
    batch: hot::HotBatch<'a>,
    /// One ack list (or refusal) per job, in job order.
    acks: Vec<Result<Vec<Ack>, CombinerError>>,
    /// New state of every table the batch touches, applied once the batch is durable.
    tables: HashMap<String, TableState>,
    /// Partitions that received events, per table: their high-water marks are rewritten.
    touched: HashMap<String, BTreeSet<u32>>,
    /// Replay cursors this batch moves: (dead-letter table, partition) → next row.
    replayed: HashMap<(TableId, u32), u64>,
    written: u64,
    duplicates: u64,
    /// Events written to a dead-letter table, and rows replayed out of one.
    dead_lettered: u64,
    rows_replayed: u64,
}

/// How a group's events are written to a typed table.
struct Checked {
    /// Columns the group's new fields call for (`zombi.evolve = additive`).
    columns: Vec<Inferred>,
    /// Per event: why it goes to the dead-letter table (`zombi.on-error = dead_letter`).
    diverted: Vec<Option<String>>,
}

/// Checks a group against its table's typing before anything of it is staged, each event
/// against the columns the events before it added. An event that does not fit goes to the
/// dead-letter table, or refuses the whole group (a bulk request is all-or-nothing).
/// `divert` sends every event that does not fit to the dead-letter table whatever the
/// table's `zombi.on-error` (a replay's rows come from there).
fn check(
    typing: &Registry,
    state: &TableState,
    group: &Group,
    divert: bool,
) -> Result<Checked, CombinerError> {
    let all_fit = || Checked { columns: Vec::new(), diverted: vec![None; group.events.len()] };
    let table = match typing.get(&group.table) {
        None | Some(Typing::Raw) => return Ok(all_fit()),
        Some(Typing::Unusable(e)) => return Err(unusable(&group.table, &e)),
        Some(Typing::Typed(t)) => t,
    };
    let dead_letter = divert || table.settings().dead_letter;
    let mut checked =
        Checked { columns: Vec::new(), diverted: Vec::with_capacity(group.events.len()) };
    let mut current = table.with_columns(&state.columns).map_err(|e| unusable(&group.table, &e))?;
    for (i, event) in group.events.iter().enumerate() {
        match current.check(&event.payload) {
            Ok(new) => {
                checked.diverted.push(None);
                if !new.is_empty() {
                    current = current.with_columns(&new).map_err(|e| unusable(&group.table, &e))?;
                    checked.columns.extend(new);
                }
            }
            Err(e) if dead_letter => checked.diverted.push(Some(e.to_string())),
            Err(e) => return Err(CombinerError::Invalid(format!("record {i}: {e}"))),
        }
    }
    Ok(checked)
}

fn unusable(table: &str, e: &crate::typed::TypedError) -> CombinerError {
    CombinerError::Unusable(format!(
        "table {table} cannot take events: its schema is not one Zombi can write: {e}"
    ))
}

/// Assigns sequences and builds the `WriteBatch` for `jobs` without changing `tables`;
/// a group its typed table refuses is left out and answered with the refusal.
fn stage<'a>(
    store: &'a HotStore,
    typing: &Registry,
    tables: &HashMap<String, TableState>,
    jobs: &[Job],
) -> Result<Staged<'a>, hot::HotError> {
    let now = hot::now_ms();
    let mut staged = Staged {
        batch: store.batch(),
        acks: Vec::with_capacity(jobs.len()),
        tables: HashMap::new(),
        touched: HashMap::new(),
        replayed: HashMap::new(),
        written: 0,
        duplicates: 0,
        dead_lettered: 0,
        rows_replayed: 0,
    };
    // Idempotency keys first written by this very batch.
    let mut fresh_keys: FreshKeys = HashMap::new();
    for job in jobs {
        if let Some(replay) = &job.replay {
            let acks = stage_replay(
                store,
                typing,
                tables,
                &mut staged,
                &mut fresh_keys,
                job,
                replay,
                now,
            )?;
            staged.acks.push(acks);
            continue;
        }
        let name = &job.group.table;
        let dlq = dead_letter::table_of(name);
        let dlq_known = tables.contains_key(&dlq)
            || staged.tables.contains_key(&dlq)
            || store.table_id(&dlq).is_some();
        let state = staged_state(store, tables, &mut staged.tables, name)?;
        let checked = match check(typing, state, &job.group, false) {
            Ok(checked) if checked.diverted.iter().any(Option::is_some) && !dlq_known => {
                // The ingest service opens the dead-letter table (and waits until it is
                // reconciled with its Iceberg table) before such a group comes here; it
                // did not, so the table turned `dead_letter` just now: the producer retries.
                Err(CombinerError::Unusable(format!(
                    "the dead-letter table {dlq} is not ready yet; retry"
                )))
            }
            checked => checked,
        };
        let checked = match checked {
            Ok(checked) => checked,
            Err(e) => {
                staged.acks.push(Err(e));
                continue;
            }
        };
        state.stage_columns(&mut staged.batch, checked.columns);
        // The table and, if events of this group go there, its dead-letter table: taken
        // out of the map to be changed side by side, and put back below.
        let mut state = staged.tables.remove(name).expect("loaded above");
        let mut dead = match checked.diverted.iter().any(Option::is_some) {
            true => {
                staged_state(store, tables, &mut staged.tables, &dlq)?;
                let dlq_state = staged.tables.remove(&dlq).expect("loaded above");
                Some((dlq, dlq_state))
            }
            false => None,
        };
        let mut acks = Vec::with_capacity(job.group.events.len());
        for (event, error) in job.group.events.iter().zip(checked.diverted) {
            let divert = match (error, dead.as_mut()) {
                (Some(error), Some((_, dlq))) => Some((dlq, error)),
                _ => None,
            };
            let ack =
                assign(store, &mut state, divert, &mut fresh_keys, &mut staged.batch, event, now)?;
            if ack.duplicate {
                staged.duplicates += 1;
            } else {
                staged.written += 1;
                staged.touched.entry(name.clone()).or_default().insert(ack.partition);
                if let (true, Some((dlq, _))) = (ack.dead_lettered, &dead) {
                    staged.dead_lettered += 1;
                    staged.touched.entry(dlq.clone()).or_default().insert(ack.partition);
                }
            }
            acks.push(ack);
        }
        staged.tables.insert(name.clone(), state);
        if let Some((dlq, dlq_state)) = dead {
            staged.tables.insert(dlq, dlq_state);
        }
        staged.acks.push(Ok(acks));
    }
    for (table, partitions) in &staged.touched {
        let state = &staged.tables[table];
        for partition in partitions {
            staged.batch.put_high_water_mark(state.id, *partition, state.next_sequence[partition]);
        }
        staged.batch.put_bytes(state.id, state.bytes);
    }
    Ok(staged)
}

/// The staged state of `table`, loaded (and the table registered) on first use.
fn staged_state<'a>(
    store: &HotStore,
    tables: &HashMap<String, TableState>,
    staged: &'a mut HashMap<String, TableState>,
    table: &str,
) -> Result<&'a mut TableState, hot::HotError> {
    match staged.entry(table.to_owned()) {
        Entry::Occupied(e) => Ok(e.into_mut()),
        Entry::Vacant(e) => {
            let state = match tables.get(table) {
                Some(state) => state.clone(),
                None => {
                    let id = store.ensure_table(table)?;
                    let counters = store.table_counters(id)?;
                    let mut next_sequence = counters.high_water_marks;
                    // With durability `none` a crash can lose high-water marks that the
                    // (always logged) flush watermarks already passed: never hand out a
                    // sequence that may be in Iceberg.
                    for (p, w) in store.watermarks(id)? {
                        let next = next_sequence.entry(p).or_insert(0);
                        *next = (*next).max(w);
                    }
                    let mut columns = Vec::new();
                    let mut next_column = 0;
                    for (index, json) in store.pending_columns(id)? {
                        next_column = next_column.max(index + 1);
                        match serde_json::from_slice(&json) {
                            Ok(column) => columns.push(column),
                            Err(e) => {
                                tracing::error!(%table, error = %e, "unreadable inferred column record")
                            }
                        }
                    }
                    TableState { id, next_sequence, bytes: counters.bytes, columns, next_column }
                }
            };
            Ok(e.insert(state))
        }
    }
}

fn assign(
    store: &HotStore,
    state: &mut TableState,
    divert: Option<(&mut TableState, String)>,
    fresh_keys: &mut FreshKeys,
    batch: &mut hot::HotBatch<'_>,
    event: &WireEvent,
    now: i64,
) -> Result<Ack, hot::HotError> {
    if let Some(key) = &event.idempotency_key {
        let seen = match fresh_keys.get(&(state.id, key.clone())) {
            Some(&(r, diverted)) => Some((r, diverted)),
            None => match store.idempotency_lookup(state.id, key, now)? {
                // A retry of an event that went to the dead-letter table is told so again.
                Some(r) => {
                    let stored =
                        store.scan(state.id, r.partition, r.sequence, r.sequence + 1).next();
                    Some((r, matches!(stored, Some(Ok((_, e))) if e.role == Role::Diverted)))
                }
                None => None,
            },
        };
        if let Some((r, diverted)) = seen {
            return Ok(Ack {
                partition: r.partition,
                sequence: r.sequence,
                duplicate: true,
                dead_lettered: diverted,
            });
        }
    }
    let dead_lettered = divert.is_some();
    let sequence = match divert {
        None => put_row(batch, state, event, Role::Event, now),
        Some((dlq, error)) => {
            // The event keeps its place (and its idempotency key) here, and is a row of
            // the dead-letter table, in the same partition.
            let sequence = put_row(batch, state, event, Role::Diverted, now);
            put_row(batch, dlq, event, Role::DeadLetter { source_sequence: sequence, error }, now);
            sequence
        }
    };
    if let Some(key) = &event.idempotency_key {
        let r = IdemRecord { partition: event.partition, sequence, accepted_ms: now };
        batch.put_idempotency(state.id, key, r);
        fresh_keys.insert((state.id, key.clone()), (r, dead_lettered));
    }
    Ok(Ack { partition: event.partition, sequence, duplicate: false, dead_lettered })
}

/// Stages one record of `event` in `state`'s table at its partition's next sequence, and
/// returns that sequence. A diverted record holds no payload.
fn put_row(
    batch: &mut hot::HotBatch<'_>,
    state: &mut TableState,
    event: &WireEvent,
    role: Role,
    now: i64,
) -> u64 {
    let next = state.next_sequence.entry(event.partition).or_insert(0);
    let sequence = *next;
    *next += 1;
    let timestamp_ms = event.timestamp_ms.unwrap_or(now);
    let key = event.idempotency_key.as_deref();
    let none = Payload::Json(String::new());
    let payload = if role == Role::Diverted {
        &none
    } else {
        state.bytes += event.payload.len() as u64;
        &event.payload
    };
    batch.put_event(state.id, event.partition, sequence, |out| {
        record::encode_into(out, timestamp_ms, now, key, payload, &role)
    });
    sequence
}

/// Stages a replay chunk (see [`super::Replay`]): the rows that fit now become events of
/// the table (new sequences; an idempotency key then names the new one), the others new
/// dead-letter rows with their original source sequence, and the cursor moves to `to`.
#[allow(clippy::too_many_arguments)]
fn stage_replay(
    store: &HotStore,
    typing: &Registry,
    tables: &HashMap<String, TableState>,
    staged: &mut Staged<'_>,
    fresh_keys: &mut FreshKeys,
    job: &Job,
    replay: &super::Replay,
    now: i64,
) -> Result<Result<Vec<Ack>, CombinerError>, hot::HotError> {
    let name = &job.group.table;
    let dlq_id = staged_state(store, tables, &mut staged.tables, &replay.dead_letter)?.id;
    let cursor = match staged.replayed.get(&(dlq_id, replay.partition)) {
        Some(c) => *c,
        None => store.replay_cursors(dlq_id)?.get(&replay.partition).copied().unwrap_or(0),
    };
    if cursor != replay.from || replay.sources.len() != job.group.events.len() {
        return Ok(Err(CombinerError::Invalid(format!(
            "replay of {} partition {} from row {} is stale: the cursor stands at {cursor}",
            replay.dead_letter, replay.partition, replay.from
        ))));
    }
    let state = staged_state(store, tables, &mut staged.tables, name)?;
    let checked = match check(typing, state, &job.group, true) {
        Ok(checked) => checked,
        Err(e) => return Ok(Err(e)),
    };
    state.stage_columns(&mut staged.batch, checked.columns);
    let mut state = staged.tables.remove(name).expect("loaded above");
    let mut dlq = staged.tables.remove(&replay.dead_letter).expect("loaded above");
    let mut acks = Vec::with_capacity(job.group.events.len());
    let rows = job.group.events.iter().zip(checked.diverted).zip(&replay.sources);
    for ((event, error), &source_sequence) in rows {
        let ack = match error {
            None => {
                let sequence = put_row(&mut staged.batch, &mut state, event, Role::Event, now);
                if let Some(key) = &event.idempotency_key {
                    let r = IdemRecord { partition: event.partition, sequence, accepted_ms: now };
                    staged.batch.put_idempotency(state.id, key, r);
                    fresh_keys.insert((state.id, key.clone()), (r, false));
                }
                staged.touched.entry(name.clone()).or_default().insert(event.partition);
                staged.rows_replayed += 1;
                Ack { partition: event.partition, sequence, duplicate: false, dead_lettered: false }
            }
            Some(error) => {
                let role = Role::DeadLetter { source_sequence, error };
                put_row(&mut staged.batch, &mut dlq, event, role, now);
                staged.dead_lettered += 1;
                staged
                    .touched
                    .entry(replay.dead_letter.clone())
                    .or_default()
                    .insert(event.partition);
                Ack {
                    partition: event.partition,
                    sequence: source_sequence,
                    duplicate: false,
                    dead_lettered: true,
                }
            }
        };
        staged.written += 1;
        acks.push(ack);
    }
    staged.batch.put_replay_cursor(dlq.id, replay.partition, replay.to);
    staged.replayed.insert((dlq.id, replay.partition), replay.to);
    staged.tables.insert(name.clone(), state);
    staged.tables.insert(replay.dead_letter.clone(), dlq);
    Ok(Ok(acks))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// Jobs of these event counts are queued; `next` takes them in order.
    fn gathered(queued: &[usize], settings: Settings) -> (Vec<usize>, usize, Vec<Duration>) {
        let mut queue: VecDeque<usize> = queued.iter().copied().collect();
        let mut waits = Vec::new();
        let first = queue.pop_front().unwrap();
        let (jobs, events) = gather(
            first,
            |j| *j,
            settings,
            |wait| {
                waits.push(wait);
                queue.pop_front()
            },
        );
        (jobs, events, waits)
    }

    #[test]
    fn a_micro_batch_takes_what_is_queued_up_to_its_event_bound() {
        let settings = Settings { window: Duration::ZERO, max_events: 5 };
        // 3 + 3 passes the bound: the batch ends there, the third job waits for the next.
        let (jobs, events, waits) = gathered(&[3, 3, 3], settings);
        assert_eq!((jobs, events), (vec![3, 3], 6));
        // Without a window nothing is waited for: only what is queued counts.
        assert!(waits.iter().all(Duration::is_zero));
        // A job larger than the bound goes alone, never split.
        assert_eq!(gathered(&[9, 1], settings).0, vec![9]);
        // An empty queue: the first job alone.
        assert_eq!(gathered(&[2], settings).0, vec![2]);
    }

    #[test]
    fn a_window_waits_for_more_until_it_closes() {
        let settings = Settings { window: Duration::from_secs(60), max_events: 100 };
        let (jobs, events, waits) = gathered(&[1, 2, 3], settings);
        assert_eq!((jobs, events), (vec![1, 2, 3], 6));
        // Each wait is what is left of the window, which only shrinks.
        assert!(waits.iter().all(|w| !w.is_zero() && *w <= settings.window), "{waits:?}");
        assert!(waits.windows(2).all(|w| w[1] <= w[0]), "{waits:?}");
    }
}
