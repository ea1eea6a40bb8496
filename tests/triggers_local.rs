//! Triggers of the service end to end, in process (`Service::with_clock`)
//! on a local git repository with local processes, exactly as
//! `cairn serve --repo` runs:
//!
//! - schedules, with the clock in the test's hands: a service sees a
//!   pipeline's schedule, stops, stays down across the spring-forward night
//!   in Paris, and starts again. What runs then is the pipeline's `catchup`
//!   policy; a further restart runs nothing twice;
//! - a burst of 100 pushes in one second under each `concurrency` policy:
//!   runs of the pipeline never overlap, and (except under `forbid`, whose
//!   point is to drop triggers) the newest commit is the last one run.

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio_util::sync::CancellationToken;

use cairn::service::{ManualClock, Service};
use cairn::store::Store;
use common::Scratch;

fn config(catchup: &str) -> String {
    format!(
        r#"[pipelines.tick]
dataset = "data/out.txt"
schedule = "30 2 * * *"
timezone = "Europe/Paris"
catchup = "{catchup}"

[pipelines.tick.tasks.make]
command = ["sh", "-c", "mkdir -p data && echo made > data/out.txt"]
"#
    )
}

fn utc(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, d, h, m, 0).unwrap()
}

struct Running {
    service: Arc<Service>,
    stop: CancellationToken,
}

fn start(repo: &Path, now: DateTime<Utc>) -> Running {
    start_with(repo, Arc::new(ManualClock::new(now)))
}

fn start_with(repo: &Path, clock: Arc<dyn cairn::service::Clock>) -> Running {
    let (service, stop) = common::local_service(repo, clock, Duration::from_secs(4 * 24 * 3600));
    Running { service, stop }
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        self.service.stopped().await;
    }
}

async fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The scheduled runs recorded, oldest first, once none is unfinished.
fn scheduled_runs(store: &Store) -> Option<Vec<String>> {
    let runs = store.runs(Some("tick"), 100).ok()?;
    if runs.iter().any(|r| !r.phase.is_final()) {
        return None;
    }
    let mut ids: Vec<(i64, String)> = runs
        .into_iter()
        .filter(|r| r.reason.starts_with("schedule: "))
        .map(|r| (r.created_at, r.id))
        .collect();
    ids.sort();
    Some(ids.into_iter().map(|(_, id)| id).collect())
}

