//! The HTTP intake of `cairn serve`, driven over real HTTP on 127.0.0.1 with
//! a recording sink: GitHub's example payloads, bad deliveries, the dedup
//! across restarts, the probes, graceful shutdown; and the service settings.
//!
//! The examples come from the npm package `@octokit/webhooks-examples`,
//! installed by scripts/peers.sh (sourced by scripts/test.sh), which exports
//! CAIRN_TEST_WEBHOOK_EXAMPLES; without it (and without the package in the
//! default cache) the example test fails: it never skips.

use crate::support::webhook_examples as examples;

use examples::{package_dir, PACKAGE_VERSION};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn::http::{app, serve, Dedup, EventSink, Limits, Parts, Readiness, SinkError};
use cairn::metrics::Metrics;
use cairn::settings::{
    Env, Flags, GithubAuth, LogFormat, Settings, SettingsError, DEFAULT_BODY_LIMIT,
    DEFAULT_DEDUP_CAPACITY, DEFAULT_LISTEN,
};
use cairn::triggers::{verify_signature, DeliveryId, Event, WebhookSecret};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "cairn intake test secret";

// ----- the app under test ----------------------------------------------------

/// Records what it is given; can be switched to refuse everything.
#[derive(Default)]
struct RecordingSink {
    events: Mutex<Vec<(DeliveryId, Event)>>,
    full: AtomicBool,
}

impl RecordingSink {
    fn ids(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| id.to_string())
            .collect()
    }
}

impl EventSink for RecordingSink {
    fn submit(&self, delivery: DeliveryId, event: Event) -> Result<(), SinkError> {
        if self.full.load(Ordering::SeqCst) {
            return Err(SinkError::Full);
        }
        self.events.lock().unwrap().push((delivery, event));
        Ok(())
    }
}

#[derive(Default)]
struct SwitchReadiness {
    problem: Mutex<Option<String>>,
}

impl Readiness for SwitchReadiness {
    fn check(&self) -> Result<(), String> {
        match &*self.problem.lock().unwrap() {
            Some(p) => Err(p.clone()),
            None => Ok(()),
        }
    }
}

struct App {
    addr: SocketAddr,
    dedup: Arc<Dedup>,
    sink: Arc<RecordingSink>,
    ready: Arc<SwitchReadiness>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

struct Options {
    secret: Option<&'static str>,
    limits: Limits,
    capacity: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            secret: Some(SECRET),
            limits: Limits::default(),
            capacity: 1000,
        }
    }
}

async fn spawn_app(data_dir: &Path, options: Options) -> App {
    let dedup = Arc::new(Dedup::open(data_dir, options.capacity).unwrap());
    let sink = Arc::new(RecordingSink::default());
    let ready = Arc::new(SwitchReadiness::default());
    let parts = Parts::new(
        options.secret.map(|s| WebhookSecret::new(s).unwrap()),
        dedup.clone(),
        sink.clone(),
        ready.clone(),
        Arc::new(Metrics::new()),
    )
    .with_limits(options.limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app(parts), async move {
        let _ = stopped.await;
    }));
    App {
        addr,
        dedup,
        sink,
        ready,
        stop: Some(stop),
        server,
    }
}

impl App {
    /// Graceful shutdown, then the dedup log is committed and closed.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.server)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
        let dedup = self.dedup.clone();
        tokio::task::spawn_blocking(move || dedup.close())
            .await
            .unwrap();
    }

    async fn send(&self, request: &Req) -> Reply {
        send(self.addr, request).await
    }

    async fn get(&self, path: &str) -> Reply {
        let request = Req {
            method: "GET",
            path: path.to_owned(),
            ..Req::default()
        };
        self.send(&request).await
    }

    async fn metric(&self, series: &str) -> f64 {
        let reply = self.get("/metrics").await;
        reply
            .body
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |v| v.parse().unwrap())
    }
}

// ----- a small HTTP/1.1 client: full control over what is sent ---------------

#[derive(Clone)]
struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Only the head is sent (with the body's Content-Length), as a client
    /// does that waits for a refusal before sending a large body.
    head_only: bool,
    /// Sent with chunked transfer encoding (no Content-Length).
    chunked: bool,
}

