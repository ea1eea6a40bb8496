//! The run state machine: (plan, recorded status, observed attempts, now)
//! -> (new status, actions, when to look again). Pure.
//!
//! It is level-triggered: it is not told what happened, it is shown what
//! is, every time, and works out the rest. A backend calls [`decide`]
//! whenever something may have changed (a process exited, a pod's status
//! moved, a deadline passed), carries out the actions, keeps the status,
//! and calls again at the latest at `wake`. Nothing here knows whether an
//! attempt is a process or a pod, talks to anything, or reads a clock.
//!
//! Restart safety comes from two rules. An observed attempt counts only if
//! the caller knows it is the run's (on a cluster: its controller reference
//! carries the run's uid; a name proves nothing). And the newest attempt
//! the observations show wins over the status, so an attempt started just
//! before a crash, whose start never reached the status, is adopted instead
//! of started twice.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::observe::{clean_up, observe};
use super::plan::{parse_time, timestamp, Action, Decision, Observed, RunPlan};
use super::status::{RunPhase, RunStatus, StepPhase, StepStatus};
use super::Limits;

/// How an attempt ended.
pub(super) enum Ending {
    Succeeded,
    Failed {
        reason: String,
        message: String,
        exit_code: Option<i32>,
        retryable: bool,
    },
}

pub(super) struct Planner<'a, N> {
    pub(super) limits: &'a Limits,
    pub(super) now: DateTime<Utc>,
    worker_name: N,
    pub(super) actions: Vec<Action>,
    pub(super) wake: Option<DateTime<Utc>>,
    stopping: bool,
}

impl<N: Fn(&str, u32) -> String> Planner<'_, N> {
    pub(super) fn wake_at(&mut self, at: DateTime<Utc>) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    fn after(&self, d: std::time::Duration) -> DateTime<Utc> {
        self.now + chrono::Duration::from_std(d).unwrap_or_default()
    }

    pub(super) fn end_attempt(&mut self, st: &mut StepStatus, max_attempts: u32, ending: Ending) {
        st.finished_at = Some(timestamp(self.now));
        match ending {
            Ending::Succeeded => {
                st.phase = StepPhase::Succeeded;
                st.exit_code = Some(0);
                st.reason = None;
                st.message = None;
            }
            Ending::Failed {
                reason,
                message,
                exit_code,
                retryable,
            } => {
                st.exit_code = exit_code;
                st.reason = Some(reason);
                st.message = Some(message);
                if retryable && st.attempt < max_attempts && !self.stopping {
                    let at = self.after(self.limits.backoff(st.attempt));
                    st.phase = StepPhase::Retrying;
                    st.retry_at = Some(timestamp(at));
                    self.wake_at(at);
                } else {
                    st.phase = StepPhase::Failed;
                }
            }
        }
    }

    fn start(&mut self, index: usize, st: &mut StepStatus, attempt: u32) {
        self.begin(st, attempt);
        self.actions.push(Action::Start {
            step: index,
            attempt,
        });
    }

    /// Records `attempt` as the step's current one, its worker not yet seen.
    pub(super) fn begin(&self, st: &mut StepStatus, attempt: u32) {
        st.phase = StepPhase::Pending;
        st.attempt = attempt;
        st.worker = Some((self.worker_name)(&st.name, attempt));
        st.worker_uid = None;
        st.created_at = None;
        st.started_at = None;
        st.finished_at = None;
        st.retry_at = None;
        st.exit_code = None;
        st.reason = None;
        st.message = None;
    }
}

