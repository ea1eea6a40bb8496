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

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EnvFromSource, EnvVar, LocalObjectReference, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Pod, PodSecurityContext, PodSpec,
    ResourceRequirements, SecretEnvSource, SecurityContext, Toleration, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::crd::{
    PipelineRun, TaskTemplate, FETCH_STEP, LABEL_ATTEMPT, LABEL_PIPELINE, LABEL_RUN, LABEL_TASK,
    PUBLISH_STEP,
};
use super::settings::{ExecutorSettings, Workspace};

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

/// A Kubernetes name (and label value) from `parts`: lowercased, `_` turned
/// into `-`, at most 63 characters. When that changed the text, or it was
/// too long, an 8-hex digest of the original keeps distinct inputs distinct
/// (`A_b` and `a-b` would otherwise share a pod name).
pub fn object_name(parts: &[&str]) -> String {
    let joined = parts.join("-");
    let clean: String = joined
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            _ => '-',
        })
        .collect();
    if clean == joined && clean.len() <= 63 {
        return clean;
    }
    let hex = &crate::dvc::Md5::of_bytes(joined.as_bytes()).to_hex()[..8];
    let keep = clean.len().min(63 - 9);
    let head = clean[..keep].trim_end_matches(['-', '.']);
    format!("{head}-{hex}")
}

/// The name of the pod of `attempt` of `step` in run `run`.
pub fn pod_name(run: &str, step: &str, attempt: u32) -> String {
    object_name(&[run, step, &attempt.to_string()])
}

/// The label value naming a run (run names may be longer than a label allows).
pub fn run_label(run: &str) -> String {
    object_name(&[run])
}

/// The per-run claim's name, when the workspace is a claim per run.
pub fn run_claim_name(run: &str) -> String {
    object_name(&[run, "workspace"])
}

/// The label selector matching every pod of `run`.
pub fn run_selector(run: &str) -> String {
    format!("{LABEL_RUN}={}", run_label(run))
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

/// The claim made for one run, when the workspace comes from a template.
pub fn run_claim(run: &PipelineRun, settings: &ExecutorSettings) -> Option<PersistentVolumeClaim> {
    let Workspace::PerRun {
        storage_class,
        size,
        access_mode,
    } = &settings.workspace
    else {
        return None;
    };
    let run_name = run.metadata.name.as_deref()?;
    Some(PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(run_claim_name(run_name)),
            namespace: run.metadata.namespace.clone(),
            labels: Some(BTreeMap::from([
                (LABEL_RUN.to_string(), run_label(run_name)),
                (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
            ])),
            owner_references: owner_reference(run).map(|r| vec![r]),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![access_mode.clone()]),
            storage_class_name: storage_class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(size.clone()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    })
}

fn workspace_mount(run: &str, settings: &ExecutorSettings) -> VolumeMount {
    VolumeMount {
        name: "workspace".into(),
        mount_path: WORKSPACE_MOUNT.into(),
        // A sub-path per run: concurrent runs on one claim never meet.
        sub_path: match settings.workspace {
            Workspace::SharedClaim { .. } => Some(format!("runs/{}", run_label(run))),
            Workspace::PerRun { .. } => None,
        },
        ..Default::default()
    }
}

fn workspace_volume(run: &str, settings: &ExecutorSettings) -> Volume {
    let claim_name = match &settings.workspace {
        Workspace::SharedClaim { claim } => claim.clone(),
        Workspace::PerRun { .. } => run_claim_name(run),
    };
    Volume {
        name: "workspace".into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name,
            read_only: Some(false),
        }),
        ..Default::default()
    }
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
mod tests {
    use super::*;
    use crate::k8s::crd::{PipelineRunSpec, TaskToleration};

