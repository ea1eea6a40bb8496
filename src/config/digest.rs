//! A stable fingerprint of a pipeline's effective definition.
//!
//! It must not change between builds or Rust versions (so no `Hash`/
//! `DefaultHasher`), nor when unrelated parts of the file move around, nor
//! when cairn later learns a new optional field that a pipeline doesn't use.
//! Hence: an explicit, tagged, length-prefixed encoding in which absent
//! values are simply left out, hashed with md5 (already a dependency for
//! DVC; collisions are not an attack surface here).

use crate::dvc::Md5Hasher;

use super::{Pipeline, Task};

/// Bumped only if the encoding itself changes meaning.
const VERSION: &str = "cairn-pipeline-digest-v1";

struct Encoder(Md5Hasher);

impl Encoder {
    fn field(&mut self, tag: &str, value: &str) {
        for part in [tag, value] {
            self.0.update((part.len() as u64).to_le_bytes());
            self.0.update(part.as_bytes());
        }
    }

    fn opt(&mut self, tag: &str, value: Option<impl ToString>) {
        if let Some(v) = value {
            self.field(tag, &v.to_string());
        }
    }
}

/// Hex digest of `p` (which must already have defaults applied). The name
/// is left out: it is the pipeline's identity, not part of what it does.
pub(crate) fn pipeline_digest(p: &Pipeline) -> String {
    let mut e = Encoder(Md5Hasher::new());
    e.field("version", VERSION);
    e.field("dataset", p.dataset.as_str());
    if let Some(s) = &p.schedule {
        e.field("schedule", s.expr());
        e.field("timezone", s.timezone().name());
        // Only when not the default, so that digests written before the key
        // existed stay the same.
        if p.catchup != super::Catchup::default() {
            e.field("catchup", p.catchup.as_str());
        }
    }
    if let Some(on_push) = &p.on_push {
        e.field("on_push", "");
        for b in on_push.branches() {
            e.field("branch", b);
        }
        for path in on_push.paths() {
            e.field("path", path);
        }
    }
    e.field("merge", p.merge.as_str());
    e.field("concurrency", p.concurrency.as_str());
    e.opt("timeout", p.timeout.map(|d| d.as_millis()));
    e.opt("remote", p.remote.as_deref());
    e.opt("image", p.image.as_deref());
    for task in p.tasks.iter() {
        task_fields(&mut e, task);
    }
    // Md5::to_hex: lowercase, without a `format!` per byte (this runs once
    // per pipeline on every validation).
    e.0.finalize().to_hex()
}

fn task_fields(e: &mut Encoder, t: &Task) {
    e.field("task", t.name.as_str());
    for arg in &t.command {
        e.field("arg", arg);
    }
    for need in &t.needs {
        e.field("need", need.as_str());
    }
    for (k, v) in &t.env {
        e.field("env", k);
        e.field("=", v);
    }
    e.field("retries", &t.retries.to_string());
    e.opt("task_timeout", t.timeout.map(|d| d.as_millis()));
    e.opt("task_image", t.image.as_deref());
    e.opt("cpu", t.resources.cpu.as_deref());
    e.opt("memory", t.resources.memory.as_deref());
    e.opt("gpu", t.resources.gpu);
    for s in &t.env_from {
        e.field("env_from", s);
    }
    for (k, v) in &t.node_selector {
        e.field("node_selector", k);
        e.field("=", v);
    }
    for t in &t.tolerations {
        e.opt("toleration_key", t.key.as_deref());
        e.opt("operator", t.operator.as_deref());
        e.opt("value", t.value.as_deref());
        e.opt("effect", t.effect.as_deref());
    }
    e.opt("service_account", t.service_account.as_deref());
    for s in &t.image_pull_secrets {
        e.field("image_pull_secret", s);
    }
    e.opt("workdir", t.workdir.as_deref());
    e.field("end_task", "");
}

#[cfg(test)]
#[test]
fn hex_is_lowercase_md5() {
    assert_eq!(
        Md5Hasher::new().finalize().to_hex(),
        "d41d8cd98f00b204e9800998ecf8427e"
    );
}
