//! Who may use which command (pure). The facts come from GitHub's API (the
//! commenter's permission on the repository, whether the pull request's head
//! is a fork), never from the webhook payload's `author_association`, which
//! is informational and coarser.

use std::fmt;

use super::Command;
use crate::github::Permission;

/// The service's rules for commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessPolicy {
    /// The weakest role on the repository that may use commands.
    pub min_permission: Permission,
    /// Whether a comment on a pull request from a fork may start runs.
    pub allow_forks: bool,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        AccessPolicy {
            min_permission: Permission::Write,
            allow_forks: false,
        }
    }
}

/// Why a command was refused. `Display` is the polite answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The commenter's role is below the minimum.
    Permission {
        user: String,
        have: Permission,
        need: Permission,
    },
    /// The pull request comes from a fork and forks may not start runs.
    Fork,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Permission { user, have, need } => write!(
                f,
                "sorry @{user}, this needs {need} access to the repository (you have {have}); \
                 a maintainer can run it for you"
            ),
            Denied::Fork => f.write_str(
                "sorry, comments on pull requests from forks cannot start runs here; a \
                 maintainer can start the run from a comment on another issue or through the API",
            ),
        }
    }
}

/// May a commenter with `permission` use `command`, on a pull request from a
/// fork or not? (Comments by bots never get this far: they are ignored.)
pub fn authorize(
    policy: &AccessPolicy,
    command: &Command,
    user: &str,
    permission: Permission,
    from_fork: bool,
) -> Result<(), Denied> {
    if command.is_harmless() {
        return Ok(());
    }
    if permission < policy.min_permission {
        return Err(Denied::Permission {
            user: user.to_owned(),
            have: permission,
            need: policy.min_permission,
        });
    }
    if from_fork && command.starts_runs() && !policy.allow_forks {
        return Err(Denied::Fork);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every role against every kind of command, with and without a fork.
    #[test]
    fn authorization_matrix() {
        let run = Command::Run {
            pipelines: vec!["p".into()],
        };
        let strict = AccessPolicy::default();
        let forks = AccessPolicy {
            allow_forks: true,
            ..strict
        };
        let cases = [
            // (role, fork, command, policy, allowed)
            (Permission::Admin, false, &run, strict, true),
            (Permission::Maintain, false, &run, strict, true),
            (Permission::Write, false, &run, strict, true),
            (Permission::Triage, false, &run, strict, false),
            (Permission::Read, false, &run, strict, false),
            (Permission::None, false, &run, strict, false),
            (Permission::Admin, true, &run, strict, false),
            (Permission::Admin, true, &run, forks, true),
            (Permission::Read, true, &run, forks, false),
            (Permission::Write, true, &Command::Cancel, strict, true),
            (Permission::Write, true, &Command::Retry, strict, false),
            (Permission::Read, false, &Command::Status, strict, false),
            (Permission::None, false, &Command::Help, strict, true),
            (Permission::None, true, &Command::Help, strict, true),
        ];
        for (role, fork, command, policy, allowed) in cases {
            let got = authorize(&policy, command, "ada", role, fork);
            assert_eq!(
                got.is_ok(),
                allowed,
                "{role} fork={fork} {command}: {got:?}"
            );
        }
        let read = AccessPolicy {
            min_permission: Permission::Read,
            allow_forks: false,
        };
        assert!(authorize(&read, &run, "ada", Permission::Read, false).is_ok());
    }

    #[test]
    fn refusals_are_polite_and_say_why() {
        let denied = authorize(
            &AccessPolicy::default(),
            &Command::Merge,
            "ada",
            Permission::Read,
            false,
        )
        .unwrap_err();
        assert_eq!(
            denied.to_string(),
            "sorry @ada, this needs write access to the repository (you have read); a \
             maintainer can run it for you"
        );
        assert!(Denied::Fork.to_string().contains("forks"));
    }
}
