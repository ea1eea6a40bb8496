//! What to do about one PipelineRun, given what is observed (pure).
//!
//! The controller is level-triggered: on every change of a run or of one of
//! its pods it lists the run's pods and calls [`decide`] with the run's spec,
//! its recorded status, the pods and the time. The answer is the new status
//! and the pod actions that move the cluster towards it. Nothing here talks
//! to the API server or reads a clock, so every path (retries, pending
//! timeouts, fast failures, a restart in the middle of a run) is tested as a
//! plain function.
//!
//! Restart safety comes from two rules. A pod counts as the run's only if its
//! controller reference carries the run's uid (the caller filters on that; a
//! name proves nothing). And the newest attempt a step's pods show wins over
//! the status, so a pod created just before a crash, whose creation never
//! reached the status, is adopted instead of created twice.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::crd::{
    PipelineRunSpec, PipelineRunStatus, PublishResult, RunPhase, StepPhase, StepStatus,
};
use super::pods::{pod_name, steps, Step};
use super::settings::ExecutorSettings;

/// Waiting reasons no retry can fix: the attempt fails at once instead of
/// waiting out the pending timeout.
pub const FAIL_FAST: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// A pod's phase, as the kubelet reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

/// What matters about one of the run's pods.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedPod {
    pub name: String,
    pub uid: String,
    /// The exact step name (from the pod's annotation).
    pub step: String,
    pub attempt: u32,
    pub phase: PodPhase,
    pub created: Option<DateTime<Utc>>,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    /// The container's waiting reason and message, while it waits.
    pub waiting: Option<(String, String)>,
    pub exit_code: Option<i32>,
    /// The pod's reason (`Evicted`, `DeadlineExceeded`) or else the
    /// container's terminated reason (`Error`, `OOMKilled`).
    pub reason: Option<String>,
    pub message: Option<String>,
    pub termination_message: Option<String>,
    /// It has a deletion timestamp: going away already.
    pub deleting: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodAction {
    /// Create the pod of `attempt` of step `step` (an index into the plan).
    Create {
        step: usize,
        attempt: u32,
    },
    /// Read the last lines of `pod` into step `step`'s status, before it goes.
    Capture {
        step: usize,
        pod: String,
    },
    /// Delete `pod`, on the condition that its uid is still `uid`.
    Delete {
        pod: String,
        uid: String,
    },
    /// Make the run's own workspace claim (when workspaces are per run).
    CreateClaim,
    DeleteClaim,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub status: PipelineRunStatus,
    pub actions: Vec<PodAction>,
    /// Look again after this long even if nothing changes (a retry backoff,
    /// a pending or task timeout, the end of a failed pod's keep time).
    pub requeue_after: Option<Duration>,
}

/// Formats a time as RFC 3339 in UTC. Milliseconds, unlike Kubernetes'
/// own second-precision times: a retry backoff shorter than a second must
/// not round down to "now".
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(s: &Option<String>) -> Option<DateTime<Utc>> {
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

struct Planner<'a> {
    settings: &'a ExecutorSettings,
    now: DateTime<Utc>,
    run_name: &'a str,
    actions: Vec<PodAction>,
    wake: Option<DateTime<Utc>>,
    stopping: bool,
}

impl Planner<'_> {
    fn wake_at(&mut self, at: DateTime<Utc>) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    fn backoff(&self, failed_attempt: u32) -> Duration {
        let factor = 1u32 << failed_attempt.saturating_sub(1).min(16);
        self.settings
            .retry_backoff
            .saturating_mul(factor)
            .min(self.settings.max_backoff)
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
                    let at = self.now
                        + chrono::Duration::from_std(self.backoff(st.attempt)).unwrap_or_default();
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
        self.actions.push(PodAction::Create {
            step: index,
            attempt,
        });
    }

    /// Records `attempt` as the step's current one, pod not yet seen.
    fn begin(&self, st: &mut StepStatus, attempt: u32) {
        st.phase = StepPhase::Pending;
        st.attempt = attempt;
        st.pod = Some(pod_name(self.run_name, &st.name, attempt));
        st.pod_uid = None;
        st.created_at = None;
        st.started_at = None;
        st.finished_at = None;
        st.retry_at = None;
        st.exit_code = None;
        st.reason = None;
        st.message = None;
    }
}

