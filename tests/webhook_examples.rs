//! Every example payload of the npm package `@octokit/webhooks-examples`
//! (GitHub's documented webhook payloads, for github.com and each GitHub
//! Enterprise Server release it covers) through cairn's intake core: signed and
//! verified, then parsed with its event name.
//!
//! The package is installed by scripts/peers.sh (sourced by scripts/test.sh),
//! which exports CAIRN_TEST_WEBHOOK_EXAMPLES. Without it this test fails: it
//! never skips.

use crate::support::webhook_examples as examples;

use examples::{package_dir, PACKAGE_VERSION};

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use cairn::triggers::{
    parse_event, verify_signature, AccountType, CommentAction, Event, EventError,
    PullRequestAction, SignatureError, WebhookSecret,
};
use serde_json::Value;

/// (folder, event types, examples) as found in version 7.6.1.
const FLAVOURS: [(&str, usize, usize); 6] = [
    ("api.github.com", 58, 329),
    ("ghes-31", 49, 49),
    ("ghes-32", 49, 49),
    ("ghes-33", 50, 50),
    ("ghes-34", 51, 124),
    ("ghes-35", 52, 125),
];
const TOTAL_EXAMPLES: usize = 726;
const DISTINCT_EVENT_TYPES: usize = 64;
const PUSH_EXAMPLES: usize = 14;
const PING_EXAMPLES: usize = 11;
const ISSUE_COMMENT_EXAMPLES: usize = 20;
const PULL_REQUEST_EXAMPLES: usize = 46;
const CHECK_SUITE_EXAMPLES: usize = 20;
const STATUS_EXAMPLES: usize = 11;

fn read_json(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Example {
    flavour: String,
    event: String,
    index: usize,
    body: Vec<u8>,
}

impl Example {
    fn label(&self) -> String {
        format!("{}/{}[{}]", self.flavour, self.event, self.index)
    }
}

/// Every example of every flavour folder (a folder with an index.json: a list
/// of `{name, examples: [...]}`), with the payload as the bytes GitHub would
/// send.
fn load_examples() -> (Vec<Example>, BTreeMap<String, (usize, usize)>) {
    let dir = package_dir();
    let package = read_json(&dir.join("package.json"));
    assert_eq!(
        package["version"], PACKAGE_VERSION,
        "{}: the counts in this test are for {PACKAGE_VERSION}; update both it and scripts/peers.sh",
        dir.display()
    );
    let mut flavours: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("index.json").is_file())
        .collect();
    flavours.sort();
    let mut examples = Vec::new();
    let mut counts = BTreeMap::new();
    for folder in flavours {
        let flavour = folder.file_name().unwrap().to_string_lossy().into_owned();
        let index = read_json(&folder.join("index.json"));
        let definitions = index.as_array().expect("index.json is a list");
        let mut n = 0;
        for definition in definitions {
            let event = definition["name"].as_str().expect("name").to_owned();
            let list = definition["examples"].as_array().expect("examples");
            for (i, payload) in list.iter().enumerate() {
                examples.push(Example {
                    flavour: flavour.clone(),
                    event: event.clone(),
                    index: i,
                    body: serde_json::to_vec(payload).unwrap(),
                });
                n += 1;
            }
        }
        counts.insert(flavour, (definitions.len(), n));
    }
    (examples, counts)
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks the key fields every parsed example must have; returns which
/// variant it was.
fn check(example: &Example, event: &Event) -> &'static str {
    let label = example.label();
    assert_eq!(event.name(), example.event, "{label}");
    match event {
        Event::Ping { zen, hook_id } => {
            assert!(!zen.is_empty(), "{label}: zen");
            assert!(hook_id.is_some_and(|id| id > 0), "{label}: hook_id");
            "ping"
        }
        Event::Push(p) => {
            assert!(
                !p.repo.owner.is_empty() && !p.repo.name.is_empty(),
                "{label}"
            );
            assert_eq!(
                p.repo.full_name,
                format!("{}/{}", p.repo.owner, p.repo.name),
                "{label}"
            );
            assert!(
                p.repo.id > 0 && !p.repo.default_branch.is_empty(),
                "{label}"
            );
            assert!(p.repo.clone_url.ends_with(".git"), "{label}");
            assert!(p.repo.html_url.starts_with("https://"), "{label}");
            assert!(p.git_ref.starts_with("refs/"), "{label}");
            assert!(is_sha(&p.before) && is_sha(&p.after), "{label}");
            assert_eq!(p.deleted, p.after.bytes().all(|b| b == b'0'), "{label}");
            assert_eq!(p.created, p.before.bytes().all(|b| b == b'0'), "{label}");
            assert!(
                !p.sender.login.is_empty() && !p.pusher_name.is_empty(),
                "{label}"
            );
            if let Some(head) = &p.head_commit {
                assert_eq!(head.id, p.after, "{label}");
                assert!(!head.author.name.is_empty(), "{label}");
            }
            for c in &p.commits {
                assert!(is_sha(&c.id) && !c.message.is_empty(), "{label}");
            }
            assert!(!p.is_by_cairn(), "{label}");
            "push"
        }
        Event::IssueComment(c) => {
            assert!(!c.repo.full_name.is_empty() && c.repo.id > 0, "{label}");
            assert!(c.issue_number > 0 && c.comment_id > 0, "{label}");
            assert!(!c.body.is_empty() && !c.author.login.is_empty(), "{label}");
            assert!(!c.author_association.is_empty(), "{label}");
            assert!(
                !matches!(c.action, CommentAction::Other(_)),
                "{label}: {}",
                c.action
            );
            "issue_comment"
        }
        Event::PullRequest(pr) => {
            assert!(!pr.repo.full_name.is_empty() && pr.number > 0, "{label}");
            assert!(
                !pr.head_ref.is_empty() && !pr.base_ref.is_empty(),
                "{label}"
            );
            assert!(is_sha(&pr.head_sha), "{label}");
            assert!(pr.head_repo_full_name.is_some(), "{label}");
            "pull_request"
        }
        Event::ChecksChanged(c) => {
            assert!(!c.repo.full_name.is_empty() && c.repo.id > 0, "{label}");
            assert!(is_sha(&c.sha), "{label}");
            assert_eq!(
                c.finished,
                match c.event {
                    "check_suite" => {
                        serde_json::from_slice::<Value>(&example.body).unwrap()["action"]
                            == "completed"
                    }
                    _ => true, // every status example is a success
                },
                "{label}"
            );
            assert!(!c.on_cairn_branch(), "{label}");
            c.event
        }
        Event::Other { name } => {
            assert!(
                ![
                    "ping",
                    "push",
                    "issue_comment",
                    "pull_request",
                    "check_suite",
                    "status"
                ]
                .contains(&name.as_str()),
                "{label}"
            );
            "other"
        }
    }
}

