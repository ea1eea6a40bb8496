//! One attempt of a task as a local process.
//!
//! The process starts from the environment its spec gives and nothing else
//! (no variable of cairn's own leaks into it), in a process group of its
//! own. A stop reaches the group first, politely with SIGTERM, then with
//! SIGKILL after a grace period; and when the attempt ends, however it
//! ends, every process it started goes too, including those that left the
//! group ([`super::tree`]). Output is read in bounded chunks from both
//! pipes: the attempt's log keeps its first [`LOG_HEAD`] bytes and its last
//! [`LOG_TAIL`], with a line saying how much was dropped between, and a
//! line longer than [`LINE_LIMIT`] is cut for display, so a task cannot
//! make cairn hold its output in memory.
//!
//! This knows nothing of retries, timeouts or dependents: the run state
//! machine decides those, and asks for a stop when an attempt must end.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::tree;

/// Lines of output kept in memory, for the run record and failure messages.
pub const TAIL_LINES: usize = 40;
/// Bytes of an attempt's output its log keeps from the start.
pub const LOG_HEAD: u64 = 4 << 20;
/// Bytes of an attempt's output its log keeps from the end.
pub const LOG_TAIL: usize = 1 << 20;
/// Characters of one line kept for display (the sink, the tail lines).
pub const LINE_LIMIT: usize = 400;
/// How long the pipes may stay open once every process of the attempt was
/// killed (something unkillable holding them must not hold the run).
const DRAIN: Duration = Duration::from_secs(2);

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
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_path)
        .await
        .map_err(|e| format!("cannot open log file {}: {e}", spec.log_path.display()))?;
    let log = Arc::new(tokio::sync::Mutex::new(CappedLog::new(file)));

    let mark = uuid::Uuid::new_v4().simple().to_string();
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(&spec.workdir)
        // Nothing of cairn's own environment: only what the spec says.
        .env_clear()
        .envs(&spec.env)
        .env(tree::ATTEMPT_MARK, &mark)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a stop reaches every process it started.
        .process_group(0)
        .kill_on_drop(true);
    tree::become_subreaper();
    let (mut child, processes) = tree::spawn_root(mark, || {
        let child = command.spawn()?;
        let pid = child.id();
        Ok((child, pid))
    })
    .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    let pid = child.id().map(|p| p as i32);
    let processes = processes.map(|p| Arc::new(Mutex::new(p)));
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
    let mut pumps: Vec<_> = readers.into_iter().flatten().collect();

    // Learn the attempt's processes while they run, so those that leave
    // its group are still known when it ends.
    let watching = processes.clone().map(|processes| {
        tokio::spawn(async move {
            loop {
                let p = Arc::clone(&processes);
                let _ = tokio::task::spawn_blocking(move || {
                    p.lock().unwrap_or_else(|e| e.into_inner()).look()
                })
                .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    });

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
    if let Some(watching) = watching {
        watching.abort();
    }
    // Whatever it started goes with it, in its group or not.
    if let Some(processes) = processes {
        let _ = tokio::task::spawn_blocking(move || {
            processes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .kill_all()
        })
        .await;
    }
    // The pipes close once every process holding them is gone.
    let drained = tokio::time::timeout(DRAIN, futures::future::join_all(pumps.iter_mut())).await;
    if drained.is_err() {
        for p in &pumps {
            p.abort();
        }
    }
    log.lock().await.finish().await;
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

/// An attempt's log file, written up to [`LOG_HEAD`] bytes; what comes
/// after is kept in memory up to [`LOG_TAIL`] bytes, the oldest dropped,
/// and written at the end after a line saying how much was dropped.
struct CappedLog {
    file: tokio::fs::File,
    written: u64,
    tail: VecDeque<u8>,
    dropped: u64,
}

impl CappedLog {
    fn new(file: tokio::fs::File) -> CappedLog {
        CappedLog {
            file,
            written: 0,
            tail: VecDeque::new(),
            dropped: 0,
        }
    }

    async fn write(&mut self, mut bytes: &[u8]) {
        if self.written < LOG_HEAD {
            let room = (LOG_HEAD - self.written).min(bytes.len() as u64) as usize;
            // A log that cannot be written must not kill the task.
            let _ = self.file.write_all(&bytes[..room]).await;
            self.written += room as u64;
            bytes = &bytes[room..];
        }
        self.tail.extend(bytes);
        let over = self.tail.len().saturating_sub(LOG_TAIL);
        if over > 0 {
            self.tail.drain(..over);
            self.dropped += over as u64;
        }
    }

    async fn finish(&mut self) {
        if self.dropped > 0 {
            let marker = format!(
                "\n[cairn: {} bytes of output dropped here; the log keeps the first {} and the last {}]\n",
                self.dropped, LOG_HEAD, LOG_TAIL
            );
            let _ = self.file.write_all(marker.as_bytes()).await;
        }
        let (a, b) = self.tail.as_slices();
        let _ = self.file.write_all(a).await;
        let _ = self.file.write_all(b).await;
        self.tail.clear();
        let _ = self.file.flush().await;
    }
}

/// Reads `stream` in bounded chunks into the log, and line by line (each
/// cut at [`LINE_LIMIT`] characters) into the sink and the tail.
fn pump<R: AsyncRead + Unpin + Send + 'static>(
    mut stream: R,
    spec: &TaskSpec,
    sink: Option<Arc<dyn LineSink>>,
    log: &Arc<tokio::sync::Mutex<CappedLog>>,
    tail: &Tail,
) -> tokio::task::JoinHandle<()> {
    let spec = spec.clone();
    let log = Arc::clone(log);
    let tail = Arc::clone(tail);
    tokio::spawn(async move {
        let mut chunk = vec![0u8; 64 * 1024];
        let mut line = Line::default();
        let emit = |line: &mut Line| {
            let text = line.take();
            if let Some(sink) = &sink {
                sink.line(&spec, &text);
            }
            if let Ok(mut tail) = tail.lock() {
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(text);
            }
        };
        loop {
            let n = match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            log.lock().await.write(&chunk[..n]).await;
            for piece in chunk[..n].split_inclusive(|&b| b == b'\n') {
                match piece.strip_suffix(b"\n") {
                    Some(end) => {
                        line.push(end);
                        emit(&mut line);
                    }
                    None => line.push(piece),
                }
            }
        }
        if !line.is_empty() {
            emit(&mut line);
        }
    })
}

/// One line of output as it arrives, its first bytes kept and the rest
/// only counted.
#[derive(Default)]
struct Line {
    kept: Vec<u8>,
    cut: u64,
}

impl Line {
    /// Enough bytes for [`LINE_LIMIT`] characters of any UTF-8.
    const KEEP: usize = LINE_LIMIT * 4;

    fn push(&mut self, bytes: &[u8]) {
        let room = Self::KEEP.saturating_sub(self.kept.len()).min(bytes.len());
        self.kept.extend_from_slice(&bytes[..room]);
        self.cut += (bytes.len() - room) as u64;
    }

    fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.cut == 0
    }

    fn take(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.kept);
        let text = text.trim_end_matches('\r');
        let mut out: String = text.chars().take(LINE_LIMIT).collect();
        let rest = text.len() - out.len();
        let cut = self.cut + rest as u64;
        if cut > 0 {
            out.push_str(&format!("… ({cut} more bytes)"));
        }
        self.kept.clear();
        self.cut = 0;
        out
    }
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
