//! The settings keys, how each value is read, and where it came from.
//!
//! The file and the environment feed the same [`Layer`] through the same
//! [`Layer::set`], so a key is parsed and checked the same way whichever
//! source gave it; the environment is applied second and so wins.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_span::Span;

use super::{ExecutorKind, LogFormat};
use crate::github::Permission;

/// One settings key: its table (`None` for the top level), its name, and the
/// environment variable that overrides it (`CAIRN_<TABLE>_<KEY>`).
pub(super) struct Key {
    pub section: Option<&'static str>,
    pub name: &'static str,
    pub env: &'static str,
}

const fn key(section: Option<&'static str>, name: &'static str, env: &'static str) -> Key {
    Key { section, name, env }
}

pub(super) const SECTIONS: &[&str] = &[
    "webhook",
    "github",
    "commands",
    "api",
    "tasks",
    "kubernetes",
];

pub(super) const KEYS: &[Key] = &[
    key(None, "listen", "CAIRN_LISTEN"),
    key(None, "data_dir", "CAIRN_DATA_DIR"),
    key(None, "public_url", "CAIRN_PUBLIC_URL"),
    key(None, "log_format", "CAIRN_LOG_FORMAT"),
    key(None, "resync_interval", "CAIRN_RESYNC_INTERVAL"),
    key(None, "catchup_window", "CAIRN_CATCHUP_WINDOW"),
    key(Some("webhook"), "secret_file", "CAIRN_WEBHOOK_SECRET_FILE"),
    key(Some("webhook"), "body_limit", "CAIRN_WEBHOOK_BODY_LIMIT"),
    key(
        Some("webhook"),
        "body_timeout",
        "CAIRN_WEBHOOK_BODY_TIMEOUT",
    ),
    key(
        Some("webhook"),
        "dedup_capacity",
        "CAIRN_WEBHOOK_DEDUP_CAPACITY",
    ),
    key(
        Some("webhook"),
        "queue_capacity",
        "CAIRN_WEBHOOK_QUEUE_CAPACITY",
    ),
    key(Some("github"), "api_url", "CAIRN_GITHUB_API_URL"),
    key(Some("github"), "app_id", "CAIRN_GITHUB_APP_ID"),
    key(Some("github"), "app_key_file", "CAIRN_GITHUB_APP_KEY_FILE"),
    key(Some("github"), "token_file", "CAIRN_GITHUB_TOKEN_FILE"),
    key(Some("github"), "repositories", "CAIRN_GITHUB_REPOSITORIES"),
    key(Some("github"), "merge_wait", "CAIRN_GITHUB_MERGE_WAIT"),
    key(
        Some("commands"),
        "min_permission",
        "CAIRN_COMMANDS_MIN_PERMISSION",
    ),
    key(
        Some("commands"),
        "allow_forks",
        "CAIRN_COMMANDS_ALLOW_FORKS",
    ),
    key(Some("api"), "token_file", "CAIRN_API_TOKEN_FILE"),
    key(Some("tasks"), "pass_env", "CAIRN_TASKS_PASS_ENV"),
    key(None, "executor", "CAIRN_EXECUTOR"),
    key(None, "max_active_runs", "CAIRN_MAX_ACTIVE_RUNS"),
    key(
        Some("kubernetes"),
        "namespace",
        "CAIRN_KUBERNETES_NAMESPACE",
    ),
];

pub(super) fn find_key(section: Option<&str>, name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.section == section && k.name == name)
}

/// Where a value came from, for messages about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    /// The span of the value in the settings file.
    File(Span),
    Env(&'static str),
}

/// A value with its origin.
#[derive(Debug, Clone)]
pub(super) struct Set<T> {
    pub value: T,
    pub origin: Origin,
}

/// A value as written: TOML keeps types, the environment only has strings.
pub(super) enum Raw<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    /// A TOML array of strings.
    Strings(Vec<&'a str>),
    /// Any other TOML type, by name ("a table", "a boolean", ...).
    Other(&'static str),
}

impl Raw<'_> {
    fn found(&self) -> &'static str {
        match self {
            Raw::Str(_) => "a string",
            Raw::Int(_) => "an integer",
            Raw::Bool(_) => "a boolean",
            Raw::Strings(_) => "an array",
            Raw::Other(name) => name,
        }
    }
}

