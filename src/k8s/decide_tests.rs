use super::*;
use crate::k8s::crd::{RunPhase, StepPhase, StepStatus, TaskTemplate};

fn spec(tasks: &[(&str, &[&str], u32)]) -> PipelineRunSpec {
    PipelineRunSpec {
        pipeline: "p".into(),
        source_commit: "c0ffee".into(),
        reason: "push".into(),
        dataset: "data/x.csv".into(),
        tasks: tasks
            .iter()
            .map(|(name, needs, retries)| TaskTemplate {
                name: name.to_string(),
                command: vec!["true".into()],
                needs: needs.iter().map(|n| n.to_string()).collect(),
                retries: *retries,
                image: "busybox".into(),
                ..TaskTemplate::default()
            })
            .collect(),
        timeout_seconds: None,
        cancel: false,
        source: None,
    }
}

fn settings() -> ExecutorSettings {
    ExecutorSettings {
        pending_timeout: Duration::from_secs(60),
        retry_backoff: Duration::from_secs(10),
        max_backoff: Duration::from_secs(100),
        max_parallel: 4,
        step_retries: 0,
        ..ExecutorSettings::default()
    }
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-27T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(seconds)
}

fn pod(step: &str, attempt: u32, phase: PodPhase) -> ObservedPod {
    ObservedPod {
        name: pod_name("r", step, attempt),
        uid: format!("uid-{step}-{attempt}"),
        step: step.into(),
        attempt,
        phase,
        created: Some(t0()),
        started: (phase != PodPhase::Pending).then(t0),
        finished: matches!(phase, PodPhase::Succeeded | PodPhase::Failed).then(|| at(1)),
        waiting: None,
        exit_code: match phase {
            PodPhase::Succeeded => Some(0),
            PodPhase::Failed => Some(1),
            _ => None,
        },
        reason: None,
        message: None,
        termination_message: None,
        deleting: false,
    }
}

fn step<'a>(status: &'a PipelineRunStatus, name: &str) -> &'a StepStatus {
    status.steps.iter().find(|s| s.name == name).unwrap()
}

#[test]
fn the_first_look_starts_the_fetch_step_only() {
    let d = decide("r", &spec(&[("a", &[], 0)]), None, &[], t0(), &settings());
    assert_eq!(
        d.actions,
        [PodAction::Create {
            step: 0,
            attempt: 1
        }]
    );
    assert_eq!(d.status.phase, RunPhase::Running);
    let fetch = step(&d.status, "cairn.fetch");
    assert_eq!(fetch.phase, StepPhase::Pending);
    assert_eq!(fetch.worker.as_deref(), Some("r-cairn.fetch-1"));
    assert_eq!(step(&d.status, "a").phase, StepPhase::Waiting);
    assert_eq!(step(&d.status, "cairn.publish").phase, StepPhase::Waiting);
}

#[test]
fn a_pod_created_before_a_crash_is_adopted_not_created_again() {
    // The status never recorded the fetch step's start, but its pod runs.
    let recorded = decide("r", &spec(&[("a", &[], 0)]), None, &[], t0(), &settings()).status;
    let mut lost = recorded.clone();
    lost.steps[0] = StepStatus {
        name: "cairn.fetch".into(),
        ..StepStatus::default()
    };
    let running = pod(FETCH, 1, PodPhase::Running);
    let d = decide(
        "r",
        &spec(&[("a", &[], 0)]),
        Some(&lost),
        &[running],
        at(1),
        &settings(),
    );
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    let fetch = step(&d.status, FETCH);
    assert_eq!(fetch.phase, StepPhase::Running);
    assert_eq!(fetch.attempt, 1);
    assert_eq!(fetch.worker_uid.as_deref(), Some("uid-cairn.fetch-1"));
}

const FETCH: &str = "cairn.fetch";

#[test]
fn a_recorded_start_whose_pod_never_appeared_is_created_again() {
    let recorded = decide("r", &spec(&[("a", &[], 0)]), None, &[], t0(), &settings()).status;
    let d = decide(
        "r",
        &spec(&[("a", &[], 0)]),
        Some(&recorded),
        &[],
        at(1),
        &settings(),
    );
    assert_eq!(
        d.actions,
        [PodAction::Create {
            step: 0,
            attempt: 1
        }]
    );
}

