use serde_json::{json, Value};

use super::*;

fn repo() -> Value {
    json!({
        "id": 42,
        "node_id": "R_x",
        "name": "datasets",
        "full_name": "acme/datasets",
        "owner": {"login": "acme", "id": 7, "type": "Organization"},
        "private": true,
        "default_branch": "main",
        "clone_url": "https://github.com/acme/datasets.git",
        "html_url": "https://github.com/acme/datasets",
        "topics": ["ml", "data"],
    })
}

fn commit(id: &str, message: &str, added: &[&str], removed: &[&str], modified: &[&str]) -> Value {
    json!({
        "id": id,
        "tree_id": "t",
        "distinct": true,
        "message": message,
        "timestamp": "2024-01-01T00:00:00Z",
        "author": {"name": "Ada", "email": "ada@example.com", "username": "ada"},
        "committer": {"name": "Ada", "email": "ada@example.com"},
        "added": added,
        "removed": removed,
        "modified": modified,
    })
}

fn push(git_ref: &str, commits: Vec<Value>) -> Value {
    let head = commits.last().cloned().unwrap_or(Value::Null);
    json!({
        "ref": git_ref,
        "before": "1111111111111111111111111111111111111111",
        "after": "2222222222222222222222222222222222222222",
        "created": false,
        "deleted": false,
        "forced": false,
        "base_ref": null,
        "compare": "https://github.com/acme/datasets/compare/1111...2222",
        "commits": commits,
        "head_commit": head,
        "repository": repo(),
        "pusher": {"name": "ada", "email": "ada@example.com"},
        "sender": {"login": "ada", "id": 1, "type": "User", "site_admin": false},
        "installation": {"id": 99, "node_id": "I_x"},
    })
}

fn parse(name: &str, payload: &Value) -> Result<Event, EventError> {
    parse_event(name, &serde_json::to_vec(payload).unwrap())
}

fn parse_push(payload: &Value) -> Push {
    match parse("push", payload).unwrap() {
        Event::Push(p) => p,
        other => panic!("not a push: {other:?}"),
    }
}

#[test]
fn push_to_a_branch_reads_every_needed_field() {
    let p = parse_push(&push(
        "refs/heads/main",
        vec![
            commit(
                "a1",
                "Add data\n\nlong text",
                &["data/new.csv"],
                &[],
                &["pipelines.toml"],
            ),
            commit(
                "b2",
                "Tidy",
                &["data/x"],
                &["data/old.csv"],
                &["pipelines.toml"],
            ),
        ],
    ));
    assert_eq!(
        p.repo,
        RepoRef {
            owner: "acme".into(),
            name: "datasets".into(),
            full_name: "acme/datasets".into(),
            default_branch: "main".into(),
            clone_url: "https://github.com/acme/datasets.git".into(),
            html_url: "https://github.com/acme/datasets".into(),
            id: 42,
        }
    );
    assert_eq!(p.git_ref, "refs/heads/main");
    assert_eq!(p.branch(), Some("main"));
    assert_eq!(p.tag(), None);
    assert!(p.is_default_branch());
    assert_eq!(p.before, "1111111111111111111111111111111111111111");
    assert_eq!(p.after, "2222222222222222222222222222222222222222");
    assert!(!p.created && !p.deleted && !p.forced);
    assert_eq!(p.commits.len(), 2);
    assert!(!p.commits_may_be_truncated);
    assert_eq!(p.commits[0].message, "Add data\n\nlong text");
    let head = p.head_commit.as_ref().unwrap();
    assert_eq!(head.id, "b2");
    assert_eq!(head.author.name, "Ada");
    assert_eq!(head.author.email.as_deref(), Some("ada@example.com"));
    assert_eq!(head.author.username.as_deref(), Some("ada"));
    assert_eq!(p.pusher_name, "ada");
    assert_eq!(
        p.sender,
        Actor {
            login: "ada".into(),
            kind: AccountType::User
        }
    );
    assert!(!p.sender.is_bot());
    assert_eq!(p.installation_id, Some(99));
    assert_eq!(
        p.changed_paths().into_iter().collect::<Vec<_>>(),
        ["data/new.csv", "data/old.csv", "data/x", "pipelines.toml"]
    );
    assert!(!p.is_by_cairn());
}