/// Decide the next status and actions of a run. `observed` must hold only
/// attempts that are the run's own; `worker_name` names the worker of an
/// attempt of a step.
pub fn decide(
    plan: &RunPlan,
    recorded: Option<&RunStatus>,
    observed: &[Observed],
    now: DateTime<Utc>,
    limits: &Limits,
    worker_name: impl Fn(&str, u32) -> String,
) -> Decision {
    let mut status = recorded.cloned().unwrap_or_default();
    // One status entry per step, in plan order; entries of a step that no
    // longer exists in the plan (it cannot change, but be safe) are dropped.
    let mut by_name: BTreeMap<String, StepStatus> = status
        .steps
        .drain(..)
        .map(|s| (s.name.clone(), s))
        .collect();
    status.steps = plan
        .steps
        .iter()
        .map(|step| {
            by_name.remove(&step.name).unwrap_or_else(|| StepStatus {
                name: step.name.clone(),
                ..StepStatus::default()
            })
        })
        .collect();

    let mut p = Planner {
        limits,
        now,
        worker_name,
        actions: Vec::new(),
        wake: None,
        stopping: false,
    };

    if status.phase.is_finished() {
        clean_up(&mut p, &status, observed);
        return finish(p, status);
    }
    if status.started_at.is_none() {
        status.started_at = Some(timestamp(now));
    }

    let stop: Option<(String, String)> = if plan.cancel {
        Some(("Cancelled".into(), "the run was cancelled".into()))
    } else {
        plan.timeout.and_then(|limit| {
            let started = parse_time(&status.started_at)?;
            let deadline = started + chrono::Duration::from_std(limit).unwrap_or_default();
            if now >= deadline {
                Some((
                    "RunTimeout".into(),
                    format!(
                        "the pipeline's timeout of {} expired",
                        humantime::format_duration(limit)
                    ),
                ))
            } else {
                p.wake_at(deadline);
                None
            }
        })
    };
    p.stopping = stop.is_some();

    // Observe every started step's current attempt.
    for (index, step) in plan.steps.iter().enumerate() {
        let st = &mut status.steps[index];
        if st.phase.is_finished() {
            continue;
        }
        let newest = observed
            .iter()
            .filter(|seen| seen.step == st.name)
            .max_by_key(|seen| seen.attempt);
        let adopt = newest.filter(|seen| {
            seen.attempt > st.attempt
                || (seen.attempt == st.attempt
                    && matches!(st.phase, StepPhase::Pending | StepPhase::Running))
        });
        if let Some(seen) = adopt {
            if seen.attempt > st.attempt {
                // Started before a restart, never recorded: adopt, don't duplicate.
                p.begin(st, seen.attempt);
            }
            observe(&mut p, st, seen, step, index, &mut status.result);
            continue;
        }
        match st.phase {
            StepPhase::Pending | StepPhase::Running => {
                if st.worker_uid.is_some() {
                    let ending = Ending::Failed {
                        reason: "PodLost".into(),
                        message: format!(
                            "{} disappeared before it finished",
                            st.worker.as_deref().unwrap_or("?")
                        ),
                        exit_code: None,
                        retryable: true,
                    };
                    p.end_attempt(st, step.max_attempts, ending);
                } else if !p.stopping {
                    // Recorded but never seen: its start was lost (a crash
                    // between status and start, or a failed start). Again.
                    p.actions.push(Action::Start {
                        step: index,
                        attempt: st.attempt,
                    });
                }
            }
            StepPhase::Retrying if !p.stopping => match parse_time(&st.retry_at) {
                Some(at) if at > now => p.wake_at(at),
                _ => {
                    let next = st.attempt + 1;
                    p.start(index, st, next);
                }
            },
            _ => {}
        }
    }

    if let Some((reason, message)) = &stop {
        for (index, st) in status.steps.iter_mut().enumerate() {
            if st.phase.is_finished() {
                continue;
            }
            if matches!(st.phase, StepPhase::Pending | StepPhase::Running) {
                for seen in observed
                    .iter()
                    .filter(|seen| seen.step == st.name && !seen.deleting)
                {
                    if seen.attempt == st.attempt {
                        p.actions.push(Action::Capture {
                            step: index,
                            worker: seen.name.clone(),
                        });
                    }
                }
            }
            // Drop a start planned above for this step: the run is stopping.
            p.actions
                .retain(|a| !matches!(a, Action::Start { step, .. } if *step == index));
            st.phase = StepPhase::Cancelled;
            st.reason = Some(reason.clone());
            st.message = Some(message.clone());
            st.retry_at = None;
            st.finished_at = Some(timestamp(now));
        }
        // A stopped run removes every worker, failed ones kept for
        // inspection included: it leaves nothing running.
        for seen in observed.iter().filter(|seen| !seen.deleting) {
            p.actions.push(Action::Remove {
                worker: seen.name.clone(),
                uid: seen.uid.clone(),
            });
        }
        status.phase = RunPhase::Cancelled;
        status.message = Some(message.clone());
        status.finished_at = Some(timestamp(now));
        p.wake = None;
        return finish(p, status);
    }

    skip_blocked(plan, &mut status);
    let mut active = status
        .steps
        .iter()
        .filter(|s| matches!(s.phase, StepPhase::Pending | StepPhase::Running))
        .count();
    for (index, step) in plan.steps.iter().enumerate() {
        if active >= limits.max_parallel.max(1) {
            break;
        }
        let ready = status.steps[index].phase == StepPhase::Waiting
            && step
                .needs
                .iter()
                .all(|&n| status.steps[n].phase == StepPhase::Succeeded);
        if ready {
            p.start(index, &mut status.steps[index], 1);
            active += 1;
        }
    }

    if status.steps.iter().all(|s| s.phase.is_finished()) {
        conclude(plan, &mut status);
        status.finished_at = Some(timestamp(now));
    } else {
        status.phase = RunPhase::Running;
    }
    clean_up(&mut p, &status, observed);
    finish(p, status)
}

