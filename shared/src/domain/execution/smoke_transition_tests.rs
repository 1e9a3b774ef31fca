//! The smoke test phase of VERIFYING_TEST: legal path with its effects, refused pairs,
//! duplicated / late / out-of-order events, the timeout, what the execution waits on.

use crate::domain::execution::fixtures::*;
use crate::domain::execution::*;

const BUILD: &str = "hello-smoke:0001";

fn requested(attempt: u32, with_check: bool) -> Event {
    Event::SmokeRequested {
        environment: Environment::Test,
        attempt,
        result: with_check.then(|| check_result(true)),
        project: "hello-smoke".into(),
        target_url: "https://hello.example.com/health".into(),
        timeout_minutes: 10,
    }
}

fn started(build_id: &str) -> Event {
    Event::SmokeStarted {
        build_id: build_id.into(),
    }
}

fn finished(build_id: &str, status: &str) -> Event {
    Event::SmokeFinished {
        build_id: build_id.into(),
        status: status.into(),
        reason: (status != "SUCCEEDED").then(|| "COMMAND_EXECUTION_ERROR: curl exit 22".into()),
        link: Some("https://console.aws.amazon.com/cloudwatch/home#logEvent:smoke".into()),
        approval: if status == "SUCCEEDED" { grant() } else { None },
    }
}

/// VERIFYING_TEST with the smoke build running.
fn running() -> Execution {
    let (asked, _) = step(&at(Status::VerifyingTest), requested(1, true));
    step(&asked, started(BUILD)).0
}

#[test]
fn a_passed_check_starts_the_smoke_test_and_its_success_asks_for_approval() {
    let verifying = at(Status::VerifyingTest);
    let (asked, effects) = step(&verifying, requested(1, true));
    assert_eq!(asked.status, Status::VerifyingTest);
    assert!(effects.is_empty(), "the verification step goes on itself");
    assert!(asked.approval.is_none());
    let v = asked.verify_test.as_ref().unwrap();
    assert_eq!(v.attempts, 1);
    assert!(
        v.passed_at.is_none(),
        "not verified before the smoke test passed"
    );
    let run = v.smoke.as_ref().unwrap();
    assert_eq!(run.token, format!("{}-smoke-1", asked.id));
    assert_eq!(run.build_id, None);
    // nothing to wait on yet but the test deployment
    assert_eq!(asked.awaited(), Some(Link::Deployment("ecs-svc/1".into())));
    assert_eq!(
        pending_effects(&asked),
        vec![Effect::Verify(Environment::Test)]
    );

    let (running, effects) = step(&asked, started(BUILD));
    assert_eq!(running.status, Status::VerifyingTest);
    assert!(effects.is_empty());
    // its build state change finds the execution
    assert_eq!(running.awaited(), Some(Link::Build(BUILD.into())));
    assert_eq!(
        pending_effects(&running),
        vec![Effect::Verify(Environment::Test)]
    );

    let (awaiting, effects) = step(&running, finished(BUILD, "SUCCEEDED"));
    assert_eq!(awaiting.status, Status::AwaitingApproval);
    assert_eq!(
        effects,
        vec![
            Effect::RecordRevision(Environment::Test),
            Effect::SupersedeOlder,
            Effect::RequestApproval
        ]
    );
    assert!(awaiting.approval.is_some());
    let v = awaiting.verify_test.as_ref().unwrap();
    assert!(v.passed_at.is_some());
    assert!(v.smoke.as_ref().unwrap().passed());
    let summary = v.summary().unwrap();
    assert!(summary.contains("version 0123456789ab"), "{summary}");
    assert!(summary.contains("smoke test hello-smoke passed (build hello-smoke:0001"));
    let cause = &awaiting.history.last().unwrap().cause;
    assert!(cause.starts_with("test verified: GET https://hello.example.com/health answered 200"));
    assert!(cause.contains("smoke test hello-smoke passed"), "{cause}");
    // the smoke build no longer links the execution
    assert_eq!(
        awaiting.awaited(),
        Some(Link::Deployment("ecs-svc/1".into()))
    );
}

