//! Validating a 1,000-pipeline `pipelines.toml` must stay well under 100 ms
//! (issue 2): the server re-validates the file on every push.
//!
//! A plain `main` rather than a bench harness: one number, no extra
//! dependency. Run with `cargo bench --bench config_validate`.

#[path = "support/rows.rs"]
mod rows;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

const PIPELINES: usize = 1000;
const ITERATIONS: usize = 20;

/// Every pipeline uses the features that cost the most to check: a cron
/// schedule in a timezone, push globs, and three tasks with dependencies.
fn generate() -> String {
    let mut s = String::from(
        "[defaults]\nimage = \"python:3.12-slim\"\nmerge = \"review\"\ntask_timeout = \"15m\"\n\n",
    );
    for i in 0..PIPELINES {
        let _ = write!(
            s,
            r#"[pipelines.pipeline_{i}]
dataset = "datasets/group_{g}/dataset_{i}.csv"
schedule = "{m} {h} * * *"
timezone = "Europe/Paris"
on_push = {{ branches = ["main", "release/*"], paths = ["etl/{i}/**", "shared/*.py"] }}
merge = "auto"
concurrency = "queue"
timeout = "30m"

[pipelines.pipeline_{i}.tasks.extract]
command = ["python3", "etl/{i}/extract.py"]
env = {{ ROWS = "{i}", MODE = "full" }}
retries = 2

[pipelines.pipeline_{i}.tasks.transform]
command = ["python3", "etl/{i}/transform.py"]
needs = ["extract"]
timeout = "10m"
resources = {{ cpu = "500m", memory = "1Gi" }}

[pipelines.pipeline_{i}.tasks.load]
command = ["python3", "etl/{i}/load.py", "--verbose"]
needs = ["extract", "transform"]

"#,
            g = i % 10,
            m = i % 60,
            h = i % 24,
        );
    }
    s
}

/// CPU time of this thread: unlike wall time, it does not grow when other
/// processes compete for the cores, so it shows the cost of `parse` itself.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let source = generate();
    let mut times = Vec::with_capacity(ITERATIONS);
    let mut cpu = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let (start, cpu_start) = (Instant::now(), thread_cpu_time());
        let parsed = cairn::config::parse(std::hint::black_box(&source), "pipelines.toml");
        times.push(start.elapsed());
        cpu.push(thread_cpu_time().saturating_sub(cpu_start));
        match parsed {
            Ok(config) => assert_eq!(config.pipelines.len(), PIPELINES),
            Err(e) => panic!("the generated file should be valid:\n{e}"),
        }
    }
    times.sort();
    println!(
        "config_validate: {PIPELINES} pipelines, {} bytes, median {:.2} ms, min {:.2} ms (target < 100 ms)",
        source.len(),
        ms(times[ITERATIONS / 2]),
        ms(times[0]),
    );
    let median = times[ITERATIONS / 2];
    rows::record(rows::Row {
        bench: "pipelines.toml, 1,000 pipelines",
        target: "validation < 100 ms",
        measured: format!("{:.2} ms", ms(median)),
        reference: String::new(),
        ratio: ms(median) / 100.0,
        met: Some(median < Duration::from_millis(100)),
    });
    cpu.sort();
    println!(
        "config_validate: thread CPU time median {:.2} ms, min {:.2} ms",
        ms(cpu[ITERATIONS / 2]),
        ms(cpu[0]),
    );
}