    fn run() -> PipelineRun {
        let mut run = PipelineRun::new(
            "ea-42",
            PipelineRunSpec {
                pipeline: "employee_attrition".into(),
                source_commit: "c0ffee".into(),
                reason: "push".into(),
                dataset: "datasets/ea.csv".into(),
                tasks: vec![TaskTemplate {
                    name: "modify_data".into(),
                    command: vec!["python3".into(), "etl/modify_data.py".into()],
                    env: BTreeMap::from([("ROWS".to_string(), "1".to_string())]),
                    retries: 2,
                    timeout_seconds: Some(600),
                    image: "python:3.12-slim".into(),
                    cpu: Some("500m".into()),
                    memory: Some("1Gi".into()),
                    gpu: Some(1),
                    env_from: vec!["warehouse".into()],
                    node_selector: BTreeMap::from([("disktype".to_string(), "ssd".to_string())]),
                    tolerations: vec![TaskToleration {
                        key: Some("nvidia.com/gpu".into()),
                        operator: Some("Exists".into()),
                        value: None,
                        effect: Some("NoSchedule".into()),
                    }],
                    service_account: Some("etl".into()),
                    image_pull_secrets: vec!["registry".into()],
                    workdir: Some("etl".into()),
                    ..TaskTemplate::default()
                }],
                timeout_seconds: None,
                cancel: false,
                source: None,
            },
        );
        run.metadata.namespace = Some("data".into());
        run.metadata.uid = Some("run-uid".into());
        run
    }

    #[test]
    fn names_are_valid_and_distinct() {
        assert_eq!(pod_name("ea-42", "extract", 1), "ea-42-extract-1");
        assert_eq!(pod_name("ea-42", "cairn.fetch", 2), "ea-42-cairn.fetch-2");
        let a = pod_name("ea-42", "Mod_Data", 1);
        let b = pod_name("ea-42", "mod-data", 1);
        assert_ne!(a, b);
        assert!(a.starts_with("ea-42-mod-data-1-"), "{a}");
        let long = pod_name(&"r".repeat(80), "t", 1);
        assert_eq!(long.len(), 63);
        assert_ne!(long, pod_name(&"r".repeat(81), "t", 1));
    }

    #[test]
    fn steps_wrap_the_tasks_in_fetch_and_publish() {
        let spec = run().spec;
        let plan = steps(&spec.tasks);
        let names: Vec<&str> = plan.iter().map(|(s, _)| s.name()).collect();
        assert_eq!(names, ["cairn.fetch", "modify_data", "cairn.publish"]);
        assert_eq!(plan[1].1, [0]);
        assert_eq!(plan[2].1, [0, 1]);
    }

