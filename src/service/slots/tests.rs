use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

#[test]
fn the_pure_rule() {
    let mut slot: Slot<u32> = Slot::default();
    assert_eq!(
        slot.offer(Concurrency::Queue, "a".into(), 1),
        Offer::Start(1)
    );
    assert_eq!(
        slot.offer(Concurrency::Forbid, "b".into(), 2),
        Offer::Skipped { active: "a".into() }
    );
    assert_eq!(
        slot.offer(Concurrency::Queue, "c".into(), 3),
        Offer::Queued { displaced: None }
    );
    assert_eq!(
        slot.offer(Concurrency::Queue, "d".into(), 4),
        Offer::Queued {
            displaced: Some("c".into())
        }
    );
    assert_eq!(
        slot.offer(Concurrency::Replace, "e".into(), 5),
        Offer::Replacing {
            cancel: "a".into(),
            displaced: Some("d".into())
        }
    );
    // Only the active run's end counts.
    assert_eq!(slot.finished("zzz"), None);
    assert_eq!(slot.finished("a"), Some(("e".into(), 5)));
    assert_eq!(slot.active(), Some("e"));
    assert_eq!(slot.waiting(), None);
    assert_eq!(slot.finished("e"), None);
    assert_eq!(slot.active(), None);
    slot.offer(Concurrency::Queue, "f".into(), 6);
    slot.offer(Concurrency::Queue, "g".into(), 7);
    assert_eq!(slot.clear(), (Some("f".into()), Some("g".into())));
    assert_eq!(slot.finished("f"), None);
}

/// What the fake runner saw.
#[derive(Default)]
struct Seen {
    running: AtomicUsize,
    most_running: AtomicUsize,
    started: Mutex<Vec<u32>>,
    cancelled: Mutex<Vec<u32>>,
}

/// 100 triggers of one pipeline within one second, against runs that take
/// 150 ms (or stop early when cancelled). Returns the outcomes and what ran.
async fn burst(policy: Concurrency) -> (Vec<Submitted>, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let runner: Runner<u32> = {
        let seen = Arc::clone(&seen);
        Arc::new(move |_id: String, n: u32, cancel: CancellationToken| {
            let seen = Arc::clone(&seen);
            let run: BoxFuture = Box::pin(async move {
                let now = seen.running.fetch_add(1, Ordering::SeqCst) + 1;
                seen.most_running.fetch_max(now, Ordering::SeqCst);
                seen.started.lock().unwrap().push(n);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(150)) => {}
                    _ = cancel.cancelled() => seen.cancelled.lock().unwrap().push(n),
                }
                seen.running.fetch_sub(1, Ordering::SeqCst);
            });
            run
        })
    };
    let tasks = TaskTracker::new();
    let dispatcher = Dispatcher::new(runner, tasks.clone(), CancellationToken::new());
    let mut outcomes = Vec::new();
    for n in 0..100u32 {
        outcomes.push(dispatcher.submit("p", policy, format!("p-{n}"), n));
        let (_, waiting) = dispatcher.state("p");
        // Never more than one waiting run (and it is always the newest).
        if let Some(waiting) = waiting {
            assert_eq!(waiting, format!("p-{n}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tasks.close();
    tasks.wait().await;
    assert_eq!(
        dispatcher.state("p"),
        (None, None),
        "{policy}: slot left busy"
    );
    (outcomes, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_under_forbid_runs_only_when_idle() {
    let (outcomes, seen) = burst(Concurrency::Forbid).await;
    assert_eq!(seen.most_running.load(Ordering::SeqCst), 1);
    let started: Vec<u32> = seen.started.lock().unwrap().clone();
    let accepted: Vec<u32> = (0..100)
        .filter(|n| outcomes[*n as usize] == Submitted::Started)
        .collect();
    // Exactly the triggers that found the slot idle ran, in order; the rest
    // were skipped, none queued.
    assert_eq!(started, accepted);
    assert!(started.len() >= 2 && started.len() < 20, "{started:?}");
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, Submitted::Started | Submitted::Skipped { .. })));
    assert!(seen.cancelled.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_under_queue_runs_the_newest_last_and_cancels_nothing() {
    let (outcomes, seen) = burst(Concurrency::Queue).await;
    assert_eq!(seen.most_running.load(Ordering::SeqCst), 1);
    let started = seen.started.lock().unwrap().clone();
    // The newest trigger always runs, last; far fewer runs than triggers.
    assert_eq!(started.last(), Some(&99));
    assert!(started.windows(2).all(|w| w[0] < w[1]), "{started:?}");
    assert!(started.len() < 20, "{started:?}");
    assert!(seen.cancelled.lock().unwrap().is_empty());
    assert_eq!(outcomes[0], Submitted::Started);
    assert!(!outcomes
        .iter()
        .any(|o| matches!(o, Submitted::Skipped { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_under_replace_cancels_and_runs_the_newest() {
    let (_, seen) = burst(Concurrency::Replace).await;
    assert_eq!(seen.most_running.load(Ordering::SeqCst), 1);
    let started = seen.started.lock().unwrap().clone();
    let cancelled = seen.cancelled.lock().unwrap().clone();
    assert_eq!(started.last(), Some(&99));
    assert!(started.windows(2).all(|w| w[0] < w[1]), "{started:?}");
    // Every run but the last was cancelled by a newer trigger.
    assert_eq!(cancelled, started[..started.len() - 1].to_vec());
}

#[tokio::test]
async fn cancel_stops_the_active_run_and_drops_the_waiting_one() {
    let seen = Arc::new(Seen::default());
    let runner: Runner<u32> = {
        let seen = Arc::clone(&seen);
        Arc::new(move |_id: String, n: u32, cancel: CancellationToken| {
            let seen = Arc::clone(&seen);
            let run: BoxFuture = Box::pin(async move {
                seen.started.lock().unwrap().push(n);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                    _ = cancel.cancelled() => seen.cancelled.lock().unwrap().push(n),
                }
            });
            run
        })
    };
    let tasks = TaskTracker::new();
    let d = Dispatcher::new(runner, tasks.clone(), CancellationToken::new());
    assert_eq!(
        d.submit("p", Concurrency::Queue, "a".into(), 1),
        Submitted::Started
    );
    d.submit("p", Concurrency::Queue, "b".into(), 2);
    assert_eq!(d.cancel("p"), (Some("a".into()), Some("b".into())));
    d.submit("q", Concurrency::Queue, "c".into(), 3);
    d.submit("q", Concurrency::Queue, "d".into(), 4);
    assert_eq!(d.state("q"), (Some("c".into()), Some("d".into())));
    d.cancel("q");
    assert_eq!(d.cancel("other"), (None, None));
    tasks.close();
    tasks.wait().await;
    let mut started = seen.started.lock().unwrap().clone();
    started.sort();
    assert_eq!(started, vec![1, 3]);
    let mut cancelled = seen.cancelled.lock().unwrap().clone();
    cancelled.sort();
    assert_eq!(cancelled, vec![1, 3]);
    assert!(d.is_idle("p"));
}
