//! The walk from TOML values (with spans) to the model.
//!
//! Every check records a problem and carries on with what it could read,
//! returning `None` for the part it could not; a part built from `None`s is
//! simply not built. Whether the file is valid is decided once, at the end,
//! by whether any problem was recorded, so no check needs to know what the
//! others found.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use toml_span::value::{Key, Table, Value};
use toml_span::{ErrorKind, Span};

use super::dag::{self, cycle_text, Dag, DagError};
use super::diag::{Diagnostic, Diagnostics, LineIndex};
use super::names::{check_env_name, normalise_relative};
use super::schedule::{compile_glob, parse_timezone, OnPush, Schedule};
use super::suggest::closest;
use super::{
    digest, kube, Catchup, Config, DatasetPath, Defaults, Pipeline, PipelineName, Resources, Task,
    TaskName, Toleration, UnknownVariant,
};

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

    fn table<'v, 'de>(
        &mut self,
        what: impl fmt::Display,
        value: &'v Value<'de>,
    ) -> Option<&'v Table<'de>> {
        let table = value.as_table();
        if table.is_none() {
            self.wrong_type(what, "a table", value);
        }
        table
    }

    fn string<'v>(&mut self, what: &str, value: &'v Value<'_>) -> Option<&'v str> {
        let s = value.as_str();
        if s.is_none() {
            self.wrong_type(what, "a string", value);
        }
        s
    }

    /// An optional string that, when present, must not be empty.
    fn opt_text(&mut self, table: &Table<'_>, key: &str) -> Option<String> {
        let value = table.get(key)?;
        let s = self.string(key, value)?;
        if s.trim().is_empty() {
            let span = self.value_span(value);
            self.problem(span, format!("`{key}` cannot be empty"));
            return None;
        }
        Some(s.to_string())
    }

    /// An optional string checked by `check`, whose error explains the rule.
    fn opt_checked(
        &mut self,
        table: &Table<'_>,
        key: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Option<String> {
        let value = table.get(key)?;
        let s = self.string(key, value)?;
        if let Err(e) = check(s) {
            let span = self.value_span(value);
            self.problem(span, format!("`{key}`: {e}"));
            return None;
        }
        Some(s.to_string())
    }

    fn opt_u32(&mut self, table: &Table<'_>, key: &str) -> Option<u32> {
        let value = table.get(key)?;
        let Some(n) = value.as_integer() else {
            self.wrong_type(key, "an integer", value);
            return None;
        };
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                let why = if n < 0 {
                    "cannot be negative"
                } else {
                    "is too large"
                };
                self.problem(value.span, format!("`{key}` {why}"));
                None
            }
        }
    }

    fn opt_duration(&mut self, table: &Table<'_>, key: &str) -> Option<Duration> {
        let value = table.get(key)?;
        let Some(s) = value.as_str() else {
            self.wrong_type(key, "a duration string such as \"30m\"", value);
            return None;
        };
        let span = self.value_span(value);
        match humantime::parse_duration(s) {
            Ok(d) if d.is_zero() => {
                self.problem(span, format!("`{key}` must be longer than zero"));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(
                    span,
                    format!("`{key}`: invalid duration {s:?}: {e} (examples: \"90s\", \"10m\", \"1h30m\")"),
                );
                None
            }
        }
    }

    fn opt_enum<T>(&mut self, table: &Table<'_>, key: &str) -> Option<T>
    where
        T: FromStr<Err = UnknownVariant>,
    {
        let value = table.get(key)?;
        let s = self.string(key, value)?;
        match s.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                let mut message = format!("`{key}`: {e}");
                if let Some(s) = closest(s, e.expected().iter().copied()) {
                    message.push_str(&format!("; did you mean {s:?}?"));
                }
                let span = self.value_span(value);
                self.problem(span, message);
                None
            }
        }
    }

    /// An optional array of strings, each with its span. `None` when absent
    /// or when anything in it is not a string.
    fn opt_strings(&mut self, table: &Table<'_>, key: &str) -> Option<Vec<(String, Span)>> {
        let value = table.get(key)?;
        self.strings(key, value)
    }

    fn strings(&mut self, what: &str, value: &Value<'_>) -> Option<Vec<(String, Span)>> {
        let Some(items) = value.as_array() else {
            self.wrong_type(what, "an array of strings", value);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match item.as_str() {
                Some(s) => out.push((s.to_string(), self.value_span(item))),
                None => {
                    self.wrong_type(what, "a string", item);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// An optional table of string values, with the span of each key and value.
    fn opt_string_map(
        &mut self,
        table: &Table<'_>,
        key: &str,
    ) -> Option<Vec<(String, Span, String, Span)>> {
        let value = table.get(key)?;
        let map = self.table(key, value)?;
        let mut out = Vec::with_capacity(map.len());
        let mut ok = true;
        for (k, v) in map {
            match v.as_str() {
                Some(s) => out.push((
                    k.name.to_string(),
                    self.key_span(k),
                    s.to_string(),
                    self.value_span(v),
                )),
                None => {
                    self.wrong_type(format_args!("{key}.{}", k.name), "a string", v);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    // ----- the file ----------------------------------------------------------

    fn config(&mut self, root: &Value<'_>) -> Option<Config> {
        let table = self.table("(file)", root)?;
        self.unknown_keys(table, ROOT_KEYS, "the file", |_| None);
        let defaults = match table.get("defaults") {
            Some(v) => self.defaults(v),
            None => Some(Defaults::default()),
        };
        // Pipelines are checked against the defaults even when those are
        // broken, so that their own problems are still all reported.
        let fallback = Defaults::default();
        let effective = defaults.as_ref().unwrap_or(&fallback);

        let mut pipelines = BTreeMap::new();
        let mut claims = Vec::new();
        let mut complete = true;
        if let Some(value) = table.get("pipelines") {
            let entries = self.table("pipelines", value)?;
            for (key, value) in entries {
                match self.pipeline(key, value, effective, &mut claims) {
                    Some(p) => {
                        pipelines.insert(p.name.clone(), p);
                    }
                    None => complete = false,
                }
            }
        }
        self.check_overlaps(claims);
        Some(Config {
            defaults: defaults?,
            pipelines,
        })
        .filter(|_| complete)
    }

    fn defaults(&mut self, value: &Value<'_>) -> Option<Defaults> {
        let table = self.table("defaults", value)?;
        let before = self.problems.len();
        self.unknown_keys(table, DEFAULTS_KEYS, "[defaults]", |_| None);
        let d = Defaults {
            image: self.opt_text(table, "image"),
            merge: self.opt_enum(table, "merge").unwrap_or_default(),
            concurrency: self.opt_enum(table, "concurrency").unwrap_or_default(),
            timeout: self.opt_duration(table, "timeout"),
            retries: self.opt_u32(table, "retries").unwrap_or(0),
            task_timeout: self.opt_duration(table, "task_timeout"),
            remote: self.opt_text(table, "remote"),
        };
        (self.problems.len() == before).then_some(d)
    }

    fn pipeline(
        &mut self,
        key: &Key<'_>,
        value: &Value<'_>,
        defaults: &Defaults,
        claims: &mut Vec<Claim>,
    ) -> Option<Pipeline> {
        let before = self.problems.len();
        let raw_name = key.name.as_ref();
        let name = match PipelineName::new(raw_name) {
            Ok(n) => Some(n),
            Err(e) => {
                let span = self.key_span(key);
                self.problem(span, format!("invalid pipeline name {raw_name:?}: {e}"));
                None
            }
        };
        let table = self.table(format_args!("pipelines.{raw_name}"), value)?;
        let place = Place::Pipeline(raw_name);
        self.unknown_keys(table, PIPELINE_KEYS, place, |k| {
            TASK_KEYS.contains(&k).then(|| {
                format!("`{k}` is a task key: put it under [pipelines.{raw_name}.tasks.<task>]")
            })
        });

        let dataset = match table.get("dataset") {
            None => {
                let head = self.header_span(key, value);
                self.problem(head, format!("{place} is missing required key `dataset`"));
                None
            }
            Some(v) => self
                .string("dataset", v)
                .and_then(|s| match DatasetPath::new(s) {
                    Ok(path) => {
                        claims.push(Claim {
                            pipeline: raw_name.to_string(),
                            path: path.clone(),
                            span: self.value_span(v),
                        });
                        Some(path)
                    }
                    Err(e) => {
                        let span = self.value_span(v);
                        self.problem(span, format!("`dataset`: invalid path {s:?}: {e}"));
                        None
                    }
                }),
        };
        let schedule = self.schedule(table);
        let catchup = self.catchup(table);
        let on_push = match table.get("on_push") {
            Some(v) => self.on_push(v),
            None => None,
        };
        let merge = self.opt_enum(table, "merge").unwrap_or(defaults.merge);
        let concurrency = self
            .opt_enum(table, "concurrency")
            .unwrap_or(defaults.concurrency);
        let timeout = self.opt_duration(table, "timeout").or(defaults.timeout);
        let remote = self
            .opt_text(table, "remote")
            .or_else(|| defaults.remote.clone());
        let image = self
            .opt_text(table, "image")
            .or_else(|| defaults.image.clone());
        let tasks = match table.get_key_value("tasks") {
            None => {
                let head = self.header_span(key, value);
                self.problem(head, format!("{place} is missing required key `tasks`"));
                None
            }
            Some((tasks_key, v)) => self.tasks(raw_name, tasks_key, v, defaults),
        };

        if self.problems.len() != before {
            return None;
        }
        let mut pipeline = Pipeline {
            name: name?,
            dataset: dataset?,
            schedule,
            catchup,
            on_push,
            merge,
            concurrency,
            timeout,
            remote,
            image,
            tasks: tasks?,
            digest: String::new(),
        };
        pipeline.digest = digest::pipeline_digest(&pipeline);
        Some(pipeline)
    }

    fn schedule(&mut self, table: &Table<'_>) -> Option<Schedule> {
        let expr = table
            .get("schedule")
            .and_then(|v| Some((self.string("schedule", v)?, v)));
        let tz = match table.get_key_value("timezone") {
            None => Some(Tz::UTC),
            Some((key, v)) => {
                if !table.contains_key("schedule") {
                    let span = self.key_span(key);
                    self.problem(
                        span,
                        "`timezone` is set but there is no `schedule` for it to apply to",
                    );
                }
                self.string("timezone", v)
                    .and_then(|name| match parse_timezone(name) {
                        Ok(tz) => Some(tz),
                        Err(e) => {
                            let span = self.value_span(v);
                            self.problem(span, format!("`timezone`: {e}"));
                            None
                        }
                    })
            }
        };
        let (expr, value) = expr?;
        // Checked even when the timezone is wrong: both problems get reported.
        match Schedule::new(expr, tz.unwrap_or(Tz::UTC)) {
            Ok(s) => tz.map(|_| s),
            Err(e) => {
                let span = self.value_span(value);
                self.problem(span, format!("`schedule`: {e}"));
                None
            }
        }
    }

    /// `catchup` only means something next to a `schedule`.
    fn catchup(&mut self, table: &Table<'_>) -> Catchup {
        if let Some((key, _)) = table.get_key_value("catchup") {
            if !table.contains_key("schedule") {
                let span = self.key_span(key);
                self.problem(
                    span,
                    "`catchup` is set but there is no `schedule` for it to apply to",
                );
            }
        }
        self.opt_enum(table, "catchup").unwrap_or_default()
    }

    fn on_push(&mut self, value: &Value<'_>) -> Option<OnPush> {
        let table = self.table("on_push", value)?;
        self.unknown_keys(table, ON_PUSH_KEYS, "`on_push`", |_| None);
        let branches = self.globs(table, "branches", |b| {
            b.starts_with("refs/")
                .then(|| "write a branch name such as \"main\", not a ref".to_string())
        });
        let paths = self.globs(table, "paths", |p| {
            p.starts_with('/').then(|| {
                "paths are relative to the repository root: drop the leading '/'".to_string()
            })
        });
        Some(OnPush::from_globs(branches?, paths?))
    }

    /// `on_push.<key>`: absent means the default (empty); an explicit empty
    /// list is refused because it reads as "never".
    fn globs(
        &mut self,
        table: &Table<'_>,
        key: &str,
        extra: impl Fn(&str) -> Option<String>,
    ) -> Option<Vec<globset::Glob>> {
        let Some(value) = table.get(key) else {
            return Some(Vec::new());
        };
        let what = format!("on_push.{key}");
        let items = self.strings(&what, value)?;
        if items.is_empty() {
            let meaning = if key == "branches" {
                "the default branch"
            } else {
                "any path"
            };
            self.problem(
                value.span,
                format!("`{what}` is empty: leave it out to mean {meaning}"),
            );
            return None;
        }
        let mut globs = Vec::with_capacity(items.len());
        let mut ok = true;
        for (pattern, span) in items {
            let result = match extra(&pattern) {
                Some(e) => Err(e),
                None => {
                    compile_glob(&pattern).map_err(|e| format!("invalid glob {pattern:?}: {e}"))
                }
            };
            match result {
                Ok(g) => globs.push(g),
                Err(e) => {
                    self.problem(span, format!("`{what}`: {e}"));
                    ok = false;
                }
            }
        }
        ok.then_some(globs)
    }

    // ----- tasks -------------------------------------------------------------

    fn tasks(
        &mut self,
        pipeline: &str,
        key: &Key<'_>,
        value: &Value<'_>,
        defaults: &Defaults,
    ) -> Option<Dag> {
        let table = self.table("tasks", value)?;
        if table.is_empty() {
            let span = self.key_span(key);
            self.problem(span, format!("pipeline {pipeline:?} has no tasks"));
            return None;
        }
        let before = self.problems.len();
        // Names in BTreeMap order, which is what the graph code expects.
        let names: Vec<&str> = table.keys().map(|k| k.name.as_ref()).collect();
        let mut edges = Vec::with_capacity(names.len());
        let mut edge_spans: HashMap<(usize, usize), Span> = HashMap::new();
        let mut tasks = Vec::with_capacity(names.len());
        for (i, (key, value)) in table.iter().enumerate() {
            let (task, needs) = self.task(key, value, defaults);
            tasks.extend(task);
            let mut out = Vec::with_capacity(needs.len());
            for (need, span) in needs {
                match names.binary_search(&need.as_str()) {
                    Ok(j) if out.contains(&j) => {
                        self.problem(
                            span,
                            format!("task {:?} needs {need:?} more than once", names[i]),
                        );
                    }
                    Ok(j) => {
                        out.push(j);
                        edge_spans.insert((i, j), span);
                    }
                    Err(_) => {
                        let mut message =
                            format!("task {:?} needs unknown task {need:?}", names[i]);
                        if let Some(s) =
                            closest(&need, names.iter().copied().filter(|n| *n != names[i]))
                        {
                            message.push_str(&format!(" (did you mean {s:?}?)"));
                        }
                        self.problem(span, message);
                    }
                }
            }
            edges.push(out);
        }
        // On the happy path Dag::new is the only graph check; the full cycle
        // report (all cycles, with spans) runs only when something is wrong.
        if self.problems.len() == before {
            match Dag::new(tasks) {
                Ok(dag) => return Some(dag),
                Err(DagError::Cycle(_)) => {}
                Err(e) => {
                    // The walker checked everything else Dag::new checks; kept
                    // so a disagreement shows up as a message, not a panic.
                    let span = self.key_span(key);
                    self.problem(span, e.to_string());
                    return None;
                }
            }
        }
        for cycle in dag::cycles(&edges) {
            let Some(&first) = cycle.first() else {
                continue;
            };
            let second = cycle.get(1).copied().unwrap_or(first);
            let path = cycle_text(cycle.iter().chain([&first]).map(|&i| names[i]));
            let mut message = format!("dependency cycle: {path}");
            if cycle.len() == 1 {
                message.push_str(" (a task cannot need itself)");
            }
            let span = edge_spans
                .get(&(first, second))
                .copied()
                .unwrap_or(key.span);
            self.problem(span, message);
        }
        None
    }

    /// The task (if entirely valid) and its `needs` entries (whatever could
    /// be read), which are resolved by the caller who knows all task names.
    fn task(
        &mut self,
        key: &Key<'_>,
        value: &Value<'_>,
        defaults: &Defaults,
    ) -> (Option<Task>, Vec<(String, Span)>) {
        let before = self.problems.len();
        let raw_name = key.name.as_ref();
        let name = match TaskName::new(raw_name) {
            Ok(n) => Some(n),
            Err(e) => {
                let span = self.key_span(key);
                self.problem(span, format!("invalid task name {raw_name:?}: {e}"));
                None
            }
        };
        let Some(table) = self.table(format_args!("tasks.{raw_name}"), value) else {
            return (None, Vec::new());
        };
        let place = Place::Task(raw_name);
        self.unknown_keys(table, TASK_KEYS, place, |k| {
            PIPELINE_KEYS
                .contains(&k)
                .then(|| format!("`{k}` is a pipeline key, not a task key"))
        });

        let command = match table.get("command") {
            None => {
                let head = self.header_span(key, value);
                self.problem(head, format!("{place} is missing required key `command`"));
                None
            }
            Some(v) => self.command(v),
        };
        let needs = self.opt_strings(table, "needs").unwrap_or_default();
        let env = self.env(table);
        let retries = self.opt_u32(table, "retries").unwrap_or(defaults.retries);
        let timeout = self
            .opt_duration(table, "timeout")
            .or(defaults.task_timeout);
        let image = self.opt_text(table, "image");
        let resources = self.resources(table);
        let env_from = self.object_names(table, "env_from");
        let node_selector = self.node_selector(table);
        let tolerations = self.tolerations(table);
        let service_account = self.opt_checked(table, "service_account", kube::check_object_name);
        let image_pull_secrets = self.object_names(table, "image_pull_secrets");
        let workdir = self.workdir(table);

        if self.problems.len() != before {
            return (None, needs);
        }
        let (Some(name), Some(command)) = (name, command) else {
            return (None, needs);
        };
        let task = Task {
            name,
            command,
            // Valid task names only: anything else was reported as unknown.
            needs: needs
                .iter()
                .filter_map(|(n, _)| TaskName::new(n.as_str()).ok())
                .collect(),
            env,
            retries,
            timeout,
            image,
            resources,
            env_from,
            node_selector,
            tolerations,
            service_account,
            image_pull_secrets,
            workdir,
        };
        (Some(task), needs)
    }

    fn command(&mut self, value: &Value<'_>) -> Option<Vec<String>> {
        if value.as_str().is_some() {
            self.wrong_type(
                "command",
                "an array of strings such as [\"python3\", \"etl/run.py\"]",
                value,
            );
            return None;
        }
        let items = self.strings("command", value)?;
        match items.first() {
            None => {
                self.problem(value.span, "`command` cannot be empty");
                None
            }
            Some((program, span)) if program.trim().is_empty() => {
                self.problem(
                    *span,
                    "`command`: the program (first element) cannot be empty",
                );
                None
            }
            Some(_) => Some(items.into_iter().map(|(s, _)| s).collect()),
        }
    }

    fn env(&mut self, table: &Table<'_>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for (name, name_span, value, _) in self.opt_string_map(table, "env").unwrap_or_default() {
            match check_env_name(&name) {
                Ok(()) => {
                    env.insert(name, value);
                }
                Err(e) => self.problem(name_span, format!("`env`: {e}")),
            }
        }
        env
    }

    fn resources(&mut self, table: &Table<'_>) -> Resources {
        let Some(value) = table.get("resources") else {
            return Resources::default();
        };
        let Some(res) = self.table("resources", value) else {
            return Resources::default();
        };
        self.unknown_keys(res, RESOURCES_KEYS, "`resources`", |_| None);
        Resources {
            cpu: self.opt_checked(res, "cpu", kube::check_quantity),
            memory: self.opt_checked(res, "memory", kube::check_memory),
            gpu: self.opt_u32(res, "gpu"),
        }
    }

    fn object_names(&mut self, table: &Table<'_>, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (name, span) in self.opt_strings(table, key).unwrap_or_default() {
            match kube::check_object_name(&name) {
                Ok(()) => out.push(name),
                Err(e) => self.problem(span, format!("`{key}`: {e}")),
            }
        }
        out
    }

    fn node_selector(&mut self, table: &Table<'_>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let entries = self
            .opt_string_map(table, "node_selector")
            .unwrap_or_default();
        for (k, k_span, v, v_span) in entries {
            let key_ok = kube::check_label_key(&k)
                .map_err(|e| self.problem(k_span, format!("`node_selector`: {e}")));
            let value_ok = kube::check_label_value(&v)
                .map_err(|e| self.problem(v_span, format!("`node_selector`: {e}")));
            if key_ok.is_ok() && value_ok.is_ok() {
                out.insert(k, v);
            }
        }
        out
    }

    fn tolerations(&mut self, table: &Table<'_>) -> Vec<Toleration> {
        let Some(value) = table.get("tolerations") else {
            return Vec::new();
        };
        let Some(items) = value.as_array() else {
            self.wrong_type("tolerations", "an array of tables", value);
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let Some(t) = self.table("tolerations", item) else {
                continue;
            };
            self.unknown_keys(t, TOLERATION_KEYS, "a toleration", |_| None);
            let toleration = Toleration {
                key: self.opt_checked(t, "key", kube::check_label_key),
                operator: self.opt_checked(t, "operator", kube::check_toleration_operator),
                value: self.opt_checked(t, "value", kube::check_label_value),
                effect: self.opt_checked(t, "effect", kube::check_taint_effect),
            };
            let span = self.value_span(item);
            match kube::check_toleration(
                toleration.key.as_deref(),
                toleration.operator.as_deref(),
                toleration.value.as_deref(),
            ) {
                Ok(()) => out.push(toleration),
                Err(e) => self.problem(span, format!("`tolerations`: {e}")),
            }
        }
        out
    }

    fn workdir(&mut self, table: &Table<'_>) -> Option<String> {
        let value = table.get("workdir")?;
        let s = self.string("workdir", value)?;
        match normalise_relative(s) {
            Ok(p) if p.is_empty() => None,
            Ok(p) => Some(p),
            Err(e) => {
                let span = self.value_span(value);
                self.problem(span, format!("`workdir`: invalid path {s:?}: {e} (it is relative to the run's workspace)"));
                None
            }
        }
    }

    // ----- across pipelines --------------------------------------------------

    /// Two pipelines may not write the same dataset, nor one inside the other:
    /// their `.dvc` pointers and `.gitignore` entries would fight. Reported on
    /// the later one in the file, naming the earlier.
    fn check_overlaps(&mut self, mut claims: Vec<Claim>) {
        claims.sort_by_key(|c| c.span.start);
        let mut exact: HashMap<&str, usize> = HashMap::new();
        let mut below: HashMap<&str, usize> = HashMap::new();
        // (later claim, earlier claim, message, whether pointers overlap)
        let mut found = Vec::new();
        for (i, claim) in claims.iter().enumerate() {
            let path = claim.path.as_str();
            if let Some(&j) = exact.get(path) {
                let first = &claims[j].pipeline;
                found.push((
                    i,
                    j,
                    format!("dataset {path:?} is already tracked by pipeline {first:?}"),
                    false,
                ));
            } else if let Some((dir, j)) = claim
                .path
                .ancestors()
                .find_map(|a| exact.get(a).map(|&j| (a, j)))
            {
                let first = &claims[j].pipeline;
                found.push((
                    i,
                    j,
                    format!("dataset {path:?} is inside dataset {dir:?} of pipeline {first:?}"),
                    true,
                ));
            } else if let Some(&j) = below.get(path) {
                let (inner, first) = (claims[j].path.as_str(), &claims[j].pipeline);
                found.push((
                    i,
                    j,
                    format!("dataset {path:?} contains dataset {inner:?} of pipeline {first:?}"),
                    true,
                ));
            }
            exact.entry(path).or_insert(i);
            for dir in claim.path.ancestors() {
                below.entry(dir).or_insert(i);
            }
        }
        for (i, j, message, nested) in found {
            let line = self.line(claims[j].span.start);
            let tail = if nested {
                "; their .dvc pointers would overlap"
            } else {
                ""
            };
            self.problem(claims[i].span, format!("{message} (line {line}){tail}"));
        }
    }
}

/// Names a pipeline or task in messages, allocating only if a message is made.
#[derive(Clone, Copy)]
enum Place<'a> {
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
fn type_name(value: &Value<'_>) -> &'static str {
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
