//! One run slot per pipeline: the `concurrency` policy, applied the same way
//! to every trigger (push, schedule, comment command, API).
//!
//! A slot holds at most one active run and at most one waiting run, so a
//! burst of triggers can never pile up work:
//! - `forbid`: while a run is active, a new trigger is skipped;
//! - `queue`: it waits; a newer trigger replaces the waiting one (the newest
//!   intent wins, and it is the one that runs next);
//! - `replace`: it waits, and the active run is cancelled, so it starts as
//!   soon as the cancelled run has stopped (two runs of one pipeline never
//!   overlap, as they would race on its pull request).
//!
//! [`Slot`] is the pure rule; [`Dispatcher`] holds a slot per pipeline,
//! starts runs on the service's task tracker, cancels them, and starts the
//! waiting run when the active one ends.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Concurrency;

/// The rule for one pipeline (pure). `J` is whatever describes a run.
#[derive(Debug)]
pub struct Slot<J> {
    active: Option<String>,
    waiting: Option<(String, J)>,
}

impl<J> Default for Slot<J> {
    fn default() -> Self {
        Slot {
            active: None,
            waiting: None,
        }
    }
}

/// What [`Slot::offer`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer<J> {
    /// The slot was idle: start this run now (it is now the active one).
    Start(J),
    /// `forbid` and a run is active: the trigger is dropped.
    Skipped { active: String },
    /// `queue`: it waits for the active run; `displaced` is the waiting
    /// run it replaced.
    Queued { displaced: Option<String> },
    /// `replace`: it waits, and the active run `cancel` must be cancelled.
    Replacing {
        cancel: String,
        displaced: Option<String>,
    },
}

impl<J> Slot<J> {
    pub fn offer(&mut self, policy: Concurrency, id: String, job: J) -> Offer<J> {
        let Some(active) = &self.active else {
            self.active = Some(id);
            return Offer::Start(job);
        };
        match policy {
            Concurrency::Forbid => Offer::Skipped {
                active: active.clone(),
            },
            Concurrency::Queue => Offer::Queued {
                displaced: self.waiting.replace((id, job)).map(|(id, _)| id),
            },
            Concurrency::Replace => Offer::Replacing {
                cancel: active.clone(),
                displaced: self.waiting.replace((id, job)).map(|(id, _)| id),
            },
        }
    }

    /// The active run `id` ended; the waiting run, if any, is now active
    /// and must be started.
    pub fn finished(&mut self, id: &str) -> Option<(String, J)> {
        if self.active.as_deref() != Some(id) {
            return None;
        }
        self.active = None;
        let (next, job) = self.waiting.take()?;
        self.active = Some(next.clone());
        Some((next, job))
    }

    /// Drop the waiting run; returns its id and the active run's (to cancel).
    pub fn clear(&mut self) -> (Option<String>, Option<String>) {
        (self.active.clone(), self.waiting.take().map(|(id, _)| id))
    }

    pub fn active(&self) -> Option<&str> {
        self.active.as_deref()
    }

    pub fn waiting(&self) -> Option<&str> {
        self.waiting.as_ref().map(|(id, _)| id.as_str())
    }
}

/// What became of a submitted run, for answers and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    Started,
    Skipped {
        active: String,
    },
    Queued {
        displaced: Option<String>,
    },
    Replacing {
        cancelled: String,
        displaced: Option<String>,
    },
}

impl std::fmt::Display for Submitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Submitted::Started => f.write_str("started"),
            Submitted::Skipped { active } => {
                write!(f, "skipped: run {active} is active (concurrency = forbid)")
            }
            Submitted::Queued { .. } => f.write_str("queued behind the active run"),
            Submitted::Replacing { cancelled, .. } => {
                write!(
                    f,
                    "starts once the active run {cancelled} has been cancelled"
                )
            }
        }
    }
}

/// The future of one run.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Carries out one run to its end; the token is cancelled by `replace`,
/// `/cairn cancel` and shutdown.
pub type Runner<J> = Arc<dyn Fn(String, J, CancellationToken) -> BoxFuture + Send + Sync>;

struct Entry<J> {
    slot: Slot<J>,
    /// The active run's token.
    cancel: Option<CancellationToken>,
}

/// A slot per pipeline, with runs started on `tasks`.
pub struct Dispatcher<J> {
    slots: Mutex<HashMap<String, Entry<J>>>,
    runner: Runner<J>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl<J: Send + 'static> Dispatcher<J> {
    pub fn new(runner: Runner<J>, tasks: TaskTracker, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Dispatcher {
            slots: Mutex::new(HashMap::new()),
            runner,
            tasks,
            shutdown,
        })
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry<J>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offer run `id` of `pipeline` under `policy`. Never blocks.
    pub fn submit(
        self: &Arc<Self>,
        pipeline: &str,
        policy: Concurrency,
        id: String,
        job: J,
    ) -> Submitted {
        let mut slots = self.slots();
        let entry = slots.entry(pipeline.to_owned()).or_insert_with(|| Entry {
            slot: Slot::default(),
            cancel: None,
        });
        match entry.slot.offer(policy, id.clone(), job) {
            Offer::Start(job) => {
                let token = self.shutdown.child_token();
                entry.cancel = Some(token.clone());
                drop(slots);
                self.spawn(pipeline.to_owned(), id, job, token);
                Submitted::Started
            }
            Offer::Skipped { active } => Submitted::Skipped { active },
            Offer::Queued { displaced } => Submitted::Queued { displaced },
            Offer::Replacing { cancel, displaced } => {
                if let Some(token) = &entry.cancel {
                    token.cancel();
                }
                Submitted::Replacing {
                    cancelled: cancel,
                    displaced,
                }
            }
        }
    }

    fn spawn(self: &Arc<Self>, pipeline: String, id: String, job: J, token: CancellationToken) {
        let this = Arc::clone(self);
        self.tasks.spawn(async move {
            let (mut id, mut job, mut token) = (id, job, token);
            loop {
                (this.runner)(id.clone(), job, token).await;
                let mut slots = this.slots();
                let Some(entry) = slots.get_mut(&pipeline) else {
                    return;
                };
                match entry.slot.finished(&id) {
                    Some((next, next_job)) if !this.shutdown.is_cancelled() => {
                        let next_token = this.shutdown.child_token();
                        entry.cancel = Some(next_token.clone());
                        (id, job, token) = (next, next_job, next_token);
                    }
                    Some((next, _)) => {
                        // Shutting down: the waiting run is not started.
                        entry.slot.finished(&next);
                        entry.cancel = None;
                        return;
                    }
                    None => {
                        entry.cancel = None;
                        return;
                    }
                }
            }
        });
    }

    /// Cancel `pipeline`'s active run and drop its waiting one. Returns
    /// their ids.
    pub fn cancel(&self, pipeline: &str) -> (Option<String>, Option<String>) {
        let mut slots = self.slots();
        let Some(entry) = slots.get_mut(pipeline) else {
            return (None, None);
        };
        let (active, waiting) = entry.slot.clear();
        if let Some(token) = &entry.cancel {
            token.cancel();
        }
        (active, waiting)
    }

    /// The active and waiting run ids of `pipeline`.
    pub fn state(&self, pipeline: &str) -> (Option<String>, Option<String>) {
        self.slots()
            .get(pipeline)
            .map(|e| {
                (
                    e.slot.active().map(str::to_owned),
                    e.slot.waiting().map(str::to_owned),
                )
            })
            .unwrap_or_default()
    }

    pub fn is_idle(&self, pipeline: &str) -> bool {
        self.state(pipeline).0.is_none()
    }
}

#[cfg(test)]
mod tests;
