//! The walk over the file's top level: `[defaults]`, each `[pipelines.NAME]`
//! with its schedule and `on_push` trigger, and the datasets' overlap check.

use std::collections::{BTreeMap, HashMap};

use chrono_tz::Tz;
use toml_span::value::{Key, Table, Value};

use super::{
    Claim, Place, Walker, DEFAULTS_KEYS, ON_PUSH_KEYS, PIPELINE_KEYS, ROOT_KEYS, TASK_KEYS,
};
use crate::config::schedule::{compile_glob, parse_timezone, OnPush, Schedule};
use crate::config::{digest, Catchup, Config, DatasetPath, Defaults, Pipeline, PipelineName};

impl Walker<'_> {
    pub(super) fn config(&mut self, root: &Value<'_>) -> Option<Config> {
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

    pub(super) fn defaults(&mut self, value: &Value<'_>) -> Option<Defaults> {
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

    pub(super) fn pipeline(
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

    pub(super) fn schedule(&mut self, table: &Table<'_>) -> Option<Schedule> {
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
    pub(super) fn catchup(&mut self, table: &Table<'_>) -> Catchup {
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

    pub(super) fn on_push(&mut self, value: &Value<'_>) -> Option<OnPush> {
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
