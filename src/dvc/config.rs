//! `.dvc/config`: which remote a repository pushes to, read the way DVC reads it.
//!
//! DVC stores its settings in configobj (INI-like) files: `.dvc/config` (committed)
//! and `.dvc/config.local` (not committed), the latter overriding the former key by
//! key. `dvc remote add -d storage URL` writes:
//!
//! ```text
//! [core]
//!     remote = storage
//! ['remote "storage"']
//!     url = URL
//! ```
//!
//! Rules followed here (from DVC's `config.py`): section and key names are
//! case-insensitive (DVC lowercases them), so is the `core.remote` value; a
//! relative local path in a remote's `url` (and its other path options) is relative
//! to the directory of the config file that defines it, `~` is the home directory;
//! `[remote "storage"]` is accepted as well as the quoted form; `#` starts a
//! comment outside quotes. Global and system DVC configs are not read: a
//! repository's pipelines should not depend on the machine they run on.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

/// A configured remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteConfig {
    /// The remote's name (lowercase).
    pub name: String,
    /// The url: `s3://bucket/prefix`, `file://...`, or an absolute local path
    /// (relative paths are already resolved).
    pub url: String,
    /// Every other key of the section (`endpointurl`, `region`, `profile`, ...).
    pub options: BTreeMap<String, String>,
}

/// Options that say where a remote is and how to reach it, never who is
/// asking: the only ones [`RemoteConfig::locator_text`] keeps.
const LOCATOR_OPTIONS: &[&str] = &[
    "endpointurl",
    "region",
    "profile",
    "connect_timeout",
    "read_timeout",
];

impl RemoteConfig {
    /// This remote alone, as the default of a `.dvc/config` text, with only
    /// the options that locate it. For copies that leave the repository
    /// (a PipelineRun's spec, a pod's environment): whatever a file held
    /// (an `access_key_id` committed by mistake, say) stays behind, as
    /// credentials come from the reader's own AWS chain.
    pub fn locator_text(&self) -> String {
        let mut text = format!(
            "[core]\n    remote = {}\n['remote \"{}\"']\n    url = {}\n",
            quote_value(&self.name),
            self.name,
            quote_value(&self.url)
        );
        for (key, value) in &self.options {
            if LOCATOR_OPTIONS.contains(&key.as_str()) {
                text.push_str(&format!("    {key} = {}\n", quote_value(value)));
            }
        }
        text
    }
}

/// A problem with the repository's DVC configuration; names the file (and line).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file exists but cannot be read.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A line configobj would reject.
    #[error("{}:{line}: {message}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// No `[core] remote`.
    #[error("no default DVC remote is configured in {}; add one with `dvc remote add -d storage <url>` (or run `cairn init`)", dir.display())]
    NoDefaultRemote {
        /// The repository's `.dvc` directory.
        dir: PathBuf,
    },
    /// A remote name with no section (or no url).
    #[error("DVC remote {name:?} is not defined (no url) in {}; add it with `dvc remote add {name} <url>`", dir.display())]
    UnknownRemote {
        /// The name asked for.
        name: String,
        /// The repository's `.dvc` directory.
        dir: PathBuf,
    },
}

type Sections = BTreeMap<String, BTreeMap<String, String>>;

/// The merged DVC configuration of one repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DvcConfig {
    sections: Sections,
    dvc_dir: PathBuf,
}

/// `.dvc/.gitignore` exactly as `dvc init` writes it.
pub const DVC_DIR_GITIGNORE: &str = "/config.local\n/tmp\n/cache\n";

/// The repository-root `.dvcignore` exactly as `dvc init` writes it.
pub const DVCIGNORE: &str = "# Add patterns of files dvc should ignore, which could improve\n# the performance. Learn more at\n# https://dvc.org/doc/user-guide/dvcignore\n";

/// Options whose values are paths, resolved like `url` (from DVC's config schema).
const PATH_OPTIONS: &[&str] = &[
    "url",
    "gdrive_user_credentials_file",
    "gdrive_service_account_json_file_path",
    "credentialpath",
    "configpath",
    "keyfile",
    "cert_path",
    "key_path",
];