#[test]
fn without_a_url_the_smoke_test_is_the_whole_verification() {
    let (asked, _) = step(&at(Status::VerifyingTest), requested(1, false));
    assert_eq!(asked.verify_test.as_ref().unwrap().last, None);
    assert!(asked
        .history
        .last()
        .unwrap()
        .cause
        .starts_with("no HTTP check; starting smoke test"));
    let (running, _) = step(&asked, started(BUILD));
    let (awaiting, _) = step(&running, finished(BUILD, "SUCCEEDED"));
    assert_eq!(awaiting.status, Status::AwaitingApproval);
    let summary = awaiting.verify_test.as_ref().unwrap().summary().unwrap();
    assert!(
        summary.starts_with("smoke test hello-smoke passed"),
        "{summary}"
    );
}

#[test]
fn a_failed_smoke_build_fails_test_with_its_cause_and_logs_and_no_approval() {
    for status in ["FAILED", "FAULT", "STOPPED", "TIMED_OUT"] {
        let (failed, effects) = step(&running(), finished(BUILD, status));
        assert_eq!(failed.status, Status::TestFailed, "{status}");
        assert_eq!(effects, vec![Effect::Notify]);
        assert!(failed.approval.is_none());
        let f = failed.failure.as_ref().unwrap();
        assert_eq!(f.stage, Stage::Test);
        assert!(
            f.reason
                .contains(&format!("smoke test hello-smoke {status}")),
            "{}",
            f.reason
        );
        assert!(f.reason.contains("curl exit 22"));
        assert_eq!(
            f.link.as_deref(),
            Some("https://console.aws.amazon.com/cloudwatch/home#logEvent:smoke")
        );
        assert!(failed.verify_test.as_ref().unwrap().failed);
        // retry redeploys test and verifies (and smoke tests) again from scratch
        let (retried, _) = step(&failed, Event::Retry);
        assert!(retried.verify_test.is_none());
        assert_eq!(retried.attempt, 2);
    }
}

#[test]
fn a_retried_round_gets_its_own_idempotency_token() {
    let (failed, _) = step(&running(), finished(BUILD, "FAILED"));
    let (built, _) = step(&failed, Event::Retry);
    let (deploying, _) = step(
        &built,
        Event::DeployStarted {
            deployment: deployment(Environment::Test, "ecs-svc/7"),
        },
    );
    let (verifying, _) = step(&deploying, verify_started("ecs-svc/7", 0));
    let (asked, _) = step(&verifying, requested(1, true));
    let token = &asked
        .verify_test
        .as_ref()
        .unwrap()
        .smoke
        .as_ref()
        .unwrap()
        .token;
    assert_eq!(token, &format!("{}-smoke-2", asked.id));
}

