//! `cairn serve` with `executor = "kubernetes"`, end to end: the real
//! binary, configured by its documented variables, takes a push from the
//! fake GitHub, publishes the source tree to an S3 remote (an in-process
//! s3s server), creates a PipelineRun on the fake API server; the real
//! controller (in process) makes pods of it, and the fake kubelet *really
//! runs* each pod's command (`cairn fetch`, the user's shell task, `cairn
//! publish`) as a local process with `/workspace` mapped to a folder. The
//! publish step's termination message reaches the service, which opens the
//! pull request. Nothing in this test reads git in a pod: the fetch pod gets
//! the repository from the remote.

use crate::support;

use crate::support::fake_github;
use crate::support::fake_kube;
use crate::support::served;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cairn::k8s::controller::{self, Context};
use cairn::k8s::throttle::Throttle;
use cairn::k8s::{ExecutorSettings, Workspace};
use fake_github::git;
use fake_kube::{Behavior, Exec, FakeKube};
use served::*;
use support::server::{ACCESS_KEY, BUCKET, SECRET_KEY};
use support::{FaultPlan, S3Server};
use tokio_util::sync::CancellationToken;

const NS: &str = "data";
const PIPELINE: &str = "table";
const PREFIX: &str = "store";
const COMMITTED_SECRET: &str = "committed-by-mistake-0xdeadbeef";

fn config(build: &str) -> String {
    config_with(build, "queue")
}

fn config_with(build: &str, concurrency: &str) -> String {
    format!(
        r#"[pipelines.{PIPELINE}]
dataset = "data/table.csv"
merge = "review"
concurrency = "{concurrency}"
image = "busybox:1.36"
on_push = {{ paths = ["etl/**"] }}

[pipelines.{PIPELINE}.tasks.build]
command = ["sh", "-c", "{build}"]
"#
    )
}

/// A hosted repository whose remote is the S3 server, the fake API server
/// with a kubelet that executes pods, and the controller.
struct Cluster {
    hosted: Hosted,
    kube: FakeKube,
    s3: S3Server,
    kubeconfig: std::path::PathBuf,
    stop: CancellationToken,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn cluster(build: &str, workspace: Workspace) -> Cluster {
    cluster_with(&config(build), workspace)
}

fn cluster_with(pipelines_toml: &str, workspace: Workspace) -> Cluster {
    let hosted = Hosted::new(pipelines_toml);
    let runtime = &hosted._runtime;
    let kube = runtime.block_on(FakeKube::start());
    let s3 = runtime.block_on(S3Server::start(FaultPlan::none()));
    // With a credential committed by mistake: it must not travel further.
    let dvc = format!(
        "[core]\n    remote = storage\n['remote \"storage\"']\n    url = s3://{BUCKET}/{PREFIX}\n    endpointurl = {}\n    region = us-east-1\n    secret_access_key = {COMMITTED_SECRET}\n",
        s3.endpoint
    );
    hosted
        .world
        .push(&[(".dvc/config", &dvc)], "Keep the data on S3");
    let root = hosted.world.data.parent().unwrap().join("nodes");
    kube.script_default(Behavior::Exec(Exec {
        root,
        cairn: env!("CARGO_BIN_EXE_cairn").into(),
        // What the worker service account's IRSA role gives the pod.
        env: aws_env(),
    }));
    let kubeconfig = hosted.world.data.parent().unwrap().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {NS}\n\
             current-context: fake\nusers:\n- name: fake\n  user: {{}}\n",
            kube.url
        ),
    )
    .unwrap();
    let stop = CancellationToken::new();
    let ctx = Arc::new(Context {
        client: runtime.block_on(async { kube.client(NS) }),
        namespace: NS.into(),
        settings: ExecutorSettings {
            cairn_image: "cairn:test".into(),
            workspace,
            retry_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..ExecutorSettings::default()
        },
        throttle: Throttle::new(200.0, 50),
        identity: "controller-test".into(),
    });
    runtime.spawn(controller::run(ctx, stop.clone()));
    Cluster {
        hosted,
        kube,
        s3,
        kubeconfig,
        stop,
    }
}

