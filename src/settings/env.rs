//! The environment as a parameter: a snapshot of the `CAIRN_*` variables,
//! whose `Debug` shows names only.

use std::collections::BTreeMap;
use std::fmt;

/// A snapshot of environment variables. `Debug` lists names only, since
/// values include secrets.
#[derive(Clone, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    /// The `CAIRN_*` variables of this process (values that are not UTF-8
    /// are converted lossily; they then fail validation with their name).
    pub fn from_process() -> Self {
        Env(std::env::vars_os()
            .filter_map(|(k, v)| {
                let k = k.into_string().ok()?;
                k.starts_with("CAIRN_")
                    .then(|| (k, v.to_string_lossy().into_owned()))
            })
            .collect())
    }

    /// The value of `name`; `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub(super) fn is_set(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Env {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Env(iter
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect())
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}
