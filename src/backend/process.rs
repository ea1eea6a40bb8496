//! One attempt of a task as a local process.
//!
//! Each attempt runs in its own process group so that a stop reaches the
//! whole tree the command started (a shell script's children too), first
//! politely with SIGTERM, then with SIGKILL after a grace period. Output is
//! read line by line from both pipes, written raw to the attempt's log file,
//! kept as a tail in memory and handed to a [`LineSink`] for display.
//!
//! This knows nothing of retries, timeouts or dependents: the run state
//! machine decides those, and asks for a stop when an attempt must end.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// Lines of output kept in memory, for the run record and failure messages.
pub const TAIL_LINES: usize = 40;

/// Everything needed to run one attempt of one task.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub task: String,
    pub attempt: u32,
    pub command: Vec<String>,
    /// The task's own variables plus cairn's `CAIRN_*` ones.
    pub env: BTreeMap<String, String>,
    /// Where the command starts (the run's workspace or a folder in it).
    pub workdir: PathBuf,
    /// Where this attempt's output goes, stdout and stderr interleaved.
    pub log_path: PathBuf,
}

/// Receives each line a task prints, as it prints it.
pub trait LineSink: Send + Sync {
    fn line(&self, spec: &TaskSpec, line: &str);
}

/// Prints each line on stderr as `[task] line` (`[task#2]` for a retry).
pub struct StderrSink;

impl LineSink for StderrSink {
    fn line(&self, spec: &TaskSpec, line: &str) {
        if spec.attempt > 1 {
            eprintln!("[{}#{}] {}", spec.task, spec.attempt, line);
        } else {
            eprintln!("[{}] {}", spec.task, line);
        }
    }
}

/// The last lines an attempt printed, shared with whoever watches it.
pub type Tail = Arc<Mutex<VecDeque<String>>>;

/// The tail's lines, oldest first.
pub fn tail_lines(tail: &Tail) -> Vec<String> {
    tail.lock()
        .map(|t| t.iter().cloned().collect())
        .unwrap_or_default()
}

/// How an attempt's process ended.
#[derive(Debug)]
pub enum Ending {
    Exited(ExitStatus),
    /// The command could not start (no such program, a workdir that does
    /// not exist, an unwritable log): no retry can fix it.
    NotStarted(String),
    /// Stopped on request.
    Stopped,
}

impl Ending {
    /// `exited with status 3`, `killed by signal 9`...
    pub fn describe(status: ExitStatus) -> String {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            _ => "ended abnormally".to_string(),
        }
    }
}

/// Runs `spec` to its end; `stop` ends it early (its group is signalled).
pub async fn run(
    spec: &TaskSpec,
    sink: Option<Arc<dyn LineSink>>,
    stop: CancellationToken,
    grace: Duration,
    tail: &Tail,
) -> Ending {
    match run_inner(spec, sink, stop, grace, tail).await {
        Ok(ending) => ending,
        Err(reason) => Ending::NotStarted(reason),
    }
}

async fn run_inner(
    spec: &TaskSpec,
    sink: Option<Arc<dyn LineSink>>,
    stop: CancellationToken,
    grace: Duration,
    tail: &Tail,
) -> Result<Ending, String> {
    let (program, args) = spec
        .command
        .split_first()
        .ok_or_else(|| "the task has an empty command".to_string())?;
    if let Some(parent) = spec.log_path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("cannot create log folder {}: {e}", parent.display()))?;
    }
    let log = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_path)
        .await
        .map_err(|e| format!("cannot open log file {}: {e}", spec.log_path.display()))?;
    let log = Arc::new(tokio::sync::Mutex::new(log));

    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(&spec.workdir)
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a stop reaches every process it started.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    let pid = child.id().map(|p| p as i32);
    crate::failpoint::hit(crate::failpoint::Failpoint::TaskRunning).await;

    let readers = [
        child
            .stdout
            .take()
            .map(|s| pump(s, spec, sink.clone(), &log, tail)),
        child
            .stderr
            .take()
            .map(|s| pump(s, spec, sink.clone(), &log, tail)),
    ];
    let pumps = futures::future::join_all(readers.into_iter().flatten());

    let ending = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => Ending::Exited(status),
            Err(_) => Ending::Stopped,
        },
        _ = stop.cancelled() => Ending::Stopped,
    };
    if !matches!(ending, Ending::Exited(_)) {
        terminate(pid, &mut child, grace).await;
    }
    // The pipes close once every process in the group is gone.
    pumps.await;
    let _ = log.lock().await.flush().await;
    Ok(ending)
}

