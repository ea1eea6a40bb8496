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
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::status::{PublishResult, RunPhase, RunStatus, StepPhase, StepStatus};
use super::Limits;

/// One step of a run as the machine schedules it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPlan {
    pub name: String,
    /// Indexes of the steps this one needs.
    pub needs: Vec<usize>,
    /// 1 + the retries.
    pub max_attempts: u32,
    /// Longest running time of one attempt.
    pub timeout: Option<Duration>,
    /// Its success carries the run's result (the publish step): a run
    /// whose plan has such a step succeeds only with a result.
    pub reports_result: bool,
}

/// Everything the machine needs to know about a run that is not observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPlan {
    pub steps: Vec<StepPlan>,
    /// Longest time of the whole run, from its first look.
    pub timeout: Option<Duration>,
    /// Someone asked for the run to stop.
    pub cancel: bool,
}

/// One attempt of a step, as the backend sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The worker's name (a pod's, a process's label).
    pub name: String,
    /// What tells this worker apart from another of the same name.
    pub uid: String,
    /// The step's exact name.
    pub step: String,
    pub attempt: u32,
    pub state: AttemptState,
    pub created: Option<DateTime<Utc>>,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    /// Going away already (a pod with a deletion timestamp).
    pub deleting: bool,
}

/// How an observed attempt stands.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptState {
    /// Created, not running yet; `waiting` is why, when the backend knows.
    Pending {
        waiting: Option<Waiting>,
    },
    Running,
    /// Ended well, with the run's result when the step reports one.
    Succeeded {
        result: Option<PublishResult>,
    },
    /// Ended badly.
    Failed {
        reason: String,
        message: String,
        exit_code: Option<i32>,
        /// False for what another attempt cannot fix (a command that does
        /// not exist, a result that cannot be read).
        retryable: bool,
    },
    /// The backend has lost sight of it for now (a node that stopped
    /// reporting); look again later.
    Unknown,
}

/// Why a pending attempt waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
    /// Nothing will heal it: the attempt fails at once instead of waiting
    /// out the pending timeout.
    pub permanent: bool,
}

/// What the backend is to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start attempt `attempt` of step `step` (an index into the plan).
    Start { step: usize, attempt: u32 },
    /// Read the last lines of `worker`'s output into step `step`'s status,
    /// before it goes.
    Capture { step: usize, worker: String },
    /// Stop and remove `worker`, on the condition that its uid is still `uid`.
    Remove { worker: String, uid: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub status: RunStatus,
    pub actions: Vec<Action>,
    /// Look again at this time even if nothing changes (a retry backoff, a
    /// pending or running timeout, the end of a failed worker's keep time).
    pub wake: Option<DateTime<Utc>>,
}

impl Decision {
    /// `wake` as a delay from `now`.
    pub fn wake_after(&self, now: DateTime<Utc>) -> Option<Duration> {
        self.wake
            .map(|at| (at - now).to_std().unwrap_or(Duration::ZERO))
    }
}

/// Formats a time as RFC 3339 in UTC. Milliseconds, unlike Kubernetes'
/// own second-precision times: a retry backoff shorter than a second must
/// not round down to "now".
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A time written by [`timestamp`] (or by Kubernetes).
pub fn parse_time(s: &Option<String>) -> Option<DateTime<Utc>> {
    s.as_deref()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// How an attempt ended.
enum Ending {
    Succeeded,
    Failed {
        reason: String,
        message: String,
        exit_code: Option<i32>,
        retryable: bool,
    },
}

struct Planner<'a, N> {
    limits: &'a Limits,
    now: DateTime<Utc>,
    worker_name: N,
    actions: Vec<Action>,
    wake: Option<DateTime<Utc>>,
    stopping: bool,
}

