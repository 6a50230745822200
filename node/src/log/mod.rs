//! The node's log in the object store (`durability = "object"`): what makes an
//! acknowledgement survive the loss of the node's disk.
//!
//! Every write of the hot store is first a *record* of this log. Records from all tables
//! and combiner shards are grouped into *segments*, one per short window
//! (`log.segment_window_ms`, or sooner at `log.segment_max_bytes`), written one at a time
//! under consecutive numbers with put-if-absent: `<prefix>/segments/<number>`. A write
//! returns once its segment exists, so the store sees a few PUTs per second however many
//! requests there are, and a caller may acknowledge what it wrote.
//!
//! **One writer.** Numbers are consecutive and never skipped, and a name can be created
//! once. A writer that finds its next name taken by another writer's segment has lost the
//! log: it fails every write from then on and reports itself fenced ([`Log::fenced`]), so
//! it can acknowledge nothing that the log's new writer does not replay. A name taken by
//! the writer's own earlier attempt (an answer lost on the way back) is recognised by its
//! bytes and counts as written. Transient failures are retried with backoff, with the same
//! bytes under the same name, until the segment exists or the log is closed: a write is
//! never given up with an outcome unknown, since its records may still land.
//!
//! **Recovery.** At start-up the node reads the latest *checkpoint* and every segment at or
//! above the number it covers, in order, and applies them to its hot store (an empty one
//! after a disk loss): see `hot/logged.rs`.
//!
//! **Claims stay.** A node takes the log by creating the next segment itself, empty, as a
//! *claim*. Claims are never deleted: a node that lost the log writes next exactly at the
//! number of the claim that took it, so it always finds that name taken, even after the
//! new owner truncated everything around it. (Were the claim deleted, the old writer
//! could create a segment in the hole, which nobody would replay.)
//!
//! **Truncation.** Segments whose every event is committed to Iceberg are deleted, after a
//! checkpoint of the state they carried (table registry, counters, idempotency records)
//! was written: `<prefix>/checkpoints/<number>-<expires_ms>`, covering every segment below
//! `number`. A checkpoint other than the latest holds only idempotency records that are
//! needed until `expires_ms`, and is deleted after it.
//!
//! Each segment carries a caller's note per record ([`Log::append`]) — for the hot store,
//! which sequences it holds — so truncation knows what a segment holds without reading it.

pub mod segment;
pub mod store;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{CodedError, ErrorCode};
use crate::metrics as m;
use crate::tasks::Backoff;
use segment::Kind;
pub use store::{ObjectStore, Put, StoreError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    #[error(
        "this node no longer owns its log: segment {number} was written by another node, which now acknowledges the writes"
    )]
    Fenced { number: u64 },
    #[error("the log is closed (the node is shutting down)")]
    Closed,
    #[error("cannot read the log")]
    Store(#[source] Arc<StoreError>),
    #[error("log object {key} is damaged")]
    Damaged {
        key: String,
        #[source]
        source: segment::FormatError,
    },
}

impl CodedError for LogError {
    fn code(&self) -> ErrorCode {
        match self {
            LogError::Fenced { .. } => ErrorCode::NotOwner,
            LogError::Closed => ErrorCode::ShuttingDown,
            LogError::Store(_) => ErrorCode::Unavailable,
            LogError::Damaged { .. } => ErrorCode::Internal,
        }
    }
}

fn store_error(e: StoreError) -> LogError {
    LogError::Store(Arc::new(e))
}

/// How segments are cut.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub window: Duration,
    pub max_bytes: usize,
    /// An idle writer writes an empty segment this often, so that a standby can tell a
    /// live writer from a dead one (see [`Log::acquire`]).
    pub heartbeat: Duration,
}

/// The log, shared by every writer of the node (cheap to clone).
pub struct Log<N> {
    inner: Arc<Inner<N>>,
}

