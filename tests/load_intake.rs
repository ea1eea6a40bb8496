//! Load on `cairn serve`'s webhook intake, end to end: the real binary, the
//! fake GitHub, a real bare repository.
//!
//! For each `concurrency` policy, 1,000 pushes of distinct commits land on
//! `main` within one second, each announced by its own signed `push`
//! delivery, sent by 16 concurrent senders (GitHub delivers in parallel).
//! Then:
//!
//! - every delivery was answered 2xx, each well under GitHub's 10 s delivery
//!   timeout (max and p99 latency are printed);
//! - every delivery was recorded exactly once (`cairn_webhook_deliveries_total`
//!   counts 1,000 queued), and replaying all of them starts nothing (1,000
//!   duplicates, answered 200);
//! - runs were coalesced under the policy: runs of the pipeline never
//!   overlap, there are far fewer runs than pushes (except under `replace`,
//!   where every newer tip cancels the run before it, so count is bounded by
//!   the reconciles), and under `queue` and `replace` the newest commit is the
//!   last one run, and it succeeded;
//! - the server's peak resident memory (VmHWM) stays under a generous bound
//!   (printed).

use crate::support::served;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn::store::Store;
use served::*;

const DELIVERIES: usize = 1000;
const SENDERS: usize = 16;
/// The burst is spread over this long: one delivery per millisecond.
const BURST: Duration = Duration::from_secs(1);
/// Peak resident memory allowed to the server through the whole burst.
const MEMORY_BOUND_KB: u64 = 300 * 1024;
/// "Well under" GitHub's 10 s: a delivery slower than this fails the test.
const LATENCY_BOUND: Duration = Duration::from_secs(3);

fn config(policy: &str) -> String {
    format!(
        r#"[pipelines.table]
dataset = "data/table.csv"
merge = "review"
concurrency = "{policy}"
on_push = {{ paths = ["etl/**"] }}

[pipelines.table.tasks.build]
command = ["sh", "-c", "sleep 0.3 && mkdir -p data && cat etl/rows.csv > data/table.csv"]
"#
    )
}

/// One delivery as sent: its signed body and id, and what it answered.
struct Delivery {
    id: String,
    body: Vec<u8>,
    signature: String,
}

