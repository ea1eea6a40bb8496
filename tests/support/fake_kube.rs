//! A fake Kubernetes API server for tests: axum on 127.0.0.1, speaking the
//! API server's JSON wire format for the calls cairn's controller makes,
//! with a scripted kubelet. None of this ships.
//!
//! What it does as the real one does:
//! - objects under `/api/v1/namespaces/{ns}/{plural}` and
//!   `/apis/{group}/{version}/namespaces/{ns}/{plural}` for pods (and their
//!   `log`), persistentvolumeclaims, leases and cairn's pipelineruns (with a
//!   `status` subresource: writes to the object ignore status, writes to
//!   `/status` change only status);
//! - every write bumps one cluster-wide resourceVersion; create answers 409
//!   AlreadyExists for a taken name; a write whose `metadata.resourceVersion`
//!   (or a delete whose `preconditions.uid`) does not match answers 409
//!   Conflict; errors are `Status` objects;
//! - list with `labelSelector` (`k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-joined;
//!   set-based selectors are not supported) returns the list's
//!   resourceVersion; watch (`watch=true`) replays the history after the given
//!   resourceVersion, or the current objects as ADDED when it is empty or 0,
//!   then streams events as JSON lines until `timeoutSeconds`; a
//!   resourceVersion older than the compacted history gets the 410 Gone
//!   `ERROR` event (see [`FakeKube::compact`]);
//! - deleting an owner deletes the objects whose ownerReferences name its uid
//!   (the garbage collector), unless `propagationPolicy` is `Orphan`.
//!
//! Differences, on purpose: deletion is immediate (no grace period); the
//! kubelet is a script per step and attempt ([`Behavior`]) that moves a pod
//! through Pending, Running and Succeeded or Failed in milliseconds, with the
//! container states, exit codes, termination messages and logs a real one
//! reports.
//!
//! Include it from a test with `#[path = "support/fake_kube.rs"] mod fake_kube;`.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

/// How the scripted kubelet runs a pod.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// Runs for `run_for`, prints `logs`, exits 0 leaving `message` in its
    /// termination log.
    Succeed {
        run_for: Duration,
        logs: Vec<String>,
        message: Option<String>,
    },
    /// Runs for `run_for`, prints `logs`, exits with `exit_code`.
    Fail {
        run_for: Duration,
        exit_code: i32,
        logs: Vec<String>,
    },
    /// The image cannot be pulled: waits with `ErrImagePull` for ever.
    ImagePullError,
    /// No node fits: never scheduled, Pending for ever.
    StayPending,
    /// Runs for `run_for`, then the node evicts it.
    Evict { run_for: Duration },
    /// Runs until deleted.
    Hang,
    /// Really runs the pod's command as a local process (see [`Exec`]).
    Exec(Exec),
}

/// How the kubelet really runs a pod: its container's command as a local
/// process, with `/workspace` mapped to `root/<claim>/<subPath>` (so a run's
/// steps share their workspace as on a node), `cairn` to the binary under
/// test, and the termination log to a file read back as the termination
/// message. The environment is the pod's plus `env` (what a service
/// account's IRSA would give: the remote's credentials), nothing else.
#[derive(Debug, Clone)]
pub struct Exec {
    pub root: std::path::PathBuf,
    pub cairn: std::path::PathBuf,
    pub env: Vec<(String, String)>,
}

impl Behavior {
    pub fn succeed(logs: &[&str]) -> Behavior {
        Behavior::Succeed {
            run_for: Duration::from_millis(30),
            logs: logs.iter().map(|s| s.to_string()).collect(),
            message: None,
        }
    }

