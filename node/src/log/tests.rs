use std::time::Duration;

use super::*;

fn settings(window_ms: u64) -> Settings {
    Settings {
        window: Duration::from_millis(window_ms),
        max_bytes: 1 << 20,
        heartbeat: Duration::from_secs(3600),
    }
}

async fn open(dir: &std::path::Path, window_ms: u64) -> (Log<u32>, Contents) {
    let store = ObjectStore::local(dir, Duration::from_secs(5));
    Log::open(store, "log", settings(window_ms)).await.unwrap()
}

/// Appends `records` from as many threads at once; returns each one's segment.
async fn append_all(log: &Log<u32>, records: Vec<u32>) -> Vec<Result<u64, LogError>> {
    let mut tasks = Vec::new();
    for r in records {
        let log = log.clone();
        tasks.push(tokio::task::spawn_blocking(move || log.append(r.to_be_bytes().to_vec(), r)));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_segments_that_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (log, contents) = open(dir.path(), 30).await;
    assert!(contents.segments.is_empty() && contents.latest_checkpoint.is_none());
    let writer = tokio::spawn(log.clone().run_writer());

    let numbers = append_all(&log, (0..40).collect()).await;
    let numbers: Vec<u64> = numbers.into_iter().map(Result::unwrap).collect();
    let mut distinct = numbers.clone();
    distinct.sort_unstable();
    distinct.dedup();
    // Forty writes within a window or two: a few segments, numbered from 0 without gaps.
    assert!(distinct.len() < 10, "{} segments for 40 concurrent writes", distinct.len());
    assert_eq!(distinct, (0..distinct.len() as u64).collect::<Vec<_>>());

    // Another process opening the log finds every record, in its segment.
    let (reader, contents) = open(dir.path(), 30).await;
    assert_eq!(contents.segments, distinct);
    let mut seen = Vec::new();
    for &n in &contents.segments {
        let read = reader.read_segment(n).await.unwrap();
        assert_eq!(read.number, n);
        for r in read.records {
            let value = u32::from_be_bytes(r.as_ref().try_into().unwrap());
            assert_eq!(numbers[value as usize], n, "record {value} in the wrong segment");
            seen.push(value);
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..40).collect::<Vec<_>>());

    log.close();
    writer.await.unwrap().unwrap();
    assert!(matches!(append_all(&log, vec![1]).await[0], Err(LogError::Closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_whose_next_segment_another_wrote_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _) = open(dir.path(), 0).await;
    let old_writer = tokio::spawn(old.clone().run_writer());
    assert_eq!(append_all(&old, vec![1]).await[0].as_ref().unwrap(), &0);

    // A second node opens the same log and writes the next segment first.
    let (new, contents) = open(dir.path(), 0).await;
    assert_eq!(contents.segments, [0]);
    let new_writer = tokio::spawn(new.clone().run_writer());
    assert_eq!(append_all(&new, vec![2]).await[0].as_ref().unwrap(), &1);

    // The old writer's next write is refused by the store: it acknowledges nothing more.
    let fenced = old.fenced();
    assert!(matches!(append_all(&old, vec![3]).await[0], Err(LogError::Fenced { number: 1 })));
    assert!(fenced.is_cancelled());
    assert!(matches!(old_writer.await.unwrap(), Err(LogError::Fenced { .. })));
    assert!(matches!(append_all(&old, vec![4]).await[0], Err(LogError::Fenced { .. })));
    // Segment 1 is the new writer's record, not the old one's.
    let read = new.read_segment(1).await.unwrap();
    assert_eq!(read.records, [Bytes::from(2u32.to_be_bytes().to_vec())]);
    assert_eq!(append_all(&new, vec![5]).await[0].as_ref().unwrap(), &2);
    new.close();
    new_writer.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_keeps_what_is_not_done_and_numbers_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), 0).await;
    let writer = tokio::spawn(log.clone().run_writer());
    for r in 0..5 {
        assert_eq!(append_all(&log, vec![r]).await[0].as_ref().unwrap(), &(r as u64));
    }
    // Notes ≥ 3 are not done yet: segments 0, 1 and 2 go.
    let cut = log.cut(|&note| note >= 3);
    assert_eq!(cut, 3);
    let mut carried = Vec::new();
    log.with_notes_below(cut, |&n| carried.push(n));
    assert_eq!(carried, [0, 1, 2]);
    assert_eq!(log.truncate(cut, b"state".to_vec(), 0, 1).await.unwrap(), 3);
    assert_eq!(log.checkpointed(), 3);
    assert_eq!(log.cut(|&note| note >= 3), 3);

    let (reopened, contents) = open(dir.path(), 0).await;
    assert_eq!(contents.segments, [3, 4]);
    let latest = contents.latest_checkpoint.clone().unwrap();
    let read = reopened.read_checkpoint(&latest).await.unwrap();
    assert_eq!((read.number, read.records), (3, vec![Bytes::from_static(b"state")]));

    // Everything done: the next checkpoint covers all but the last segment, which always
    // stays (it shows how far the log goes), and the older checkpoint, expired, goes.
    assert_eq!(log.cut(|_| false), 4);
    assert_eq!(log.truncate(log.cut(|_| false), b"later".to_vec(), 0, 1).await.unwrap(), 1);
    let (reopened, contents) = open(dir.path(), 0).await;
    assert_eq!(contents.segments, [4]);
    assert!(contents.older_checkpoints.is_empty(), "{:?}", contents.older_checkpoints);
    assert_eq!(reopened.checkpointed(), 4);
    // A writer opening the truncated log numbers on after the last segment, never reusing
    // 0–4.
    let reopened_writer = tokio::spawn(reopened.clone().run_writer());
    log.close();
    writer.await.unwrap().unwrap();
    assert_eq!(append_all(&reopened, vec![9]).await[0].as_ref().unwrap(), &5);
    reopened.close();
    reopened_writer.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_with_idempotency_records_stays_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), 0).await;
    let writer = tokio::spawn(log.clone().run_writer());
    append_all(&log, vec![0]).await[0].as_ref().unwrap();
    log.truncate(1, b"first".to_vec(), 1_000, 10).await.unwrap();
    append_all(&log, vec![1]).await[0].as_ref().unwrap();
    log.truncate(2, b"second".to_vec(), 0, 10).await.unwrap();
    let (_, contents) = open(dir.path(), 0).await;
    assert_eq!(contents.older_checkpoints.len(), 1, "the unexpired checkpoint was deleted");
    // Later than its expiry, the next truncation deletes it.
    append_all(&log, vec![2]).await[0].as_ref().unwrap();
    log.truncate(3, b"third".to_vec(), 0, 2_000).await.unwrap();
    let (_, contents) = open(dir.path(), 0).await;
    assert!(contents.older_checkpoints.is_empty());
    log.close();
    writer.await.unwrap().unwrap();
}