#[test]
fn every_example_is_verified_and_parsed() {
    let (examples, counts) = load_examples();
    let expected: BTreeMap<String, (usize, usize)> = FLAVOURS
        .iter()
        .map(|&(f, t, n)| (f.to_owned(), (t, n)))
        .collect();
    assert_eq!(counts, expected, "flavour -> (event types, examples)");
    assert_eq!(examples.len(), TOTAL_EXAMPLES);
    let names: BTreeSet<&str> = examples.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.len(), DISTINCT_EVENT_TYPES);

    let secret = WebhookSecret::new("cairn webhook examples").unwrap();
    let mut variants: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for example in &examples {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let signature = secret.sign(&example.body);
            verify_signature(&secret, &example.body, Some(&signature))
                .map_err(|e| format!("signature: {e}"))?;
            let event = parse_event(&example.event, &example.body).map_err(|e| e.to_string())?;
            Ok::<_, String>(check(example, &event))
        }));
        match outcome {
            Ok(Ok(variant)) => *variants.entry(variant).or_default() += 1,
            Ok(Err(e)) => failures.push(format!("{}: {e}", example.label())),
            Err(_) => failures.push(format!("{}: panicked", example.label())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n")
    );
    let other = TOTAL_EXAMPLES
        - PUSH_EXAMPLES
        - PING_EXAMPLES
        - ISSUE_COMMENT_EXAMPLES
        - PULL_REQUEST_EXAMPLES
        - CHECK_SUITE_EXAMPLES
        - STATUS_EXAMPLES;
    let want: BTreeMap<&str, usize> = [
        ("push", PUSH_EXAMPLES),
        ("ping", PING_EXAMPLES),
        ("issue_comment", ISSUE_COMMENT_EXAMPLES),
        ("pull_request", PULL_REQUEST_EXAMPLES),
        ("check_suite", CHECK_SUITE_EXAMPLES),
        ("status", STATUS_EXAMPLES),
        ("other", other),
    ]
    .into_iter()
    .collect();
    assert_eq!(variants, want);
}

#[test]
fn every_example_truncated_is_refused_without_panicking() {
    let (examples, _) = load_examples();
    let secret = WebhookSecret::new("cairn webhook examples").unwrap();
    for example in &examples {
        let label = example.label();
        let signature = secret.sign(&example.body);
        for cut in [example.body.len() / 2, example.body.len() - 1] {
            let truncated = &example.body[..cut];
            assert_eq!(
                verify_signature(&secret, truncated, Some(&signature)),
                Err(SignatureError::Mismatch),
                "{label}"
            );
            let result = catch_unwind(|| parse_event(&example.event, truncated));
            match result {
                Ok(Err(EventError::Malformed { event, .. })) => assert_eq!(event, example.event),
                other => panic!("{label} cut at {cut}: {other:?}"),
            }
        }
    }
}

fn find(examples: &[Example], flavour: &str, event: &str, index: usize) -> Event {
    let example = examples
        .iter()
        .find(|e| e.flavour == flavour && e.event == event && e.index == index)
        .unwrap_or_else(|| panic!("no example {flavour}/{event}[{index}]"));
    parse_event(event, &example.body).unwrap()
}

