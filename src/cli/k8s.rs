//! `cairn crd` and `cairn plan --kubernetes`: what Kubernetes mode would
//! install and create, printed as YAML, with no cluster involved.

use std::path::Path;
use std::process::ExitCode;

use cairn::k8s::{crd, pods, trigger, ExecutorSettings};
use cairn::reconciler::RepoSource;

/// Prints the PipelineRun CustomResourceDefinition.
pub fn crd() -> anyhow::Result<ExitCode> {
    print!("{}", crd::crd_yaml()?);
    Ok(ExitCode::SUCCESS)
}

/// Prints, for each pipeline, the pods a run of it at HEAD would create
/// (first attempts), one YAML document each.
pub fn plan_pods(repo: &Path, only: Option<&str>) -> anyhow::Result<ExitCode> {
    let source = RepoSource::open(repo)?;
    let pipelines: Vec<_> = match only {
        Some(name) => vec![source.pipeline(name)?],
        None => source.config().pipelines.values().collect(),
    };
    let settings = ExecutorSettings::default();
    let commit = source.head_commit().to_string();
    let mut documents = Vec::new();
    for pipeline in pipelines {
        let name = pods::object_name(&[pipeline.name.as_str(), "plan"]);
        let run = trigger::pipeline_run(&name, pipeline, &commit, "plan")?;
        for index in 0..pods::steps(&run.spec.tasks).len() {
            if let Some(pod) = pods::step_pod(&run, index, 1, &settings) {
                documents.push(serde_yaml_ng::to_string(&pod)?);
            }
        }
    }
    print!("{}", documents.join("---\n"));
    Ok(ExitCode::SUCCESS)
}
