//! The names and labels of a run's Kubernetes objects: valid, and distinct
//! for distinct inputs.

use crate::k8s::crd::LABEL_RUN;

/// A Kubernetes name (and label value) from `parts`: lowercased, `_` turned
/// into `-`, at most 63 characters. When that changed the text, or it was
/// too long, an 8-hex digest of the original keeps distinct inputs distinct
/// (`A_b` and `a-b` would otherwise share a pod name).
pub fn object_name(parts: &[&str]) -> String {
    let joined = parts.join("-");
    let clean: String = joined
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            _ => '-',
        })
        .collect();
    if clean == joined && clean.len() <= 63 {
        return clean;
    }
    let hex = &crate::dvc::Md5::of_bytes(joined.as_bytes()).to_hex()[..8];
    let keep = clean.len().min(63 - 9);
    let head = clean[..keep].trim_end_matches(['-', '.']);
    format!("{head}-{hex}")
}

/// The name of the pod of `attempt` of `step` in run `run`.
pub fn pod_name(run: &str, step: &str, attempt: u32) -> String {
    object_name(&[run, step, &attempt.to_string()])
}

/// The label value naming a run (run names may be longer than a label allows).
pub fn run_label(run: &str) -> String {
    object_name(&[run])
}

/// The per-run claim's name, when the workspace is a claim per run.
pub fn run_claim_name(run: &str) -> String {
    object_name(&[run, "workspace"])
}

/// The label selector matching every pod of `run`.
pub fn run_selector(run: &str) -> String {
    format!("{LABEL_RUN}={}", run_label(run))
}
