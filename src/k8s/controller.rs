//! The kube-runtime controller: PipelineRuns in, pods out.
//!
//! `reconcile` is a free function over a [`Context`] that carries every
//! dependency, so tests hand in a client pointed at a fake API server. Each
//! call reads the run afresh and lists its pods (a consistent read: a cache
//! could lag behind our own create and make us create twice), asks the pure
//! [`decide`] what to do, captures logs of pods about to go, writes the
//! status with the run's resourceVersion as a precondition (a stale view is
//! refused with 409 and retried instead of overwriting newer progress), and
//! only then creates and deletes pods.
//!
//! Reconciles are triggered by watches on the runs and on the pods they own,
//! never by polling; a requeue is asked only for a deadline (a retry backoff,
//! a pending or task timeout) and, as a safety net, every few minutes.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, Preconditions,
};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::crd::{PipelineRun, PipelineRunStatus, LABEL_ATTEMPT, LABEL_RUN};
use super::decide::{decide, ObservedPod, PodAction, PodPhase};
use super::events::transitions;
use super::pods::{owner_reference, run_claim, run_claim_name, run_selector, step_pod};
use super::settings::ExecutorSettings;
use super::throttle::Throttle;
use super::Error;

/// The longest a live run goes without a look, should a watch event be lost.
const SAFETY_REQUEUE: Duration = Duration::from_secs(300);
/// A log line longer than this is cut in the status (it is an object in etcd).
const MAX_LOG_LINE: usize = 400;

/// Everything a reconcile needs.
pub struct Context {
    pub client: Client,
    pub namespace: String,
    pub settings: ExecutorSettings,
    /// Client-side limit on the API calls reconciles make.
    pub throttle: Throttle,
    /// This replica's name: the reporting instance of its Events.
    pub identity: String,
}

impl Context {
    fn runs(&self) -> Api<PipelineRun> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
    fn claims(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
}

/// Runs the controller until `stop` is cancelled. Call it only while
/// leader (see [`super::lease`]).
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    let runs = ctx.runs();
    let pods = ctx.pods();
    if let Err(e) = sweep_orphans(&ctx).await {
        tracing::warn!("orphan sweep failed: {e}");
    }
    // The sweep lives in the same future as the controller, so stopping or
    // dropping one stops the other.
    let sweeper = async {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(ctx.settings.orphan_sweep) => {}
            }
            if let Err(e) = sweep_orphans(&ctx).await {
                tracing::warn!("orphan sweep failed: {e}");
            }
        }
    };
    let controller = Controller::new(runs, watcher::Config::default())
        .owns(pods, watcher::Config::default().labels(LABEL_RUN))
        .graceful_shutdown_on(stop.clone().cancelled_owned())
        .run(reconcile, error_policy, Arc::clone(&ctx))
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!("reconciled {}", object.name),
                Err(e) => tracing::warn!("reconcile failed: {e}"),
            }
        });
    tokio::join!(controller, sweeper);
}

fn error_policy(_run: Arc<PipelineRun>, error: &Error, _ctx: Arc<Context>) -> Action {
    // A conflict means our view was stale: look again right away.
    if error.is_conflict() {
        Action::requeue(Duration::from_millis(50))
    } else {
        Action::requeue(Duration::from_secs(2))
    }
}

