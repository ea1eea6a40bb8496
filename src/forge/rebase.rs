//! A proposal built on a branch that moved since its run started.
//!
//! A run reads its source commit and proposes changes on top of it; by the
//! time it delivers, the branch may hold newer commits. Those are kept: the
//! pointer commit goes on the branch as it is now. What decides is who
//! changed the files the proposal writes:
//! - nobody: the proposal applies as it is;
//! - the branch already holds exactly the proposed content: nothing to write
//!   for that file (an earlier delivery of this version landed);
//! - the proposal only appends lines to a `.gitignore` (the entry of its
//!   dataset, which pipelines whose datasets share a folder all add to):
//!   those lines are appended to the file as it is now, unless it has them;
//! - only cairn's own pointer commits for the same pipeline (a replaced run
//!   whose delivery finished while the newer run went on): the newer run's
//!   version is written over it;
//! - anyone else: a conflict, and the run says which file.

use super::git::{FileChange, GitRepo, RUN_TRAILER};
use super::{ForgeError, Proposal};

/// The trailer naming the pipeline a pointer commit is for.
pub const PIPELINE_TRAILER: &str = "Cairn-Pipeline:";

/// The changes to commit on `tip` (the head of `branch`) for `proposal`.
/// Empty when the branch holds all of them already.
pub fn rebase(
    repo: &GitRepo,
    proposal: &Proposal,
    tip: &str,
    branch: &str,
) -> Result<Vec<FileChange>, ForgeError> {
    if tip == proposal.base {
        return Ok(proposal.changes.clone());
    }
    let mut between: Option<Vec<(String, String)>> = None;
    let mut out = Vec::new();
    for change in &proposal.changes {
        let now = repo.read_file(tip, &change.path)?;
        if now == repo.read_file(&proposal.base, &change.path)? {
            out.push(change.clone());
            continue;
        }
        if now == change.content {
            continue;
        }
        let list = change.path == ".gitignore" || change.path.ends_with("/.gitignore");
        let merged = if list {
            appended(
                repo.read_file(&proposal.base, &change.path)?.as_deref(),
                change.content.as_deref(),
                now.as_deref(),
            )
        } else {
            None
        };
        if let Some(merged) = merged {
            // Lines added to a list (a `.gitignore` entry): add them to
            // the list as it is now.
            if Some(merged.as_slice()) != now.as_deref() {
                out.push(FileChange {
                    path: change.path.clone(),
                    content: Some(merged),
                });
            }
            continue;
        }
        let commits = match &mut between {
            Some(commits) => commits,
            None => between.insert(repo.commits_between(Some(&proposal.base), tip)?),
        };
        let mut ours_only = true;
        for (id, message) in commits.iter() {
            if repo.changed_paths(id)?.contains(&change.path)
                && !is_pointer_commit_of(message, &proposal.pipeline)
            {
                ours_only = false;
                break;
            }
        }
        if !ours_only {
            return Err(ForgeError::Conflict {
                path: change.path.clone(),
                branch: branch.to_string(),
            });
        }
        tracing::info!(
            pipeline = %proposal.pipeline,
            path = %change.path,
            "an earlier run of this pipeline changed the file meanwhile; the newer version goes on top"
        );
        out.push(change.clone());
    }
    Ok(out)
}

/// When `ours` is `base` with lines appended, `now` with those of the
/// lines it lacks appended; `None` when `ours` changed more than that.
fn appended(base: Option<&[u8]>, ours: Option<&[u8]>, now: Option<&[u8]>) -> Option<Vec<u8>> {
    let (base, ours) = (base.unwrap_or_default(), ours?);
    let added = ours.strip_prefix(base)?;
    let now = now.unwrap_or_default();
    let mut merged = now.to_vec();
    for line in added.split_inclusive(|&b| b == b'\n') {
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        if bare.is_empty() || now.split(|&b| b == b'\n').any(|l| l == bare) {
            continue;
        }
        if !merged.is_empty() && !merged.ends_with(b"\n") {
            merged.push(b'\n');
        }
        merged.extend_from_slice(bare);
        merged.push(b'\n');
    }
    Some(merged)
}