#[test]
fn tags_and_other_refs_have_no_branch() {
    let p = parse_push(&push("refs/tags/v1.0", vec![]));
    assert_eq!(p.branch(), None);
    assert_eq!(p.tag(), Some("v1.0"));
    assert!(!p.is_default_branch());
    let p = parse_push(&push("refs/notes/commits", vec![]));
    assert_eq!((p.branch(), p.tag()), (None, None));
}

#[test]
fn a_deleted_branch_has_no_head_commit() {
    let mut payload = push("refs/heads/feature", vec![]);
    payload["deleted"] = json!(true);
    payload["after"] = json!("0000000000000000000000000000000000000000");
    payload["head_commit"] = Value::Null;
    let p = parse_push(&payload);
    assert!(p.deleted);
    assert_eq!(p.head_commit, None);
    assert!(p.commits.is_empty());
    assert!(p.changed_paths().is_empty());
    assert!(!p.is_by_cairn(), "no commits: not recognisably cairn's");
}

#[test]
fn twenty_commits_may_be_truncated() {
    let many = |n: usize| {
        (0..n)
            .map(|i| commit(&format!("c{i}"), "m", &[], &[], &["f"]))
            .collect()
    };
    assert!(!parse_push(&push("refs/heads/main", many(19))).commits_may_be_truncated);
    assert!(parse_push(&push("refs/heads/main", many(20))).commits_may_be_truncated);
}

#[test]
fn is_by_cairn_needs_the_trailer_on_every_commit_or_a_cairn_branch() {
    let ours = "Update dataset employees\n\nCairn-Run: employees-1700000000\n";
    let theirs = "Fix typo";
    let with = |msgs: &[&str]| {
        let commits = msgs
            .iter()
            .map(|m| commit("x", m, &[], &[], &["d.dvc"]))
            .collect();
        parse_push(&push("refs/heads/main", commits))
    };
    assert!(with(&[ours]).is_by_cairn());
    assert!(with(&[ours, ours]).is_by_cairn());
    assert!(with(&["Squashed\r\nCairn-Run: r1\r\n"]).is_by_cairn());
    assert!(!with(&[ours, theirs]).is_by_cairn());
    assert!(!with(&[theirs]).is_by_cairn());
    assert!(!with(&["mentions Cairn-Run: inline"]).is_by_cairn());
    assert!(!with(&["  Cairn-Run: indented"]).is_by_cairn());
    assert!(!with(&[]).is_by_cairn());
    assert_eq!(
        with(&[ours]).commits[0].cairn_run(),
        Some("employees-1700000000")
    );

    assert!(parse_push(&push("refs/heads/cairn/employees", vec![])).is_by_cairn());
    let human = vec![commit("x", theirs, &[], &[], &[])];
    assert!(parse_push(&push("refs/heads/cairn/employees", human)).is_by_cairn());
    assert!(!parse_push(&push("refs/heads/cairnish", vec![])).is_by_cairn());
    assert!(!parse_push(&push("refs/tags/cairn/x", vec![])).is_by_cairn());
}

#[test]
fn bot_senders_are_visible() {
    let mut payload = push("refs/heads/main", vec![]);
    payload["sender"] = json!({"login": "cairn-bot[bot]", "type": "Bot"});
    let p = parse_push(&payload);
    assert_eq!(p.sender.kind, AccountType::Bot);
    assert!(p.sender.is_bot());
    payload["sender"] = json!({"login": "ghost", "type": "Mannequin"});
    let p = parse_push(&payload);
    assert_eq!(p.sender.kind, AccountType::Other("Mannequin".into()));
    assert_eq!(p.sender.kind.as_str(), "Mannequin");
}