#[test]
fn a_pod_seen_once_that_vanished_is_a_lost_attempt() {
    let s = settings();
    let sp = spec(&[("a", &[], 0)]);
    let first = decide("r", &sp, None, &[], t0(), &s).status;
    let seen = decide(
        "r",
        &sp,
        Some(&first),
        &[pod(FETCH, 1, PodPhase::Running)],
        at(1),
        &s,
    )
    .status;
    let d = decide("r", &sp, Some(&seen), &[], at(2), &s);
    let fetch = step(&d.status, FETCH);
    assert_eq!(fetch.phase, StepPhase::Failed);
    assert_eq!(fetch.reason.as_deref(), Some("PodLost"));
}

#[test]
fn another_pod_under_the_recorded_name_is_not_ours() {
    let s = ExecutorSettings {
        step_retries: 1,
        ..settings()
    };
    let sp = spec(&[("a", &[], 0)]);
    let first = decide("r", &sp, None, &[], t0(), &s).status;
    let seen = decide(
        "r",
        &sp,
        Some(&first),
        &[pod(FETCH, 1, PodPhase::Running)],
        at(1),
        &s,
    )
    .status;
    let mut impostor = pod(FETCH, 1, PodPhase::Running);
    impostor.uid = "someone-else".into();
    let d = decide("r", &sp, Some(&seen), &[impostor], at(2), &s);
    let fetch = step(&d.status, FETCH);
    assert_eq!(fetch.reason.as_deref(), Some("PodReplaced"));
    assert_eq!(fetch.phase, StepPhase::Retrying);
    assert!(d.actions.contains(&PodAction::Delete {
        pod: "r-cairn.fetch-1".into(),
        uid: "someone-else".into()
    }));
}

#[test]
fn image_pull_errors_fail_at_once_whatever_the_retries() {
    let sp = spec(&[("a", &[], 5)]);
    let s = settings();
    let mut status = decide("r", &sp, None, &[], t0(), &s).status;
    status.steps[0].phase = StepPhase::Succeeded;
    status.steps[1].phase = StepPhase::Pending;
    status.steps[1].attempt = 1;
    let mut stuck = pod("a", 1, PodPhase::Pending);
    stuck.waiting = Some(("ErrImagePull".into(), "not found".into()));
    let d = decide("r", &sp, Some(&status), &[stuck], at(1), &s);
    let a = step(&d.status, "a");
    assert_eq!(a.phase, StepPhase::Failed);
    assert_eq!(a.reason.as_deref(), Some("ErrImagePull"));
    assert_eq!(step(&d.status, "cairn.publish").phase, StepPhase::Skipped);
    assert_eq!(d.status.phase, RunPhase::Failed);
}

#[test]
fn pending_past_the_pending_timeout_fails_the_attempt_and_retries() {
    let sp = spec(&[("a", &[], 1)]);
    let s = settings();
    let mut status = decide("r", &sp, None, &[], t0(), &s).status;
    status.steps[0].phase = StepPhase::Succeeded;
    status.steps[1].phase = StepPhase::Pending;
    status.steps[1].attempt = 1;
    let waiting = pod("a", 1, PodPhase::Pending);
    let early = decide(
        "r",
        &sp,
        Some(&status),
        std::slice::from_ref(&waiting),
        at(59),
        &s,
    );
    assert_eq!(step(&early.status, "a").phase, StepPhase::Pending);
    assert_eq!(early.requeue_after, Some(Duration::from_secs(1)));

    let late = decide("r", &sp, Some(&status), &[waiting], at(60), &s);
    let a = step(&late.status, "a");
    assert_eq!(a.phase, StepPhase::Retrying);
    assert_eq!(a.reason.as_deref(), Some("PendingTimeout"));
    assert_eq!(a.retry_at.as_deref(), Some("2026-11-27T08:01:10.000Z"));
    assert!(late.actions.contains(&PodAction::Delete {
        pod: "r-a-1".into(),
        uid: "uid-a-1".into()
    }));
    assert_eq!(late.requeue_after, Some(Duration::from_secs(10)));

    // The backoff over, attempt 2 starts.
    let next = decide("r", &sp, Some(&late.status), &[], at(70), &s);
    assert_eq!(
        next.actions,
        [PodAction::Create {
            step: 1,
            attempt: 2
        }]
    );
    assert_eq!(step(&next.status, "a").worker.as_deref(), Some("r-a-2"));
}

