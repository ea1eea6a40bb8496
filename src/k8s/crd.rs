//! The `PipelineRun` custom resource: one run of one pipeline on a cluster.
//!
//! The trigger side (webhook, schedule, `/cairn` command) resolves the
//! pipeline at the source commit and writes everything a run needs into the
//! spec, so the controller never reads git and never needs its credentials.
//! The status is the run record on Kubernetes: every step's phase, attempt,
//! times, exit code, reason and log tail, so `kubectl get pipelineruns` and
//! `kubectl describe` tell the story without cairn's database.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The status is the run state machine's own record of the run.
pub use crate::pipeline::status::{
    PublishResult, RunPhase, RunStatus as PipelineRunStatus, StepPhase, StepStatus,
};

/// API group of every cairn resource.
pub const GROUP: &str = "cairn.dev";
/// Label naming the PipelineRun a pod belongs to.
pub const LABEL_RUN: &str = "cairn.dev/run";
pub const LABEL_PIPELINE: &str = "cairn.dev/pipeline";
pub const LABEL_TASK: &str = "cairn.dev/task";
pub const LABEL_ATTEMPT: &str = "cairn.dev/attempt";
/// Step name of the built-in fetch step. The dot keeps it apart from every
/// user task name (those allow only letters, digits, `_` and `-`) while
/// staying a valid label value.
pub const FETCH_STEP: &str = "cairn.fetch";
/// Step name of the built-in publish step.
pub const PUBLISH_STEP: &str = "cairn.publish";

/// What to run: a pipeline resolved at its source commit.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "cairn.dev",
    version = "v1alpha1",
    kind = "PipelineRun",
    plural = "pipelineruns",
    shortname = "prun",
    namespaced,
    status = "PipelineRunStatus",
    printcolumn = r#"{"name":"Pipeline","type":"string","jsonPath":".spec.pipeline"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Commit","type":"string","jsonPath":".spec.sourceCommit"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.message","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRunSpec {
    pub pipeline: String,
    /// The commit whose pipelines.toml and files the run uses.
    pub source_commit: String,
    /// What started it: `push`, `schedule`, `command`, `cli`.
    pub reason: String,
    /// The dataset path the pipeline versions, relative to the repository.
    pub dataset: String,
    /// The pipeline's tasks as resolved from pipelines.toml (defaults applied).
    pub tasks: Vec<TaskTemplate>,
    /// Limit for the whole run, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// Set to true to cancel the run: its pods are deleted and every
    /// unfinished step is marked cancelled. The record stays.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel: bool,
    /// The repository at the source commit, published by the trigger side
    /// to the pipeline's remote, which the fetch step restores into the
    /// workspace. `None`: the workspace is expected to hold it already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceTree>,
}

/// The source tree of a run as a DVC directory object. The side that has
/// git (the service) publishes it; the fetch pod, which has no git and no
/// git credentials, restores it from the remote and checks every file's
/// md5 as for any fetch. Content addressing means a commit that changed one
/// file uploads one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceTree {
    /// The tree's `.dir` object id (`<32 hex>.dir`).
    pub md5: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nfiles: Option<u64>,
    /// Where the remote is, as a `.dvc/config` text: the pipeline's remote
    /// from the committed file at the source commit, with only its URL,
    /// endpoint, region, profile and timeouts. Never `config.local` nor a
    /// credential option; credentials come from the pod's service account.
    pub dvc_config: String,
    /// The remote named by the pipeline's `remote`, when it is not the
    /// default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// The tree's files that git marks executable (relative paths): a DVC
    /// manifest does not record modes, so the fetch step sets them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executables: Vec<String>,
}

/// One user task, as pipelines.toml declares it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskTemplate {
    pub name: String,
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Extra attempts after a failure.
    #[serde(default)]
    pub retries: u32,
    /// Limit for one attempt, in seconds, from the moment the pod runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    /// Secrets whose keys become environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<TaskToleration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<String>,
    /// Directory to run in, relative to the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
}

/// A pod toleration, with Kubernetes' field names and meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskToleration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `Equal` or `Exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
}

/// The CRD as YAML, exactly as `cairn crd` prints it and deploy/ holds it.
pub fn crd_yaml() -> Result<String, serde_yaml_ng::Error> {
    use kube::CustomResourceExt;
    serde_yaml_ng::to_string(&PipelineRun::crd())
}
