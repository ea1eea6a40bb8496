//! The service's side of a PipelineRun: create it, follow it to its end
//! with a watch, cancel it. The controller (`controller.rs`) is the other
//! side; the two meet only through the API server, so the service never
//! talks to pods and the controller never talks to git or the forge.

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;

use super::crd::{PipelineRun, LABEL_RUN};
use super::pods::{object_name, run_label};
use super::trigger::{create_run, Created};
use super::Error;

/// Annotation holding a run's exact id: the object's name is the id made a
/// valid Kubernetes name, which may have lost characters.
pub const ANNOTATION_RUN_ID: &str = "cairn.dev/run-id";
/// Annotation naming the replica of the service that delivers a finished
/// run (its pointer commit, pull request and commit status).
pub const ANNOTATION_DELIVERER: &str = "cairn.dev/deliverer";
/// Annotation set once the run's delivery is done, naming who did it.
pub const ANNOTATION_DELIVERED: &str = "cairn.dev/delivered";

/// Who delivers a finished run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This replica: it won the claim, or held it before a restart.
    Ours,
    /// Another replica holds the claim and has not said it is done.
    Theirs { by: String },
    /// Delivered already, by `by`.
    Delivered { by: String },
}

/// The PipelineRun name of the service's run `run_id`: deterministic, so a
/// second trigger of the same run (a retried delivery, a restarted service)
/// finds the first one instead of starting another.
pub fn run_name(run_id: &str) -> String {
    object_name(&[run_id])
}

/// PipelineRuns of one namespace, as the service uses them.
#[derive(Clone)]
pub struct Runs {
    api: Api<PipelineRun>,
    namespace: String,
}

impl Runs {
    pub fn new(client: kube::Client, namespace: &str) -> Runs {
        Runs {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Creates `run` for the service's run `run_id` (named [`run_name`],
    /// labelled so a watch can select it alone), unless it exists.
    pub async fn create(&self, run_id: &str, mut run: PipelineRun) -> Result<Created, Error> {
        let name = run_name(run_id);
        run.metadata.name = Some(name.clone());
        run.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(LABEL_RUN.to_string(), run_label(&name));
        run.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(ANNOTATION_RUN_ID.to_string(), run_id.to_string());
        create_run(&self.api, &run).await
    }

    /// Asks the controller to cancel the run (`spec.cancel`); it deletes the
    /// run's pods and marks its unfinished steps cancelled.
    pub async fn cancel(&self, run_id: &str) -> Result<(), Error> {
        let patch = serde_json::json!({"spec": {"cancel": true}});
        self.api
            .patch(
                &run_name(run_id),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        Ok(())
    }

    /// Claims the delivery of run `run_id` for replica `identity`. Several
    /// replicas may follow one run (each found the same push), and exactly
    /// one may deliver it: the claim is an annotation written with the
    /// resourceVersion just read as a precondition, so of two replicas
    /// claiming at once one write is refused with 409, and that replica
    /// reads the winner's name. `take_over`: claim even if another replica
    /// holds it (it claimed long ago and never said it was done).
    pub async fn claim_delivery(
        &self,
        run_id: &str,
        identity: &str,
        take_over: bool,
    ) -> Result<Claim, Error> {
        let name = run_name(run_id);
        loop {
            let run = self.api.get(&name).await?;
            let annotation = |key: &str| {
                run.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(key))
                    .cloned()
            };
            if let Some(by) = annotation(ANNOTATION_DELIVERED) {
                return Ok(Claim::Delivered { by });
            }
            match annotation(ANNOTATION_DELIVERER) {
                Some(by) if by == identity => return Ok(Claim::Ours),
                Some(by) if !take_over => return Ok(Claim::Theirs { by }),
                _ => {}
            }
            let patch = serde_json::json!({
                "metadata": {
                    "resourceVersion": run.metadata.resource_version,
                    "annotations": { ANNOTATION_DELIVERER: identity },
                }
            });
            match self
                .api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(Claim::Ours),
                // Someone wrote first: read again and see who.
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Records that `identity` delivered run `run_id`.
    pub async fn mark_delivered(&self, run_id: &str, identity: &str) -> Result<(), Error> {
        let patch = serde_json::json!({
            "metadata": { "annotations": { ANNOTATION_DELIVERED: identity } }
        });
        self.api
            .patch(
                &run_name(run_id),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        Ok(())
    }

    /// Follows the run with a watch until its phase is final, calling
    /// `seen` with every version of it, and returns the final one. The
    /// watcher re-lists after a 410 Gone and re-watches after a dropped
    /// stream (with backoff), so neither loses the end of the run.
    pub async fn follow(
        &self,
        run_id: &str,
        mut seen: impl FnMut(&PipelineRun),
    ) -> Result<PipelineRun, Error> {
        let name = run_name(run_id);
        let config =
            watcher::Config::default().labels(&format!("{LABEL_RUN}={}", run_label(&name)));
        let mut events = watcher::watcher(self.api.clone(), config)
            .default_backoff()
            .boxed();
        while let Some(event) = events.next().await {
            let run = match event {
                Ok(Event::Apply(run) | Event::InitApply(run)) => run,
                Ok(Event::Delete(run)) if run.metadata.name.as_deref() == Some(&name) => {
                    return Err(Error::RunDeleted { name });
                }
                Ok(_) => continue,
                Err(e) => {
                    // The watcher retries by itself; say why it is quiet.
                    tracing::warn!(run = %name, "watching the PipelineRun: {e}");
                    continue;
                }
            };
            if run.metadata.name.as_deref() != Some(&name) {
                continue;
            }
            seen(&run);
            if run.status.as_ref().is_some_and(|s| s.phase.is_finished()) {
                return Ok(run);
            }
        }
        Err(Error::RunDeleted { name })
    }
}