    pub fn fail(exit_code: i32, logs: &[&str]) -> Behavior {
        Behavior::Fail {
            run_for: Duration::from_millis(30),
            exit_code,
            logs: logs.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// One event as a watch delivers it.
#[derive(Debug, Clone)]
struct Event {
    rv: u64,
    collection: String,
    namespace: String,
    kind: &'static str,
    object: Value,
}

/// A pod the fake created, in creation order (409s are not creations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedPod {
    pub name: String,
    pub uid: String,
    pub step: String,
    pub attempt: String,
}

type Key = (String, String, String);

pub struct World {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: Vec<Event>,
    /// Events at or below this resourceVersion are forgotten.
    compacted: u64,
    events: broadcast::Sender<Event>,
    /// Bumped by [`FakeKube::drop_watches`]; open watches end when it moves.
    epoch: tokio::sync::watch::Sender<u64>,
    /// (step, attempt or any, behaviour); the last match wins.
    scripts: Vec<(String, Option<u32>, Behavior)>,
    /// How pods without a script behave (else: succeed at once).
    default: Option<Behavior>,
    /// Output per pod uid.
    logs: HashMap<String, Vec<String>>,
    pub created_pods: Vec<CreatedPod>,
    /// Method and path of every request.
    pub requests: Vec<(String, String)>,
    /// Pod create requests answered 409.
    pub create_conflicts: usize,
}

type Shared = Arc<Mutex<World>>;

/// A running fake; the server and its kubelet stop when it is dropped.
pub struct FakeKube {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    world: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeKube {
    pub async fn start() -> FakeKube {
        let (events, _) = broadcast::channel(4096);
        let (epoch, _) = tokio::sync::watch::channel(0);
        let world = Arc::new(Mutex::new(World {
            rv: 100,
            objects: BTreeMap::new(),
            history: Vec::new(),
            compacted: 0,
            events,
            epoch,
            scripts: Vec::new(),
            default: None,
            logs: HashMap::new(),
            created_pods: Vec::new(),
            requests: Vec::new(),
            create_conflicts: 0,
        }));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&world));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeKube {
            url: format!("http://{addr}"),
            world,
            server,
        }
    }

    /// A kube client for namespace `ns` of this server.
    pub fn client(&self, ns: &str) -> kube::Client {
        let mut config = kube::Config::new(self.url.parse().expect("url"));
        config.default_namespace = ns.to_string();
        kube::Client::try_from(config).expect("client")
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    /// From now on, pods of `step` (attempt `attempt`, or any) behave so.
    pub fn script(&self, step: &str, attempt: Option<u32>, behavior: Behavior) {
        self.world()
            .scripts
            .push((step.to_string(), attempt, behavior));
    }

    /// From now on, pods without a script behave so (e.g. [`Behavior::Exec`]).
    pub fn script_default(&self, behavior: Behavior) {
        self.world().default = Some(behavior);
    }

    /// Forgets the watch history up to now: a watch resuming from an older
    /// resourceVersion gets 410 Gone, as after etcd compaction.
    pub fn compact(&self) {
        let mut w = self.world();
        w.compacted = w.rv;
        w.history.clear();
    }

    /// Ends every open watch, as an API server restart does.
    pub fn drop_watches(&self) {
        let w = self.world();
        w.epoch.send_modify(|e| *e += 1);
    }

    /// The object `plural/name` in `ns`.
    pub fn get(&self, plural: &str, ns: &str, name: &str) -> Option<Value> {
        self.world()
            .objects
            .get(&(plural.into(), ns.into(), name.into()))
            .cloned()
    }

    /// Every object of `plural` in `ns`.
    pub fn list(&self, plural: &str, ns: &str) -> Vec<Value> {
        self.world()
            .objects
            .iter()
            .filter(|((c, n, _), _)| c == plural && n == ns)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Stores `object` as if a client had created it (kubelet included).
    pub fn insert(&self, plural: &str, ns: &str, object: Value) -> Value {
        let (status, body) = create(&self.world, plural, ns, object);
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Deletes an object the way `kubectl delete` would, with `policy` as
    /// propagationPolicy (`Orphan` keeps dependents).
    pub fn delete(&self, plural: &str, ns: &str, name: &str, policy: &str) {
        let body = json!({"propagationPolicy": policy});
        let (status, body) = delete(&self.world, plural, ns, name, &body);
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub fn created_pods(&self) -> Vec<CreatedPod> {
        self.world().created_pods.clone()
    }
}

fn lock(world: &Shared) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|e| e.into_inner())
}

/// apiVersion, kind and whether it has a status subresource.
fn describe(plural: &str) -> Option<(&'static str, &'static str, bool)> {
    Some(match plural {
        "pods" => ("v1", "Pod", true),
        "persistentvolumeclaims" => ("v1", "PersistentVolumeClaim", true),
        "leases" => ("coordination.k8s.io/v1", "Lease", false),
        "pipelineruns" => ("cairn.dev/v1alpha1", "PipelineRun", true),
        // What kube's event Recorder writes (events.k8s.io/v1).
        "events" => ("events.k8s.io/v1", "Event", false),
        _ => return None,
    })
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn status_error(code: StatusCode, reason: &str, message: &str) -> (StatusCode, Value) {
    (
        code,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code.as_u16(),
        }),
    )
}

fn reply((status, body): (StatusCode, Value)) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The parts of an API path.
struct Target {
    plural: String,
    namespace: String,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match parts.as_slice() {
        ["api", "v1", rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return None,
    };
    match rest {
        ["namespaces", ns, plural, tail @ ..] if tail.len() <= 2 => Some(Target {
            plural: plural.to_string(),
            namespace: ns.to_string(),
            name: tail.first().map(|s| s.to_string()),
            sub: tail.get(1).map(|s| s.to_string()),
        }),
        _ => None,
    }
}

async fn handle(
    State(world): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    lock(&world)
        .requests
        .push((method.to_string(), request.uri().to_string()));
    let Some(target) = parse_path(&path) else {
        return reply(status_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        ));
    };
    if describe(&target.plural).is_none() {
        return reply(status_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    let body = axum::body::to_bytes(request.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    let json_body = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let ns = target.namespace.clone();
    let plural = target.plural.clone();
    match (&method, target.name.as_deref(), target.sub.as_deref()) {
        (&Method::GET, None, None) => {
            let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
            let selector = query.get("labelSelector").cloned().unwrap_or_default();
            if watch {
                watch_response(&world, &plural, &ns, &selector, &query)
            } else {
                reply(list(&world, &plural, &ns, &selector))
            }
        }
        (&Method::POST, None, None) => reply(create(&world, &plural, &ns, json_body())),
        (&Method::GET, Some(name), None) => reply(get(&world, &plural, &ns, name)),
        (&Method::GET, Some(name), Some("log")) if plural == "pods" => {
            pod_log(&world, &ns, name, &query)
        }
        (&Method::PUT, Some(name), sub) => {
            reply(update(&world, &plural, &ns, name, sub, json_body(), false))
        }
        (&Method::PATCH, Some(name), sub) => {
            reply(update(&world, &plural, &ns, name, sub, json_body(), true))
        }
        (&Method::DELETE, Some(name), None) => {
            reply(delete(&world, &plural, &ns, name, &json_body()))
        }
        _ => reply(status_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )),
    }
}

/// Records a change: bumps the resourceVersion, keeps history, tells watches.
fn emit(w: &mut World, collection: &str, namespace: &str, kind: &'static str, object: &Value) {
    let event = Event {
        rv: w.rv,
        collection: collection.to_string(),
        namespace: namespace.to_string(),
        kind,
        object: object.clone(),
    };
    w.history.push(event.clone());
    let _ = w.events.send(event);
}

fn next_rv(w: &mut World) -> String {
    w.rv += 1;
    w.rv.to_string()
}

fn labels_match(object: &Value, selector: &str) -> bool {
    let labels = object["metadata"]["labels"].as_object();
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                get(k.trim()) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                get(k.trim()) == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                get(k.trim()).is_none()
            } else {
                get(term).is_some()
            }
        })
}

fn list(world: &Shared, plural: &str, ns: &str, selector: &str) -> (StatusCode, Value) {
    let w = lock(world);
    let (api_version, kind, _) = describe(plural).expect("known");
    let items: Vec<Value> = w
        .objects
        .iter()
        .filter(|((c, n, _), v)| c == plural && n == ns && labels_match(v, selector))
        .map(|(_, v)| v.clone())
        .collect();
    (
        StatusCode::OK,
        json!({
            "apiVersion": api_version,
            "kind": format!("{kind}List"),
            "metadata": { "resourceVersion": w.rv.to_string() },
            "items": items,
        }),
    )
}

fn get(world: &Shared, plural: &str, ns: &str, name: &str) -> (StatusCode, Value) {
    let w = lock(world);
    match w.objects.get(&(plural.into(), ns.into(), name.into())) {
        Some(v) => (StatusCode::OK, v.clone()),
        None => not_found(plural, name),
    }
}

fn not_found(plural: &str, name: &str) -> (StatusCode, Value) {
    status_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{plural} \"{name}\" not found"),
    )
}

