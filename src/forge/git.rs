//! The git operations cairn needs, on a repository opened with git2: read what
//! a commit holds, lay a commit's files out in a workspace, build a commit that
//! changes a few files on top of another, and move refs with compare-and-swap.
//!
//! None of this touches the user's index or working tree except
//! [`GitRepo::checkout_clean`], which only runs on a checkout found clean.

use std::path::{Path, PathBuf};

use git2::{build::TreeUpdateBuilder, FileMode, ObjectType, Oid, Repository, StatusOptions};

use super::ForgeError;

/// One file to write (`Some`) or delete (`None`) in a commit, by repo path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    pub content: Option<Vec<u8>>,
}

/// The trailer that marks a commit as cairn's own.
pub const RUN_TRAILER: &str = "Cairn-Run:";

pub struct GitRepo {
    repo: Repository,
    workdir: PathBuf,
}

/// Where HEAD is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub commit: String,
    /// `None` when HEAD is detached.
    pub branch: Option<String>,
}

/// A commit that changed one path ([`GitRepo::file_history`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathCommit {
    pub id: String,
    pub message: String,
    /// Commit time, Unix seconds.
    pub time: i64,
    /// The commit deleted the path.
    pub removed: bool,
}

impl GitRepo {
    /// Open the repository that holds `dir` (or a parent of it).
    pub fn discover(dir: &Path) -> Result<GitRepo, ForgeError> {
        let repo = Repository::discover(dir).map_err(|e| ForgeError::NotARepo {
            path: dir.display().to_string(),
            reason: e.message().to_string(),
        })?;
        let workdir = repo
            .workdir()
            .ok_or_else(|| ForgeError::NotARepo {
                path: dir.display().to_string(),
                reason: "it is a bare repository; cairn needs a working tree".into(),
            })?
            .to_path_buf();
        Ok(GitRepo { repo, workdir })
    }

    /// Open a bare repository (the service's mirror of a hosted repository).
    /// [`GitRepo::workdir`] is then the git directory; the checkout methods
    /// ([`GitRepo::dirty_paths`], [`GitRepo::checkout_clean`]) must not be used.
    pub fn open_bare(git_dir: &Path) -> Result<GitRepo, ForgeError> {
        let repo = Repository::open_bare(git_dir).map_err(|e| ForgeError::NotARepo {
            path: git_dir.display().to_string(),
            reason: e.message().to_string(),
        })?;
        Ok(GitRepo {
            repo,
            workdir: git_dir.to_path_buf(),
        })
    }

