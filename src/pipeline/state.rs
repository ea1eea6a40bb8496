//! The state of one run's task phase and the transition function.

use std::time::Duration;

use super::Limits;

/// One task as the scheduler sees it: dependencies by index into the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPlan {
    pub name: String,
    /// Indexes of the tasks this one needs; each is smaller than this task's
    /// own index when the plan is in topological order, but the state machine
    /// does not rely on that.
    pub needs: Vec<usize>,
    /// 1 + the configured retries.
    pub max_attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Not started: some dependency has not succeeded yet, or no slot was free.
    Waiting,
    /// An attempt (1-based) was started, or is waiting out its retry backoff.
    Running {
        attempt: u32,
    },
    Succeeded {
        attempt: u32,
    },
    /// Failed for good after `attempt` attempts.
    Failed {
        attempt: u32,
        reason: String,
    },
    /// Never started because the task at this index failed or was cancelled.
    Skipped {
        because: usize,
    },
    /// Stopped, or never started, because the run was cancelled.
    Cancelled,
}

impl TaskState {
    pub fn is_terminal(&self) -> bool {
        !matches!(self, TaskState::Waiting | TaskState::Running { .. })
    }

    /// A short word for logs, tables and the run store.
    pub fn label(&self) -> &'static str {
        match self {
            TaskState::Waiting => "waiting",
            TaskState::Running { .. } => "running",
            TaskState::Succeeded { .. } => "succeeded",
            TaskState::Failed { .. } => "failed",
            TaskState::Skipped { .. } => "skipped",
            TaskState::Cancelled => "cancelled",
        }
    }
}

/// How one attempt ended, as the executor observed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    Succeeded,
    /// Failed; `retryable` is false for failures another attempt cannot fix
    /// (a command that does not exist, say).
    Failed {
        reason: String,
        retryable: bool,
    },
    /// Stopped because the scheduler asked for it.
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    AttemptEnded {
        task: usize,
        attempt: u32,
        result: AttemptResult,
    },
    /// Stop everything: the run's timeout expired or someone cancelled it.
    Cancel { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start attempt `attempt` of `task` once `delay` has passed.
    Start {
        task: usize,
        attempt: u32,
        delay: Duration,
    },
    /// Stop the running attempt of `task`; its `AttemptEnded` follows.
    Stop { task: usize },
    /// Nothing is running and nothing will start: the task phase is over.
    Finish(RunOutcome),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    /// Names of the tasks that failed for good, in plan order.
    Failed {
        tasks: Vec<String>,
    },
    Cancelled {
        reason: String,
    },
}

/// The task phase of one run.
#[derive(Debug, Clone)]
pub struct RunState {
    plan: Vec<TaskPlan>,
    tasks: Vec<TaskState>,
    limits: Limits,
    cancelled: Option<String>,
    finished: bool,
}

impl RunState {
    pub fn new(plan: Vec<TaskPlan>, limits: Limits) -> RunState {
        let tasks = vec![TaskState::Waiting; plan.len()];
        RunState {
            plan,
            tasks,
            limits: Limits {
                max_parallel: limits.max_parallel.max(1),
                ..limits
            },
            cancelled: None,
            finished: false,
        }
    }

    pub fn plan(&self) -> &[TaskPlan] {
        &self.plan
    }

    pub fn task(&self, index: usize) -> &TaskState {
        &self.tasks[index]
    }

    pub fn tasks(&self) -> impl Iterator<Item = (&TaskPlan, &TaskState)> {
        self.plan.iter().zip(self.tasks.iter())
    }

    /// The first actions of a run: start whatever has no dependencies.
    pub fn start(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        self.schedule(&mut actions);
        actions
    }

