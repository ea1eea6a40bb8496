//! The same rules of a run on both backends: every scenario here runs once
//! with tasks as local processes and once with steps as pods, and checks
//! the same things through the same run API.
//!
//! Both runs serve a local repository (`cairn serve --repo`, the local
//! forge, a local DVC remote); only `CAIRN_EXECUTOR` differs. With
//! `kubernetes` the service creates PipelineRuns on the fake API server,
//! the real controller (in this process) makes pods of them, and the fake
//! kubelet runs each pod's command as a local process (`cairn fetch`, the
//! task, `cairn publish`) with `/workspace` mapped to a folder.
//!
//! What is compared: a task may write `data/out.csv` without making `data`
//! first; a failed attempt is retried; a task past its timeout fails, and a
//! run past its timeout is cancelled, its attempt stopped; a newer run
//! (`concurrency = "replace"`) cancels the running one; `max_active_runs`
//! holds across pipelines; each attempt's output is kept in its log.

use crate::support::fake_kube::{Behavior, Exec, FakeKube};
use crate::support::served::{http, serve_local, wait, Reply, Served};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cairn::k8s::controller::{self, Context};
use cairn::k8s::throttle::Throttle;
use cairn::k8s::{ExecutorSettings, Workspace};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "backends-api-token";
const NS: &str = "runs";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Local,
    Kube,
}

const BOTH: [Backend; 2] = [Backend::Local, Backend::Kube];

/// A served repository, and on Kubernetes the cluster its runs go to.
struct Rig {
    backend: Backend,
    scratch: crate::common::Scratch,
    served: Served,
    _cluster: Option<Cluster>,
}

struct Cluster {
    _kube: FakeKube,
    stop: CancellationToken,
    _runtime: tokio::runtime::Runtime,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn rig(backend: Backend, pipelines_toml: &str, env: &[(&str, &str)]) -> Rig {
    let scratch = crate::common::Scratch::with_config(pipelines_toml, &[]);
    let mut all: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.push(("CAIRN_API_TOKEN".into(), TOKEN.into()));
    let cluster = match backend {
        Backend::Local => None,
        Backend::Kube => {
            let (cluster, kube_env) = cluster(&scratch.root);
            all.extend(kube_env);
            Some(cluster)
        }
    };
    let env: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let served = serve_local(&scratch.repo, &env);
    served.wait_ready();
    Rig {
        backend,
        scratch,
        served,
        _cluster: cluster,
    }
}

/// The fake API server with an executing kubelet, the controller, and the
/// variables that point `cairn serve` at them.
fn cluster(root: &std::path::Path) -> (Cluster, Vec<(String, String)>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let kube = runtime.block_on(FakeKube::start());
    kube.script_default(Behavior::Exec(Exec {
        root: root.join("nodes"),
        cairn: env!("CARGO_BIN_EXE_cairn").into(),
        env: Vec::new(),
    }));
    let kubeconfig: PathBuf = root.join("kubeconfig");
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
            workspace: Workspace::SharedClaim {
                claim: "workspace".into(),
            },
            // Local runs retry after a second; so do these.
            retry_backoff: Duration::from_secs(1),
            ..ExecutorSettings::default()
        },
        throttle: Throttle::new(200.0, 50),
        identity: "controller-test".into(),
    });
    runtime.spawn(controller::run(ctx, stop.clone()));
    let env = vec![
        ("CAIRN_EXECUTOR".to_string(), "kubernetes".to_string()),
        ("CAIRN_KUBERNETES_NAMESPACE".to_string(), NS.to_string()),
        ("KUBECONFIG".to_string(), kubeconfig.display().to_string()),
        ("HOSTNAME".to_string(), "replica-0".to_string()),
    ];
    (
        Cluster {
            _kube: kube,
            stop,
            _runtime: runtime,
        },
        env,
    )
}

impl Rig {
    fn api(&self, method: &str, path: &str) -> Reply {
        http(
            self.served.addr,
            method,
            path,
            &[("Authorization", format!("Bearer {TOKEN}"))],
            b"",
        )
    }

