//! Which pipelines a change to the default branch concerns (pure).
//!
//! The service does not trust a push payload's commit list: GitHub caps it,
//! deliveries get lost, and a resync has no payload at all. It replays the
//! commits between the last reconciled commit and the new tip from its
//! mirror instead, and asks this module what to run.

use std::collections::BTreeSet;

use crate::config::Config;
use crate::forge::RUN_TRAILER;

/// One commit of the replayed range, with the paths it changed.
#[derive(Debug, Clone)]
pub struct ChangedCommit {
    pub id: String,
    pub message: String,
    pub paths: Vec<String>,
}

impl ChangedCommit {
    /// cairn's own pointer commits carry a `Cairn-Run:` trailer; they must
    /// never trigger runs (no loops), whoever pushed or merged them.
    pub fn is_by_cairn(&self) -> bool {
        self.message.lines().any(|l| l.starts_with(RUN_TRAILER))
    }
}

/// Why a pipeline runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// A changed path matched its `on_push.paths` (the first one is named).
    Paths { first: String },
    /// Its own definition in pipelines.toml changed (or it is new).
    Definition,
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Paths { first } => write!(f, "{first} changed"),
            Why::Definition => f.write_str("its definition in pipelines.toml changed"),
        }
    }
}

/// The paths changed by commits people made, in the range.
pub fn human_changes(commits: &[ChangedCommit]) -> BTreeSet<String> {
    commits
        .iter()
        .filter(|c| !c.is_by_cairn())
        .flat_map(|c| c.paths.iter().cloned())
        .collect()
}

/// The pipelines of `config` that a change of `changed` on `branch` starts,
/// in the order pipelines.toml lists them. `previous` is the config that
/// was in force before (to see whose definition changed); `None` on the
/// first reconcile, when nothing counts as a definition change.
///
/// Only pipelines with `on_push` react to pushes at all: the others run on
/// their schedule or on command.
pub fn pipelines_to_run(
    previous: Option<&Config>,
    config: &Config,
    branch: &str,
    default_branch: &str,
    changed: &BTreeSet<String>,
) -> Vec<(String, Why)> {
    if changed.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for pipeline in config.pipelines.values() {
        let Some(on_push) = &pipeline.on_push else {
            continue;
        };
        if !on_push.matches_branch(branch, default_branch) {
            continue;
        }
        let name = pipeline.name.as_str();
        if let Some(first) = changed
            .iter()
            .find(|p| on_push.matches_paths(std::iter::once(p.as_str())))
        {
            out.push((
                name.to_string(),
                Why::Paths {
                    first: first.clone(),
                },
            ));
            continue;
        }
        let redefined = previous.is_some_and(|prev| {
            prev.pipeline(name)
                .is_none_or(|old| old.digest != pipeline.digest)
        });
        if redefined {
            out.push((name.to_string(), Why::Definition));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        crate::config::parse(text, "pipelines.toml").expect("valid")
    }

    const BASE: &str = r#"
[pipelines.train]
dataset = "data/model"
on_push = { paths = ["src/**", "pipelines.toml"] }
[pipelines.train.tasks.fit]
command = ["true"]

[pipelines.nightly]
dataset = "data/nightly"
schedule = "@daily"
[pipelines.nightly.tasks.go]
command = ["true"]

[pipelines.any]
dataset = "data/any"
on_push = {}
[pipelines.any.tasks.go]
command = ["true"]
"#;

    fn set(paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    fn names(runs: &[(String, Why)]) -> Vec<&str> {
        runs.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn paths_branches_and_push_less_pipelines() {
        let c = config(BASE);
        let runs = pipelines_to_run(None, &c, "main", "main", &set(&["src/a.py", "README.md"]));
        // Listed by name; nightly has no on_push.
        assert_eq!(names(&runs), ["any", "train"]);
        assert!(runs.contains(&(
            "train".into(),
            Why::Paths {
                first: "src/a.py".into()
            }
        )));
        assert!(runs.iter().any(|(n, _)| n == "any"));
        assert!(!runs.iter().any(|(n, _)| n == "nightly"));

        let runs = pipelines_to_run(None, &c, "main", "main", &set(&["README.md"]));
        assert_eq!(names(&runs), ["any"]);
        // Another branch than the default: on_push without branches means the default only.
        assert!(pipelines_to_run(None, &c, "dev", "main", &set(&["src/a.py"])).is_empty());
        assert!(pipelines_to_run(None, &c, "main", "main", &BTreeSet::new()).is_empty());
    }

    #[test]
    fn a_changed_definition_runs_even_when_no_path_matches() {
        let old = config(BASE);
        let new = config(&BASE.replace(
            "command = [\"true\"]\n\n[pipelines.nightly]",
            "command = [\"false\"]\n\n[pipelines.nightly]",
        ));
        let runs = pipelines_to_run(Some(&old), &new, "main", "main", &set(&["docs/x.md"]));
        assert!(
            runs.contains(&("train".into(), Why::Definition)),
            "{runs:?}"
        );
        // Unchanged definitions do not run without a matching path.
        let runs = pipelines_to_run(Some(&old), &old, "main", "main", &set(&["docs/x.md"]));
        assert!(!runs.iter().any(|(n, _)| n == "train"));
    }

    #[test]
    fn cairn_commits_change_nothing() {
        let commits = vec![
            ChangedCommit {
                id: "1".into(),
                message: "Update data/model\n\nCairn-Run: train-1\n".into(),
                paths: vec!["data/model.dvc".into()],
            },
            ChangedCommit {
                id: "2".into(),
                message: "fix the model".into(),
                paths: vec!["src/model.py".into()],
            },
        ];
        assert_eq!(human_changes(&commits), set(&["src/model.py"]));
        assert!(human_changes(&commits[..1]).is_empty());
    }
}
