//! The service's copy of a hosted repository: a bare mirror in the data
//! directory, fetched before every reconcile and pushed to with the forge's
//! token. Everything cairn reads (pipelines.toml, pointers, the files a task
//! sees) comes from this mirror at an exact commit, never from a checkout.
//!
//! The token travels only through libgit2's credential callback, never in a
//! URL, so it cannot end up in `.git/config`, an error message or a log.
//! All functions block (libgit2 does network IO on the calling thread): call
//! them from `spawn_blocking`.

use std::path::Path;

use git2::{FetchOptions, PushOptions, RemoteCallbacks, Repository};

use super::{ForgeError, GitRepo};

/// Every branch of the hosted repository, mirrored to the same name; branches
/// deleted upstream are pruned.
const FETCH_REFSPEC: &str = "+refs/heads/*:refs/heads/*";
const REMOTE: &str = "origin";
/// Local refs cairn pushes from, so a push never moves a mirrored branch
/// before the server accepted it.
const OUTGOING: &str = "refs/cairn-outgoing/";

/// Open the mirror at `dir`, creating it (and fetching) on first use. The
/// remote URL follows `url` when the hosted repository moved.
pub fn open_or_clone(dir: &Path, url: &str, token: Option<&str>) -> Result<GitRepo, ForgeError> {
    if dir.join("HEAD").exists() {
        let repo = GitRepo::open_bare(dir)?;
        if repo.raw().find_remote(REMOTE)?.url() != Some(url) {
            repo.raw().remote_set_url(REMOTE, url)?;
        }
        return Ok(repo);
    }
    std::fs::create_dir_all(dir).map_err(|source| ForgeError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let raw = Repository::init_bare(dir)?;
    raw.remote_with_fetch(REMOTE, url, FETCH_REFSPEC)?;
    drop(raw);
    let repo = GitRepo::open_bare(dir)?;
    fetch(&repo, token)?;
    Ok(repo)
}

/// Removes the lock files a killed process left in the mirror at `dir`.
/// libgit2 writes a ref through `<ref>.lock` and fails at once while that
/// file exists, so one process killed mid-fetch would make every later
/// fetch fail for ever. Call it only before this process has written the
/// mirror: the data directory is one process's, so any lock found then is
/// stale. Returns how many were removed.
pub fn remove_stale_locks(dir: &Path) -> std::io::Result<usize> {
    fn walk(dir: &Path, removed: &mut usize) -> std::io::Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(&path, removed)?;
            } else if path.extension().is_some_and(|e| e == "lock") {
                std::fs::remove_file(&path)?;
                *removed += 1;
            }
        }
        Ok(())
    }
    let mut removed = 0;
    for top in [
        "packed-refs.lock",
        "config.lock",
        "shallow.lock",
        "HEAD.lock",
    ] {
        match std::fs::remove_file(dir.join(top)) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    walk(&dir.join("refs"), &mut removed)?;
    Ok(removed)
}

/// Bring every branch up to date with the hosted repository.
pub fn fetch(repo: &GitRepo, token: Option<&str>) -> Result<(), ForgeError> {
    let mut remote = repo.raw().find_remote(REMOTE)?;
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(callbacks(token))
        .prune(git2::FetchPrune::On)
        .download_tags(git2::AutotagOption::None);
    remote
        .fetch(&[FETCH_REFSPEC], Some(&mut options), Some("cairn: fetch"))
        .map_err(|e| network_error("fetch", e))?;
    Ok(())
}

/// The tip of a mirrored branch (as of the last fetch).
pub fn branch_tip(repo: &GitRepo, branch: &str) -> Result<Option<String>, ForgeError> {
    repo.branch_tip(branch)
}

/// How a push of one branch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed,
    /// The server refused the update: not a fast-forward, or a protected
    /// branch. The text is the server's.
    Rejected(String),
}

