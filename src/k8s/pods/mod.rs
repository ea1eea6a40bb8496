//! Pod specs for the steps of a run (pure: no client, no clock).
//!
//! Every pod a run creates is built here, so `cairn plan --kubernetes` shows
//! exactly what the controller would create. Rules that keep runs apart and
//! secrets out:
//! - the workspace is the run's own: a sub-path `runs/<run>` of a shared
//!   claim, or a claim made for the run alone;
//! - secrets reach a task only by reference (`envFrom` secretRef), never by
//!   value, and no git credential is ever part of a pod;
//! - user tasks run the user's image with only what pipelines.toml declares;
//!   only the built-in fetch and publish steps run cairn's image with the
//!   worker service account that can reach the remote.

mod names;
mod workspace;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EnvFromSource, EnvVar, LocalObjectReference, Pod, PodSecurityContext, PodSpec,
    ResourceRequirements, SecretEnvSource, SecurityContext, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use workspace::{workspace_mount, workspace_volume};

use super::crd::{
    PipelineRun, TaskTemplate, FETCH_STEP, LABEL_ATTEMPT, LABEL_PIPELINE, LABEL_RUN, LABEL_TASK,
    PUBLISH_STEP,
};
use super::settings::ExecutorSettings;

pub use names::{object_name, pod_name, run_claim_name, run_label, run_selector};
pub use workspace::run_claim;

/// Where the workspace is mounted in every step's container.
pub const WORKSPACE_MOUNT: &str = "/workspace";
/// Where a container's termination message goes (Kubernetes' default path).
pub const TERMINATION_LOG: &str = "/dev/termination-log";
/// The variable carrying the committed `.dvc/config` text to the fetch
/// step (non-secret: URL, endpoint, region; never `config.local`).
pub const SOURCE_DVC_CONFIG_ENV: &str = "CAIRN_SOURCE_DVC_CONFIG";
/// The variable through which the fetch step gets the source tree's
/// executable files, as a JSON array of relative paths.
pub const SOURCE_EXECUTABLES_ENV: &str = "CAIRN_SOURCE_EXECUTABLES";
/// The container name in every step pod.
pub const CONTAINER: &str = "step";
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "cairn");

/// A step of a run as the controller schedules it: the fetch step, a user
/// task, or the publish step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step<'a> {
    Fetch,
    Task(&'a TaskTemplate),
    Publish,
}

impl Step<'_> {
    pub fn name(&self) -> &str {
        match self {
            Step::Fetch => FETCH_STEP,
            Step::Task(t) => &t.name,
            Step::Publish => PUBLISH_STEP,
        }
    }
}

/// The steps of a run in plan order, each with the indexes of the steps it
/// needs. User tasks without `needs` wait for the fetch step; the publish
/// step waits for every user task.
pub fn steps(tasks: &[TaskTemplate]) -> Vec<(Step<'_>, Vec<usize>)> {
    let index_of = |name: &str| tasks.iter().position(|t| t.name == name).map(|i| i + 1);
    let mut out = vec![(Step::Fetch, Vec::new())];
    for task in tasks {
        let mut needs: Vec<usize> = task.needs.iter().filter_map(|n| index_of(n)).collect();
        if needs.is_empty() {
            needs.push(0);
        }
        out.push((Step::Task(task), needs));
    }
    out.push((Step::Publish, (0..=tasks.len()).collect()));
    out
}

