//! `pipelines.toml` text -> a validated [`Config`].
//!
//! This is the only place that reads what users write, so it is where
//! mistakes must be caught and explained. Two decisions follow from that:
//!
//! - The file is parsed with `toml-span`, which keeps the byte span of every
//!   key and value. Every [`Diagnostic`] can therefore name its place as
//!   `FILE:LINE:COL` and show the offending line, instead of a bare "invalid
//!   type" with no location (which is what deserializing with serde gives).
//! - Validation never stops at the first problem: the walker records each one
//!   and carries on with what it could make sense of, so a user fixes the
//!   whole file in one round trip (this matters doubly when the round trip is
//!   a push and a commit status). Only a TOML syntax error ends the walk
//!   early, because after one nothing is known about the rest of the file.
//!
//! The module is pure: the caller reads the file and passes its text and its
//! name (for messages). Everything it returns is fully resolved: defaults are
//! applied, names and paths are checked, tasks form an acyclic [`Dag`], and
//! each [`Pipeline`] carries a digest of its effective definition.
//!
//! Files: `walk.rs` turns TOML values into the model and collects
//! diagnostics; `diag.rs` renders them; `names.rs` holds the validated
//! newtypes; `dag.rs` the task graph; `schedule.rs` cron and push triggers
//! (`plain_cron.rs` a fast path that keeps croner off the hot path);
//! `kube.rs` Kubernetes-only syntax; `suggest.rs` did-you-mean hints;
//! `digest.rs` the definition hash.

mod dag;
mod diag;
mod digest;
mod kube;
mod names;
mod plain_cron;
mod schedule;
mod suggest;
mod walk;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use dag::{Dag, DagError};
pub use diag::{Diagnostic, Diagnostics};
pub use names::{DatasetPath, EnvNameError, NameError, PathError, PipelineName, TaskName};
pub use schedule::{OnPush, Schedule, ScheduleError};
pub use suggest::closest;

/// Parses and validates the text of a `pipelines.toml`. `file_name` is only
/// used to label diagnostics. On failure, every problem found is returned,
/// in source order.
pub fn parse(source: &str, file_name: &str) -> Result<Config, Diagnostics> {
    walk::parse(source, file_name)
}

/// Every table of a pipelines.toml with the keys it accepts (the table
/// named as docs/configuration.md heads it: `top level`, `[defaults]`,
/// `[pipelines.NAME]`, ...). For the reference's own test.
pub fn key_tables() -> &'static [(&'static str, &'static [&'static str])] {
    walk::TABLES
}

/// A whole, valid `pipelines.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// As written in `[defaults]`; already applied to every pipeline and task,
    /// kept for display and for commands that override them.
    pub defaults: Defaults,
    pub pipelines: BTreeMap<PipelineName, Pipeline>,
}

impl Config {
    pub fn pipeline(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines.get(name)
    }
}

/// One pipeline, with defaults already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    pub name: PipelineName,
    pub dataset: DatasetPath,
    pub schedule: Option<Schedule>,
    /// What a schedule does about ticks missed while the service was down.
    pub catchup: Catchup,
    pub on_push: Option<OnPush>,
    pub merge: MergePolicy,
    pub concurrency: Concurrency,
    /// Limit for a whole run.
    pub timeout: Option<Duration>,
    /// Name of the DVC remote to use instead of the repository's default.
    pub remote: Option<String>,
    /// Container image for tasks that name none (Kubernetes only).
    pub image: Option<String>,
    pub tasks: Dag,
    /// Hex md5 of everything that determines what a run of this pipeline does
    /// (its effective definition after defaults, excluding its name), so that
    /// a change to the pipeline itself can be told apart from other edits to
    /// the file.
    pub digest: String,
}

impl Pipeline {
    /// The image a task runs in: its own, else the pipeline's (which already
    /// includes `[defaults]`).
    pub fn image_for<'a>(&'a self, task: &'a Task) -> Option<&'a str> {
        task.image.as_deref().or(self.image.as_deref())
    }
}

