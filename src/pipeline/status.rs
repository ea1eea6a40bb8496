//! The status of a run: the record every backend keeps of its steps.
//!
//! One shape wherever the steps run. On Kubernetes it is the PipelineRun's
//! status subresource, so `kubectl get pipelineruns` and `kubectl describe`
//! tell the story without cairn's database; locally it lives in memory and
//! is mirrored into the run store, as the cluster's is. Only
//! [`super::machine`] changes it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a run stands. Times are RFC 3339 strings, as Kubernetes writes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    pub phase: RunPhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Every step in plan order (on a cluster: fetch, the user tasks, publish).
    #[serde(default)]
    pub steps: Vec<StepStatus>,
    /// What the publish step reported through its termination message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<PublishResult>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RunPhase {
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunPhase {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunPhase::Succeeded | RunPhase::Failed | RunPhase::Cancelled
        )
    }
}

/// One step (the fetch step, a user task, the publish step) of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    pub name: String,
    pub phase: StepPhase,
    /// The current (or last) attempt, 1-based; 0 before the first.
    #[serde(default)]
    pub attempt: u32,
    /// What carries out the current attempt (a pod, a process), and its uid
    /// once it was seen: the uid is what tells our pod apart from another
    /// one of the same name.
    #[serde(default, rename = "pod", skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    #[serde(default, rename = "podUid", skip_serializing_if = "Option::is_none")]
    pub worker_uid: Option<String>,
    /// When the current attempt's worker was created (pending timeout base).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// When the next attempt may start (phase `Retrying`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// A machine-readable word (`Error`, `OOMKilled`, `ErrImagePull`,
    /// `PendingTimeout`, `Evicted`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The last lines the last finished attempt printed, captured before
    /// its worker goes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StepPhase {
    /// Not started: waiting for what it needs, or for a free slot.
    #[default]
    Waiting,
    /// Started, and not running yet (a pod being scheduled, pulling its image).
    Pending,
    Running,
    /// An attempt failed; the next starts at `retryAt`.
    Retrying,
    Succeeded,
    Failed,
    /// Never started because something it needs failed.
    Skipped,
    Cancelled,
}

impl StepPhase {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            StepPhase::Succeeded | StepPhase::Failed | StepPhase::Skipped | StepPhase::Cancelled
        )
    }
}

/// The publish step's report, as `cairn publish --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PublishResult {
    pub md5: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nfiles: Option<u64>,
}