/// The pod of `attempt` of step `index` of `run`; `None` when the index is
/// out of range.
pub fn step_pod(
    run: &PipelineRun,
    index: usize,
    attempt: u32,
    settings: &ExecutorSettings,
) -> Option<Pod> {
    let run_name = run.metadata.name.as_deref().unwrap_or_default();
    let all = steps(&run.spec.tasks);
    let (step, _) = all.get(index)?;
    let name = pod_name(run_name, step.name(), attempt);
    let mut labels = BTreeMap::from([
        (LABEL_RUN.to_string(), run_label(run_name)),
        (
            LABEL_PIPELINE.to_string(),
            object_name(&[&run.spec.pipeline]),
        ),
        (LABEL_TASK.to_string(), object_name(&[step.name()])),
        (LABEL_ATTEMPT.to_string(), attempt.to_string()),
    ]);
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    // Labels are shortened names; annotations keep the exact ones.
    let annotations = BTreeMap::from([
        ("cairn.dev/run-name".to_string(), run_name.to_string()),
        ("cairn.dev/step".to_string(), step.name().to_string()),
    ]);

    let dataset = format!("{WORKSPACE_MOUNT}/{}", run.spec.dataset);
    let mut env = vec![
        env_var("CAIRN_WORKSPACE", WORKSPACE_MOUNT),
        env_var("CAIRN_DATASET", &dataset),
        env_var("CAIRN_RUN_ID", run_name),
        env_var("CAIRN_PIPELINE", &run.spec.pipeline),
        env_var("CAIRN_TASK", step.name()),
        env_var("CAIRN_ATTEMPT", &attempt.to_string()),
    ];
    let container = match step {
        Step::Fetch | Step::Publish => {
            let mut command = vec!["cairn".to_string()];
            match step {
                Step::Fetch => command.extend([
                    "fetch".into(),
                    run.spec.dataset.clone(),
                    "--repo".into(),
                    WORKSPACE_MOUNT.into(),
                ]),
                _ => command.extend([
                    "publish".into(),
                    run.spec.dataset.clone(),
                    "--repo".into(),
                    WORKSPACE_MOUNT.into(),
                    "--json".into(),
                    // The result travels back through the termination
                    // message: no side channel, no shared file to race on.
                    "--result-file".into(),
                    TERMINATION_LOG.into(),
                ]),
            }
            if let Some(source) = &run.spec.source {
                if let Some(remote) = &source.remote {
                    command.extend(["--remote".into(), remote.clone()]);
                }
                if matches!(step, Step::Fetch) {
                    // The repository is not in the workspace yet: the fetch
                    // step restores it first. The remote's settings come
                    // with it, since `.dvc/config` is part of the tree.
                    command.extend(["--source-tree".into(), source.md5.clone()]);
                    env.push(env_var(SOURCE_DVC_CONFIG_ENV, &source.dvc_config));
                    if !source.executables.is_empty() {
                        let list = serde_json::to_string(&source.executables)
                            .expect("a list of strings serializes");
                        env.push(env_var(SOURCE_EXECUTABLES_ENV, &list));
                    }
                }
            }
            Container {
                name: CONTAINER.into(),
                image: Some(settings.cairn_image.clone()),
                command: Some(command),
                working_dir: Some(WORKSPACE_MOUNT.into()),
                env: Some(env),
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([
                        ("cpu".to_string(), Quantity("100m".into())),
                        ("memory".to_string(), Quantity("128Mi".into())),
                    ])),
                    ..Default::default()
                }),
                security_context: Some(SecurityContext {
                    run_as_non_root: Some(true),
                    allow_privilege_escalation: Some(false),
                    read_only_root_filesystem: Some(true),
                    ..Default::default()
                }),
                termination_message_path: Some(TERMINATION_LOG.into()),
                termination_message_policy: Some("FallbackToLogsOnError".into()),
                volume_mounts: Some(vec![workspace_mount(run_name, settings)]),
                ..Default::default()
            }
        }
        Step::Task(task) => {
            // The task's own variables first, so cairn's names win on a clash
            // (pipelines.toml cannot set CAIRN_*, but be explicit).
            let mut all: Vec<EnvVar> = task
                .env
                .iter()
                .filter(|(k, _)| !k.starts_with("CAIRN_"))
                .map(|(k, v)| env_var(k, v))
                .collect();
            all.append(&mut env);
            env = all;
            let workdir = match &task.workdir {
                Some(dir) => format!("{WORKSPACE_MOUNT}/{dir}"),
                None => WORKSPACE_MOUNT.to_string(),
            };
            Container {
                name: CONTAINER.into(),
                image: Some(task.image.clone()),
                command: Some(task.command.clone()),
                working_dir: Some(workdir),
                env: Some(env),
                env_from: non_empty(
                    task.env_from
                        .iter()
                        .map(|secret| EnvFromSource {
                            secret_ref: Some(SecretEnvSource {
                                name: secret.clone(),
                                optional: Some(false),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                ),
                resources: task_resources(task),
                termination_message_policy: Some("FallbackToLogsOnError".into()),
                volume_mounts: Some(vec![workspace_mount(run_name, settings)]),
                ..Default::default()
            }
        }
    };

    let (service_account, automount, node_selector, tolerations, pull_secrets, deadline) =
        match step {
            Step::Task(task) => (
                task.service_account.clone(),
                // A task that names no service account gets no API token.
                Some(task.service_account.is_some()),
                task.node_selector.clone(),
                task.tolerations
                    .iter()
                    .map(|t| Toleration {
                        key: t.key.clone(),
                        operator: t.operator.clone(),
                        value: t.value.clone(),
                        effect: t.effect.clone(),
                        toleration_seconds: None,
                    })
                    .collect(),
                task.image_pull_secrets.clone(),
                task.timeout_seconds,
            ),
            _ => (
                Some(settings.worker_service_account.clone()),
                // IRSA and Pod Identity need the projected token.
                Some(true),
                BTreeMap::new(),
                Vec::new(),
                settings.cairn_image_pull_secrets.clone(),
                None,
            ),
        };

    Some(Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: run.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: owner_reference(run).map(|r| vec![r]),
            ..Default::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            service_account_name: service_account,
            automount_service_account_token: automount,
            node_selector: non_empty_map(node_selector),
            tolerations: non_empty(tolerations),
            image_pull_secrets: non_empty(
                pull_secrets
                    .into_iter()
                    .map(|name| LocalObjectReference { name })
                    .collect(),
            ),
            // The kubelet enforces the task timeout even while no controller
            // is leader; the controller enforces it too, from its own clock.
            active_deadline_seconds: deadline.map(|s| s as i64),
            security_context: Some(PodSecurityContext {
                // Lets a non-root image write into a fresh volume.
                fs_group: Some(settings.fs_group),
                ..Default::default()
            }),
            containers: vec![container],
            volumes: Some(vec![workspace_volume(run_name, settings)]),
            ..Default::default()
        }),
        status: None,
    })
}

