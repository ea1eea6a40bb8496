//! The walk from TOML values (with spans) to the model.
//!
//! Every check records a problem and carries on with what it could read,
//! returning `None` for the part it could not; a part built from `None`s is
//! simply not built. Whether the file is valid is decided once, at the end,
//! by whether any problem was recorded, so no check needs to know what the
//! others found.

mod pipeline;
mod task;
mod values;

use std::fmt;

use toml_span::value::{Key, Table, Value};
use toml_span::{ErrorKind, Span};

use super::diag::{Diagnostic, Diagnostics, LineIndex};
use super::suggest::closest;
use super::{Config, DatasetPath};

const ROOT_KEYS: &[&str] = &["defaults", "pipelines"];
const DEFAULTS_KEYS: &[&str] = &[
    "image",
    "merge",
    "concurrency",
    "timeout",
    "retries",
    "task_timeout",
    "remote",
];
const PIPELINE_KEYS: &[&str] = &[
    "dataset",
    "schedule",
    "timezone",
    "catchup",
    "on_push",
    "merge",
    "concurrency",
    "timeout",
    "remote",
    "image",
    "tasks",
];
const ON_PUSH_KEYS: &[&str] = &["branches", "paths"];
const TASK_KEYS: &[&str] = &[
    "command",
    "needs",
    "env",
    "retries",
    "timeout",
    "image",
    "resources",
    "env_from",
    "node_selector",
    "tolerations",
    "service_account",
    "image_pull_secrets",
    "workdir",
];
const RESOURCES_KEYS: &[&str] = &["cpu", "memory", "gpu"];
const TOLERATION_KEYS: &[&str] = &["key", "operator", "value", "effect"];

/// Every table of the file and the keys it accepts, as the reference
/// (docs/configuration.md) names them; a test keeps the two equal.
pub(crate) const TABLES: &[(&str, &[&str])] = &[
    ("top level", ROOT_KEYS),
    ("[defaults]", DEFAULTS_KEYS),
    ("[pipelines.NAME]", PIPELINE_KEYS),
    ("on_push", ON_PUSH_KEYS),
    ("[pipelines.NAME.tasks.TASK]", TASK_KEYS),
    ("resources", RESOURCES_KEYS),
];

pub(crate) fn parse(source: &str, file: &str) -> Result<Config, Diagnostics> {
    let mut w = Walker {
        src: source,
        problems: Vec::new(),
        lines: None,
    };
    let config = match toml_span::parse(source) {
        Ok(root) => w.config(&root),
        Err(e) => {
            let message = w.syntax_message(&e);
            w.problem(e.span, message);
            None
        }
    };
    match (w.into_diagnostics(file), config) {
        (None, Some(config)) => Ok(config),
        (Some(diagnostics), _) => Err(diagnostics),
        // Every `None` comes with a recorded problem; this is a safety net.
        (None, None) => Err(Diagnostic::new(
            file,
            source,
            0..0,
            "internal error: the file was rejected without a reason",
        )
        .into()),
    }
}

struct Walker<'s> {
    src: &'s str,
    problems: Vec<(Span, String)>,
    /// Built on first need: valid files never pay for it.
    lines: Option<LineIndex>,
}

/// A dataset claimed by a pipeline, for the overlap check across pipelines.
struct Claim {
    pipeline: String,
    path: DatasetPath,
    span: Span,
}

