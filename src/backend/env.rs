//! The environment a task starts from: a fixed base, the variables the
//! operator chose to pass, the pipeline's own, and cairn's `CAIRN_*` run
//! variables. Nothing else of the environment cairn runs in reaches a task:
//! not its webhook secret, API token, GitHub or S3 credentials.

use std::collections::BTreeMap;
use std::path::Path;

/// PATH for tasks when cairn itself has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Names of cairn's own secrets (and of credentials it uses), which no
/// setting may pass to a task. Every `CAIRN_*` variable is cairn's too.
const SECRET_NAMES: &[&str] = &[
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskEnvError {
    #[error("{name} is one of cairn's own secrets or settings: tasks never see it; pass another variable")]
    Secret { name: String },
    #[error(
        "{name:?} is not a variable name (letters, digits and `_`, not starting with a digit)"
    )]
    BadName { name: String },
}

/// What tasks get from cairn's environment, fixed when cairn starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEnv {
    path: String,
    /// The variables passed on purpose, with their values at start.
    passed: BTreeMap<String, String>,
}

impl TaskEnv {
    /// Reads PATH and the variables named in `pass` from `lookup` (the
    /// process environment, in production). A name that is not set is
    /// left out; one of cairn's secrets is refused.
    pub fn new(
        pass: &[String],
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<TaskEnv, TaskEnvError> {
        let mut passed = BTreeMap::new();
        for name in pass {
            check_name(name)?;
            if let Some(value) = lookup(name) {
                passed.insert(name.clone(), value);
            }
        }
        Ok(TaskEnv {
            path: lookup("PATH")
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| DEFAULT_PATH.to_string()),
            passed,
        })
    }

    /// Nothing passed: PATH from this process only.
    pub fn from_process(pass: &[String]) -> Result<TaskEnv, TaskEnvError> {
        TaskEnv::new(pass, |name| std::env::var(name).ok())
    }

    /// The base of one task's environment: PATH, a HOME and TMPDIR of the
    /// run's own, a UTF-8 locale, UTC, and the passed variables.
    pub fn base(&self, home: &Path, tmp: &Path) -> BTreeMap<String, String> {
        let mut env = BTreeMap::from([
            ("PATH".to_string(), self.path.clone()),
            ("HOME".to_string(), home.display().to_string()),
            ("TMPDIR".to_string(), tmp.display().to_string()),
            ("LANG".to_string(), "C.UTF-8".to_string()),
            ("LC_ALL".to_string(), "C.UTF-8".to_string()),
            ("TZ".to_string(), "UTC".to_string()),
        ]);
        env.extend(self.passed.clone());
        env
    }
}

fn check_name(name: &str) -> Result<(), TaskEnvError> {
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(TaskEnvError::BadName {
            name: name.to_string(),
        });
    }
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("CAIRN_") || SECRET_NAMES.contains(&upper.as_str()) {
        return Err(TaskEnvError::Secret {
            name: name.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn only_the_base_and_what_is_named_pass() {
        let vars = [
            ("PATH", "/opt/bin:/usr/bin"),
            ("HTTP_PROXY", "http://proxy:3128"),
            ("CAIRN_API_TOKEN", "secret"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ];
        let t = TaskEnv::new(&["HTTP_PROXY".into(), "UNSET".into()], env(&vars)).unwrap();
        let base = t.base(Path::new("/r/home"), Path::new("/r/tmp"));
        assert_eq!(
            base.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "HOME",
                "HTTP_PROXY",
                "LANG",
                "LC_ALL",
                "PATH",
                "TMPDIR",
                "TZ"
            ]
        );
        assert_eq!(base["PATH"], "/opt/bin:/usr/bin");
        assert_eq!(base["HOME"], "/r/home");
    }

    #[test]
    fn cairns_secrets_cannot_be_passed() {
        for name in [
            "CAIRN_API_TOKEN",
            "cairn_webhook_secret",
            "GITHUB_TOKEN",
            "AWS_SESSION_TOKEN",
        ] {
            assert_eq!(
                TaskEnv::new(&[name.into()], env(&[])),
                Err(TaskEnvError::Secret { name: name.into() })
            );
        }
        assert!(matches!(
            TaskEnv::new(&["A-B".into()], env(&[])),
            Err(TaskEnvError::BadName { .. })
        ));
    }

    #[test]
    fn without_a_path_tasks_get_the_usual_one() {
        let t = TaskEnv::new(&[], env(&[])).unwrap();
        assert_eq!(t.base(Path::new("h"), Path::new("t"))["PATH"], DEFAULT_PATH);
    }
}