/// The controller reference that makes the run own its pods: Kubernetes'
/// garbage collector deletes them with the run, and re-adoption checks it.
pub fn owner_reference(run: &PipelineRun) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: "cairn.dev/v1alpha1".into(),
        kind: "PipelineRun".into(),
        name: run.metadata.name.clone()?,
        uid: run.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// Requests from pipelines.toml; memory is also the limit (a pod that
/// outgrows its request is better killed with `OOMKilled` than left to
/// starve its node), and GPUs, which Kubernetes only takes as limits, too.
fn task_resources(task: &TaskTemplate) -> Option<ResourceRequirements> {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    if let Some(cpu) = &task.cpu {
        requests.insert("cpu".to_string(), Quantity(cpu.clone()));
    }
    if let Some(memory) = &task.memory {
        requests.insert("memory".to_string(), Quantity(memory.clone()));
        limits.insert("memory".to_string(), Quantity(memory.clone()));
    }
    if let Some(gpu) = task.gpu.filter(|n| *n > 0) {
        limits.insert("nvidia.com/gpu".to_string(), Quantity(gpu.to_string()));
    }
    if requests.is_empty() && limits.is_empty() {
        return None;
    }
    Some(ResourceRequirements {
        requests: non_empty_map(requests),
        limits: non_empty_map(limits),
        ..Default::default()
    })
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        value_from: None,
    }
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn non_empty_map<K, V>(map: BTreeMap<K, V>) -> Option<BTreeMap<K, V>> {
    (!map.is_empty()).then_some(map)
}

#[cfg(test)]
mod tests;