/// Decide the next status and actions of run `run_name`. `pods` must hold
/// only pods whose controller reference is this run (by uid).
pub fn decide(
    run_name: &str,
    spec: &PipelineRunSpec,
    recorded: Option<&PipelineRunStatus>,
    pods: &[ObservedPod],
    now: DateTime<Utc>,
    settings: &ExecutorSettings,
) -> Decision {
    let plan = steps(&spec.tasks);
    let mut status = recorded.cloned().unwrap_or_default();
    // One status entry per step, in plan order; entries of a step that no
    // longer exists in the spec (it cannot change, but be safe) are dropped.
    let mut by_name: BTreeMap<String, StepStatus> = status
        .steps
        .drain(..)
        .map(|s| (s.name.clone(), s))
        .collect();
    status.steps = plan
        .iter()
        .map(|(step, _)| {
            by_name.remove(step.name()).unwrap_or_else(|| StepStatus {
                name: step.name().to_string(),
                ..StepStatus::default()
            })
        })
        .collect();

    let mut p = Planner {
        settings,
        now,
        run_name,
        actions: Vec::new(),
        wake: None,
        stopping: false,
    };

    if status.phase.is_finished() {
        clean_up(&mut p, &status, pods);
        return finish(p, status);
    }
    let first_look = status.started_at.is_none();
    if first_look {
        status.started_at = Some(timestamp(now));
        if matches!(
            settings.workspace,
            super::settings::Workspace::PerRun { .. }
        ) {
            p.actions.push(PodAction::CreateClaim);
        }
    }

    let stop: Option<(RunPhase, String, String)> = if spec.cancel {
        Some((
            RunPhase::Cancelled,
            "Cancelled".into(),
            "the run was cancelled".into(),
        ))
    } else {
        spec.timeout_seconds.and_then(|limit| {
            let started = parse_time(&status.started_at)?;
            let deadline = started + chrono::Duration::seconds(limit as i64);
            if now >= deadline {
                Some((
                    RunPhase::Failed,
                    "RunTimeout".into(),
                    format!(
                        "the run's timeout of {} expired",
                        humantime::format_duration(Duration::from_secs(limit))
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
    for (index, (step, _)) in plan.iter().enumerate() {
        let max_attempts = 1 + match step {
            Step::Task(t) => t.retries,
            _ => settings.step_retries,
        };
        let timeout = match step {
            Step::Task(t) => t.timeout_seconds,
            _ => None,
        };
        let st = &mut status.steps[index];
        if st.phase.is_finished() {
            continue;
        }
        let newest = pods
            .iter()
            .filter(|pod| pod.step == st.name)
            .max_by_key(|pod| pod.attempt);
        let adopt = newest.filter(|pod| {
            pod.attempt > st.attempt
                || (pod.attempt == st.attempt
                    && matches!(st.phase, StepPhase::Pending | StepPhase::Running))
        });
        if let Some(pod) = adopt {
            if pod.attempt > st.attempt {
                // Created before a restart, never recorded: adopt, don't duplicate.
                p.begin(st, pod.attempt);
            }
            observe(
                &mut p,
                st,
                pod,
                max_attempts,
                timeout,
                index,
                matches!(step, Step::Publish),
                &mut status.result,
            );
            continue;
        }
        match st.phase {
            StepPhase::Pending | StepPhase::Running => {
                if st.pod_uid.is_some() {
                    let ending = Ending::Failed {
                        reason: "PodLost".into(),
                        message: format!(
                            "pod {} disappeared before it finished",
                            st.pod.as_deref().unwrap_or("?")
                        ),
                        exit_code: None,
                        retryable: true,
                    };
                    p.end_attempt(st, max_attempts, ending);
                } else if !p.stopping {
                    // Recorded but never seen: its creation was lost (a crash
                    // between status and create, or a failed create). Again.
                    p.actions.push(PodAction::Create {
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

    if let Some((phase, reason, message)) = &stop {
        for (index, st) in status.steps.iter_mut().enumerate() {
            if st.phase.is_finished() {
                continue;
            }
            if matches!(st.phase, StepPhase::Pending | StepPhase::Running) {
                for pod in pods
                    .iter()
                    .filter(|pod| pod.step == st.name && !pod.deleting)
                {
                    if pod.attempt == st.attempt {
                        p.actions.push(PodAction::Capture {
                            step: index,
                            pod: pod.name.clone(),
                        });
                    }
                }
            }
            // Drop a create planned above for this step: the run is stopping.
            p.actions
                .retain(|a| !matches!(a, PodAction::Create { step, .. } if *step == index));
            st.phase = StepPhase::Cancelled;
            st.reason = Some(reason.clone());
            st.message = Some(message.clone());
            st.retry_at = None;
            st.finished_at = Some(timestamp(now));
        }
        // Cancel deletes every pod of the run, failed ones kept for
        // inspection included: a cancelled run leaves nothing running.
        for pod in pods.iter().filter(|pod| !pod.deleting) {
            p.actions.push(PodAction::Delete {
                pod: pod.name.clone(),
                uid: pod.uid.clone(),
            });
        }
        status.phase = *phase;
        status.message = Some(message.clone());
        status.finished_at = Some(timestamp(now));
        if settings_per_run(settings) {
            p.actions.push(PodAction::DeleteClaim);
        }
        p.wake = None;
        return finish(p, status);
    }

    // Skip what can no longer run, then start what may, within the limit.
    let mut changed = true;
    while changed {
        changed = false;
        for (index, (_, needs)) in plan.iter().enumerate() {
            if status.steps[index].phase != StepPhase::Waiting {
                continue;
            }
            let blocker = needs.iter().find(|&&n| {
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
    let mut active = status
        .steps
        .iter()
        .filter(|s| matches!(s.phase, StepPhase::Pending | StepPhase::Running))
        .count();
    for (index, (_, needs)) in plan.iter().enumerate() {
        if active >= settings.max_parallel.max(1) {
            break;
        }
        let ready = status.steps[index].phase == StepPhase::Waiting
            && needs
                .iter()
                .all(|&n| status.steps[n].phase == StepPhase::Succeeded);
        if ready {
            let st = &mut status.steps[index];
            p.start(index, st, 1);
            active += 1;
        }
    }

    if status.steps.iter().all(|s| s.phase.is_finished()) {
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
        if failed.is_empty() && status.result.is_some() {
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
        status.finished_at = Some(timestamp(now));
        if settings_per_run(settings) {
            p.actions.push(PodAction::DeleteClaim);
        }
    } else {
        status.phase = RunPhase::Running;
    }
    clean_up(&mut p, &status, pods);
    finish(p, status)
}

fn settings_per_run(settings: &ExecutorSettings) -> bool {
    matches!(
        settings.workspace,
        super::settings::Workspace::PerRun { .. }
    )
}

#[allow(clippy::too_many_arguments)]
fn observe(
    p: &mut Planner<'_>,
    st: &mut StepStatus,
    pod: &ObservedPod,
    max_attempts: u32,
    timeout: Option<u64>,
    index: usize,
    is_publish: bool,
    result: &mut Option<PublishResult>,
) {
    if st.pod_uid.as_deref().is_some_and(|uid| uid != pod.uid) {
        // Same name, another pod: ours is gone, this one is not it.
        let ending = Ending::Failed {
            reason: "PodReplaced".into(),
            message: format!(
                "pod {} was replaced by another with the same name",
                pod.name
            ),
            exit_code: None,
            retryable: true,
        };
        p.end_attempt(st, max_attempts, ending);
        p.actions.push(PodAction::Delete {
            pod: pod.name.clone(),
            uid: pod.uid.clone(),
        });
        return;
    }
    st.pod = Some(pod.name.clone());
    st.pod_uid = Some(pod.uid.clone());
    if st.created_at.is_none() {
        st.created_at = pod.created.map(timestamp);
    }
    let capture = PodAction::Capture {
        step: index,
        pod: pod.name.clone(),
    };
    let delete = PodAction::Delete {
        pod: pod.name.clone(),
        uid: pod.uid.clone(),
    };
    match pod.phase {
        PodPhase::Pending => {
            st.phase = StepPhase::Pending;
            if let Some((reason, message)) = pod
                .waiting
                .as_ref()
                .filter(|(reason, _)| FAIL_FAST.contains(&reason.as_str()))
            {
                let ending = Ending::Failed {
                    reason: reason.clone(),
                    message: message.clone(),
                    exit_code: None,
                    retryable: false,
                };
                p.end_attempt(st, max_attempts, ending);
                p.actions.push(delete);
                return;
            }
            let created = pod
                .created
                .or_else(|| parse_time(&st.created_at))
                .unwrap_or(p.now);
            let limit = p.settings.pending_timeout;
            let deadline = created + chrono::Duration::from_std(limit).unwrap_or_default();
            if p.now >= deadline {
                let waiting = pod
                    .waiting
                    .as_ref()
                    .map(|(r, m)| format!(" ({r}: {m})"))
                    .unwrap_or_default();
                let ending = Ending::Failed {
                    reason: "PendingTimeout".into(),
                    message: format!(
                        "the pod stayed Pending for {}{waiting}",
                        humantime::format_duration(limit)
                    ),
                    exit_code: None,
                    retryable: true,
                };
                p.end_attempt(st, max_attempts, ending);
                p.actions.push(delete);
            } else {
                p.wake_at(deadline);
            }
        }
        PodPhase::Running => {
            st.phase = StepPhase::Running;
            let started = pod
                .started
                .or_else(|| parse_time(&st.started_at))
                .unwrap_or(p.now);
            st.started_at = Some(timestamp(started));
            if let Some(limit) = timeout {
                let deadline = started + chrono::Duration::seconds(limit as i64);
                if p.now >= deadline {
                    let ending = Ending::Failed {
                        reason: "Timeout".into(),
                        message: format!(
                            "timed out after {}",
                            humantime::format_duration(Duration::from_secs(limit))
                        ),
                        exit_code: None,
                        retryable: true,
                    };
                    p.end_attempt(st, max_attempts, ending);
                    p.actions.push(capture);
                    p.actions.push(delete);
                } else {
                    p.wake_at(deadline);
                }
            }
        }
        PodPhase::Succeeded => {
            if st.started_at.is_none() {
                st.started_at = pod.started.map(timestamp);
            }
            let ending = if is_publish {
                match parse_result(pod.termination_message.as_deref()) {
                    Ok(parsed) => {
                        *result = Some(parsed);
                        Ending::Succeeded
                    }
                    Err(message) => Ending::Failed {
                        reason: "BadResult".into(),
                        message,
                        exit_code: Some(0),
                        retryable: false,
                    },
                }
            } else {
                Ending::Succeeded
            };
            p.end_attempt(st, max_attempts, ending);
            if let Some(finished) = pod.finished {
                st.finished_at = Some(timestamp(finished));
            }
            p.actions.push(capture);
            p.actions.push(delete);
        }
        PodPhase::Failed => {
            if st.started_at.is_none() {
                st.started_at = pod.started.map(timestamp);
            }
            let reason = pod.reason.clone().unwrap_or_else(|| "Error".into());
            let message = match (&pod.message, pod.exit_code) {
                (Some(m), _) if !m.is_empty() => m.clone(),
                (_, Some(code)) => format!("exited with status {code}"),
                _ => format!("the pod failed ({reason})"),
            };
            let ending = Ending::Failed {
                reason,
                message,
                exit_code: pod.exit_code,
                retryable: true,
            };
            p.end_attempt(st, max_attempts, ending);
            if let Some(finished) = pod.finished {
                st.finished_at = Some(timestamp(finished));
            }
            // Failed pods stay for inspection; clean_up deletes them later.
            p.actions.push(capture);
        }
        PodPhase::Unknown => {
            // The node stopped reporting; look again later.
            p.wake_at(p.now + chrono::Duration::seconds(30));
        }
    }
}

/// The publish step's JSON report (`cairn publish --json`).
fn parse_result(message: Option<&str>) -> Result<PublishResult, String> {
    let text = message.unwrap_or("").trim();
    if text.is_empty() {
        return Err("the publish step succeeded but left no termination message".into());
    }
    serde_json::from_str::<PublishResult>(text).map_err(|e| {
        let shown: String = text.chars().take(200).collect();
        format!("the publish step's termination message is not its report ({e}): {shown}")
    })
}

/// Deletes pods the run no longer needs: successful attempts at once (their
/// logs were captured when they ended), failed ones after the keep time,
/// and everything still going once the run has finished.
fn clean_up(p: &mut Planner<'_>, status: &PipelineRunStatus, pods: &[ObservedPod]) {
    for pod in pods.iter().filter(|pod| !pod.deleting) {
        let already = p
            .actions
            .iter()
            .any(|a| matches!(a, PodAction::Delete { pod: name, .. } if *name == pod.name));
        if already {
            continue;
        }
        let current = status
            .steps
            .iter()
            .find(|s| s.name == pod.step)
            .is_some_and(|s| s.attempt == pod.attempt && !s.phase.is_finished());
        let delete = match pod.phase {
            PodPhase::Succeeded => !current,
            PodPhase::Failed => {
                let since = pod.finished.or(pod.created).unwrap_or(p.now);
                let until = since
                    + chrono::Duration::from_std(p.settings.keep_failed_pods).unwrap_or_default();
                if p.now >= until {
                    true
                } else {
                    p.wake_at(until);
                    false
                }
            }
            // A live pod that is not the current attempt of an unfinished
            // step has no business running.
            PodPhase::Pending | PodPhase::Running | PodPhase::Unknown => !current,
        };
        if delete {
            p.actions.push(PodAction::Delete {
                pod: pod.name.clone(),
                uid: pod.uid.clone(),
            });
        }
    }
}

fn finish(p: Planner<'_>, status: PipelineRunStatus) -> Decision {
    let requeue_after = p
        .wake
        .map(|at| (at - p.now).to_std().unwrap_or(Duration::ZERO));
    Decision {
        status,
        actions: p.actions,
        requeue_after,
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
