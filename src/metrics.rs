//! The service's Prometheus metrics, as one typed struct.
//!
//! Every metric is a field of [`Metrics`] and is moved through a method named
//! after what happened (`delivery`, `run_finished`, `github_call`, ...), so a
//! caller cannot misspell a metric or a label name, and [`Metrics::encode`]
//! renders the Prometheus text exposition format (`text/plain;
//! version=0.0.4`, [`CONTENT_TYPE`]) for `/metrics`.
//!
//! Label values are bounded, because every distinct value is a time series
//! kept for the life of the process:
//! - `event` is a known GitHub event name or `other` ([`event_label`]): the
//!   header is sent by whoever calls `/webhook`, signed or not;
//! - `result` is a [`DeliveryResult`], `status` a [`GithubStatus`];
//! - `pipeline`, `task` and `outcome` come from `pipelines.toml` and from the
//!   run state machine, which are bounded by the configuration.
//!
//! The hot path (one delivery) allocates nothing: its labels are
//! `&'static str`.

use std::fmt::{self, Write as _};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the run and task duration buckets: from a quick
/// local task to a two-hour batch job.
const DURATION_BUCKETS: [f64; 14] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];

/// What the intake answered to one delivery: the `result` label of
/// `cairn_webhook_deliveries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryResult {
    /// Accepted and handed to the service (202).
    Queued,
    /// Well-signed and well-formed, but nothing for cairn to do (200).
    Ignored,
    /// A `ping` (200).
    Pong,
    /// A delivery id already handled (200).
    Duplicate,
    /// Missing or wrong `X-Hub-Signature-256` (401).
    Unauthorized,
    /// Over the body limit (413).
    TooLarge,
    /// Not `application/json` (400 for form-encoded, 415 otherwise).
    BadContentType,
    /// Bad delivery id, event name or payload (400).
    BadRequest,
    /// The body did not arrive in time (408).
    Timeout,
    /// The service's queue was full (503, not marked seen).
    QueueFull,
    /// The service is stopping (503, not marked seen).
    ShuttingDown,
}

impl DeliveryResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryResult::Queued => "queued",
            DeliveryResult::Ignored => "ignored",
            DeliveryResult::Pong => "pong",
            DeliveryResult::Duplicate => "duplicate",
            DeliveryResult::Unauthorized => "unauthorized",
            DeliveryResult::TooLarge => "too_large",
            DeliveryResult::BadContentType => "bad_content_type",
            DeliveryResult::BadRequest => "bad_request",
            DeliveryResult::Timeout => "timeout",
            DeliveryResult::QueueFull => "queue_full",
            DeliveryResult::ShuttingDown => "shutting_down",
        }
    }
}

impl fmt::Display for DeliveryResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `status` label of `cairn_github_api_calls_total`: the HTTP status of
/// the answer, or `error` when there was none (connection, TLS, timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GithubStatus {
    Http(u16),
    TransportError,
}

impl EncodeLabelValue for GithubStatus {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        match self {
            GithubStatus::Http(code) => write!(encoder, "{code}"),
            GithubStatus::TransportError => encoder.write_str("error"),
        }
    }
}

/// GitHub webhook event names (those of GitHub's documentation and of the
/// `@octokit/webhooks-examples` payloads), sorted for binary search.
const KNOWN_EVENTS: &[&str] = &[
    "branch_protection_configuration",
    "branch_protection_rule",
    "cache_sync",
    "check_run",
    "check_suite",
    "code_scanning_alert",
    "commit_comment",
    "content_reference",
    "create",
    "custom_property",
    "custom_property_values",
    "delete",
    "dependabot_alert",
    "deploy_key",
    "deployment",
    "deployment_protection_rule",
    "deployment_review",
    "deployment_status",
    "discussion",
    "discussion_comment",
    "enterprise",
    "fork",
    "github_app_authorization",
    "gollum",
    "installation",
    "installation_repositories",
    "installation_target",
    "issue_comment",
    "issues",
    "label",
    "marketplace_purchase",
    "member",
    "membership",
    "merge_group",
    "meta",
    "milestone",
    "org_block",
    "organization",
    "package",
    "page_build",
    "personal_access_token_request",
    "ping",
    "project",
    "project_card",
    "project_column",
    "projects_v2",
    "projects_v2_item",
    "projects_v2_status_update",
    "public",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_review_thread",
    "push",
    "registry_package",
    "release",
    "repository",
    "repository_advisory",
    "repository_dispatch",
    "repository_import",
    "repository_ruleset",
    "repository_vulnerability_alert",
    "secret_scanning_alert",
    "secret_scanning_alert_location",
    "secret_scanning_scan",
    "security_advisory",
    "security_and_analysis",
    "sponsorship",
    "star",
    "status",
    "sub_issues",
    "team",
    "team_add",
    "user",
    "watch",
    "workflow_dispatch",
    "workflow_job",
    "workflow_run",
];

