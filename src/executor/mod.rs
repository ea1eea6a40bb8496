//! Executors run one task attempt and report how it ended.
//!
//! The scheduler ([`crate::pipeline`]) decides *what* runs; an executor only
//! knows *how*: as a local process here, as a Kubernetes pod later. An
//! executor never decides about retries or dependents; it reports an
//! [`AttemptResult`] and the scheduler does the rest.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::pipeline::AttemptResult;

mod local;

pub use local::{LocalExecutor, StderrSink};

/// Everything needed to run one attempt of one task.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub run_id: String,
    pub pipeline: String,
    pub task: String,
    pub attempt: u32,
    pub command: Vec<String>,
    /// The task's own variables plus cairn's `CAIRN_*` ones.
    pub env: BTreeMap<String, String>,
    /// Where the command starts (the run's workspace or a folder in it).
    pub workdir: PathBuf,
    pub timeout: Option<Duration>,
    /// Where this attempt's output goes, stdout and stderr interleaved.
    pub log_path: PathBuf,
}

/// What an executor observed about one attempt.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    pub result: AttemptResult,
    pub exit_code: Option<i32>,
    pub started: SystemTime,
    pub finished: SystemTime,
    /// The last lines of output, for run records and failure messages.
    pub log_tail: Vec<String>,
}

/// Receives each line a task prints, as it prints it.
pub trait LineSink: Send + Sync {
    fn line(&self, spec: &TaskSpec, line: &str);
}

#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    /// Run `spec` to its end. `stop` asks for an early end (cancel or run
    /// timeout); the attempt then reports [`AttemptResult::Stopped`].
    async fn run(&self, spec: &TaskSpec, stop: CancellationToken) -> AttemptReport;
}
