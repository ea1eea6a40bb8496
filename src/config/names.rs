//! Validated names and paths.
//!
//! Pipeline names end up in git branch names (`cairn/<name>`) and in Kubernetes
//! label values; task names end up in log file names and pod names. Checking
//! them once, here, lets every other module treat them as safe strings.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Kubernetes label values are at most 63 characters; names must fit in one.
const MAX_NAME_LEN: usize = 63;

/// Why a pipeline or task name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a name cannot be empty")]
    Empty,
    #[error("{0} characters is too long (at most 63)")]
    TooLong(usize),
    #[error("character {0:?} is not allowed (use letters, digits, '_' and '-')")]
    BadChar(char),
    #[error("a name must start and end with a letter or digit")]
    BadEdge,
}

fn check_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(NameError::BadChar(c));
    }
    // Only ASCII is left, so bytes are characters.
    if s.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(s.len()));
    }
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    // Kubernetes label values must also end with an alphanumeric character.
    if !edge_ok(s.as_bytes().first()) || !edge_ok(s.as_bytes().last()) {
        return Err(NameError::BadEdge);
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        ///
        /// Deserializing goes through the same validation as [`Self::new`].
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl TryFrom<String> for $ty {
            type Error = NameError;
            fn try_from(name: String) -> Result<Self, NameError> {
                Self::new(name)
            }
        }

        impl From<$ty> for String {
            fn from(name: $ty) -> String {
                name.0
            }
        }

        impl $ty {
            /// Validates `name`: 1..=63 characters of `[A-Za-z0-9_-]`, starting and
            /// ending with a letter or digit.
            pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
                let name = name.into();
                check_name(&name)?;
                Ok(Self(name))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Lets maps keyed by name be queried with a plain `&str`.
        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// The name of a pipeline: the key in `[pipelines.<name>]`.
    PipelineName
);
name_type!(
    /// The name of a task within a pipeline: the key in `[pipelines.<p>.tasks.<name>]`.
    TaskName
);

/// Why a dataset path (or a task `workdir`) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("the path must be relative to the repository root, not absolute")]
    Absolute,
    #[error("the path may not contain \"..\"")]
    ParentDir,
    #[error("use '/' as the separator, not '\\'")]
    Backslash,
    #[error("the path may not contain control characters")]
    Control,
    #[error("the path may not be inside {0}/ (it belongs to git, DVC or cairn)")]
    Reserved(&'static str),
}

/// Top-level directories owned by tools, never by a dataset.
const RESERVED_TOP: [&str; 3] = [".git", ".dvc", ".cairn"];

/// Normalises a repository-relative path: drops `.` and empty parts, refuses
/// anything that could escape the repository. Returns "" for the root itself.
pub(crate) fn normalise_relative(path: &str) -> Result<String, PathError> {
    if path.starts_with('/') || has_drive_prefix(path) {
        return Err(PathError::Absolute);
    }
    if path.contains('\\') {
        return Err(PathError::Backslash);
    }
    if path.chars().any(char::is_control) {
        return Err(PathError::Control);
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(PathError::ParentDir),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

fn has_drive_prefix(path: &str) -> bool {
    let b = path.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// Where a pipeline's output lives in the repository: a file or a directory,
/// tracked by DVC through the pointer file `<dataset>.dvc` next to it.
/// Deserializing goes through the same validation as [`DatasetPath::new`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DatasetPath(String);

impl TryFrom<String> for DatasetPath {
    type Error = PathError;
    fn try_from(path: String) -> Result<Self, PathError> {
        Self::new(&path)
    }
}

impl From<DatasetPath> for String {
    fn from(path: DatasetPath) -> String {
        path.0
    }
}

impl DatasetPath {
    pub fn new(path: &str) -> Result<Self, PathError> {
        let norm = normalise_relative(path)?;
        if norm.is_empty() {
            return Err(PathError::Empty);
        }
        let top = norm.split('/').next().unwrap_or("");
        if let Some(r) = RESERVED_TOP.iter().find(|r| **r == top) {
            return Err(PathError::Reserved(r));
        }
        Ok(Self(norm))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The DVC pointer file that records this dataset's current version.
    pub fn pointer_path(&self) -> String {
        format!("{}.dvc", self.0)
    }

    /// The last component: what `dvc add` writes as `path:` in the pointer,
    /// and the entry it adds to the sibling `.gitignore`.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The directory holding the dataset and its pointer, "" at the top level.
    pub fn parent(&self) -> &str {
        self.0.rfind('/').map_or("", |i| &self.0[..i])
    }

    /// Every proper ancestor directory, shortest first (`a`, `a/b` for `a/b/c`).
    pub(crate) fn ancestors(&self) -> impl Iterator<Item = &str> {
        self.0.match_indices('/').map(move |(i, _)| &self.0[..i])
    }
}

impl fmt::Display for DatasetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DatasetPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Why an environment variable name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvNameError {
    #[error("{0:?} is not a valid environment variable name (use [A-Za-z_][A-Za-z0-9_]*)")]
    Invalid(String),
    #[error("{0:?} uses the reserved CAIRN_ prefix (cairn sets CAIRN_WORKSPACE, CAIRN_DATASET, CAIRN_RUN_ID and CAIRN_PIPELINE itself)")]
    Reserved(String),
}

/// Checks a user-supplied environment variable name; `CAIRN_*` belongs to
/// cairn so a task can always trust what it finds there.
pub(crate) fn check_env_name(name: &str) -> Result<(), EnvNameError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(EnvNameError::Invalid(name.to_string()));
    }
    if name.starts_with("CAIRN_") {
        return Err(EnvNameError::Reserved(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "employee_attrition", "0day", "a-b_c9", &"x".repeat(63)] {
            assert!(PipelineName::new(ok).is_ok(), "{ok}");
            assert!(TaskName::new(ok).is_ok(), "{ok}");
        }
        let cases: [(&str, NameError); 6] = [
            ("", NameError::Empty),
            (&"x".repeat(64), NameError::TooLong(64)),
            ("a b", NameError::BadChar(' ')),
            ("a/b", NameError::BadChar('/')),
            ("-a", NameError::BadEdge),
            ("a_", NameError::BadEdge),
        ];
        for (bad, err) in cases {
            assert_eq!(PipelineName::new(bad), Err(err), "{bad}");
        }
        assert_eq!(PipelineName::new("é"), Err(NameError::BadChar('é')));
    }

    #[test]
    fn dataset_paths() {
        let p = DatasetPath::new("./datasets//employee.csv/").unwrap();
        assert_eq!(p.as_str(), "datasets/employee.csv");
        assert_eq!(p.pointer_path(), "datasets/employee.csv.dvc");
        assert_eq!(p.file_name(), "employee.csv");
        assert_eq!(p.parent(), "datasets");
        assert_eq!(p.ancestors().collect::<Vec<_>>(), ["datasets"]);
        let top = DatasetPath::new("data").unwrap();
        assert_eq!((top.file_name(), top.parent()), ("data", ""));
        let cases = [
            ("", PathError::Empty),
            ("./", PathError::Empty),
            ("/etc/passwd", PathError::Absolute),
            ("C:/x", PathError::Absolute),
            ("a/../b", PathError::ParentDir),
            ("a\\b", PathError::Backslash),
            (".git/x", PathError::Reserved(".git")),
            ("./.dvc/cache", PathError::Reserved(".dvc")),
            (".cairn", PathError::Reserved(".cairn")),
        ];
        for (bad, err) in cases {
            assert_eq!(DatasetPath::new(bad), Err(err), "{bad}");
        }
        assert!(DatasetPath::new(".github-data/x").is_ok());
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let name: PipelineName = serde_json::from_str("\"etl-1\"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"etl-1\"");
        assert!(serde_json::from_str::<TaskName>("\"bad name\"").is_err());
        let path: DatasetPath = serde_json::from_str("\"./data/x.csv\"").unwrap();
        assert_eq!(path.as_str(), "data/x.csv");
        assert!(serde_json::from_str::<DatasetPath>("\"../x\"").is_err());
    }

    #[test]
    fn env_names() {
        assert!(check_env_name("ROWS").is_ok());
        assert!(check_env_name("_x1").is_ok());
        assert!(check_env_name("CAIRNS").is_ok());
        assert!(matches!(
            check_env_name("1X"),
            Err(EnvNameError::Invalid(_))
        ));
        assert!(matches!(
            check_env_name("A-B"),
            Err(EnvNameError::Invalid(_))
        ));
        assert!(matches!(check_env_name(""), Err(EnvNameError::Invalid(_))));
        assert!(matches!(
            check_env_name("CAIRN_RUN_ID"),
            Err(EnvNameError::Reserved(_))
        ));
    }
}
