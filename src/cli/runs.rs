//! `cairn runs`: the run history kept in `.cairn/cairn.db`.

use std::path::Path;
use std::process::ExitCode;

use cairn::forge::GitRepo;

pub fn runs(
    repo: &Path,
    pipeline: Option<&str>,
    limit: usize,
    output: super::Output,
) -> anyhow::Result<ExitCode> {
    let git = GitRepo::discover(repo)?;
    let store = super::open_store(git.workdir())?;
    let runs = store.runs(pipeline, limit)?;
    if output == super::Output::Json {
        let mut out = Vec::new();
        for run in &runs {
            let mut value = serde_json::to_value(run)?;
            value["attempts"] = serde_json::to_value(store.attempts(&run.id)?)?;
            out.push(value);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("no runs yet");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<44} {:<10} {:<20} {:>8}  {:<10} {:<12} ERROR",
        "RUN", "STATE", "STARTED (UTC)", "SECONDS", "MD5", "COMMIT"
    );
    for run in runs {
        let started = chrono::DateTime::from_timestamp_millis(run.created_at)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let seconds = run
            .finished_at
            .map(|f| format!("{:.1}", (f - run.created_at) as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        let md5 = run
            .new_md5
            .as_deref()
            .map(|m| &m[..m.len().min(8)])
            .unwrap_or("-");
        let commit = run
            .commit
            .as_deref()
            .map(|c| &c[..c.len().min(12)])
            .unwrap_or("-");
        let error = run
            .error
            .as_deref()
            .and_then(|e| e.lines().next())
            .unwrap_or("");
        println!(
            "{:<44} {:<10} {:<20} {:>8}  {:<10} {:<12} {}",
            run.id, run.phase, started, seconds, md5, commit, error
        );
    }
    Ok(ExitCode::SUCCESS)
}
