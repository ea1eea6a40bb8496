//! Webhook intake throughput and latency on loopback (targets: 10,000
//! verified deliveries/s, p99 under 5 ms, idle service RSS under 30 MB).
//!
//! Run with `cargo bench --bench intake` (or bench/run.sh, which runs every benchmark). A plain `main`
//! rather than a bench harness. The benchmark runs itself twice:
//! - as a child process in `--server` mode: the real router and `serve`, a
//!   real delivery log (SQLite, in a temporary folder, capacity 100,000), a
//!   sink that only counts, logging at `info` as JSON to a file (what the
//!   service does in production); being a process of its own, its memory is
//!   read from `/proc/PID/status` with nothing of the load generator in it;
//! - as the load generator: N keep-alive HTTP/1.1 connections (default 32)
//!   on one thread, each sending pushes signed in advance (the signature
//!   covers the body only, so a few bodies serve every delivery) with a unique
//!   `X-GitHub-Delivery` each, and checking every answer is `202`.
//!
//! Phases: warm-up; saturation (every connection sends its next delivery as
//! soon as the last is answered: the most the server does on this machine,
//! with the load generator competing for the same cores); then paced at the
//! target rate (each connection on a fixed schedule), which is where the
//! latency target applies. Latency is measured from the moment a request is
//! written to the moment its answer is read; the paced phase also reports
//! how far it fell behind schedule, so a slow server cannot hide behind a
//! polite client.
//!
//! Settings (environment): CAIRN_BENCH_CONNECTIONS (32), CAIRN_BENCH_SECONDS
//! per phase (5), CAIRN_BENCH_RATE of the paced phase (10000),
//! CAIRN_BENCH_LOG (`info`; `off` for no subscriber).

#[path = "support/rows.rs"]
mod rows;

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn::http::{app, serve, Dedup, EventSink, Parts, Readiness, SinkError};
use cairn::metrics::Metrics;
use cairn::settings::{init_tracing, Env, LogFormat};
use cairn::triggers::{DeliveryId, Event, WebhookSecret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "cairn intake benchmark secret";
const DEDUP_CAPACITY: usize = 100_000;
const BODIES: usize = 8;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--server") {
        let data_dir = PathBuf::from(args.get(i + 1).expect("--server DATA_DIR [LOG]"));
        let log = args.get(i + 2).map(String::as_str).unwrap_or("off");
        run_server(&data_dir, log);
    } else {
        run_load();
    }
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?}: not a number"))
        })
        .unwrap_or(default)
}

// ----- the server process ------------------------------------------------------

struct CountingSink(AtomicU64);