impl Walker<'_> {
    fn problem(&mut self, span: Span, message: impl Into<String>) {
        self.problems.push((span, message.into()));
    }

    fn into_diagnostics(mut self, file: &str) -> Option<Diagnostics> {
        if self.problems.is_empty() {
            return None;
        }
        // Stable: problems at the same place keep the order they were found in.
        self.problems.sort_by_key(|(span, _)| span.start);
        let index = self
            .lines
            .take()
            .unwrap_or_else(|| LineIndex::new(self.src));
        let diagnostics = self
            .problems
            .into_iter()
            .map(|(span, message)| {
                Diagnostic::with_index(file, self.src, &index, span.start..span.end, message)
            })
            .collect();
        Diagnostics::from_vec(diagnostics)
    }

    fn line(&mut self, offset: usize) -> usize {
        let src = self.src;
        self.lines
            .get_or_insert_with(|| LineIndex::new(src))
            .line_number(offset)
    }

    fn syntax_message(&mut self, e: &toml_span::Error) -> String {
        match &e.kind {
            ErrorKind::DuplicateKey { key, first } => format!(
                "invalid TOML: duplicate key `{key}` (first defined on line {})",
                self.line(first.start)
            ),
            ErrorKind::DuplicateTable { first, .. } => {
                let header = self
                    .src
                    .get(e.span.start..e.span.end)
                    .unwrap_or("")
                    .trim()
                    .to_string();
                format!(
                    "invalid TOML: table {header} is defined twice (first on line {})",
                    self.line(first.start)
                )
            }
            _ => format!("invalid TOML: {e}"),
        }
    }

    // ----- spans -----------------------------------------------------------

    /// toml-span gives the inside of a quoted string; users think of the
    /// quotes as part of the value, so underline them too.
    fn widen_quotes(&self, span: Span) -> Span {
        let b = self.src.as_bytes();
        match (
            span.start.checked_sub(1).and_then(|i| b.get(i)),
            b.get(span.end),
        ) {
            (Some(&q @ (b'"' | b'\'')), Some(&q2)) if q == q2 => {
                Span::new(span.start - 1, span.end + 1)
            }
            _ => span,
        }
    }

    fn key_span(&self, key: &Key<'_>) -> Span {
        self.widen_quotes(key.span)
    }

    fn value_span(&self, value: &Value<'_>) -> Span {
        if value.as_str().is_some() {
            self.widen_quotes(value.span)
        } else {
            value.span
        }
    }

    /// Where "missing key" problems point: the `[header]` line that opened the
    /// table, or the table's key when it was written inline or with dotted keys.
    fn header_span(&self, key: &Key<'_>, table: &Value<'_>) -> Span {
        let start = table.span.start;
        if self.src.as_bytes().get(start) == Some(&b'[') && start <= key.span.start {
            let line_end = self.src[start..]
                .find('\n')
                .map_or(self.src.len(), |i| start + i);
            if key.span.end <= line_end {
                let end = self.src[start..line_end]
                    .rfind(']')
                    .map_or(line_end, |i| start + i + 1);
                return Span::new(start, end);
            }
        }
        self.key_span(key)
    }

    // ----- generic checks --------------------------------------------------

    /// Reports keys not in `known`, with a did-you-mean for near misses and
    /// `hint` for keys that belong somewhere else.
    fn unknown_keys(
        &mut self,
        table: &Table<'_>,
        known: &[&str],
        place: impl fmt::Display,
        hint: impl Fn(&str) -> Option<String>,
    ) {
        for key in table.keys() {
            let name = key.name.as_ref();
            if known.contains(&name) {
                continue;
            }
            let mut message = format!("unknown key `{name}` in {place}");
            if let Some(s) = closest(name, known.iter().copied()) {
                message.push_str(&format!(" (did you mean `{s}`?)"));
            } else if let Some(h) = hint(name) {
                message.push_str(&format!(" ({h})"));
            }
            let span = self.key_span(key);
            self.problem(span, message);
        }
    }

    fn wrong_type(&mut self, what: impl fmt::Display, expected: &str, value: &Value<'_>) {
        let span = self.value_span(value);
        self.problem(
            span,
            format!("`{what}`: expected {expected}, found {}", type_name(value)),
        );
    }

    // ----- the file ----------------------------------------------------------

    // ----- tasks -------------------------------------------------------------

    // ----- across pipelines --------------------------------------------------
}

/// Names a pipeline or task in messages, allocating only if a message is made.
#[derive(Clone, Copy)]
pub(super) enum Place<'a> {
    Pipeline(&'a str),
    Task(&'a str),
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Pipeline(name) => write!(f, "pipeline {name:?}"),
            Place::Task(name) => write!(f, "task {name:?}"),
        }
    }
}

/// With an article, as it reads in "expected a string, found an integer".
pub(super) fn type_name(value: &Value<'_>) -> &'static str {
    if value.as_str().is_some() {
        "a string"
    } else if value.as_integer().is_some() {
        "an integer"
    } else if value.as_float().is_some() {
        "a float"
    } else if value.as_bool().is_some() {
        "a boolean"
    } else if value.as_array().is_some() {
        "an array"
    } else if value.as_table().is_some() {
        "a table"
    } else {
        "a value"
    }
}