/// Every setting that was given, before defaults are applied.
#[derive(Debug, Default)]
pub(super) struct Layer {
    pub listen: Option<Set<SocketAddr>>,
    pub data_dir: Option<Set<PathBuf>>,
    pub public_url: Option<Set<String>>,
    pub log_format: Option<Set<LogFormat>>,
    pub resync_interval: Option<Set<Duration>>,
    pub secret_file: Option<Set<PathBuf>>,
    pub body_limit: Option<Set<u64>>,
    pub body_timeout: Option<Set<Duration>>,
    pub dedup_capacity: Option<Set<usize>>,
    pub queue_capacity: Option<Set<usize>>,
    pub api_url: Option<Set<String>>,
    pub app_id: Option<Set<u64>>,
    pub app_key_file: Option<Set<PathBuf>>,
    pub token_file: Option<Set<PathBuf>>,
    pub repositories: Option<Set<Vec<String>>>,
    pub merge_wait: Option<Set<Duration>>,
    pub catchup_window: Option<Set<Duration>>,
    pub min_permission: Option<Set<Permission>>,
    pub allow_forks: Option<Set<bool>>,
    pub api_token_file: Option<Set<PathBuf>>,
    pub pass_env: Option<Set<Vec<String>>>,
    pub executor: Option<Set<ExecutorKind>>,
    pub max_active_runs: Option<Set<usize>>,
    pub namespace: Option<Set<String>>,
}

/// Bounds that keep a typo from becoming an outage.
pub(super) const BODY_LIMIT_RANGE: (u64, u64) = (1024, 1 << 30);
const CAPACITY_MAX: usize = 10_000_000;
/// More runs at once than any one service can carry is a typo.
const MAX_ACTIVE_RUNS: usize = 10_000;
/// Backfilling more than a month of missed ticks is a mistake, not a policy.
const MAX_CATCHUP_WINDOW: Duration = Duration::from_secs(31 * 24 * 3600);

impl Layer {
    /// Parses `raw` as the value of `key` and records it, replacing what an
    /// earlier source gave. Relative paths are resolved against `base` (the
    /// settings file's folder; `None` leaves them relative to the working
    /// directory). `Err` is the problem, without the key's name.
    pub fn set(
        &mut self,
        key: &Key,
        raw: Raw<'_>,
        origin: Origin,
        base: Option<&Path>,
    ) -> Result<(), String> {
        fn at<T>(value: T, origin: &Origin) -> Option<Set<T>> {
            Some(Set {
                value,
                origin: origin.clone(),
            })
        }
        let o = &origin;
        let path = |raw: Raw<'_>| -> Result<PathBuf, String> {
            let text = string(raw)?;
            if text.is_empty() {
                return Err("expected a path, found an empty string".into());
            }
            let path = PathBuf::from(text);
            Ok(match base {
                Some(base) if path.is_relative() => base.join(path),
                _ => path,
            })
        };
        match (key.section, key.name) {
            (None, "listen") => self.listen = at(listen(string(raw)?)?, o),
            (None, "data_dir") => self.data_dir = at(path(raw)?, o),
            (None, "public_url") => self.public_url = at(url(string(raw)?)?, o),
            (None, "log_format") => self.log_format = at(log_format(string(raw)?)?, o),
            (None, "resync_interval") => {
                self.resync_interval = at(duration(string(raw)?, Duration::from_secs(1))?, o)
            }
            (Some("webhook"), "secret_file") => self.secret_file = at(path(raw)?, o),
            (Some("webhook"), "body_limit") => self.body_limit = at(byte_size(raw)?, o),
            (Some("webhook"), "body_timeout") => {
                self.body_timeout = at(duration(string(raw)?, Duration::from_millis(100))?, o)
            }
            (Some("webhook"), "dedup_capacity") => {
                self.dedup_capacity = at(count(raw, CAPACITY_MAX)?, o)
            }
            (Some("webhook"), "queue_capacity") => {
                self.queue_capacity = at(count(raw, CAPACITY_MAX)?, o)
            }
            (Some("github"), "api_url") => self.api_url = at(url(string(raw)?)?, o),
            (Some("github"), "app_id") => {
                self.app_id = at(
                    u64::try_from(count(raw, usize::MAX)?).unwrap_or(u64::MAX),
                    o,
                )
            }
            (Some("github"), "app_key_file") => self.app_key_file = at(path(raw)?, o),
            (Some("github"), "token_file") => self.token_file = at(path(raw)?, o),
            (Some("github"), "repositories") => self.repositories = at(repositories(raw)?, o),
            (Some("github"), "merge_wait") => {
                self.merge_wait = at(duration(string(raw)?, Duration::ZERO)?, o)
            }
            (None, "catchup_window") => {
                self.catchup_window = at(
                    duration(string(raw)?, Duration::from_secs(60))
                        .and_then(|d| at_most(d, MAX_CATCHUP_WINDOW))?,
                    o,
                )
            }
            (Some("commands"), "min_permission") => {
                self.min_permission = at(permission(string(raw)?)?, o)
            }
            (Some("commands"), "allow_forks") => self.allow_forks = at(boolean(raw)?, o),
            (Some("api"), "token_file") => self.api_token_file = at(path(raw)?, o),
            (Some("tasks"), "pass_env") => self.pass_env = at(variable_names(raw)?, o),
            (None, "executor") => self.executor = at(executor(string(raw)?)?, o),
            (None, "max_active_runs") => self.max_active_runs = at(count(raw, MAX_ACTIVE_RUNS)?, o),
            (Some("kubernetes"), "namespace") => self.namespace = at(namespace(string(raw)?)?, o),
            (section, name) => unreachable!("key {section:?}.{name} is in KEYS but not parsed"),
        }
        Ok(())
    }
}

