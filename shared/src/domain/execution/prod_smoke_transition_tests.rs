//! The smoke test phase of VERIFYING_PROD: passed → the bake (or SUCCEEDED), failed / timed out
//! → PROD_FAILED owing the automatic rollback; duplicated, late and crossed events (the test
//! smoke build's late event while production verifies) change nothing; blue/green refuses it.

use crate::domain::execution::fixtures::*;
use crate::domain::execution::*;

const TEST_BUILD: &str = "hello-smoke:0001";
const PROD_BUILD: &str = "hello-smoke:0002";

fn requested(env: Environment, attempt: u32, with_check: bool) -> Event {
    Event::SmokeRequested {
        environment: env,
        attempt,
        result: with_check.then(|| check_result(true)),
        project: "hello-smoke".into(),
        target_url: "https://hello-prod.example.com/health".into(),
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
        link: Some("https://console.aws.amazon.com/cloudwatch/home#logEvent:prod-smoke".into()),
        approval: None,
    }
}

/// VERIFYING_PROD (bake of 60 s configured) with the prod smoke build running.
fn running_prod() -> Execution {
    let (asked, _) = step(
        &at(Status::VerifyingProd),
        requested(Environment::Prod, 1, true),
    );
    step(&asked, started(PROD_BUILD)).0
}

/// VERIFYING_PROD without a bake, the prod smoke build running.
fn running_prod_without_bake() -> Execution {
    let mut e = at(Status::VerifyingProd);
    if let Some(v) = e.verify_prod.as_mut() {
        v.bake_seconds = 0;
        v.alarms.clear();
    }
    let (asked, _) = step(&e, requested(Environment::Prod, 1, true));
    step(&asked, started(PROD_BUILD)).0
}

#[test]
fn a_passed_prod_check_starts_the_smoke_test_and_its_success_starts_the_bake() {
    let verifying = at(Status::VerifyingProd);
    let (asked, effects) = step(&verifying, requested(Environment::Prod, 1, true));
    assert_eq!(asked.status, Status::VerifyingProd);
    assert!(effects.is_empty());
    let v = asked.verify_prod.as_ref().unwrap();
    assert_eq!(v.attempts, 1);
    assert!(v.passed_at.is_none(), "not verified before the smoke test");
    let run = v.smoke.as_ref().unwrap();
    // its own token: never the test smoke build's
    assert_eq!(run.token, format!("{}-smoke-prod-1", asked.id));
    assert!(asked.verify_test.is_none() || asked.verify_test.as_ref().unwrap().smoke.is_none());
    assert_eq!(asked.awaited(), Some(Link::Deployment("ecs-svc/2".into())));
    assert_eq!(
        pending_effects(&asked),
        vec![Effect::Verify(Environment::Prod)]
    );

    let (running, effects) = step(&asked, started(PROD_BUILD));
    assert!(effects.is_empty());
    assert_eq!(running.awaited(), Some(Link::Build(PROD_BUILD.into())));
    assert!(running
        .history
        .last()
        .unwrap()
        .cause
        .starts_with("prod smoke test build hello-smoke:0002 started"));

    let (baking, effects) = step(&running, finished(PROD_BUILD, "SUCCEEDED"));
    assert_eq!(baking.status, Status::BakingProd);
    assert_eq!(effects, vec![Effect::Verify(Environment::Prod)]);
    let v = baking.verify_prod.as_ref().unwrap();
    assert!(v.passed_at.is_some());
    assert!(v.bake_until.is_some());
    assert!(v.smoke.as_ref().unwrap().passed());
    let cause = &baking.history.last().unwrap().cause;
    assert!(cause.starts_with("prod verified: GET"), "{cause}");
    assert!(cause.contains("smoke test hello-smoke passed"), "{cause}");
    assert!(cause.ends_with("baking for 60 s"), "{cause}");
    assert_eq!(baking.awaited(), Some(Link::Deployment("ecs-svc/2".into())));
}

#[test]
fn without_a_bake_a_passed_prod_smoke_test_succeeds() {
    let (done, effects) = step(
        &running_prod_without_bake(),
        finished(PROD_BUILD, "SUCCEEDED"),
    );
    assert_eq!(done.status, Status::Succeeded);
    assert_eq!(effects, vec![Effect::RecordRevision(Environment::Prod)]);
    assert!(pending_effects(&done).contains(&Effect::RecordRevision(Environment::Prod)));
}

#[test]
fn a_failed_prod_smoke_test_rolls_back_automatically_with_its_cause() {
    for status in ["FAILED", "FAULT", "STOPPED", "TIMED_OUT"] {
        let (failed, effects) = step(&running_prod(), finished(PROD_BUILD, status));
        assert_eq!(failed.status, Status::ProdFailed, "{status}");
        assert_eq!(effects, vec![Effect::AutoRollback, Effect::Notify]);
        let v = failed.verify_prod.as_ref().unwrap();
        assert!(v.failed);
        assert!(v.rollback.is_none());
        assert_eq!(v.smoke.as_ref().unwrap().outcome.as_deref(), Some(status));
        let f = failed.failure.as_ref().unwrap();
        assert_eq!(f.stage, Stage::Prod);
        assert!(
            f.reason
                .contains(&format!("smoke test hello-smoke {status}")),
            "{}",
            f.reason
        );
        assert!(f.reason.contains("curl exit 22"));
        assert_eq!(
            f.link.as_deref(),
            Some("https://console.aws.amazon.com/cloudwatch/home#logEvent:prod-smoke")
        );
        assert!(failed
            .history
            .last()
            .unwrap()
            .cause
            .ends_with("rolling back automatically"));
        // owed until the rollback is recorded (a Lambda dying after this write)
        assert_eq!(pending_effects(&failed), vec![Effect::AutoRollback]);
        // the rollback started is recorded once
        let by = ExecutionId::generate(t(500));
        let (recorded, _) = step(&failed, Event::AutoRollbackStarted { by: by.clone() });
        assert_eq!(recorded.verify_prod.as_ref().unwrap().rollback, Some(by));
        assert!(pending_effects(&recorded).is_empty());
    }
}

