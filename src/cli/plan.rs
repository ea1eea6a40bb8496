//! `cairn plan`: what a run would do, read from the committed
//! pipelines.toml and pointers, without running anything.
//!
//! The plan is built once as a value ([`Plan`]) and then printed as text or
//! as JSON, so the two outputs cannot drift apart.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use cairn::config::{MergePolicy, Pipeline};
use cairn::forge::bot_branch;
use cairn::reconciler::RepoSource;

use super::Output;

#[derive(Debug, Serialize)]
struct Plan {
    commit: String,
    /// `None` on a detached HEAD.
    branch: Option<String>,
    pipelines: Vec<PipelinePlan>,
}

#[derive(Debug, Serialize)]
struct PipelinePlan {
    name: String,
    dataset: String,
    pointer: String,
    /// The version the pointer names at HEAD; `None` before the first run.
    current: Option<Version>,
    /// The remote's URL, or `None` and why it cannot be used.
    remote: Option<String>,
    remote_error: Option<String>,
    merge: MergePolicy,
    /// Where the pointer commit goes, in words.
    target: String,
    timeout_seconds: Option<u64>,
    schedule: Option<SchedulePlan>,
    on_push: Option<OnPushPlan>,
    /// Dependencies first.
    tasks: Vec<TaskPlan>,
}

#[derive(Debug, Serialize)]
struct Version {
    md5: String,
    size: Option<u64>,
    nfiles: Option<u64>,
}

#[derive(Debug, Serialize)]
struct SchedulePlan {
    cron: String,
    timezone: String,
    /// RFC 3339, in the schedule's timezone.
    next: Option<String>,
    /// The same, as people read it (`2026-11-28 02:00 UTC`).
    #[serde(skip)]
    next_text: Option<String>,
    /// What happens to ticks missed while the service was down.
    catchup: cairn::config::Catchup,
}

#[derive(Debug, Serialize)]
struct OnPushPlan {
    branches: Vec<String>,
    paths: Vec<String>,
}

#[derive(Debug, Serialize)]
struct TaskPlan {
    name: String,
    needs: Vec<String>,
    retries: u32,
    timeout_seconds: Option<u64>,
    command: Vec<String>,
}