/// SIGTERM the group, then SIGKILL it if it outlives the grace period.
async fn terminate(pid: Option<i32>, child: &mut tokio::process::Child, grace: Duration) {
    let Some(pid) = pid else { return };
    signal_group(pid, libc::SIGTERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        signal_group(pid, libc::SIGKILL);
        let _ = child.wait().await;
    }
    // Children that ignored SIGTERM while the leader exited still hold
    // the pipes; make sure they go too.
    signal_group(pid, libc::SIGKILL);
}

fn pump<R: AsyncRead + Unpin + Send + 'static>(
    stream: R,
    spec: &TaskSpec,
    sink: Option<Arc<dyn LineSink>>,
    log: &Arc<tokio::sync::Mutex<tokio::fs::File>>,
    tail: &Tail,
) -> tokio::task::JoinHandle<()> {
    let spec = spec.clone();
    let log = Arc::clone(log);
    let tail = Arc::clone(tail);
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            // A log that cannot be written must not kill the task.
            let _ = log.lock().await.write_all(&buf).await;
            let text = String::from_utf8_lossy(&buf);
            let line = text.trim_end_matches(['\n', '\r']);
            if let Some(sink) = &sink {
                sink.line(&spec, line);
            }
            if let Ok(mut tail) = tail.lock() {
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.to_string());
            }
        }
    })
}

fn signal_group(pid: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; it has no
    // memory-safety preconditions. A group that is already gone yields ESRCH,
    // which is what we want to ignore.
    unsafe {
        libc::kill(-pid, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &std::path::Path, script: &str) -> TaskSpec {
        TaskSpec {
            task: "t".into(),
            attempt: 1,
            command: vec!["sh".into(), "-c".into(), script.into()],
            env: BTreeMap::from([("GREETING".to_string(), "hello".to_string())]),
            workdir: dir.to_path_buf(),
            log_path: dir.join("logs/t.1.log"),
        }
    }

    async fn run_to_end(spec: &TaskSpec, stop: CancellationToken) -> (Ending, Vec<String>) {
        let tail = Tail::default();
        let ending = run(spec, None, stop, Duration::from_millis(200), &tail).await;
        (ending, tail_lines(&tail))
    }

    #[tokio::test]
    async fn success_logs_output_and_sees_env() {
        let dir = tempfile::tempdir().unwrap();
        let (ending, tail) = run_to_end(
            &spec(dir.path(), "echo $GREETING; echo oops >&2"),
            CancellationToken::new(),
        )
        .await;
        assert!(
            matches!(ending, Ending::Exited(s) if s.success()),
            "{ending:?}"
        );
        let log = std::fs::read_to_string(dir.path().join("logs/t.1.log")).unwrap();
        assert!(log.contains("hello\n") && log.contains("oops\n"), "{log}");
        assert_eq!(tail.len(), 2);
    }

    #[tokio::test]
    async fn an_exit_status_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (ending, _) = run_to_end(&spec(dir.path(), "exit 3"), CancellationToken::new()).await;
        match ending {
            Ending::Exited(status) => {
                assert_eq!(status.code(), Some(3));
                assert_eq!(Ending::describe(status), "exited with status 3");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_missing_program_does_not_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), "");
        s.command = vec!["/nonexistent/cairn-test-program".into()];
        match run_to_end(&s, CancellationToken::new()).await.0 {
            Ending::NotStarted(reason) => assert!(
                reason.starts_with("cannot start `/nonexistent/cairn-test-program`"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_stop_ends_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        // The background sleep keeps the pipe open: only a group kill ends it.
        let stop = CancellationToken::new();
        let trigger = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            trigger.cancel();
        });
        let t0 = std::time::Instant::now();
        let (ending, tail) =
            run_to_end(&spec(dir.path(), "sleep 30 & echo started; wait"), stop).await;
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert!(matches!(ending, Ending::Stopped), "{ending:?}");
        assert_eq!(tail, ["started"]);
    }
}