impl DvcConfig {
    /// Reads `<repo_root>/.dvc/config` then `.dvc/config.local`; missing files are empty.
    pub fn load(repo_root: &Path) -> Result<DvcConfig, ConfigError> {
        let root = std::path::absolute(repo_root).unwrap_or_else(|_| repo_root.to_path_buf());
        let dvc_dir = root.join(".dvc");
        let mut cfg = DvcConfig {
            sections: Sections::new(),
            dvc_dir: dvc_dir.clone(),
        };
        for name in ["config", "config.local"] {
            let file = dvc_dir.join(name);
            let text = match std::fs::read(&file) {
                Ok(bytes) => String::from_utf8(bytes).map_err(|_| ConfigError::Io {
                    file: file.clone(),
                    source: io::Error::new(io::ErrorKind::InvalidData, "not valid UTF-8"),
                })?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(ConfigError::Io { file, source }),
            };
            cfg.merge(parse_file(&text, &file)?);
        }
        Ok(cfg)
    }

    /// Parses one config file's text; relative paths resolve against `file`'s directory.
    pub fn parse(text: &str, file: &Path) -> Result<DvcConfig, ConfigError> {
        let mut cfg = DvcConfig {
            sections: Sections::new(),
            dvc_dir: file.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        cfg.merge(parse_file(text, file)?);
        Ok(cfg)
    }

    fn merge(&mut self, other: Sections) {
        for (section, keys) in other {
            self.sections.entry(section).or_default().extend(keys);
        }
    }

    /// A raw value, e.g. `get("core", "remote")` (names are case-insensitive).
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .get(&section.to_lowercase())?
            .get(&key.to_lowercase())
            .map(String::as_str)
    }

    /// The `[core] remote` name, if set.
    pub fn default_remote_name(&self) -> Option<String> {
        self.get("core", "remote")
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase)
    }

    /// The default remote; an error that says how to add one when there is none.
    pub fn default_remote(&self) -> Result<RemoteConfig, ConfigError> {
        let name = self
            .default_remote_name()
            .ok_or_else(|| ConfigError::NoDefaultRemote {
                dir: self.dvc_dir.clone(),
            })?;
        self.remote(&name)
            .ok_or_else(|| ConfigError::UnknownRemote {
                name,
                dir: self.dvc_dir.clone(),
            })
    }

    /// The remote called `name` (case-insensitive), if it has a url.
    pub fn remote(&self, name: &str) -> Option<RemoteConfig> {
        let name = name.to_lowercase();
        let section = self.sections.get(&format!("remote \"{name}\""))?;
        let url = section.get("url")?.clone();
        let options = section
            .iter()
            .filter(|(k, _)| k.as_str() != "url")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Some(RemoteConfig { name, url, options })
    }

    /// Names of all remotes with a url.
    pub fn remote_names(&self) -> Vec<String> {
        self.sections
            .keys()
            .filter_map(|s| parse_named(s).filter(|(kind, _)| kind == "remote"))
            .map(|(_, name)| name)
            .filter(|n| self.remote(n).is_some())
            .collect()
    }

    /// `.dvc/config` as `dvc remote add -d <remote_name> <url>` writes it into a fresh
    /// repository. `url` is written as given (DVC stores local paths relative to `.dvc/`).
    pub fn init_text(remote_name: &str, url: &str) -> String {
        format!(
            "[core]\n    remote = {}\n['remote \"{}\"']\n    url = {}\n",
            quote_value(remote_name),
            remote_name,
            quote_value(url)
        )
    }
}

/// configobj's quoting of a written value: only when a plain value would not read back.
fn quote_value(v: &str) -> String {
    let needs = v.is_empty()
        || v.contains(['#', ',', '"', '\'', '\n'])
        || v.starts_with(char::is_whitespace)
        || v.ends_with(char::is_whitespace);
    if !needs {
        v.to_string()
    } else if !v.contains('"') {
        format!("\"{v}\"")
    } else {
        format!("'{v}'")
    }
}

/// `remote "storage"` -> ("remote", "storage"), as DVC's `_parse_named`.
fn parse_named(section: &str) -> Option<(String, String)> {
    let s = section.trim();
    let (kind, rest) = s.split_once(char::is_whitespace)?;
    if kind.is_empty() || !kind.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let rest = rest.trim();
    let name = rest.strip_prefix('"')?.strip_suffix('"')?;
    Some((kind.to_string(), name.to_string()))
}

