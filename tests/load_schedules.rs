//! Load on the schedules: 1,000 pipelines in one pipelines.toml, each
//! scheduled every minute, served in process (`Service::with_clock`) on a
//! local git repository with local processes, as `cairn serve --repo` runs.
//!
//! The clock is the system's, shifted so that a minute boundary is a few
//! seconds away: the worker's own timer fires the tick, as in production;
//! nothing in the test wakes it. Then:
//!
//! - every pipeline has exactly one run for the tick, named
//!   `<pipeline>-<unix tick>`, and it succeeded;
//! - runs are recorded at once but do their work a few at a time
//!   (`max_active_runs`), not a thousand processes at once;
//! - each run was recorded within `LATENESS` of its tick (max and p99 are
//!   printed);
//! - re-evaluating the schedules (a push, the resync) runs nothing twice;
//! - the process's peak resident memory stays bounded (printed).
//!
//! Each task is trivial (`echo` into a one-line file) and every pipeline's
//! data is the same bytes, so what is measured is cairn's orchestration of
//! 1,000 runs, not the tasks.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};

use cairn::service::Clock;
use cairn::store::Store;
use common::Scratch;

const PIPELINES: usize = 1000;
/// How late after its tick a run may be recorded (measured about 1 s on 2
/// cores, debug build).
const LATENESS: Duration = Duration::from_secs(10);
/// Peak resident memory of the whole test process (the service, its git
/// work and the harness).
const MEMORY_BOUND_KB: u64 = 300 * 1024;

/// The system clock, shifted by an offset the test sets.
struct ShiftedClock(Mutex<chrono::Duration>);

impl ShiftedClock {
    fn shift(&self) -> chrono::Duration {
        *self.0.lock().unwrap()
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.shift()
    }
}

fn config() -> String {
    let mut toml = String::from("[defaults]\nmerge = \"review\"\n\n");
    for i in 0..PIPELINES {
        toml.push_str(&format!(
            r#"[pipelines.p{i:04}]
dataset = "data/p{i:04}.txt"
schedule = "* * * * *"

[pipelines.p{i:04}.tasks.make]
command = ["sh", "-c", "mkdir -p data && echo tick > data/p{i:04}.txt"]

"#
        ));
    }
    toml
}

fn vm_hwm_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// The runs of `tick`, once every pipeline has one and all have ended.
/// Meanwhile, never more than `max_active_runs` of them do work at once.
fn tick_runs(store: &Store, tick: DateTime<Utc>) -> Option<Vec<cairn::store::RunRecord>> {
    let suffix = format!("-{}", tick.timestamp());
    let runs: Vec<_> = store
        .runs(None, 10 * PIPELINES)
        .ok()?
        .into_iter()
        .filter(|r| r.id.ends_with(&suffix))
        .collect();
    let working = runs
        .iter()
        .filter(|r| !r.phase.is_final() && r.phase.as_str() != "queued")
        .count();
    assert!(
        working <= cairn::service::default_max_active_runs(),
        "{working} runs at work at once"
    );
    (runs.len() >= PIPELINES && runs.iter().all(|r| r.phase.is_final())).then_some(runs)
}

async fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Checks one tick's runs: one per pipeline, named after the tick,
/// succeeded or unchanged, each recorded within `LATENESS`. Returns the
/// lateness of each, sorted.
fn check_tick(
    runs: &[cairn::store::RunRecord],
    tick: DateTime<Utc>,
    shift: chrono::Duration,
    phases: &[&str],
) -> Vec<Duration> {
    let mut ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    let expected: Vec<String> = (0..PIPELINES)
        .map(|i| format!("p{i:04}-{}", tick.timestamp()))
        .collect();
    assert_eq!(ids, expected, "one run per pipeline, named after the tick");
    let mut late: Vec<Duration> = runs
        .iter()
        .map(|r| {
            assert!(
                phases.contains(&r.phase.as_str()),
                "{}: {} {:?}",
                r.id,
                r.phase.as_str(),
                r.error
            );
            let recorded = DateTime::from_timestamp_millis(r.created_at).unwrap() + shift;
            recorded
                .signed_duration_since(tick)
                .to_std()
                .unwrap_or_else(|_| panic!("{} recorded before its tick", r.id))
        })
        .collect();
    late.sort();
    late
}

fn summary(late: &[Duration]) -> String {
    let p99 = late[(late.len() * 99).div_ceil(100) - 1];
    format!(
        "lateness min {:?}, p99 {p99:?}, max {:?}",
        late[0],
        late[late.len() - 1]
    )
}

/// The shift that puts the clock `ahead` before the next minute boundary;
/// returns it and that boundary.
fn just_before_a_minute(ahead: Duration) -> (chrono::Duration, DateTime<Utc>) {
    let now = Utc::now();
    let target = now + chrono::Duration::from_std(ahead).unwrap();
    let boundary = (target + chrono::Duration::minutes(1))
        .with_second(0)
        .unwrap()
        .with_nanosecond(0)
        .unwrap();
    (boundary - target, boundary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_schedules_fire_on_time_once_each() {
    let built = Instant::now();
    let scratch = Scratch::with_config(&config(), &[]);
    eprintln!(
        "repository with {PIPELINES} pipelines made in {:?}",
        built.elapsed()
    );
    let db = scratch.repo.join(".cairn/cairn.db");

    // The schedules are first seen a few seconds before a minute boundary:
    // they start from then, and the boundary is their first tick.
    let (shift, first_tick) = just_before_a_minute(Duration::from_secs(8));
    let clock = Arc::new(ShiftedClock(Mutex::new(shift)));
    let (service, stop) =
        common::local_service(&scratch.repo, clock.clone(), Duration::from_secs(24 * 3600));
    let store = Store::open(&db).unwrap();
    wait_for("every schedule's baseline", Duration::from_secs(30), || {
        let seen = (0..PIPELINES)
            .filter(|i| {
                store
                    .last_fired(&format!("p{i:04}"))
                    .ok()
                    .flatten()
                    .is_some()
            })
            .count();
        (seen == PIPELINES).then_some(())
    })
    .await;
    eprintln!("baseline of every schedule after {:?}", built.elapsed());
    assert!(
        clock.now() < first_tick,
        "setting up took past the first tick; nothing can be said about it"
    );
    assert!(
        store.runs(None, 10).unwrap().is_empty(),
        "nothing ran early"
    );

    // The worker's own timer fires the tick.
    let started = Instant::now();
    let runs = wait_for("the first tick's runs", Duration::from_secs(120), || {
        tick_runs(&store, first_tick)
    })
    .await;
    let late = check_tick(&runs, first_tick, shift, &["succeeded"]);
    eprintln!(
        "tick {first_tick}: {PIPELINES} runs done {:?} after the wait began; {}",
        started.elapsed(),
        summary(&late)
    );
    assert!(
        *late.last().unwrap() < LATENESS,
        "a run was recorded {:?} after its tick",
        late.last().unwrap()
    );

    // Evaluated again (as on a push or a resync): nothing runs twice.
    service.wake(&service.served()[0]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = tick_runs(&store, first_tick).unwrap();
    assert_eq!(again.len(), PIPELINES, "a tick ran twice");

    let hwm = vm_hwm_kb();
    eprintln!("peak RSS of the test process (VmHWM): {} MiB", hwm / 1024);
    assert!(hwm < MEMORY_BOUND_KB, "peak RSS {hwm} kB");

    stop.cancel();
    service.stopped().await;
}