/// Push `commit` to `branch` on the hosted repository; `force` replaces
/// whatever the branch held. On success the mirror's branch moves too.
pub fn push(
    repo: &GitRepo,
    token: Option<&str>,
    branch: &str,
    commit: &str,
    force: bool,
) -> Result<PushOutcome, ForgeError> {
    let raw = repo.raw();
    let outgoing = format!("{OUTGOING}{branch}");
    let oid = git2::Oid::from_str(commit)?;
    raw.reference(&outgoing, oid, true, "cairn: outgoing")?;
    let refspec = format!(
        "{}{outgoing}:refs/heads/{branch}",
        if force { "+" } else { "" }
    );
    let mut rejection: Option<String> = None;
    let result = {
        let mut callbacks = callbacks(token);
        callbacks.push_update_reference(|_name, status| {
            if let Some(status) = status {
                rejection = Some(status.to_string());
            }
            Ok(())
        });
        let mut options = PushOptions::new();
        options.remote_callbacks(callbacks);
        let mut remote = raw.find_remote(REMOTE)?;
        remote.push(&[refspec.as_str()], Some(&mut options))
    };
    let _ = raw.find_reference(&outgoing).and_then(|mut r| r.delete());
    match result {
        Ok(()) => {}
        // libgit2 reports a non-fast-forward found before sending as an error.
        Err(e) if e.code() == git2::ErrorCode::NotFastForward => {
            return Ok(PushOutcome::Rejected(e.message().to_string()))
        }
        Err(e) => return Err(network_error("push", e)),
    }
    if let Some(reason) = rejection {
        return Ok(PushOutcome::Rejected(reason));
    }
    raw.reference(&format!("refs/heads/{branch}"), oid, true, "cairn: pushed")?;
    Ok(PushOutcome::Pushed)
}

fn callbacks(token: Option<&str>) -> RemoteCallbacks<'_> {
    let mut callbacks = RemoteCallbacks::new();
    let mut asked = false;
    callbacks.credentials(move |_url, _user, _allowed| {
        // libgit2 asks again after a refusal; a second ask means the token
        // was refused, and asking forever would hang the fetch.
        match token {
            Some(token) if !asked => {
                asked = true;
                git2::Cred::userpass_plaintext("x-access-token", token)
            }
            Some(_) => Err(git2::Error::from_str(
                "the server refused cairn's token (is the GitHub App installed on this repository, with contents: write?)",
            )),
            None => Err(git2::Error::from_str(
                "the server asked for credentials and cairn has no token",
            )),
        }
    });
    callbacks
}

