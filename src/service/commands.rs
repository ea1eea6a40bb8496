//! `/cairn` comment commands: acknowledged at once with a reaction, checked
//! against the commenter's role (asked of GitHub) and the pull request's
//! origin (a fork or not), carried out through the same run slots as every
//! other trigger, and answered in one reply per comment (edited in place if
//! the comment is handled again).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::commands::{self, authorize, Command};
use crate::github::{Permission, Reaction, RepoClient};
use crate::triggers::{CommentAction, IssueComment};

use super::runs::{Job, Loaded};
use super::slots::Submitted;
use super::{Accepted, Rejected, Service, Tip, Worker};

/// Comments being handled at once, across repositories; beyond this a
/// delivery is refused (503) and GitHub's redelivery can try again.
const MAX_IN_FLIGHT: usize = 64;

const NOT_LOADED: &str = "cairn has not loaded a valid pipelines.toml for this repository \
                          yet; nothing was done, try again shortly";

/// Facts about where a comment was made.
struct Place {
    /// The comment is on a pull request whose head is in another repository.
    from_fork: bool,
    /// The comment is on cairn's own pull request of this pipeline.
    own_pipeline: Option<String>,
}

impl Service {
    /// Take an `issue_comment` event: ignore what carries no command, then
    /// handle it on its own task (it calls GitHub several times).
    pub(super) fn accept_comment(&self, comment: &IssueComment) -> Result<Accepted, Rejected> {
        let ignored = |why: &str| Ok(Accepted::Ignored(why.to_string()));
        if comment.action != CommentAction::Created {
            return ignored("only new comments carry commands");
        }
        let by_cairn = self
            .options
            .bot_login
            .as_deref()
            .is_some_and(|bot| bot.eq_ignore_ascii_case(&comment.author.login));
        if comment.author.is_bot() || by_cairn || comment.body.contains("<!-- cairn:") {
            return ignored("a comment by a bot");
        }
        if commands::parse(&comment.body, &[]).is_empty() {
            return ignored("no /cairn command");
        }
        let repo = &comment.repo.full_name;
        let Some(worker) = self.repos().get(&repo.to_lowercase()).cloned() else {
            return Ok(Accepted::Ignored(format!("{repo} is not served here")));
        };
        let Some(service) = self.me.upgrade() else {
            return Err(Rejected::ShuttingDown);
        };
        if self.comments_in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            self.comments_in_flight.fetch_sub(1, Ordering::SeqCst);
            return Err(Rejected::Full { repo: repo.clone() });
        }
        let comment = comment.clone();
        self.tasks.spawn(async move {
            service.handle_comment(&worker, &comment).await;
            service.comments_in_flight.fetch_sub(1, Ordering::SeqCst);
        });
        Ok(Accepted::Woken { repo: repo.clone() })
    }

    async fn handle_comment(&self, worker: &Arc<Worker>, comment: &IssueComment) {
        let Some(chat) = worker.host.chat() else {
            return;
        };
        let repo = worker.host.name();
        let loaded = worker.current();
        let names: Vec<String> = loaded
            .as_ref()
            .map(|l| {
                l.config
                    .pipelines
                    .keys()
                    .map(|k| k.as_str().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let parsed = commands::parse(&comment.body, &names);
        if parsed.is_empty() {
            return;
        }
        // Acknowledge first: the answer can take a few API calls.
        if let Err(e) = chat.add_reaction(comment.comment_id, Reaction::Eyes).await {
            tracing::warn!(%repo, comment = comment.comment_id, "reaction: {e}");
        }
        let user = &comment.author.login;
        let answer = match chat.permission(user).await {
            // Without a config, every pipeline name would read as unknown.
            Ok(_) if loaded.is_none() => NOT_LOADED.to_string(),
            Ok(permission) => {
                let place = self.place(worker, chat, comment, loaded.as_ref()).await;
                let mut lines = Vec::with_capacity(parsed.len());
                for item in parsed {
                    lines.push(match item {
                        Err(e) => format!("- {e}"),
                        Ok(command) => {
                            let answer = self
                                .answer(worker, comment, &command, permission, &place, &loaded)
                                .await;
                            format!("- `{command}`: {answer}")
                        }
                    });
                }
                lines.join("\n")
            }
            Err(e) => {
                tracing::warn!(%repo, %user, "permission: {e}");
                "I could not check your permission on this repository, so nothing was done; \
                 please try again in a moment."
                    .to_string()
            }
        };
        let marker = format!("<!-- cairn:reply={} -->", comment.comment_id);
        let body = format!("@{user}\n\n{answer}\n");
        if let Err(e) = chat
            .upsert_comment(comment.issue_number, &marker, &body)
            .await
        {
            tracing::warn!(%repo, comment = comment.comment_id, "reply: {e}");
        }
    }

    /// Whether the comment is on a fork's pull request, or on cairn's own.
    /// When GitHub cannot tell, it counts as a fork (fail closed).
    async fn place(
        &self,
        worker: &Worker,
        chat: &RepoClient,
        comment: &IssueComment,
        loaded: Option<&Loaded>,
    ) -> Place {
        if !comment.is_pull_request {
            return Place {
                from_fork: false,
                own_pipeline: None,
            };
        }
        match chat.pull(comment.issue_number).await {
            Ok(pull) => {
                let from_fork = !pull
                    .head_repo
                    .as_deref()
                    .is_some_and(|h| h.eq_ignore_ascii_case(worker.host.name()));
                let own_pipeline = pull
                    .head_ref
                    .strip_prefix("cairn/")
                    .filter(|p| {
                        !from_fork && loaded.is_some_and(|l| l.config.pipeline(p).is_some())
                    })
                    .map(str::to_string);
                Place {
                    from_fork,
                    own_pipeline,
                }
            }
            Err(e) => {
                tracing::warn!(repo = %worker.host.name(), pull = comment.issue_number, "pull request: {e}");
                Place {
                    from_fork: true,
                    own_pipeline: None,
                }
            }
        }
    }

    async fn answer(
        &self,
        worker: &Worker,
        comment: &IssueComment,
        command: &Command,
        permission: Permission,
        place: &Place,
        loaded: &Option<Loaded>,
    ) -> String {
        let user = &comment.author.login;
        if let Err(denied) = authorize(
            &self.options.access,
            command,
            user,
            permission,
            place.from_fork,
        ) {
            return denied.to_string();
        }
        if let Command::Help = command {
            return commands::help_text();
        }
        let Some(loaded) = loaded else {
            return NOT_LOADED.into();
        };
        // On cairn's own pull request, commands are about its pipeline;
        // elsewhere about every pipeline.
        let targets: Vec<String> = match &place.own_pipeline {
            Some(p) => vec![p.clone()],
            None => loaded
                .config
                .pipelines
                .keys()
                .map(|k| k.as_str().to_string())
                .collect(),
        };
        let reason = format!("comment by @{user}");
        match command {
            Command::Help => commands::help_text(),
            Command::Run { pipelines } => {
                let mut out = Vec::new();
                for pipeline in pipelines {
                    let id = format!("{pipeline}-c{}", comment.comment_id);
                    out.push(self.start(worker, loaded, pipeline, &loaded.tip, id, &reason));
                }
                out.join("; ")
            }
            Command::Retry => {
                let mut out = Vec::new();
                for pipeline in &targets {
                    let last = worker
                        .store
                        .runs(Some(pipeline.as_str()), 1)
                        .ok()
                        .and_then(|r| r.into_iter().next());
                    let Some(last) = last.filter(|r| {
                        matches!(
                            r.phase,
                            crate::store::RunPhase::Failed | crate::store::RunPhase::Cancelled
                        )
                    }) else {
                        continue;
                    };
                    let tip = Tip {
                        branch: loaded.tip.branch.clone(),
                        commit: last.source_commit.clone(),
                    };
                    let id = format!("{pipeline}-r{}", comment.comment_id);
                    let reason = format!("{reason}: retry of {}", last.id);
                    out.push(self.start(worker, loaded, pipeline, &tip, id, &reason));
                }
                if out.is_empty() {
                    "nothing to retry: no last run failed or was cancelled".into()
                } else {
                    out.join("; ")
                }
            }
            Command::Cancel => {
                let mut out = Vec::new();
                for pipeline in &targets {
                    let (active, waiting) = worker.runs.cancel(pipeline);
                    if let Some(id) = active {
                        out.push(format!("cancelling `{id}`"));
                    }
                    if let Some(id) = waiting {
                        if let Err(e) = worker.store.drop_intent(&id) {
                            tracing::warn!(run = %id, "run store: {e}");
                        }
                        out.push(format!("dropped the waiting run `{id}`"));
                    }
                }
                if out.is_empty() {
                    "nothing was running or waiting".into()
                } else {
                    out.join("; ")
                }
            }
            Command::Merge => match (&place.own_pipeline, comment.is_pull_request) {
                (Some(_), true) => {
                    match worker
                        .host
                        .merge_now(Arc::clone(&worker.store), comment.issue_number)
                        .await
                    {
                        Ok(done) => done,
                        Err(e) => format!("not merged: {e}"),
                    }
                }
                _ => "`/cairn merge` only works on a pull request of cairn's (branch \
                      `cairn/<pipeline>`)"
                    .into(),
            },
            Command::Status => targets
                .iter()
                .map(|p| format!("\n  {}", self.status_line(worker, loaded, p)))
                .collect(),
        }
    }

    /// Submit a run and say what became of it.
    fn start(
        &self,
        worker: &Worker,
        loaded: &Loaded,
        pipeline: &str,
        tip: &Tip,
        id: String,
        reason: &str,
    ) -> String {
        match worker.store.run(&id) {
            Ok(Some(_)) => return format!("`{id}` was already started by this comment"),
            Ok(None) => {}
            Err(e) => return format!("`{pipeline}` not started: {e}"),
        }
        let job = Job {
            tip: tip.clone(),
            config: Arc::clone(&loaded.config),
            pipeline: pipeline.to_string(),
            reason: reason.to_string(),
            attach: false,
        };
        let shown = match self.run_url(&id) {
            Some(url) => format!("[`{id}`]({url})"),
            None => format!("`{id}`"),
        };
        match self.submit(worker, id, job) {
            Submitted::Started => format!("started {shown}"),
            Submitted::Queued { .. } => format!("queued {shown} behind the active run"),
            Submitted::Replacing { cancelled, .. } => {
                format!("cancelling the active run `{cancelled}`; {shown} starts next")
            }
            Submitted::Skipped { active } => format!(
                "`{pipeline}` not started: `{active}` is still running and the pipeline's \
                 concurrency is `forbid`"
            ),
        }
    }

    fn status_line(&self, worker: &Worker, loaded: &Loaded, pipeline: &str) -> String {
        let (active, waiting) = worker.runs.state(pipeline);
        let mut parts = Vec::new();
        if let Some(id) = active {
            parts.push(format!("running `{id}`"));
        }
        if let Some(id) = waiting {
            parts.push(format!("waiting `{id}`"));
        }
        match worker.store.runs(Some(pipeline), 1) {
            Ok(runs) => match runs.first() {
                Some(last) => parts.push(format!("last run `{}` {}", last.id, last.phase)),
                None => parts.push("no run yet".into()),
            },
            Err(e) => parts.push(format!("run history unavailable ({e})")),
        }
        if let Some(schedule) = loaded
            .config
            .pipeline(pipeline)
            .and_then(|p| p.schedule.as_ref())
        {
            if let Some(next) = schedule.next_after(self.clock.now()) {
                parts.push(format!(
                    "next scheduled {}",
                    next.with_timezone(&schedule.timezone())
                        .format("%Y-%m-%d %H:%M %Z")
                ));
            }
        }
        format!("- `{pipeline}`: {}", parts.join(", "))
    }
}