    #[test]
    fn a_task_pod_carries_what_pipelines_toml_declares_and_no_secret() {
        let pod = step_pod(&run(), 1, 2, &ExecutorSettings::default()).unwrap();
        let value = serde_json::to_value(&pod).unwrap();
        let meta = &value["metadata"];
        // `_` is not allowed in a pod name: replaced, and a digest added.
        let name = meta["name"].as_str().unwrap();
        assert!(name.starts_with("ea-42-modify-data-2-"), "{name}");
        assert_eq!(name.len(), "ea-42-modify-data-2-".len() + 8);
        assert_eq!(meta["labels"]["cairn.dev/run"], "ea-42");
        assert_eq!(meta["labels"]["cairn.dev/attempt"], "2");
        assert_eq!(meta["annotations"]["cairn.dev/step"], "modify_data");
        assert_eq!(meta["ownerReferences"][0]["uid"], "run-uid");
        assert_eq!(meta["ownerReferences"][0]["controller"], true);
        let spec = &value["spec"];
        assert_eq!(spec["restartPolicy"], "Never");
        assert_eq!(spec["serviceAccountName"], "etl");
        assert_eq!(spec["activeDeadlineSeconds"], 600);
        assert_eq!(spec["nodeSelector"]["disktype"], "ssd");
        assert_eq!(spec["tolerations"][0]["key"], "nvidia.com/gpu");
        assert_eq!(spec["imagePullSecrets"][0]["name"], "registry");
        let c = &spec["containers"][0];
        assert_eq!(c["image"], "python:3.12-slim");
        assert_eq!(c["workingDir"], "/workspace/etl");
        assert_eq!(c["envFrom"][0]["secretRef"]["name"], "warehouse");
        assert_eq!(c["resources"]["requests"]["cpu"], "500m");
        assert_eq!(c["resources"]["limits"]["memory"], "1Gi");
        assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], "1");
        assert_eq!(c["volumeMounts"][0]["subPath"], "runs/ea-42");
        assert_eq!(
            spec["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "cairn-workspace"
        );
        let env: BTreeMap<String, String> = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().into(),
                    e["value"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(env["ROWS"], "1");
        assert_eq!(env["CAIRN_DATASET"], "/workspace/datasets/ea.csv");
        assert_eq!(env["CAIRN_TASK"], "modify_data");
        // Values only from pipelines.toml: secrets arrive by reference.
        assert!(c["env"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e.get("valueFrom").is_none()));
    }

    #[test]
    fn the_publish_pod_reports_through_its_termination_message() {
        let settings = ExecutorSettings::default();
        let pod = step_pod(&run(), 2, 1, &settings).unwrap();
        let value = serde_json::to_value(&pod).unwrap();
        let c = &value["spec"]["containers"][0];
        assert_eq!(c["image"], settings.cairn_image.as_str());
        assert_eq!(
            c["command"],
            serde_json::json!([
                "cairn",
                "publish",
                "datasets/ea.csv",
                "--repo",
                "/workspace",
                "--json",
                "--result-file",
                "/dev/termination-log"
            ])
        );
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["securityContext"]["runAsNonRoot"], true);
        assert_eq!(value["spec"]["serviceAccountName"], "cairn-worker");
        assert!(step_pod(&run(), 3, 1, &settings).is_none());
    }

    #[test]
    fn the_fetch_pod_restores_the_source_tree_from_the_remote_without_git() {
        let mut run = run();
        run.spec.source = Some(crate::k8s::crd::SourceTree {
            md5: "5ea40360f5b4ec688df672a4db9c17d1.dir".into(),
            size: Some(6),
            nfiles: Some(2),
            dvc_config: "[core]\n    remote = storage\n".into(),
            remote: Some("storage".into()),
            executables: vec!["etl/build.sh".into()],
        });
        let settings = ExecutorSettings::default();
        let fetch = serde_json::to_value(step_pod(&run, 0, 1, &settings).unwrap()).unwrap();
        let c = &fetch["spec"]["containers"][0];
        assert_eq!(
            c["command"],
            serde_json::json!([
                "cairn",
                "fetch",
                "datasets/ea.csv",
                "--repo",
                "/workspace",
                "--remote",
                "storage",
                "--source-tree",
                "5ea40360f5b4ec688df672a4db9c17d1.dir"
            ])
        );
        let config = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == SOURCE_DVC_CONFIG_ENV)
            .unwrap();
        assert_eq!(config["value"], "[core]\n    remote = storage\n");
        let modes = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == SOURCE_EXECUTABLES_ENV)
            .unwrap();
        assert_eq!(modes["value"], r#"["etl/build.sh"]"#);
        let text = fetch.to_string().to_lowercase();
        assert!(!text.contains("git"), "no git anything in the pod: {text}");
        // The publish step uses the same remote and needs no tree.
        let publish = serde_json::to_value(step_pod(&run, 2, 1, &settings).unwrap()).unwrap();
        let command = publish["spec"]["containers"][0]["command"].to_string();
        assert!(command.contains("\"--remote\",\"storage\""), "{command}");
        assert!(!command.contains("--source-tree"), "{command}");
    }

    #[test]
    fn a_per_run_workspace_is_a_claim_of_its_own() {
        let settings = ExecutorSettings {
            workspace: Workspace::PerRun {
                storage_class: Some("fast".into()),
                size: "10Gi".into(),
                access_mode: "ReadWriteOnce".into(),
            },
            ..ExecutorSettings::default()
        };
        let pod = serde_json::to_value(step_pod(&run(), 0, 1, &settings).unwrap()).unwrap();
        assert_eq!(
            pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "ea-42-workspace"
        );
        assert!(pod["spec"]["containers"][0]["volumeMounts"][0]
            .get("subPath")
            .is_none());
        let claim = serde_json::to_value(run_claim(&run(), &settings).unwrap()).unwrap();
        assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "10Gi");
        assert_eq!(claim["metadata"]["ownerReferences"][0]["uid"], "run-uid");
    }
}