impl EventSink for CountingSink {
    fn submit(&self, _: DeliveryId, _: Event) -> Result<(), SinkError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

struct AlwaysReady;

impl Readiness for AlwaysReady {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Serves until stdin closes, then prints what the sink and the log hold.
fn run_server(data_dir: &Path, log: &str) {
    if log != "off" {
        init_tracing(LogFormat::Json, &Env::default(), log).expect("logging");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dedup = Arc::new(Dedup::open(data_dir, DEDUP_CAPACITY).expect("delivery log"));
        let sink = Arc::new(CountingSink(AtomicU64::new(0)));
        let parts = Parts::new(
            Some(WebhookSecret::new(SECRET).unwrap()),
            dedup.clone(),
            sink.clone(),
            Arc::new(AlwaysReady),
            Arc::new(Metrics::new()),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("listening {}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        let stdin_closed = async {
            let _ = tokio::task::spawn_blocking(|| {
                let mut sink = Vec::new();
                std::io::stdin().read_to_end(&mut sink)
            })
            .await;
        };
        serve(listener, app(parts), stdin_closed)
            .await
            .expect("serve");
        let log = dedup.clone();
        tokio::task::spawn_blocking(move || log.close())
            .await
            .unwrap();
        println!("submitted {}", sink.0.load(Ordering::Relaxed));
        println!("remembered {}", dedup.len());
    });
}

// ----- the load generator --------------------------------------------------------

/// A push much like GitHub's (same fields, about the same size), for
/// `after` on `acme/data`.
fn push_body(n: usize) -> Vec<u8> {
    let api = "https://api.github.com/repos/acme/data";
    let mut repository = serde_json::json!({
        "id": 186853002, "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=", "name": "data",
        "full_name": "acme/data", "private": false, "html_url": "https://github.com/acme/data",
        "description": "Versioned datasets of the attrition model", "fork": false, "url": api,
        "git_url": "git://github.com/acme/data.git", "ssh_url": "git@github.com:acme/data.git",
        "clone_url": "https://github.com/acme/data.git", "svn_url": "https://github.com/acme/data",
        "default_branch": "main", "master_branch": "main", "organization": "acme",
        "owner": {
            "name": "acme", "email": null, "login": "acme", "id": 21031067,
            "node_id": "MDQ6VXNlcjIxMDMxMDY3", "avatar_url": "https://avatars.githubusercontent.com/u/21031067?v=4",
            "gravatar_id": "", "url": "https://api.github.com/users/acme",
            "html_url": "https://github.com/acme", "type": "Organization", "site_admin": false
        }
    });
    let more: [(&str, serde_json::Value); 26] = [
        ("created_at", 1557933565.into()),
        ("updated_at", "2024-05-15T15:20:41Z".into()),
        ("pushed_at", 1557933657.into()),
        ("homepage", serde_json::Value::Null),
        ("size", 0.into()),
        ("stargazers_count", 0.into()),
        ("watchers_count", 0.into()),
        ("language", "Python".into()),
        ("has_issues", true.into()),
        ("has_projects", true.into()),
        ("has_downloads", true.into()),
        ("has_wiki", true.into()),
        ("has_pages", false.into()),
        ("forks_count", 0.into()),
        ("mirror_url", serde_json::Value::Null),
        ("archived", false.into()),
        ("disabled", false.into()),
        ("open_issues_count", 0.into()),
        ("license", serde_json::Value::Null),
        ("forks", 0.into()),
        ("open_issues", 0.into()),
        ("watchers", 0.into()),
        ("stargazers", 0.into()),
        ("visibility", "public".into()),
        ("is_template", false.into()),
        ("topics", serde_json::json!(["datasets", "dvc"])),
    ];
    for (key, value) in more {
        repository[key] = value;
    }
    for name in [
        "forks",
        "keys",
        "collaborators",
        "teams",
        "hooks",
        "issue_events",
        "events",
        "assignees",
        "branches",
        "tags",
        "blobs",
        "git_tags",
        "git_refs",
        "trees",
        "statuses",
        "languages",
        "stargazers",
        "contributors",
        "subscribers",
        "subscription",
        "commits",
        "git_commits",
        "comments",
        "issue_comment",
        "contents",
        "compare",
        "merges",
        "archive",
        "downloads",
        "issues",
        "pulls",
        "milestones",
        "notifications",
        "labels",
        "releases",
        "deployments",
    ] {
        repository[format!("{name}_url")] = format!("{api}/{name}{{/id}}").into();
    }
    for name in [
        "followers",
        "following",
        "gists",
        "starred",
        "subscriptions",
        "organizations",
        "repos",
        "events",
        "received_events",
    ] {
        repository["owner"][format!("{name}_url")] =
            format!("https://api.github.com/users/acme/{name}").into();
    }
    let sha = |k: usize| {
        format!(
            "{:040x}",
            0x6113728f27ae82c7b1a1u128 * 1_000 + (n * 10 + k) as u128
        )
    };
    let commit = |k: usize| {
        serde_json::json!({
            "id": sha(k), "tree_id": sha(k + 5), "distinct": true,
            "message": format!("Refresh the attrition extract ({k})\n\nNew rows from the HR export."),
            "timestamp": "2024-05-15T15:20:30Z",
            "url": format!("https://github.com/acme/data/commit/{}", sha(k)),
            "author": {"name": "Octo Cat", "email": "octocat@example.com", "username": "octocat"},
            "committer": {"name": "Octo Cat", "email": "octocat@example.com", "username": "octocat"},
            "added": [], "removed": [], "modified": ["etl/extract.py", "pipelines.toml"]
        })
    };
    serde_json::to_vec(&serde_json::json!({
        "ref": "refs/heads/main", "before": sha(0), "after": sha(2),
        "repository": repository,
        "pusher": {"name": "octocat", "email": "octocat@example.com"},
        "sender": {"login": "octocat", "id": 583231, "type": "User", "site_admin": false,
                   "url": "https://api.github.com/users/octocat"},
        "installation": {"id": 1, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="},
        "created": false, "deleted": false, "forced": false, "base_ref": null,
        "compare": "https://github.com/acme/data/compare/6113728f27ae...6113728f27af",
        "commits": [commit(1), commit(2)], "head_commit": commit(2)
    }))
    .unwrap()
}

/// Request heads and bodies, signed once.
struct Payloads {
    /// Everything before the delivery id, per body.
    heads: Vec<Vec<u8>>,
    bodies: Vec<Vec<u8>>,
}

impl Payloads {
    fn new() -> Self {
        let secret = WebhookSecret::new(SECRET).unwrap();
        let bodies: Vec<Vec<u8>> = (0..BODIES).map(push_body).collect();
        let heads = bodies
            .iter()
            .map(|body| {
                format!(
                    "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: GitHub-Hookshot/bench\r\n\
                     Accept: */*\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n\
                     X-GitHub-Hook-ID: 292430182\r\nX-Hub-Signature-256: {}\r\nContent-Length: {}\r\n\
                     X-GitHub-Delivery: ",
                    secret.sign(body),
                    body.len()
                )
                .into_bytes()
            })
            .collect();
        Payloads { heads, bodies }
    }

    /// Writes delivery `seq` of connection `conn` into `out`.
    fn request(&self, conn: usize, seq: u64, out: &mut Vec<u8>) {
        let which = (seq as usize + conn) % self.bodies.len();
        out.clear();
        out.extend_from_slice(&self.heads[which]);
        let _ = write!(out, "{conn:08x}-0000-4000-8000-{seq:012x}\r\n\r\n");
        out.extend_from_slice(&self.bodies[which]);
    }
}

/// One keep-alive connection.
struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
    request: Vec<u8>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        Connection {
            stream,
            buf: Vec::with_capacity(1024),
            request: Vec::with_capacity(16 * 1024),
        }
    }