#[test]
fn duplicated_late_and_out_of_order_smoke_events_change_nothing() {
    let asked = step(&at(Status::VerifyingTest), requested(1, true)).0;
    // the same request again (a resumer racing the first worker)
    assert_eq!(
        apply(&asked, requested(1, true)),
        Err(DomainError::AlreadyApplied {
            event: "SmokeRequested"
        })
    );
    assert_eq!(
        apply(&asked, requested(2, true)),
        Err(DomainError::AlreadyApplied {
            event: "SmokeRequested"
        })
    );
    // a result before the build was recorded (it cannot find the execution; if it did)
    assert_eq!(
        apply(&asked, finished(BUILD, "SUCCEEDED")),
        Err(DomainError::UnknownSmokeBuild { got: BUILD.into() })
    );
    let running = step(&asked, started(BUILD)).0;
    // StartBuild answered again (same token, same build)
    assert_eq!(
        apply(&running, started(BUILD)),
        Err(DomainError::AlreadyApplied {
            event: "SmokeStarted"
        })
    );
    // a second build (token expired): the first one recorded counts
    assert_eq!(
        apply(&running, started("hello-smoke:0002")),
        Err(DomainError::UnknownSmokeBuild {
            got: "hello-smoke:0002".into()
        })
    );
    assert_eq!(
        apply(&running, finished("hello-smoke:0002", "FAILED")),
        Err(DomainError::UnknownSmokeBuild {
            got: "hello-smoke:0002".into()
        })
    );
    // an IN_PROGRESS status is no result
    assert!(matches!(
        apply(&running, finished(BUILD, "IN_PROGRESS")),
        Err(DomainError::IllegalTransition { .. })
    ));
    // a passed smoke build needs an approval round
    let mut no_grant = finished(BUILD, "SUCCEEDED");
    if let Event::SmokeFinished { approval, .. } = &mut no_grant {
        *approval = None;
    }
    assert_eq!(apply(&running, no_grant), Err(DomainError::MissingApproval));
    // decided: the same event again, or the other outcome late, changes nothing
    let awaiting = step(&running, finished(BUILD, "SUCCEEDED")).0;
    for late in [finished(BUILD, "SUCCEEDED"), finished(BUILD, "FAILED")] {
        assert_eq!(
            apply(&awaiting, late),
            Err(DomainError::AlreadyApplied {
                event: "SmokeFinished"
            })
        );
    }
    let failed = step(&running, finished(BUILD, "FAILED")).0;
    assert_eq!(
        apply(&failed, finished(BUILD, "SUCCEEDED")),
        Err(DomainError::AlreadyApplied {
            event: "SmokeFinished"
        })
    );
    assert!(apply(&awaiting, Event::SmokeTimedOut).is_err());
    assert!(apply(&failed, Event::SmokeTimedOut).is_err());
    // the HTTP check is over once the smoke test runs
    assert!(apply(
        &running,
        Event::CheckAttempted {
            environment: Environment::Test,
            attempt: 1,
            result: check_result(false)
        }
    )
    .is_err());
}

#[test]
fn smoke_events_are_refused_outside_the_test_verification() {
    for status in [
        Status::Building,
        Status::DeployingTest,
        Status::AwaitingApproval,
        Status::VerifyingProd,
        Status::BakingProd,
        Status::Succeeded,
    ] {
        let e = at(status);
        for event in [
            requested(1, true),
            started(BUILD),
            finished(BUILD, "SUCCEEDED"),
            Event::SmokeTimedOut,
        ] {
            let name = event.name();
            assert!(apply(&e, event).is_err(), "{name} in {status}");
        }
    }
    // a test verification without a smoke test asked for
    let e = at(Status::VerifyingTest);
    assert!(apply(&e, started(BUILD)).is_err());
    assert!(apply(&e, Event::SmokeTimedOut).is_err());
}

#[test]
fn a_smoke_build_that_never_reports_fails_after_its_timeout_only() {
    let running = running();
    let deadline = running
        .verify_test
        .as_ref()
        .unwrap()
        .smoke
        .as_ref()
        .unwrap()
        .deadline()
        .unwrap();
    assert_eq!(
        transition(
            &running,
            Change::new(
                Event::SmokeTimedOut,
                deadline - chrono::Duration::seconds(1),
                "t"
            )
        ),
        Err(DomainError::SmokeNotOver { until: deadline })
    );
    let tr = transition(&running, Change::new(Event::SmokeTimedOut, deadline, "t")).unwrap();
    assert_eq!(tr.execution.status, Status::TestFailed);
    assert_eq!(tr.effects, vec![Effect::Notify]);
    let reason = &tr.execution.failure.as_ref().unwrap().reason;
    assert!(
        reason.contains("did not report within 10 minutes"),
        "{reason}"
    );
    // its late event changes nothing
    assert_eq!(
        apply(&tr.execution, finished(BUILD, "SUCCEEDED")),
        Err(DomainError::AlreadyApplied {
            event: "SmokeFinished"
        })
    );
}