    /// Starts a run of `pipeline` through the API; its id.
    fn trigger(&self, pipeline: &str) -> String {
        let reply = self.api("POST", &format!("/api/v1/pipelines/{pipeline}/runs"));
        assert_eq!(reply.status, 202, "{:?}: {}", self.backend, reply.body);
        let json: Value = serde_json::from_str(&reply.body).unwrap();
        json["run"].as_str().unwrap().to_string()
    }

    /// The run as the API shows it (`run` and `attempts`).
    fn run(&self, run_id: &str) -> Option<Value> {
        let reply = self.api("GET", &format!("/api/v1/runs/{run_id}"));
        (reply.status == 200)
            .then(|| serde_json::from_str(&reply.body).ok())
            .flatten()
    }

    /// Waits for the run to end; the API's view of it.
    fn finished(&self, run_id: &str) -> Value {
        wait(
            &format!("{:?}: run {run_id} to end", self.backend),
            Duration::from_secs(90),
            || {
                self.run(run_id).filter(|r| {
                    ["succeeded", "unchanged", "failed", "cancelled"]
                        .contains(&r["run"]["phase"].as_str().unwrap_or(""))
                })
            },
        )
    }

    /// The attempts of `task` in `run`: (attempt, state).
    fn attempts(run: &Value, task: &str) -> Vec<(u64, String)> {
        run["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["task"] == task)
            .map(|a| {
                (
                    a["attempt"].as_u64().unwrap(),
                    a["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

fn pipeline(name: &str, extra: &str, command: &str) -> String {
    format!(
        "[pipelines.{name}]\ndataset = \"data/{name}.csv\"\nmerge = \"direct\"\nimage = \"busybox:1.36\"\n{extra}\n\
         [pipelines.{name}.tasks.work]\ncommand = [\"sh\", \"-c\", {command:?}]\n"
    )
}

#[test]
fn a_task_writes_into_the_datasets_folder_without_making_it() {
    for backend in BOTH {
        let r = rig(
            backend,
            &pipeline("p", "", "echo id > \"$CAIRN_DATASET\""),
            &[],
        );
        let run = r.finished(&r.trigger("p"));
        assert_eq!(run["run"]["phase"], "succeeded", "{backend:?}: {run:#}");
        assert_eq!(Rig::attempts(&run, "work"), [(1, "succeeded".into())]);
        let out = r.scratch.cairn(&["fetch", "data/p.csv"]);
        crate::common::assert_success(&out, "cairn fetch data/p.csv");
        assert_eq!(
            std::fs::read_to_string(r.scratch.repo.join("data/p.csv")).unwrap(),
            "id\n",
            "{backend:?}"
        );
    }
}

#[test]
fn a_failed_attempt_is_retried_and_each_attempt_keeps_its_output() {
    for backend in BOTH {
        let tmp = tempfile::tempdir().unwrap();
        let marker = tmp.path().join("tried");
        // Fails once (leaving a marker outside the workspace), then succeeds.
        let command = format!(
            "if [ -e {m} ]; then echo second try; echo id > \"$CAIRN_DATASET\"; \
             else touch {m}; echo first try failing >&2; exit 3; fi",
            m = marker.display()
        );
        let r = rig(
            backend,
            &pipeline("p", "", &command).replace(
                "[pipelines.p.tasks.work]\n",
                "[pipelines.p.tasks.work]\nretries = 1\n",
            ),
            &[],
        );
        let run = r.finished(&r.trigger("p"));
        assert_eq!(run["run"]["phase"], "succeeded", "{backend:?}: {run:#}");
        assert_eq!(
            Rig::attempts(&run, "work"),
            [(1, "failed".into()), (2, "succeeded".into())],
            "{backend:?}"
        );
        // Log capture: each attempt's output is in that attempt's log.
        for (attempt, text) in [(1, "first try failing"), (2, "second try")] {
            let record = run["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["task"] == "work" && a["attempt"] == attempt)
                .unwrap();
            let log =
                std::fs::read_to_string(record["log_path"].as_str().unwrap()).unwrap_or_default();
            assert!(
                log.contains(text),
                "{backend:?}: attempt {attempt}: {log:?}"
            );
        }
    }
}

#[test]
fn a_task_past_its_timeout_fails_the_run() {
    for backend in BOTH {
        let r = rig(
            backend,
            &pipeline("p", "", "sleep 30").replace(
                "[pipelines.p.tasks.work]\n",
                "[pipelines.p.tasks.work]\ntimeout = \"2s\"\n",
            ),
            &[],
        );
        let started = std::time::Instant::now();
        let run = r.finished(&r.trigger("p"));
        assert!(started.elapsed() < Duration::from_secs(25), "{backend:?}");
        assert_eq!(run["run"]["phase"], "failed", "{backend:?}: {run:#}");
        let error = run["run"]["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("task \"work\" failed: timed out after 2s"),
            "{backend:?}: {error}"
        );
        assert_eq!(Rig::attempts(&run, "work"), [(1, "failed".into())]);
    }
}

#[test]
fn a_run_past_its_timeout_is_cancelled_and_its_attempt_stopped() {
    for backend in BOTH {
        let r = rig(backend, &pipeline("p", "timeout = \"2s\"", "sleep 30"), &[]);
        let run = r.finished(&r.trigger("p"));
        assert_eq!(run["run"]["phase"], "cancelled", "{backend:?}: {run:#}");
        let error = run["run"]["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("the pipeline's timeout of 2s expired"),
            "{backend:?}: {error}"
        );
        assert_eq!(Rig::attempts(&run, "work"), [(1, "stopped".into())]);
    }
}

#[test]
fn a_newer_run_cancels_the_running_one_under_replace() {
    for backend in BOTH {
        let tmp = tempfile::tempdir().unwrap();
        let marker = tmp.path().join("first");
        // The first run sleeps; the one that replaces it finishes at once.
        let command = format!(
            "echo id > \"$CAIRN_DATASET\"; [ -e {m} ] && exit 0; touch {m}; sleep 30",
            m = marker.display()
        );
        let r = rig(
            backend,
            &pipeline("p", "concurrency = \"replace\"", &command),
            &[],
        );
        let first = r.trigger("p");
        wait(
            &format!("{backend:?}: the first run's task"),
            Duration::from_secs(60),
            || marker.exists().then_some(()),
        );
        let second = r.trigger("p");
        let first = r.finished(&first);
        assert_eq!(first["run"]["phase"], "cancelled", "{backend:?}: {first:#}");
        assert_eq!(Rig::attempts(&first, "work"), [(1, "stopped".into())]);
        let second = r.finished(&second);
        assert_eq!(
            second["run"]["phase"], "succeeded",
            "{backend:?}: {second:#}"
        );
    }
}

#[test]
fn max_active_runs_holds_across_pipelines() {
    for backend in BOTH {
        let config = format!(
            "{}\n{}",
            pipeline("a", "", "sleep 2; echo a > \"$CAIRN_DATASET\""),
            pipeline("b", "", "sleep 2; echo b > \"$CAIRN_DATASET\"")
        );
        let r = rig(backend, &config, &[("CAIRN_MAX_ACTIVE_RUNS", "1")]);
        let (a, b) = (r.trigger("a"), r.trigger("b"));
        let (a, b) = (r.finished(&a), r.finished(&b));
        let window = |run: &Value| {
            let attempt = &run["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["task"] == "work")
                .unwrap_or_else(|| panic!("{backend:?}: {run:#}"))
                .clone();
            (
                attempt["started_at"].as_i64().unwrap(),
                attempt["finished_at"].as_i64().unwrap(),
            )
        };
        let (wa, wb) = (window(&a), window(&b));
        assert!(
            wa.1 <= wb.0 || wb.1 <= wa.0,
            "{backend:?}: the two runs' tasks overlapped: {wa:?} {wb:?}"
        );
        for run in [&a, &b] {
            assert_eq!(run["run"]["phase"], "succeeded", "{backend:?}: {run:#}");
        }
    }
}
