//! Named step boundaries where a crash test can stop the process.
//!
//! Crash safety is a claim about what happens when the process dies between
//! two steps of a run (the run recorded but nothing done, objects uploaded but
//! no pointer, a pointer pushed but no pull request...). To test each
//! boundary exactly, not by racing a timer, the boundaries are named here and
//! `CAIRN_TEST_FAILPOINT=<name>` makes the process stop at the first one it
//! reaches: it prints `cairn: failpoint <name> reached` on stderr and then
//! blocks the calling step for ever, so the test sends it a real SIGKILL
//! while it sits exactly there.
//!
//! The boundaries are `fail` crate failpoints, compiled in only with the
//! `failpoints` cargo feature, which the tests turn on (a self
//! dev-dependency in Cargo.toml). Without it, [`hit`] and [`hit_blocking`]
//! are empty and a shipped binary neither reads the variable nor carries
//! the names.

/// The variable naming the failpoint to stop at.
pub const ENV: &str = "CAIRN_TEST_FAILPOINT";

/// Every step boundary, in the order a run reaches them. With the
/// Kubernetes executor the steps run in pods, and the service stops at the
/// moment it sees them: a task's pod running, the publish pod running, the
/// PipelineRun succeeded with its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// The run is in the store; nothing else happened.
    RunRecorded,
    /// A task's process is running.
    TaskRunning,
    /// Some of the dataset's objects are on the remote, not all.
    UploadInProgress,
    /// Every object is on the remote; no pointer commit exists yet.
    UploadDone,
    /// The pointer commit is pushed to the proposal branch (locally: the
    /// `cairn/<pipeline>` branch is moved); no pull request was opened or
    /// updated for it yet (locally: the checked-out branch was not merged).
    PointerPushed,
    /// The pull request is open; it is not merged yet (GitHub only).
    PullOpened,
    /// The run is over and recorded; its commit status is not sent yet.
    RunFinished,
}

impl Failpoint {
    /// All of them, in run order.
    pub const ALL: [Failpoint; 7] = [
        Failpoint::RunRecorded,
        Failpoint::TaskRunning,
        Failpoint::UploadInProgress,
        Failpoint::UploadDone,
        Failpoint::PointerPushed,
        Failpoint::PullOpened,
        Failpoint::RunFinished,
    ];

    /// The name used in [`ENV`].
    pub fn name(self) -> &'static str {
        match self {
            Failpoint::RunRecorded => "run-recorded",
            Failpoint::TaskRunning => "task-running",
            Failpoint::UploadInProgress => "upload-in-progress",
            Failpoint::UploadDone => "upload-done",
            Failpoint::PointerPushed => "pointer-pushed",
            Failpoint::PullOpened => "pull-opened",
            Failpoint::RunFinished => "run-finished",
        }
    }
}

/// Marks that a run reached `point`. Stops here for ever if the process was
/// started with [`ENV`] naming it (see the module documentation).
pub async fn hit(point: Failpoint) {
    if reached(point) {
        std::future::pending::<()>().await;
    }
}

/// [`hit`] for blocking code (a git operation on a blocking thread): stops
/// the calling thread for ever instead of the task.
pub fn hit_blocking(point: Failpoint) {
    if reached(point) {
        loop {
            std::thread::park();
        }
    }
}

/// Whether the process is to stop at `point`; says so on stderr if it is.
#[cfg(feature = "failpoints")]
fn reached(point: Failpoint) -> bool {
    static ARM: std::sync::Once = std::sync::Once::new();
    // The failpoint named by the variable is armed once, on the first hit:
    // `return` makes `fail_point!` hand back `true`. The blocking itself is
    // done by the callers, because fail's `pause` would park a whole
    // runtime worker thread where the async boundaries only need their task
    // to stop.
    ARM.call_once(|| {
        if let Some(name) = std::env::var(ENV).ok().filter(|v| !v.is_empty()) {
            fail::cfg(name, "return").expect("`return` is a valid fail action");
        }
    });
    fn armed(name: &str) -> bool {
        fail::fail_point!(name, |_| true);
        false
    }
    let stop = armed(point.name());
    if stop {
        eprintln!("cairn: failpoint {} reached", point.name());
    }
    stop
}

/// Without the `failpoints` feature no boundary ever stops.
#[cfg(not(feature = "failpoints"))]
fn reached(_point: Failpoint) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_in_run_order() {
        let names: Vec<_> = Failpoint::ALL.iter().map(|p| p.name()).collect();
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(names.first(), Some(&"run-recorded"));
        assert_eq!(names.last(), Some(&"run-finished"));
    }
}
