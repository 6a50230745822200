//! The node's long-running services, in one named set. A service runs until shutdown: one
//! that ends before (returns, fails or panics) is fatal, and the node stops with its name
//! in the error. A *task* is work that may finish (adopting tables at start-up): it may end
//! early, but not fail or panic. At shutdown whatever is still running when the budget runs
//! out is aborted.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use futures::FutureExt as _;
use tokio::task::JoinSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Service,
    Task,
}

/// How a supervised service or task ended.
#[derive(Debug)]
pub struct Exit {
    pub name: &'static str,
    kind: Kind,
    outcome: Outcome,
}

#[derive(Debug)]
enum Outcome {
    Returned,
    Failed(anyhow::Error),
    Panicked(String),
}

impl Exit {
    /// Whether this ending stops the node: a service ending at all, a task failing.
    pub fn is_fatal(&self) -> bool {
        self.kind == Kind::Service || !matches!(self.outcome, Outcome::Returned)
    }

    /// What happened, for the log and the node's exit error.
    pub fn into_error(self) -> anyhow::Error {
        let what = match self.kind {
            Kind::Service => "service",
            Kind::Task => "task",
        };
        match self.outcome {
            Outcome::Returned => anyhow::anyhow!("{what} '{}' stopped unexpectedly", self.name),
            Outcome::Failed(e) => e.context(format!("{what} '{}' failed", self.name)),
            Outcome::Panicked(m) => anyhow::anyhow!("{what} '{}' panicked: {m}", self.name),
        }
    }
}

#[derive(Default)]
pub struct Supervisor {
    set: JoinSet<Exit>,
    /// Names by task id: an aborted task yields no `Exit` of its own.
    names: HashMap<tokio::task::Id, &'static str>,
}

impl Supervisor {
    pub fn new() -> Self {
        Supervisor::default()
    }

    /// Runs `service` until shutdown; its ending before is fatal.
    pub fn spawn_service<F>(&mut self, name: &'static str, service: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.spawn(name, Kind::Service, service);
    }

    /// Runs `task`, which may finish; its failing or panicking is fatal.
    pub fn spawn_task<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.spawn(name, Kind::Task, task);
    }

    fn spawn<F>(&mut self, name: &'static str, kind: Kind, work: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let handle = self.set.spawn(async move {
            let outcome = match std::panic::AssertUnwindSafe(work).catch_unwind().await {
                Ok(Ok(())) => Outcome::Returned,
                Ok(Err(e)) => Outcome::Failed(e),
                Err(panic) => Outcome::Panicked(panic_message(panic.as_ref())),
            };
            Exit { name, kind, outcome }
        });
        self.names.insert(handle.id(), name);
    }

    /// The next fatal ending (a task finishing well is not one); `None` when nothing runs.
    pub async fn next_fatal(&mut self) -> Option<Exit> {
        while let Some(joined) = self.set.join_next_with_id().await {
            match joined {
                Ok((id, exit)) => {
                    self.names.remove(&id);
                    if exit.is_fatal() {
                        return Some(exit);
                    }
                    tracing::debug!(task = exit.name, "task finished");
                }
                // Only an abort gets here, and only `stop` aborts.
                Err(e) => {
                    self.names.remove(&e.id());
                }
            }
        }
        None
    }

    /// Waits up to `budget` for everything left to end, then aborts the rest; answers
    /// what was aborted. Endings here are part of shutdown, not fatal, except failures,
    /// which are logged.
    pub async fn stop(mut self, budget: Duration) -> Vec<&'static str> {
        let set = &mut self.set;
        let drained = tokio::time::timeout(budget, async {
            while let Some(joined) = set.join_next().await {
                if let Ok(Exit { name, outcome: Outcome::Failed(e), .. }) = joined {
                    tracing::warn!(service = name, error = %format!("{e:#}"), "failed while stopping");
                }
            }
        })
        .await;
        if drained.is_ok() {
            return Vec::new();
        }
        self.set.abort_all();
        let mut aborted = Vec::new();
        while let Some(joined) = self.set.join_next_with_id().await {
            if let Err(e) = joined
                && let Some(name) = self.names.get(&e.id())
            {
                aborted.push(*name);
            }
        }
        aborted
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_service_that_returns_is_fatal_and_named() {
        let mut s = Supervisor::new();
        s.spawn_task("adoption", async { Ok(()) });
        s.spawn_service("flusher", async { Ok(()) });
        let exit = s.next_fatal().await.expect("a fatal exit");
        assert_eq!(exit.name, "flusher");
        assert_eq!(exit.into_error().to_string(), "service 'flusher' stopped unexpectedly");
    }

    #[tokio::test]
    async fn a_panicking_task_is_fatal_with_its_message() {
        let mut s = Supervisor::new();
        s.spawn_task("adoption", async { panic!("boom") });
        let exit = s.next_fatal().await.expect("a fatal exit");
        assert_eq!(exit.into_error().to_string(), "task 'adoption' panicked: boom");
        assert!(s.next_fatal().await.is_none());
    }

    #[tokio::test]
    async fn a_failing_service_keeps_its_cause() {
        let mut s = Supervisor::new();
        s.spawn_service("http server", async { Err(anyhow::anyhow!("address in use")) });
        let error = s.next_fatal().await.expect("a fatal exit").into_error();
        assert_eq!(format!("{error:#}"), "service 'http server' failed: address in use");
    }

    #[tokio::test(start_paused = true)]
    async fn stop_aborts_what_outlives_the_budget_and_names_it() {
        let mut s = Supervisor::new();
        s.spawn_service("stuck", std::future::pending());
        s.spawn_task("quick", async { Ok(()) });
        assert_eq!(s.stop(Duration::from_secs(1)).await, vec!["stuck"]);
    }
}
