//! How one observed attempt moves its step's status, and which workers a
//! run no longer needs.

use super::machine::{Ending, Planner};
use super::plan::{Action, AttemptState, Observed, StepPlan};
use super::status::{PublishResult, RunStatus, StepPhase, StepStatus};
use super::{parse_time, timestamp};

/// Applies what is seen of the current attempt of `step` to its status.
pub(super) fn observe<N: Fn(&str, u32) -> String>(
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
pub(super) fn clean_up<N>(p: &mut Planner<'_, N>, status: &RunStatus, observed: &[Observed]) {
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