fn tick_id(t: DateTime<Utc>) -> String {
    format!("tick-{}", t.timestamp())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downtime_across_dst_then_restart_for_each_catchup_mode() {
    // Paris 02:30 daily: on 2025-03-30 02:30 does not exist and the tick is
    // 03:00 CEST (01:00 UTC).
    let missed = [utc(29, 1, 30), utc(30, 1, 0), utc(31, 0, 30)];
    let down_at = utc(28, 12, 0);
    let back_at = utc(31, 6, 0);
    for (catchup, expected) in [
        ("none", vec![]),
        ("latest", vec![tick_id(missed[2])]),
        (
            "all",
            missed.iter().map(|t| tick_id(*t)).collect::<Vec<_>>(),
        ),
    ] {
        let scratch = Scratch::with_config(&config(catchup), &[]);
        let db = scratch.repo.join(".cairn/cairn.db");

        // First sight of the schedule: it starts from now, nothing runs.
        let first = start(&scratch.repo, down_at);
        wait_for("the schedule's baseline", || {
            let store = Store::open(&db).ok()?;
            store.last_fired("tick").ok().flatten()
        })
        .await;
        first.stop().await;

        // Back after three days, across the DST change.
        let second = start(&scratch.repo, back_at);
        let store = Store::open(&db).unwrap();
        let ran = wait_for(&format!("{catchup}: the catch-up runs"), || {
            let fired = store.last_fired("tick").ok().flatten()?;
            // Acted on everything due, and every run it started has ended.
            (fired.1 >= back_at.timestamp())
                .then(|| scheduled_runs(&store))
                .flatten()
                .filter(|ids| ids.len() == expected.len())
        })
        .await;
        assert_eq!(ran, expected, "catchup = {catchup}");
        for id in &ran {
            let run = store.run(id).unwrap().unwrap();
            assert_eq!(run.phase.as_str(), "succeeded", "{id}: {:?}", run.error);
        }
        second.stop().await;

        // Restarting at the same time runs nothing again.
        let third = start(&scratch.repo, back_at);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        third.stop().await;
        assert_eq!(
            scheduled_runs(&store).unwrap(),
            expected,
            "catchup = {catchup}"
        );
    }
}

fn burst_config(policy: &str) -> String {
    format!(
        r#"[pipelines.copy]
dataset = "data/out.txt"
on_push = {{ paths = ["n.txt"] }}
concurrency = "{policy}"

[pipelines.copy.tasks.make]
command = ["sh", "-c", "sleep 0.2 && mkdir -p data && cat n.txt > data/out.txt"]
"#
    )
}

/// A commit of `n.txt` = `n` onto the checked-out branch, made without
/// touching the working tree (as a push to the served branch would land).
fn commit_n(repo: &git2::Repository, n: u32) -> String {
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    let blob = repo.blob(format!("{n}\n").as_bytes()).unwrap();
    let mut tree = repo.treebuilder(Some(&head.tree().unwrap())).unwrap();
    tree.insert("n.txt", blob, 0o100644).unwrap();
    let tree = repo.find_tree(tree.write().unwrap()).unwrap();
    let who = git2::Signature::now("Ada", "ada@example.invalid").unwrap();
    repo.commit(
        Some("HEAD"),
        &who,
        &who,
        &format!("n = {n}"),
        &tree,
        &[&head],
    )
    .unwrap()
    .to_string()
}

async fn burst(policy: &str) {
    let scratch = Scratch::with_config(&burst_config(policy), &[("n.txt", "start\n")]);
    let db = scratch.repo.join(".cairn/cairn.db");
    let running = start_with(&scratch.repo, Arc::new(cairn::service::SystemClock));
    wait_for("readiness", || running.service.ready().ok()).await;
    let name = running.service.served().remove(0);

    let git = git2::Repository::open(&scratch.repo).unwrap();
    let begun = std::time::Instant::now();
    let mut newest = String::new();
    for n in 0..100 {
        newest = commit_n(&git, n);
        running.service.wake(&name);
        tokio::time::sleep(Duration::from_millis(9)).await;
    }
    // Not a speed check: it only guards that this was a burst, pushes
    // arriving faster than runs (0.2 s each) finish, even on a busy machine.
    assert!(
        begun.elapsed() < Duration::from_secs(15),
        "{:?}",
        begun.elapsed()
    );

    let store = Store::open(&db).unwrap();
    // Settled: every recorded run has ended, and no new one appeared for a
    // while (a waiting run starts as soon as the active one ends).
    let (mut stable, mut last_count) = (0, usize::MAX);
    let settling = std::time::Instant::now();
    let runs = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let runs = store.runs(Some("copy"), 1000).unwrap();
        let settled =
            !runs.is_empty() && runs.iter().all(|r| r.phase.is_final()) && runs.len() == last_count;
        last_count = runs.len();
        stable = if settled { stable + 1 } else { 0 };
        if stable == 3 {
            break runs;
        }
        assert!(
            settling.elapsed() < Duration::from_secs(120),
            "{policy}: the burst never settled"
        );
    };
    let mut runs = runs;
    runs.sort_by_key(|r| r.created_at);
    assert!(!runs.is_empty(), "{policy}: nothing ran");
    // Pushes collapse: a push only wakes the worker, which runs the tip.
    // (Under `replace` every new tip cancels the run before it, by design,
    // so there are as many short runs as reconciles.)
    if policy != "replace" {
        assert!(
            runs.len() < 30,
            "{policy}: {} runs for one burst",
            runs.len()
        );
    }
    // One active run at a time: each starts after the previous ended.
    for pair in runs.windows(2) {
        let ended = pair[0].finished_at.unwrap();
        assert!(
            pair[1].created_at >= ended,
            "{policy}: {} started before {} ended",
            pair[1].id,
            pair[0].id
        );
    }
    let last = runs.last().unwrap();
    match policy {
        "forbid" => assert!(
            runs.iter().all(|r| r.phase.as_str() == "succeeded"),
            "{runs:#?}"
        ),
        "queue" => {
            assert_eq!(
                last.source_commit, newest,
                "queue: the newest commit runs last"
            );
            assert!(
                runs.iter().all(|r| r.phase.as_str() == "succeeded"),
                "{runs:#?}"
            );
        }
        "replace" => {
            assert_eq!(
                last.source_commit, newest,
                "replace: the newest commit runs last"
            );
            assert_eq!(last.phase.as_str(), "succeeded");
            let before = &runs[..runs.len() - 1];
            // Older runs were stopped by the next one, and say so. On a busy
            // machine a push can come late enough for the run before it to
            // end on its own (the windows check above shows it ended before
            // the next began), so not every one; but none failed.
            assert!(
                before.iter().all(|r| r.phase.as_str() != "failed"),
                "replace: a replaced run failed: {before:#?}"
            );
            let stopped = before
                .iter()
                .filter(|r| r.phase.as_str() == "cancelled")
                .count();
            assert!(
                stopped * 5 >= before.len() * 4,
                "replace: only {stopped} of {} older runs were stopped: {before:#?}",
                before.len()
            );
        }
        other => unreachable!("{other}"),
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_100_pushes_under_each_concurrency_policy() {
    for policy in ["queue", "replace", "forbid"] {
        burst(policy).await;
    }
}

#[test]
fn plan_prints_the_next_fire_time_and_the_catchup_policy() {
    let scratch = Scratch::with_config(&config("all"), &[]);
    let out = common::cairn(&scratch.repo, &["plan", "tick"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("schedule"))
        .unwrap_or_else(|| panic!("no schedule line in:\n{text}"));
    assert!(line.contains("30 2 * * * (Europe/Paris), next "), "{line}");
    assert!(line.ends_with(", catchup all"), "{line}");
    assert!(line.contains(" CET") || line.contains(" CEST"), "{line}");
}
