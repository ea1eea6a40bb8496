//! The machine's rules, walked with a toy backend: attempts are entries in
//! a list that the test moves from running to an ending, and every look is
//! one call of [`decide`].

use super::*;
use chrono::{DateTime, Utc};

fn limits(max_parallel: usize) -> Limits {
    Limits {
        max_parallel,
        retry_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(250),
        pending_timeout: Duration::from_secs(60),
        keep_failed: Duration::ZERO,
    }
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn ms(n: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::milliseconds(n)
}

/// A run and the attempts its backend carries out.
struct Sim {
    plan: RunPlan,
    limits: Limits,
    status: Option<RunStatus>,
    attempts: Vec<Observed>,
}

impl Sim {
    fn new(steps: &[(&str, &[usize], u32)], limits: Limits) -> Sim {
        Sim {
            plan: RunPlan {
                steps: steps
                    .iter()
                    .map(|(name, needs, max_attempts)| StepPlan {
                        name: name.to_string(),
                        needs: needs.to_vec(),
                        max_attempts: *max_attempts,
                        timeout: None,
                        reports_result: false,
                    })
                    .collect(),
                timeout: None,
                cancel: false,
            },
            limits,
            status: None,
            attempts: Vec::new(),
        }
    }

    /// One look at `now`: the starts it asks for, as (step name, attempt).
    /// Starts are carried out (running from now), removals too.
    fn look(&mut self, now: DateTime<Utc>) -> Vec<(String, u32)> {
        let d = decide(
            &self.plan,
            self.status.as_ref(),
            &self.attempts,
            now,
            &self.limits,
            |step, attempt| format!("{step}#{attempt}"),
        );
        let mut started = Vec::new();
        for action in &d.actions {
            match action {
                Action::Start { step, attempt } => {
                    let name = self.plan.steps[*step].name.clone();
                    self.attempts.push(Observed {
                        name: format!("{name}#{attempt}"),
                        uid: format!("uid-{name}-{attempt}"),
                        step: name.clone(),
                        attempt: *attempt,
                        state: AttemptState::Running,
                        created: Some(now),
                        started: Some(now),
                        finished: None,
                        deleting: false,
                    });
                    started.push((name, *attempt));
                }
                Action::Remove { worker, .. } => self.attempts.retain(|a| &a.name != worker),
                Action::Capture { .. } => {}
            }
        }
        self.status = Some(d.status);
        started
    }

    fn end(&mut self, step: &str, attempt: u32, state: AttemptState, now: DateTime<Utc>) {
        let seen = self
            .attempts
            .iter_mut()
            .find(|a| a.step == step && a.attempt == attempt)
            .expect("no such attempt");
        seen.state = state;
        seen.finished = Some(now);
    }

    fn status(&self) -> &RunStatus {
        self.status.as_ref().unwrap()
    }

    fn step(&self, name: &str) -> &StepStatus {
        self.status().steps.iter().find(|s| s.name == name).unwrap()
    }
}

fn ok() -> AttemptState {
    AttemptState::Succeeded { result: None }
}

fn fail(retryable: bool) -> AttemptState {
    AttemptState::Failed {
        reason: "Error".into(),
        message: "exited with status 1".into(),
        exit_code: Some(1),
        retryable,
    }
}

fn s(name: &str, attempt: u32) -> (String, u32) {
    (name.to_string(), attempt)
}

#[test]
fn chain_runs_in_order_and_succeeds() {
    let mut run = Sim::new(&[("a", &[], 1), ("b", &[0], 1), ("c", &[1], 1)], limits(4));
    assert_eq!(run.look(ms(0)), [s("a", 1)]);
    run.end("a", 1, ok(), ms(1));
    assert_eq!(run.look(ms(1)), [s("b", 1)]);
    run.end("b", 1, ok(), ms(2));
    assert_eq!(run.look(ms(2)), [s("c", 1)]);
    run.end("c", 1, ok(), ms(3));
    assert!(run.look(ms(3)).is_empty());
    assert_eq!(run.status().phase, RunPhase::Succeeded);
}

#[test]
fn independent_tasks_start_together_up_to_the_limit() {
    let mut run = Sim::new(
        &[
            ("a", &[], 1),
            ("b", &[], 1),
            ("c", &[], 1),
            ("d", &[0, 1, 2], 1),
        ],
        limits(2),
    );
    assert_eq!(run.look(ms(0)), [s("a", 1), s("b", 1)]);
    run.end("b", 1, ok(), ms(1));
    assert_eq!(run.look(ms(1)), [s("c", 1)]);
    run.end("a", 1, ok(), ms(2));
    assert!(run.look(ms(2)).is_empty());
    run.end("c", 1, ok(), ms(3));
    assert_eq!(run.look(ms(3)), [s("d", 1)]);
}

#[test]
fn failure_is_retried_with_growing_backoff_then_fails_and_skips_dependents() {
    let mut run = Sim::new(
        &[("a", &[], 3), ("b", &[0], 1), ("c", &[1], 1), ("d", &[], 1)],
        limits(4),
    );
    assert_eq!(run.look(ms(0)), [s("a", 1), s("d", 1)]);
    run.end("a", 1, fail(true), ms(10));
    assert!(run.look(ms(10)).is_empty());
    assert_eq!(run.step("a").phase, StepPhase::Retrying);
    assert_eq!(run.step("a").retry_at, Some(timestamp(ms(110))));
    // Not before the backoff is over.
    assert!(run.look(ms(109)).is_empty());
    assert_eq!(run.look(ms(110)), [s("a", 2)]);
    run.end("a", 2, fail(true), ms(120));
    run.look(ms(120));
    assert_eq!(run.step("a").retry_at, Some(timestamp(ms(320))));
    assert_eq!(run.look(ms(320)), [s("a", 3)]);
    run.end("a", 3, fail(true), ms(330));
    assert!(run.look(ms(330)).is_empty());
    assert_eq!(run.step("a").phase, StepPhase::Failed);
    assert_eq!(run.step("b").phase, StepPhase::Skipped);
    assert_eq!(run.step("c").phase, StepPhase::Skipped);
    // The independent task still finishes before the run does.
    assert_eq!(run.status().phase, RunPhase::Running);
    run.end("d", 1, ok(), ms(340));
    run.look(ms(340));
    assert_eq!(run.status().phase, RunPhase::Failed);
    assert!(run
        .status()
        .message
        .as_deref()
        .unwrap()
        .starts_with("a failed after 3 attempts"));
}

#[test]
fn backoff_is_capped() {
    let l = limits(1);
    let delays: Vec<u128> = (1..5).map(|n| l.backoff(n).as_millis()).collect();
    assert_eq!(delays, vec![100, 200, 250, 250]);
}

#[test]
fn non_retryable_failure_fails_at_once() {
    let mut run = Sim::new(&[("a", &[], 5)], limits(1));
    run.look(ms(0));
    run.end("a", 1, fail(false), ms(1));
    assert!(run.look(ms(1)).is_empty());
    assert_eq!(run.step("a").phase, StepPhase::Failed);
    assert_eq!(run.status().phase, RunPhase::Failed);
}

#[test]
fn an_ended_attempt_seen_again_changes_nothing() {
    let mut run = Sim::new(&[("a", &[], 2), ("b", &[0], 1)], limits(1));
    run.look(ms(0));
    run.end("a", 1, fail(true), ms(1));
    run.look(ms(1));
    // Attempt 1, still observed, does not count twice; attempt 2 starts
    // once, after the backoff.
    assert!(run.look(ms(2)).is_empty());
    assert_eq!(run.look(ms(101)), [s("a", 2)]);
    assert!(run.look(ms(102)).is_empty());
    assert_eq!(run.step("a").phase, StepPhase::Running);
    run.end("a", 2, ok(), ms(103));
    assert_eq!(run.look(ms(103)), [s("b", 1)]);
    // The start is seen (b running); then the same world looked at again
    // gives the same status and nothing new to do.
    assert!(run.look(ms(104)).is_empty());
    let before = run.status().clone();
    assert!(run.look(ms(104)).is_empty());
    assert_eq!(run.status(), &before);
}

#[test]
fn cancel_stops_running_and_cancels_the_rest() {
    let mut run = Sim::new(&[("a", &[], 3), ("b", &[0], 1), ("c", &[], 1)], limits(4));
    run.look(ms(0));
    run.plan.cancel = true;
    let d = decide(
        &run.plan,
        run.status.as_ref(),
        &run.attempts,
        ms(5),
        &run.limits,
        |s, a| format!("{s}#{a}"),
    );
    assert_eq!(d.status.phase, RunPhase::Cancelled);
    assert_eq!(d.status.message.as_deref(), Some("the run was cancelled"));
    assert!(d
        .status
        .steps
        .iter()
        .all(|s| s.phase == StepPhase::Cancelled));
    // Each running attempt's output is kept, then it is stopped.
    assert_eq!(
        d.actions,
        [
            Action::Capture {
                step: 0,
                worker: "a#1".into()
            },
            Action::Capture {
                step: 2,
                worker: "c#1".into()
            },
            Action::Remove {
                worker: "a#1".into(),
                uid: "uid-a-1".into()
            },
            Action::Remove {
                worker: "c#1".into(),
                uid: "uid-c-1".into()
            },
        ]
    );
    // A failure that lands after the cancel is not retried.
    run.look(ms(5));
    assert!(run.look(ms(6)).is_empty());
    assert_eq!(run.status().phase, RunPhase::Cancelled);
}

#[test]
fn a_running_attempt_past_its_timeout_fails_and_is_retried() {
    let mut run = Sim::new(&[("a", &[], 2)], limits(1));
    run.plan.steps[0].timeout = Some(Duration::from_millis(500));
    run.look(ms(0));
    let d = decide(
        &run.plan,
        run.status.as_ref(),
        &run.attempts,
        ms(10),
        &run.limits,
        |s, a| format!("{s}#{a}"),
    );
    assert_eq!(d.wake, Some(ms(500)), "a look is due at the deadline");
    run.look(ms(500));
    let a = run.step("a");
    assert_eq!(a.phase, StepPhase::Retrying);
    assert_eq!(a.reason.as_deref(), Some("Timeout"));
    assert_eq!(a.message.as_deref(), Some("timed out after 500ms"));
    assert!(run.attempts.is_empty(), "the timed-out attempt was stopped");
    assert_eq!(run.look(ms(600)), [s("a", 2)]);
}

#[test]
fn the_run_timeout_cancels_the_run() {
    let mut run = Sim::new(&[("a", &[], 3)], limits(1));
    run.plan.timeout = Some(Duration::from_secs(1));
    run.look(ms(0));
    run.look(ms(1000));
    assert_eq!(run.status().phase, RunPhase::Cancelled);
    assert_eq!(
        run.status().message.as_deref(),
        Some("the pipeline's timeout of 1s expired")
    );
    assert_eq!(run.step("a").phase, StepPhase::Cancelled);
    assert!(run.attempts.is_empty());
}

#[test]
fn empty_plan_finishes_at_once() {
    let mut run = Sim::new(&[], limits(1));
    assert!(run.look(ms(0)).is_empty());
    assert_eq!(run.status().phase, RunPhase::Succeeded);
}

#[test]
fn a_plan_with_a_result_step_needs_its_result() {
    let mut run = Sim::new(&[("publish", &[], 1)], limits(1));
    run.plan.steps[0].reports_result = true;
    run.look(ms(0));
    run.end("publish", 1, ok(), ms(1));
    run.look(ms(1));
    assert_eq!(run.status().phase, RunPhase::Failed);
    assert_eq!(run.step("publish").reason.as_deref(), Some("BadResult"));
}

#[test]
fn diamond_waits_for_both_sides() {
    let mut run = Sim::new(
        &[
            ("a", &[], 1),
            ("b", &[0], 1),
            ("c", &[0], 1),
            ("d", &[1, 2], 1),
        ],
        limits(4),
    );
    run.look(ms(0));
    run.end("a", 1, ok(), ms(1));
    assert_eq!(run.look(ms(1)), [s("b", 1), s("c", 1)]);
    run.end("c", 1, ok(), ms(2));
    assert!(run.look(ms(2)).is_empty());
    run.end("b", 1, ok(), ms(3));
    assert_eq!(run.look(ms(3)), [s("d", 1)]);
}
