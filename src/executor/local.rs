//! Tasks as local processes: the executor of the embedded default.
//!
//! Each attempt runs in its own process group so that a timeout or a cancel
//! stops the whole tree the command started (a shell script's children too),
//! first politely with SIGTERM, then with SIGKILL after a grace period.
//! Output is read line by line from both pipes, written raw to the attempt's
//! log file and handed to a [`LineSink`] for display.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::{AttemptReport, Executor, LineSink, TaskSpec};
use crate::pipeline::AttemptResult;

/// Lines of output kept in memory for the run record.
const TAIL_LINES: usize = 40;

pub struct LocalExecutor {
    sink: Option<Arc<dyn LineSink>>,
    /// Time between SIGTERM and SIGKILL.
    grace: Duration,
}

impl LocalExecutor {
    pub fn new(sink: Option<Arc<dyn LineSink>>) -> LocalExecutor {
        LocalExecutor {
            sink,
            grace: Duration::from_secs(5),
        }
    }

    pub fn with_grace(mut self, grace: Duration) -> LocalExecutor {
        self.grace = grace;
        self
    }
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

enum Ending {
    Exited(std::process::ExitStatus),
    TimedOut(Duration),
    Stopped,
}

#[async_trait::async_trait]
impl Executor for LocalExecutor {
    async fn run(&self, spec: &TaskSpec, stop: CancellationToken) -> AttemptReport {
        let started = SystemTime::now();
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        let result = self.run_inner(spec, stop, &tail).await;
        let (result, exit_code) = match result {
            Ok((result, code)) => (result, code),
            Err(reason) => (
                AttemptResult::Failed {
                    reason,
                    retryable: false,
                },
                None,
            ),
        };
        let log_tail = tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        AttemptReport {
            result,
            exit_code,
            started,
            finished: SystemTime::now(),
            log_tail,
        }
    }
}

type Tail = Arc<Mutex<VecDeque<String>>>;

impl LocalExecutor {
    /// `Err` is a failure no retry can fix: the command could not start.
    async fn run_inner(
        &self,
        spec: &TaskSpec,
        stop: CancellationToken,
        tail: &Tail,
    ) -> Result<(AttemptResult, Option<i32>), String> {
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
            child.stdout.take().map(|s| self.pump(s, spec, &log, tail)),
            child.stderr.take().map(|s| self.pump(s, spec, &log, tail)),
        ];
        let pumps = futures::future::join_all(readers.into_iter().flatten());

