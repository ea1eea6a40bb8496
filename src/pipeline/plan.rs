//! What the run state machine works on: the plan of a run, the attempts a
//! backend observes, and the actions and decision it answers.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::status::{PublishResult, RunStatus};

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
