//! CPU-heavy work kept off the async workers.
//!
//! The node's runtime has one worker per core, and those workers also answer every ingest
//! request. Encoding a flush's Parquet files or merging files in compaction takes
//! milliseconds to seconds of CPU with few awaits in between; run on a worker, it holds
//! that worker, and the requests queued behind it wait (the half-rate p99 in
//! docs/benchmarks.md). [`off_workers`] runs such a future on a blocking-pool thread
//! instead: the operating system then shares the cores between it and the workers, and
//! requests keep being answered while a file is encoded.

use std::future::Future;

use tokio::task::JoinError;

/// Runs `work` to completion on a blocking-pool thread and returns its output. I/O inside
/// `work` still goes through the runtime's drivers. A panic in `work` comes back as the
/// `JoinError`.
pub async fn off_workers<F>(work: F) -> Result<F::Output, JoinError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || runtime.block_on(work)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_only_worker_stays_free_while_work_blocks() {
        // Once started, the work blocks its thread until a task on the runtime's only worker
        // has run: were it run on that worker, the task could not run until the wait timed
        // out. The task is spawned only after the work started, so it cannot run first.
        let (started, has_started) = tokio::sync::oneshot::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let work = tokio::spawn(off_workers(async move {
            let _ = started.send(());
            released.recv_timeout(std::time::Duration::from_secs(10)).is_ok()
        }));
        has_started.await.unwrap();
        tokio::spawn(async move {
            let _ = release.send(());
        })
        .await
        .unwrap();
        assert!(work.await.unwrap().unwrap(), "the worker was held by the work");
    }

    #[tokio::test]
    async fn a_panic_is_an_error() {
        let result = off_workers(async { panic!("boom") }).await;
        assert!(result.unwrap_err().is_panic());
    }
}