    /// The checkout's root, or the git directory of a bare repository.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    pub fn is_bare(&self) -> bool {
        self.repo.is_bare()
    }

    /// The commits reachable from `to` but not from `from`, oldest first, as
    /// (id, message). `from = None` lists only `to` itself: a first sighting
    /// has no range to replay.
    pub fn commits_between(
        &self,
        from: Option<&str>,
        to: &str,
    ) -> Result<Vec<(String, String)>, ForgeError> {
        let to = Oid::from_str(to)?;
        let Some(from) = from else {
            let commit = self.repo.find_commit(to)?;
            return Ok(vec![(
                to.to_string(),
                commit.message().unwrap_or("").to_string(),
            )]);
        };
        let mut walk = self.repo.revwalk()?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
        walk.push(to)?;
        walk.hide(Oid::from_str(from)?)?;
        let mut out = Vec::new();
        for oid in walk {
            let commit = self.repo.find_commit(oid?)?;
            out.push((
                commit.id().to_string(),
                commit.message().unwrap_or("").to_string(),
            ));
        }
        Ok(out)
    }

    /// Paths a commit changed against its first parent (every path of its
    /// tree for a root commit), sorted.
    pub fn changed_paths(&self, commit: &str) -> Result<Vec<String>, ForgeError> {
        let commit = self.commit(commit)?;
        let new_tree = commit.tree()?;
        let old_tree = match commit.parents().next() {
            Some(parent) => Some(parent.tree()?),
            None => None,
        };
        let diff = self
            .repo
            .diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), None)?;
        let mut paths = Vec::new();
        for delta in diff.deltas() {
            for file in [delta.old_file(), delta.new_file()] {
                if let Some(path) = file.path().and_then(Path::to_str) {
                    paths.push(path.to_string());
                }
            }
        }
        paths.sort();
        paths.dedup();
        Ok(paths)
    }

    /// `ancestor` is `descendant` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, ForgeError> {
        let (a, d) = (Oid::from_str(ancestor)?, Oid::from_str(descendant)?);
        Ok(a == d || self.repo.graph_descendant_of(d, a)?)
    }

    /// The underlying git2 repository, for the network operations of
    /// [`super::mirror`].
    pub(crate) fn raw(&self) -> &Repository {
        &self.repo
    }

    pub fn head(&self) -> Result<Head, ForgeError> {
        let head = self.repo.head().map_err(|e| {
            if e.code() == git2::ErrorCode::UnbornBranch {
                ForgeError::NoCommits
            } else {
                ForgeError::Git(e)
            }
        })?;
        let commit = head.peel_to_commit()?.id().to_string();
        let branch = if head.is_branch() {
            head.shorthand().map(str::to_string)
        } else {
            None
        };
        Ok(Head { commit, branch })
    }

    /// The bytes of `path` in `commit`, or `None` when it has no such file.
    pub fn read_file(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>, ForgeError> {
        let tree = self.commit(commit)?.tree()?;
        let entry = match tree.get_path(Path::new(path)) {
            Ok(entry) => entry,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if entry.kind() != Some(ObjectType::Blob) {
            return Ok(None);
        }
        let blob = self.repo.find_blob(entry.id())?;
        Ok(Some(blob.content().to_vec()))
    }

    /// Write every file of `commit` under `dest` (which must exist), with
    /// executable bits and symlinks as recorded. Submodules are left out.
    pub fn materialize(&self, commit: &str, dest: &Path) -> Result<(), ForgeError> {
        let tree = self.commit(commit)?.tree()?;
        let mut failure: Option<ForgeError> = None;
        tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
            let Some(name) = entry.name() else {
                return git2::TreeWalkResult::Skip;
            };
            let path = dest.join(root).join(name);
            let result = self.write_entry(entry, &path);
            match result {
                Ok(()) => git2::TreeWalkResult::Ok,
                Err(e) => {
                    failure = Some(e);
                    git2::TreeWalkResult::Abort
                }
            }
        })
        .or_else(|e| if failure.is_some() { Ok(()) } else { Err(e) })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn write_entry(&self, entry: &git2::TreeEntry<'_>, path: &Path) -> Result<(), ForgeError> {
        let io = |source| ForgeError::Io {
            path: path.display().to_string(),
            source,
        };
        match entry.filemode() {
            m if m == i32::from(FileMode::Tree) => std::fs::create_dir_all(path).map_err(io)?,
            m if m == i32::from(FileMode::Link) => {
                let blob = self.repo.find_blob(entry.id())?;
                let target = String::from_utf8_lossy(blob.content()).into_owned();
                std::os::unix::fs::symlink(target, path).map_err(io)?;
            }
            m if m == i32::from(FileMode::Blob) || m == i32::from(FileMode::BlobExecutable) => {
                let blob = self.repo.find_blob(entry.id())?;
                std::fs::write(path, blob.content()).map_err(io)?;
                if m == i32::from(FileMode::BlobExecutable) {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                        .map_err(io)?;
                }
            }
            _ => {} // submodule commits: nothing to lay out
        }
        Ok(())
    }

    /// Tracked files with uncommitted changes (index or working tree); the
    /// first few paths, empty when the checkout is clean. Untracked and
    /// ignored files do not count: cairn never touches them.
    pub fn dirty_paths(&self) -> Result<Vec<String>, ForgeError> {
        let mut options = StatusOptions::new();
        options
            .include_untracked(false)
            .include_ignored(false)
            .exclude_submodules(true);
        let statuses = self.repo.statuses(Some(&mut options))?;
        Ok(statuses
            .iter()
            .filter(|s| s.status() != git2::Status::CURRENT)
            .filter_map(|s| s.path().map(str::to_string))
            .take(10)
            .collect())
    }

    /// A new commit whose tree is `base`'s with `changes` applied. No ref moves.
    pub fn commit_changes(
        &self,
        base: &str,
        changes: &[FileChange],
        message: &str,
    ) -> Result<String, ForgeError> {
        let base = self.commit(base)?;
        let base_tree = base.tree()?;
        let mut update = TreeUpdateBuilder::new();
        for change in changes {
            match &change.content {
                Some(bytes) => {
                    let oid = self.repo.blob(bytes)?;
                    update.upsert(&change.path, oid, FileMode::Blob);
                }
                None => {
                    update.remove(&change.path);
                }
            }
        }
        let tree_id = update.create_updated(&self.repo, &base_tree)?;
        let tree = self.repo.find_tree(tree_id)?;
        let signature = git2::Signature::now("cairn", "cairn@localhost")?;
        let oid = self
            .repo
            .commit(None, &signature, &signature, message, &tree, &[&base])?;
        Ok(oid.to_string())
    }

    /// The commit a branch points at, if the branch exists.
    pub fn branch_tip(&self, branch: &str) -> Result<Option<String>, ForgeError> {
        match self.repo.find_reference(&format!("refs/heads/{branch}")) {
            Ok(r) => Ok(Some(r.peel_to_commit()?.id().to_string())),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Commits on `branch` that are not on `base` and were not made by cairn
    /// (no `Cairn-Run:` trailer): work a person added, which cairn must keep.
    pub fn foreign_commits(&self, branch_tip: &str, base: &str) -> Result<Vec<String>, ForgeError> {
        let mut walk = self.repo.revwalk()?;
        walk.push(Oid::from_str(branch_tip)?)?;
        walk.hide(Oid::from_str(base)?)?;
        let mut foreign = Vec::new();
        for oid in walk {
            let commit = self.repo.find_commit(oid?)?;
            let message = commit.message().unwrap_or("");
            if !message.lines().any(|l| l.starts_with(RUN_TRAILER)) {
                foreign.push(commit.id().to_string());
            }
        }
        Ok(foreign)
    }

    /// Point `branch` at `new` if it is still at `expected` (`None`: it must
    /// not exist yet). Losing that race is [`ForgeError::RefMoved`].
    pub fn move_branch(
        &self,
        branch: &str,
        expected: Option<&str>,
        new: &str,
        log: &str,
    ) -> Result<(), ForgeError> {
        let name = format!("refs/heads/{branch}");
        let new = Oid::from_str(new)?;
        let result = match expected {
            Some(old) => self
                .repo
                .reference_matching(&name, new, true, Oid::from_str(old)?, log)
                .map(|_| ()),
            None => self.repo.reference(&name, new, false, log).map(|_| ()),
        };
        result.map_err(|e| match e.code() {
            git2::ErrorCode::Modified | git2::ErrorCode::Exists | git2::ErrorCode::Locked => {
                ForgeError::RefMoved {
                    branch: branch.to_string(),
                }
            }
            _ => ForgeError::Git(e),
        })
    }

    /// Bring the index and working tree from HEAD's tree to `commit`'s, only
    /// touching files that differ, and refusing to overwrite local changes.
    pub fn checkout_clean(&self, commit: &str) -> Result<(), ForgeError> {
        self.checkout(commit, false)
    }

    /// Put the index and working tree back to `commit`, overwriting what a
    /// failed [`GitRepo::checkout_clean`] wrote (only cairn's own files).
    pub fn checkout_back(&self, commit: &str) -> Result<(), ForgeError> {
        self.checkout(commit, true)
    }

    fn checkout(&self, commit: &str, force: bool) -> Result<(), ForgeError> {
        let target = self.commit(commit)?;
        let mut options = git2::build::CheckoutBuilder::new();
        if force {
            options.force();
        } else {
            options.safe();
        }
        self.repo
            .checkout_tree(target.as_object(), Some(&mut options))?;
        Ok(())
    }

    /// The commits reachable from `tip` along first parents that changed
    /// `path` (added, modified or removed it), newest first: at most `limit`
    /// of them, looking at no more than `scan` commits so a long history
    /// costs a bounded walk. First parents only, because that is the history
    /// of the branch itself (a merged pull request counts once, as its merge).
    pub fn file_history(
        &self,
        tip: &str,
        path: &str,
        limit: usize,
        scan: usize,
    ) -> Result<Vec<PathCommit>, ForgeError> {
        let path = Path::new(path);
        let blob_at = |commit: &git2::Commit<'_>| -> Result<Option<Oid>, ForgeError> {
            match commit.tree()?.get_path(path) {
                Ok(entry) => Ok(Some(entry.id())),
                Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        };
        let mut walk = self.repo.revwalk()?;
        walk.push(Oid::from_str(tip)?)?;
        walk.simplify_first_parent()?;
        let mut out = Vec::new();
        for oid in walk.take(scan) {
            let commit = self.repo.find_commit(oid?)?;
            let now = blob_at(&commit)?;
            let before = match commit.parents().next() {
                Some(parent) => blob_at(&parent)?,
                None => None,
            };
            if now != before {
                out.push(PathCommit {
                    id: commit.id().to_string(),
                    message: commit.message().unwrap_or("").to_string(),
                    time: commit.time().seconds(),
                    removed: now.is_none(),
                });
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    pub fn commit_message(&self, commit: &str) -> Result<String, ForgeError> {
        Ok(self.commit(commit)?.message().unwrap_or("").to_string())
    }

    pub fn parent(&self, commit: &str) -> Result<Option<String>, ForgeError> {
        let commit = self.commit(commit)?;
        Ok(commit.parent_ids().next().map(|id| id.to_string()))
    }

    fn commit(&self, sha: &str) -> Result<git2::Commit<'_>, ForgeError> {
        let oid = Oid::from_str(sha)?;
        Ok(self.repo.find_commit(oid)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits the given files (`None` deletes) on HEAD; returns its id.
    fn commit(repo: &Repository, files: &[(&str, Option<&str>)], message: &str) -> String {
        let workdir = repo.workdir().unwrap().to_path_buf();
        let mut index = repo.index().unwrap();
        for (path, content) in files {
            match content {
                Some(text) => {
                    std::fs::write(workdir.join(path), text).unwrap();
                    index.add_path(Path::new(path)).unwrap();
                }
                None => {
                    std::fs::remove_file(workdir.join(path)).unwrap();
                    index.remove_path(Path::new(path)).unwrap();
                }
            }
        }
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.invalid").unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
            .to_string()
    }

    #[test]
    fn file_history_lists_the_commits_that_changed_a_path_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let c1 = commit(&repo, &[("a.dvc", Some("v1"))], "Add a");
        commit(&repo, &[("b.txt", Some("x"))], "Touch b");
        let c3 = commit(
            &repo,
            &[("a.dvc", Some("v2"))],
            "Update a\n\nCairn-Run: r-3",
        );
        let c4 = commit(&repo, &[("a.dvc", None)], "Remove a");
        let git = GitRepo::discover(dir.path()).unwrap();
        let history = git.file_history(&c4, "a.dvc", 10, 100).unwrap();
        let ids: Vec<&str> = history.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, [c4.as_str(), c3.as_str(), c1.as_str()]);
        assert!(history[0].removed);
        assert!(!history[1].removed);
        assert!(history[1].message.contains("Cairn-Run: r-3"));
        // The limits bound both the answer and the walk.
        assert_eq!(git.file_history(&c4, "a.dvc", 2, 100).unwrap().len(), 2);
        let scanned = git.file_history(&c3, "a.dvc", 10, 2).unwrap();
        assert_eq!(
            scanned.len(),
            1,
            "only c3 and the commit before it were looked at"
        );
        assert!(git
            .file_history(&c4, "nothing.dvc", 10, 100)
            .unwrap()
            .is_empty());
    }
}