        let timeout = async {
            match spec.timeout {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        let ending = tokio::select! {
            status = child.wait() => match status {
                Ok(status) => Ending::Exited(status),
                Err(_) => Ending::Stopped,
            },
            _ = timeout => Ending::TimedOut(spec.timeout.unwrap_or_default()),
            _ = stop.cancelled() => Ending::Stopped,
        };
        if !matches!(ending, Ending::Exited(_)) {
            self.terminate(pid, &mut child).await;
        }
        // The pipes close once every process in the group is gone.
        pumps.await;
        let _ = log.lock().await.flush().await;

        Ok(match ending {
            Ending::Exited(status) if status.success() => (AttemptResult::Succeeded, Some(0)),
            Ending::Exited(status) => {
                use std::os::unix::process::ExitStatusExt;
                let reason = match (status.code(), status.signal()) {
                    (Some(code), _) => format!("exited with status {code}"),
                    (None, Some(signal)) => format!("killed by signal {signal}"),
                    _ => "ended abnormally".to_string(),
                };
                (
                    AttemptResult::Failed {
                        reason,
                        retryable: true,
                    },
                    status.code(),
                )
            }
            Ending::TimedOut(limit) => (
                AttemptResult::Failed {
                    reason: format!("timed out after {}", humantime::format_duration(limit)),
                    retryable: true,
                },
                None,
            ),
            Ending::Stopped => (AttemptResult::Stopped, None),
        })
    }

    /// SIGTERM the group, then SIGKILL it if it outlives the grace period.
    async fn terminate(&self, pid: Option<i32>, child: &mut tokio::process::Child) {
        let Some(pid) = pid else { return };
        signal_group(pid, libc::SIGTERM);
        if tokio::time::timeout(self.grace, child.wait())
            .await
            .is_err()
        {
            signal_group(pid, libc::SIGKILL);
            let _ = child.wait().await;
        }
        // Children that ignored SIGTERM while the leader exited still hold
        // the pipes; make sure they go too.
        signal_group(pid, libc::SIGKILL);
    }

    fn pump<R: AsyncRead + Unpin + Send + 'static>(
        &self,
        stream: R,
        spec: &TaskSpec,
        log: &Arc<tokio::sync::Mutex<tokio::fs::File>>,
        tail: &Tail,
    ) -> tokio::task::JoinHandle<()> {
        let sink = self.sink.clone();
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
    use std::collections::BTreeMap;

    fn spec(dir: &std::path::Path, script: &str, timeout: Option<Duration>) -> TaskSpec {
        TaskSpec {
            run_id: "r1".into(),
            pipeline: "p".into(),
            task: "t".into(),
            attempt: 1,
            command: vec!["sh".into(), "-c".into(), script.into()],
            env: BTreeMap::from([("GREETING".to_string(), "hello".to_string())]),
            workdir: dir.to_path_buf(),
            timeout,
            log_path: dir.join("logs/t.1.log"),
        }
    }

    #[tokio::test]
    async fn success_logs_output_and_sees_env() {
        let dir = tempfile::tempdir().unwrap();
        let report = LocalExecutor::new(None)
            .run(
                &spec(dir.path(), "echo $GREETING; echo oops >&2", None),
                CancellationToken::new(),
            )
            .await;
        assert_eq!(report.result, AttemptResult::Succeeded);
        assert_eq!(report.exit_code, Some(0));
        let log = std::fs::read_to_string(dir.path().join("logs/t.1.log")).unwrap();
        assert!(log.contains("hello\n") && log.contains("oops\n"), "{log}");
        assert_eq!(report.log_tail.len(), 2);
    }

    #[tokio::test]
    async fn exit_status_is_a_retryable_failure() {
        let dir = tempfile::tempdir().unwrap();
        let report = LocalExecutor::new(None)
            .run(&spec(dir.path(), "exit 3", None), CancellationToken::new())
            .await;
        assert_eq!(
            report.result,
            AttemptResult::Failed {
                reason: "exited with status 3".into(),
                retryable: true
            }
        );
        assert_eq!(report.exit_code, Some(3));
    }

    #[tokio::test]
    async fn missing_program_fails_without_retry() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), "", None);
        s.command = vec!["/nonexistent/cairn-test-program".into()];
        let report = LocalExecutor::new(None)
            .run(&s, CancellationToken::new())
            .await;
        match report.result {
            AttemptResult::Failed { reason, retryable } => {
                assert!(!retryable);
                assert!(
                    reason.starts_with("cannot start `/nonexistent/cairn-test-program`"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        // The background sleep keeps the pipe open: only a group kill ends it.
        let script = "sleep 30 & echo started; wait";
        let t0 = std::time::Instant::now();
        let report = LocalExecutor::new(None)
            .with_grace(Duration::from_millis(200))
            .run(
                &spec(dir.path(), script, Some(Duration::from_millis(300))),
                CancellationToken::new(),
            )
            .await;
        assert!(t0.elapsed() < Duration::from_secs(10));
        match report.result {
            AttemptResult::Failed { reason, retryable } => {
                assert!(retryable);
                assert!(reason.starts_with("timed out after 300ms"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn stop_ends_the_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let stop = CancellationToken::new();
        let trigger = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            trigger.cancel();
        });
        let report = LocalExecutor::new(None)
            .run(&spec(dir.path(), "sleep 30", None), stop)
            .await;
        assert_eq!(report.result, AttemptResult::Stopped);
    }
}
