//! The body's run section: how the version was made, task by task.

use super::{RunView, TaskState, TaskView, NOTE_ROOM};
use crate::diffview::markdown as md;

fn short_sha(sha: &str) -> String {
    if sha.len() >= 7 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("`{}`", &sha[..7])
    } else {
        md::code(&md::truncate(sha, 64), false)
    }
}

pub(super) fn run_section(run: &RunView, max_tasks: usize, budget: usize) -> String {
    let mut out = String::from("### Run\n\n");
    let id = md::code(&md::truncate(&run.id, 100), false);
    out.push_str(&format!(
        "- **Run:** {}\n",
        match &run.url {
            Some(url) => format!("{id} ({})", md::link("run page", Some(url))),
            None => id,
        }
    ));
    out.push_str(&format!(
        "- **Triggered by:** {}\n",
        md::text(&md::truncate(&run.trigger, 200))
    ));
    out.push_str(&format!(
        "- **Source commit:** {}\n",
        md::link(&short_sha(&run.source.sha), run.source.url.as_deref())
    ));
    if run.tasks.is_empty() {
        return out;
    }
    out.push_str("\n| task | result | duration |\n| --- | --- | --- |\n");
    let mut shown = 0;
    for t in run.tasks.iter().take(max_tasks) {
        let row = format!(
            "| {} | {} | {} |\n",
            md::code(&md::truncate(&t.name, 80), true),
            state_text(&t.state, &run.tasks),
            t.duration.map_or_else(|| "—".to_string(), md::duration)
        );
        if out.len() + row.len() + NOTE_ROOM > budget {
            break;
        }
        out.push_str(&row);
        shown += 1;
    }
    if shown < run.tasks.len() {
        let more = (run.tasks.len() - shown) as u64;
        let noun = if more == 1 { "task" } else { "tasks" };
        out.push_str(&format!("\n… and {} more {noun}.\n", md::thousands(more)));
    }
    out
}

fn state_text(state: &TaskState, tasks: &[TaskView]) -> String {
    match state {
        TaskState::Waiting => "not started".to_string(),
        TaskState::Running { .. } => "running".to_string(),
        TaskState::Succeeded { attempt } if *attempt <= 1 => "succeeded".to_string(),
        TaskState::Succeeded { attempt } => format!("succeeded on attempt {attempt}"),
        TaskState::Failed { attempt, reason } => format!(
            "failed after {}: {}",
            md::count(u64::from(*attempt), "attempt", "attempts"),
            md::cell(&md::truncate(reason, 120))
        ),
        TaskState::Skipped { because } => match tasks.get(*because) {
            Some(t) => format!(
                "skipped: {} did not succeed",
                md::code(&md::truncate(&t.name, 80), true)
            ),
            None => "skipped".to_string(),
        },
        TaskState::Cancelled => "cancelled".to_string(),
    }
}