fn parse_file(text: &str, file: &Path) -> Result<Sections, ConfigError> {
    let conf_dir = file
        .parent()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
        .unwrap_or_default();
    let mut sections = Sections::new();
    let mut current: Option<String> = None;
    for (idx, raw) in text.lines().enumerate() {
        let syntax = |message: String| ConfigError::Syntax {
            file: file.to_path_buf(),
            line: idx + 1,
            message,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            if rest.starts_with('[') {
                return Err(syntax("nested sections are not used by DVC".into()));
            }
            let (name, after) = read_token(rest.trim_start(), ']')
                .ok_or_else(|| syntax("unterminated section header".into()))?;
            let after = after.trim_start();
            let after = after
                .strip_prefix(']')
                .ok_or_else(|| syntax("expected `]` after the section name".into()))?
                .trim();
            if !after.is_empty() && !after.starts_with('#') {
                return Err(syntax("unexpected text after the section header".into()));
            }
            let name = name.trim().to_lowercase();
            if name.is_empty() {
                return Err(syntax("empty section name".into()));
            }
            sections.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| {
            syntax(format!(
                "expected `key = value` or `[section]`, found {line:?}"
            ))
        })?;
        let key = unquote_key(key.trim()).to_lowercase();
        if key.is_empty() {
            return Err(syntax("empty key".into()));
        }
        let value = parse_value(value.trim()).map_err(|m| syntax(m.into()))?;
        let Some(section) = &current else {
            return Err(syntax(format!("`{key}` is outside of any [section]")));
        };
        let is_remote = parse_named(section).is_some_and(|(kind, _)| kind == "remote");
        let value = if is_remote && PATH_OPTIONS.contains(&key.as_str()) {
            resolve_path(&conf_dir, &value)
        } else {
            value
        };
        sections
            .entry(section.clone())
            .or_default()
            .insert(key, value);
    }
    Ok(sections)
}

/// Reads a possibly quoted token ending at `end` (unquoted) and returns (token, rest).
fn read_token(s: &str, end: char) -> Option<(String, &str)> {
    if let Some(q) = s.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let body = &s[1..];
        let close = body.find(q)?;
        return Some((body[..close].to_string(), &body[close + 1..]));
    }
    let close = s.find(end)?;
    Some((s[..close].to_string(), &s[close..]))
}

fn unquote_key(k: &str) -> &str {
    for q in ['\'', '"'] {
        if let Some(inner) = k.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    k
}

fn parse_value(v: &str) -> Result<String, &'static str> {
    if let Some(q) = v.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let body = &v[1..];
        let close = body.find(q).ok_or("unterminated quoted value")?;
        let rest = body[close + 1..].trim();
        if !rest.is_empty() && !rest.starts_with('#') {
            return Err("unexpected text after a quoted value");
        }
        return Ok(body[..close].to_string());
    }
    Ok(v.split('#').next().unwrap_or("").trim().to_string())
}

/// DVC's `_resolve`: urls with a scheme and absolute paths stay; `~` expands;
/// anything else is joined to the config file's directory and normalised.
fn resolve_path(conf_dir: &Path, value: &str) -> String {
    let has_scheme = value
        .split_once("://")
        .is_some_and(|(s, _)| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_'));
    if has_scheme || value.is_empty() || Path::new(value).is_absolute() {
        return value.to_string();
    }
    if value == "~" || value.starts_with("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return Path::new(&home)
                .join(value.trim_start_matches('~').trim_start_matches('/'))
                .to_string_lossy()
                .into_owned();
        }
    }
    normalize(&conf_dir.join(value))
        .to_string_lossy()
        .into_owned()
}