impl<N> Clone for Log<N> {
    fn clone(&self) -> Self {
        Log { inner: self.inner.clone() }
    }
}

struct Inner<N> {
    store: ObjectStore,
    prefix: String,
    /// This process's id, in every object it writes.
    writer: u128,
    settings: Settings,
    state: Mutex<State<N>>,
    /// Wakes the segment writer: a record arrived, or the log was closed.
    wake: Notify,
    /// Fired when another writer took the log.
    fenced: CancellationToken,
    /// Fired by [`Log::close`]: stops retrying a segment.
    closing: CancellationToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Open,
    Closed,
    Fenced(u64),
}

struct State<N> {
    status: Status,
    /// The segment being gathered.
    pending: Vec<Bytes>,
    notes: Vec<N>,
    waiters: Vec<oneshot::Sender<Result<u64, LogError>>>,
    pending_bytes: usize,
    first_at: Option<Instant>,
    /// Number of the next segment to write.
    next: u64,
    /// Segments written or recovered and not yet truncated, with their records' notes.
    retained: BTreeMap<u64, Vec<N>>,
    /// Segments below this are covered by the latest checkpoint.
    checkpointed: u64,
    /// Claims known to this process (its own, and those recovered): never deleted.
    claims: std::collections::BTreeSet<u64>,
    /// When this writer last wrote a segment (for the heartbeat).
    last_write: Instant,
}

/// What a log holds when a node starts: read it with [`Log::read`] in this order.
#[derive(Debug, Clone, Default)]
pub struct Contents {
    /// The latest checkpoint's name, if any, and the older ones (for their idempotency
    /// records), oldest first.
    pub latest_checkpoint: Option<String>,
    pub older_checkpoints: Vec<String>,
    /// Segment numbers at or above the latest checkpoint's, ascending.
    pub segments: Vec<u64>,
}

impl Contents {
    /// Whether nobody ever wrote the log.
    pub fn is_new(&self) -> bool {
        self.latest_checkpoint.is_none() && self.segments.is_empty()
    }

    /// The number after every segment written so far (truncation always keeps the last).
    pub fn next(&self) -> u64 {
        let covered = self.latest_checkpoint.as_deref().and_then(checkpoint_number).unwrap_or(0);
        self.segments.last().map_or(covered, |n| (n + 1).max(covered))
    }
}

/// One object read back, with its records.
pub struct Read {
    pub number: u64,
    /// The id of the process that wrote it.
    pub writer: u128,
    /// A claim: the empty segment a node took the log with.
    pub claim: bool,
    pub records: Vec<Bytes>,
}

