//! The run state machine: `(state, observed event) -> (state, actions)`.
//!
//! This is the pure heart of a run's task phase. It knows nothing about
//! processes, pods or clocks: the reconciler feeds it what it observed (a task
//! attempt ended, the run was cancelled) and carries out the actions it returns
//! (start an attempt, stop one, finish). Keeping it pure is what lets the same
//! scheduling rules drive local processes today and Kubernetes pods later, and
//! lets tests walk every path without spawning anything.
//!
//! Rules:
//! - a task starts once every task it needs has succeeded, at most
//!   `max_parallel` at a time, in the DAG's deterministic order;
//! - a failed attempt is retried while attempts remain, after a backoff that
//!   doubles each time;
//! - a task that fails for good marks every task downstream of it `Skipped`
//!   (they never start) and the run fails once nothing is running any more;
//! - cancellation stops running attempts and skips everything not yet started.

use std::time::Duration;

mod state;

pub use state::{Action, AttemptResult, Event, RunOutcome, RunState, TaskPlan, TaskState};

/// Limits that shape scheduling but are not part of pipelines.toml.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most task attempts running at the same time.
    pub max_parallel: usize,
    /// Delay before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
    /// Cap on the retry delay.
    pub max_backoff: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Limits {
            max_parallel: cores.max(2),
            retry_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}
