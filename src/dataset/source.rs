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
//! A DVC manifest records paths and md5s only, so file modes do not travel:
//! tasks run scripts through their interpreter (`python3 etl/x.py`), as the
//! pipelines in pipelines.toml do, not as `./x.py`.

use std::fs;
use std::path::Path;

use super::fetch::{fetch, FetchError, FetchReport};
use super::TransferOptions;
use crate::dvc::Output;
use crate::remote::Remote;

/// The folder, inside the workspace, that a tree is staged in before its
/// entries move into place. A dot name, so it never clashes with a
/// repository's top-level entry of the same purpose.
const STAGE: &str = ".cairn-source";

/// Restores the tree `tree` (a `.dir` output) into `workspace`: every
/// top-level entry of the tree replaces the workspace's entry of that name;
/// other entries (a dataset fetched earlier, outputs of an earlier attempt)
/// are left alone. Every file is verified before anything moves.
pub async fn restore_tree(
    tree: &Output,
    workspace: &Path,
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
        let report = restore_tree(&published.output, &ws, &remote, &opts)
            .await
            .unwrap();
        assert_eq!(report.files, 4);
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
    }
}
