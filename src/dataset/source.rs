//! A run's source tree through the remote: how the repository at a commit
//! reaches a workspace that has no git and no git credentials (a Kubernetes
//! pod).
//!
//! The side that has git writes the tree at the commit into a folder and
//! publishes it like any directory dataset ([`super::publish`]): one object
//! per file, content-addressed, the `.dir` manifest last. A new commit that
//! changed one file uploads that file and a manifest; the rest is found on
//! the remote. The workspace side restores it with [`restore_tree`], which
//! verifies every file's md5 as [`super::fetch`] always does.
//!
//! A DVC manifest records paths and md5s only, so the files git marks
//! executable travel as a list beside the tree ([`executables`], carried in
//! the PipelineRun), and [`restore_tree`] sets their mode: a task may run
//! `./etl/build.sh` as it would in a checkout.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};

use super::fetch::{fetch, FetchError, FetchReport};
use super::TransferOptions;
use crate::dvc::Output;
use crate::remote::Remote;

/// The folder, inside the workspace, that a tree is staged in before its
/// entries move into place. A dot name, so it never clashes with a
/// repository's top-level entry of the same purpose.
const STAGE: &str = ".cairn-source";

/// The regular files under `tree` with an execute bit (as a checkout lays
/// out git's executable mode), as sorted `/`-separated relative paths.
pub fn executables(tree: &Path) -> std::io::Result<Vec<String>> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{prefix}{name}");
            let meta = entry.path().symlink_metadata()?;
            if meta.is_dir() {
                walk(&entry.path(), &format!("{rel}/"), out)?;
            } else if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                out.push(rel);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(tree, "", &mut out)?;
    out.sort();
    Ok(out)
}

/// Restores the tree `tree` (a `.dir` output) into `workspace`: every
/// top-level entry of the tree replaces the workspace's entry of that name;
/// other entries (a dataset fetched earlier, outputs of an earlier attempt)
/// are left alone. Every file is verified before anything moves, and the
/// files named in `executables` (relative paths of files of the tree) are
/// made executable.
pub async fn restore_tree(
    tree: &Output,
    workspace: &Path,
    executables: &[String],
    remote: &dyn Remote,
    opts: &TransferOptions,
) -> Result<FetchReport, FetchError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { path, source }
    };
    fs::create_dir_all(workspace).map_err(io(workspace))?;
    let stage = workspace.join(STAGE);
    if stage.symlink_metadata().is_ok() {
        // Left by an attempt that died between fetching and moving.
        fs::remove_dir_all(&stage).map_err(io(&stage))?;
    }
    let report = fetch(tree, &stage, remote, opts).await?;
    for path in executables {
        make_executable(&stage, tree, path)?;
    }
    let entries = fs::read_dir(&stage).map_err(io(&stage))?;
    for entry in entries {
        let entry = entry.map_err(io(&stage))?;
        let dest = workspace.join(entry.file_name());
        match dest.symlink_metadata() {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&dest).map_err(io(&dest))?,
            Ok(_) => fs::remove_file(&dest).map_err(io(&dest))?,
            Err(_) => {}
        }
        fs::rename(entry.path(), &dest).map_err(io(&dest))?;
    }
    fs::remove_dir(&stage).map_err(io(&stage))?;
    Ok(report)
}

/// Sets `path` (a file of the tree staged in `stage`) executable. The list
/// comes from a PipelineRun, so it is checked: a path that leaves the tree
/// or is not one of its files is refused.
fn make_executable(stage: &Path, tree: &Output, path: &str) -> Result<(), FetchError> {
    let refuse = |reason| FetchError::NotExecutable {
        tree: tree.id,
        path: path.to_string(),
        reason,
    };
    let rel = Path::new(path);
    if path.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(refuse("not a plain relative path inside the tree"));
    }
    let file = stage.join(rel);
    match file.symlink_metadata() {
        Ok(meta) if meta.is_file() => {
            let mode = meta.permissions().mode() | 0o111;
            fs::set_permissions(&file, fs::Permissions::from_mode(mode)).map_err(|source| {
                FetchError::Io {
                    path: file.clone(),
                    source,
                }
            })
        }
        Ok(_) => Err(refuse("not a regular file of the tree")),
        Err(_) => Err(refuse("not a file of the tree")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::local::LocalRemote;

    #[tokio::test]
    async fn a_published_tree_is_restored_over_an_earlier_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("stage/tree");
        fs::create_dir_all(tree.join(".dvc")).unwrap();
        fs::create_dir_all(tree.join("etl")).unwrap();
        fs::write(tree.join(".dvc/config"), "[core]\n    remote = s\n").unwrap();
        fs::write(tree.join("etl/a.py"), "print(1)\n").unwrap();
        fs::write(tree.join("pipelines.toml"), "# p\n").unwrap();
        fs::write(tree.join(".dvcignore"), "# none\n").unwrap();
        fs::write(tree.join("etl/run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(tree.join("etl/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        let remote = LocalRemote::new(dir.path().join("remote"));
        let opts = TransferOptions::default();
        let published =
            super::super::publish_tree(&dir.path().join("stage"), "tree", &remote, &opts)
                .await
                .unwrap();
        assert!(published.output.id.dir);

        let ws = dir.path().join("ws");
        fs::create_dir_all(ws.join("etl")).unwrap();
        fs::write(ws.join("etl/a.py"), "stale\n").unwrap();
        fs::write(ws.join("etl/stale.py"), "gone\n").unwrap();
        fs::write(ws.join("data.csv"), "kept\n").unwrap();
        let executables = executables(&tree).unwrap();
        assert_eq!(executables, ["etl/run.sh"]);
        let report = restore_tree(&published.output, &ws, &executables, &remote, &opts)
            .await
            .unwrap();
        assert_eq!(report.files, 5);
        let mode = |p: &str| fs::metadata(ws.join(p)).unwrap().permissions().mode();
        assert_ne!(mode("etl/run.sh") & 0o111, 0, "executable again");
        assert_eq!(mode("etl/a.py") & 0o111, 0);
        assert_eq!(
            fs::read_to_string(ws.join("etl/a.py")).unwrap(),
            "print(1)\n"
        );
        assert!(
            !ws.join("etl/stale.py").exists(),
            "a tree entry replaces a folder whole"
        );
        assert_eq!(fs::read_to_string(ws.join("data.csv")).unwrap(), "kept\n");
        assert!(ws.join(".dvc/config").is_file());
        assert!(!ws.join(STAGE).exists());

        // The list comes from a PipelineRun: nothing outside the tree.
        for (bad, why) in [
            ("../escape", "plain relative path"),
            ("/etc/passwd", "plain relative path"),
            ("etl", "not a regular file"),
            ("etl/none.sh", "not a file of the tree"),
            ("", "plain relative path"),
        ] {
            let err = restore_tree(&published.output, &ws, &[bad.to_string()], &remote, &opts)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, FetchError::NotExecutable { path, .. } if path == bad),
                "{err}"
            );
            assert!(err.to_string().contains(why), "{err}");
        }
    }
}
