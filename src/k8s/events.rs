//! Kubernetes Events for what happens to a run, so `kubectl describe
//! pipelinerun` and `kubectl get events` tell its story next to the status.
//!
//! [`transitions`] is pure: it compares the status the controller read with
//! the one it wrote and names what changed (a step's attempt started,
//! failed, is retried; the run finished). The controller publishes them
//! only after its conditional status write succeeded, so a stale look
//! (answered 409) announces nothing and each change is told once.

use super::crd::{PipelineRunStatus, RunPhase, StepPhase, StepStatus};

/// One event about a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEvent {
    pub warning: bool,
    /// PascalCase, as Kubernetes reasons are.
    pub reason: &'static str,
    pub note: String,
}

/// What changed between `before` (none for a run never looked at) and
/// `after`, in step order, the run's end last.
pub fn transitions(before: Option<&PipelineRunStatus>, after: &PipelineRunStatus) -> Vec<RunEvent> {
    let mut out = Vec::new();
    let idle = StepStatus::default();
    for step in &after.steps {
        let old = before
            .and_then(|b| b.steps.iter().find(|s| s.name == step.name))
            .unwrap_or(&idle);
        let started = step.attempt > old.attempt
            && matches!(
                step.phase,
                StepPhase::Pending | StepPhase::Running | StepPhase::Succeeded | StepPhase::Failed
            );
        if started {
            out.push(RunEvent {
                warning: false,
                reason: "StepStarted",
                note: format!(
                    "{} attempt {} started (pod {})",
                    step.name,
                    step.attempt,
                    pod(step)
                ),
            });
        }
        if step.phase != old.phase {
            match step.phase {
                StepPhase::Retrying => out.push(RunEvent {
                    warning: true,
                    reason: "StepRetrying",
                    note: format!(
                        "{} attempt {} failed ({}); retrying{}",
                        step.name,
                        step.attempt,
                        why(step),
                        step.retry_at
                            .as_deref()
                            .map(|t| format!(" at {t}"))
                            .unwrap_or_default()
                    ),
                }),
                StepPhase::Failed => out.push(RunEvent {
                    warning: true,
                    reason: "StepFailed",
                    note: format!(
                        "{} failed on attempt {} ({})",
                        step.name,
                        step.attempt,
                        why(step)
                    ),
                }),
                _ => {}
            }
        }
    }
    let was_finished = before.is_some_and(|b| b.phase.is_finished());
    if after.phase.is_finished() && !was_finished {
        let message = after.message.clone().unwrap_or_default();
        let (warning, reason, note) = match after.phase {
            RunPhase::Succeeded => (
                false,
                "RunSucceeded",
                match &after.result {
                    Some(r) => format!("published {}", r.md5),
                    None => "succeeded".to_string(),
                },
            ),
            RunPhase::Cancelled => (false, "RunCancelled", non_empty(message, "cancelled")),
            _ => (true, "RunFailed", non_empty(message, "failed")),
        };
        out.push(RunEvent {
            warning,
            reason,
            note,
        });
    }
    out
}

fn pod(step: &StepStatus) -> &str {
    step.worker.as_deref().unwrap_or("?")
}

fn why(step: &StepStatus) -> String {
    match (&step.reason, step.exit_code) {
        (Some(r), Some(c)) => format!("{r}, exit code {c}"),
        (Some(r), None) => r.clone(),
        (None, Some(c)) => format!("exit code {c}"),
        (None, None) => "no reason given".to_string(),
    }
}

fn non_empty(text: String, otherwise: &str) -> String {
    if text.is_empty() {
        otherwise.to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::crd::PublishResult;

    fn step(name: &str, phase: StepPhase, attempt: u32) -> StepStatus {
        StepStatus {
            name: name.into(),
            phase,
            attempt,
            worker: Some(format!("r-{name}-{attempt}")),
            ..StepStatus::default()
        }
    }

    fn status(phase: RunPhase, steps: Vec<StepStatus>) -> PipelineRunStatus {
        PipelineRunStatus {
            phase,
            steps,
            ..PipelineRunStatus::default()
        }
    }

    fn reasons(events: &[RunEvent]) -> Vec<&str> {
        events.iter().map(|e| e.reason).collect()
    }

    #[test]
    fn a_new_attempt_is_announced_once() {
        let a = status(
            RunPhase::Running,
            vec![step("build", StepPhase::Waiting, 0)],
        );
        let b = status(
            RunPhase::Running,
            vec![step("build", StepPhase::Pending, 1)],
        );
        let c = status(
            RunPhase::Running,
            vec![step("build", StepPhase::Running, 1)],
        );
        assert_eq!(reasons(&transitions(Some(&a), &b)), ["StepStarted"]);
        assert!(
            transitions(Some(&b), &c).is_empty(),
            "same attempt, no news"
        );
        assert_eq!(
            transitions(Some(&a), &b)[0].note,
            "build attempt 1 started (pod r-build-1)"
        );
    }

    #[test]
    fn a_failure_then_a_retry_then_the_end() {
        let running = status(
            RunPhase::Running,
            vec![step("build", StepPhase::Running, 1)],
        );
        let mut retrying = step("build", StepPhase::Retrying, 1);
        retrying.reason = Some("Evicted".into());
        retrying.exit_code = Some(137);
        let retry = status(RunPhase::Running, vec![retrying]);
        let events = transitions(Some(&running), &retry);
        assert_eq!(reasons(&events), ["StepRetrying"]);
        assert!(events[0].warning);
        assert!(
            events[0].note.contains("Evicted, exit code 137"),
            "{events:?}"
        );

        let second = status(
            RunPhase::Running,
            vec![step("build", StepPhase::Running, 2)],
        );
        assert_eq!(
            reasons(&transitions(Some(&retry), &second)),
            ["StepStarted"]
        );

        let mut failed = status(RunPhase::Failed, vec![step("build", StepPhase::Failed, 2)]);
        failed.message = Some("build failed".into());
        assert_eq!(
            reasons(&transitions(Some(&second), &failed)),
            ["StepFailed", "RunFailed"]
        );
        assert!(transitions(Some(&failed), &failed).is_empty());
    }

    #[test]
    fn success_names_the_published_version() {
        let before = status(
            RunPhase::Running,
            vec![step("cairn.publish", StepPhase::Running, 1)],
        );
        let mut after = status(
            RunPhase::Succeeded,
            vec![step("cairn.publish", StepPhase::Succeeded, 1)],
        );
        after.result = Some(PublishResult {
            md5: "d1a0b622cd467ce72b35413f361b44b6".into(),
            size: Some(1),
            nfiles: None,
        });
        let events = transitions(Some(&before), &after);
        assert_eq!(reasons(&events), ["RunSucceeded"]);
        assert_eq!(events[0].note, "published d1a0b622cd467ce72b35413f361b44b6");
        // A step that went from nothing to done in one look still started.
        let fresh = transitions(None, &after);
        assert_eq!(reasons(&fresh), ["StepStarted", "RunSucceeded"]);
    }
}