/// One look at one run.
pub async fn reconcile(run: Arc<PipelineRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = run.metadata.name.clone().ok_or(Error::Unnamed)?;
    ctx.throttle.acquire().await;
    let Some(run) = ctx.runs().get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    if run.metadata.deletion_timestamp.is_some() {
        // The garbage collector removes the pods with their owner.
        return Ok(Action::await_change());
    }
    let uid = run.metadata.uid.clone().ok_or(Error::Unnamed)?;
    ctx.throttle.acquire().await;
    let listed = ctx
        .pods()
        .list(&ListParams::default().labels(&run_selector(&name)))
        .await?;
    let mut observed = Vec::new();
    for pod in &listed.items {
        if controller_uid(pod).as_deref() == Some(uid.as_str()) {
            if let Some(seen) = observe_pod(pod) {
                observed.push(seen);
            }
        } else {
            // Labelled as this run's but owned by another (an earlier run of
            // the same name): never ours, whatever its name says.
            delete_pod(
                &ctx,
                pod.metadata.name.as_deref(),
                pod.metadata.uid.as_deref(),
            )
            .await?;
        }
    }

    let mut decision = decide(
        &name,
        &run.spec,
        run.status.as_ref(),
        &observed,
        Utc::now(),
        &ctx.settings,
    );
    for action in &decision.actions {
        if let PodAction::Capture { step, pod } = action {
            let tail = capture_logs(&ctx, pod).await;
            if let (Some(lines), Some(status)) = (tail, decision.status.steps.get_mut(*step)) {
                status.log_tail = lines;
            }
        }
    }
    if run.status.as_ref() != Some(&decision.status) {
        write_status(&ctx, &run, &decision.status).await?;
        // Only after the conditional write: a stale look announces nothing.
        announce(&ctx, &run, &decision.status).await;
    }
    for action in &decision.actions {
        match action {
            PodAction::Create { step, attempt } => {
                if let Some(pod) = step_pod(&run, *step, *attempt, &ctx.settings) {
                    ctx.throttle.acquire().await;
                    match ctx.pods().create(&PostParams::default(), &pod).await {
                        Ok(_) => {}
                        // It exists: the next look adopts it, or deletes it
                        // if it is not ours.
                        Err(kube::Error::Api(e)) if e.code == 409 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            PodAction::Delete { pod, uid } => delete_pod(&ctx, Some(pod), Some(uid)).await?,
            PodAction::CreateClaim => {
                if let Some(claim) = run_claim(&run, &ctx.settings) {
                    ctx.throttle.acquire().await;
                    match ctx.claims().create(&PostParams::default(), &claim).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(e)) if e.code == 409 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            PodAction::DeleteClaim => {
                ctx.throttle.acquire().await;
                match ctx
                    .claims()
                    .delete(&run_claim_name(&name), &DeleteParams::default())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            PodAction::Capture { .. } => {}
        }
    }
    let requeue = match (
        decision.requeue_after.take(),
        decision.status.phase.is_finished(),
    ) {
        (Some(after), _) => Some(after.min(SAFETY_REQUEUE)),
        (None, false) => Some(SAFETY_REQUEUE),
        (None, true) => None,
    };
    Ok(match requeue {
        // A little past the deadline, so the next look sees it passed.
        Some(after) => Action::requeue(after + Duration::from_millis(20)),
        None => Action::await_change(),
    })
}

/// Publishes an Event on the run for every change [`transitions`] finds.
/// Events are for people; failing to write one never fails a reconcile.
async fn announce(ctx: &Context, run: &PipelineRun, status: &PipelineRunStatus) {
    let events = transitions(run.status.as_ref(), status);
    if events.is_empty() {
        return;
    }
    let recorder = Recorder::new(
        ctx.client.clone(),
        Reporter {
            controller: "cairn-controller".into(),
            instance: Some(ctx.identity.clone()),
        },
    );
    let reference = run.object_ref(&());
    for event in events {
        let event = Event {
            type_: if event.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: event.reason.into(),
            note: Some(event.note),
            action: "Reconcile".into(),
            secondary: None,
        };
        ctx.throttle.acquire().await;
        if let Err(e) = recorder.publish(&event, &reference).await {
            tracing::debug!(run = ?reference.name, "event {}: {e}", event.reason);
        }
    }
}

async fn write_status(
    ctx: &Context,
    run: &PipelineRun,
    status: &PipelineRunStatus,
) -> Result<(), Error> {
    let name = run.metadata.name.as_deref().unwrap_or_default();
    // The resourceVersion makes the write conditional: the API server
    // answers 409 if the run changed since we read it.
    let patch = json!({
        "metadata": { "resourceVersion": run.metadata.resource_version },
        "status": status,
    });
    ctx.throttle.acquire().await;
    ctx.runs()
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

async fn delete_pod(ctx: &Context, name: Option<&str>, uid: Option<&str>) -> Result<(), Error> {
    let Some(name) = name else { return Ok(()) };
    let params = DeleteParams {
        // Delete this pod, not whatever carries its name by now.
        preconditions: uid.map(|uid| Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    ctx.throttle.acquire().await;
    match ctx.pods().delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The last lines of a pod's output; `None` when they cannot be read (the
/// pod never started, or is gone).
async fn capture_logs(ctx: &Context, pod: &str) -> Option<Vec<String>> {
    let params = LogParams {
        tail_lines: Some(i64::from(ctx.settings.log_tail_lines)),
        ..LogParams::default()
    };
    ctx.throttle.acquire().await;
    match ctx.pods().logs(pod, &params).await {
        Ok(text) => Some(
            text.lines()
                .map(|line| {
                    if line.len() > MAX_LOG_LINE {
                        let mut end = MAX_LOG_LINE;
                        while !line.is_char_boundary(end) {
                            end -= 1;
                        }
                        format!("{}…", &line[..end])
                    } else {
                        line.to_string()
                    }
                })
                .collect(),
        ),
        Err(e) => {
            tracing::debug!("no logs from {pod}: {e}");
            None
        }
    }
}

/// Deletes pods cairn made whose run is gone (its PipelineRun deleted with
/// `--cascade=orphan`, say, or its owner reference lost): by owner uid, so a
/// new run that reuses a name does not shelter its predecessor's pods.
pub async fn sweep_orphans(ctx: &Context) -> Result<usize, Error> {
    ctx.throttle.acquire().await;
    let runs = ctx.runs().list(&ListParams::default()).await?;
    let live: std::collections::HashSet<String> = runs
        .items
        .iter()
        .filter_map(|r| r.metadata.uid.clone())
        .collect();
    ctx.throttle.acquire().await;
    let pods = ctx
        .pods()
        .list(&ListParams::default().labels(&format!("{LABEL_RUN},{LABEL_ATTEMPT}")))
        .await?;
    let mut removed = 0;
    for pod in &pods.items {
        let owner = controller_uid(pod);
        if owner.as_ref().is_none_or(|uid| !live.contains(uid)) {
            tracing::info!(
                "deleting orphan pod {}",
                pod.metadata.name.as_deref().unwrap_or("?")
            );
            delete_pod(
                ctx,
                pod.metadata.name.as_deref(),
                pod.metadata.uid.as_deref(),
            )
            .await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The uid of the PipelineRun that controls `pod`, if one does.
fn controller_uid(pod: &Pod) -> Option<String> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.kind == "PipelineRun" && r.controller == Some(true))
        .map(|r| r.uid.clone())
}

/// A Kubernetes time (whatever crate represents it) as a chrono time.
fn time_of<T: serde::Serialize>(t: &T) -> Option<DateTime<Utc>> {
    let text = serde_json::to_value(t).ok()?;
    DateTime::parse_from_rfc3339(text.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What the decision needs from a pod; `None` for a pod without cairn's
/// step annotation and attempt label (not one we made).
pub fn observe_pod(pod: &Pod) -> Option<ObservedPod> {
    let meta = &pod.metadata;
    let step = meta.annotations.as_ref()?.get("cairn.dev/step")?.clone();
    let attempt = meta.labels.as_ref()?.get(LABEL_ATTEMPT)?.parse().ok()?;
    let status = pod.status.as_ref();
    let phase = match status.and_then(|s| s.phase.as_deref()) {
        Some("Running") => PodPhase::Running,
        Some("Succeeded") => PodPhase::Succeeded,
        Some("Failed") => PodPhase::Failed,
        Some("Unknown") => PodPhase::Unknown,
        _ => PodPhase::Pending,
    };
    let container = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|all| all.first());
    let state = container.and_then(|c| c.state.as_ref());
    let waiting = state.and_then(|s| s.waiting.as_ref()).map(|w| {
        (
            w.reason.clone().unwrap_or_default(),
            w.message.clone().unwrap_or_default(),
        )
    });
    let terminated = state.and_then(|s| s.terminated.as_ref());
    let running_since = state
        .and_then(|s| s.running.as_ref())
        .and_then(|r| r.started_at.as_ref())
        .and_then(time_of);
    let started = running_since
        .or_else(|| {
            terminated
                .and_then(|t| t.started_at.as_ref())
                .and_then(time_of)
        })
        .or_else(|| status.and_then(|s| s.start_time.as_ref()).and_then(time_of));
    let pod_reason = status.and_then(|s| s.reason.clone());
    Some(ObservedPod {
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        step,
        attempt,
        phase,
        created: meta.creation_timestamp.as_ref().and_then(time_of),
        started,
        finished: terminated
            .and_then(|t| t.finished_at.as_ref())
            .and_then(time_of),
        waiting,
        exit_code: terminated.map(|t| t.exit_code),
        reason: pod_reason.or_else(|| terminated.and_then(|t| t.reason.clone())),
        message: status
            .and_then(|s| s.message.clone())
            .filter(|m| !m.is_empty()),
        termination_message: terminated.and_then(|t| t.message.clone()),
        deleting: meta.deletion_timestamp.is_some(),
    })
}

/// Whether `pod` is controlled by `run` (by uid).
pub fn owned_by(pod: &Pod, run: &PipelineRun) -> bool {
    owner_reference(run).is_some_and(|r| controller_uid(pod).as_deref() == Some(r.uid.as_str()))
}