fn aws_env() -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec()
}

impl Cluster {
    fn serve(&self) -> Served {
        self.serve_stopping_at(None)
    }

    /// Another replica of the service on the same cluster and GitHub: its
    /// own name and its own data folder (an emptyDir of its own).
    fn serve_replica(&self, name: &str) -> Served {
        let kubeconfig = self.kubeconfig.display().to_string();
        let data = self.hosted.world.data.parent().unwrap().join(name);
        let data = data.display().to_string();
        let mut env: Vec<(&str, &str)> = vec![
            ("CAIRN_EXECUTOR", "kubernetes"),
            ("CAIRN_KUBERNETES_NAMESPACE", NS),
            ("KUBECONFIG", &kubeconfig),
            ("HOSTNAME", name),
            ("CAIRN_DATA_DIR", &data),
        ];
        let aws = aws_env();
        env.extend(aws.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let served = serve(&self.hosted.world, &self.hosted.fake, &env);
        served.wait_ready();
        served
    }

    /// `cairn serve`, stopping at `failpoint` if given (see cairn::failpoint).
    fn serve_stopping_at(&self, failpoint: Option<&str>) -> Served {
        let kubeconfig = self.kubeconfig.display().to_string();
        let mut env: Vec<(&str, &str)> = vec![
            ("CAIRN_EXECUTOR", "kubernetes"),
            ("CAIRN_KUBERNETES_NAMESPACE", NS),
            ("KUBECONFIG", &kubeconfig),
        ];
        if let Some(point) = failpoint {
            env.push((cairn::failpoint::ENV, point));
        }
        let aws = aws_env();
        env.extend(aws.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let served = serve(&self.hosted.world, &self.hosted.fake, &env);
        served.wait_ready();
        served
    }

    /// The md5 the pointer on the proposal branch names.
    fn proposed_md5(&self) -> Option<String> {
        pointer_md5_at(
            &self.hosted.world.origin,
            &format!("refs/heads/cairn/{PIPELINE}"),
            "data/table.csv.dvc",
        )
    }

    fn pipeline_runs(&self) -> Vec<serde_json::Value> {
        self.kube.list("pipelineruns", NS)
    }

    /// A person's commit of `rows` to the ETL input, announced by a push.
    fn push_rows(&self, served: &mut Served, rows: &str, message: &str) -> String {
        push_and_notify(
            &self.hosted.fake,
            &self.hosted.world,
            served,
            &[("etl/rows.csv", rows)],
            message,
        )
    }

    /// Waits until the user's `build` step has a pod.
    fn wait_for_build_pod(&self) {
        wait("the build pod", Duration::from_secs(60), || {
            self.kube
                .created_pods()
                .iter()
                .any(|p| p.step == "build")
                .then_some(())
        });
    }
}

/// The workspace every run shares, one sub-path each.
fn shared_claim() -> Workspace {
    Workspace::SharedClaim {
        claim: "cairn-workspace".into(),
    }
}

fn md5_hex(bytes: &[u8]) -> String {
    cairn::dvc::Md5::of_bytes(bytes).to_hex()
}

fn on_remote(s3: &S3Server, md5: &str) -> bool {
    s3.object_path(&format!("{PREFIX}/files/md5/{}/{}", &md5[..2], &md5[2..]))
        .is_file()
}

fn wait_for_pull(c: &Cluster) -> fake_github::FakePull {
    wait("a pull request", Duration::from_secs(90), || {
        open_pulls(&c.hosted.fake).into_iter().next()
    })
}

#[test]
fn a_push_runs_on_the_cluster_and_its_result_becomes_a_pull_request() {
    let c = cluster(
        "mkdir -p data && cat etl/rows.csv > data/table.csv",
        shared_claim(),
    );
    let mut served = c.serve();
    let rows = "id,name\n1,ada\n2,bob\n";
    let commit = c.push_rows(&mut served, rows, "Add bob");

    let pull = wait_for_pull(&c);
    let md5 = c.proposed_md5().expect("a pointer on the proposal branch");
    assert_eq!(md5, md5_hex(rows.as_bytes()), "the task's real output");
    assert!(on_remote(&c.s3, &md5), "the new version is on S3");
    let body = pull.body.unwrap_or_default();
    assert!(body.contains(&md5[..8]), "{body}");
    // The data never reached the service; the table diff is read from S3.
    assert!(body.contains("- **Rows:** 2\n"), "{body}");
    assert!(body.contains("bob"), "the sample rows: {body}");
    assert_eq!(
        final_status(&c.hosted.fake, &commit, &format!("cairn/{PIPELINE}")).state,
        "success"
    );

    // One PipelineRun, named after the run, with the source tree on the
    // remote and nothing secret in it.
    let runs = c.pipeline_runs();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let run = &runs[0];
    let run_id = format!("{PIPELINE}-{}", &commit[..12]);
    assert_eq!(run["metadata"]["name"], run_id);
    assert_eq!(run["status"]["phase"], "Succeeded");
    assert_eq!(run["status"]["result"]["md5"], md5.as_str());
    let tree = run["spec"]["source"]["md5"].as_str().unwrap();
    let tree = tree.strip_suffix(".dir").expect("a directory object");
    assert!(
        on_remote_dir(&c.s3, tree),
        "the source tree's manifest is on S3"
    );
    let text = run.to_string();
    for secret in [SECRET_KEY, ACCESS_KEY, TOKEN, SECRET, COMMITTED_SECRET] {
        assert!(!text.contains(secret), "a secret in the PipelineRun");
    }
    for pod in c.kube.list("pods", NS) {
        let text = pod.to_string();
        for secret in [SECRET_KEY, ACCESS_KEY, TOKEN, SECRET, COMMITTED_SECRET] {
            assert!(!text.contains(secret), "a secret in a pod spec: {text}");
        }
    }
    // Each step had exactly one pod.
    let mut steps: Vec<String> = c.kube.created_pods().into_iter().map(|p| p.step).collect();
    steps.sort();
    assert_eq!(steps, ["build", "cairn.fetch", "cairn.publish"]);

    // The service mirrored the steps into its store: the run API shows them.
    let reply = served.get(&format!("/api/v1/runs/{run_id}"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(json["run"]["phase"], "succeeded", "{json:#}");
    let attempts: Vec<(String, String)> = json["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["task"].as_str().unwrap().to_string(),
                a["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for step in ["cairn.fetch", "build", "cairn.publish"] {
        assert!(
            attempts.contains(&(step.to_string(), "succeeded".to_string())),
            "{step} in {attempts:?}"
        );
    }

    // A second change runs again; the unchanged source files are not sent
    // again (content addressing), and the pull request moves on.
    let rows2 = "id,name\n1,ada\n2,bob\n3,cy\n";
    let before = count_objects(&c.s3);
    c.push_rows(&mut served, rows2, "Add cy");
    let md5_2 = wait("the pointer to move", Duration::from_secs(90), || {
        c.proposed_md5().filter(|m| *m == md5_hex(rows2.as_bytes()))
    });
    assert!(on_remote(&c.s3, &md5_2));
    // New: etl/rows.csv (the dataset is a copy of it: one object serves
    // both) and the tree's manifest. Not pipelines.toml, README.md or
    // .dvc/config again.
    assert_eq!(count_objects(&c.s3) - before, 2);
    let pulls = open_pulls(&c.hosted.fake);
    assert_eq!(pulls.len(), 1);
    // The proposal is still against main, where the dataset has no version
    // yet: the body now shows the new table, read from the remote.
    let body = pulls[0].body.clone().unwrap_or_default();
    assert!(body.contains("- **Rows:** 3\n"), "{body}");
    assert!(body.contains("cy"), "the new row: {body}");
}

/// A per-run claim, and a task that runs a committed script directly: the
/// source tree keeps git's executable bit on its way through the remote.
#[test]
fn a_per_run_workspace_gets_the_source_tree_too_with_its_executables() {
    let c = cluster(
        "./etl/build.sh",
        Workspace::PerRun {
            storage_class: None,
            size: "1Gi".into(),
            access_mode: "ReadWriteOnce".into(),
        },
    );
    let mut served = c.serve();
    let rows = "id,name\n9,zed\n";
    let script = "#!/bin/sh\nset -e\nmkdir -p data\ncp etl/rows.csv data/table.csv\n";
    push_and_notify(
        &c.hosted.fake,
        &c.hosted.world,
        &mut served,
        &[("etl/rows.csv", rows), ("etl/build.sh", script)],
        "Zed, built by a script",
    );
    wait_for_pull(&c);
    let run = &c.pipeline_runs()[0];
    assert_eq!(
        run["spec"]["source"]["executables"],
        serde_json::json!(["etl/build.sh"])
    );
    assert_eq!(c.proposed_md5().unwrap(), md5_hex(rows.as_bytes()));
}

#[test]
fn a_failing_task_fails_the_run_with_its_reason_and_opens_nothing() {
    let c = cluster("echo the warehouse is down >&2; exit 3", shared_claim());
    let mut served = c.serve();
    let commit = c.push_rows(&mut served, "id\n", "Break it");
    let status = final_status(&c.hosted.fake, &commit, &format!("cairn/{PIPELINE}"));
    assert_eq!(status.state, "failure");
    let run_id = format!("{PIPELINE}-{}", &commit[..12]);
    let reply = served.get(&format!("/api/v1/runs/{run_id}"));
    let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let error = json["run"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("task \"build\" failed") && error.contains("the warehouse is down"),
        "{json:#}"
    );
    assert!(open_pulls(&c.hosted.fake).is_empty());
}

#[test]
fn a_service_killed_mid_run_follows_the_same_pipelinerun_after_restart() {
    let c = cluster(
        "sleep 2; mkdir -p data && cat etl/rows.csv > data/table.csv",
        shared_claim(),
    );
    let mut served = c.serve();
    let rows = "id,name\n1,ada\n4,dee\n";
    c.push_rows(&mut served, rows, "Add dee");
    c.wait_for_build_pod();
    served.kill();

    // The cluster carries on without the service; a new process follows the
    // run it left, and delivers it once.
    let served = c.serve();
    assert_converged_once(&c, rows, "after a restart");
    served.wait_line(
        "following the cluster's runs a restart left",
        Duration::from_secs(5),
    );
}

/// After a crash and a restart: the task's real output proposed, one
/// PipelineRun, one pod per step (none created twice), one pull request.
fn assert_converged_once(c: &Cluster, rows: &str, what: &str) {
    wait_for_pull(c);
    let md5 = md5_hex(rows.as_bytes());
    assert_eq!(c.proposed_md5().as_deref(), Some(md5.as_str()), "{what}");
    assert!(
        on_remote(&c.s3, &md5),
        "{what}: the proposed version is on S3"
    );
    assert_eq!(c.pipeline_runs().len(), 1, "{what}: PipelineRuns");
    let mut names: Vec<String> = c.kube.created_pods().into_iter().map(|p| p.name).collect();
    names.sort();
    let all = names.len();
    names.dedup();
    assert_eq!(names.len(), all, "{what}: a pod created twice: {names:?}");
    assert_eq!(all, 3, "{what}: one pod per step: {names:?}");
    // Give a duplicate delivery time to show up, then count.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.hosted.fake.pulls(REPO).len(), 1, "{what}: pull requests");
    // And the real DVC client agrees, on every branch. The worker's
    // credentials, which the commit does not (and must not) hold.
    let config_local = format!(
        "['remote \"storage\"']\n    access_key_id = {ACCESS_KEY}\n    secret_access_key = {SECRET_KEY}\n"
    );
    let check = DvcCheck {
        pointer: "data/table.csv.dvc",
        config_local: Some(&config_local),
        env: &[("AWS_EC2_METADATA_DISABLED", "true")],
    };
    let scratch = c.hosted.world.data.parent().unwrap();
    assert_every_pointer_is_on_the_remote(&c.hosted.world.origin, scratch, &check, what);
}

/// The service SIGKILLed at each step boundary of a cluster run, as the
/// service sees them (the task's pod running, the publish pod running, the
/// result in, the pointer pushed, the pull request opened, the run
/// recorded as ended), then started again: each time the run converges once.
#[test]
fn killed_at_each_step_boundary_a_cluster_run_converges_once() {
    for point in cairn::failpoint::Failpoint::ALL {
        let what = format!("killed at {}", point.name());
        let c = cluster(
            "sleep 1; mkdir -p data && cat etl/rows.csv > data/table.csv",
            shared_claim(),
        );
        let mut served = c.serve_stopping_at(Some(point.name()));
        let rows = format!("id,point\n1,{}\n", point.name());
        c.push_rows(&mut served, &rows, "A boundary");
        served.wait_line(
            &format!("failpoint {} reached", point.name()),
            Duration::from_secs(90),
        );
        served.kill();
        let served = c.serve();
        assert_converged_once(&c, &rows, &what);
        drop(served);
    }
}

/// The service killed at seeded random moments, once or twice per trial,
/// between the push and the pull request, while the cluster (the fake API
/// server and the controller) carries on: each time one PipelineRun, one
/// pod per step, one pull request, naming the task's real output.
#[test]
fn killed_at_random_moments_a_cluster_run_converges_once() {
    let (seed, trials) = crash_trials(0xc1a5, 6);
    let mut rng = Rng(seed | 1);
    for trial in 0..trials {
        let what = format!("seed {seed} trial {trial}");
        let c = cluster(
            "sleep 1; mkdir -p data && cat etl/rows.csv > data/table.csv",
            shared_claim(),
        );
        let mut served = c.serve();
        let rows = format!("id,trial\n1,{trial}\n");
        c.push_rows(&mut served, &rows, "A trial");
        for kill in 0..1 + rng.next() % 2 {
            // The run takes about two seconds from the push to the pull
            // request here, so the kills land at different steps.
            let delay = Duration::from_millis(rng.next() % 2500);
            std::thread::sleep(delay);
            eprintln!("{what}: kill {kill} after {delay:?}");
            served.kill();
            served = c.serve();
        }
        assert_converged_once(&c, &rows, &what);
        drop(served);
    }
}

#[test]
fn the_services_watch_survives_a_dropped_stream_and_410_gone() {
    let c = cluster(
        "sleep 1; mkdir -p data && cat etl/rows.csv > data/table.csv",
        shared_claim(),
    );
    let mut served = c.serve();
    let rows = "id,name\n5,eve\n";
    c.push_rows(&mut served, rows, "Eve");
    c.wait_for_build_pod();
    // As an API server restart and an etcd compaction do: every open watch
    // ends, and resuming from the last resourceVersion answers 410 Gone.
    c.kube.compact();
    c.kube.drop_watches();
    wait_for_pull(&c);
    assert_eq!(c.proposed_md5().unwrap(), md5_hex(rows.as_bytes()));
    assert_eq!(c.pipeline_runs().len(), 1);
}

#[test]
fn a_replacing_run_cancels_the_pipelinerun_it_replaces() {
    let c = cluster_with(
        &config_with(
            "sleep 3; mkdir -p data && cat etl/rows.csv > data/table.csv",
            "replace",
        ),
        shared_claim(),
    );
    let mut served = c.serve();
    let first = c.push_rows(&mut served, "id\n1\n", "One");
    c.wait_for_build_pod();
    let rows = "id\n1\n2\n";
    c.push_rows(&mut served, rows, "Two");
    let first_run = format!("{PIPELINE}-{}", &first[..12]);
    let cancelled = wait("the first run cancelled", Duration::from_secs(60), || {
        c.kube
            .get("pipelineruns", NS, &first_run)
            .filter(|r| r["status"]["phase"] == "Cancelled")
    });
    assert_eq!(cancelled["spec"]["cancel"], true);
    assert_eq!(
        final_status(&c.hosted.fake, &first, &format!("cairn/{PIPELINE}")).state,
        "failure",
        "a cancelled run's status"
    );
    wait_for_pull(&c);
    wait("the second version", Duration::from_secs(60), || {
        c.proposed_md5().filter(|m| *m == md5_hex(rows.as_bytes()))
    });
}

fn on_remote_dir(s3: &S3Server, md5: &str) -> bool {
    s3.object_path(&format!(
        "{PREFIX}/files/md5/{}/{}.dir",
        &md5[..2],
        &md5[2..]
    ))
    .is_file()
}

fn count_objects(s3: &S3Server) -> usize {
    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| {
                        let path = e.path();
                        if path.is_dir() {
                            walk(&path)
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&s3.object_path(&format!("{PREFIX}/files")))
}

/// Two replicas of the service on one cluster both learn of the same push
/// (GitHub delivers to one; the other finds it at its resync): the cluster
/// runs it once, and exactly one replica delivers it: one pointer commit,
/// one pull request, one final commit status.
#[test]
fn two_replicas_deliver_one_run_once() {
    let c = cluster(
        "mkdir -p data && cat etl/rows.csv > data/table.csv",
        shared_claim(),
    );
    let mut a = c.serve_replica("replica-a");
    let mut b = c.serve_replica("replica-b");
    let rows = "id,name\n1,ada\n2,bob\n";
    let (before, commit) = c.hosted.world.push(&[("etl/rows.csv", rows)], "Add bob");
    let payload = push_payload(
        &c.hosted.fake,
        &c.hosted.world,
        &before,
        &commit,
        &[commit_json(&commit, "Add bob", &["etl/rows.csv"])],
    );
    for replica in [&mut a, &mut b] {
        let reply = replica.deliver("push", &payload);
        assert_eq!(reply.status, 202, "{}", reply.body);
    }
    let context = format!("cairn/{PIPELINE}");
    assert_eq!(
        final_status(&c.hosted.fake, &commit, &context).state,
        "success"
    );
    // Both replicas are done with the run: the deliverer and the other.
    let run_id = format!("{PIPELINE}-{}", &commit[..12]);
    for (name, replica) in [("replica-a", &a), ("replica-b", &b)] {
        wait(
            &format!("{name} to finish the run"),
            Duration::from_secs(60),
            || {
                let reply = replica.get(&format!("/api/v1/runs/{run_id}"));
                let json: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
                (json["run"]["phase"] == "succeeded").then_some(())
            },
        );
    }
    std::thread::sleep(Duration::from_millis(500));

    assert_eq!(c.pipeline_runs().len(), 1, "one PipelineRun");
    let pulls = c.hosted.fake.pulls(REPO);
    assert_eq!(pulls.len(), 1, "one pull request: {pulls:#?}");
    let pull_writes = c
        .hosted
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/pulls") && matches!(r.method.as_str(), "POST" | "PATCH"))
        .count();
    assert_eq!(
        pull_writes, 1,
        "one pull request created, none updated again"
    );
    let finals: Vec<_> = c
        .hosted
        .fake
        .statuses(REPO, &commit)
        .into_iter()
        .filter(|s| s.context == context && s.state != "pending")
        .collect();
    assert_eq!(finals.len(), 1, "one final commit status: {finals:#?}");
    let proposal = format!("refs/heads/cairn/{PIPELINE}");
    let tip = git::branch_sha(&c.hosted.world.origin, &format!("cairn/{PIPELINE}"))
        .unwrap_or_else(|| panic!("no {proposal}"));
    assert_eq!(
        git::parents(&c.hosted.world.origin, &tip),
        std::slice::from_ref(&commit),
        "one pointer commit, on the person's commit"
    );
    let run = &c.pipeline_runs()[0];
    let deliverer = run["metadata"]["annotations"]["cairn.dev/delivered"]
        .as_str()
        .unwrap_or_default();
    assert!(
        ["replica-a", "replica-b"].contains(&deliverer),
        "the PipelineRun names its deliverer: {run:#}"
    );
}