impl Default for Req {
    fn default() -> Self {
        Req {
            method: "POST",
            path: "/webhook".into(),
            headers: Vec::new(),
            body: Vec::new(),
            head_only: false,
            chunked: false,
        }
    }
}

impl Req {
    /// A delivery as GitHub sends it, signed with `secret`.
    fn delivery(secret: &str, event: &str, id: &str, body: &[u8]) -> Req {
        let signature = WebhookSecret::new(secret).unwrap().sign(body);
        Req {
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("X-GitHub-Event".into(), event.into()),
                ("X-GitHub-Delivery".into(), id.into()),
                ("X-Hub-Signature-256".into(), signature),
                ("User-Agent".into(), "GitHub-Hookshot/cairn-test".into()),
            ],
            body: body.to_vec(),
            ..Req::default()
        }
    }

    fn set(mut self, name: &str, value: &str) -> Req {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }

    fn without(mut self, name: &str) -> Req {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    fn head(&self) -> String {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: cairn.test\r\nConnection: close\r\n",
            self.method, self.path
        );
        if self.chunked {
            head.push_str("Transfer-Encoding: chunked\r\n");
        } else if self.method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

async fn send(addr: SocketAddr, request: &Req) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.head().as_bytes()).await.unwrap();
    if request.chunked {
        for chunk in request.body.chunks(16 * 1024) {
            let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
            // The server may refuse (and close) before the last chunk.
            if stream.write_all(&framed).await.is_err() {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
    } else if !request.head_only {
        stream.write_all(&request.body).await.unwrap();
    }
    read_reply(&mut stream).await
}

async fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 10 s")
        .expect("the answer is read");
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    assert!(
        !headers.contains_key("transfer-encoding"),
        "answers have a Content-Length: {headers:?}"
    );
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

// ----- payloads ---------------------------------------------------------------

fn push_body(after: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000000",
        "after": after,
        "created": true,
        "deleted": false,
        "forced": false,
        "commits": [],
        "head_commit": null,
        "pusher": {"name": "octocat", "email": null},
        "sender": {"login": "octocat", "type": "User"},
        "repository": {
            "id": 1296269,
            "name": "data",
            "full_name": "acme/data",
            "owner": {"login": "acme", "name": "acme", "type": "Organization"},
            "default_branch": "main",
            "clone_url": "https://github.com/acme/data.git",
            "html_url": "https://github.com/acme/data"
        }
    }))
    .unwrap()
}

const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

// ----- GitHub's example payloads ------------------------------------------------

const TOTAL_EXAMPLES: usize = 726;

struct Example {
    label: String,
    event: String,
    action: Option<String>,
    body: Vec<u8>,
}