/// One step of a pipeline: a command run in the run's workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub name: TaskName,
    /// Program and arguments, not a shell line; never empty.
    pub command: Vec<String>,
    /// Tasks of the same pipeline that must succeed first, as written.
    pub needs: Vec<TaskName>,
    pub env: BTreeMap<String, String>,
    /// Extra attempts after a failure (so 2 means up to 3 attempts);
    /// `[defaults] retries` when not set.
    pub retries: u32,
    /// Limit for one attempt; `[defaults] task_timeout` when not set.
    pub timeout: Option<Duration>,
    /// As written on the task; see [`Pipeline::image_for`] for the effective one.
    pub image: Option<String>,
    pub resources: Resources,
    /// Secrets or ConfigMaps whose keys become environment variables (Kubernetes).
    pub env_from: Vec<String>,
    pub node_selector: BTreeMap<String, String>,
    /// Taints the task's pods tolerate (Kubernetes).
    pub tolerations: Vec<Toleration>,
    pub service_account: Option<String>,
    pub image_pull_secrets: Vec<String>,
    /// Directory to run in, relative to the workspace and normalised;
    /// `None` means the workspace root.
    pub workdir: Option<String>,
}

/// Resource requests for a task on Kubernetes, as quantities
/// (`cpu = "500m"`, `memory = "1Gi"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub gpu: Option<u32>,
}

/// A pod toleration (`tolerations = [{ key = "nvidia.com/gpu", operator =
/// "Exists", effect = "NoSchedule" }]`), checked as Kubernetes would.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Toleration {
    pub key: Option<String>,
    /// `Equal` (the default) or `Exists`.
    pub operator: Option<String>,
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`; none means all.
    pub effect: Option<String>,
}

/// `[defaults]` as written: fallbacks for every pipeline and task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Defaults {
    pub image: Option<String>,
    pub merge: MergePolicy,
    pub concurrency: Concurrency,
    /// Default limit for a whole run.
    pub timeout: Option<Duration>,
    pub retries: u32,
    /// Default limit for one task attempt.
    pub task_timeout: Option<Duration>,
    pub remote: Option<String>,
}

/// What to do with a pointer commit once a run has produced one.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum MergePolicy {
    /// Leave it on `cairn/<pipeline>` for a person to review and merge.
    #[default]
    Review,
    /// Merge it as soon as the run succeeds (and checks pass, with a forge).
    Auto,
    /// Commit straight onto the target branch.
    Direct,
}

/// What to do when a run is triggered while another run of the same
/// pipeline is still going.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Concurrency {
    /// Drop the new trigger.
    Forbid,
    /// Cancel the running one and start the new one.
    Replace,
    /// Start the new one when the running one finishes.
    #[default]
    Queue,
}

/// What a schedule does, when the service starts again, about the ticks it
/// missed while it was down (within the service's bounded catch-up window).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Catchup {
    /// Skip them: only ticks that come on time run.
    None,
    /// Run the most recent missed tick, once.
    #[default]
    Latest,
    /// Run each missed tick, oldest first (bounded).
    All,
}

/// A value that is not one of an enum's spellings; shared by every `FromStr`
/// here so CLI flags and the config file say the same thing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} (expected one of: {})", expected.join(", "))]
pub struct UnknownVariant {
    what: &'static str,
    value: String,
    expected: &'static [&'static str],
}

impl UnknownVariant {
    pub(crate) fn expected(&self) -> &'static [&'static str] {
        self.expected
    }
}

macro_rules! spelled_enum {
    ($ty:ident, $what:literal, $($variant:ident = $text:literal),+) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
            const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, UnknownVariant> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    _ => Err(UnknownVariant { what: $what, value: s.to_string(), expected: Self::NAMES }),
                }
            }
        }
    };
}

spelled_enum!(
    MergePolicy,
    "merge policy",
    Review = "review",
    Auto = "auto",
    Direct = "direct"
);
spelled_enum!(
    Catchup,
    "catch-up policy",
    None = "none",
    Latest = "latest",
    All = "all"
);
spelled_enum!(
    Concurrency,
    "concurrency policy",
    Forbid = "forbid",
    Replace = "replace",
    Queue = "queue"
);
