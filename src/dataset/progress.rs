//! Progress reporting for the built-in steps, without the library printing on its own.
//!
//! The library only reports through a [`Progress`] the caller chose: hidden (the
//! default, for tests and embedding), indicatif bars (a terminal), or plain lines
//! on stderr (logs, CI, pods). [`Progress::auto`] picks bars or lines by whether
//! stderr is a terminal.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mode {
    #[default]
    Hidden,
    Bars,
    Lines,
}

/// How a step reports progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    mode: Mode,
}

impl Progress {
    /// Reports nothing.
    pub fn hidden() -> Progress {
        Progress { mode: Mode::Hidden }
    }

    /// indicatif progress bars on stderr.
    pub fn bars() -> Progress {
        Progress { mode: Mode::Bars }
    }

    /// One line on stderr when a task starts and one when it ends.
    pub fn lines() -> Progress {
        Progress { mode: Mode::Lines }
    }

    /// Bars when stderr is a terminal, lines otherwise.
    pub fn auto() -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::bars()
        } else {
            Progress::lines()
        }
    }

    /// Starts a task counting bytes; `total` is None when unknown up front.
    pub fn task(&self, label: impl Into<String>, total: Option<u64>) -> Task {
        let label = label.into();
        let bar = match self.mode {
            Mode::Hidden => return Task { inner: None },
            Mode::Bars => Some(make_bar(&label, total)),
            Mode::Lines => {
                match total {
                    Some(t) => eprintln!("{label} ({})", human_bytes(t)),
                    None => eprintln!("{label}"),
                }
                None
            }
        };
        Task {
            inner: Some(Arc::new(TaskInner {
                label,
                bar,
                bytes: AtomicU64::new(0),
                started: Instant::now(),
            })),
        }
    }
}

fn make_bar(label: &str, total: Option<u64>) -> ProgressBar {
    let (bar, template) = match total {
        Some(t) => (
            ProgressBar::new(t),
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{spinner} {msg} {binary_bytes} {binary_bytes_per_sec}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

struct TaskInner {
    label: String,
    bar: Option<ProgressBar>,
    bytes: AtomicU64,
    started: Instant,
}

/// One running task; cheap to clone and safe to update from many threads.
#[derive(Clone)]
pub struct Task {
    inner: Option<Arc<TaskInner>>,
}

impl Task {
    /// Counts `n` more bytes done.
    pub fn add_bytes(&self, n: u64) {
        if let Some(t) = &self.inner {
            t.bytes.fetch_add(n, Ordering::Relaxed);
            if let Some(bar) = &t.bar {
                bar.inc(n);
            }
        }
    }

    /// Ends the task with a short summary (`"3 files"`, `"nothing to upload"`).
    pub fn finish(&self, summary: &str) {
        let Some(t) = &self.inner else { return };
        if let Some(bar) = &t.bar {
            bar.finish_and_clear();
        }
        let secs = t.started.elapsed().as_secs_f64();
        let bytes = t.bytes.load(Ordering::Relaxed);
        eprintln!(
            "{}: {summary}, {} in {secs:.1}s",
            t.label,
            human_bytes(bytes)
        );
    }
}

/// `1.5 MiB` style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_tasks_do_nothing() {
        let t = Progress::hidden().task("x", Some(3));
        t.add_bytes(3);
        t.finish("done");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
