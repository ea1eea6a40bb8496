//! Drives the pure scheduler ([`crate::pipeline::RunState`]) with a real
//! executor: turns its `Start`/`Stop` actions into attempts, and attempt
//! endings, the run timeout and cancellation into its events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::stream::{FuturesUnordered, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::executor::{AttemptReport, Executor, TaskSpec};
use crate::pipeline::{Action, AttemptResult, Event, Limits, RunOutcome, RunState, TaskPlan};
use crate::store::{unix_ms, AttemptRecord, Store};

/// One task's plan entry and the spec of its first attempt.
pub struct PlannedTask {
    pub plan: TaskPlan,
    pub spec: TaskSpec,
}

/// The result of the task phase, with the last report of each task.
pub struct TaskPhase {
    pub outcome: RunOutcome,
    pub reports: HashMap<String, AttemptReport>,
}

pub async fn run_tasks(
    tasks: Vec<PlannedTask>,
    executor: Arc<dyn Executor>,
    store: &Store,
    limits: Limits,
    timeout: Option<Duration>,
    cancel: &CancellationToken,
) -> TaskPhase {
    let (plans, specs): (Vec<_>, Vec<_>) = tasks.into_iter().map(|t| (t.plan, t.spec)).unzip();
    let mut state = RunState::new(plans, limits);
    let mut running = FuturesUnordered::new();
    let mut stops: HashMap<usize, CancellationToken> = HashMap::new();
    let mut reports = HashMap::new();
    let deadline = async {
        match timeout {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let mut cancel_sent = false;
    let mut actions = state.start();

    loop {
        for action in actions.drain(..) {
            match action {
                Action::Start {
                    task,
                    attempt,
                    delay,
                } => {
                    let stop = cancel.child_token();
                    stops.insert(task, stop.clone());
                    let mut spec = specs[task].clone();
                    spec.attempt = attempt;
                    spec.log_path = attempt_log(&spec.log_path, attempt);
                    let executor = Arc::clone(&executor);
                    record(store, &spec, None);
                    running.push(async move {
                        let waited = tokio::select! {
                            _ = tokio::time::sleep(delay) => true,
                            _ = stop.cancelled() => false,
                        };
                        let report = if waited {
                            executor.run(&spec, stop).await
                        } else {
                            let now = SystemTime::now();
                            AttemptReport {
                                result: AttemptResult::Stopped,
                                exit_code: None,
                                started: now,
                                finished: now,
                                log_tail: Vec::new(),
                            }
                        };
                        (task, spec, report)
                    });
                }
                Action::Stop { task } => {
                    if let Some(stop) = stops.get(&task) {
                        stop.cancel();
                    }
                }
                Action::Finish(outcome) => return TaskPhase { outcome, reports },
            }
        }

        // Biased: a cancel (or the timeout) is seen before the attempt
        // endings it causes. Each attempt's stop token is a child of
        // `cancel`, so both are ready at once; taken the other way round,
        // an attempt stopped by the cancel reads as one that stopped by
        // itself, and a cancelled run would be recorded as failed.
        let event = tokio::select! {
            biased;
            _ = cancel.cancelled(), if !cancel_sent => {
                cancel_sent = true;
                Event::Cancel { reason: "the run was cancelled".into() }
            }
            _ = &mut deadline, if !cancel_sent => {
                cancel_sent = true;
                let limit = timeout.unwrap_or_default();
                Event::Cancel { reason: format!("the pipeline's timeout of {} expired", humantime::format_duration(limit)) }
            }
            Some((task, spec, report)) = running.next() => {
                record(store, &spec, Some(&report));
                let event = Event::AttemptEnded { task, attempt: spec.attempt, result: report.result.clone() };
                reports.insert(spec.task.clone(), report);
                event
            }
        };
        actions = state.handle(event);
    }
}

/// `logs/task.log` -> `logs/task.2.log` for the second attempt.
fn attempt_log(base: &std::path::Path, attempt: u32) -> std::path::PathBuf {
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    base.with_file_name(format!("{stem}.{attempt}.log"))
}

fn record(store: &Store, spec: &TaskSpec, report: Option<&AttemptReport>) {
    let (state, exit_code, reason, started, finished) = match report {
        None => ("running", None, None, SystemTime::now(), None),
        Some(r) => {
            let (state, reason) = match &r.result {
                AttemptResult::Succeeded => ("succeeded", None),
                AttemptResult::Failed { reason, .. } => ("failed", Some(reason.clone())),
                AttemptResult::Stopped => ("stopped", None),
            };
            (
                state,
                r.exit_code,
                reason,
                r.started,
                Some(unix_ms(r.finished)),
            )
        }
    };
    let result = store.record_attempt(&AttemptRecord {
        run_id: spec.run_id.clone(),
        task: spec.task.clone(),
        attempt: spec.attempt,
        state: state.into(),
        exit_code,
        reason,
        started_at: unix_ms(started),
        finished_at: finished,
        log_path: spec.log_path.display().to_string(),
    });
    // History is a record, not a precondition: a full disk must not turn a
    // good run into a failed one.
    if let Err(e) = result {
        tracing::warn!(
            "could not record attempt {} of {}: {e}",
            spec.attempt,
            spec.task
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::TaskSpec;
    use crate::pipeline::TaskPlan;

    /// Runs until asked to stop, and reports that at once.
    struct UntilStopped;

    #[async_trait::async_trait]
    impl Executor for UntilStopped {
        async fn run(&self, _spec: &TaskSpec, stop: CancellationToken) -> AttemptReport {
            let started = SystemTime::now();
            stop.cancelled().await;
            AttemptReport {
                result: AttemptResult::Stopped,
                exit_code: None,
                started,
                finished: SystemTime::now(),
                log_tail: Vec::new(),
            }
        }
    }

    fn task(name: &str, needs: Vec<usize>) -> PlannedTask {
        PlannedTask {
            plan: TaskPlan {
                name: name.into(),
                needs,
                max_attempts: 1,
            },
            spec: TaskSpec {
                run_id: "r".into(),
                pipeline: "p".into(),
                task: name.into(),
                attempt: 1,
                command: vec!["true".into()],
                env: Default::default(),
                workdir: std::env::temp_dir(),
                timeout: None,
                log_path: std::env::temp_dir().join(format!("{name}.log")),
            },
        }
    }

    /// The cancel and the attempt it stops are ready together; the run is
    /// cancelled every time, never failed with a task that "did not finish".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_run_is_cancelled_whichever_wakes_first() {
        let store = Store::open_in_memory().unwrap();
        for _ in 0..50 {
            let cancel = CancellationToken::new();
            let trigger = cancel.clone();
            let phase = run_tasks(
                vec![task("a", vec![]), task("b", vec![0])],
                Arc::new(UntilStopped),
                &store,
                Limits::default(),
                None,
                &cancel,
            );
            let canceller = async {
                tokio::task::yield_now().await;
                trigger.cancel();
            };
            let (phase, ()) = tokio::join!(phase, canceller);
            assert!(
                matches!(&phase.outcome, RunOutcome::Cancelled { reason } if reason.contains("cancelled")),
                "{:?}",
                phase.outcome
            );
        }
    }
}