#[test]
fn at_most_max_parallel_pods_run_at_once() {
    let sp = spec(&[("a", &[], 0), ("b", &[], 0), ("c", &[], 0)]);
    let s = ExecutorSettings {
        max_parallel: 2,
        ..settings()
    };
    let mut status = decide("r", &sp, None, &[], t0(), &s).status;
    status.steps[0].phase = StepPhase::Succeeded;
    let d = decide("r", &sp, Some(&status), &[], at(1), &s);
    assert_eq!(
        d.actions,
        [
            PodAction::Create {
                step: 1,
                attempt: 1
            },
            PodAction::Create {
                step: 2,
                attempt: 1
            }
        ]
    );
}

#[test]
fn cancel_captures_and_deletes_everything() {
    let mut sp = spec(&[("a", &[], 0)]);
    let s = settings();
    let mut status = decide("r", &sp, None, &[], t0(), &s).status;
    status.steps[0].phase = StepPhase::Running;
    status.steps[0].attempt = 1;
    sp.cancel = true;
    let d = decide(
        "r",
        &sp,
        Some(&status),
        &[pod(FETCH, 1, PodPhase::Running)],
        at(1),
        &s,
    );
    assert_eq!(d.status.phase, RunPhase::Cancelled);
    assert!(d
        .status
        .steps
        .iter()
        .all(|s| s.phase == StepPhase::Cancelled));
    assert_eq!(
        d.actions,
        [
            PodAction::Capture {
                step: 0,
                pod: "r-cairn.fetch-1".into()
            },
            PodAction::Delete {
                pod: "r-cairn.fetch-1".into(),
                uid: "uid-cairn.fetch-1".into()
            }
        ]
    );
}

#[test]
fn the_publish_steps_termination_message_is_the_result() {
    let sp = spec(&[]);
    let s = settings();
    let mut status = decide("r", &sp, None, &[], t0(), &s).status;
    status.steps[0].phase = StepPhase::Succeeded;
    status.steps[1].phase = StepPhase::Running;
    status.steps[1].attempt = 1;
    let mut done = pod("cairn.publish", 1, PodPhase::Succeeded);
    done.termination_message =
        Some(r#"{"md5":"acbd18db4cc2f85cedef654fccc4a4d8","size":3,"nfiles":null,"uploaded":1,"skipped":0,"bytes_uploaded":3}"#.into());
    let d = decide("r", &sp, Some(&status), &[done.clone()], at(1), &s);
    assert_eq!(d.status.phase, RunPhase::Succeeded);
    assert_eq!(
        d.status.result,
        Some(PublishResult {
            md5: "acbd18db4cc2f85cedef654fccc4a4d8".into(),
            size: Some(3),
            nfiles: None
        })
    );

    done.termination_message = Some("Traceback".into());
    let d = decide("r", &sp, Some(&status), &[done], at(1), &s);
    assert_eq!(d.status.phase, RunPhase::Failed);
    assert_eq!(
        step(&d.status, "cairn.publish").reason.as_deref(),
        Some("BadResult")
    );
}

#[test]
fn failed_pods_are_kept_for_the_keep_time_then_deleted() {
    let sp = spec(&[("a", &[], 0)]);
    let s = ExecutorSettings {
        keep_failed_pods: Duration::from_secs(100),
        ..settings()
    };
    let mut status = decide("r", &sp, None, &[], t0(), &s).status;
    status.steps[0].phase = StepPhase::Succeeded;
    status.steps[1].phase = StepPhase::Running;
    status.steps[1].attempt = 1;
    let failed = pod("a", 1, PodPhase::Failed);
    let d = decide(
        "r",
        &sp,
        Some(&status),
        std::slice::from_ref(&failed),
        at(2),
        &s,
    );
    assert_eq!(d.status.phase, RunPhase::Failed);
    assert!(!d
        .actions
        .iter()
        .any(|a| matches!(a, PodAction::Delete { .. })));
    assert_eq!(d.requeue_after, Some(Duration::from_secs(99)));
    let later = decide("r", &sp, Some(&d.status), &[failed], at(101), &s);
    assert_eq!(
        later.actions,
        [PodAction::Delete {
            pod: "r-a-1".into(),
            uid: "uid-a-1".into()
        }]
    );
}
