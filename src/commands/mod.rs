//! Slash-commands in pull request and issue comments (pure): a comment's
//! text in, the commands it holds (or why a line is not one) out.
//!
//! A command is a line that starts with `/cairn`, one per line, so a comment
//! can hold several. What people quote or paste is not a command: lines in
//! fenced code blocks (```` ``` ```` or `~~~`), indented code blocks and
//! block quotes (`>`) are skipped, so quoting a previous command in a reply
//! never runs it again. Every problem comes back as a [`CommandError`] whose
//! `Display` is the answer a person reads, with a "did you mean" where a
//! command or pipeline name is off by a typo.
//!
//! Comments are written by anyone who can comment, so the parser bounds its
//! work: it looks at the first [`MAX_SCAN`] bytes of a comment, at most
//! [`MAX_COMMANDS`] commands, lines of at most [`MAX_LINE`] bytes and at most
//! [`MAX_PIPELINES`] pipelines per `run`. Whatever is beyond a bound is
//! reported, never silently acted on.

pub mod auth;

use std::fmt;

pub use auth::{authorize, AccessPolicy, Denied};

/// The word that starts every command line.
pub const PREFIX: &str = "/cairn";
/// Bytes of a comment looked at; GitHub caps comments at 65,536 characters,
/// so only hostile input goes beyond this.
pub const MAX_SCAN: usize = 64 * 1024;
/// Commands acted on per comment.
pub const MAX_COMMANDS: usize = 10;
/// Longest command line.
pub const MAX_LINE: usize = 1024;
/// Pipelines named by one `/cairn run`.
pub const MAX_PIPELINES: usize = 20;

/// The command words, in the order `help` lists them (and "did you mean"
/// prefers them).
pub const WORDS: &[&str] = &["run", "retry", "cancel", "merge", "status", "help"];

/// One command of a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Start these pipelines (deduplicated, in the order written).
    Run { pipelines: Vec<String> },
    /// Run again what failed (or was cancelled) last.
    Retry,
    /// Cancel the active and waiting runs.
    Cancel,
    /// Merge cairn's pull request now.
    Merge,
    /// Answer with the state of each pipeline.
    Status,
    /// Answer with the list of commands.
    Help,
}

impl Command {
    /// Whether the command starts runs (and so is refused on a fork's pull
    /// request unless forks are allowed).
    pub fn starts_runs(&self) -> bool {
        matches!(self, Command::Run { .. } | Command::Retry)
    }

    /// Whether anyone may use it (it only answers).
    pub fn is_harmless(&self) -> bool {
        matches!(self, Command::Help)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Run { pipelines } => write!(f, "{PREFIX} run {}", pipelines.join(" ")),
            Command::Retry => write!(f, "{PREFIX} retry"),
            Command::Cancel => write!(f, "{PREFIX} cancel"),
            Command::Merge => write!(f, "{PREFIX} merge"),
            Command::Status => write!(f, "{PREFIX} status"),
            Command::Help => write!(f, "{PREFIX} help"),
        }
    }
}

/// Why a `/cairn` line is not a command. `Display` is written for the person
/// who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("`{PREFIX}` needs a command: one of {}", list(WORDS))]
    Empty,
    #[error("unknown command `{word}`{}", hint(suggestion.as_deref(), WORDS))]
    UnknownCommand {
        word: String,
        suggestion: Option<String>,
    },
    #[error(
        "`{PREFIX} run` needs at least one pipeline: one of {}",
        list_owned(known)
    )]
    NoPipeline { known: Vec<String> },
    #[error("unknown pipeline `{name}`{}", pipeline_hint(suggestion.as_deref(), known))]
    UnknownPipeline {
        name: String,
        suggestion: Option<String>,
        known: Vec<String>,
    },
    #[error("`{PREFIX} {command}` takes no arguments (found `{found}`)")]
    UnexpectedArgument {
        command: &'static str,
        found: String,
    },
    #[error("`{PREFIX} run` takes at most {MAX_PIPELINES} pipelines")]
    TooManyPipelines,
    #[error("a command line is longer than {MAX_LINE} bytes; it was not read")]
    LineTooLong,
    #[error("only the first {MAX_COMMANDS} commands of a comment are acted on")]
    TooManyCommands,
    #[error("only the first {MAX_SCAN} bytes of a comment are read")]
    TooLong,
}