/// Marks `Skipped` every waiting step that can no longer run because a
/// step it needs (directly or not) did not succeed.
fn skip_blocked(plan: &RunPlan, status: &mut RunStatus) {
    let mut changed = true;
    while changed {
        changed = false;
        for (index, step) in plan.steps.iter().enumerate() {
            if status.steps[index].phase != StepPhase::Waiting {
                continue;
            }
            let blocker = step.needs.iter().find(|&&n| {
                matches!(
                    status.steps[n].phase,
                    StepPhase::Failed | StepPhase::Skipped | StepPhase::Cancelled
                )
            });
            if let Some(&n) = blocker {
                let because = status.steps[n].name.clone();
                let st = &mut status.steps[index];
                st.phase = StepPhase::Skipped;
                st.reason = Some("DependencyFailed".into());
                st.message = Some(format!("needs {because}, which did not succeed"));
                changed = true;
            }
        }
    }
}

/// The run's phase and message once every step is finished.
fn conclude(plan: &RunPlan, status: &mut RunStatus) {
    let failed: Vec<String> = status
        .steps
        .iter()
        .filter(|s| s.phase == StepPhase::Failed)
        .map(|s| {
            format!(
                "{} failed after {} attempt{}: {}",
                s.name,
                s.attempt,
                if s.attempt == 1 { "" } else { "s" },
                s.message.as_deref().unwrap_or("no reason given")
            )
        })
        .collect();
    let wants_result = plan.steps.iter().any(|s| s.reports_result);
    if failed.is_empty() && (status.result.is_some() || !wants_result) {
        status.phase = RunPhase::Succeeded;
        status.message = status
            .result
            .as_ref()
            .map(|r| format!("published {}", r.md5));
    } else {
        status.phase = RunPhase::Failed;
        status.message = Some(if failed.is_empty() {
            "the publish step reported no result".into()
        } else {
            failed.join("; ")
        });
    }
}

fn finish<N>(p: Planner<'_, N>, status: RunStatus) -> Decision {
    Decision {
        status,
        actions: p.actions,
        wake: p.wake,
    }
}
