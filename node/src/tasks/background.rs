//! The one shape of the node's background loops.
//!
//! A loop waits ([`BackgroundLoop::wait`]) for its period, an event (a flush request, a new
//! table) or cancellation, whichever comes first, with cancellation checked first; then runs
//! an iteration between [`BackgroundLoop::begin`] and [`BackgroundLoop::succeeded`] or
//! [`BackgroundLoop::failed`]. After failures the wait is the [`Backoff`] delay instead of the
//! period, and cancellation cuts it short. An iteration that takes longer than the period
//! counts in `zombi_node_loop_overruns_total{loop}` and is logged (the first, then at most
//! once a minute with the number since); a failure counts in
//! `zombi_node_loop_failures_total{loop}` and is logged (the first, then every tenth in a
//! row). Loop names are a fixed set, so the labels stay bounded.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Backoff;

pub const OVERRUNS: &str = "zombi_node_loop_overruns_total";
pub const FAILURES: &str = "zombi_node_loop_failures_total";

/// Overrun warnings of one loop are at least this far apart.
const OVERRUN_LOG_EVERY: Duration = Duration::from_secs(60);

/// Why a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake<T> {
    Cancelled,
    /// The period (or the backoff) elapsed.
    Due,
    Event(T),
}

/// The start of one iteration.
#[derive(Debug, Clone, Copy)]
#[must_use = "an iteration ends with `succeeded` or `failed`"]
pub struct Iteration(Instant);

#[derive(Debug)]
pub struct BackgroundLoop {
    name: &'static str,
    /// The table the loop works on, for the log (`None`: node-wide).
    table: Option<String>,
    period: Duration,
    backoff: Backoff,
    cancel: CancellationToken,
    failures: u32,
    overruns_unlogged: u64,
    last_overrun_log: Option<Instant>,
}

impl BackgroundLoop {
    pub fn new(
        name: &'static str,
        period: Duration,
        backoff: Backoff,
        cancel: CancellationToken,
    ) -> Self {
        BackgroundLoop {
            name,
            table: None,
            period,
            backoff,
            cancel,
            failures: 0,
            overruns_unlogged: 0,
            last_overrun_log: None,
        }
    }

    /// The loop works on one table: its log lines name it.
    pub fn for_table(mut self, table: &str) -> Self {
        self.table = Some(table.to_owned());
        self
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// Failures in a row since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// How long to wait before the next iteration: the backoff after failures, else nothing
    /// when `now` (more work is waiting), else the period.
    pub fn next_wait(&self, now: bool) -> Duration {
        if self.failures > 0 {
            self.backoff.delay(self.failures)
        } else if now {
            Duration::ZERO
        } else {
            self.period
        }
    }

    /// Waits `wait`, or until `event` yields `Some`, or cancellation, which wins when
    /// several are ready. An event source that yields `None` (closed) is not waited on.
    pub async fn wait<T>(&self, wait: Duration, event: impl Future<Output = Option<T>>) -> Wake<T> {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Wake::Cancelled,
            Some(e) = event => Wake::Event(e),
            () = tokio::time::sleep(wait) => Wake::Due,
        }
    }

    /// Sleeps `wait` unless cancelled first; `false` when cancelled.
    pub async fn sleep(&self, wait: Duration) -> bool {
        self.wait(wait, std::future::pending::<Option<()>>()).await == Wake::Due
    }

    pub fn begin(&self) -> Iteration {
        Iteration(Instant::now())
    }

    /// Ends an iteration that succeeded: the backoff starts over.
    pub fn succeeded(&mut self, iteration: Iteration) {
        self.failures = 0;
        self.check_overrun(iteration);
    }

    /// Ends an iteration that failed: the next wait backs off. Returns the failures in a row.
    pub fn failed(&mut self, iteration: Iteration, error: &dyn Display) -> u32 {
        self.failures = self.failures.saturating_add(1);
        metrics::counter!(FAILURES, "loop" => self.name).increment(1);
        // The first failure and then every tenth, not every retry.
        if self.failures == 1 || self.failures.is_multiple_of(10) {
            let retry_in = self.backoff.delay(self.failures);
            tracing::warn!(
                r#loop = self.name,
                table = self.table.as_deref(),
                failures = self.failures,
                retry_in_ms = retry_in.as_millis() as u64,
                error = %error,
                "background work failed; retrying with backoff"
            );
        }
        self.check_overrun(iteration);
        self.failures
    }

    fn check_overrun(&mut self, iteration: Iteration) {
        let took = iteration.0.elapsed();
        if self.period.is_zero() || took <= self.period {
            return;
        }
        metrics::counter!(OVERRUNS, "loop" => self.name).increment(1);
        self.overruns_unlogged += 1;
        let now = Instant::now();
        if self.last_overrun_log.is_none_or(|at| now.duration_since(at) >= OVERRUN_LOG_EVERY) {
            tracing::warn!(
                r#loop = self.name,
                table = self.table.as_deref(),
                took_ms = took.as_millis() as u64,
                period_ms = self.period.as_millis() as u64,
                overruns = self.overruns_unlogged,
                "background work took longer than its period"
            );
            self.overruns_unlogged = 0;
            self.last_overrun_log = Some(now);
        }
    }
}

/// Describes the loop metrics once so `/metrics` carries HELP lines.
pub fn describe() {
    metrics::describe_counter!(OVERRUNS, "Background loop iterations longer than their period.");
    metrics::describe_counter!(FAILURES, "Failed background loop iterations, by loop.");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(period_ms: u64) -> BackgroundLoop {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        BackgroundLoop::new("test", Duration::from_millis(period_ms), backoff, Default::default())
    }

    #[test]
    fn the_wait_is_the_period_then_the_backoff_after_failures() {
        let mut l = lp(500);
        assert_eq!(l.next_wait(false), Duration::from_millis(500));
        assert_eq!(l.next_wait(true), Duration::ZERO);
        for _ in 0..3 {
            let it = l.begin();
            l.failed(it, &"boom");
        }
        assert_eq!(l.failures(), 3);
        // Backing off wins over "more work is waiting".
        assert_eq!(l.next_wait(true), Duration::from_millis(400));
        let it = l.begin();
        l.succeeded(it);
        assert_eq!((l.failures(), l.next_wait(false)), (0, Duration::from_millis(500)));
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_cuts_a_backoff_short_and_wins_over_events() {
        let l = lp(500);
        let cancel = l.cancellation().clone();
        let waiting = l.wait(Duration::from_secs(3600), std::future::pending::<Option<()>>());
        let ((), woke) = tokio::join!(async { cancel.cancel() }, waiting);
        assert_eq!(woke, Wake::Cancelled);
        // Both ready: cancellation first.
        assert_eq!(l.wait(Duration::ZERO, async { Some(1) }).await, Wake::Cancelled);
        assert!(!l.sleep(Duration::from_secs(3600)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_ends_the_wait_and_a_closed_source_is_not_waited_on() {
        let l = lp(500);
        assert_eq!(l.wait(Duration::from_secs(3600), async { Some(7) }).await, Wake::Event(7));
        // A source that yields None leaves the timer: paused time jumps to it.
        let started = tokio::time::Instant::now();
        assert_eq!(l.wait(Duration::from_secs(5), async { None::<u8> }).await, Wake::Due);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