fn load_examples() -> Vec<Example> {
    let dir = package_dir();
    let read = |p: &Path| -> Value {
        serde_json::from_slice(&std::fs::read(p).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    assert_eq!(read(&dir.join("package.json"))["version"], PACKAGE_VERSION);
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("index.json").is_file())
        .collect();
    folders.sort();
    let mut examples = Vec::new();
    for folder in folders {
        let flavour = folder.file_name().unwrap().to_string_lossy().into_owned();
        for definition in read(&folder.join("index.json")).as_array().unwrap() {
            let event = definition["name"].as_str().unwrap();
            for (i, payload) in definition["examples"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
            {
                examples.push(Example {
                    label: format!("{flavour}/{event}[{i}]"),
                    event: event.to_owned(),
                    action: payload["action"].as_str().map(str::to_owned),
                    body: serde_json::to_vec(payload).unwrap(),
                });
            }
        }
    }
    examples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_webhook_example_is_answered_and_only_actionable_ones_reach_the_sink() {
    let examples = load_examples();
    assert_eq!(examples.len(), TOTAL_EXAMPLES);
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(dir.path(), Options::default()).await;

    let mut expected_ids = Vec::new();
    let mut by_answer: BTreeMap<(u16, String), usize> = BTreeMap::new();
    for (i, example) in examples.iter().enumerate() {
        let id = format!("example-{i}");
        let reply = app
            .send(&Req::delivery(SECRET, &example.event, &id, &example.body))
            .await;
        let status = reply.json()["status"].as_str().unwrap_or("").to_owned();
        let label = &example.label;
        assert!(reply.status < 500, "{label}: {reply:?}");
        let actionable = match example.event.as_str() {
            "push" | "pull_request" => true,
            "issue_comment" => example.action.as_deref() == Some("created"),
            _ => false,
        };
        if actionable {
            assert_eq!(
                (reply.status, status.as_str()),
                (202, "queued"),
                "{label}: {reply:?}"
            );
            expected_ids.push(id);
        } else if example.event == "ping" {
            assert_eq!(
                (reply.status, status.as_str()),
                (200, "pong"),
                "{label}: {reply:?}"
            );
        } else {
            assert_eq!(
                (reply.status, status.as_str()),
                (200, "ignored"),
                "{label}: {reply:?}"
            );
            assert!(
                !reply.json()["reason"].as_str().unwrap().is_empty(),
                "{label}"
            );
        }
        *by_answer.entry((reply.status, status)).or_default() += 1;
    }
    assert_eq!(app.sink.ids(), expected_ids);
    // What reached the sink is what the examples hold.
    for ((id, event), i) in app.sink.events.lock().unwrap().iter().zip(
        expected_ids
            .iter()
            .map(|id| id["example-".len()..].parse::<usize>().unwrap()),
    ) {
        assert_eq!(id.as_str(), format!("example-{i}"));
        assert_eq!(event.name(), examples[i].event, "{}", examples[i].label);
    }
    let count = |event: &str| examples.iter().filter(|e| e.event == event).count();
    assert_eq!((count("push"), count("pull_request")), (14, 46));
    assert!(
        by_answer[&(202, "queued".to_owned())] > 14 + 46,
        "{by_answer:?}"
    );
    assert_eq!(by_answer[&(200, "pong".to_owned())], 11, "{by_answer:?}");
    assert_eq!(
        app.metric("cairn_webhook_deliveries_total{event=\"push\",result=\"queued\"}")
            .await,
        14.0
    );
    app.stop().await;
}

// ----- refusals ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_deliveries_are_refused_with_a_reason_and_do_not_poison_their_id() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        body_limit: 64 * 1024,
        ..Limits::default()
    };
    let app = spawn_app(
        dir.path(),
        Options {
            limits,
            ..Options::default()
        },
    )
    .await;
    let body = push_body(SHA);
    let good = |id: &str| Req::delivery(SECRET, "push", id, &body);
    let big = serde_json::to_vec(&serde_json::json!({"padding": "x".repeat(100 * 1024)})).unwrap();
    let form = {
        let encoded: String = format!("payload={}", String::from_utf8(body.clone()).unwrap())
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'=' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        Req::delivery(SECRET, "push", "bad-form", encoded.as_bytes())
            .set("Content-Type", "application/x-www-form-urlencoded")
    };
    let truncated = {
        let mut r = good("bad-truncated");
        r.body.truncate(r.body.len() / 2);
        r
    };
    let cases: Vec<(&str, Req, u16, &str)> = vec![
        (
            "no signature",
            good("bad-unsigned").without("X-Hub-Signature-256"),
            401,
            "missing X-Hub-Signature-256",
        ),
        (
            "wrong secret",
            Req::delivery("not the secret", "push", "bad-secret", &body),
            401,
            "signature does not match",
        ),
        (
            "SHA-1 only",
            good("bad-sha1").without("X-Hub-Signature-256").set(
                "X-Hub-Signature",
                "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59",
            ),
            401,
            "SHA-1",
        ),
        (
            "malformed signature",
            good("bad-malformed").set("X-Hub-Signature-256", "sha256=zz"),
            401,
            "64 hex digits",
        ),
        ("truncated body", truncated, 401, "signature does not match"),
        (
            "oversize body, declared",
            Req {
                head_only: true,
                ..Req::delivery(SECRET, "push", "bad-big", &big)
            },
            413,
            "larger than 65536 bytes",
        ),
        (
            "oversize body, streamed",
            Req {
                chunked: true,
                ..Req::delivery(SECRET, "push", "bad-big-chunked", &big)
            },
            413,
            "larger than 65536 bytes",
        ),
        (
            "non-JSON body",
            Req::delivery(SECRET, "push", "bad-json", b"<html>not json</html>"),
            400,
            "push payload is not valid JSON",
        ),
        (
            "invalid payload",
            Req::delivery(SECRET, "push", "bad-payload", br#"{"ref": 5}"#),
            400,
            "invalid push payload at",
        ),
        ("form-encoded", form, 400, "application/json"),
        (
            "other content type",
            good("bad-type").set("Content-Type", "text/plain"),
            415,
            "application/json",
        ),
        (
            "missing delivery id",
            good("unused").without("X-GitHub-Delivery"),
            400,
            "missing X-GitHub-Delivery",
        ),
        (
            "bad delivery id",
            good("has space").set("X-GitHub-Delivery", "has space"),
            400,
            "X-GitHub-Delivery must be visible ASCII",
        ),
        (
            "missing event",
            good("bad-no-event").without("X-GitHub-Event"),
            400,
            "missing X-GitHub-Event",
        ),
    ];
    for (name, request, status, reason) in &cases {
        let reply = app.send(request).await;
        assert_eq!(reply.status, *status, "{name}: {reply:?}");
        let json = reply.json();
        assert_eq!(json["status"], "rejected", "{name}");
        let got = json["reason"].as_str().unwrap();
        assert!(got.contains(reason), "{name}: {got:?}");
        assert!(app.sink.ids().is_empty(), "{name} reached the sink");
    }
    // None of them marked its id seen: the same ids, now sent properly, are
    // accepted.
    let ids: Vec<&str> = cases
        .iter()
        .filter_map(|(_, r, _, _)| {
            r.headers
                .iter()
                .find(|(n, _)| n == "X-GitHub-Delivery")
                .map(|(_, v)| v.as_str())
        })
        .filter(|id| DeliveryId::parse(id).is_ok())
        .collect();
    assert_eq!(ids.len(), cases.len() - 2, "{ids:?}");
    for id in &ids {
        let reply = app.send(&good(id)).await;
        assert_eq!(
            (reply.status, reply.json()["status"].clone()),
            (202, "queued".into()),
            "{id}"
        );
    }
    assert_eq!(app.sink.ids(), ids);

    // A replay is a duplicate, answered 200 and not submitted again.
    let reply = app.send(&good(ids[0])).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "duplicate");
    assert_eq!(app.sink.ids().len(), ids.len());

    for (series, want) in [
        ("{event=\"push\",result=\"unauthorized\"}", 5.0),
        ("{event=\"push\",result=\"too_large\"}", 2.0),
        ("{event=\"push\",result=\"bad_content_type\"}", 2.0),
        ("{event=\"push\",result=\"bad_request\"}", 4.0),
        ("{event=\"none\",result=\"bad_request\"}", 1.0),
        ("{event=\"push\",result=\"duplicate\"}", 1.0),
    ] {
        let name = format!("cairn_webhook_deliveries_total{series}");
        assert_eq!(app.metric(&name).await, want, "{name}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_is_408() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        body_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let app = spawn_app(
        dir.path(),
        Options {
            limits,
            ..Options::default()
        },
    )
    .await;
    let request = Req::delivery(SECRET, "push", "slow-1", &push_body(SHA));
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request.head().as_bytes()).await.unwrap();
    stream.write_all(&request.body[..100]).await.unwrap();
    let reply = read_reply(&mut stream).await;
    assert_eq!(reply.status, 408, "{reply:?}");
    assert_eq!(reply.json()["reason"], "the body did not arrive in time");
    assert!(app.sink.ids().is_empty());
    assert!(!app.dedup.contains(&DeliveryId::parse("slow-1").unwrap()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_503_with_retry_after_and_the_id_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(dir.path(), Options::default()).await;
    let request = Req::delivery(SECRET, "push", "full-1", &push_body(SHA));
    app.sink.full.store(true, Ordering::SeqCst);
    let reply = app.send(&request).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.header("retry-after"), Some("30"));
    assert_eq!(reply.json()["status"], "unavailable");
    assert!(reply.json()["reason"]
        .as_str()
        .unwrap()
        .contains("queue is full"));
    assert!(!app.dedup.contains(&DeliveryId::parse("full-1").unwrap()));
    assert_eq!(
        app.metric("cairn_webhook_deliveries_total{event=\"push\",result=\"queue_full\"}")
            .await,
        1.0
    );
    app.sink.full.store(false, Ordering::SeqCst);
    assert_eq!(app.send(&request).await.status, 202);
    assert_eq!(app.sink.ids(), ["full-1"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_only_by_choice_deliveries_are_not_verified() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(
        dir.path(),
        Options {
            secret: None,
            ..Options::default()
        },
    )
    .await;
    let request =
        Req::delivery(SECRET, "push", "unsigned-1", &push_body(SHA)).without("X-Hub-Signature-256");
    assert_eq!(app.send(&request).await.status, 202);
    app.stop().await;
}

// ----- dedup ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_survives_a_restart_and_forgets_the_oldest_beyond_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options {
        capacity: 2,
        ..Options::default()
    };
    let body = push_body(SHA);
    let push = |id: &str| Req::delivery(SECRET, "push", id, &body);

    let app = spawn_app(dir.path(), options()).await;
    for id in ["a", "b", "c"] {
        assert_eq!(app.send(&push(id)).await.status, 202, "{id}");
    }
    assert_eq!(app.send(&push("c")).await.json()["status"], "duplicate");
    app.stop().await;

    // A new server on the same data dir remembers the newest two.
    let app = spawn_app(dir.path(), options()).await;
    for id in ["b", "c"] {
        let reply = app.send(&push(id)).await;
        assert_eq!(
            (reply.status, reply.json()["status"].clone()),
            (200, "duplicate".into()),
            "{id}"
        );
    }
    // "a" was pruned: it is handled again, and pushes "b" out.
    assert_eq!(app.send(&push("a")).await.status, 202);
    assert_eq!(app.sink.ids(), ["a"]);
    assert_eq!(app.dedup.len(), 2);
    assert!(!app.dedup.contains(&DeliveryId::parse("b").unwrap()));
    assert_eq!(app.send(&push("b")).await.status, 202);
    app.stop().await;
}

// ----- probes --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(dir.path(), Options::default()).await;

    let health = app.get("/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));

    let ready = app.get("/readyz").await;
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready"));
    *app.ready.problem.lock().unwrap() = Some("the run store is unreachable".into());
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body, "not ready: the run store is unreachable");

    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    for line in [
        "# TYPE cairn_queue_depth gauge",
        "cairn_queue_depth 0",
        &format!(
            "cairn_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "{line:?} in {}",
            metrics.body
        );
    }
    let queued = "cairn_webhook_deliveries_total{event=\"push\",result=\"queued\"}";
    let pong = "cairn_webhook_deliveries_total{event=\"ping\",result=\"pong\"}";
    assert_eq!(app.metric(queued).await, 0.0);
    for id in ["m-1", "m-2"] {
        let reply = app
            .send(&Req::delivery(SECRET, "push", id, &push_body(SHA)))
            .await;
        assert_eq!(reply.status, 202);
    }
    let ping = br#"{"zen": "Keep it logically awesome.", "hook_id": 1}"#;
    assert_eq!(
        app.send(&Req::delivery(SECRET, "ping", "m-3", ping))
            .await
            .status,
        200
    );
    assert_eq!(app.metric(queued).await, 2.0);
    assert_eq!(app.metric(pong).await, 1.0);
    let metrics = app.get("/metrics").await;
    assert!(metrics
        .body
        .lines()
        .any(|l| l == "# TYPE cairn_webhook_deliveries_total counter"));
    app.stop().await;
}

// ----- shutdown ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_a_request_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = spawn_app(dir.path(), Options::default()).await;
    let request = Req::delivery(SECRET, "push", "in-flight", &push_body(SHA));
    let (first, rest) = request.body.split_at(request.body.len() / 2);

    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request.head().as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    // Let the server start on the request, then ask it to stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = app.stop.take().unwrap().send(());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !app.server.is_finished(),
        "the server waits for the request"
    );
    // New connections are no longer accepted.
    assert!(TcpStream::connect(app.addr).await.is_err());

    stream.write_all(rest).await.unwrap();
    let reply = read_reply(&mut stream).await;
    assert_eq!(
        (reply.status, reply.json()["status"].clone()),
        (202, "queued".into())
    );
    assert_eq!(app.sink.ids(), ["in-flight"]);
    tokio::time::timeout(Duration::from_secs(10), &mut app.server)
        .await
        .expect("the server stops once the request is answered")
        .unwrap()
        .unwrap();
}