    /// Apply one observed event and return what to do next.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::AttemptEnded {
                task,
                attempt,
                result,
            } => self.attempt_ended(task, attempt, result, &mut actions),
            Event::Cancel { reason } => self.cancel(reason, &mut actions),
        }
        self.schedule(&mut actions);
        actions
    }

    fn attempt_ended(
        &mut self,
        task: usize,
        attempt: u32,
        result: AttemptResult,
        actions: &mut Vec<Action>,
    ) {
        // An event for an attempt that is not the current one is stale (a
        // duplicate delivery, say) and changes nothing.
        if task >= self.tasks.len() || self.tasks[task] != (TaskState::Running { attempt }) {
            return;
        }
        match result {
            AttemptResult::Succeeded => {
                self.tasks[task] = TaskState::Succeeded { attempt };
            }
            AttemptResult::Stopped => {
                self.tasks[task] = TaskState::Cancelled;
                self.skip_downstream(task);
            }
            AttemptResult::Failed { reason, retryable } => {
                let may_retry =
                    retryable && attempt < self.plan[task].max_attempts && self.cancelled.is_none();
                if may_retry {
                    let next = attempt + 1;
                    self.tasks[task] = TaskState::Running { attempt: next };
                    actions.push(Action::Start {
                        task,
                        attempt: next,
                        delay: self.backoff(attempt),
                    });
                } else {
                    self.tasks[task] = TaskState::Failed { attempt, reason };
                    self.skip_downstream(task);
                }
            }
        }
    }

    fn cancel(&mut self, reason: String, actions: &mut Vec<Action>) {
        if self.cancelled.is_some() || self.finished {
            return;
        }
        self.cancelled = Some(reason);
        for (index, state) in self.tasks.iter_mut().enumerate() {
            match state {
                TaskState::Waiting => *state = TaskState::Cancelled,
                TaskState::Running { .. } => actions.push(Action::Stop { task: index }),
                _ => {}
            }
        }
    }

    /// Delay before attempt `failed + 1`: backoff, 2*backoff, 4*backoff...
    fn backoff(&self, failed: u32) -> Duration {
        let factor = 1u32 << (failed.saturating_sub(1)).min(16);
        self.limits
            .retry_backoff
            .saturating_mul(factor)
            .min(self.limits.max_backoff)
    }

    fn skip_downstream(&mut self, failed: usize) {
        // Walk dependents transitively; the plan is small, so a fixed-point
        // loop is clearer than building a reverse index.
        let mut changed = true;
        while changed {
            changed = false;
            for index in 0..self.plan.len() {
                if self.tasks[index] != TaskState::Waiting {
                    continue;
                }
                let blocked = self.plan[index].needs.iter().any(|&need| {
                    need == failed
                        || matches!(
                            self.tasks[need],
                            TaskState::Skipped { .. } | TaskState::Failed { .. }
                        )
                });
                if blocked {
                    self.tasks[index] = TaskState::Skipped { because: failed };
                    changed = true;
                }
            }
        }
    }

    fn schedule(&mut self, actions: &mut Vec<Action>) {
        if self.finished {
            return;
        }
        if self.cancelled.is_none() {
            let mut running = self
                .tasks
                .iter()
                .filter(|t| matches!(t, TaskState::Running { .. }))
                .count();
            for index in 0..self.plan.len() {
                if running >= self.limits.max_parallel {
                    break;
                }
                let ready = self.tasks[index] == TaskState::Waiting
                    && self.plan[index]
                        .needs
                        .iter()
                        .all(|&need| matches!(self.tasks[need], TaskState::Succeeded { .. }));
                if ready {
                    self.tasks[index] = TaskState::Running { attempt: 1 };
                    running += 1;
                    actions.push(Action::Start {
                        task: index,
                        attempt: 1,
                        delay: Duration::ZERO,
                    });
                }
            }
        }
        if self.tasks.iter().all(TaskState::is_terminal) {
            self.finished = true;
            actions.push(Action::Finish(self.outcome()));
        }
    }

    fn outcome(&self) -> RunOutcome {
        let failed: Vec<String> = self
            .tasks()
            .filter(|(_, state)| matches!(state, TaskState::Failed { .. }))
            .map(|(plan, _)| plan.name.clone())
            .collect();
        if !failed.is_empty() {
            RunOutcome::Failed { tasks: failed }
        } else if let Some(reason) = &self.cancelled {
            RunOutcome::Cancelled {
                reason: reason.clone(),
            }
        } else if self
            .tasks
            .iter()
            .all(|t| matches!(t, TaskState::Succeeded { .. }))
        {
            RunOutcome::Succeeded
        } else {
            // A task was stopped without a run-wide cancel: count it as failed.
            RunOutcome::Failed {
                tasks: self
                    .tasks()
                    .filter(|(_, s)| !matches!(s, TaskState::Succeeded { .. }))
                    .map(|(p, _)| p.name.clone())
                    .collect(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_parallel: usize) -> Limits {
        Limits {
            max_parallel,
            retry_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(250),
        }
    }

    fn plan(specs: &[(&str, &[usize], u32)]) -> Vec<TaskPlan> {
        specs
            .iter()
            .map(|(name, needs, max_attempts)| TaskPlan {
                name: name.to_string(),
                needs: needs.to_vec(),
                max_attempts: *max_attempts,
            })
            .collect()
    }

    fn start(task: usize, attempt: u32) -> Action {
        Action::Start {
            task,
            attempt,
            delay: Duration::ZERO,
        }
    }

    fn ended(task: usize, attempt: u32, result: AttemptResult) -> Event {
        Event::AttemptEnded {
            task,
            attempt,
            result,
        }
    }

    fn fail(retryable: bool) -> AttemptResult {
        AttemptResult::Failed {
            reason: "exit status 1".into(),
            retryable,
        }
    }

    #[test]
    fn chain_runs_in_order_and_succeeds() {
        let mut run = RunState::new(
            plan(&[("a", &[], 1), ("b", &[0], 1), ("c", &[1], 1)]),
            limits(4),
        );
        assert_eq!(run.start(), vec![start(0, 1)]);
        assert_eq!(
            run.handle(ended(0, 1, AttemptResult::Succeeded)),
            vec![start(1, 1)]
        );
        assert_eq!(
            run.handle(ended(1, 1, AttemptResult::Succeeded)),
            vec![start(2, 1)]
        );
        assert_eq!(
            run.handle(ended(2, 1, AttemptResult::Succeeded)),
            vec![Action::Finish(RunOutcome::Succeeded)]
        );
    }

    #[test]
    fn independent_tasks_start_together_up_to_the_limit() {
        let mut run = RunState::new(
            plan(&[
                ("a", &[], 1),
                ("b", &[], 1),
                ("c", &[], 1),
                ("d", &[0, 1, 2], 1),
            ]),
            limits(2),
        );
        assert_eq!(run.start(), vec![start(0, 1), start(1, 1)]);
        assert_eq!(
            run.handle(ended(1, 1, AttemptResult::Succeeded)),
            vec![start(2, 1)]
        );
        assert_eq!(run.handle(ended(0, 1, AttemptResult::Succeeded)), vec![]);
        assert_eq!(
            run.handle(ended(2, 1, AttemptResult::Succeeded)),
            vec![start(3, 1)]
        );
    }

    #[test]
    fn failure_is_retried_with_growing_backoff_then_fails_and_skips_dependents() {
        let mut run = RunState::new(
            plan(&[("a", &[], 3), ("b", &[0], 1), ("c", &[1], 1), ("d", &[], 1)]),
            limits(4),
        );
        assert_eq!(run.start(), vec![start(0, 1), start(3, 1)]);
        let retry = |attempt, ms| Action::Start {
            task: 0,
            attempt,
            delay: Duration::from_millis(ms),
        };
        assert_eq!(run.handle(ended(0, 1, fail(true))), vec![retry(2, 100)]);
        assert_eq!(run.handle(ended(0, 2, fail(true))), vec![retry(3, 200)]);
        assert_eq!(run.handle(ended(0, 3, fail(true))), vec![]);
        assert_eq!(run.task(1), &TaskState::Skipped { because: 0 });
        assert_eq!(run.task(2), &TaskState::Skipped { because: 0 });
        // the independent task still finishes before the run does
        assert_eq!(
            run.handle(ended(3, 1, AttemptResult::Succeeded)),
            vec![Action::Finish(RunOutcome::Failed {
                tasks: vec!["a".into()]
            })]
        );
    }

    #[test]
    fn backoff_is_capped() {
        let mut run = RunState::new(plan(&[("a", &[], 10)]), limits(1));
        run.start();
        let mut delays = Vec::new();
        for attempt in 1..5 {
            for action in run.handle(ended(0, attempt, fail(true))) {
                if let Action::Start { delay, .. } = action {
                    delays.push(delay.as_millis());
                }
            }
        }
        assert_eq!(delays, vec![100, 200, 250, 250]);
    }

    #[test]
    fn non_retryable_failure_fails_at_once() {
        let mut run = RunState::new(plan(&[("a", &[], 5)]), limits(1));
        run.start();
        assert_eq!(
            run.handle(ended(0, 1, fail(false))),
            vec![Action::Finish(RunOutcome::Failed {
                tasks: vec!["a".into()]
            })]
        );
    }

    #[test]
    fn stale_and_duplicate_events_change_nothing() {
        let mut run = RunState::new(plan(&[("a", &[], 2), ("b", &[0], 1)]), limits(1));
        run.start();
        run.handle(ended(0, 1, fail(true)));
        // attempt 1 reported again after the retry started
        assert_eq!(run.handle(ended(0, 1, AttemptResult::Succeeded)), vec![]);
        assert_eq!(run.task(0), &TaskState::Running { attempt: 2 });
        assert_eq!(
            run.handle(ended(0, 2, AttemptResult::Succeeded)),
            vec![start(1, 1)]
        );
        assert_eq!(run.handle(ended(0, 2, AttemptResult::Succeeded)), vec![]);
    }

    #[test]
    fn cancel_stops_running_and_skips_waiting() {
        let mut run = RunState::new(
            plan(&[("a", &[], 3), ("b", &[0], 1), ("c", &[], 1)]),
            limits(4),
        );
        run.start();
        let actions = run.handle(Event::Cancel {
            reason: "run timeout 30m expired".into(),
        });
        assert_eq!(
            actions,
            vec![Action::Stop { task: 0 }, Action::Stop { task: 2 }]
        );
        assert_eq!(run.task(1), &TaskState::Cancelled);
        assert_eq!(run.handle(ended(0, 1, AttemptResult::Stopped)), vec![]);
        // a failure that lands after the cancel is not retried
        assert_eq!(
            run.handle(ended(2, 1, fail(true))),
            vec![Action::Finish(RunOutcome::Failed {
                tasks: vec!["c".into()]
            })]
        );
    }

    #[test]
    fn cancel_with_nothing_failed_reports_cancelled() {
        let mut run = RunState::new(plan(&[("a", &[], 1)]), limits(1));
        run.start();
        run.handle(Event::Cancel {
            reason: "cancelled by user".into(),
        });
        assert_eq!(
            run.handle(ended(0, 1, AttemptResult::Stopped)),
            vec![Action::Finish(RunOutcome::Cancelled {
                reason: "cancelled by user".into()
            })]
        );
    }

    #[test]
    fn empty_plan_finishes_at_once() {
        let mut run = RunState::new(Vec::new(), limits(1));
        assert_eq!(run.start(), vec![Action::Finish(RunOutcome::Succeeded)]);
    }

    #[test]
    fn diamond_waits_for_both_sides() {
        let mut run = RunState::new(
            plan(&[
                ("a", &[], 1),
                ("b", &[0], 1),
                ("c", &[0], 1),
                ("d", &[1, 2], 1),
            ]),
            limits(4),
        );
        run.start();
        assert_eq!(
            run.handle(ended(0, 1, AttemptResult::Succeeded)),
            vec![start(1, 1), start(2, 1)]
        );
        assert_eq!(run.handle(ended(2, 1, AttemptResult::Succeeded)), vec![]);
        assert_eq!(
            run.handle(ended(1, 1, AttemptResult::Succeeded)),
            vec![start(3, 1)]
        );
    }
}
