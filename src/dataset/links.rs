//! The one rule about links: cairn never reads or writes a dataset through a
//! symbolic link it did not make.
//!
//! A task, or a commit, can put a link where a dataset or the folder above
//! it goes (`data -> /etc`). Following it, the fetch step would write the
//! current version wherever it points and the publish step would upload
//! whatever it names. So the path of a dataset inside its workspace must not
//! be, or pass through, a link; links inside a directory dataset are checked
//! where it is hashed ([`crate::dvc`]): one that resolves outside the
//! dataset is refused, as is a link on the way to it here.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(
        "{dataset}: {} is a symbolic link (to {}); cairn does not read or write a dataset through a link",
        link.display(),
        target.display()
    )]
    Through {
        dataset: String,
        link: PathBuf,
        target: PathBuf,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where `dataset` (a relative path) is inside `workspace`, once it is
/// known that neither it nor a folder on the way to it is a link. What does
/// not exist yet is not a link.
pub fn dataset_path(workspace: &Path, dataset: &str) -> Result<PathBuf, LinkError> {
    let mut path = workspace.to_path_buf();
    for part in Path::new(dataset.trim_end_matches('/')).components() {
        let Component::Normal(name) = part else {
            continue;
        };
        path.push(name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(LinkError::Through {
                    dataset: dataset.to_string(),
                    target: std::fs::read_link(&path).unwrap_or_default(),
                    link: path,
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(source) => return Err(LinkError::Io { path, source }),
        }
    }
    Ok(workspace.join(dataset.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_on_the_way_to_a_dataset_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::create_dir_all(ws.join("real")).unwrap();
        std::os::unix::fs::symlink("/tmp", ws.join("data")).unwrap();
        std::os::unix::fs::symlink("../real", ws.join("real-link")).unwrap();
        assert_eq!(dataset_path(ws, "out.csv").unwrap(), ws.join("out.csv"));
        assert_eq!(
            dataset_path(ws, "real/new/out.csv").unwrap(),
            ws.join("real/new/out.csv")
        );
        for dataset in ["data/out.csv", "data", "real-link/x", "real-link/"] {
            match dataset_path(ws, dataset) {
                Err(LinkError::Through { link, .. }) => {
                    assert!(link.starts_with(ws), "{dataset}: {}", link.display())
                }
                other => panic!("{dataset}: {other:?}"),
            }
        }
    }
}