fn string(raw: Raw<'_>) -> Result<&str, String> {
    match raw {
        Raw::Str(s) => Ok(s),
        other => Err(format!("expected a string, found {}", other.found())),
    }
}

fn listen(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("`{text}` is not an IP address and port (such as 127.0.0.1:8080 or [::]:8080)")
    })
}

/// An `http(s)://host[...]` URL, kept without its trailing slash so that
/// paths can be appended with `/`.
fn url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or_else(|| format!("`{text}` is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{text}` is not a valid URL"));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

fn executor(text: &str) -> Result<ExecutorKind, String> {
    match text {
        "local" => Ok(ExecutorKind::Local),
        "kubernetes" => Ok(ExecutorKind::Kubernetes),
        _ => Err(format!(
            "`{text}` is not an executor: expected \"local\" or \"kubernetes\""
        )),
    }
}

/// A namespace name as Kubernetes accepts it (an RFC 1123 label).
fn namespace(text: &str) -> Result<String, String> {
    let ok = (1..=63).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not a namespace name: 1-63 lowercase letters, digits and '-', \
             starting and ending with a letter or digit"
        ))
    }
}

fn log_format(text: &str) -> Result<LogFormat, String> {
    match text {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!(
            "`{text}` is not a log format: expected \"text\" or \"json\""
        )),
    }
}

fn duration(text: &str, min: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration such as \"90s\" or \"5m\" ({e})"))?;
    if d < min {
        return Err(format!(
            "{text} is too short: at least {}",
            humantime::format_duration(min)
        ));
    }
    Ok(d)
}