/// `message` is a pointer commit cairn made for `pipeline`.
fn is_pointer_commit_of(message: &str, pipeline: &str) -> bool {
    let trailer = |name: &str| {
        message
            .lines()
            .filter_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    !trailer(RUN_TRAILER).is_empty() && trailer(PIPELINE_TRAILER) == [pipeline]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MergePolicy;

    /// A repository with `data.csv.dvc` = "v0" at its first commit.
    fn repo() -> (tempfile::TempDir, git2::Repository, String) {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let base = commit(&repo, "v0", "Add the pointer");
        (dir, repo, base)
    }

    fn commit(repo: &git2::Repository, pointer: &str, message: &str) -> String {
        let workdir = repo.workdir().unwrap().to_path_buf();
        std::fs::write(workdir.join("data.csv.dvc"), pointer).unwrap();
        let mut index = repo.index().unwrap();
        index
            .add_path(std::path::Path::new("data.csv.dvc"))
            .unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.invalid").unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
            .to_string()
    }

    fn proposal(base: &str, pointer: &str) -> Proposal {
        Proposal {
            pipeline: "p".into(),
            run_id: "r-2".into(),
            base: base.into(),
            changes: vec![FileChange {
                path: "data.csv.dvc".into(),
                content: Some(pointer.as_bytes().to_vec()),
            }],
            message: "p: update".into(),
            title: String::new(),
            body: String::new(),
            policy: MergePolicy::Direct,
        }
    }

    #[test]
    fn a_branch_that_did_not_move_takes_the_proposal_as_it_is() {
        let (dir, _repo, base) = repo();
        let git = GitRepo::discover(dir.path()).unwrap();
        let changes = rebase(&git, &proposal(&base, "v2"), &base, "main").unwrap();
        assert_eq!(changes, proposal(&base, "v2").changes);
    }

    #[test]
    fn an_earlier_pointer_commit_of_the_same_pipeline_is_built_over() {
        let (dir, repo, base) = repo();
        let tip = commit(
            &repo,
            "v1",
            "p: update\n\nCairn-Run: r-1\nCairn-Pipeline: p\n",
        );
        let git = GitRepo::discover(dir.path()).unwrap();
        let changes = rebase(&git, &proposal(&base, "v2"), &tip, "main").unwrap();
        assert_eq!(changes, proposal(&base, "v2").changes);
    }

    #[test]
    fn a_change_by_anyone_else_is_a_conflict() {
        for message in [
            "Hand-edit the pointer",
            "q: update\n\nCairn-Run: r-9\nCairn-Pipeline: q\n",
        ] {
            let (dir, repo, base) = repo();
            commit(
                &repo,
                "v1",
                "p: update\n\nCairn-Run: r-1\nCairn-Pipeline: p\n",
            );
            let tip = commit(&repo, "v1b", message);
            let git = GitRepo::discover(dir.path()).unwrap();
            match rebase(&git, &proposal(&base, "v2"), &tip, "main") {
                Err(ForgeError::Conflict { path, branch }) => {
                    assert_eq!((path.as_str(), branch.as_str()), ("data.csv.dvc", "main"));
                }
                other => panic!("{message}: {other:?}"),
            }
        }
    }

    #[test]
    fn lines_appended_to_a_list_are_appended_to_the_list_as_it_is_now() {
        let merged = |base: &str, ours: &str, now: &str| {
            appended(
                Some(base.as_bytes()),
                Some(ours.as_bytes()),
                Some(now.as_bytes()),
            )
            .map(|m| String::from_utf8(m).unwrap())
        };
        // Two pipelines in one folder: each adds its dataset's entry.
        assert_eq!(
            merged("/old.csv\n", "/old.csv\n/b.csv\n", "/old.csv\n/a.csv\n").as_deref(),
            Some("/old.csv\n/a.csv\n/b.csv\n")
        );
        assert_eq!(
            merged("", "/b.csv\n", "/a.csv").as_deref(),
            Some("/a.csv\n/b.csv\n")
        );
        // Already there: nothing new.
        assert_eq!(
            merged("", "/b.csv\n", "/b.csv\n").as_deref(),
            Some("/b.csv\n")
        );
        // A change that is not an append is not merged.
        assert_eq!(merged("/a\n/b\n", "/b\n", "/a\n/b\n/c\n"), None);
    }

    #[test]
    fn what_the_branch_holds_already_is_not_written_again() {
        let (dir, repo, base) = repo();
        let tip = commit(&repo, "v2", "Someone landed the same version");
        let git = GitRepo::discover(dir.path()).unwrap();
        assert!(rebase(&git, &proposal(&base, "v2"), &tip, "main")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_pointer_commit_is_known_by_both_trailers() {
        let ours =
            "p: update dataset\n\nbody\n\nCairn-Run: r-1\nCairn-Pipeline: p\nCairn-Source: abc\n";
        assert!(is_pointer_commit_of(ours, "p"));
        assert!(!is_pointer_commit_of(ours, "q"));
        assert!(!is_pointer_commit_of(
            "p: hand edit\n\nCairn-Pipeline: p\n",
            "p"
        ));
        assert!(!is_pointer_commit_of("p: update\n\nCairn-Run: r-1\n", "p"));
    }
}
