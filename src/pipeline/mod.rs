//! The run state machine, pure: the one place that decides what a run's
//! steps do next, whatever carries them out.
//!
//! [`decide`] is level-triggered: given the run's plan, its recorded
//! [`RunStatus`], what a backend observes of its attempts right now and the
//! time, it answers the new status, the actions that move the world towards
//! it and when to look again. Local processes (`crate::backend::local`) and
//! Kubernetes pods (`crate::k8s`) both feed it observations and carry out
//! its actions, so every rule of a run is written once, here:
//!
//! - a step starts once every step it needs has succeeded, at most
//!   `max_parallel` at a time, in plan order;
//! - a failed attempt is retried while attempts remain, after a backoff that
//!   doubles each time; a failure no attempt can fix fails the step at once;
//! - an attempt running past its step's timeout, or pending past the
//!   pending timeout, fails (and may be retried);
//! - a step that fails for good skips every step that needs it, and the run
//!   fails once nothing is running any more;
//! - a cancel, or the run's own timeout, stops every running attempt and
//!   cancels everything not yet finished.

use std::time::Duration;

mod machine;
mod observe;
mod plan;
pub mod status;

pub use machine::decide;
pub use plan::{
    parse_time, timestamp, Action, AttemptState, Decision, Observed, RunPlan, StepPlan, Waiting,
};
pub use status::{PublishResult, RunPhase, RunStatus, StepPhase, StepStatus};

/// Limits that shape scheduling but are not part of pipelines.toml: the
/// operator's (service settings) or the machine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most attempts running at the same time.
    pub max_parallel: usize,
    /// Delay before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
    /// Cap on the retry delay.
    pub max_backoff: Duration,
    /// How long an attempt may stay pending (a pod unschedulable or pulling
    /// its image) before it fails. Separate from a task's timeout, which
    /// counts running time.
    pub pending_timeout: Duration,
    /// How long a failed attempt's worker is kept for inspection.
    pub keep_failed: Duration,
}

impl Limits {
    /// Delay before the attempt after failed attempt `failed` (1-based):
    /// backoff, 2*backoff, 4*backoff... up to the cap.
    pub fn backoff(&self, failed: u32) -> Duration {
        // No jitter: the state machine is deterministic.
        crate::backoff::Backoff {
            base: self.retry_backoff,
            cap: self.max_backoff,
            jitter: crate::backoff::Jitter::None,
        }
        .delay(failed)
    }
}

impl Default for Limits {
    /// For tasks as local processes: as many at once as there are cores,
    /// quick retries, nothing kept after it ended.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Limits {
            max_parallel: cores.max(2),
            retry_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            pending_timeout: Duration::from_secs(600),
            keep_failed: Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests;