fn headers(d: &Delivery) -> [(&'static str, String); 5] {
    [
        ("Content-Type", "application/json".to_string()),
        ("X-GitHub-Event", "push".to_string()),
        ("X-GitHub-Delivery", d.id.clone()),
        ("X-Hub-Signature-256", d.signature.clone()),
        ("User-Agent", "GitHub-Hookshot/load".to_string()),
    ]
}

/// Peak resident set of a process, in KiB, from /proc/<pid>/status.
fn vm_hwm_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// The value of one Prometheus series on /metrics (0 when absent).
fn metric(served: &Served, series: &str) -> u64 {
    served
        .get("/metrics")
        .body
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

/// Sends `deliveries` from `SENDERS` threads, delivery `i` not before
/// `start + i * pace`; before sending delivery `i`, `before_send(i)` runs (a
/// push moving `main`). Returns each delivery's status and latency.
fn send_all(
    served: &Served,
    deliveries: &Arc<Vec<Delivery>>,
    pace: Duration,
    before_send: Arc<dyn Fn(usize) + Send + Sync>,
) -> Vec<(u16, Duration)> {
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(vec![(0u16, Duration::ZERO); deliveries.len()]));
    let start = Instant::now();
    let threads: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (next, results, deliveries) = (next.clone(), results.clone(), deliveries.clone());
            let before_send = before_send.clone();
            let addr = served.addr;
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(d) = deliveries.get(i) else {
                    return;
                };
                let due = start + pace * i as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                before_send(i);
                let sent = Instant::now();
                let reply = http(addr, "POST", "/webhook", &headers(d), &d.body);
                results.lock().unwrap()[i] = (reply.status, sent.elapsed());
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    Arc::try_unwrap(results).unwrap().into_inner().unwrap()
}

/// `count` commits, each on the previous one (the first on `base`), each
/// changing `etl/rows.csv`; no ref is moved.
fn chain_of_commits(origin: &std::path::Path, base: &str, count: usize) -> Vec<String> {
    let repo = git2::Repository::open(origin).unwrap();
    let who = git2::Signature::now("Ada", "ada@example.com").unwrap();
    let mut parent = repo
        .find_commit(git2::Oid::from_str(base).unwrap())
        .unwrap();
    let mut commits = Vec::with_capacity(count);
    for i in 0..count {
        let root = parent.tree().unwrap();
        let etl = root.get_name("etl").unwrap().to_object(&repo).unwrap();
        let mut etl = repo.treebuilder(Some(etl.as_tree().unwrap())).unwrap();
        let blob = repo.blob(format!("id,n\n1,{i}\n").as_bytes()).unwrap();
        etl.insert("rows.csv", blob, 0o100644).unwrap();
        let mut top = repo.treebuilder(Some(&root)).unwrap();
        top.insert("etl", etl.write().unwrap(), 0o040000).unwrap();
        let tree = repo.find_tree(top.write().unwrap()).unwrap();
        let oid = repo
            .commit(None, &who, &who, &format!("n = {i}"), &tree, &[&parent])
            .unwrap();
        parent = repo.find_commit(oid).unwrap();
        commits.push(oid.to_string());
    }
    commits
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn burst(policy: &str) {
    let Hosted {
        world,
        fake,
        _runtime,
    } = Hosted::new(&config(policy));
    let served = serve(&world, &fake, &[("CAIRN_LOG", "info")]);
    served.wait_ready();
    let baseline = world.main();

    // 1,000 distinct commits, made ahead (a chain off `main`, reachable from
    // no branch yet) so that the burst itself only moves `main`, which is
    // what a push does to the hosted repository.
    let made = Instant::now();
    let commits = chain_of_commits(&world.origin, &baseline, DELIVERIES);
    eprintln!(
        "{policy}: {DELIVERIES} commits made in {:?}",
        made.elapsed()
    );
    let secret = served.secret.clone();
    let deliveries: Arc<Vec<Delivery>> = Arc::new(
        (0..DELIVERIES)
            .map(|i| {
                let before = if i == 0 { &baseline } else { &commits[i - 1] };
                let after = &commits[i];
                let payload = push_payload(
                    &fake,
                    &world,
                    before,
                    after,
                    &[commit_json(after, &format!("n = {i}"), &["etl/rows.csv"])],
                );
                let body = serde_json::to_vec(&payload).unwrap();
                Delivery {
                    id: format!("00000000-0000-4000-8000-{i:012}"),
                    signature: secret.sign(&body),
                    body,
                }
            })
            .collect(),
    );

    // The push of commit `i`: main moves to it (never backwards, as the
    // senders race each other).
    let repo = Mutex::new((
        git2::Repository::open(&world.origin).unwrap(),
        None::<usize>,
    ));
    let oids: Vec<git2::Oid> = commits
        .iter()
        .map(|c| git2::Oid::from_str(c).unwrap())
        .collect();
    let push = Arc::new(move |i: usize| {
        let mut guard = repo.lock().unwrap();
        if guard.1.is_some_and(|moved| moved >= i) {
            return;
        }
        guard
            .0
            .reference("refs/heads/main", oids[i], true, "push")
            .unwrap();
        guard.1 = Some(i);
    });

    let started = Instant::now();
    let results = send_all(
        &served,
        &deliveries,
        BURST / DELIVERIES as u32,
        push.clone(),
    );
    let took = started.elapsed();
    let newest = commits.last().unwrap().clone();
    assert_eq!(world.main(), newest);

    let refused: Vec<(usize, u16)> = results
        .iter()
        .enumerate()
        .filter(|(_, (s, _))| !(200..300).contains(s))
        .map(|(i, (s, _))| (i, *s))
        .collect();
    assert!(refused.is_empty(), "{policy}: not 2xx: {refused:?}");
    let mut latencies: Vec<Duration> = results.iter().map(|(_, l)| *l).collect();
    latencies.sort();
    let (p50, p99, max) = (
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        *latencies.last().unwrap(),
    );
    eprintln!(
        "{policy}: {DELIVERIES} deliveries sent in {took:?}; latency p50 {p50:?}, p99 {p99:?}, max {max:?}"
    );
    assert!(
        took < BURST * 3,
        "{policy}: the burst took {took:?} to send"
    );
    assert!(
        max < LATENCY_BOUND,
        "{policy}: a delivery took {max:?} (p99 {p99:?})"
    );
    let queued = "cairn_webhook_deliveries_total{event=\"push\",result=\"queued\"}";
    assert_eq!(
        metric(&served, queued),
        DELIVERIES as u64,
        "{policy}: every delivery recorded once"
    );

    // Settled: no active or waiting run, every recorded run ended, (but
    // under forbid, which drops triggers on purpose) the newest commit ran,
    // and nothing changed for a while: a reconcile still under way would
    // start one more run.
    let db = world.data.join("repos/octo/data/cairn.db");
    let store = Store::open(&db).unwrap();
    let mut last_seen: Option<(usize, Instant)> = None;
    let runs = wait(
        &format!("{policy}: the burst's runs to settle"),
        Duration::from_secs(90),
        || {
            let listed = served.get("/api/v1/pipelines/table/runs");
            let listed: serde_json::Value = serde_json::from_str(&listed.body).ok()?;
            let slot = &listed["pipelines"][0];
            let runs = store.runs(Some("table"), 10_000).ok()?;
            let idle = slot["active"].is_null()
                && slot["waiting"].is_null()
                && !runs.is_empty()
                && runs.iter().all(|r| r.phase.is_final())
                && (policy == "forbid" || runs.iter().any(|r| r.source_commit == newest));
            if !idle {
                last_seen = None;
                return None;
            }
            match last_seen {
                Some((count, since)) if count == runs.len() => {
                    (since.elapsed() > Duration::from_secs(2)).then_some(runs)
                }
                _ => {
                    last_seen = Some((runs.len(), Instant::now()));
                    None
                }
            }
        },
    );
    let mut runs = runs;
    runs.sort_by_key(|r| (r.created_at, r.id.clone()));
    eprintln!(
        "{policy}: {} runs for {DELIVERIES} pushes: {:?}",
        runs.len(),
        runs.iter()
            .map(|r| format!(
                "{} {}{}",
                r.id,
                r.phase.as_str(),
                r.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ))
            .collect::<Vec<_>>()
    );
    for pair in runs.windows(2) {
        assert!(
            pair[1].created_at >= pair[0].finished_at.unwrap(),
            "{policy}: {} started before {} ended",
            pair[1].id,
            pair[0].id
        );
    }
    let ids: std::collections::BTreeSet<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), runs.len(), "{policy}: a run id twice");
    if policy != "replace" {
        assert!(
            runs.len() <= 50,
            "{policy}: {} runs for one burst: not coalesced",
            runs.len()
        );
        assert!(
            runs.iter().all(|r| r.phase.as_str() == "succeeded"),
            "{policy}: {runs:#?}"
        );
    } else {
        assert!(runs.len() < DELIVERIES / 4, "{policy}: {} runs", runs.len());
    }
    let last = runs.last().unwrap();
    if policy != "forbid" {
        assert_eq!(
            last.source_commit, newest,
            "{policy}: the newest commit runs last"
        );
        assert_eq!(last.phase.as_str(), "succeeded", "{policy}: {last:#?}");
        assert_eq!(final_status(&fake, &newest, "cairn/table").state, "success");
    }

    // Every delivery again, as GitHub's "redeliver" would: all answered,
    // none taken again.
    let replayed = send_all(&served, &deliveries, Duration::ZERO, Arc::new(|_| {}));
    assert!(
        replayed.iter().all(|(s, _)| *s == 200),
        "{policy}: replays answered {:?}",
        replayed
            .iter()
            .map(|(s, _)| *s)
            .collect::<std::collections::BTreeSet<_>>()
    );
    let duplicate = "cairn_webhook_deliveries_total{event=\"push\",result=\"duplicate\"}";
    assert_eq!(metric(&served, duplicate), DELIVERIES as u64);
    assert_eq!(metric(&served, queued), DELIVERIES as u64);
    std::thread::sleep(Duration::from_millis(500));
    let now = store.runs(Some("table"), 10_000).unwrap();
    assert_eq!(
        now.len(),
        runs.len(),
        "{policy}: replays started runs: {:?}",
        now.iter().map(|r| &r.id).collect::<Vec<_>>()
    );

    let hwm = vm_hwm_kb(served.child.id());
    eprintln!("{policy}: server peak RSS (VmHWM) {} MiB", hwm / 1024);
    assert!(
        hwm < MEMORY_BOUND_KB,
        "{policy}: server peak RSS {hwm} kB over {MEMORY_BOUND_KB} kB"
    );
}

/// One test, the policies in turn: run side by side they would share the
/// two cores and measure each other.
#[test]
fn a_burst_of_1000_push_deliveries_in_one_second_under_each_policy() {
    for policy in ["queue", "replace", "forbid"] {
        burst(policy);
    }
}
