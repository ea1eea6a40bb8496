//! The service's side of the run API (its HTTP edge is `crate::http::api`):
//! plain methods that list a pipeline's runs and start one on request.
//!
//! A run started on request goes through the pipeline's run slot like every
//! other trigger, so its `concurrency` policy applies.

use std::sync::Arc;

use super::runs::Job;
use super::slots::Submitted;
use super::Service;
use crate::github::Secret;
use crate::store::RunRecord;

/// Longest `reason` kept from a request.
const REASON_MAX: usize = 200;

/// A pipeline's runs in one served repository.
#[derive(Debug, Clone)]
pub struct PipelineRuns {
    pub repository: String,
    /// The run holding the pipeline's slot, and the one waiting for it.
    pub active: Option<String>,
    pub waiting: Option<String>,
    /// Newest first.
    pub runs: Vec<RunRecord>,
}

/// A run accepted on request, and what its slot did with it.
#[derive(Debug, Clone)]
pub struct Triggered {
    pub repository: String,
    pub pipeline: String,
    pub run_id: String,
    pub outcome: Submitted,
    /// The commit the run reads: the default branch's tip.
    pub commit: String,
    /// The run's page, when the service knows its public URL.
    pub url: Option<String>,
}

/// Why no run was started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    #[error(
        "no pipeline {name:?}{}{}",
        in_repository(repository),
        did_you_mean(hint)
    )]
    NoSuchPipeline {
        name: String,
        /// The repository the request named.
        repository: Option<String>,
        /// The closest pipeline name there is.
        hint: Option<String>,
    },
    #[error(
        "several repositories have a pipeline {name:?} ({}): name one with \"repository\"",
        repositories.join(", ")
    )]
    Ambiguous {
        name: String,
        repositories: Vec<String>,
    },
}

fn in_repository(repository: &Option<String>) -> String {
    repository
        .as_deref()
        .map(|r| format!(" in {r}"))
        .unwrap_or_default()
}

fn did_you_mean(hint: &Option<String>) -> String {
    hint.as_deref()
        .map(|n| format!(" (did you mean {n:?}?)"))
        .unwrap_or_default()
}

impl Service {
    /// The bearer token requests to start runs must carry; `None` disables
    /// starting runs on request.
    pub fn api_token(&self) -> Option<&Secret> {
        self.options.api_token.as_ref()
    }

    /// The newest `limit` runs of `pipeline` in every served repository that
    /// defines it or has runs of it, with its active and waiting run. Empty
    /// when no repository knows the pipeline. Blocking (the run store).
    pub fn pipeline_runs(&self, pipeline: &str, limit: usize) -> Vec<PipelineRuns> {
        let workers: Vec<_> = self.repos().values().cloned().collect();
        let mut out = Vec::new();
        for worker in workers {
            let runs = worker.store.runs(Some(pipeline), limit).unwrap_or_default();
            let known = worker
                .current()
                .is_some_and(|l| l.config.pipeline(pipeline).is_some());
            if runs.is_empty() && !known {
                continue;
            }
            let (active, waiting) = worker.runs.state(pipeline);
            out.push(PipelineRuns {
                repository: worker.host.name().to_string(),
                active,
                waiting,
                runs,
            });
        }
        out
    }

    /// Start a run of `pipeline` at the default branch's tip, in the one
    /// served repository that has it (`repository` picks one when several
    /// do); `reason` is recorded with the run. Blocking (the run store).
    pub fn trigger(
        &self,
        pipeline: &str,
        repository: Option<&str>,
        reason: Option<&str>,
    ) -> Result<Triggered, TriggerError> {
        let workers: Vec<_> = self.repos().values().cloned().collect();
        let candidates: Vec<_> = workers
            .into_iter()
            .filter(|w| repository.is_none_or(|r| r.eq_ignore_ascii_case(w.host.name())))
            .filter_map(|w| w.current().map(|l| (w, l)))
            .collect();
        let having: Vec<_> = candidates
            .iter()
            .filter(|(_, l)| l.config.pipeline(pipeline).is_some())
            .collect();
        let (worker, loaded) = match having.as_slice() {
            [one] => one,
            [] => {
                let names: Vec<String> = candidates
                    .iter()
                    .flat_map(|(_, l)| l.config.pipelines.keys().map(|k| k.as_str().to_string()))
                    .collect();
                return Err(TriggerError::NoSuchPipeline {
                    name: pipeline.to_string(),
                    repository: repository.map(str::to_string),
                    hint: crate::config::closest(pipeline, names.iter().map(String::as_str))
                        .map(str::to_string),
                });
            }
            many => {
                return Err(TriggerError::Ambiguous {
                    name: pipeline.to_string(),
                    repositories: many
                        .iter()
                        .map(|(w, _)| w.host.name().to_string())
                        .collect(),
                })
            }
        };
        let run_id = crate::reconciler::new_run_id(pipeline);
        let reason = match reason.map(str::trim) {
            Some(r) if !r.is_empty() => format!(
                "api: {}",
                crate::github::truncate_chars(&r.replace(['\n', '\r'], " "), REASON_MAX)
            ),
            _ => "api".to_string(),
        };
        let job = Job {
            tip: loaded.tip.clone(),
            config: Arc::clone(&loaded.config),
            pipeline: pipeline.to_string(),
            reason,
            attach: false,
        };
        let outcome = self.submit(worker, run_id.clone(), job);
        Ok(Triggered {
            repository: worker.host.name().to_string(),
            pipeline: pipeline.to_string(),
            url: self.run_url(&run_id),
            run_id,
            outcome,
            commit: loaded.tip.commit.clone(),
        })
    }
}