impl<N: Fn(&str, u32) -> String> Planner<'_, N> {
    fn wake_at(&mut self, at: DateTime<Utc>) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    fn after(&self, d: Duration) -> DateTime<Utc> {
        self.now + chrono::Duration::from_std(d).unwrap_or_default()
    }

    fn end_attempt(&mut self, st: &mut StepStatus, max_attempts: u32, ending: Ending) {
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
    fn begin(&self, st: &mut StepStatus, attempt: u32) {
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

/// Applies what is seen of the current attempt of `step` to its status.
fn observe<N: Fn(&str, u32) -> String>(
    p: &mut Planner<'_, N>,
    st: &mut StepStatus,
    seen: &Observed,
    step: &StepPlan,
    index: usize,
    result: &mut Option<PublishResult>,
) {
    let max_attempts = step.max_attempts;
    if st.worker_uid.as_deref().is_some_and(|uid| uid != seen.uid) {
        // Same name, another worker: ours is gone, this one is not it.
        let ending = Ending::Failed {
            reason: "PodReplaced".into(),
            message: format!("{} was replaced by another with the same name", seen.name),
            exit_code: None,
            retryable: true,
        };
        p.end_attempt(st, max_attempts, ending);
        p.actions.push(Action::Remove {
            worker: seen.name.clone(),
            uid: seen.uid.clone(),
        });
        return;
    }
    st.worker = Some(seen.name.clone());
    st.worker_uid = Some(seen.uid.clone());
    if st.created_at.is_none() {
        st.created_at = seen.created.map(timestamp);
    }
    let capture = Action::Capture {
        step: index,
        worker: seen.name.clone(),
    };
    let remove = Action::Remove {
        worker: seen.name.clone(),
        uid: seen.uid.clone(),
    };
    match &seen.state {
        AttemptState::Pending { waiting } => {
            st.phase = StepPhase::Pending;
            if let Some(w) = waiting.as_ref().filter(|w| w.permanent) {
                let ending = Ending::Failed {
                    reason: w.reason.clone(),
                    message: w.message.clone(),
                    exit_code: None,
                    retryable: false,
                };
                p.end_attempt(st, max_attempts, ending);
                p.actions.push(remove);
                return;
            }
            let created = seen
                .created
                .or_else(|| parse_time(&st.created_at))
                .unwrap_or(p.now);
            let limit = p.limits.pending_timeout;
            let deadline = created + chrono::Duration::from_std(limit).unwrap_or_default();
            if p.now >= deadline {
                let why = waiting
                    .as_ref()
                    .map(|w| format!(" ({}: {})", w.reason, w.message))
                    .unwrap_or_default();
                let ending = Ending::Failed {
                    reason: "PendingTimeout".into(),
                    message: format!(
                        "the pod stayed Pending for {}{why}",
                        humantime::format_duration(limit)
                    ),
                    exit_code: None,
                    retryable: true,
                };
                p.end_attempt(st, max_attempts, ending);
                p.actions.push(remove);
            } else {
                p.wake_at(deadline);
            }
        }
        AttemptState::Running => {
            st.phase = StepPhase::Running;
            let started = seen
                .started
                .or_else(|| parse_time(&st.started_at))
                .unwrap_or(p.now);
            st.started_at = Some(timestamp(started));
            if let Some(limit) = step.timeout {
                let deadline = started + chrono::Duration::from_std(limit).unwrap_or_default();
                if p.now >= deadline {
                    let ending = Ending::Failed {
                        reason: "Timeout".into(),
                        message: format!("timed out after {}", humantime::format_duration(limit)),
                        exit_code: None,
                        retryable: true,
                    };
                    p.end_attempt(st, max_attempts, ending);
                    p.actions.push(capture);
                    p.actions.push(remove);
                } else {
                    p.wake_at(deadline);
                }
            }
        }
        AttemptState::Succeeded { result: reported } => {
            if st.started_at.is_none() {
                st.started_at = seen.started.map(timestamp);
            }
            let ending = match (step.reports_result, reported) {
                (true, Some(r)) => {
                    *result = Some(r.clone());
                    Ending::Succeeded
                }
                (true, None) => Ending::Failed {
                    reason: "BadResult".into(),
                    message: "the step succeeded without reporting its result".into(),
                    exit_code: Some(0),
                    retryable: false,
                },
                (false, _) => Ending::Succeeded,
            };
            p.end_attempt(st, max_attempts, ending);
            if let Some(finished) = seen.finished {
                st.finished_at = Some(timestamp(finished));
            }
            p.actions.push(capture);
            p.actions.push(remove);
        }
        AttemptState::Failed {
            reason,
            message,
            exit_code,
            retryable,
        } => {
            if st.started_at.is_none() {
                st.started_at = seen.started.map(timestamp);
            }
            let ending = Ending::Failed {
                reason: reason.clone(),
                message: message.clone(),
                exit_code: *exit_code,
                retryable: *retryable,
            };
            p.end_attempt(st, max_attempts, ending);
            if let Some(finished) = seen.finished {
                st.finished_at = Some(timestamp(finished));
            }
            // Failed workers stay for inspection; clean_up removes them later.
            p.actions.push(capture);
        }
        AttemptState::Unknown => {
            // The backend lost sight of it; look again later.
            p.wake_at(p.now + chrono::Duration::seconds(30));
        }
    }
}

/// Removes workers the run no longer needs: successful attempts at once
/// (their output was captured when they ended), failed ones after the keep
/// time, and everything still going once the run has finished.
fn clean_up<N>(p: &mut Planner<'_, N>, status: &RunStatus, observed: &[Observed]) {
    for seen in observed.iter().filter(|seen| !seen.deleting) {
        let already = p
            .actions
            .iter()
            .any(|a| matches!(a, Action::Remove { worker, .. } if *worker == seen.name));
        if already {
            continue;
        }
        let current = status
            .steps
            .iter()
            .find(|s| s.name == seen.step)
            .is_some_and(|s| s.attempt == seen.attempt && !s.phase.is_finished());
        let remove = match seen.state {
            AttemptState::Succeeded { .. } => !current,
            AttemptState::Failed { .. } => {
                let since = seen.finished.or(seen.created).unwrap_or(p.now);
                let until =
                    since + chrono::Duration::from_std(p.limits.keep_failed).unwrap_or_default();
                if p.now >= until {
                    true
                } else {
                    p.wake = Some(p.wake.map_or(until, |w| w.min(until)));
                    false
                }
            }
            // A live worker that is not the current attempt of an unfinished
            // step has no business running.
            AttemptState::Pending { .. } | AttemptState::Running | AttemptState::Unknown => {
                !current
            }
        };
        if remove {
            p.actions.push(Action::Remove {
                worker: seen.name.clone(),
                uid: seen.uid.clone(),
            });
        }
    }
}

fn finish<N>(p: Planner<'_, N>, status: RunStatus) -> Decision {
    Decision {
        status,
        actions: p.actions,
        wake: p.wake,
    }
}