fn list(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_owned(words: &[String]) -> String {
    if words.is_empty() {
        return "(this repository declares none)".into();
    }
    list(&words.iter().map(String::as_str).collect::<Vec<_>>())
}

fn hint(suggestion: Option<&str>, words: &[&str]) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{PREFIX} {s}`?)"),
        None => format!("; the commands are {}", list(words)),
    }
}

fn pipeline_hint(suggestion: Option<&str>, known: &[String]) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => format!("; the pipelines are {}", list_owned(known)),
    }
}

/// The commands of a comment `body`, in order, given the repository's
/// pipeline names (for checking `run` and for "did you mean").
pub fn parse(body: &str, pipelines: &[&str]) -> Vec<Result<Command, CommandError>> {
    let mut out = Vec::new();
    let (text, cut) = if body.len() > MAX_SCAN {
        let mut end = MAX_SCAN;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        (&body[..end], true)
    } else {
        (body, false)
    };
    let mut fence: Option<(char, usize)> = None;
    let mut commands = 0;
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let trimmed = line.trim_start_matches([' ', '\t']);
        if let Some(marker) = fence_marker(trimmed) {
            match fence {
                None if indent < 4 => fence = Some(marker),
                // A closing fence is at least as long as the opening one and
                // carries no info string.
                Some((c, n))
                    if marker.0 == c
                        && marker.1 >= n
                        && trimmed.trim_start_matches(c).trim().is_empty() =>
                {
                    fence = None
                }
                _ => {}
            }
            continue;
        }
        if fence.is_some() || trimmed.starts_with('>') {
            continue;
        }
        // Four spaces (or a tab) of indentation is an indented code block.
        if line.starts_with('\t') || indent >= 4 {
            continue;
        }
        if !is_command_line(trimmed) {
            continue;
        }
        if commands == MAX_COMMANDS {
            out.push(Err(CommandError::TooManyCommands));
            return out;
        }
        commands += 1;
        if trimmed.len() > MAX_LINE {
            out.push(Err(CommandError::LineTooLong));
            continue;
        }
        out.push(parse_line(&trimmed[PREFIX.len()..], pipelines));
    }
    if cut {
        out.push(Err(CommandError::TooLong));
    }
    out
}

/// ```` ``` ```` or `~~~` (three or more) at the start of a line.
fn fence_marker(line: &str) -> Option<(char, usize)> {
    let c = line.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = line.chars().take_while(|x| *x == c).count();
    (n >= 3).then_some((c, n))
}

/// `/cairn` followed by whitespace or the end of the line (`/cairnx` is not
/// one). The prefix is matched case-insensitively, as people type it.
fn is_command_line(line: &str) -> bool {
    let Some(head) = line.get(..PREFIX.len()) else {
        return false;
    };
    head.eq_ignore_ascii_case(PREFIX)
        && line[PREFIX.len()..]
            .chars()
            .next()
            .is_none_or(char::is_whitespace)
}

fn parse_line(rest: &str, pipelines: &[&str]) -> Result<Command, CommandError> {
    let mut words = rest.split_whitespace();
    let Some(word) = words.next() else {
        return Err(CommandError::Empty);
    };
    let lower = word.to_ascii_lowercase();
    let args: Vec<&str> = words.collect();
    let simple = |command: &'static str, value: Command| match args.first() {
        None => Ok(value),
        Some(found) => Err(CommandError::UnexpectedArgument {
            command,
            found: clip(found),
        }),
    };
    match lower.as_str() {
        "run" => run(&args, pipelines),
        "retry" => simple("retry", Command::Retry),
        "cancel" => simple("cancel", Command::Cancel),
        "merge" => simple("merge", Command::Merge),
        "status" => simple("status", Command::Status),
        "help" => simple("help", Command::Help),
        _ => Err(CommandError::UnknownCommand {
            suggestion: crate::config::closest(&lower, WORDS.iter().copied()).map(str::to_owned),
            word: clip(word),
        }),
    }
}

fn run(args: &[&str], pipelines: &[&str]) -> Result<Command, CommandError> {
    let known = || pipelines.iter().map(|p| (*p).to_owned()).collect();
    if args.is_empty() {
        return Err(CommandError::NoPipeline { known: known() });
    }
    if args.len() > MAX_PIPELINES {
        return Err(CommandError::TooManyPipelines);
    }
    let mut chosen: Vec<String> = Vec::with_capacity(args.len());
    for name in args {
        if !pipelines.contains(name) {
            return Err(CommandError::UnknownPipeline {
                suggestion: crate::config::closest(name, pipelines.iter().copied())
                    .map(str::to_owned),
                name: clip(name),
                known: known(),
            });
        }
        if !chosen.iter().any(|c| c == name) {
            chosen.push((*name).to_owned());
        }
    }
    Ok(Command::Run { pipelines: chosen })
}

/// A word as echoed back in an answer: at most 64 characters, and without
/// backticks, so it cannot break out of the code span it is shown in.
fn clip(word: &str) -> String {
    word.chars().filter(|c| *c != '`').take(64).collect()
}

/// The answer to `/cairn help`.
pub fn help_text() -> String {
    format!(
        "Commands (one per line; code blocks and quotes are ignored):\n\n\
         - `{PREFIX} run PIPELINE [PIPELINE...]`: start these pipelines at the default branch's tip\n\
         - `{PREFIX} retry`: run again the pipelines whose last run failed or was cancelled\n\
         - `{PREFIX} cancel`: cancel the active and waiting runs (of this pull request's pipeline, on cairn's pull requests)\n\
         - `{PREFIX} merge`: merge this pull request of cairn's now, if GitHub allows it\n\
         - `{PREFIX} status`: the state of each pipeline\n\
         - `{PREFIX} help`: this list\n"
    )
}

#[cfg(test)]
mod tests;
