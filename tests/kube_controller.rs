//! The Kubernetes controller against a fake API server speaking the real
//! wire format, with a scripted kubelet (tests/support/fake_kube.rs).

use crate::support::fake_kube;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn::k8s::controller::{self, Context};
use cairn::k8s::crd::{PipelineRun, PipelineRunSpec, TaskTemplate};
use cairn::k8s::lease::LeaderElection;
use cairn::k8s::throttle::Throttle;
use cairn::k8s::{ExecutorSettings, Workspace};
use fake_kube::{Behavior, FakeKube};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const NS: &str = "data";

fn settings() -> ExecutorSettings {
    ExecutorSettings {
        cairn_image: "cairn:test".into(),
        workspace: Workspace::SharedClaim {
            claim: "cairn-workspace".into(),
        },
        pending_timeout: Duration::from_secs(3),
        retry_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        step_retries: 1,
        log_tail_lines: 10,
        keep_failed_pods: Duration::from_secs(3600),
        orphan_sweep: Duration::from_millis(200),
        ..ExecutorSettings::default()
    }
}

fn task(name: &str, needs: &[&str], retries: u32) -> TaskTemplate {
    TaskTemplate {
        name: name.into(),
        command: vec!["python3".into(), format!("etl/{name}.py")],
        needs: needs.iter().map(|s| s.to_string()).collect(),
        retries,
        image: "python:3.12-slim".into(),
        env: BTreeMap::from([("ROWS".to_string(), "1".to_string())]),
        env_from: vec!["warehouse-credentials".into()],
        cpu: Some("500m".into()),
        memory: Some("1Gi".into()),
        ..TaskTemplate::default()
    }
}

fn run_of(name: &str, tasks: Vec<TaskTemplate>) -> PipelineRun {
    PipelineRun::new(
        name,
        PipelineRunSpec {
            pipeline: "employee_attrition".into(),
            source_commit: "0123456789abcdef0123456789abcdef01234567".into(),
            reason: "push".into(),
            dataset: "datasets/employee_attrition.csv".into(),
            tasks,
            timeout_seconds: None,
            cancel: false,
            source: None,
        },
    )
}

fn three_tasks() -> Vec<TaskTemplate> {
    vec![
        task("extract", &[], 0),
        task("transform", &["extract"], 0),
        task("report", &["transform"], 0),
    ]
}

/// A controller (no leader election) running until its token is cancelled
/// or its task aborted.
fn start_controller(
    fake: &FakeKube,
    settings: ExecutorSettings,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let ctx = Arc::new(Context {
        client: fake.client(NS),
        namespace: NS.into(),
        settings,
        throttle: Throttle::new(200.0, 50),
        identity: "controller-test".into(),
    });
    let stop = CancellationToken::new();
    let handle = tokio::spawn(controller::run(ctx, stop.clone()));
    (stop, handle)
}

async fn create(fake: &FakeKube, run: &PipelineRun) {
    let api: Api<PipelineRun> = Api::namespaced(fake.client(NS), NS);
    api.create(&PostParams::default(), run)
        .await
        .expect("create run");
}

/// Waits until `check` holds for the run's stored JSON.
async fn wait_for(fake: &FakeKube, run: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        if let Some(object) = fake.get("pipelineruns", NS, run) {
            if check(&object) {
                return object;
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!("timed out waiting for {what}; run is now:\n{object:#}");
            }
        } else if start.elapsed() > Duration::from_secs(20) {
            panic!("timed out waiting for {what}; run {run} does not exist");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn phase(object: &Value) -> &str {
    object["status"]["phase"].as_str().unwrap_or("")
}

fn finished(object: &Value) -> bool {
    matches!(phase(object), "Succeeded" | "Failed" | "Cancelled")
}

fn step<'a>(object: &'a Value, name: &str) -> &'a Value {
    object["status"]["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no step {name} in {object:#}"))
}

/// Pods created more than once under the same name (run, step and attempt).
fn duplicates(fake: &FakeKube) -> Vec<String> {
    let mut seen = BTreeMap::new();
    for pod in fake.created_pods() {
        *seen.entry(pod.name).or_insert(0) += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k)
        .collect()
}