impl<N: Send + 'static> Log<N> {
    /// Opens the log under `prefix` and lists what it holds. Nothing is written: the first
    /// segment this node writes takes the number after the last one listed.
    pub async fn open(
        store: ObjectStore,
        prefix: &str,
        settings: Settings,
    ) -> Result<(Log<N>, Contents), LogError> {
        let inner = Inner {
            store,
            prefix: prefix.trim_matches('/').to_owned(),
            writer: uuid::Uuid::new_v4().as_u128(),
            settings,
            state: Mutex::new(State {
                status: Status::Open,
                pending: Vec::new(),
                notes: Vec::new(),
                waiters: Vec::new(),
                pending_bytes: 0,
                first_at: None,
                next: 0,
                retained: BTreeMap::new(),
                checkpointed: 0,
                claims: Default::default(),
                last_write: Instant::now(),
            }),
            wake: Notify::new(),
            fenced: CancellationToken::new(),
            closing: CancellationToken::new(),
        };
        let log = Log { inner: Arc::new(inner) };
        let contents = log.list().await?;
        {
            let mut state = log.inner.state.lock().unwrap();
            let covered = contents.latest_checkpoint.as_deref().and_then(checkpoint_number);
            state.checkpointed = covered.unwrap_or(0);
            state.next = contents.next();
        }
        Ok((log, contents))
    }

    /// What the log holds now (see [`Contents`]).
    pub async fn contents(&self) -> Result<Contents, LogError> {
        self.list().await
    }

    /// Lists checkpoints, then segments, then checkpoints again, until both listings of
    /// checkpoints agree: a truncation running meanwhile (writing a checkpoint, then
    /// deleting what it covers) cannot leave a listing without the segments its checkpoint
    /// does not cover.
    async fn list(&self) -> Result<Contents, LogError> {
        loop {
            let contents = self.list_once().await?;
            let again = self.list_once().await?;
            if again.latest_checkpoint == contents.latest_checkpoint {
                return Ok(again);
            }
        }
    }

    async fn list_once(&self) -> Result<Contents, LogError> {
        let store = &self.inner.store;
        let mut checkpoints: Vec<String> = store
            .list(&self.dir("checkpoints"))
            .await
            .map_err(store_error)?
            .into_iter()
            .filter(|n| checkpoint_number(n).is_some())
            .collect();
        checkpoints.sort_by_key(|n| checkpoint_number(n));
        let latest = checkpoints.pop();
        let covered = latest.as_deref().and_then(checkpoint_number).unwrap_or(0);
        let segments = store
            .list(&self.dir("segments"))
            .await
            .map_err(store_error)?
            .iter()
            .filter_map(|n| n.parse::<u64>().ok())
            .filter(|&n| n >= covered)
            .collect::<Vec<_>>();
        // Names sort as numbers: they are zero-padded to the same width.
        Ok(Contents { latest_checkpoint: latest, older_checkpoints: checkpoints, segments })
    }

    fn dir(&self, kind: &str) -> String {
        format!("{}/{kind}", self.inner.prefix)
    }

    fn segment_key(&self, number: u64) -> String {
        format!("{}/segments/{number:020}", self.inner.prefix)
    }

    /// Reads segment `number` (when recovering), with the notes the caller derives from
    /// its records kept for truncation.
    pub async fn read_segment(&self, number: u64) -> Result<Read, LogError> {
        let key = self.segment_key(number);
        self.read_object(&key, Kind::Segment).await
    }

    /// Reads a checkpoint by its name (see [`Contents`]).
    pub async fn read_checkpoint(&self, name: &str) -> Result<Read, LogError> {
        let key = format!("{}/{name}", self.dir("checkpoints"));
        self.read_object(&key, Kind::Checkpoint).await
    }

    async fn read_object(&self, key: &str, kind: Kind) -> Result<Read, LogError> {
        let bytes = self.inner.store.get(key).await.map_err(store_error)?.ok_or_else(|| {
            store_error(StoreError::Fs {
                op: "get",
                key: key.into(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "listed but gone"),
            })
        })?;
        let object = segment::decode(bytes)
            .map_err(|source| LogError::Damaged { key: key.into(), source })?;
        if object.kind != kind && !(kind == Kind::Segment && object.kind == Kind::Claim) {
            return Err(LogError::Damaged {
                key: key.into(),
                source: segment::FormatError::Kind(object.kind as u8),
            });
        }
        Ok(Read {
            number: object.number,
            writer: object.writer,
            claim: object.kind == Kind::Claim,
            records: object.records,
        })
    }

    /// Waits until this process owns the log, then returns the number of the segment that
    /// claimed it; every segment below it is complete, and this writer writes after it.
    ///
    /// A log nobody wrote yet, or whose last segment `previous` (this node's id before a
    /// restart) wrote, is claimed at once. Otherwise the log has (or had) another writer:
    /// this node is a standby, checking every `poll` whether the next segment appeared.
    /// A live writer writes one at least every heartbeat. Once none appeared for
    /// `takeover_after`, measured on this process's own clock, the standby claims the log
    /// by creating that next segment itself (empty) with put-if-absent. Clocks only decide
    /// *when* to try: if the writer was alive after all, one of the two creates the name
    /// and the other learns it lost: a writer at its next write (fenced), a standby here
    /// (it keeps watching). `None` if `cancel` fires first.
    pub async fn acquire(
        &self,
        previous: Option<u128>,
        takeover_after: Duration,
        poll: Duration,
        cancel: &CancellationToken,
    ) -> Result<Option<u64>, LogError> {
        let contents = self.list().await?;
        let mut next = contents.next();
        let mut claim_now = contents.is_new();
        if !claim_now
            && let Some(previous) = previous
            && let Some(&last) = contents.segments.last()
        {
            claim_now = self.read_segment(last).await?.writer == previous;
        }
        let mut quiet_since = Instant::now();
        loop {
            if claim_now || quiet_since.elapsed() >= takeover_after {
                let body = segment::encode::<Bytes>(Kind::Claim, self.inner.writer, next, &[]);
                match self.inner.store.put_if_absent(&self.segment_key(next), body).await {
                    Ok(Put::Created) => {
                        let mut state = self.inner.state.lock().unwrap();
                        state.next = next + 1;
                        state.last_write = Instant::now();
                        state.retained.insert(next, Vec::new());
                        state.claims.insert(next);
                        return Ok(Some(next));
                    }
                    Ok(Put::Exists) => {
                        tracing::info!(
                            segment = next,
                            "another node wrote the log first; standing by"
                        );
                        next += 1;
                        quiet_since = Instant::now();
                        claim_now = false;
                    }
                    Err(e) => {
                        tracing::warn!(error = %crate::error::Chain(&e), "cannot claim the log; retrying");
                    }
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(None),
                () = tokio::time::sleep(poll) => {}
            }
            // A listing, not a check of the next name: the writer truncates what it wrote,
            // so a name seen once may be gone, and only the highest number tells progress.
            match self.list().await {
                Ok(contents) if contents.next() > next => {
                    next = contents.next();
                    quiet_since = Instant::now();
                }
                Ok(_) => {}
                Err(e) => {
                    // An unreachable store is no sign of a dead writer: wait it out.
                    tracing::warn!(error = %crate::error::Chain(&e), "cannot watch the log");
                    quiet_since = Instant::now();
                }
            }
        }
    }

    /// Whether this process still owns the log, asked of the store: the segment it writes
    /// next (and the one after) is absent or its own. A cheap check before an action no
    /// precondition guards (deleting files); a writer that lost the log also learns it at
    /// its next segment.
    pub async fn still_owner(&self) -> Result<bool, LogError> {
        let next = {
            let state = self.inner.state.lock().unwrap();
            if state.status != Status::Open {
                return Ok(false);
            }
            state.next
        };
        for n in [next, next + 1] {
            match self.inner.store.get(&self.segment_key(n)).await.map_err(store_error)? {
                None => return Ok(true),
                Some(bytes) => match segment::decode(bytes) {
                    Ok(o) if o.writer == self.inner.writer => {}
                    _ => return Ok(false),
                },
            }
        }
        Ok(true)
    }

    /// This process's id, written into every object it writes.
    pub fn writer_id(&self) -> u128 {
        self.inner.writer
    }

    /// Keeps the notes of a recovered segment, for truncation.
    pub fn recovered(&self, read: &Read, notes: Vec<N>) {
        let mut state = self.inner.state.lock().unwrap();
        if read.claim {
            state.claims.insert(read.number);
        }
        state.retained.insert(read.number, notes);
    }

    /// Appends `record` and blocks until the segment holding it exists in the store;
    /// returns that segment's number. `note` stays with the segment until it is truncated.
    /// Blocks a thread: call it from a blocking context.
    pub fn append(&self, record: Vec<u8>, note: N) -> Result<u64, LogError> {
        let started = std::time::Instant::now();
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.inner.state.lock().unwrap();
            match state.status {
                Status::Open => {}
                Status::Closed => return Err(LogError::Closed),
                Status::Fenced(number) => return Err(LogError::Fenced { number }),
            }
            if state.pending.is_empty() {
                state.first_at = Some(Instant::now());
            }
            state.pending_bytes += record.len();
            state.pending.push(Bytes::from(record));
            state.notes.push(note);
            state.waiters.push(tx);
        }
        self.inner.wake.notify_one();
        let result = rx.blocking_recv().unwrap_or(Err(LogError::Closed));
        metrics::histogram!(m::LOG_APPEND_SECONDS).record(started.elapsed().as_secs_f64());
        result
    }

    /// Fired when another node took the log: every write fails from then on.
    pub fn fenced(&self) -> CancellationToken {
        self.inner.fenced.clone()
    }

    /// Stops the writer once the segment being written is done; writes not yet in a
    /// segment fail as closed (nothing of them was acknowledged).
    pub fn close(&self) {
        let mut state = self.inner.state.lock().unwrap();
        if state.status == Status::Open {
            state.status = Status::Closed;
        }
        drop(state);
        self.inner.closing.cancel();
        self.inner.wake.notify_one();
    }

    /// The segment writer: runs until the log is closed (`Ok`) or fenced (`Err`).
    pub async fn run_writer(self) -> Result<(), LogError> {
        loop {
            let Some((number, records, notes, waiters)) = self.next_segment().await else {
                return Ok(());
            };
            let body = segment::encode(Kind::Segment, self.inner.writer, number, &records);
            metrics::histogram!(m::LOG_SEGMENT_BYTES).record(body.len() as f64);
            let outcome = self.write_segment(number, body).await;
            let mut state = self.inner.state.lock().unwrap();
            match outcome {
                Ok(()) => {
                    state.next = number + 1;
                    state.last_write = Instant::now();
                    state.retained.insert(number, notes);
                    drop(state);
                    metrics::counter!(m::LOG_SEGMENTS).increment(1);
                    for w in waiters {
                        let _ = w.send(Ok(number));
                    }
                }
                Err(e) => {
                    let fenced = matches!(e, LogError::Fenced { .. });
                    if let LogError::Fenced { number } = e {
                        state.status = Status::Fenced(number);
                        tracing::error!(error = %e, "stepping down: another node owns the log");
                        self.inner.fenced.cancel();
                    }
                    fail_pending(&mut state, &e);
                    drop(state);
                    for w in waiters {
                        let _ = w.send(Err(e.clone()));
                    }
                    return if fenced { Err(e) } else { Ok(()) };
                }
            }
        }
    }

    /// [`Log::run_writer`] as a service of the node: its fencing is fatal, with a message
    /// that says so.
    pub async fn run_writer_service(self) -> anyhow::Result<()> {
        self.run_writer().await.map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Waits for the next segment to be due and takes its records; `None` once closed.
    #[allow(clippy::type_complexity)]
    async fn next_segment(
        &self,
    ) -> Option<(u64, Vec<Bytes>, Vec<N>, Vec<oneshot::Sender<Result<u64, LogError>>>)> {
        loop {
            let notified = self.inner.wake.notified();
            let due: Instant = {
                let mut state = self.inner.state.lock().unwrap();
                if state.status != Status::Open {
                    let e = match state.status {
                        Status::Fenced(number) => LogError::Fenced { number },
                        _ => LogError::Closed,
                    };
                    fail_pending(&mut state, &e);
                    return None;
                }
                match state.first_at {
                    // Idle: an empty segment when the heartbeat is due.
                    None => {
                        let due = state.last_write + self.inner.settings.heartbeat;
                        if Instant::now() >= due {
                            return Some((state.next, Vec::new(), Vec::new(), Vec::new()));
                        }
                        due
                    }
                    Some(first) => {
                        let due = first + self.inner.settings.window;
                        if state.pending_bytes >= self.inner.settings.max_bytes
                            || Instant::now() >= due
                        {
                            let taken = (
                                state.next,
                                std::mem::take(&mut state.pending),
                                std::mem::take(&mut state.notes),
                                std::mem::take(&mut state.waiters),
                            );
                            state.pending_bytes = 0;
                            state.first_at = None;
                            return Some(taken);
                        }
                        due
                    }
                }
            };
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(due) => {}
            }
        }
    }

    /// Creates segment `number`, retrying transient failures with the same bytes until it
    /// exists (ours) or another writer's does (fenced), or the log is closed.
    async fn write_segment(&self, number: u64, body: Bytes) -> Result<(), LogError> {
        let key = self.segment_key(number);
        let backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
        let mut failures = 0;
        loop {
            let started = Instant::now();
            let put = self.inner.store.put_if_absent(&key, body.clone()).await;
            metrics::histogram!(m::LOG_PUT_SECONDS).record(started.elapsed().as_secs_f64());
            tracing::trace!(segment = number, bytes = body.len(), outcome = ?put.as_ref().map_err(|e| e.to_string()), "segment put");
            let outcome = match put {
                Ok(Put::Created) => return Ok(()),
                Ok(Put::Exists) => match self.inner.store.get(&key).await {
                    Ok(Some(theirs)) if theirs == body => return Ok(()),
                    Ok(Some(_)) => return Err(LogError::Fenced { number }),
                    // Listed as taken, then gone: only a truncation deletes segments, and
                    // none deletes one that is not below a checkpoint another writer made.
                    Ok(None) => return Err(LogError::Fenced { number }),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            failures += 1;
            metrics::counter!(m::LOG_PUT_FAILURES).increment(1);
            tracing::warn!(
                error = %crate::error::Chain(&outcome),
                segment = number,
                failures,
                "cannot write a log segment; retrying (its writes wait)"
            );
            tokio::select! {
                () = tokio::time::sleep(backoff.delay(failures)) => {}
                () = self.inner.closing.cancelled() => return Err(LogError::Closed),
            }
        }
    }

    /// The first segment that `keep` wants kept (or the next to be written): every segment
    /// below it may be truncated. Checks segments in order and stops at the first kept.
    pub fn cut(&self, keep: impl Fn(&N) -> bool) -> u64 {
        let state = self.inner.state.lock().unwrap();
        // The last segment written always stays: the highest number in the store is how
        // a standby sees progress and where a new writer numbers on from.
        let last = state.next.saturating_sub(1);
        for (&number, notes) in state.retained.range(..last) {
            if notes.iter().any(&keep) {
                return number;
            }
        }
        last.max(state.checkpointed)
    }

    /// How many records the retained segments below `cut` hold (heartbeats and claims hold
    /// none): a truncation that would delete only empty segments can wait.
    pub fn records_below(&self, cut: u64) -> usize {
        let state = self.inner.state.lock().unwrap();
        state.retained.range(..cut).map(|(_, notes)| notes.len()).sum()
    }

    /// Segments below this are covered by the latest checkpoint.
    pub fn checkpointed(&self) -> u64 {
        self.inner.state.lock().unwrap().checkpointed
    }

    /// Runs `f` on the notes of every retained segment below `cut`.
    pub fn with_notes_below(&self, cut: u64, mut f: impl FnMut(&N)) {
        let state = self.inner.state.lock().unwrap();
        for notes in state.retained.range(..cut).map(|(_, n)| n) {
            notes.iter().for_each(&mut f);
        }
    }

    /// Writes a checkpoint covering every segment below `cut` (`record`: the state they
    /// carried; `expires_ms`: when the idempotency records in it have all expired), then
    /// deletes those segments and the older checkpoints that expired.
    pub async fn truncate(
        &self,
        cut: u64,
        record: Vec<u8>,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<usize, LogError> {
        {
            let state = self.inner.state.lock().unwrap();
            if let Status::Fenced(number) = state.status {
                return Err(LogError::Fenced { number });
            }
        }
        let name = format!("{cut:020}-{expires_ms:020}");
        let key = format!("{}/{name}", self.dir("checkpoints"));
        let body = segment::encode(Kind::Checkpoint, self.inner.writer, cut, &[record]);
        match self.inner.store.put_if_absent(&key, body.clone()).await.map_err(store_error)? {
            Put::Created => {}
            Put::Exists => {
                let theirs = self.inner.store.get(&key).await.map_err(store_error)?;
                if theirs.as_ref() != Some(&body) {
                    return Err(LogError::Fenced { number: cut });
                }
            }
        }
        // Nothing is deleted by a node that lost the log (no precondition guards a delete).
        if !self.still_owner().await? {
            let next = self.inner.state.lock().unwrap().next;
            return Err(LogError::Fenced { number: next });
        }
        let (below, claims): (Vec<u64>, std::collections::BTreeSet<u64>) = {
            let mut state = self.inner.state.lock().unwrap();
            state.checkpointed = state.checkpointed.max(cut);
            let kept = state.retained.split_off(&cut);
            let below = std::mem::replace(&mut state.retained, kept);
            (below.into_keys().collect(), state.claims.clone())
        };
        // Segments left behind by an earlier truncation that stopped half-way (perhaps by
        // another node) are below every checkpoint too: the listing finds them. Which of
        // those are claims only their header says.
        let listed: Vec<u64> = self
            .inner
            .store
            .list(&self.dir("segments"))
            .await
            .map_err(store_error)?
            .iter()
            .filter_map(|n| n.parse::<u64>().ok())
            .filter(|&n| n < cut)
            .collect();
        let mut doomed = below;
        for n in listed {
            if doomed.contains(&n) || claims.contains(&n) {
                continue;
            }
            let key = self.segment_key(n);
            match self.inner.store.get(&key).await.map_err(store_error)? {
                Some(bytes)
                    if segment::decode(bytes.clone()).is_ok_and(|o| o.kind == Kind::Claim) =>
                {
                    self.inner.state.lock().unwrap().claims.insert(n);
                }
                _ => doomed.push(n),
            }
        }
        doomed.retain(|n| !claims.contains(n));
        doomed.sort_unstable();
        doomed.dedup();
        for &n in &doomed {
            self.inner.store.delete(&self.segment_key(n)).await.map_err(store_error)?;
        }
        for old in self.inner.store.list(&self.dir("checkpoints")).await.map_err(store_error)? {
            let Some((number, expires)) = checkpoint_parts(&old) else { continue };
            if number < cut && expires < now_ms {
                let key = format!("{}/{old}", self.dir("checkpoints"));
                self.inner.store.delete(&key).await.map_err(store_error)?;
            }
        }
        metrics::counter!(m::LOG_SEGMENTS_TRUNCATED).increment(doomed.len() as u64);
        Ok(doomed.len())
    }

    /// Segments written or recovered and not yet truncated (for `/stats`).
    pub fn retained(&self) -> (u64, usize) {
        let state = self.inner.state.lock().unwrap();
        (state.next, state.retained.len())
    }
}

fn fail_pending<N>(state: &mut State<N>, e: &LogError) {
    state.pending.clear();
    state.notes.clear();
    state.pending_bytes = 0;
    state.first_at = None;
    for w in state.waiters.drain(..) {
        let _ = w.send(Err(e.clone()));
    }
}

/// `<number>-<expires_ms>` → (number, expires_ms).
fn checkpoint_parts(name: &str) -> Option<(u64, i64)> {
    let (number, expires) = name.split_once('-')?;
    Some((number.parse().ok()?, expires.parse().ok()?))
}

fn checkpoint_number(name: &str) -> Option<u64> {
    checkpoint_parts(name).map(|(n, _)| n)
}

#[cfg(test)]
mod tests;
