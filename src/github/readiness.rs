//! Why a pull request can or cannot be merged yet (pure): GitHub's
//! `mergeable_state`, read together with the commit statuses and check runs of
//! its head, which name what is still pending or failing.

use std::collections::BTreeSet;
use std::fmt;

use super::model::{CheckRun, CombinedStatus, MergeableState, PullRequest, StatusState};

/// A pull request's merge readiness; `Display` explains it in one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeReadiness {
    pub number: u64,
    pub head_sha: String,
    pub base_ref: String,
    pub open: bool,
    pub merged: bool,
    pub draft: bool,
    /// GitHub's `mergeable`: `None` while it is computing it.
    pub mergeable: Option<bool>,
    pub state: MergeableState,
    /// Statuses and check runs not finished yet, by name.
    pub pending: Vec<String>,
    /// Statuses and check runs that failed, by name.
    pub failing: Vec<String>,
}

/// Check run conclusions that count as failed.
const FAILED_CONCLUSIONS: &[&str] = &[
    "failure",
    "timed_out",
    "cancelled",
    "action_required",
    "startup_failure",
    "stale",
];

impl MergeReadiness {
    pub fn new(pull: &PullRequest, status: &CombinedStatus, runs: &[CheckRun]) -> MergeReadiness {
        let (pending, failing) = classify_checks(status, runs);
        MergeReadiness {
            number: pull.number,
            head_sha: pull.head_sha.clone(),
            base_ref: pull.base_ref.clone(),
            open: pull.is_open(),
            merged: pull.merged,
            draft: pull.draft,
            mergeable: pull.mergeable,
            state: pull.mergeable_state.clone(),
            pending,
            failing,
        }
    }

    /// Whether a merge may be attempted now.
    pub fn can_merge(&self) -> bool {
        self.open
            && !self.merged
            && self.mergeable == Some(true)
            && matches!(
                self.state,
                MergeableState::Clean | MergeableState::Unstable | MergeableState::HasHooks
            )
    }

    /// Whether GitHub is still computing mergeability: ask again in a few seconds.
    pub fn is_computing(&self) -> bool {
        self.open
            && !self.merged
            && (self.mergeable.is_none() || self.state == MergeableState::Unknown)
    }
}

/// (pending, failing) context names, sorted, each once.
fn classify_checks(status: &CombinedStatus, runs: &[CheckRun]) -> (Vec<String>, Vec<String>) {
    let mut pending = BTreeSet::new();
    let mut failing = BTreeSet::new();
    for s in &status.statuses {
        match s.state {
            StatusState::Pending => pending.insert(s.context.clone()),
            StatusState::Failure | StatusState::Error => failing.insert(s.context.clone()),
            StatusState::Success => false,
        };
    }
    for run in runs {
        if run.status != "completed" {
            pending.insert(run.name.clone());
        } else if run
            .conclusion
            .as_deref()
            .is_some_and(|c| FAILED_CONCLUSIONS.contains(&c))
        {
            failing.insert(run.name.clone());
        }
    }
    // A context both pending (a re-run) and failed (an older run) is pending.
    failing.retain(|name| !pending.contains(name));
    (pending.into_iter().collect(), failing.into_iter().collect())
}