/// Lexical normalisation like Python's `os.path.abspath` (no symlink resolution).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_locator_keeps_where_the_remote_is_and_drops_credentials() {
        let text = "[core]\n    remote = storage\n['remote \"storage\"']\n    url = s3://b/p\n    endpointurl = http://minio:9000\n    region = eu-west-1\n    access_key_id = AKIAEXAMPLE\n    secret_access_key = hunter2\n['remote \"other\"']\n    url = s3://x/y\n";
        let cfg = super::DvcConfig::parse(text, std::path::Path::new("/r/.dvc/config")).unwrap();
        let locator = cfg.default_remote().unwrap().locator_text();
        assert!(
            !locator.contains("AKIA") && !locator.contains("hunter2"),
            "{locator}"
        );
        assert!(
            !locator.contains("s3://x/y"),
            "only the remote in use: {locator}"
        );
        let back =
            super::DvcConfig::parse(&locator, std::path::Path::new("/w/.dvc/config")).unwrap();
        let remote = back.default_remote().unwrap();
        assert_eq!(remote.url, "s3://b/p");
        assert_eq!(remote.options["endpointurl"], "http://minio:9000");
        assert_eq!(remote.options["region"], "eu-west-1");
        assert_eq!(remote.options.len(), 2);
    }

    use super::*;

    fn parse(text: &str) -> DvcConfig {
        DvcConfig::parse(text, Path::new("/repo/.dvc/config")).unwrap()
    }

    #[test]
    fn reads_what_dvc_writes() {
        let cfg = parse(
            "[core]\n    remote = storage\n['remote \"storage\"']\n    url = s3://bucket/store\n    endpointurl = http://127.0.0.1:9000\n    region = garage\n['remote \"other\"']\n    url = ../../rel/store\n",
        );
        let r = cfg.default_remote().unwrap();
        assert_eq!(r.name, "storage");
        assert_eq!(r.url, "s3://bucket/store");
        assert_eq!(r.options["endpointurl"], "http://127.0.0.1:9000");
        assert_eq!(r.options["region"], "garage");
        assert_eq!(cfg.remote("other").unwrap().url, "/rel/store");
        assert_eq!(cfg.remote_names(), ["other", "storage"]);
    }

    #[test]
    fn unquoted_sections_comments_and_case() {
        let cfg = parse(
            "# top comment\n[Core]\nremote=Local # the default\n[remote \"local\"]\nURL = '/data/a #b' # c\n\n",
        );
        let r = cfg.default_remote().unwrap();
        assert_eq!(r.name, "local");
        assert_eq!(r.url, "/data/a #b");
    }

    #[test]
    fn relative_urls_resolve_against_the_config_dir() {
        let cfg = parse("[core]\nremote = s\n['remote \"s\"']\nurl = ./store/../x\n");
        assert_eq!(cfg.default_remote().unwrap().url, "/repo/.dvc/x");
        let cfg = parse("[core]\nremote = s\n['remote \"s\"']\nurl = file:///abs\n");
        assert_eq!(cfg.default_remote().unwrap().url, "file:///abs");
    }

    #[test]
    fn errors_say_what_to_do() {
        let err = parse("").default_remote().unwrap_err();
        assert!(
            err.to_string().contains("dvc remote add -d storage"),
            "{err}"
        );
        assert!(err.to_string().contains("cairn init"), "{err}");
        let err = parse("[core]\nremote = x\n").default_remote().unwrap_err();
        assert!(err.to_string().contains("\"x\""), "{err}");
        let err = DvcConfig::parse("[core]\nnonsense\n", Path::new("/r/.dvc/config")).unwrap_err();
        assert!(err.to_string().starts_with("/r/.dvc/config:2: "), "{err}");
        assert!(DvcConfig::parse("url = x\n", Path::new("/r/c")).is_err());
        assert!(DvcConfig::parse("[core\n", Path::new("/r/c")).is_err());
    }

    #[test]
    fn local_overrides_and_init_text() {
        let dir = tempfile::tempdir().unwrap();
        let dvc = dir.path().join(".dvc");
        std::fs::create_dir_all(&dvc).unwrap();
        std::fs::write(
            dvc.join("config"),
            DvcConfig::init_text("storage", "/srv/a"),
        )
        .unwrap();
        std::fs::write(
            dvc.join("config.local"),
            "['remote \"storage\"']\n    url = ../local-store\n",
        )
        .unwrap();
        let cfg = DvcConfig::load(dir.path()).unwrap();
        assert_eq!(
            cfg.default_remote().unwrap().url,
            dir.path().join("local-store").to_string_lossy()
        );
        assert_eq!(
            DvcConfig::init_text("storage", "/tmp/exp-remote"),
            "[core]\n    remote = storage\n['remote \"storage\"']\n    url = /tmp/exp-remote\n"
        );
    }
}