pub fn plan(repo: &Path, only: Option<&str>, output: Output) -> anyhow::Result<ExitCode> {
    let source = RepoSource::open(repo)?;
    let pipelines: Vec<&Pipeline> = match only {
        Some(name) => vec![source.pipeline(name)?],
        None => source.config().pipelines.values().collect(),
    };
    let plan = Plan {
        commit: source.head_commit().to_string(),
        branch: source.head_branch().map(str::to_string),
        pipelines: pipelines
            .into_iter()
            .map(|p| describe(&source, p, chrono::Utc::now()))
            .collect::<anyhow::Result<_>>()?,
    };
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
        Output::Text => print_text(&plan),
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(
    source: &RepoSource,
    p: &Pipeline,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<PipelinePlan> {
    let current = source.pointer(p, source.head_commit())?.map(|out| Version {
        md5: out.id.to_string(),
        size: out.size,
        nfiles: out.nfiles,
    });
    let remote = source
        .remote(p)
        .map(|r| r.url().to_string())
        .map_err(|e| e.to_string());
    let branch = source.head_branch().unwrap_or("the current branch");
    let target = match p.merge {
        MergePolicy::Review => format!("commit on branch {}", bot_branch(p.name.as_str())),
        MergePolicy::Auto => format!(
            "commit on branch {}, then merge into {branch}",
            bot_branch(p.name.as_str()),
        ),
        MergePolicy::Direct => format!("commit onto {branch}"),
    };
    Ok(PipelinePlan {
        name: p.name.as_str().to_string(),
        dataset: p.dataset.as_str().to_string(),
        pointer: p.dataset.pointer_path(),
        current,
        remote: remote.as_ref().ok().cloned(),
        remote_error: remote.err(),
        merge: p.merge,
        target,
        timeout_seconds: p.timeout.map(|t| t.as_secs()),
        schedule: p.schedule.as_ref().map(|s| {
            let next = s.next_after(now);
            SchedulePlan {
                cron: s.expr().to_string(),
                timezone: s.timezone().name().to_string(),
                next: next.map(|t| t.with_timezone(&s.timezone()).to_rfc3339()),
                next_text: next.map(|t| {
                    t.with_timezone(&s.timezone())
                        .format("%Y-%m-%d %H:%M %Z")
                        .to_string()
                }),
                catchup: p.catchup,
            }
        }),
        on_push: p.on_push.as_ref().map(|o| OnPushPlan {
            branches: o.branches().into_iter().map(str::to_string).collect(),
            paths: o.paths().into_iter().map(str::to_string).collect(),
        }),
        tasks: p
            .tasks
            .iter()
            .map(|task| TaskPlan {
                name: task.name.as_str().to_string(),
                needs: task.needs.iter().map(|n| n.as_str().to_string()).collect(),
                retries: task.retries,
                timeout_seconds: task.timeout.map(|t| t.as_secs()),
                command: task.command.clone(),
            })
            .collect(),
    })
}

fn print_text(plan: &Plan) {
    println!(
        "at commit {} ({})",
        &plan.commit[..plan.commit.len().min(12)],
        plan.branch.as_deref().unwrap_or("detached HEAD")
    );
    for p in &plan.pipelines {
        println!();
        println!("pipeline {}", p.name);
        println!("  dataset   {} (pointer {})", p.dataset, p.pointer);
        match &p.current {
            Some(v) => {
                let files = v.nfiles.map(|n| format!(", {n} files")).unwrap_or_default();
                let size = v
                    .size
                    .map(|s| format!("{s} bytes"))
                    .unwrap_or_else(|| "size unknown".into());
                println!("  current   md5 {} ({size}{files})", v.md5);
            }
            None => println!("  current   no version yet (first run starts with no data)"),
        }
        match (&p.remote, &p.remote_error) {
            (Some(url), _) => println!("  remote    {url}"),
            (None, e) => println!("  remote    not usable: {}", e.as_deref().unwrap_or("?")),
        }
        println!("  merge     {} ({})", p.merge, p.target);
        if let Some(secs) = p.timeout_seconds {
            println!(
                "  timeout   {}",
                humantime::format_duration(std::time::Duration::from_secs(secs))
            );
        }
        if let Some(s) = &p.schedule {
            let next = s
                .next_text
                .as_deref()
                .map(|t| format!(", next {t}"))
                .unwrap_or_default();
            println!(
                "  schedule  {} ({}){next}, catchup {}",
                s.cron, s.timezone, s.catchup
            );
        }
        if let Some(o) = &p.on_push {
            let branches = if o.branches.is_empty() {
                "the default branch".to_string()
            } else {
                o.branches.join(", ")
            };
            let paths = if o.paths.is_empty() {
                "any path".to_string()
            } else {
                o.paths.join(" ")
            };
            println!("  on push   to {branches}: {paths}");
        }
        println!("  tasks, in order:");
        for (i, task) in p.tasks.iter().enumerate() {
            let needs = if task.needs.is_empty() {
                "-".to_string()
            } else {
                task.needs.join(", ")
            };
            let timeout = task
                .timeout_seconds
                .map(|t| humantime::format_duration(std::time::Duration::from_secs(t)).to_string())
                .unwrap_or_else(|| "none".into());
            println!(
                "    {}. {:<20} needs {:<20} retries {}  timeout {}",
                i + 1,
                task.name,
                needs,
                task.retries,
                timeout
            );
            println!("       $ {}", shell_words(&task.command));
        }
    }
}

/// The command as a person would type it.
fn shell_words(command: &[String]) -> String {
    command
        .iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