/// The `event` label for an `X-GitHub-Event` value: the name itself when it
/// is a GitHub event name, `other` otherwise (and `none` for an absent
/// header), so that no sender can create new time series at will.
pub fn event_label(name: &str) -> &'static str {
    if name.is_empty() {
        return "none";
    }
    match KNOWN_EVENTS.binary_search(&name) {
        Ok(i) => KNOWN_EVENTS[i],
        Err(_) => "other",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DeliveryLabels {
    event: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RunLabels {
    pipeline: String,
    outcome: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PipelineLabels {
    pipeline: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ScheduleLabels {
    repository: String,
    pipeline: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TaskLabels {
    pipeline: String,
    task: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabels {
    status: GithubStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Every metric the service exports. Share it behind an `Arc`; every method
/// takes `&self` and is cheap (atomic updates behind a read lock).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    deliveries: Family<DeliveryLabels, Counter>,
    runs: Family<RunLabels, Counter>,
    run_duration: HistogramFamily<PipelineLabels>,
    task_duration: HistogramFamily<TaskLabels>,
    github_calls: Family<StatusLabels, Counter>,
    bytes_uploaded: Family<PipelineLabels, Counter>,
    queue_depth: Gauge,
    next_fire: Family<ScheduleLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric, all under the `cairn_` prefix, and sets
    /// `cairn_build_info{version}` to 1.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cairn");
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries received, by event and by what was answered",
            deliveries.clone(),
        );
        let runs = Family::<RunLabels, Counter>::default();
        registry.register("runs", "Pipeline runs finished, by outcome", runs.clone());
        let run_duration: HistogramFamily<PipelineLabels> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "run_duration_seconds",
            "Wall time of finished pipeline runs",
            run_duration.clone(),
        );
        let task_duration: HistogramFamily<TaskLabels> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "task_duration_seconds",
            "Wall time of finished task attempts",
            task_duration.clone(),
        );
        let github_calls = Family::<StatusLabels, Counter>::default();
        registry.register(
            "github_api_calls",
            "GitHub API requests, by HTTP status (error: no answer)",
            github_calls.clone(),
        );
        let bytes_uploaded = Family::<PipelineLabels, Counter>::default();
        registry.register(
            "bytes_uploaded",
            "Bytes of dataset objects uploaded to the remote",
            bytes_uploaded.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Accepted events waiting for the service",
            queue_depth.clone(),
        );
        let next_fire = Family::<ScheduleLabels, Gauge>::default();
        registry.register(
            "schedule_next_fire_timestamp_seconds",
            "When each scheduled pipeline fires next (unix time)",
            next_fire.clone(),
        );
        let build_info = Family::<VersionLabels, Gauge>::default();
        registry.register(
            "build_info",
            "The running cairn's version (always 1)",
            build_info.clone(),
        );
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        Metrics {
            registry,
            deliveries,
            runs,
            run_duration,
            task_duration,
            github_calls,
            bytes_uploaded,
            queue_depth,
            next_fire,
        }
    }

    /// Counts one webhook delivery. `event` is the raw `X-GitHub-Event`
    /// value (empty when absent); it is bounded with [`event_label`].
    pub fn delivery(&self, event: &str, result: DeliveryResult) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                event: event_label(event),
                result: result.as_str(),
            })
            .inc();
    }

    /// Counts a finished run and records how long it took.
    pub fn run_finished(&self, pipeline: &str, outcome: &str, took: Duration) {
        self.runs
            .get_or_create(&RunLabels {
                pipeline: pipeline.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.run_duration
            .get_or_create(&PipelineLabels {
                pipeline: pipeline.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Records how long one task attempt took.
    pub fn task_finished(&self, pipeline: &str, task: &str, took: Duration) {
        self.task_duration
            .get_or_create(&TaskLabels {
                pipeline: pipeline.to_owned(),
                task: task.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts one GitHub API request that got an HTTP answer.
    pub fn github_call(&self, status: u16) {
        self.github_status(GithubStatus::Http(status));
    }

    /// Counts one GitHub API request that got no answer (`status="error"`).
    pub fn github_transport_error(&self) {
        self.github_status(GithubStatus::TransportError);
    }

    /// Counts one GitHub API request.
    pub fn github_status(&self, status: GithubStatus) {
        self.github_calls
            .get_or_create(&StatusLabels { status })
            .inc();
    }

    /// Adds uploaded bytes to a pipeline's total.
    pub fn bytes_uploaded(&self, pipeline: &str, bytes: u64) {
        self.bytes_uploaded
            .get_or_create(&PipelineLabels {
                pipeline: pipeline.to_owned(),
            })
            .inc_by(bytes);
    }

    /// Sets the number of accepted events waiting for the service.
    pub fn set_queue_depth(&self, depth: i64) {
        self.queue_depth.set(depth);
    }

    /// Sets when `pipeline` of `repository` fires next (unix seconds);
    /// `None` removes the series (no schedule, or the pipeline is gone).
    pub fn set_next_fire(&self, repository: &str, pipeline: &str, at: Option<i64>) {
        let labels = ScheduleLabels {
            repository: repository.to_owned(),
            pipeline: pipeline.to_owned(),
        };
        match at {
            Some(t) => {
                self.next_fire.get_or_create(&labels).set(t);
            }
            None => {
                self.next_fire.remove(&labels);
            }
        }
    }

    /// The Prometheus text exposition of every metric ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail; prometheus-client only returns
        // the `fmt::Error` of its writer.
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("encoding metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_events_are_sorted_and_unique() {
        assert!(KNOWN_EVENTS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn event_labels_are_bounded() {
        assert_eq!(event_label("push"), "push");
        assert_eq!(event_label("workflow_run"), "workflow_run");
        assert_eq!(event_label("Push"), "other");
        assert_eq!(event_label("x\ny"), "other");
        assert_eq!(event_label(""), "none");
    }

    #[test]
    fn every_metric_is_exported_with_its_labels() {
        let m = Metrics::new();
        m.delivery("push", DeliveryResult::Queued);
        m.delivery("push", DeliveryResult::Queued);
        m.delivery("made_up", DeliveryResult::Ignored);
        m.run_finished("attrition", "succeeded", Duration::from_millis(1500));
        m.task_finished("attrition", "extract", Duration::from_millis(200));
        m.github_call(201);
        m.github_transport_error();
        m.bytes_uploaded("attrition", 4096);
        m.set_queue_depth(3);
        m.set_next_fire("acme/data", "nightly", Some(1_764_208_800));
        m.set_next_fire("acme/data", "gone", Some(1));
        m.set_next_fire("acme/data", "gone", None);
        let text = m.encode();
        assert!(!text.contains("gone"), "{text}");
        for line in [
            "cairn_webhook_deliveries_total{event=\"push\",result=\"queued\"} 2",
            "cairn_webhook_deliveries_total{event=\"other\",result=\"ignored\"} 1",
            "cairn_runs_total{pipeline=\"attrition\",outcome=\"succeeded\"} 1",
            "cairn_run_duration_seconds_count{pipeline=\"attrition\"} 1",
            "cairn_run_duration_seconds_bucket{pipeline=\"attrition\",le=\"2.5\"} 1",
            "cairn_task_duration_seconds_sum{pipeline=\"attrition\",task=\"extract\"} 0.2",
            "cairn_github_api_calls_total{status=\"201\"} 1",
            "cairn_github_api_calls_total{status=\"error\"} 1",
            "cairn_bytes_uploaded_total{pipeline=\"attrition\"} 4096",
            "cairn_queue_depth 3",
            "cairn_schedule_next_fire_timestamp_seconds{repository=\"acme/data\",pipeline=\"nightly\"} 1764208800",
            &format!(
                "cairn_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
            "# TYPE cairn_webhook_deliveries_total counter",
            "# TYPE cairn_run_duration_seconds histogram",
            "# TYPE cairn_queue_depth gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in:\n{text}");
        }
    }

    /// docs/operations.md lists every metric, and no metric that is gone.
    /// The names are read from the `register` calls in this file (a family
    /// with no samples yet is not encoded at all, so `encode` cannot tell).
    #[test]
    fn every_metric_is_documented() {
        let doc = include_str!("../docs/operations.md");
        let source = include_str!("metrics.rs");
        let code = &source[..source.find("#[cfg(test)]").unwrap()];
        let registered: Vec<String> = code
            .split("registry.register(")
            .skip(1)
            .filter_map(|rest| rest.split('"').nth(1))
            .map(|name| format!("cairn_{name}"))
            .collect();
        assert!(registered.len() >= 8, "{registered:?}");
        for name in &registered {
            // Counters are exposed with `_total`; the doc uses that name.
            assert!(
                doc.contains(&format!("`{name}_total`")) || doc.contains(&format!("`{name}`")),
                "{name} is not documented in docs/operations.md"
            );
        }
        for row in doc.lines().filter(|l| l.starts_with("| `cairn_")) {
            let documented = row.split('`').nth(1).unwrap_or_default();
            assert!(
                registered
                    .iter()
                    .any(|n| documented == n || documented == format!("{n}_total")),
                "docs/operations.md lists {documented}, which is not registered"
            );
        }
    }
}