impl fmt::Display for MergeReadiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.number;
        let checks = || {
            let mut parts = Vec::new();
            if !self.pending.is_empty() {
                parts.push(format!("waiting for {}", self.pending.join(", ")));
            }
            if !self.failing.is_empty() {
                parts.push(format!("failing: {}", self.failing.join(", ")));
            }
            parts.join("; ")
        };
        if self.merged {
            return write!(f, "#{n} is already merged");
        }
        if !self.open {
            return write!(f, "#{n} is closed");
        }
        if self.draft || self.state == MergeableState::Draft {
            return write!(f, "#{n} is a draft");
        }
        if self.is_computing() {
            return write!(
                f,
                "GitHub is still computing whether #{n} can be merged; ask again in a few seconds"
            );
        }
        match &self.state {
            MergeableState::Clean | MergeableState::HasHooks => {
                write!(f, "#{n} can be merged")
            }
            MergeableState::Unstable => {
                let checks = checks();
                if checks.is_empty() {
                    write!(f, "#{n} can be merged, though some checks did not pass")
                } else {
                    write!(
                        f,
                        "#{n} can be merged, though not every check passed ({checks})"
                    )
                }
            }
            MergeableState::Blocked => {
                let checks = checks();
                if checks.is_empty() {
                    write!(
                        f,
                        "#{n} is blocked by branch protection on {} (a required review or check)",
                        self.base_ref
                    )
                } else {
                    write!(f, "#{n} is blocked: {checks}")
                }
            }
            MergeableState::Behind => write!(
                f,
                "#{n} is behind {} and branch protection requires it to be up to date",
                self.base_ref
            ),
            MergeableState::Dirty => {
                write!(f, "#{n} has merge conflicts with {}", self.base_ref)
            }
            MergeableState::Draft => write!(f, "#{n} is a draft"),
            MergeableState::Unknown => write!(
                f,
                "GitHub is still computing whether #{n} can be merged; ask again in a few seconds"
            ),
            MergeableState::Other(other) => {
                write!(f, "#{n} cannot be merged yet (mergeable_state {other})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::model::{CommitStatus, PullState};

    fn pull(state: MergeableState, mergeable: Option<bool>) -> PullRequest {
        PullRequest {
            number: 7,
            state: PullState::Open,
            title: "t".into(),
            body: None,
            html_url: "h".into(),
            head_ref: "cairn/daily".into(),
            head_sha: "abc".into(),
            head_repo: Some("acme/data".into()),
            base_ref: "main".into(),
            draft: false,
            merged: false,
            mergeable,
            mergeable_state: state,
            merge_commit_sha: None,
        }
    }

    fn status(pairs: &[(&str, StatusState)]) -> CombinedStatus {
        CombinedStatus {
            state: StatusState::Pending,
            statuses: pairs
                .iter()
                .map(|(context, state)| CommitStatus {
                    context: (*context).into(),
                    state: *state,
                    description: None,
                    target_url: None,
                })
                .collect(),
        }
    }

    fn run(name: &str, status: &str, conclusion: Option<&str>) -> CheckRun {
        CheckRun {
            name: name.into(),
            status: status.into(),
            conclusion: conclusion.map(Into::into),
        }
    }

    #[test]
    fn blocked_names_pending_and_failing_contexts() {
        let r = MergeReadiness::new(
            &pull(MergeableState::Blocked, Some(true)),
            &status(&[
                ("ci/build", StatusState::Pending),
                ("ci/lint", StatusState::Failure),
                ("ci/ok", StatusState::Success),
                ("ci/err", StatusState::Error),
            ]),
            &[
                run("tests", "in_progress", None),
                run("docs", "completed", Some("timed_out")),
                run("fmt", "completed", Some("success")),
                run("skip", "completed", Some("skipped")),
            ],
        );
        assert_eq!(r.pending, ["ci/build", "tests"]);
        assert_eq!(r.failing, ["ci/err", "ci/lint", "docs"]);
        assert!(!r.can_merge());
        assert_eq!(
            r.to_string(),
            "#7 is blocked: waiting for ci/build, tests; failing: ci/err, ci/lint, docs"
        );
    }

    #[test]
    fn a_rerun_is_pending_not_failing() {
        let r = MergeReadiness::new(
            &pull(MergeableState::Blocked, Some(true)),
            &status(&[("ci", StatusState::Failure)]),
            &[run("ci", "queued", None)],
        );
        assert_eq!(r.pending, ["ci"]);
        assert!(r.failing.is_empty());
    }

    #[test]
    fn states_explained() {
        let none = status(&[]);
        let explain = |state, mergeable| {
            let r = MergeReadiness::new(&pull(state, mergeable), &none, &[]);
            (r.can_merge(), r.is_computing(), r.to_string())
        };
        assert_eq!(
            explain(MergeableState::Clean, Some(true)),
            (true, false, "#7 can be merged".into())
        );
        assert_eq!(
            explain(MergeableState::Unknown, None),
            (
                false,
                true,
                "GitHub is still computing whether #7 can be merged; ask again in a few seconds"
                    .into()
            )
        );
        assert_eq!(
            explain(MergeableState::Dirty, Some(false)),
            (false, false, "#7 has merge conflicts with main".into())
        );
        assert_eq!(
            explain(MergeableState::Behind, Some(true)).2,
            "#7 is behind main and branch protection requires it to be up to date"
        );
        assert_eq!(
            explain(MergeableState::Blocked, Some(true)).2,
            "#7 is blocked by branch protection on main (a required review or check)"
        );
        assert!(explain(MergeableState::Unstable, Some(true)).0);
        let mut merged = pull(MergeableState::Unknown, None);
        merged.merged = true;
        merged.state = PullState::Closed;
        let r = MergeReadiness::new(&merged, &none, &[]);
        assert!(!r.is_computing() && !r.can_merge());
        assert_eq!(r.to_string(), "#7 is already merged");
    }
}