    /// Sends `self.request`, reads the answer, checks it is a 202.
    async fn round_trip(&mut self) {
        self.stream.write_all(&self.request).await.expect("write");
        self.buf.clear();
        let mut chunk = [0u8; 1024];
        loop {
            let n = self.stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
            let Some(end) = find(&self.buf, b"\r\n\r\n") else {
                continue;
            };
            let head = std::str::from_utf8(&self.buf[..end]).expect("ASCII head");
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("a Content-Length");
            if self.buf.len() >= end + 4 + length {
                assert!(
                    head.starts_with("HTTP/1.1 202"),
                    "unexpected answer: {}",
                    String::from_utf8_lossy(&self.buf)
                );
                return;
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

struct PhaseResult {
    sent: u64,
    elapsed: Duration,
    /// Microseconds per delivery, sorted.
    latencies: Vec<u32>,
    /// How late the last sends were against their schedule (paced only).
    max_lag: Duration,
}

impl PhaseResult {
    fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        Duration::from_micros(self.latencies[i].into())
    }
}

/// Runs `connections` for `length`; with `rate`, each connection sends on a
/// fixed schedule, else as fast as its answers come back.
async fn phase(
    conns: &mut Vec<Connection>,
    payloads: &Arc<Payloads>,
    first_seq: u64,
    length: Duration,
    rate: Option<f64>,
) -> PhaseResult {
    let n = conns.len();
    let start = Instant::now();
    let deadline = start + length;
    let mut tasks = Vec::with_capacity(n);
    for (i, mut conn) in conns.drain(..).enumerate() {
        let payloads = Arc::clone(payloads);
        tasks.push(tokio::spawn(async move {
            let interval = rate.map(|r| Duration::from_secs_f64(n as f64 / r));
            let offset = interval.map_or(Duration::ZERO, |iv| iv.mul_f64(i as f64 / n as f64));
            let mut latencies = Vec::new();
            let mut max_lag = Duration::ZERO;
            let mut seq = first_seq;
            let mut k = 0u32;
            loop {
                if let Some(iv) = interval {
                    let due = start + offset + iv * k;
                    if due >= deadline {
                        break;
                    }
                    let now = Instant::now();
                    if now < due {
                        tokio::time::sleep_until(due.into()).await;
                    } else {
                        max_lag = max_lag.max(now - due);
                    }
                    k += 1;
                } else if Instant::now() >= deadline {
                    break;
                }
                payloads.request(i, seq, &mut conn.request);
                seq += 1;
                let sent = Instant::now();
                conn.round_trip().await;
                latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            (conn, latencies, max_lag)
        }));
    }
    let mut all = Vec::new();
    let mut max_lag = Duration::ZERO;
    for task in tasks {
        let (conn, latencies, lag) = task.await.expect("connection task");
        conns.push(conn);
        all.extend(latencies);
        max_lag = max_lag.max(lag);
    }
    let elapsed = start.elapsed();
    all.sort_unstable();
    PhaseResult {
        sent: all.len() as u64,
        elapsed,
        latencies: all,
        max_lag,
    }
}

/// `VmRSS` and `VmHWM` of a process, in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// User + system CPU time of a process.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64(ticks as f64 / per_second)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

struct Server {
    child: Child,
    addr: SocketAddr,
    stdout: BufReader<std::process::ChildStdout>,
    log: PathBuf,
}

fn start_server(data_dir: &Path, log_level: &str) -> Server {
    let log = data_dir.join("server.log");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--server")
        .arg(data_dir)
        .arg(log_level)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start the server process");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| {
            panic!(
                "the server did not start: {line:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })
        .parse()
        .unwrap();
    Server {
        child,
        addr,
        stdout,
        log,
    }
}

fn run_load() {
    let connections = setting("CAIRN_BENCH_CONNECTIONS", 32) as usize;
    let seconds = setting("CAIRN_BENCH_SECONDS", 5);
    let rate = setting("CAIRN_BENCH_RATE", 10_000) as f64;
    let log_level = std::env::var("CAIRN_BENCH_LOG").unwrap_or_else(|_| "info".into());
    let length = Duration::from_secs(seconds);

    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(dir.path(), &log_level);
    let pid = server.child.id();
    let payloads = Arc::new(Payloads::new());
    let body_size = payloads.bodies[0].len();
    println!(
        "intake: {connections} keep-alive connections on loopback, signed push payloads of \
         {body_size} bytes, server logging {log_level} (JSON to a file), dedup capacity {}",
        thousands(DEDUP_CAPACITY as f64)
    );
    // Let the server settle, then read its idle footprint.
    std::thread::sleep(Duration::from_millis(500));
    let (idle_rss, _) = memory(pid);
    println!("server idle:        VmRSS {}", mib(idle_rss));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (saturation, paced, cpu_per_delivery, sent) = runtime.block_on(async {
        let mut conns = Vec::with_capacity(connections);
        for _ in 0..connections {
            conns.push(Connection::open(server.addr).await);
        }
        let mut seq = 0;
        let warm = phase(&mut conns, &payloads, seq, Duration::from_secs(1), None).await;
        seq += warm.sent;
        let cpu_before = cpu_time(pid);
        let saturation = phase(&mut conns, &payloads, seq, length, None).await;
        let cpu = cpu_time(pid) - cpu_before;
        seq += saturation.sent;
        let paced = phase(&mut conns, &payloads, seq, length, Some(rate)).await;
        seq += paced.sent;
        let cpu_per_delivery = cpu / saturation.sent.max(1) as u32;
        (saturation, paced, cpu_per_delivery, seq)
    });
    let (rss, hwm) = memory(pid);
    let report = |name: &str, r: &PhaseResult| {
        println!(
            "{name} {:>7} deliveries/s ({} in {:.1} s); latency p50 {}, p99 {}, max {}",
            thousands(r.rate()),
            thousands(r.sent as f64),
            r.elapsed.as_secs_f64(),
            ms(r.percentile(0.50)),
            ms(r.percentile(0.99)),
            ms(r.percentile(1.0)),
        );
    };
    report("saturation:        ", &saturation);
    println!(
        "                    server CPU {:.0} us per delivery",
        cpu_per_delivery.as_secs_f64() * 1e6
    );
    report(&format!("paced at {}/s:", thousands(rate)), &paced);
    println!(
        "                    most behind schedule: {}",
        ms(paced.max_lag)
    );
    println!("server after load:  VmRSS {}, VmHWM {}", mib(rss), mib(hwm));

    // Stop the server (closing its stdin) and check it counted everything.
    drop(server.child.stdin.take());
    let mut rest = String::new();
    server.stdout.read_to_string(&mut rest).unwrap();
    let status = server.child.wait().unwrap();
    assert!(
        status.success(),
        "server failed: {status}\n{}",
        std::fs::read_to_string(&server.log).unwrap_or_default()
    );
    let value = |key: &str| -> u64 {
        rest.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key:?} in {rest:?}"))
    };
    let total = value("submitted ");
    let remembered = value("remembered ");
    let logged = std::fs::read_to_string(&server.log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"result\":\"queued\""))
        .count();
    println!(
        "server stopped:     {} deliveries queued, {} ids remembered, {} log lines of queued deliveries",
        thousands(total as f64),
        thousands(remembered as f64),
        thousands(logged as f64)
    );
    assert_eq!(total, sent, "every delivery answered 202 reached the sink");
    let bench = format!("webhook intake, {connections} connections");
    rows::record(rows::Row {
        bench: &bench,
        target: ">= 10,000 verified deliveries/s",
        measured: format!("{}/s", thousands(saturation.rate())),
        reference: String::new(),
        ratio: saturation.rate() / 10_000.0,
        met: Some(saturation.rate() >= 10_000.0),
    });
    let p99 = paced.percentile(0.99);
    rows::record(rows::Row {
        bench: &bench,
        target: "p99 latency < 5 ms at 10,000/s",
        measured: ms(p99),
        reference: format!("paced at {}/s", thousands(rate)),
        ratio: p99.as_secs_f64() / 0.005,
        met: Some(p99 < Duration::from_millis(5)),
    });
    rows::record(rows::Row {
        bench: "service, idle",
        target: "RSS < 30 MB",
        measured: format!("{:.1} MB", idle_rss as f64 / 1e6),
        reference: String::new(),
        ratio: idle_rss as f64 / 30e6,
        met: Some(idle_rss < 30_000_000),
    });
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "targets:            >= 10,000/s {}; p99 < 5 ms at {}/s {}; idle RSS < 30 MB {}",
        verdict(saturation.rate() >= 10_000.0),
        thousands(rate),
        verdict(paced.percentile(0.99) < Duration::from_millis(5)),
        verdict(idle_rss < 30_000_000),
    );
}