// ----- settings ------------------------------------------------------------------

fn env(vars: &[(&str, &str)]) -> Env {
    vars.iter().copied().collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn settings_file_overlaid_by_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = write(dir.path(), "webhook-secret", "from-a-file\n");
    let config = write(
        dir.path(),
        "cairn.toml",
        r#"
listen = "0.0.0.0:9000"
data_dir = "state"
public_url = "https://cairn.example.com/"
log_format = "json"
resync_interval = "2m"

[webhook]
body_limit = "1MiB"
dedup_capacity = 500
queue_capacity = 64

[github]
api_url = "https://ghe.example.com/api/v3"
repositories = ["acme/data", "acme/etl"]
merge_wait = "15m"
"#,
    );
    let flags = Flags {
        config: Some(config.clone()),
        ..Flags::default()
    };
    let vars = env(&[
        ("CAIRN_LISTEN", "127.0.0.1:9100"),
        ("CAIRN_WEBHOOK_BODY_LIMIT", "2MiB"),
        ("CAIRN_WEBHOOK_SECRET_FILE", secret_file.to_str().unwrap()),
        ("CAIRN_GITHUB_TOKEN", "ghp_token_value"),
        ("CAIRN_GITHUB_REPOSITORIES", ""),
    ]);
    let s = Settings::load(&flags, &vars).unwrap();
    assert_eq!(s.listen, "127.0.0.1:9100".parse().unwrap());
    assert_eq!(s.data_dir, dir.path().join("state"));
    assert_eq!(s.public_url.as_deref(), Some("https://cairn.example.com"));
    assert_eq!(s.log_format, LogFormat::Json);
    assert_eq!(s.resync_interval, Duration::from_secs(120));
    assert_eq!(s.webhook.body_limit, 2 << 20);
    assert_eq!(s.webhook.dedup_capacity, 500);
    assert_eq!(s.webhook.queue_capacity, 64);
    assert_eq!(Limits::from(&s.webhook).body_limit, 2 << 20);
    assert_eq!(s.github.api_url, "https://ghe.example.com/api/v3");
    // An empty variable counts as unset: the file's list stands.
    assert_eq!(s.github.repositories, ["acme/data", "acme/etl"]);
    assert_eq!(s.github.merge_wait, Duration::from_secs(900));
    assert_eq!(s.file.as_deref(), Some(config.as_path()));
    // The secret file's trailing newline is not part of the secret.
    let secret = s.webhook.secret.as_ref().unwrap();
    let want = WebhookSecret::new("from-a-file").unwrap();
    assert_eq!(
        verify_signature(secret, b"{}", Some(&want.sign(b"{}"))),
        Ok(())
    );
    match &s.github.auth {
        Some(GithubAuth::Token(token)) => assert_eq!(token.expose(), "ghp_token_value"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_file_means_defaults_and_the_documented_example_says_the_same() {
    let vars = env(&[("CAIRN_WEBHOOK_SECRET", "s")]);
    let defaults = Settings::load(&Flags::default(), &vars).unwrap();
    assert_eq!(defaults.listen, DEFAULT_LISTEN);
    assert_eq!(defaults.webhook.body_limit, DEFAULT_BODY_LIMIT);
    assert_eq!(defaults.webhook.dedup_capacity, DEFAULT_DEDUP_CAPACITY);
    assert!(defaults.file.is_none());

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/cairn.toml");
    let vars = env(&[
        ("CAIRN_WEBHOOK_SECRET", "s"),
        ("CAIRN_CONFIG", example.to_str().unwrap()),
    ]);
    let documented = Settings::load(&Flags::default(), &vars).unwrap();
    assert_eq!(documented.file.as_deref(), Some(example.as_path()));
    // Everything but paths (relative to the file) is the default.
    let strip = |s: &Settings| {
        format!(
            "{:?}",
            (
                s.listen,
                &s.public_url,
                s.log_format,
                s.resync_interval,
                s.webhook.body_limit,
                s.webhook.body_timeout,
                s.webhook.dedup_capacity,
                s.webhook.queue_capacity,
                &s.github.api_url,
                &s.github.repositories,
                s.github.merge_wait,
                (s.catchup_window, s.commands, s.api.token.is_some()),
            )
        )
    };
    assert_eq!(strip(&documented), strip(&defaults));
    assert_eq!(
        documented.data_dir,
        example.parent().unwrap().join(".cairn")
    );

    // A settings file that is named but missing is an error, not defaults.
    let flags = Flags {
        config: Some("/nonexistent/cairn.toml".into()),
        ..Flags::default()
    };
    let err = Settings::load(&flags, &vars).unwrap_err();
    assert!(matches!(err, SettingsError::Read { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/cairn.toml"), "{err}");
}

#[test]
fn command_access_catchup_window_and_the_api_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "cairn.toml",
        "catchup_window = \"2h\"\n[commands]\nmin_permission = \"maintain\"\nallow_forks = true\n",
    );
    let flags = Flags {
        config: Some(config.clone()),
        ..Flags::default()
    };
    let vars = env(&[
        ("CAIRN_WEBHOOK_SECRET", "s"),
        ("CAIRN_API_TOKEN", "api-token-value-42"),
        ("CAIRN_COMMANDS_ALLOW_FORKS", "false"),
    ]);
    let s = Settings::load(&flags, &vars).unwrap();
    assert_eq!(s.catchup_window, Duration::from_secs(7200));
    assert_eq!(
        s.commands.min_permission,
        cairn::github::Permission::Maintain
    );
    assert!(!s.commands.allow_forks, "the environment wins");
    assert_eq!(s.api.token.as_ref().unwrap().expose(), "api-token-value-42");
    assert!(!format!("{s:?}").contains("api-token-value-42"));

    let bad = write(
        dir.path(),
        "bad.toml",
        "[commands]\nmin_permission = \"owner\"\n[api]\ntoken = \"api-token-in-file\"\n",
    );
    let err = Settings::from_toml(
        &std::fs::read_to_string(&bad).unwrap(),
        &bad,
        &Flags::default(),
        &env(&[("CAIRN_WEBHOOK_SECRET", "s")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`owner` is not a repository role"), "{err}");
    assert!(err.contains("CAIRN_API_TOKEN"), "{err}");
    assert!(!err.contains("api-token-in-file"), "{err}");
    let err = Settings::load(
        &Flags::default(),
        &env(&[("CAIRN_WEBHOOK_SECRET", "s"), ("CAIRN_API_TOKEN", "")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("CAIRN_API_TOKEN"), "{err}");
}

#[test]
fn max_active_runs_from_the_file_the_environment_or_the_machine() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "cairn.toml", "max_active_runs = 12\n");
    let flags = Flags {
        config: Some(config.clone()),
        ..Flags::default()
    };
    let secret = ("CAIRN_WEBHOOK_SECRET", "s");
    let s = Settings::load(&flags, &env(&[secret])).unwrap();
    assert_eq!(s.max_active_runs, Some(12));
    let s = Settings::load(&flags, &env(&[secret, ("CAIRN_MAX_ACTIVE_RUNS", "3")])).unwrap();
    assert_eq!(s.max_active_runs, Some(3), "the environment wins");
    let s = Settings::load(&Flags::default(), &env(&[secret])).unwrap();
    assert_eq!(s.max_active_runs, None, "unset: the service decides");

    let bad = "executor = \"local\"\nmax_active_runs = 0\n";
    let err = Settings::from_toml(bad, &config, &Flags::default(), &env(&[secret]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cairn.toml:2:19"), "{err}");
    assert!(err.contains("max_active_runs"), "{err}");
    assert!(err.contains("at least 1"), "{err}");
    let err = Settings::load(&flags, &env(&[secret, ("CAIRN_MAX_ACTIVE_RUNS", "many")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("CAIRN_MAX_ACTIVE_RUNS"), "{err}");
}

#[test]
fn a_secret_in_the_settings_file_is_refused_at_its_place_without_echoing_it() {
    let text = "listen = \"127.0.0.1:8080\"\n\n[webhook]\nsecret = \"hunter2-in-the-file\"\n";
    let err = Settings::from_toml(
        text,
        Path::new("deploy/cairn.toml"),
        &Flags::default(),
        &env(&[("CAIRN_WEBHOOK_SECRET", "s")]),
    )
    .unwrap_err();
    let shown = err.to_string();
    assert!(matches!(err, SettingsError::File(_)), "{shown}");
    assert!(
        shown.starts_with("deploy/cairn.toml:4:1: `[webhook] secret`: secrets are never read"),
        "{shown}"
    );
    assert!(shown.contains("CAIRN_WEBHOOK_SECRET"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!format!("{err:?}").contains("hunter2"));
}

#[test]
fn no_webhook_secret_is_refused_unless_insecure_is_asked_for() {
    let err = Settings::from_toml(
        "",
        Path::new("cairn.toml"),
        &Flags::default(),
        &Env::default(),
    )
    .unwrap_err();
    assert!(matches!(err, SettingsError::MissingWebhookSecret));
    let shown = err.to_string();
    for hint in [
        "CAIRN_WEBHOOK_SECRET",
        "CAIRN_WEBHOOK_SECRET_FILE",
        "--insecure-no-signature",
    ] {
        assert!(shown.contains(hint), "{shown}");
    }
    let insecure = Flags {
        insecure_no_signature: true,
        ..Flags::default()
    };
    let s = Settings::from_toml("", Path::new("cairn.toml"), &insecure, &Env::default()).unwrap();
    assert!(s.webhook.secret.is_none());
    // An empty secret is not a secret.
    let err = Settings::from_toml(
        "",
        Path::new("cairn.toml"),
        &insecure,
        &env(&[("CAIRN_WEBHOOK_SECRET", "")]),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "CAIRN_WEBHOOK_SECRET: is set but empty");
}

#[test]
fn debug_output_of_settings_and_environment_shows_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let key = write(
        dir.path(),
        "app.pem",
        "-----BEGIN RSA PRIVATE KEY-----\npem-body-secret\n-----END RSA PRIVATE KEY-----\n",
    );
    let text = format!(
        "[github]\napp_id = 42\napp_key_file = {:?}\n",
        key.to_str().unwrap()
    );
    let vars = env(&[("CAIRN_WEBHOOK_SECRET", "webhook-secret-value")]);
    let s = Settings::from_toml(
        &text,
        &dir.path().join("cairn.toml"),
        &Flags::default(),
        &vars,
    )
    .unwrap();
    match &s.github.auth {
        Some(GithubAuth::App {
            app_id,
            key_file,
            private_key,
        }) => {
            assert_eq!(*app_id, 42);
            assert_eq!(key_file, &key);
            assert!(private_key.expose().contains("pem-body-secret"));
        }
        other => panic!("{other:?}"),
    }
    for shown in [format!("{s:?}"), format!("{s:#?}"), format!("{vars:?}")] {
        assert!(!shown.contains("webhook-secret-value"), "{shown}");
        assert!(!shown.contains("pem-body-secret"), "{shown}");
    }
    assert!(format!("{vars:?}").contains("CAIRN_WEBHOOK_SECRET"));
}

#[test]
fn bad_values_are_named_by_their_place_or_variable() {
    let vars = env(&[("CAIRN_WEBHOOK_SECRET", "s"), ("CAIRN_LISTEN", "localhost")]);
    let err =
        Settings::from_toml("", Path::new("cairn.toml"), &Flags::default(), &vars).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("CAIRN_LISTEN: `localhost` is not an IP address and port"),
        "{err}"
    );

    // Every problem in the file at once, in order.
    let text = "log_format = \"yaml\"\n[github]\napp_id = 7\nmerge_wait = \"soon\"\n";
    let vars = env(&[("CAIRN_WEBHOOK_SECRET", "s")]);
    let err =
        Settings::from_toml(text, Path::new("cairn.toml"), &Flags::default(), &vars).unwrap_err();
    let SettingsError::File(diagnostics) = &err else {
        panic!("{err}")
    };
    let headlines: Vec<String> = diagnostics.iter().map(|d| d.headline()).collect();
    assert_eq!(headlines.len(), 2, "{headlines:#?}");
    assert!(headlines[0].starts_with("cairn.toml:1:14: `log_format`: `yaml` is not a log format"));
    assert!(headlines[1]
        .starts_with("cairn.toml:4:14: `[github] merge_wait`: `soon` is not a duration"));

    // Settings that only make sense together.
    let text = "[github]\napp_id = 7\n";
    let err =
        Settings::from_toml(text, Path::new("cairn.toml"), &Flags::default(), &vars).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cairn.toml:2:10: a GitHub App needs its private key too"),
        "{err}"
    );
}
