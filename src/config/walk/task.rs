//! The walk over a pipeline's `[tasks]`: each task's command, environment,
//! Kubernetes settings and `needs`, checked into a DAG.

use std::collections::{BTreeMap, HashMap};

use toml_span::value::{Key, Table, Value};
use toml_span::Span;

use super::{Place, Walker, PIPELINE_KEYS, RESOURCES_KEYS, TASK_KEYS, TOLERATION_KEYS};
use crate::config::dag::{self, cycle_text, Dag, DagError};
use crate::config::names::{check_env_name, normalise_relative};
use crate::config::suggest::closest;
use crate::config::{kube, Defaults, Resources, Task, TaskName, Toleration};

impl Walker<'_> {
    pub(super) fn tasks(
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
    pub(super) fn task(
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

    pub(super) fn command(&mut self, value: &Value<'_>) -> Option<Vec<String>> {
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

    pub(super) fn env(&mut self, table: &Table<'_>) -> BTreeMap<String, String> {
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

    pub(super) fn resources(&mut self, table: &Table<'_>) -> Resources {
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

    pub(super) fn node_selector(&mut self, table: &Table<'_>) -> BTreeMap<String, String> {
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

    pub(super) fn tolerations(&mut self, table: &Table<'_>) -> Vec<Toleration> {
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

    pub(super) fn workdir(&mut self, table: &Table<'_>) -> Option<String> {
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
}
