//! GitHub webhook payloads -> [`Event`], reading only what cairn acts on.
//!
//! The event type comes from the `X-GitHub-Event` header, not from the body.
//! Six types are understood (`ping`, `push`, `issue_comment`, `pull_request`,
//! and `check_suite` and `status`, whose completion may let an `auto` pull
//! request merge); every other one becomes [`Event::Other`], which the service
//! answers with "ignored", after checking that the body is at least
//! well-formed JSON.
//!
//! Parsing is serde straight from the raw bytes into small private "wire"
//! structs that name only the needed fields; serde skips the rest (GitHub's
//! payloads carry hundreds of fields, and add more over time: unknown fields
//! never fail). Fields GitHub may omit or send as `null` are `Option` or
//! defaulted; the ones cairn cannot act without are required, and their absence
//! is an [`EventError::Invalid`] naming the event and the JSON path. The path is
//! worked out by parsing a second time, only on that error path, so the common
//! path pays nothing for it.

mod model;
mod values;
mod wire;

use serde::de::IgnoredAny;
use serde::Deserialize;
use wire::{CheckSuiteWire, IssueCommentWire, PingWire, PullRequestWire, PushWire, StatusWire};

pub use model::{
    Actor, ChecksChanged, Commit, CommitAuthor, IssueComment, PullRequestEvent, Push, RepoRef,
};
pub use values::{AccountType, CommentAction, PullRequestAction};

/// The header that names the event type.
pub const EVENT_HEADER: &str = "X-GitHub-Event";

/// The commit trailer cairn writes into its own pointer commits
/// (`Cairn-Run: <run id>`), by which [`Push::is_by_cairn`] recognises them.
pub const CAIRN_RUN_TRAILER: &str = "Cairn-Run:";

/// The ref prefix of cairn's own branches (`cairn/<pipeline>`).
pub const CAIRN_BRANCH_REF_PREFIX: &str = "refs/heads/cairn/";

/// A push lists at most this many commits in some GitHub contexts; a push
/// listing this many or more may be missing some, see
/// [`Push::commits_may_be_truncated`].
pub const PUSH_COMMITS_LIMIT: usize = 20;

/// One webhook delivery, as far as cairn cares.
// A push is a few hundred bytes inline; an event is built once per delivery
// and consumed at once, so boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Sent once when a hook is created.
    Ping {
        zen: String,
        hook_id: Option<u64>,
    },
    Push(Push),
    IssueComment(IssueComment),
    PullRequest(PullRequestEvent),
    ChecksChanged(ChecksChanged),
    /// Any other event type: nothing to do.
    Other {
        name: String,
    },
}

impl Event {
    /// The `X-GitHub-Event` name this event was parsed from.
    pub fn name(&self) -> &str {
        match self {
            Event::Ping { .. } => "ping",
            Event::Push(_) => "push",
            Event::IssueComment(_) => "issue_comment",
            Event::PullRequest(_) => "pull_request",
            Event::ChecksChanged(c) => c.event,
            Event::Other { name } => name,
        }
    }
}

/// Why a payload could not be parsed. `Display` fits a 400 body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("missing X-GitHub-Event")]
    MissingEventName,
    /// The body is not one well-formed JSON value.
    #[error("{event} payload is not valid JSON: {reason}")]
    Malformed { event: String, reason: String },
    /// Valid JSON, but a field cairn needs is missing or has the wrong type.
    /// `path` is the JSON path of the offending value (`.` for the top level).
    #[error("invalid {event} payload at {path}: {reason}")]
    Invalid {
        event: String,
        path: String,
        reason: String,
    },
}

/// Parses one delivery's body, given its `X-GitHub-Event` header.
///
/// Call only after [`verify_signature`](super::verify_signature) accepted the
/// same bytes.
pub fn parse_event(event_name: &str, body: &[u8]) -> Result<Event, EventError> {
    match event_name {
        "" => Err(EventError::MissingEventName),
        "ping" => {
            let w: PingWire = decode(event_name, body)?;
            Ok(Event::Ping {
                zen: w.zen.unwrap_or_default(),
                hook_id: w.hook_id,
            })
        }
        "push" => decode::<PushWire>(event_name, body).map(|w| Event::Push(w.into())),
        "issue_comment" => {
            decode::<IssueCommentWire>(event_name, body).map(|w| Event::IssueComment(w.into()))
        }
        "pull_request" => {
            decode::<PullRequestWire>(event_name, body).map(|w| Event::PullRequest(w.into()))
        }
        "check_suite" => {
            decode::<CheckSuiteWire>(event_name, body).map(|w| Event::ChecksChanged(w.into()))
        }
        "status" => decode::<StatusWire>(event_name, body).map(|w| Event::ChecksChanged(w.into())),
        other => {
            decode::<IgnoredAny>(other, body)?;
            Ok(Event::Other {
                name: other.to_owned(),
            })
        }
    }
}

fn decode<'de, T: Deserialize<'de>>(event: &str, body: &'de [u8]) -> Result<T, EventError> {
    let err = match serde_json::from_slice(body) {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    // Error path only. serde stops at the first problem, so a shape error can
    // hide a syntax error further on (`{} trailing`): check the syntax first.
    let malformed = |err: serde_json::Error| EventError::Malformed {
        event: event.to_owned(),
        reason: err.to_string(),
    };
    if !err.is_data() {
        return Err(malformed(err));
    }
    if let Err(syntax) = serde_json::from_slice::<IgnoredAny>(body) {
        return Err(malformed(syntax));
    }
    // Well-formed JSON of the wrong shape: parse again, tracking the path.
    let mut de = serde_json::Deserializer::from_slice(body);
    let (path, reason) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => (e.path().to_string(), e.into_inner().to_string()),
        Ok(_) => (".".to_owned(), err.to_string()),
    };
    Err(EventError::Invalid {
        event: event.to_owned(),
        path,
        reason,
    })
}

// ---- wire shapes: only the fields read above --------------------------------

#[cfg(test)]
mod tests;