fn pods_of(fake: &FakeKube, run: &str) -> Vec<Value> {
    fake.list("pods", NS)
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["cairn.dev/run"] == run)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_task_run_goes_end_to_end() {
    let fake = FakeKube::start().await;
    fake.script(
        "transform",
        None,
        Behavior::succeed(&["reading 13420 bytes", "wrote 3 columns"]),
    );
    let (stop, handle) = start_controller(&fake, settings());
    create(&fake, &run_of("ea-1", three_tasks())).await;

    let done = wait_for(&fake, "ea-1", "the run to finish", finished).await;
    assert_eq!(phase(&done), "Succeeded", "{done:#}");
    assert_eq!(
        done["status"]["result"]["md5"],
        "d1a0b622cd467ce72b35413f361b44b6"
    );
    assert_eq!(done["status"]["result"]["size"], 13420);
    for name in [
        "cairn.fetch",
        "extract",
        "transform",
        "report",
        "cairn.publish",
    ] {
        let s = step(&done, name);
        assert_eq!(s["phase"], "Succeeded", "{name}: {s:#}");
        assert_eq!(s["attempt"], 1, "{name}");
        assert_eq!(s["exitCode"], 0, "{name}");
        assert!(
            s["startedAt"].is_string() && s["finishedAt"].is_string(),
            "{s:#}"
        );
    }
    assert_eq!(
        step(&done, "transform")["logTail"],
        json!(["reading 13420 bytes", "wrote 3 columns"])
    );

    // One pod per step, in dependency order, and none left behind.
    let created: Vec<String> = fake.created_pods().into_iter().map(|p| p.step).collect();
    assert_eq!(
        created,
        [
            "cairn.fetch",
            "extract",
            "transform",
            "report",
            "cairn.publish"
        ]
    );
    assert!(duplicates(&fake).is_empty());
    let left = wait_until(|| pods_of(&fake, "ea-1").is_empty()).await;
    assert!(
        left,
        "successful pods are deleted: {:#?}",
        pods_of(&fake, "ea-1")
    );

    stop.cancel();
    handle.await.unwrap();
}

