//! PipelineRuns from pipelines.toml: what every trigger creates.
//!
//! The pipeline is resolved at the source commit on the trigger's side,
//! which has the repository, and written into the spec whole, so the
//! controller needs neither git nor its credentials. A PipelineRun is named
//! after its run id (`k8s::runs`), so creating the same run twice answers
//! 409 and is reported as a duplicate, not an error.

use kube::api::{Api, PostParams};

use super::crd::{PipelineRun, PipelineRunSpec, TaskTemplate, TaskToleration};
use super::Error;
use crate::config::Pipeline;

/// The PipelineRun for `pipeline` as of `commit`.
pub fn pipeline_run(
    name: &str,
    pipeline: &Pipeline,
    commit: &str,
    reason: &str,
) -> Result<PipelineRun, Error> {
    let mut tasks = Vec::new();
    for task_name in pipeline.tasks.order() {
        let task = pipeline.tasks.get(task_name);
        let image = pipeline
            .image_for(task)
            .ok_or_else(|| Error::NoImage {
                pipeline: pipeline.name.as_str().to_string(),
                task: task_name.as_str().to_string(),
            })?
            .to_string();
        tasks.push(TaskTemplate {
            name: task_name.as_str().to_string(),
            command: task.command.clone(),
            needs: task.needs.iter().map(|n| n.as_str().to_string()).collect(),
            env: task.env.clone(),
            retries: task.retries,
            timeout_seconds: task.timeout.map(|t| t.as_secs().max(1)),
            image,
            cpu: task.resources.cpu.clone(),
            memory: task.resources.memory.clone(),
            gpu: task.resources.gpu,
            env_from: task.env_from.clone(),
            node_selector: task.node_selector.clone(),
            tolerations: task
                .tolerations
                .iter()
                .map(|t| TaskToleration {
                    key: t.key.clone(),
                    operator: t.operator.clone(),
                    value: t.value.clone(),
                    effect: t.effect.clone(),
                })
                .collect(),
            service_account: task.service_account.clone(),
            image_pull_secrets: task.image_pull_secrets.clone(),
            workdir: task.workdir.clone(),
        });
    }
    Ok(PipelineRun::new(
        name,
        PipelineRunSpec {
            pipeline: pipeline.name.as_str().to_string(),
            source_commit: commit.to_string(),
            reason: reason.to_string(),
            dataset: pipeline.dataset.as_str().to_string(),
            tasks,
            timeout_seconds: pipeline.timeout.map(|t| t.as_secs().max(1)),
            cancel: false,
            source: None,
        },
    ))
}

/// Whether a create made the run or found it there already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    Duplicate,
}

/// Creates `run` unless a run of that name exists.
pub async fn create_run(api: &Api<PipelineRun>, run: &PipelineRun) -> Result<Created, Error> {
    match api.create(&PostParams::default(), run).await {
        Ok(_) => Ok(Created::New),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(Created::Duplicate),
        Err(e) => Err(e.into()),
    }
}