async fn open_with_heartbeat(dir: &std::path::Path, heartbeat_ms: u64) -> Log<u32> {
    let store = ObjectStore::local(dir, Duration::from_secs(5));
    let settings = Settings {
        window: Duration::ZERO,
        max_bytes: 1 << 20,
        heartbeat: Duration::from_millis(heartbeat_ms),
    };
    Log::open(store, "log", settings).await.unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_only_once_the_writer_goes_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let never = CancellationToken::new();
    let (takeover, poll) = (Duration::from_millis(400), Duration::from_millis(20));
    // A log nobody wrote is claimed at once.
    let old = open_with_heartbeat(dir.path(), 50).await;
    assert_eq!(old.acquire(None, takeover, poll, &never).await.unwrap(), Some(0));
    let old_writer = tokio::spawn(old.clone().run_writer());
    append_all(&old, vec![1]).await[0].as_ref().unwrap();

    // A standby watches; the writer's heartbeats keep it waiting.
    let standby = open_with_heartbeat(dir.path(), 50).await;
    let watching = {
        let standby = standby.clone();
        let never = never.clone();
        tokio::spawn(async move { standby.acquire(None, takeover, poll, &never).await })
    };
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!watching.is_finished(), "took over from a live writer");

    // The writer stops (as if paused): the standby claims the next segment.
    let paused_at = old.retained().0;
    old.close();
    old_writer.await.unwrap().unwrap();
    let claimed = watching.await.unwrap().unwrap().unwrap();
    assert!(claimed >= paused_at, "claimed {claimed} below the writer's {paused_at}");
    // Every segment below the claim is there to replay.
    let contents = standby.contents().await.unwrap();
    assert_eq!(contents.segments, (0..=claimed).collect::<Vec<_>>());
    assert_eq!(standby.read_segment(claimed).await.unwrap().writer, standby.writer_id());

    // A restart of the new owner (its id remembered) claims at once, with no wait.
    let restarted = open_with_heartbeat(dir.path(), 50).await;
    let started = Instant::now();
    let again = restarted
        .acquire(Some(standby.writer_id()), Duration::from_secs(3600), poll, &never)
        .await
        .unwrap();
    assert_eq!(again, Some(claimed + 1));
    assert!(started.elapsed() < Duration::from_secs(5));

    // Cancelled while standing by: no claim.
    let cancel = CancellationToken::new();
    cancel.cancel();
    let other = open_with_heartbeat(dir.path(), 50).await;
    assert_eq!(other.acquire(None, Duration::from_secs(3600), poll, &cancel).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_writer_heartbeats_and_a_paused_one_is_fenced_at_its_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let never = CancellationToken::new();
    let poll = Duration::from_millis(10);
    let old = open_with_heartbeat(dir.path(), 30).await;
    old.acquire(None, Duration::from_secs(1), poll, &never).await.unwrap();
    let old_writer = tokio::spawn(old.clone().run_writer());
    // Idle, it still writes empty segments.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(old.retained().0 >= 3, "no heartbeat: {:?}", old.retained());

    // Another node claims the log as if the old one had been paused past the takeover.
    let new = open_with_heartbeat(dir.path(), 30).await;
    let claimed = new.acquire(None, Duration::ZERO, poll, &never).await.unwrap().unwrap();
    // The old writer's next write (a heartbeat at the latest) fails: it steps down.
    let fenced = old.fenced();
    tokio::time::timeout(Duration::from_secs(5), fenced.cancelled()).await.unwrap();
    assert!(matches!(old_writer.await.unwrap(), Err(LogError::Fenced { .. })));
    assert!(matches!(append_all(&old, vec![7]).await[0], Err(LogError::Fenced { .. })));
    // The claim stands: nothing of the old writer's is at or after it.
    let contents = new.contents().await.unwrap();
    for &n in contents.segments.iter().filter(|&&n| n >= claimed) {
        assert_eq!(new.read_segment(n).await.unwrap().writer, new.writer_id());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_outlive_truncation_so_a_paused_writer_finds_no_hole_to_write_in() {
    let dir = tempfile::tempdir().unwrap();
    let never = CancellationToken::new();
    let poll = Duration::from_millis(10);
    let old = open_with_heartbeat(dir.path(), 3_600_000).await;
    assert_eq!(old.acquire(None, Duration::from_secs(1), poll, &never).await.unwrap(), Some(0));
    let old_writer = tokio::spawn(old.clone().run_writer());
    assert_eq!(append_all(&old, vec![1]).await[0].as_ref().unwrap(), &1);
    // The old writer is paused here. Another node takes the log, writes on and truncates
    // everything it may: all but the claims and its last segment.
    let new = open_with_heartbeat(dir.path(), 3_600_000).await;
    let claimed = new.acquire(None, Duration::ZERO, poll, &never).await.unwrap().unwrap();
    assert_eq!(claimed, 2);
    let new_writer = tokio::spawn(new.clone().run_writer());
    for r in 10..15 {
        append_all(&new, vec![r]).await[0].as_ref().unwrap();
    }
    let cut = new.cut(|_| false);
    assert_eq!(cut, 7);
    new.truncate(cut, b"state".to_vec(), 0, 1).await.unwrap();
    let contents = new.contents().await.unwrap();
    assert_eq!(contents.segments, [7], "segments at or above the checkpoint");
    let names =
        ObjectStore::local(dir.path(), Duration::from_secs(5)).list("log/segments").await.unwrap();
    assert_eq!(names.len(), 3, "the two claims and the last segment stay: {names:?}");
    // The old writer resumes: its next segment is the new owner's claim, still there.
    assert!(matches!(append_all(&old, vec![2]).await[0], Err(LogError::Fenced { number: 2 })));
    assert!(matches!(old_writer.await.unwrap(), Err(LogError::Fenced { .. })));
    new.close();
    new_writer.await.unwrap().unwrap();
}