#[test]
fn optional_push_fields_may_be_missing_or_null() {
    let mut payload = push("refs/heads/main", vec![commit("a", "m", &["f"], &[], &[])]);
    let obj = payload.as_object_mut().unwrap();
    for key in [
        "created",
        "deleted",
        "forced",
        "installation",
        "pusher",
        "head_commit",
    ] {
        obj.remove(key);
    }
    obj["repository"]["owner"] = json!({"name": "acme", "email": null});
    obj["commits"][0]["added"] = Value::Null;
    obj["commits"][0]["author"]["email"] = Value::Null;
    let p = parse_push(&payload);
    assert_eq!(p.repo.owner, "acme");
    assert_eq!(p.installation_id, None);
    assert_eq!(p.pusher_name, "");
    assert_eq!(p.head_commit, None);
    assert!(p.commits[0].added.is_empty());
    assert_eq!(p.commits[0].author.email, None);

    payload["commits"] = Value::Null;
    payload["repository"]
        .as_object_mut()
        .unwrap()
        .remove("owner");
    let p = parse_push(&payload);
    assert!(p.commits.is_empty());
    assert_eq!(p.repo.owner, "acme", "falls back to full_name");
}

#[test]
fn missing_required_fields_name_the_event_and_the_path() {
    let mut payload = push("refs/heads/main", vec![]);
    payload.as_object_mut().unwrap().remove("ref");
    let err = parse("push", &payload).unwrap_err();
    let EventError::Invalid {
        event,
        path,
        reason,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(event, "push");
    assert_eq!(path, ".");
    assert!(reason.contains("missing field `ref`"), "{reason}");

    let mut payload = push("refs/heads/main", vec![]);
    payload["repository"]
        .as_object_mut()
        .unwrap()
        .remove("default_branch");
    let err = parse("push", &payload).unwrap_err();
    let EventError::Invalid { path, reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path, "repository");
    assert!(reason.contains("default_branch"), "{reason}");
    assert!(
        err.to_string()
            .starts_with("invalid push payload at repository: "),
        "{err}"
    );

    let mut payload = push("refs/heads/main", vec![commit("a", "m", &[], &[], &[])]);
    payload["commits"][0]["id"] = json!(17);
    let err = parse("push", &payload).unwrap_err();
    let EventError::Invalid { path, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path, "commits[0].id");

    let mut payload = push("refs/heads/main", vec![]);
    payload["sender"].as_object_mut().unwrap().remove("type");
    let err = parse("push", &payload).unwrap_err();
    let EventError::Invalid { path, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path, "sender");
}

#[test]
fn malformed_json_is_malformed_for_every_event_name() {
    let body = serde_json::to_vec(&push("refs/heads/main", vec![])).unwrap();
    for name in [
        "push",
        "ping",
        "issue_comment",
        "pull_request",
        "star",
        "future_event",
    ] {
        for bad in [
            &body[..body.len() / 2],
            b"",
            b"not json",
            b"{\"a\":1} trailing",
            b"{,}",
        ] {
            let err = parse_event(name, bad).unwrap_err();
            let EventError::Malformed { event, .. } = &err else {
                panic!("{name} {err:?}")
            };
            assert_eq!(event, name);
            assert!(err
                .to_string()
                .starts_with(&format!("{name} payload is not valid JSON")));
        }
    }
}

#[test]
fn a_known_event_with_the_wrong_shape_is_invalid_not_a_panic() {
    for name in ["push", "ping", "issue_comment", "pull_request"] {
        for body in [&b"[]"[..], b"\"x\"", b"17", b"null", b"{\"ref\": []}"] {
            let result = parse_event(name, body);
            // A ping only needs what it has; anything else must be refused.
            if name == "ping" && body == b"{\"ref\": []}" {
                assert!(result.is_ok());
                continue;
            }
            assert!(
                matches!(result, Err(EventError::Invalid { .. })),
                "{name} {body:?}: {result:?}"
            );
        }
    }
}

#[test]
fn other_events_are_ignored_but_must_be_json() {
    assert_eq!(
        parse_event("star", br#"{"action":"created","starred_at":null}"#),
        Ok(Event::Other {
            name: "star".into()
        })
    );
    let event = parse_event("workflow_job", b"[1, 2]").unwrap();
    assert_eq!(event.name(), "workflow_job");
    // Case matters: GitHub sends lower case; anything else is not a push.
    let push_body = serde_json::to_vec(&push("refs/heads/main", vec![])).unwrap();
    assert_eq!(
        parse_event("Push", &push_body),
        Ok(Event::Other {
            name: "Push".into()
        })
    );
}

#[test]
fn an_empty_event_name_is_refused() {
    assert_eq!(parse_event("", b"{}"), Err(EventError::MissingEventName));
    assert_eq!(
        EventError::MissingEventName.to_string(),
        "missing X-GitHub-Event"
    );
}

#[test]
fn ping_is_lenient() {
    let full = parse_event(
        "ping",
        br#"{"zen":"Keep it logically awesome.","hook_id":5,"hook":{}}"#,
    );
    assert_eq!(
        full,
        Ok(Event::Ping {
            zen: "Keep it logically awesome.".into(),
            hook_id: Some(5)
        })
    );
    assert_eq!(
        parse_event("ping", b"{}"),
        Ok(Event::Ping {
            zen: String::new(),
            hook_id: None
        })
    );
}

fn issue_comment(action: &str, on_pr: bool) -> Value {
    let mut issue = json!({"number": 7, "title": "t", "user": {"login": "x", "type": "User"}});
    if on_pr {
        issue["pull_request"] =
            json!({"url": "https://api.github.com/repos/acme/datasets/pulls/7"});
    }
    json!({
        "action": action,
        "issue": issue,
        "comment": {
            "id": 123456,
            "body": "/cairn run employees",
            "user": {"login": "ada", "type": "User"},
            "author_association": "MEMBER",
            "reactions": {"+1": 0},
        },
        "repository": repo(),
        "sender": {"login": "ada", "type": "User"},
        "installation": {"id": 99},
    })
}

#[test]
fn issue_comment_on_a_pull_request() {
    let Event::IssueComment(c) = parse("issue_comment", &issue_comment("created", true)).unwrap()
    else {
        panic!()
    };
    assert_eq!(c.action, CommentAction::Created);
    assert_eq!(c.repo.full_name, "acme/datasets");
    assert_eq!(c.issue_number, 7);
    assert!(c.is_pull_request);
    assert_eq!(c.comment_id, 123456);
    assert_eq!(c.body, "/cairn run employees");
    assert_eq!(
        c.author,
        Actor {
            login: "ada".into(),
            kind: AccountType::User
        }
    );
    assert_eq!(c.author_association, "MEMBER");
    assert_eq!(c.installation_id, Some(99));
}

#[test]
fn issue_comment_actions_and_plain_issues() {
    for (action, want) in [
        ("edited", CommentAction::Edited),
        ("deleted", CommentAction::Deleted),
        ("pinned", CommentAction::Other("pinned".into())),
    ] {
        let Event::IssueComment(c) = parse("issue_comment", &issue_comment(action, false)).unwrap()
        else {
            panic!()
        };
        assert_eq!(c.action, want);
        assert_eq!(c.action.to_string(), action);
        assert!(!c.is_pull_request);
    }
    let mut payload = issue_comment("created", false);
    payload["issue"]["pull_request"] = Value::Null;
    payload["comment"]["body"] = Value::Null;
    let Event::IssueComment(c) = parse("issue_comment", &payload).unwrap() else {
        panic!()
    };
    assert!(!c.is_pull_request);
    assert_eq!(c.body, "");
}

fn pull_request(action: &str, merged: Value, head_repo: Value) -> Value {
    json!({
        "action": action,
        "number": 12,
        "pull_request": {
            "number": 12,
            "state": "closed",
            "merged": merged,
            "head": {"label": "x", "ref": "cairn/employees", "sha": "abc123", "repo": head_repo},
            "base": {"label": "y", "ref": "main", "sha": "def456", "repo": repo()},
        },
        "repository": repo(),
        "sender": {"login": "ada", "type": "User"},
    })
}

#[test]
fn merged_pull_request_from_the_same_repository() {
    let payload = pull_request("closed", json!(true), repo());
    let Event::PullRequest(pr) = parse("pull_request", &payload).unwrap() else {
        panic!()
    };
    assert_eq!(pr.action, PullRequestAction::Closed);
    assert_eq!(pr.number, 12);
    assert!(pr.merged);
    assert_eq!(pr.head_ref, "cairn/employees");
    assert_eq!(pr.head_sha, "abc123");
    assert_eq!(pr.head_repo_full_name.as_deref(), Some("acme/datasets"));
    assert_eq!(pr.base_ref, "main");
    assert_eq!(pr.installation_id, None);
    assert!(!pr.is_from_fork());
}

#[test]
fn pull_requests_from_forks_and_deleted_forks() {
    let fork = json!({"id": 5, "full_name": "mallory/datasets", "name": "datasets"});
    let Event::PullRequest(pr) = parse(
        "pull_request",
        &pull_request("synchronize", Value::Null, fork),
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(pr.action, PullRequestAction::Synchronize);
    assert!(!pr.merged);
    assert!(pr.is_from_fork());

    let Event::PullRequest(pr) = parse(
        "pull_request",
        &pull_request("closed", json!(false), Value::Null),
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(pr.head_repo_full_name, None);
    assert!(pr.is_from_fork());
}

#[test]
fn pull_request_actions() {
    for (text, want) in [
        ("opened", PullRequestAction::Opened),
        ("closed", PullRequestAction::Closed),
        ("reopened", PullRequestAction::Reopened),
        ("synchronize", PullRequestAction::Synchronize),
        ("edited", PullRequestAction::Edited),
        ("labeled", PullRequestAction::Other("labeled".into())),
    ] {
        let payload = pull_request(text, json!(false), repo());
        let Event::PullRequest(pr) = parse("pull_request", &payload).unwrap() else {
            panic!()
        };
        assert_eq!(pr.action, want);
        assert_eq!(pr.action.as_str(), text);
        assert_eq!(PullRequestAction::from(text), want);
    }
}

#[test]
fn escaped_strings_are_decoded() {
    let body = br#"{"action":"created","issue":{"number":1},"comment":{"id":2,"body":"line\n\"q\" \u00e9","user":{"login":"a","type":"User"}},"repository":{"id":1,"name":"n","full_name":"o/n","default_branch":"main","clone_url":"c","html_url":"h"}}"#;
    let Event::IssueComment(c) = parse_event("issue_comment", body).unwrap() else {
        panic!()
    };
    assert_eq!(c.body, "line\n\"q\" é");
    assert_eq!(c.author_association, "");
    assert_eq!(c.repo.owner, "o");
}

#[test]
fn finished_checks_on_cairns_branches_are_told_apart() {
    let sha = "3333333333333333333333333333333333333333";
    let suite = |action: &str, branch: Value| {
        json!({
            "action": action,
            "check_suite": {"id": 5, "head_sha": sha, "head_branch": branch, "status": "completed"},
            "repository": repo(),
        })
    };
    let Event::ChecksChanged(c) =
        parse("check_suite", &suite("completed", json!("cairn/sales"))).unwrap()
    else {
        panic!("not checks");
    };
    assert_eq!((c.event, c.sha.as_str()), ("check_suite", sha));
    assert_eq!(c.repo.full_name, "acme/datasets");
    assert!(c.finished && c.on_cairn_branch());
    let Event::ChecksChanged(c) =
        parse("check_suite", &suite("requested", json!("cairn/sales"))).unwrap()
    else {
        panic!("not checks");
    };
    assert!(!c.finished);
    // A fork's suite has no branch here.
    let Event::ChecksChanged(c) = parse("check_suite", &suite("completed", Value::Null)).unwrap()
    else {
        panic!("not checks");
    };
    assert!(c.branches.is_empty() && !c.on_cairn_branch());

    let status = |state: &str, branches: Value| {
        json!({
            "id": 9, "sha": sha, "state": state, "context": "ci/build",
            "branches": branches, "repository": repo(),
        })
    };
    let Event::ChecksChanged(c) = parse(
        "status",
        &status(
            "failure",
            json!([{"name": "main"}, {"name": "cairn/sales"}]),
        ),
    )
    .unwrap() else {
        panic!("not checks");
    };
    assert_eq!(c.event, "status");
    assert!(
        c.finished && c.on_cairn_branch(),
        "a failure is finished too"
    );
    let Event::ChecksChanged(c) = parse("status", &status("pending", Value::Null)).unwrap() else {
        panic!("not checks");
    };
    assert!(!c.finished && c.branches.is_empty());
    let err = parse("status", &json!({"state": "success", "repository": repo()})).unwrap_err();
    assert!(
        matches!(&err, EventError::Invalid { event, .. } if event == "status"),
        "{err}"
    );
}
