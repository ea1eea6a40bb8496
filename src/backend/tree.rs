//! Every process a task started, found and stopped, including those that
//! left its process group (`setsid`) and whose parent died.
//!
//! A process group is not a boundary: `setsid` leaves it, and a child that
//! outlives the task keeps its output pipe open (the run then never ends) and
//! keeps running after the run. So cairn makes itself a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`): an orphan of any task is re-parented to cairn,
//! not to init, and stays findable. Each attempt is then known by three marks,
//! any of which is enough: being below the attempt's first process in the
//! process tree now; having been seen below it before (pid and start time,
//! so a reused pid is not mistaken for it); or carrying the attempt's mark in
//! its environment (inherited by every child that did not clear it). In the
//! cairn program, which starts no process but tasks, an orphan with no mark
//! at all broke the rules on purpose and goes whenever an attempt ends (see
//! [`only_tasks_are_children`]); a process embedding cairn that has other
//! children (a test harness) keeps that rule off.
//!
//! Linux only: it reads `/proc`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

/// The variable marking every process of one attempt.
pub const ATTEMPT_MARK: &str = "CAIRN_ATTEMPT_MARK";

/// A process as `/proc/<pid>/stat` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proc {
    ppid: i32,
    /// Clock ticks after boot: with the pid, names one process for good.
    start: u64,
    zombie: bool,
}

/// Every process now, by pid.
fn snapshot() -> HashMap<i32, Proc> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some(p) = read_stat(pid) {
            out.insert(pid, p);
        }
    }
    out
}

fn read_stat(pid: i32) -> Option<Proc> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Fields of `/proc/<pid>/stat` after the command name, which may itself
/// hold spaces and parentheses: everything after the last `)`.
fn parse_stat(text: &str) -> Option<Proc> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is the state (field 3), [1] the ppid (4), [19] starttime (22).
    Some(Proc {
        zombie: fields.first()? == &"Z",
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Whether `pid`'s environment holds `mark` as [`ATTEMPT_MARK`].
fn carries(pid: i32, mark: &str) -> Option<bool> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let wanted = format!("{ATTEMPT_MARK}={mark}");
    Some(environ.split(|&b| b == 0).any(|kv| kv == wanted.as_bytes()))
}

/// Whether `pid` carries any attempt's mark.
fn marked(pid: i32) -> Option<bool> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{ATTEMPT_MARK}=");
    Some(
        environ
            .split(|&b| b == 0)
            .any(|kv| kv.starts_with(prefix.as_bytes())),
    )
}

/// Makes this process the reaper of its descendants' orphans. Idempotent.
pub fn become_subreaper() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag
        // and touches no memory of ours.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        if rc != 0 {
            tracing::warn!(
                "cannot become a child subreaper ({}); a task's orphans may outlive it",
                std::io::Error::last_os_error()
            );
        }
    });
}