fn network_error(op: &str, e: git2::Error) -> ForgeError {
    ForgeError::Network {
        op: op.to_string(),
        reason: e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A bare "hosted" repository with one commit on main, and a mirror of it.
    fn hosted() -> (tempfile::TempDir, String, GitRepo) {
        let tmp = tempfile::tempdir().unwrap();
        let origin = tmp.path().join("origin.git");
        let work = tmp.path().join("work");
        git(
            tmp.path(),
            &["init", "-q", "--bare", "-b", "main", "origin.git"],
        );
        git(
            tmp.path(),
            &["clone", "-q", origin.to_str().unwrap(), "work"],
        );
        std::fs::write(work.join("a.txt"), "a\n").unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "-qm", "first"]);
        git(&work, &["push", "-q", "origin", "HEAD:main"]);
        let url = format!("file://{}", origin.display());
        let mirror = open_or_clone(&tmp.path().join("mirror.git"), &url, None).unwrap();
        (tmp, url, mirror)
    }

    #[test]
    fn clones_then_follows_new_commits_and_deleted_branches() {
        let (tmp, url, mirror) = hosted();
        let work = tmp.path().join("work");
        let first = git(&work, &["rev-parse", "HEAD"]);
        assert_eq!(branch_tip(&mirror, "main").unwrap(), Some(first.clone()));

        std::fs::write(work.join("b.txt"), "b\n").unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "-qm", "second"]);
        git(
            &work,
            &["push", "-q", "origin", "HEAD:main", "HEAD:feature"],
        );
        // Reopening finds the existing mirror; fetch brings both branches.
        let mirror = open_or_clone(&tmp.path().join("mirror.git"), &url, None).unwrap();
        fetch(&mirror, None).unwrap();
        let second = git(&work, &["rev-parse", "HEAD"]);
        assert_eq!(branch_tip(&mirror, "main").unwrap(), Some(second.clone()));
        assert_eq!(
            branch_tip(&mirror, "feature").unwrap(),
            Some(second.clone())
        );
        assert_eq!(
            mirror.changed_paths(&second).unwrap(),
            vec!["b.txt".to_string()]
        );
        let range = mirror.commits_between(Some(&first), &second).unwrap();
        assert_eq!(range.len(), 1);
        assert_eq!(range[0].0, second);

        git(&work, &["push", "-q", "origin", ":feature"]);
        fetch(&mirror, None).unwrap();
        assert_eq!(branch_tip(&mirror, "feature").unwrap(), None);
    }

    #[test]
    fn push_creates_forces_and_reports_a_rejected_fast_forward() {
        let (tmp, _url, mirror) = hosted();
        let origin = tmp.path().join("origin.git");
        let base = branch_tip(&mirror, "main").unwrap().unwrap();
        let change = |text: &str| crate::forge::FileChange {
            path: "data.dvc".into(),
            content: Some(text.as_bytes().to_vec()),
        };
        let one = mirror
            .commit_changes(&base, &[change("one")], "one\n\nCairn-Run: r1\n")
            .unwrap();
        assert_eq!(
            push(&mirror, None, "cairn/p", &one, true).unwrap(),
            PushOutcome::Pushed
        );
        assert_eq!(git(&origin, &["rev-parse", "refs/heads/cairn/p"]), one);

        // A sibling replaces it only with force.
        let two = mirror
            .commit_changes(&base, &[change("two")], "two\n\nCairn-Run: r2\n")
            .unwrap();
        assert!(matches!(
            push(&mirror, None, "cairn/p", &two, false).unwrap(),
            PushOutcome::Rejected(_)
        ));
        assert_eq!(git(&origin, &["rev-parse", "refs/heads/cairn/p"]), one);
        assert_eq!(
            push(&mirror, None, "cairn/p", &two, true).unwrap(),
            PushOutcome::Pushed
        );
        assert_eq!(git(&origin, &["rev-parse", "refs/heads/cairn/p"]), two);
        assert_eq!(branch_tip(&mirror, "cairn/p").unwrap(), Some(two));
        // No outgoing ref is left behind.
        assert!(mirror
            .raw()
            .find_reference("refs/cairn-outgoing/cairn/p")
            .is_err());
    }

    #[test]
    fn an_unreachable_host_is_a_network_error_that_names_the_operation() {
        let tmp = tempfile::tempdir().unwrap();
        let err = open_or_clone(
            &tmp.path().join("m.git"),
            &format!("file://{}/missing.git", tmp.path().display()),
            None,
        )
        .err()
        .expect("no such repository");
        assert!(err.to_string().starts_with("git fetch: "), "{err}");
    }

    #[test]
    fn a_lock_left_by_a_killed_fetch_does_not_block_the_next_one() {
        let (tmp, _url, mirror) = hosted();
        let dir = tmp.path().join("mirror.git");
        // What a fetch killed half-way through a ref update leaves behind.
        std::fs::create_dir_all(dir.join("refs/heads/cairn")).unwrap();
        std::fs::write(dir.join("refs/heads/cairn/p.lock"), "").unwrap();
        std::fs::write(dir.join("packed-refs.lock"), "").unwrap();
        assert_eq!(remove_stale_locks(&dir).unwrap(), 2);
        fetch(&mirror, None).unwrap();
        assert_eq!(remove_stale_locks(&dir).unwrap(), 0);
    }
}
