//! Kubernetes artefacts that ship or print: the committed CRD must be what
//! the code generates, and `cairn plan --kubernetes` shows real pod specs.

use crate::common;

use std::path::Path;

use common::{assert_success, stdout, Scratch};

#[test]
fn the_committed_crd_is_what_the_code_generates() {
    let generated = cairn::k8s::crd::crd_yaml().expect("CRD as YAML");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/crd.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "deploy/crd.yaml differs from the PipelineRun type; regenerate it with\n  cargo run -q -- crd > deploy/crd.yaml\n--- generated:\n{generated}"
    );
}

#[test]
fn cairn_crd_prints_the_crd() {
    let out = common::cairn(Path::new(env!("CARGO_MANIFEST_DIR")), &["crd"]);
    assert_success(&out, "cairn crd");
    let text = stdout(&out);
    assert_eq!(text, cairn::k8s::crd::crd_yaml().unwrap());
    let crd: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(crd["metadata"]["name"], "pipelineruns.cairn.dev");
    assert_eq!(
        crd["spec"]["versions"][0]["subresources"]["status"],
        serde_json::json!({})
    );
    let columns: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Pipeline", "Phase", "Commit", "Message", "Age"]);
}

#[test]
fn plan_in_kubernetes_mode_prints_the_pods_a_run_would_create() {
    let scratch = Scratch::example();
    let out = scratch.cairn(&["plan", "--kubernetes", "employee_attrition"]);
    assert_success(&out, "cairn plan --kubernetes");
    let text = stdout(&out);
    let pods: Vec<serde_json::Value> = text
        .split("\n---\n")
        .map(|doc| serde_yaml_ng::from_str(doc).expect("YAML document"))
        .collect();
    let steps: Vec<&str> = pods
        .iter()
        .map(|p| {
            p["metadata"]["annotations"]["cairn.dev/step"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, ["cairn.fetch", "modify_data", "cairn.publish"]);
    let task = &pods[1];
    assert_eq!(task["kind"], "Pod");
    assert_eq!(task["spec"]["containers"][0]["image"], "python:3.12-slim");
    assert_eq!(
        task["spec"]["containers"][0]["command"],
        serde_json::json!(["python3", "etl/modify_data.py"])
    );
    assert_eq!(task["spec"]["activeDeadlineSeconds"], 600);
    assert_eq!(
        task["metadata"]["labels"]["cairn.dev/pipeline"]
            .as_str()
            .unwrap()
            .len(),
        "employee-attrition".len() + 9
    );
    assert!(
        !text.contains("token"),
        "no credentials in pod specs:\n{text}"
    );
}
