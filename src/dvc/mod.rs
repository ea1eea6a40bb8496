//! DVC 3's on-disk formats, so the real `dvc` client accepts what cairn produces.
//!
//! Everything here is pure or plain file IO: no network, no async. Exactness is the
//! point: a `.dvc` pointer, `.dir` manifest or `.gitignore` line that differs from
//! what `dvc add` writes by one byte makes DVC see a change, or a different hash.
//! The test vectors in `tests/dvc_vectors.rs` were produced with DVC 3.67.1.
//!
//! - [`ids`]: [`Md5`] and [`ObjectId`] (`hex` / `hex.dir`, DVC 3 remote key layout).
//! - [`md5`](mod@md5): the one md5 implementation ([`Md5Hasher`], aws-lc's).
//! - [`hash`]: hashing files and directory trees as `dvc add` does.
//! - [`manifest`]: the `.dir` object (Python `json.dumps` byte for byte).
//! - [`pointer`](mod@pointer): `.dvc` files (read DVC 2/3, write DVC 3).
//! - `yaml`, `yaml_resolve`, `yaml_block` (private): ruamel.yaml's scalar quoting,
//!   folding and block layout, used by `pointer`.
//! - [`gitignore`]: the `.gitignore` entry `dvc add` adds.
//! - [`config`]: `.dvc/config` and `.dvc/config.local`; what `dvc init` writes.

pub mod config;
pub mod gitignore;
pub mod hash;
pub mod ids;
pub mod manifest;
pub mod md5;
pub mod pointer;
mod yaml;
mod yaml_block;
mod yaml_resolve;

pub use config::{ConfigError, DvcConfig, RemoteConfig, DVCIGNORE, DVC_DIR_GITIGNORE};
pub use gitignore::{gitignore_add, gitignore_entry};
pub use hash::{
    hash_file, hash_file_with_progress, hash_tree, hash_tree_as, HashError, TreeHash, Walk,
};
pub use ids::{InvalidHash, Md5, ObjectId};
pub use manifest::{Manifest, ManifestEntry, ManifestError};
pub use md5::Md5Hasher;
pub use pointer::{HashScheme, Output, PointerError, PointerFile};
