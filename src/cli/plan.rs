//! `cairn plan`: what a run would do, read from the committed
//! pipelines.toml and pointers, without running anything.

use std::path::Path;
use std::process::ExitCode;

use cairn::config::Pipeline;
use cairn::forge::bot_branch;
use cairn::reconciler::RepoSource;

pub fn plan(repo: &Path, only: Option<&str>) -> anyhow::Result<ExitCode> {
    let source = RepoSource::open(repo)?;
    let pipelines: Vec<&Pipeline> = match only {
        Some(name) => vec![source.pipeline(name)?],
        None => source.config().pipelines.values().collect(),
    };
    println!(
        "at commit {} ({})",
        &source.head_commit()[..12],
        source.head_branch().unwrap_or("detached HEAD")
    );
    for pipeline in pipelines {
        println!();
        describe(&source, pipeline)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(source: &RepoSource, p: &Pipeline) -> anyhow::Result<()> {
    println!("pipeline {}", p.name.as_str());
    println!(
        "  dataset   {} (pointer {})",
        p.dataset.as_str(),
        p.dataset.pointer_path()
    );
    match source.pointer(p, source.head_commit())? {
        Some(out) => {
            let files = out
                .nfiles
                .map(|n| format!(", {n} files"))
                .unwrap_or_default();
            let size = out
                .size
                .map(|s| format!("{s} bytes"))
                .unwrap_or_else(|| "size unknown".into());
            println!("  current   md5 {} ({size}{files})", out.id);
        }
        None => println!("  current   no version yet (first run starts with no data)"),
    }
    match source.remote(p) {
        Ok(remote) => println!("  remote    {}", remote.url()),
        Err(e) => println!("  remote    not usable: {e}"),
    }
    let target = match p.merge {
        cairn::config::MergePolicy::Review => {
            format!("commit on branch {}", bot_branch(p.name.as_str()))
        }
        cairn::config::MergePolicy::Auto => format!(
            "commit on branch {}, then merge into {}",
            bot_branch(p.name.as_str()),
            source.head_branch().unwrap_or("the current branch")
        ),
        cairn::config::MergePolicy::Direct => format!(
            "commit onto {}",
            source.head_branch().unwrap_or("the current branch")
        ),
    };
    println!("  merge     {} ({target})", p.merge);
    if let Some(timeout) = p.timeout {
        println!("  timeout   {}", humantime::format_duration(timeout));
    }
    if let Some(schedule) = &p.schedule {
        let next = schedule
            .next_after(chrono::Utc::now())
            .map(|t| {
                format!(
                    ", next {}",
                    t.with_timezone(&schedule.timezone())
                        .format("%Y-%m-%d %H:%M %Z")
                )
            })
            .unwrap_or_default();
        println!(
            "  schedule  {} ({}){next}, catchup {}",
            schedule.expr(),
            schedule.timezone(),
            p.catchup
        );
    }
    println!("  tasks, in order:");
    for (i, name) in p.tasks.order().iter().enumerate() {
        let task = p.tasks.get(name);
        let needs = if task.needs.is_empty() {
            "-".to_string()
        } else {
            task.needs
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let timeout = task
            .timeout
            .map(|t| humantime::format_duration(t).to_string())
            .unwrap_or_else(|| "none".into());
        println!(
            "    {}. {:<20} needs {:<20} retries {}  timeout {}",
            i + 1,
            name.as_str(),
            needs,
            task.retries,
            timeout
        );
        println!("       $ {}", shell_words(&task.command));
    }
    Ok(())
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