/// Set by the cairn program: every child of this process is a task or a
/// task's orphan, so an orphan without a mark is a task's, and zombies that
/// are not attempts' first processes may be reaped.
static ONLY_TASKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Declares that this process starts no child but tasks (the cairn
/// program's `run` and `serve` do; a library user may not).
pub fn only_tasks_are_children() {
    ONLY_TASKS.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn only_tasks() -> bool {
    ONLY_TASKS.load(std::sync::atomic::Ordering::SeqCst)
}

/// The first process of every attempt running now: spawned (and reaped) by
/// tokio, never by [`reap_orphans`]. Spawning happens under this lock (see
/// [`spawn_root`]), so a reaper never sees a root before it is listed.
fn roots() -> &'static Mutex<HashSet<i32>> {
    static ROOTS: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
    ROOTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// The processes of one attempt.
pub struct Attempt {
    root: i32,
    mark: String,
    /// Every process seen below the root, with its start time.
    seen: BTreeMap<i32, u64>,
}

/// Spawns an attempt's first process with `spawn` (which must put `mark`
/// in its environment as [`ATTEMPT_MARK`]) and lists it as a root.
pub fn spawn_root<T>(
    mark: String,
    spawn: impl FnOnce() -> std::io::Result<(T, Option<u32>)>,
) -> std::io::Result<(T, Option<Attempt>)> {
    let mut roots = roots().lock().unwrap_or_else(|e| e.into_inner());
    let (child, pid) = spawn()?;
    let attempt = pid.map(|pid| {
        let root = pid as i32;
        roots.insert(root);
        Attempt {
            root,
            mark,
            seen: BTreeMap::new(),
        }
    });
    Ok((child, attempt))
}

impl Attempt {
    /// Records the processes below the root now (called while it runs).
    pub fn look(&mut self) {
        let all = snapshot();
        for pid in below(&all, self.root) {
            if let Some(p) = all.get(&pid) {
                self.seen.insert(pid, p.start);
            }
        }
    }

    /// SIGKILLs every process of the attempt still alive, then reaps those
    /// that became this process's children; returns how many it killed.
    pub fn kill_all(&mut self) -> usize {
        let doomed = self.doomed();
        for &pid in &doomed {
            // SAFETY: kill(2) has no memory-safety preconditions; a process
            // already gone answers ESRCH.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        reap(&doomed);
        doomed.len()
    }

    fn doomed(&self) -> Vec<i32> {
        let me = std::process::id() as i32;
        let all = snapshot();
        let live_roots: HashSet<i32> = roots()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .filter(|&r| r != self.root)
            .collect();
        let mut doomed: HashSet<i32> = below(&all, self.root).into_iter().collect();
        for (pid, start) in &self.seen {
            if all.get(pid).is_some_and(|p| p.start == *start) {
                doomed.insert(*pid);
            }
        }
        // Orphans re-parented to cairn: this attempt's by their mark, and
        // any without a mark at all.
        for (&pid, p) in &all {
            if p.ppid != me || pid == self.root || live_roots.contains(&pid) {
                continue;
            }
            let ours = carries(pid, &self.mark).unwrap_or(false);
            let unmarked = only_tasks() && marked(pid) == Some(false);
            if ours || unmarked {
                doomed.insert(pid);
                doomed.extend(below(&all, pid));
            }
        }
        doomed.remove(&me);
        doomed.into_iter().collect()
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        roots()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.root);
    }
}

/// Every process below `root` (not `root` itself) in `all`.
fn below(all: &HashMap<i32, Proc>, root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (&pid, p) in all {
        children.entry(p.ppid).or_default().push(pid);
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            if child != root && !out.contains(&child) {
                out.push(child);
                stack.push(child);
            }
        }
    }
    out
}

/// Waits (briefly) for `pids`, just killed, that are this process's own
/// children (orphans re-parented here), so none stays a zombie.
fn reap(pids: &[i32]) {
    let me = std::process::id() as i32;
    let ours: Vec<i32> = pids
        .iter()
        .copied()
        .filter(|&pid| read_stat(pid).is_some_and(|p| p.ppid == me))
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let mut left = ours;
    while !left.is_empty() && std::time::Instant::now() < deadline {
        left.retain(|&pid| {
            let mut status = 0;
            // SAFETY: waitpid on one child of ours with WNOHANG; `status` is
            // a valid out-pointer for the call.
            let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            rc == 0
        });
        if !left.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Reaps this process's children that are zombies and were not spawned by
/// tokio (orphans of tasks, re-parented here): without it they would stay
/// in the process table. Only in a process whose children are all tasks
/// ([`only_tasks_are_children`]). Returns how many.
pub fn reap_orphans() -> usize {
    if !only_tasks() {
        return 0;
    }
    let me = std::process::id() as i32;
    // Held while looking: no root is spawned meanwhile unlisted.
    let roots = roots().lock().unwrap_or_else(|e| e.into_inner());
    let mut reaped = 0;
    for (pid, p) in snapshot() {
        if p.ppid == me && p.zombie && !roots.contains(&pid) {
            let mut status = 0;
            // SAFETY: waitpid on one specific child with WNOHANG; `status`
            // is a valid out-pointer for the call's duration.
            let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if rc == pid {
                reaped += 1;
            }
        }
    }
    reaped
}

/// Reaps orphans every few seconds until `stop`: for a process that is the
/// container's PID 1 or a subreaper.
pub async fn reap_until(stop: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
        }
        tokio::task::spawn_blocking(reap_orphans).await.ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parentheses_parses() {
        let p = parse_stat(
            "123 (we ird) (x) S 45 123 123 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 9876 0 0",
        )
        .unwrap();
        assert_eq!(
            p,
            Proc {
                ppid: 45,
                start: 9876,
                zombie: false
            }
        );
        assert!(
            parse_stat("7 (z) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0")
                .unwrap()
                .zombie
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn below_finds_the_whole_subtree_only() {
        let p = |ppid| Proc {
            ppid,
            start: 1,
            zombie: false,
        };
        let all = HashMap::from([
            (10, p(1)),
            (11, p(10)),
            (12, p(11)),
            (13, p(1)),
            (14, p(13)),
        ]);
        let mut found = below(&all, 10);
        found.sort();
        assert_eq!(found, [11, 12]);
    }
}