fn conflict(plural: &str, name: &str) -> (StatusCode, Value) {
    status_error(
        StatusCode::CONFLICT,
        "Conflict",
        &format!("Operation cannot be fulfilled on {plural} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"),
    )
}

fn create(world: &Shared, plural: &str, ns: &str, mut object: Value) -> (StatusCode, Value) {
    let (api_version, kind, _) = describe(plural).expect("known");
    let mut w = lock(world);
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return status_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "metadata is required",
        );
    };
    let name = match (
        meta.get("name").and_then(Value::as_str),
        meta.get("generateName").and_then(Value::as_str),
    ) {
        (Some(n), _) if !n.is_empty() => n.to_string(),
        (_, Some(prefix)) => format!(
            "{prefix}{}",
            &uuid::Uuid::new_v4().simple().to_string()[..5]
        ),
        _ => {
            return status_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                "metadata.name: Required value: name or generateName is required",
            )
        }
    };
    let key = (plural.to_string(), ns.to_string(), name.clone());
    if w.objects.contains_key(&key) {
        if plural == "pods" {
            w.create_conflicts += 1;
        }
        return status_error(
            StatusCode::CONFLICT,
            "AlreadyExists",
            &format!("{plural} \"{name}\" already exists"),
        );
    }
    let uid = uuid::Uuid::new_v4().to_string();
    let rv = next_rv(&mut w);
    meta.insert("name".into(), json!(name));
    meta.insert("namespace".into(), json!(ns));
    meta.insert("uid".into(), json!(uid));
    meta.insert("resourceVersion".into(), json!(rv));
    meta.insert("creationTimestamp".into(), json!(now_text()));
    meta.insert("generation".into(), json!(1));
    meta.remove("generateName");
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    if plural == "pods" {
        object["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        let labels = &object["metadata"]["labels"];
        let step = object["metadata"]["annotations"]["cairn.dev/step"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let attempt = labels["cairn.dev/attempt"]
            .as_str()
            .unwrap_or("")
            .to_string();
        w.created_pods.push(CreatedPod {
            name: name.clone(),
            uid: uid.clone(),
            step,
            attempt,
        });
    } else if plural == "pipelineruns" {
        if let Some(o) = object.as_object_mut() {
            o.remove("status");
        }
    }
    w.objects.insert(key, object.clone());
    emit(&mut w, plural, ns, "ADDED", &object);
    drop(w);
    if plural == "pods" {
        tokio::spawn(kubelet(Arc::clone(world), ns.to_string(), name, uid));
    }
    (StatusCode::CREATED, object)
}

fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(entries) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let map = target.as_object_mut().expect("object");
            for (k, v) in entries {
                if v.is_null() {
                    map.remove(k);
                } else {
                    merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn update(
    world: &Shared,
    plural: &str,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    body: Value,
    is_patch: bool,
) -> (StatusCode, Value) {
    let (_, _, has_status) = describe(plural).expect("known");
    if sub.is_some_and(|s| s != "status") {
        return not_found(plural, name);
    }
    let mut w = lock(world);
    let key = (plural.to_string(), ns.to_string(), name.to_string());
    let Some(current) = w.objects.get(&key).cloned() else {
        return not_found(plural, name);
    };
    let wanted_rv = body["metadata"]["resourceVersion"].as_str();
    if wanted_rv.is_some_and(|rv| Some(rv) != current["metadata"]["resourceVersion"].as_str()) {
        return conflict(plural, name);
    }
    let mut candidate = if is_patch {
        let mut c = current.clone();
        merge_patch(&mut c, &body);
        c
    } else {
        body
    };
    // Identity and bookkeeping are the server's.
    for field in [
        "uid",
        "creationTimestamp",
        "namespace",
        "name",
        "generation",
    ] {
        candidate["metadata"][field] = current["metadata"][field].clone();
    }
    candidate["apiVersion"] = current["apiVersion"].clone();
    candidate["kind"] = current["kind"].clone();
    let mut updated = current.clone();
    if has_status && sub == Some("status") {
        updated["status"] = candidate["status"].clone();
    } else if has_status {
        let status = current.get("status").cloned();
        updated = candidate;
        match status {
            Some(s) => updated["status"] = s,
            None => {
                if let Some(o) = updated.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        if updated.get("spec") != current.get("spec") {
            let generation = current["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            updated["metadata"]["generation"] = json!(generation);
        }
    } else {
        updated = candidate;
    }
    let rv = next_rv(&mut w);
    updated["metadata"]["resourceVersion"] = json!(rv);
    w.objects.insert(key, updated.clone());
    emit(&mut w, plural, ns, "MODIFIED", &updated);
    (StatusCode::OK, updated)
}

fn delete(
    world: &Shared,
    plural: &str,
    ns: &str,
    name: &str,
    options: &Value,
) -> (StatusCode, Value) {
    let mut w = lock(world);
    let key = (plural.to_string(), ns.to_string(), name.to_string());
    let Some(current) = w.objects.get(&key).cloned() else {
        return not_found(plural, name);
    };
    if let Some(uid) = options["preconditions"]["uid"].as_str() {
        if Some(uid) != current["metadata"]["uid"].as_str() {
            return status_error(
                StatusCode::CONFLICT,
                "Conflict",
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    current["metadata"]["uid"].as_str().unwrap_or("")
                ),
            );
        }
    }
    let mut gone = vec![(key, current.clone())];
    let orphan = options["propagationPolicy"].as_str() == Some("Orphan");
    if !orphan {
        // The garbage collector: dependents go with their owner.
        let owner = current["metadata"]["uid"]
            .as_str()
            .unwrap_or("")
            .to_string();
        for (k, v) in &w.objects {
            let owned = v["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r["uid"].as_str() == Some(owner.as_str()))
                });
            if owned {
                gone.push((k.clone(), v.clone()));
            }
        }
    }
    for (k, mut v) in gone {
        w.objects.remove(&k);
        let rv = next_rv(&mut w);
        v["metadata"]["resourceVersion"] = json!(rv);
        emit(&mut w, &k.0, &k.1, "DELETED", &v);
    }
    (StatusCode::OK, current)
}

fn pod_log(world: &Shared, ns: &str, name: &str, query: &HashMap<String, String>) -> Response {
    let w = lock(world);
    let Some(pod) = w.objects.get(&("pods".into(), ns.into(), name.into())) else {
        return reply(not_found("pods", name));
    };
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let started = pod["status"]["containerStatuses"][0]["state"]
        .as_object()
        .is_some_and(|s| s.contains_key("running") || s.contains_key("terminated"));
    if !started {
        return reply(status_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("container \"step\" in pod \"{name}\" is waiting to start: ContainerCreating"),
        ));
    }
    let lines = w.logs.get(uid).cloned().unwrap_or_default();
    let tail = query
        .get("tailLines")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(lines.len());
    let shown = &lines[lines.len().saturating_sub(tail)..];
    let mut text = shown.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
}

fn watch_response(
    world: &Shared,
    plural: &str,
    ns: &str,
    selector: &str,
    query: &HashMap<String, String>,
) -> Response {
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .unwrap_or(1800u64);
    let since = query
        .get("resourceVersion")
        .and_then(|rv| rv.parse::<u64>().ok())
        .unwrap_or(0);
    let (initial, rx, epoch, gone) = {
        let w = lock(world);
        let rx = w.events.subscribe();
        let epoch = w.epoch.subscribe();
        let matches = |e: &Event| {
            e.collection == plural && e.namespace == ns && labels_match(&e.object, selector)
        };
        if since == 0 {
            let items: Vec<Event> = w
                .objects
                .iter()
                .filter(|((c, n, _), v)| c == plural && n == ns && labels_match(v, selector))
                .map(|((c, n, _), v)| Event {
                    rv: w.rv,
                    collection: c.clone(),
                    namespace: n.clone(),
                    kind: "ADDED",
                    object: v.clone(),
                })
                .collect();
            (items, rx, epoch, false)
        } else if since < w.compacted {
            (Vec::new(), rx, epoch, true)
        } else {
            let items = w
                .history
                .iter()
                .filter(|e| e.rv > since && matches(e))
                .cloned()
                .collect();
            (items, rx, epoch, false)
        }
    };
    let line = |kind: &str, object: &Value| {
        Bytes::from(format!("{}\n", json!({"type": kind, "object": object})))
    };
    if gone {
        let event = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {since} ({})", lock(world).compacted),
            "reason": "Expired", "code": 410,
        });
        let body = Body::from(line("ERROR", &event));
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
    }
    let last = initial.iter().map(|e| e.rv).max().unwrap_or(since);
    let plural = plural.to_string();
    let ns = ns.to_string();
    let selector = selector.to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    struct St {
        initial: std::vec::IntoIter<Event>,
        rx: broadcast::Receiver<Event>,
        epoch: tokio::sync::watch::Receiver<u64>,
        last: u64,
    }
    let state = St {
        initial: initial.into_iter(),
        rx,
        epoch,
        last,
    };
    let stream = futures::stream::unfold(state, move |mut st| {
        let plural = plural.clone();
        let ns = ns.clone();
        let selector = selector.clone();
        async move {
            if let Some(e) = st.initial.next() {
                let bytes =
                    Bytes::from(format!("{}\n", json!({"type": e.kind, "object": e.object})));
                return Some((Ok::<_, Infallible>(bytes), st));
            }
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => return None,
                    _ = st.epoch.changed() => return None,
                    received = st.rx.recv() => match received {
                        Ok(e) => {
                            if e.rv <= st.last || e.collection != plural || e.namespace != ns || !labels_match(&e.object, &selector) {
                                continue;
                            }
                            st.last = e.rv;
                            let bytes = Bytes::from(format!("{}\n", json!({"type": e.kind, "object": e.object})));
                            return Some((Ok(bytes), st));
                        }
                        // A slow watcher is cut off; it resumes from its last version.
                        Err(_) => return None,
                    }
                }
            }
        }
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Changes a pod's status if it still exists with `uid`; false when it is gone.
fn set_pod_status(
    world: &Shared,
    ns: &str,
    name: &str,
    uid: &str,
    change: impl FnOnce(&mut Value),
) -> bool {
    let mut w = lock(world);
    let key = ("pods".to_string(), ns.to_string(), name.to_string());
    let Some(mut pod) = w.objects.get(&key).cloned() else {
        return false;
    };
    if pod["metadata"]["uid"].as_str() != Some(uid) {
        return false;
    }
    change(&mut pod["status"]);
    let rv = next_rv(&mut w);
    pod["metadata"]["resourceVersion"] = json!(rv);
    w.objects.insert(key, pod.clone());
    emit(&mut w, "pods", ns, "MODIFIED", &pod);
    true
}

fn alive(world: &Shared, ns: &str, name: &str, uid: &str) -> bool {
    lock(world)
        .objects
        .get(&("pods".to_string(), ns.to_string(), name.to_string()))
        .is_some_and(|p| p["metadata"]["uid"].as_str() == Some(uid))
}

/// The scripted kubelet for one pod.
async fn kubelet(world: Shared, ns: String, name: String, uid: String) {
    let (behavior, image) = {
        let w = lock(&world);
        let Some(pod) = w
            .objects
            .get(&("pods".to_string(), ns.clone(), name.clone()))
        else {
            return;
        };
        let step = pod["metadata"]["annotations"]["cairn.dev/step"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let attempt: Option<u32> = pod["metadata"]["labels"]["cairn.dev/attempt"]
            .as_str()
            .and_then(|a| a.parse().ok());
        let image = pod["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let scripted = w
            .scripts
            .iter()
            .rev()
            .find(|(s, a, _)| *s == step && a.is_none_or(|a| Some(a) == attempt))
            .map(|(_, _, b)| b.clone());
        let default = if step == "cairn.publish" {
            Behavior::Succeed {
                run_for: Duration::from_millis(30),
                logs: vec!["published".into()],
                message: Some(r#"{"md5":"d1a0b622cd467ce72b35413f361b44b6","size":13420,"nfiles":null,"uploaded":1,"skipped":0,"bytes_uploaded":13420}"#.into()),
            }
        } else {
            Behavior::succeed(&[&format!("{step} done")])
        };
        (
            scripted.or_else(|| w.default.clone()).unwrap_or(default),
            image,
        )
    };
    let tick = Duration::from_millis(15);
    tokio::time::sleep(tick).await;
    if matches!(behavior, Behavior::StayPending) {
        set_pod_status(&world, &ns, &name, &uid, |s| {
            s["conditions"] = json!([{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient cpu.",
                "lastTransitionTime": now_text(),
            }]);
        });
        return;
    }
    let scheduled = set_pod_status(&world, &ns, &name, &uid, |s| {
        s["conditions"] =
            json!([{"type": "PodScheduled", "status": "True", "lastTransitionTime": now_text()}]);
        s["hostIP"] = json!("10.0.0.7");
        s["startTime"] = json!(now_text());
        s["containerStatuses"] = json!([{
            "name": "step", "image": image, "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}},
        }]);
    });
    if !scheduled {
        return;
    }
    tokio::time::sleep(tick).await;
    if matches!(behavior, Behavior::ImagePullError) {
        set_pod_status(&world, &ns, &name, &uid, |s| {
            s["containerStatuses"][0]["state"] = json!({"waiting": {
                "reason": "ErrImagePull",
                "message": format!("rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found"),
            }});
        });
        return;
    }
    let started = now_text();
    let running = set_pod_status(&world, &ns, &name, &uid, |s| {
        s["phase"] = json!("Running");
        s["podIP"] = json!("10.1.2.3");
        s["containerStatuses"][0]["ready"] = json!(true);
        s["containerStatuses"][0]["started"] = json!(true);
        s["containerStatuses"][0]["state"] = json!({"running": {"startedAt": started}});
    });
    if !running {
        return;
    }
    if let Behavior::Exec(exec) = &behavior {
        let pod = lock(&world)
            .objects
            .get(&("pods".to_string(), ns.clone(), name.clone()))
            .cloned();
        let Some(pod) = pod else { return };
        // A deleted pod's container is killed, as a kubelet does.
        let deleted = async {
            while alive(&world, &ns, &name, &uid) {
                tokio::time::sleep(tick).await;
            }
        };
        let (code, logs, message) = tokio::select! {
            ran = exec_pod(exec, &pod, &uid) => ran,
            () = deleted => return,
        };
        lock(&world).logs.insert(uid.clone(), logs);
        let finished = now_text();
        set_pod_status(&world, &ns, &name, &uid, |s| {
            let mut t = json!({"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
                "startedAt": started, "finishedAt": finished});
            if !message.is_empty() {
                t["message"] = json!(message);
            }
            s["phase"] = json!(if code == 0 { "Succeeded" } else { "Failed" });
            s["containerStatuses"][0]["state"] = json!({"terminated": t});
            s["containerStatuses"][0]["ready"] = json!(false);
        });
        return;
    }
    let (run_for, logs) = match &behavior {
        Behavior::Succeed { run_for, logs, .. } | Behavior::Fail { run_for, logs, .. } => {
            (*run_for, logs.clone())
        }
        Behavior::Evict { run_for } => (*run_for, vec!["working".to_string()]),
        _ => (Duration::from_secs(3600 * 24), vec!["working".to_string()]),
    };
    lock(&world).logs.insert(uid.clone(), logs.clone());
    // Sleep in slices so a deleted pod stops its script.
    let until = tokio::time::Instant::now() + run_for;
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(tick.min(until - tokio::time::Instant::now())).await;
        if !alive(&world, &ns, &name, &uid) {
            return;
        }
    }
    let finished = now_text();
    set_pod_status(&world, &ns, &name, &uid, |s| {
        let terminated = |code: i32, reason: &str, message: Option<String>| {
            let mut t = json!({"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": finished});
            if let Some(m) = message {
                t["message"] = json!(m);
            }
            json!({"terminated": t})
        };
        match &behavior {
            Behavior::Succeed { message, .. } => {
                s["phase"] = json!("Succeeded");
                s["containerStatuses"][0]["state"] = terminated(0, "Completed", message.clone());
            }
            Behavior::Fail {
                exit_code, logs, ..
            } => {
                s["phase"] = json!("Failed");
                // terminationMessagePolicy FallbackToLogsOnError.
                let tail = logs
                    .iter()
                    .rev()
                    .take(80)
                    .rev()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n");
                s["containerStatuses"][0]["state"] = terminated(*exit_code, "Error", Some(tail));
            }
            Behavior::Evict { .. } => {
                s["phase"] = json!("Failed");
                s["reason"] = json!("Evicted");
                s["message"] = json!("The node was low on resource: memory. Threshold quantity: 100Mi, available: 12Mi.");
                s["containerStatuses"][0]["state"] =
                    terminated(137, "ContainerStatusUnknown", None);
            }
            _ => {}
        }
        s["containerStatuses"][0]["ready"] = json!(false);
    });
}

/// Runs `pod`'s container as a local process (see [`Exec`]): exit code,
/// output lines, termination message.
async fn exec_pod(exec: &Exec, pod: &Value, uid: &str) -> (i32, Vec<String>, String) {
    let container = &pod["spec"]["containers"][0];
    let claim = pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
        .as_str()
        .unwrap_or("workspace");
    let mut workspace = exec.root.join(claim);
    if let Some(sub) = container["volumeMounts"][0]["subPath"].as_str() {
        workspace = workspace.join(sub);
    }
    std::fs::create_dir_all(&workspace).expect("workspace");
    let terminations = exec.root.join("termination");
    std::fs::create_dir_all(&terminations).expect("termination dir");
    let termination = terminations.join(uid);
    let mount = container["volumeMounts"][0]["mountPath"]
        .as_str()
        .unwrap_or("/workspace")
        .to_string();
    let map = |text: &str| -> String {
        if text == "/dev/termination-log" {
            termination.display().to_string()
        } else if let Some(rest) = text.strip_prefix(&mount) {
            format!("{}{rest}", workspace.display())
        } else {
            text.to_string()
        }
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str()).map(map).collect())
            .unwrap_or_default()
    };
    let mut command = strings(&container["command"]);
    command.extend(strings(&container["args"]));
    if command.first().map(String::as_str) == Some("cairn") {
        command[0] = exec.cairn.display().to_string();
    }
    let mut process = tokio::process::Command::new(&command[0]);
    process
        .args(&command[1..])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &workspace)
        .current_dir(
            container["workingDir"]
                .as_str()
                .map(map)
                .unwrap_or_else(|| workspace.display().to_string()),
        )
        // Its own group, killed with it when the pod goes (see `Group`).
        .process_group(0)
        .kill_on_drop(true);
    for e in container["env"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (e["name"].as_str(), e["value"].as_str()) {
            process.env(k, map(v));
        }
    }
    for (k, v) in &exec.env {
        process.env(k, v);
    }
    process
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = match process.spawn() {
        Ok(child) => child,
        Err(e) => {
            return (
                127,
                vec![format!("exec {}: {e}", command[0])],
                String::new(),
            )
        }
    };
    let _group = child.id().map(Group);
    let output = match child.wait_with_output().await {
        Ok(output) => output,
        Err(e) => {
            return (
                137,
                vec![format!("wait {}: {e}", command[0])],
                String::new(),
            )
        }
    };
    let mut logs: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    logs.extend(
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .map(str::to_string),
    );
    let code = output.status.code().unwrap_or(137);
    let message = match std::fs::read_to_string(&termination) {
        Ok(text) if !text.is_empty() => text,
        // terminationMessagePolicy FallbackToLogsOnError.
        _ if code != 0 => logs
            .iter()
            .rev()
            .take(80)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    (code, logs, message)
}

/// A pod's process group: SIGKILLed when dropped, so a container's
/// children go with it when its pod is deleted mid-run.
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a process group has no memory-safety
        // preconditions; a group already gone answers ESRCH.
        unsafe {
            libc::kill(-(self.0 as i32), libc::SIGKILL);
        }
    }
}
