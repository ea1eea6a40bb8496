//! Clean-up work that must outlive the future that started it.
//!
//! When a caller drops an upload half-way (publish stops every other transfer on
//! the first failure), the multipart upload it had opened must still be aborted,
//! or its parts would stay on the server (and be billed). Drop cannot await, so
//! the abort is spawned here; [`Background::idle`] lets
//! [`Remote::flush`](crate::remote::Remote::flush) (and tests) wait until every
//! such task has finished.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Counts spawned clean-up tasks and wakes waiters when none is left.
#[derive(Debug, Clone, Default)]
pub(super) struct Background {
    running: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

impl Background {
    /// Runs `task` on the current tokio runtime. Without a runtime (the remote is
    /// being dropped outside one) the task cannot run and is returned unstarted.
    pub(super) fn spawn<F>(&self, task: F) -> Result<tokio::task::JoinHandle<()>, F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return Err(task);
        };
        self.running.fetch_add(1, Ordering::SeqCst);
        let done = Done(self.clone());
        Ok(handle.spawn(async move {
            let _done = done; // counts the task as finished even if it panics
            task.await;
        }))
    }

    /// Waits until no spawned task is running.
    pub(super) async fn idle(&self) {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Marks one task finished when dropped.
struct Done(Background);

impl Drop for Done {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.done.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn idle_waits_for_spawned_tasks() {
        let bg = Background::default();
        bg.idle().await;
        let flag = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let f = flag.clone();
            let spawned = bg.spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                f.fetch_add(1, Ordering::SeqCst);
            });
            assert!(spawned.is_ok());
        }
        bg.idle().await;
        assert_eq!(flag.load(Ordering::SeqCst), 3);
    }
}
