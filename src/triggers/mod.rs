//! Triggers: what starts a run. So far, the intake of GitHub webhooks (pure:
//! bytes and header values in, typed values out; no IO, no HTTP framework).
//!
//! A delivery is handled in this order, and the order is the point:
//!
//! 1. [`webhook`]: [`verify_signature`] checks `X-Hub-Signature-256`, an
//!    HMAC-SHA256 of the raw body keyed with the shared [`WebhookSecret`].
//!    It runs first, over the bytes exactly as received, so nothing an
//!    unauthenticated sender wrote reaches the JSON parser, the dedup store or
//!    the logs, and so the MAC is computed over what GitHub signed (not over
//!    re-serialized JSON). The SHA-1 `X-Hub-Signature` header is never enough.
//! 2. [`delivery`]: [`DeliveryId`] validates `X-GitHub-Delivery`, the key
//!    redeliveries are deduplicated on.
//! 3. [`event`]: [`parse_event`] turns `X-GitHub-Event` and the body into an
//!    [`Event`]: `ping`, `push`, `issue_comment` and `pull_request` with the
//!    fields cairn acts on; every other event type is [`Event::Other`],
//!    nothing to do. Errors say which event and which field.
//!
//! Schedules: [`ticks`] decides which cron ticks are due (pure, time passed
//! in), with the catch-up policy after downtime. Comment commands are parsed
//! in [`crate::commands`].
//!
//! Each error's `Display` is a short reason meant for the HTTP answer
//! (401 for signatures, 400 for the rest); none echoes the secret.

pub mod delivery;
pub mod event;
pub mod ticks;
pub mod webhook;

pub use delivery::{DeliveryId, DeliveryIdError, DELIVERY_HEADER};
pub use event::{
    parse_event, AccountType, Actor, ChecksChanged, CommentAction, Commit, CommitAuthor, Event,
    EventError, IssueComment, PullRequestAction, PullRequestEvent, Push, RepoRef,
    CAIRN_BRANCH_REF_PREFIX, CAIRN_RUN_TRAILER, EVENT_HEADER, PUSH_COMMITS_LIMIT,
};
pub use webhook::{verify_signature, EmptySecret, SignatureError, WebhookSecret, SIGNATURE_HEADER};