#[test]
fn a_prod_smoke_build_that_never_reports_fails_and_rolls_back_after_its_timeout_only() {
    let running = running_prod();
    let deadline = running
        .verify_prod
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
    assert_eq!(tr.execution.status, Status::ProdFailed);
    assert_eq!(tr.effects, vec![Effect::AutoRollback, Effect::Notify]);
    assert!(tr.execution.verify_prod.as_ref().unwrap().failed);
    let reason = &tr.execution.failure.as_ref().unwrap().reason;
    assert!(
        reason.contains("did not report within 10 minutes"),
        "{reason}"
    );
    // its late event changes nothing
    assert_eq!(
        apply(&tr.execution, finished(PROD_BUILD, "SUCCEEDED")),
        Err(DomainError::AlreadyApplied {
            event: "SmokeFinished"
        })
    );
}

#[test]
fn duplicated_late_and_crossed_prod_smoke_events_change_nothing() {
    let running = running_prod();
    // the request and the start once more
    assert!(matches!(
        apply(&running, requested(Environment::Prod, 1, true)),
        Err(DomainError::AlreadyApplied { .. })
    ));
    assert_eq!(
        apply(&running, started(PROD_BUILD)),
        Err(DomainError::AlreadyApplied {
            event: "SmokeStarted"
        })
    );
    // a second build of the same round (token expired): the first one counts
    assert_eq!(
        apply(&running, started("hello-smoke:0099")),
        Err(DomainError::UnknownSmokeBuild {
            got: "hello-smoke:0099".into()
        })
    );
    // a test smoke request while production verifies
    assert!(apply(&running, requested(Environment::Test, 2, true)).is_err());
    // an unknown build's result
    assert_eq!(
        apply(&running, finished("other:1", "FAILED")),
        Err(DomainError::UnknownSmokeBuild {
            got: "other:1".into()
        })
    );
    // in progress decides nothing
    assert!(apply(&running, finished(PROD_BUILD, "IN_PROGRESS")).is_err());
    // decided once: the same result again, or a contradicting one, changes nothing
    let (baking, _) = step(&running, finished(PROD_BUILD, "SUCCEEDED"));
    for status in ["SUCCEEDED", "FAILED"] {
        assert_eq!(
            apply(&baking, finished(PROD_BUILD, status)),
            Err(DomainError::AlreadyApplied {
                event: "SmokeFinished"
            })
        );
    }
    assert!(apply(&baking, Event::SmokeTimedOut).is_err());
}

#[test]
fn the_test_smoke_builds_late_event_does_not_decide_production() {
    // test verified with a smoke test, approved, deployed to prod: prod verifies
    let mut e = at(Status::VerifyingProd);
    let test_run = crate::domain::verify::SmokeRun {
        project: "hello-smoke".into(),
        target_url: "https://hello-test.example.com/health".into(),
        timeout_minutes: 10,
        token: format!("{}-smoke-1", e.id),
        requested_at: t(5),
        build_id: Some(TEST_BUILD.into()),
        started_at: Some(t(6)),
        outcome: Some("SUCCEEDED".into()),
        finished_at: Some(t(7)),
        logs_link: None,
    };
    e.verify_test
        .get_or_insert_with(|| e.verify_prod.clone().unwrap())
        .smoke = Some(test_run);
    let (asked, _) = step(&e, requested(Environment::Prod, 1, true));
    let running = step(&asked, started(PROD_BUILD)).0;
    // the test build's result again (late, or redriven): already decided
    for status in ["SUCCEEDED", "FAILED"] {
        assert_eq!(
            apply(&running, finished(TEST_BUILD, status)),
            Err(DomainError::AlreadyApplied {
                event: "SmokeFinished"
            })
        );
    }
    // the prod build decides production
    let (failed, _) = step(&running, finished(PROD_BUILD, "FAILED"));
    assert_eq!(failed.status, Status::ProdFailed);
    assert!(failed
        .verify_test
        .as_ref()
        .unwrap()
        .smoke
        .as_ref()
        .unwrap()
        .passed());
}

#[test]
fn a_blue_green_production_verification_takes_no_smoke_test() {
    let mut e = at(Status::VerifyingProd);
    if let Some(v) = e.verify_prod.as_mut() {
        v.green = Some("arn:aws:ecs:us-east-1:123456789012:service-revision/c/s/1".into());
    }
    assert!(matches!(
        apply(&e, requested(Environment::Prod, 1, true)),
        Err(DomainError::IllegalTransition { .. })
    ));
}

#[test]
fn prod_smoke_events_are_refused_outside_the_prod_verification() {
    for status in [
        Status::DeployingProd,
        Status::BakingProd,
        Status::Succeeded,
        Status::ProdFailed,
    ] {
        let e = at(status);
        for event in [
            requested(Environment::Prod, 1, true),
            started(PROD_BUILD),
            finished(PROD_BUILD, "FAILED"),
            Event::SmokeTimedOut,
        ] {
            let name = event.name();
            assert!(apply(&e, event).is_err(), "{name} in {status}");
        }
    }
    // a smoke build whose prod verification moved on (a rollback retried it) is not found
    let running = running_prod();
    let mut moved = running.clone();
    moved.status = Status::BakingProd;
    assert!(apply(&moved, finished(PROD_BUILD, "FAILED")).is_err());
}