#[test]
fn concrete_values_from_specific_examples() {
    let (examples, _) = load_examples();

    let Event::Push(p) = find(&examples, "api.github.com", "push", 4) else {
        panic!()
    };
    assert_eq!(p.git_ref, "refs/heads/master");
    assert_eq!(p.branch(), Some("master"));
    assert!(p.is_default_branch());
    assert!(p.created && !p.deleted && !p.forced);
    assert_eq!(p.before, "0000000000000000000000000000000000000000");
    assert_eq!(p.after, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    assert_eq!(p.repo.full_name, "Codertocat/Hello-World");
    assert_eq!(p.repo.owner, "Codertocat");
    assert_eq!(p.repo.id, 186853002);
    assert_eq!(p.repo.default_branch, "master");
    assert_eq!(
        p.repo.clone_url,
        "https://github.com/Codertocat/Hello-World.git"
    );
    assert_eq!(p.commits.len(), 1);
    assert!(!p.commits_may_be_truncated);
    assert_eq!(p.commits[0].message, "Initial commit");
    assert_eq!(
        p.changed_paths().into_iter().collect::<Vec<_>>(),
        ["README.md"]
    );
    let head = p.head_commit.as_ref().unwrap();
    assert_eq!(head.author.name, "Codertocat");
    assert_eq!(
        head.author.email.as_deref(),
        Some("21031067+Codertocat@users.noreply.github.com")
    );
    assert_eq!(p.pusher_name, "Codertocat");
    assert_eq!(
        (p.sender.login.as_str(), &p.sender.kind),
        ("Codertocat", &AccountType::User)
    );
    assert_eq!(p.installation_id, Some(1));

    let Event::Push(tag) = find(&examples, "api.github.com", "push", 1) else {
        panic!()
    };
    assert_eq!(tag.git_ref, "refs/tags/simple-tag");
    assert_eq!((tag.branch(), tag.tag()), (None, Some("simple-tag")));
    assert!(tag.deleted && tag.head_commit.is_none() && tag.commits.is_empty());
    assert_eq!(tag.installation_id, None);

    assert_eq!(
        find(&examples, "api.github.com", "ping", 0),
        Event::Ping {
            zen: "Anything added dilutes everything else.".into(),
            hook_id: Some(109948940)
        }
    );
    assert_eq!(
        find(&examples, "ghes-35", "ping", 0),
        Event::Ping {
            zen: "Non-blocking is better than blocking.".into(),
            hook_id: Some(30)
        }
    );

    let Event::IssueComment(c) = find(&examples, "api.github.com", "issue_comment", 0) else {
        panic!()
    };
    assert_eq!(c.action, CommentAction::Created);
    assert_eq!(c.repo.full_name, "Codertocat/Hello-World");
    assert_eq!((c.issue_number, c.comment_id), (1, 492700400));
    assert!(!c.is_pull_request);
    assert_eq!(
        c.body,
        "You are totally right! I'll get this fixed right away."
    );
    assert_eq!(c.author.login, "Codertocat");
    assert_eq!(c.author.kind, AccountType::User);
    assert_eq!(c.author_association, "OWNER");
    let Event::IssueComment(c) = find(&examples, "api.github.com", "issue_comment", 3) else {
        panic!()
    };
    assert_eq!(c.installation_id, Some(1));
    let Event::IssueComment(c) = find(&examples, "api.github.com", "issue_comment", 5) else {
        panic!()
    };
    assert_eq!(c.action, CommentAction::Deleted);
    let Event::IssueComment(c) = find(&examples, "api.github.com", "issue_comment", 7) else {
        panic!()
    };
    assert_eq!(c.action, CommentAction::Edited);

    let Event::PullRequest(pr) = find(&examples, "api.github.com", "pull_request", 0) else {
        panic!()
    };
    assert_eq!(pr.action, PullRequestAction::Opened);
    assert_eq!(pr.number, 2);
    assert!(!pr.merged);
    assert_eq!(pr.head_ref, "changes");
    assert_eq!(pr.head_sha, "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
    assert_eq!(
        pr.head_repo_full_name.as_deref(),
        Some("Codertocat/Hello-World")
    );
    assert!(!pr.is_from_fork());
    assert_eq!(pr.base_ref, "master");
    assert_eq!(pr.installation_id, None);
    let Event::PullRequest(pr) = find(&examples, "api.github.com", "pull_request", 3) else {
        panic!()
    };
    assert_eq!(pr.action, PullRequestAction::Closed);
    assert!(!pr.merged);
    let Event::PullRequest(pr) = find(&examples, "api.github.com", "pull_request", 5) else {
        panic!()
    };
    assert_eq!(
        pr.action,
        PullRequestAction::Other("converted_to_draft".into())
    );

    let Event::PullRequest(pr) = find(&examples, "ghes-35", "pull_request", 0) else {
        panic!()
    };
    assert_eq!(pr.head_sha, "14977a7b5485400124827221a04bfb474bcd72d1");
    assert_eq!(pr.repo.id, 118);
    assert_eq!(
        pr.repo.html_url,
        "https://octocoders.github.io/Codertocat/Hello-World"
    );
    assert_eq!(pr.installation_id, Some(5));

    assert_eq!(
        find(&examples, "api.github.com", "star", 0),
        Event::Other {
            name: "star".into()
        }
    );
}
