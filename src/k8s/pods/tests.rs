//! Pod and claim specs, checked for what they must and must not carry.

use super::*;
use crate::k8s::crd::{PipelineRunSpec, TaskToleration};
use crate::k8s::settings::Workspace;

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
