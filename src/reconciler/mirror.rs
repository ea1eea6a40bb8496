//! What a backend reports of a run, recorded in the run store: the run's
//! phase and each step's attempts, with the output each attempt left. The
//! same for local processes and for pods, so `cairn runs`, the API and the
//! dashboard show a run the same way wherever it ran.

use std::path::Path;
use std::sync::Mutex;

use crate::backend::{log_path, Watch};
use crate::pipeline::{parse_time, RunStatus, StepPhase, StepStatus};
use crate::store::{unix_ms, AttemptRecord, RunPhase, Store};

pub(super) struct Mirror<'a> {
    store: &'a Store,
    run_id: &'a str,
    logs: &'a Path,
    /// The status last recorded: only steps that changed are written again.
    last: Mutex<Option<RunStatus>>,
}

impl<'a> Mirror<'a> {
    pub(super) fn new(store: &'a Store, run_id: &'a str, logs: &'a Path) -> Mirror<'a> {
        Mirror {
            store,
            run_id,
            logs,
            last: Mutex::new(None),
        }
    }
}

impl Watch for Mirror<'_> {
    fn phase(&self, phase: RunPhase) {
        if let Err(e) = self.store.set_phase(self.run_id, phase) {
            tracing::warn!(run = %self.run_id, "run store: {e}");
        }
    }

    fn steps(&self, status: &RunStatus) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        for step in status.steps.iter().filter(|s| s.attempt > 0) {
            let unchanged = last
                .as_ref()
                .and_then(|l| l.steps.iter().find(|s| s.name == step.name))
                .is_some_and(|before| before == step);
            if unchanged {
                continue;
            }
            let log = log_path(self.logs, &step.name, step.attempt);
            if ended(step) && !step.log_tail.is_empty() && !log.exists() {
                // A pod's output exists only as the tail captured before
                // it went; a local process wrote its whole log already.
                write_log(&log, &step.log_tail);
            }
            let Some(record) = attempt_record(self.run_id, step, &log) else {
                continue;
            };
            // History is a record, not a precondition: a full disk must
            // not turn a good run into a failed one.
            if let Err(e) = self.store.record_attempt(&record) {
                tracing::warn!(run = %self.run_id, "run store: {e}");
            }
        }
        *last = Some(status.clone());
    }
}

/// The current attempt of `step` has ended.
fn ended(step: &StepStatus) -> bool {
    matches!(
        step.phase,
        StepPhase::Succeeded | StepPhase::Failed | StepPhase::Retrying | StepPhase::Cancelled
    )
}

/// A step's current attempt as the store keeps attempts; `None` before it
/// has started.
fn attempt_record(run_id: &str, step: &StepStatus, log_path: &Path) -> Option<AttemptRecord> {
    let state = match step.phase {
        StepPhase::Waiting | StepPhase::Skipped => return None,
        StepPhase::Pending | StepPhase::Running => "running",
        StepPhase::Succeeded => "succeeded",
        StepPhase::Failed | StepPhase::Retrying => "failed",
        StepPhase::Cancelled => "stopped",
    };
    let time = |t: &Option<String>| parse_time(t).map(|t| t.timestamp_millis());
    let started = time(&step.started_at)
        .or_else(|| time(&step.created_at))
        .unwrap_or_else(|| unix_ms(std::time::SystemTime::now()));
    let finished = if state == "running" {
        None
    } else {
        Some(time(&step.finished_at).unwrap_or(started))
    };
    Some(AttemptRecord {
        run_id: run_id.to_string(),
        task: step.name.clone(),
        attempt: step.attempt,
        state: state.to_string(),
        exit_code: step.exit_code,
        reason: step.message.clone().or_else(|| step.reason.clone()),
        started_at: started,
        finished_at: finished,
        log_path: log_path.display().to_string(),
    })
}

fn write_log(path: &Path, lines: &[String]) {
    let result = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(path, lines.join("\n") + "\n"));
    if let Err(e) = result {
        tracing::warn!("keeping a step's log tail in {}: {e}", path.display());
    }
}