fn at_most(d: Duration, max: Duration) -> Result<Duration, String> {
    if d > max {
        return Err(format!(
            "{} is too long: at most {}",
            humantime::format_duration(d),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

/// A role on a GitHub repository, as GitHub names them.
fn permission(text: &str) -> Result<Permission, String> {
    match text {
        "read" => Ok(Permission::Read),
        "triage" => Ok(Permission::Triage),
        "write" => Ok(Permission::Write),
        "maintain" => Ok(Permission::Maintain),
        "admin" => Ok(Permission::Admin),
        _ => Err(format!(
            "`{text}` is not a repository role: expected \"read\", \"triage\", \"write\", \
             \"maintain\" or \"admin\""
        )),
    }
}

/// A TOML boolean, or (from the environment) `true` or `false`.
fn boolean(raw: Raw<'_>) -> Result<bool, String> {
    match raw {
        Raw::Bool(b) => Ok(b),
        Raw::Str("true") => Ok(true),
        Raw::Str("false") => Ok(false),
        Raw::Str(s) => Err(format!("`{s}` is not a boolean: expected true or false")),
        other => Err(format!("expected true or false, found {}", other.found())),
    }
}

/// A positive count: an integer, or (from the environment) its digits, with
/// `_` allowed as a separator.
fn count(raw: Raw<'_>, max: usize) -> Result<usize, String> {
    let n: i128 = match raw {
        Raw::Int(n) => n.into(),
        Raw::Str(s) => s
            .replace('_', "")
            .parse()
            .map_err(|_| format!("`{s}` is not a whole number"))?,
        other => return Err(format!("expected an integer, found {}", other.found())),
    };
    if n < 1 {
        return Err(format!("{n} is too small: at least 1"));
    }
    usize::try_from(n)
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(|| format!("{n} is too large: at most {max}"))
}

/// A size in bytes: an integer, or a string with a unit (`B`, `KB`, `KiB`,
/// `MB`, `MiB`, `GB`, `GiB`; decimal units are powers of 1000).
pub(super) fn byte_size(raw: Raw<'_>) -> Result<u64, String> {
    let n = match raw {
        Raw::Int(n) => u64::try_from(n).map_err(|_| format!("{n} is not a size"))?,
        Raw::Str(s) => parse_size(s)?,
        other => {
            return Err(format!(
                "expected a size such as \"25MiB\", found {}",
                other.found()
            ))
        }
    };
    let (min, max) = BODY_LIMIT_RANGE;
    if !(min..=max).contains(&n) {
        return Err(format!("{n} bytes is out of range: 1KiB to 1GiB"));
    }
    Ok(n)
}

fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a size such as \"25MiB\" or \"512KB\"");
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" => 1 << 10,
        "MB" => 1000 * 1000,
        "MiB" => 1 << 20,
        "GB" => 1000 * 1000 * 1000,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).ok_or_else(bad)
}

/// `owner/name` repositories: a TOML array, or (from the environment) a
/// comma-separated list. GitHub names are case-insensitive, so a repository
/// listed twice in different cases is still listed twice.
/// Names of environment variables: an array, or comma-separated in a
/// variable. Which of them may be passed is the task side's to say.
fn variable_names(raw: Raw<'_>) -> Result<Vec<String>, String> {
    let items: Vec<&str> = match raw {
        Raw::Strings(items) => items,
        Raw::Str(list) => list.split(',').collect(),
        other => {
            return Err(format!(
                "expected an array of variable names, found {}",
                other.found()
            ))
        }
    };
    Ok(items
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

fn repositories(raw: Raw<'_>) -> Result<Vec<String>, String> {
    let items: Vec<&str> = match raw {
        Raw::Strings(items) => items,
        Raw::Str(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect(),
        other => {
            return Err(format!(
                "expected an array of \"owner/name\" strings, found {}",
                other.found()
            ))
        }
    };
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let valid_part = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        match item.split_once('/') {
            Some((owner, name)) if valid_part(owner) && valid_part(name) => {}
            _ => {
                return Err(format!(
                    "`{item}` is not a repository name like \"owner/name\""
                ))
            }
        }
        if out.iter().any(|seen| seen.eq_ignore_ascii_case(item)) {
            return Err(format!("`{item}` is listed twice"));
        }
        out.push(item.to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_parsed_and_named_after_its_place() {
        for k in KEYS {
            let want = match k.section {
                Some(s) => format!("CAIRN_{}_{}", s, k.name),
                None => format!("CAIRN_{}", k.name),
            };
            assert_eq!(k.env, want.to_ascii_uppercase());
            // A value of the wrong type is an error, never a panic.
            let mut layer = Layer::default();
            let r = layer.set(k, Raw::Other("a table"), Origin::Env(k.env), None);
            assert!(r.unwrap_err().contains("found a table"), "{}", k.name);
        }
    }

    #[test]
    fn sizes() {
        for (text, want) in [
            ("25MiB", 25 << 20),
            ("25 MiB", 25 << 20),
            ("512KB", 512_000),
            ("1GiB", 1 << 30),
            ("4096", 4096),
            ("2048B", 2048),
        ] {
            assert_eq!(byte_size(Raw::Str(text)), Ok(want), "{text}");
        }
        assert_eq!(byte_size(Raw::Int(65536)), Ok(65536));
        for bad in [
            "25 MiBs",
            "MiB",
            "-1",
            "1.5MiB",
            "2GiB",
            "10",
            "99999999999999999999",
        ] {
            assert!(byte_size(Raw::Str(bad)).is_err(), "{bad}");
        }
        assert!(byte_size(Raw::Int(-5)).is_err());
    }

    #[test]
    fn counts_urls_and_repositories() {
        assert_eq!(
            count(Raw::Int(100_000), 10),
            Err("100000 is too large: at most 10".into())
        );
        assert_eq!(count(Raw::Str("100_000"), CAPACITY_MAX), Ok(100_000));
        assert!(count(Raw::Int(0), 10).is_err());
        assert_eq!(permission("maintain"), Ok(Permission::Maintain));
        assert!(permission("none").is_err());
        assert_eq!(boolean(Raw::Str("true")), Ok(true));
        assert_eq!(boolean(Raw::Bool(false)), Ok(false));
        assert!(boolean(Raw::Str("yes")).is_err());
        assert!(at_most(Duration::from_secs(40 * 24 * 3600), MAX_CATCHUP_WINDOW).is_err());
        assert_eq!(
            url("https://ghe.example.com/api/v3/"),
            Ok("https://ghe.example.com/api/v3".into())
        );
        for bad in ["ftp://x", "https://", "api.github.com", "https://a b"] {
            assert!(url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            repositories(Raw::Str(" acme/data, acme/etl ,")),
            Ok(vec!["acme/data".to_owned(), "acme/etl".to_owned()])
        );
        for bad in ["acme", "acme/", "/x", "a/b/c", "a b/c"] {
            assert!(repositories(Raw::Str(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            repositories(Raw::Str("acme/data,ACME/Data")),
            Err("`ACME/Data` is listed twice".into())
        );
    }
}