async fn wait_until(check: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_is_retried_then_fails_and_its_dependents_never_start() {
    let fake = FakeKube::start().await;
    fake.script(
        "transform",
        None,
        Behavior::fail(
            3,
            &[
                "Traceback (most recent call last):",
                "KeyError: 'Attrition'",
            ],
        ),
    );
    let (stop, handle) = start_controller(&fake, settings());
    let mut tasks = three_tasks();
    tasks[1].retries = 1;
    create(&fake, &run_of("ea-2", tasks)).await;

    let done = wait_for(&fake, "ea-2", "the run to finish", finished).await;
    assert_eq!(phase(&done), "Failed", "{done:#}");
    let transform = step(&done, "transform");
    assert_eq!(transform["phase"], "Failed");
    assert_eq!(transform["attempt"], 2);
    assert_eq!(transform["exitCode"], 3);
    assert_eq!(transform["reason"], "Error");
    assert_eq!(transform["logTail"][1], "KeyError: 'Attrition'");
    assert_eq!(step(&done, "report")["phase"], "Skipped");
    assert_eq!(step(&done, "cairn.publish")["phase"], "Skipped");
    assert!(
        done["status"]["message"]
            .as_str()
            .unwrap()
            .contains("transform failed after 2 attempts"),
        "{done:#}"
    );

    let created: Vec<(String, String)> = fake
        .created_pods()
        .into_iter()
        .map(|p| (p.step, p.attempt))
        .collect();
    assert!(
        !created
            .iter()
            .any(|(s, _)| s == "report" || s == "cairn.publish"),
        "{created:?}"
    );
    assert_eq!(created.iter().filter(|(s, _)| s == "transform").count(), 2);
    let told = events_until(&fake, "ea-2", "RunFailed").await;
    assert!(
        told.iter().any(|(r, n, t)| r == "StepFailed"
            && n.starts_with("transform failed on attempt 2")
            && t == "Warning"),
        "{told:#?}"
    );
    assert!(
        told.iter()
            .any(|(r, _, t)| r == "RunFailed" && t == "Warning"),
        "{told:#?}"
    );
    // Failed pods are kept for inspection (keep time: an hour here).
    let kept: Vec<String> = pods_of(&fake, "ea-2")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept, ["ea-2-transform-1", "ea-2-transform-2"]);

    stop.cancel();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_pod_is_retried() {
    let fake = FakeKube::start().await;
    fake.script(
        "extract",
        Some(1),
        Behavior::Evict {
            run_for: Duration::from_millis(30),
        },
    );
    let (stop, handle) = start_controller(&fake, settings());
    let mut tasks = three_tasks();
    tasks[0].retries = 2;
    create(&fake, &run_of("ea-evict", tasks)).await;

    let done = wait_for(&fake, "ea-evict", "the run to finish", finished).await;
    assert_eq!(phase(&done), "Succeeded", "{done:#}");
    assert_eq!(step(&done, "extract")["attempt"], 2);
    let evicted = fake
        .get("pods", NS, "ea-evict-extract-1")
        .expect("failed pod kept");
    assert_eq!(evicted["status"]["reason"], "Evicted");

    // `kubectl describe` tells the story in Events on the run (published
    // just after the status that they tell).
    let told = events_until(&fake, "ea-evict", "RunSucceeded").await;
    let has =
        |reason: &str, note: &str| told.iter().any(|(r, n, _)| r == reason && n.contains(note));
    assert!(has("StepStarted", "extract attempt 1 started"), "{told:#?}");
    assert!(
        has("StepRetrying", "extract attempt 1 failed (Evicted"),
        "{told:#?}"
    );
    assert!(has("StepStarted", "extract attempt 2 started"), "{told:#?}");
    assert!(has("RunSucceeded", "published"), "{told:#?}");
    let retrying = told.iter().find(|(r, _, _)| r == "StepRetrying").unwrap();
    assert_eq!(retrying.2, "Warning");
    // Each change is told once, however many looks saw it.
    let starts = told
        .iter()
        .filter(|(r, n, _)| r == "StepStarted" && n.contains("extract attempt 1"))
        .count();
    assert_eq!(starts, 1, "{told:#?}");
    stop.cancel();
    handle.await.unwrap();
}

/// [`events_of`] once one with `reason` is among them.
async fn events_until(fake: &FakeKube, run: &str, reason: &str) -> Vec<(String, String, String)> {
    let start = Instant::now();
    loop {
        let told = events_of(fake, run);
        if told.iter().any(|(r, _, _)| r == reason) {
            return told;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no {reason} event about {run}: {told:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (reason, note, type) of every Event about the run `run`.
fn events_of(fake: &FakeKube, run: &str) -> Vec<(String, String, String)> {
    fake.list("events", NS)
        .into_iter()
        .filter(|e| e["regarding"]["name"] == run && e["regarding"]["kind"] == "PipelineRun")
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (text("reason"), text("note"), text("type"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_stays_pending_fails_on_the_pending_timeout() {
    let fake = FakeKube::start().await;
    fake.script("extract", None, Behavior::StayPending);
    let mut s = settings();
    s.pending_timeout = Duration::from_secs(2);
    let (stop, handle) = start_controller(&fake, s);
    create(&fake, &run_of("ea-3", three_tasks())).await;

    let started = Instant::now();
    let done = wait_for(&fake, "ea-3", "the run to finish", finished).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before the timeout"
    );
    assert_eq!(phase(&done), "Failed");
    let extract = step(&done, "extract");
    assert_eq!(extract["reason"], "PendingTimeout", "{extract:#}");
    assert!(
        extract["message"]
            .as_str()
            .unwrap()
            .contains("stayed Pending for 2s"),
        "{extract:#}"
    );
    assert!(
        wait_until(|| fake.get("pods", NS, "ea-3-extract-1").is_none()).await,
        "the stuck pod is deleted"
    );
    stop.cancel();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_pull_error_fails_at_once_without_retries() {
    let fake = FakeKube::start().await;
    fake.script("extract", None, Behavior::ImagePullError);
    let mut s = settings();
    s.pending_timeout = Duration::from_secs(60);
    let (stop, handle) = start_controller(&fake, s);
    let mut tasks = three_tasks();
    tasks[0].retries = 3;
    create(&fake, &run_of("ea-4", tasks)).await;

    let started = Instant::now();
    let done = wait_for(&fake, "ea-4", "the run to finish", finished).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(phase(&done), "Failed");
    let extract = step(&done, "extract");
    assert_eq!(extract["reason"], "ErrImagePull");
    assert_eq!(extract["attempt"], 1, "no retry can fix a missing image");
    assert!(
        extract["message"]
            .as_str()
            .unwrap()
            .contains("failed to pull"),
        "{extract:#}"
    );
    stop.cancel();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_mid_run_resumes_without_duplicate_pods() {
    let fake = FakeKube::start().await;
    fake.script(
        "transform",
        None,
        Behavior::Succeed {
            run_for: Duration::from_millis(1500),
            logs: vec!["slow".into()],
            message: None,
        },
    );
    let (_stop, handle) = start_controller(&fake, settings());
    create(&fake, &run_of("ea-5", three_tasks())).await;
    wait_for(&fake, "ea-5", "transform to run", |o| {
        o["status"]["steps"].as_array().is_some_and(|steps| {
            steps
                .iter()
                .any(|s| s["name"] == "transform" && s["phase"] == "Running")
        })
    })
    .await;
    // Killed: no graceful shutdown, no lease release.
    handle.abort();
    let _ = handle.await;
    // Meanwhile the API server forgets the history the old watches knew.
    fake.compact();
    fake.drop_watches();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (stop, handle) = start_controller(&fake, settings());
    let done = wait_for(&fake, "ea-5", "the run to finish", finished).await;
    assert_eq!(phase(&done), "Succeeded", "{done:#}");
    assert!(duplicates(&fake).is_empty(), "{:?}", fake.created_pods());
    assert_eq!(step(&done, "transform")["attempt"], 1);
    let created: Vec<String> = fake.created_pods().into_iter().map(|p| p.step).collect();
    assert_eq!(
        created,
        [
            "cairn.fetch",
            "extract",
            "transform",
            "report",
            "cairn.publish"
        ]
    );
    stop.cancel();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_deletes_the_runs_pods() {
    let fake = FakeKube::start().await;
    fake.script("transform", None, Behavior::Hang);
    let (stop, handle) = start_controller(&fake, settings());
    create(&fake, &run_of("ea-6", three_tasks())).await;
    wait_for(&fake, "ea-6", "transform to run", |o| {
        o["status"]["steps"].as_array().is_some_and(|steps| {
            steps
                .iter()
                .any(|s| s["name"] == "transform" && s["phase"] == "Running")
        })
    })
    .await;
    let api: Api<PipelineRun> = Api::namespaced(fake.client(NS), NS);
    api.patch(
        "ea-6",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"cancel": true}})),
    )
    .await
    .unwrap();

    let done = wait_for(&fake, "ea-6", "the run to stop", finished).await;
    assert_eq!(phase(&done), "Cancelled");
    assert_eq!(step(&done, "transform")["phase"], "Cancelled");
    assert_eq!(
        step(&done, "transform")["logTail"],
        json!(["working"]),
        "logs captured before deletion"
    );
    assert_eq!(step(&done, "report")["phase"], "Cancelled");
    assert!(
        wait_until(|| pods_of(&fake, "ea-6").is_empty()).await,
        "{:#?}",
        pods_of(&fake, "ea-6")
    );
    assert!(!fake.created_pods().iter().any(|p| p.step == "report"));
    stop.cancel();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_whose_run_is_gone_are_deleted() {
    let fake = FakeKube::start().await;
    // A pod from a run deleted with --cascade=orphan: labelled as cairn's,
    // owned by a uid that no PipelineRun has.
    fake.insert(
        "pods",
        NS,
        json!({
            "metadata": {
                "name": "old-run-extract-1",
                "labels": {"cairn.dev/run": "old-run", "cairn.dev/task": "extract", "cairn.dev/attempt": "1"},
                "annotations": {"cairn.dev/step": "extract"},
                "ownerReferences": [{
                    "apiVersion": "cairn.dev/v1alpha1", "kind": "PipelineRun", "name": "old-run",
                    "uid": "00000000-0000-0000-0000-000000000000", "controller": true,
                }],
            },
            "spec": {"containers": [{"name": "step", "image": "busybox"}]},
        }),
    );
    // And a pod nobody labelled for cairn, which must be left alone.
    fake.insert(
        "pods",
        NS,
        json!({"metadata": {"name": "someone-else"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    );
    fake.script("transform", None, Behavior::Hang);
    let (stop, handle) = start_controller(&fake, settings());
    assert!(wait_until(|| fake.get("pods", NS, "old-run-extract-1").is_none()).await);
    assert!(fake.get("pods", NS, "someone-else").is_some());

    // A live run's pods survive the sweep; once the run is deleted without
    // cascading, the sweep removes what it left.
    create(&fake, &run_of("ea-7", three_tasks())).await;
    wait_for(&fake, "ea-7", "transform to run", |o| {
        o["status"]["steps"].as_array().is_some_and(|steps| {
            steps
                .iter()
                .any(|s| s["name"] == "transform" && s["phase"] == "Running")
        })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        fake.get("pods", NS, "ea-7-transform-1").is_some(),
        "a live run's pod stays"
    );
    fake.delete("pipelineruns", NS, "ea-7", "Orphan");
    assert!(
        wait_until(|| fake.get("pods", NS, "ea-7-transform-1").is_none()).await,
        "orphan swept"
    );
    stop.cancel();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_replicas_one_leads_and_the_other_takes_over() {
    let fake = FakeKube::start().await;
    let replica = |identity: &str| {
        let election = Arc::new(LeaderElection::new(
            fake.client(NS),
            NS,
            "cairn-controller",
            identity,
            Duration::from_secs(2),
        ));
        let ctx = Arc::new(Context {
            client: fake.client(NS),
            namespace: NS.into(),
            settings: settings(),
            throttle: Throttle::new(200.0, 50),
            identity: identity.to_string(),
        });
        let stop = CancellationToken::new();
        let leader = election.is_leader();
        let handle = {
            let election = Arc::clone(&election);
            let stop = stop.clone();
            tokio::spawn(async move {
                election
                    .run(stop, move |token| controller::run(Arc::clone(&ctx), token))
                    .await
            })
        };
        (stop, handle, leader)
    };
    let (stop_a, handle_a, leader_a) = replica("replica-a");
    let (stop_b, handle_b, leader_b) = replica("replica-b");
    let is =
        |flag: &Arc<std::sync::atomic::AtomicBool>| flag.load(std::sync::atomic::Ordering::SeqCst);
    assert!(wait_until(|| is(&leader_a) || is(&leader_b)).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(is(&leader_a) != is(&leader_b), "exactly one leader");

    create(&fake, &run_of("ea-8", three_tasks())).await;
    let done = wait_for(&fake, "ea-8", "the run to finish", finished).await;
    assert_eq!(phase(&done), "Succeeded");
    assert!(duplicates(&fake).is_empty());

    // The leader goes away; the other takes over and runs the next run.
    let (stop_leader, handle_leader, stop_other, handle_other, other) = if is(&leader_a) {
        (stop_a, handle_a, stop_b, handle_b, leader_b)
    } else {
        (stop_b, handle_b, stop_a, handle_a, leader_a)
    };
    stop_leader.cancel();
    handle_leader.await.unwrap();
    assert!(wait_until(|| is(&other)).await, "the other replica leads");
    let lease = fake.get("leases", NS, "cairn-controller").expect("lease");
    assert!(
        lease["spec"]["leaseTransitions"].as_i64().unwrap() >= 1,
        "{lease:#}"
    );
    create(&fake, &run_of("ea-9", three_tasks())).await;
    let done = wait_for(&fake, "ea-9", "the second run to finish", finished).await;
    assert_eq!(phase(&done), "Succeeded");
    assert!(duplicates(&fake).is_empty());
    stop_other.cancel();
    handle_other.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_speaks_conflicts_and_gone_like_an_api_server() {
    let fake = FakeKube::start().await;
    let api: Api<PipelineRun> = Api::namespaced(fake.client(NS), NS);
    let created = api
        .create(&PostParams::default(), &run_of("ea-10", three_tasks()))
        .await
        .unwrap();
    // A duplicate trigger: 409 AlreadyExists, which create_run calls a duplicate.
    let again = cairn::k8s::trigger::create_run(&api, &run_of("ea-10", three_tasks()))
        .await
        .unwrap();
    assert_eq!(again, cairn::k8s::trigger::Created::Duplicate);
    // A write from a stale read: 409 Conflict.
    api.patch(
        "ea-10",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"reason": "cli"}})),
    )
    .await
    .unwrap();
    let stale = json!({"metadata": {"resourceVersion": created.metadata.resource_version}, "status": {"phase": "Running"}});
    let err = api
        .patch_status("ea-10", &PatchParams::default(), &Patch::Merge(stale))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 409),
        "{err:?}"
    );

    // A watch from a compacted resourceVersion: 410 Gone, in the stream.
    fake.compact();
    let url = format!(
        "{}/apis/cairn.dev/v1alpha1/namespaces/{NS}/pipelineruns?watch=true&resourceVersion={}",
        fake.url,
        created.metadata.resource_version.unwrap()
    );
    let body = raw_get(&url).await;
    let event: Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    assert_eq!(event["type"], "ERROR");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");

    // Label selectors on lists.
    for (name, task) in [("p1", "a"), ("p2", "b")] {
        fake.insert(
            "pods",
            NS,
            json!({"metadata": {"name": name, "labels": {"cairn.dev/task": task}}, "spec": {"containers": []}}),
        );
    }
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(fake.client(NS), NS);
    let listed = pods
        .list(&kube::api::ListParams::default().labels("cairn.dev/task=b"))
        .await
        .unwrap();
    let names: Vec<_> = listed
        .items
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["p2"]);
    assert!(listed.metadata.resource_version.is_some());
}

/// One GET over a plain socket (`Connection: close`), the response read
/// to its end; returns the body's JSON lines (chunk sizes dropped).
async fn raw_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut socket = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    body.lines()
        .filter(|line| line.starts_with('{'))
        .collect::<Vec<_>>()
        .join("\n")
}
