//! `cairn validate`: every problem in a pipelines.toml, with its place.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

pub fn validate(file: &Path) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    match cairn::config::parse(&text, &file.display().to_string()) {
        Ok(config) => {
            let tasks: usize = config.pipelines.values().map(|p| p.tasks.len()).sum();
            println!(
                "{}: ok ({} pipeline{}, {} task{})",
                file.display(),
                config.pipelines.len(),
                plural(config.pipelines.len()),
                tasks,
                plural(tasks)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            Ok(ExitCode::FAILURE)
        }
    }
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
