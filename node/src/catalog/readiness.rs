//! Whether each table takes writes: the last step of its lifecycle. A table becomes ready
//! once its flusher has loaded (or created, or adopted) the Iceberg table and reconciled
//! the hot store's watermarks with the current snapshot: only then do new sequences start
//! above everything Iceberg holds. Ingest waits here; the flusher reports here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Starting,
    Ready,
    /// Loading the table failed; it is retried with backoff. The text is for the log.
    Failing(String),
    /// The node is shutting down: the table takes no more writes.
    Stopped,
}

/// Why a table does not take writes (yet).
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error(
        "table {table} is not ready to take writes: its Iceberg table could not be loaded yet (the node's log and /stats say why); retry later"
    )]
    Failing { table: String },
    #[error(
        "table {table} is not ready to take writes: loading its Iceberg table takes longer than limits.table_ready_timeout_ms; retry later"
    )]
    Slow { table: String },
    #[error("the node is shutting down")]
    ShuttingDown,
}

/// The readiness of every table the node knows.
#[derive(Debug, Default)]
pub struct TableReadiness {
    tables: Mutex<HashMap<String, watch::Sender<Readiness>>>,
}

impl TableReadiness {
    fn watch(&self, table: &str) -> watch::Receiver<Readiness> {
        let mut tables = self.tables.lock().unwrap();
        match tables.get(table) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = watch::channel(Readiness::Starting);
                tables.insert(table.to_owned(), sender);
                receiver
            }
        }
    }

    /// Records `table`'s readiness; waiters see it at once.
    pub fn set(&self, table: &str, readiness: Readiness) {
        let mut tables = self.tables.lock().unwrap();
        match tables.get(table) {
            Some(sender) => {
                sender.send_replace(readiness);
            }
            None => {
                tables.insert(table.to_owned(), watch::channel(readiness).0);
            }
        }
    }

    /// Every table takes no more writes: waiters are answered at once.
    pub fn stop_all(&self) {
        for sender in self.tables.lock().unwrap().values() {
            sender.send_replace(Readiness::Stopped);
        }
    }

    /// Waits up to `timeout` for `table` to take writes.
    pub async fn wait(&self, table: &str, timeout: Duration) -> Result<(), NotReady> {
        let mut ready = self.watch(table);
        // Every write asks: a ready table answers without a timer.
        if *ready.borrow() == Readiness::Ready {
            return Ok(());
        }
        let settled = |r: &Readiness| matches!(r, Readiness::Ready | Readiness::Stopped);
        // The sender lives as long as the node: a closed channel only means shutdown.
        let closed =
            matches!(tokio::time::timeout(timeout, ready.wait_for(settled)).await, Ok(Err(_)));
        let now = ready.borrow().clone();
        match now {
            _ if closed => Err(NotReady::ShuttingDown),
            Readiness::Ready => Ok(()),
            Readiness::Stopped => Err(NotReady::ShuttingDown),
            Readiness::Failing(_) => Err(NotReady::Failing { table: table.to_owned() }),
            Readiness::Starting => Err(NotReady::Slow { table: table.to_owned() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    #[tokio::test(start_paused = true)]
    async fn a_waiter_is_answered_when_its_table_becomes_ready() {
        let readiness = std::sync::Arc::new(TableReadiness::default());
        let waiter = tokio::spawn({
            let r = readiness.clone();
            async move { r.wait("t", LONG).await }
        });
        tokio::task::yield_now().await;
        readiness.set("t", Readiness::Ready);
        waiter.await.unwrap().unwrap();
        // Ready stays ready.
        readiness.wait("t", Duration::ZERO).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_says_whether_the_table_is_failing_or_slow() {
        let readiness = TableReadiness::default();
        let slow = readiness.wait("t", Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(slow, NotReady::Slow { .. }), "{slow}");
        readiness.set("t", Readiness::Failing("warehouse down".into()));
        let failing = readiness.wait("t", Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(failing, NotReady::Failing { .. }), "{failing}");
        assert!(!failing.to_string().contains("warehouse down"), "{failing}");
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_answers_every_waiter_at_once() {
        let readiness = std::sync::Arc::new(TableReadiness::default());
        readiness.set("a", Readiness::Starting);
        let waiter = tokio::spawn({
            let r = readiness.clone();
            async move { r.wait("a", LONG).await }
        });
        tokio::task::yield_now().await;
        readiness.stop_all();
        assert!(matches!(waiter.await.unwrap(), Err(NotReady::ShuttingDown)));
    }
}
