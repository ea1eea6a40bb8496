//! One PipelineRun's pods as the run state machine sees them (pure).
//!
//! The rules of a run (order, retries, timeouts, cancel) are the machine's
//! ([`crate::pipeline::decide`]), the same as for local processes. This
//! file only translates: a PipelineRun's spec into the machine's plan, each
//! pod's status into an observation of an attempt, and the machine's
//! actions into pod creates, log captures and deletes, plus the per-run
//! workspace claim, which only a cluster has.
//!
//! The controller calls [`decide`] on every change of a run or of one of
//! its pods, with the pods it listed (only those whose controller
//! reference carries the run's uid) and the time.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::crd::{PipelineRunSpec, PipelineRunStatus, PublishResult};
use super::pods::{pod_name, steps, Step};
use super::settings::{ExecutorSettings, Workspace};
use crate::pipeline::{self, Action, AttemptState, Limits, Observed, RunPlan, StepPlan, Waiting};

pub use crate::pipeline::timestamp;

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
    let first_look = recorded.is_none_or(|s| s.started_at.is_none());
    let was_finished = recorded.is_some_and(|s| s.phase.is_finished());
    let observed: Vec<Observed> = pods.iter().map(observation).collect();
    let decision = pipeline::decide(
        &plan(spec, settings),
        recorded,
        &observed,
        now,
        &limits(settings),
        |step, attempt| pod_name(run_name, step, attempt),
    );
    let per_run_claim = matches!(settings.workspace, Workspace::PerRun { .. });
    let mut actions = Vec::new();
    if per_run_claim && first_look && !was_finished {
        actions.push(PodAction::CreateClaim);
    }
    actions.extend(decision.actions.iter().map(|action| match action {
        Action::Start { step, attempt } => PodAction::Create {
            step: *step,
            attempt: *attempt,
        },
        Action::Capture { step, worker } => PodAction::Capture {
            step: *step,
            pod: worker.clone(),
        },
        Action::Remove { worker, uid } => PodAction::Delete {
            pod: worker.clone(),
            uid: uid.clone(),
        },
    }));
    if per_run_claim && decision.status.phase.is_finished() && !was_finished {
        actions.push(PodAction::DeleteClaim);
    }
    Decision {
        requeue_after: decision.wake_after(now),
        status: decision.status,
        actions,
    }
}

/// The machine's plan of a PipelineRun: cairn's fetch step, the user's
/// tasks, cairn's publish step (whose success carries the result).
pub fn plan(spec: &PipelineRunSpec, settings: &ExecutorSettings) -> RunPlan {
    RunPlan {
        steps: steps(&spec.tasks)
            .into_iter()
            .map(|(step, needs)| StepPlan {
                name: step.name().to_string(),
                needs,
                max_attempts: 1 + match step {
                    Step::Task(t) => t.retries,
                    _ => settings.step_retries,
                },
                timeout: match step {
                    Step::Task(t) => t.timeout_seconds.map(Duration::from_secs),
                    _ => None,
                },
                reports_result: step == Step::Publish,
            })
            .collect(),
        timeout: spec.timeout_seconds.map(Duration::from_secs),
        cancel: spec.cancel,
    }
}

/// The operator's limits, as the machine takes them.
pub fn limits(settings: &ExecutorSettings) -> Limits {
    Limits {
        max_parallel: settings.max_parallel,
        retry_backoff: settings.retry_backoff,
        max_backoff: settings.max_backoff,
        pending_timeout: settings.pending_timeout,
        keep_failed: settings.keep_failed_pods,
    }
}

/// A pod as an observed attempt of its step.
fn observation(pod: &ObservedPod) -> Observed {
    let state = match pod.phase {
        PodPhase::Pending => AttemptState::Pending {
            waiting: pod.waiting.as_ref().map(|(reason, message)| Waiting {
                reason: reason.clone(),
                message: message.clone(),
                permanent: FAIL_FAST.contains(&reason.as_str()),
            }),
        },
        PodPhase::Running => AttemptState::Running,
        PodPhase::Succeeded if pod.step == super::crd::PUBLISH_STEP => {
            match parse_result(pod.termination_message.as_deref()) {
                Ok(result) => AttemptState::Succeeded {
                    result: Some(result),
                },
                Err(message) => AttemptState::Failed {
                    reason: "BadResult".into(),
                    message,
                    exit_code: Some(0),
                    retryable: false,
                },
            }
        }
        PodPhase::Succeeded => AttemptState::Succeeded { result: None },
        PodPhase::Failed => {
            let reason = pod.reason.clone().unwrap_or_else(|| "Error".into());
            let message = match (&pod.message, pod.exit_code) {
                (Some(m), _) if !m.is_empty() => m.clone(),
                (_, Some(code)) => format!("exited with status {code}"),
                _ => format!("the pod failed ({reason})"),
            };
            AttemptState::Failed {
                reason,
                message,
                exit_code: pod.exit_code,
                retryable: true,
            }
        }
        PodPhase::Unknown => AttemptState::Unknown,
    };
    Observed {
        name: pod.name.clone(),
        uid: pod.uid.clone(),
        step: pod.step.clone(),
        attempt: pod.attempt,
        state,
        created: pod.created,
        started: pod.started,
        finished: pod.finished,
        deleting: pod.deleting,
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

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
