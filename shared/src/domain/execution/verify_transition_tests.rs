//! Verified promotion's transitions: VERIFYING_TEST, VERIFYING_PROD, BAKING_PROD — legal
//! paths with their effects, repeated and out-of-order attempts, rollbacks never verified,
//! what a stored execution still owes.

use super::*;
use crate::domain::execution::fixtures::*;
use crate::domain::execution::*;

fn attempted(env: Environment, attempt: u32) -> Event {
    Event::CheckAttempted {
        environment: env,
        attempt,
        result: check_result(false),
    }
}

fn passed(env: Environment, attempt: u32) -> Event {
    Event::CheckPassed {
        environment: env,
        attempt,
        result: Some(check_result(true)),
        approval: if env == Environment::Test {
            grant()
        } else {
            None
        },
    }
}

#[test]
fn a_verified_test_deployment_asks_for_approval_with_what_was_verified() {
    let (verifying, effects) = step(&at(Status::DeployingTest), verify_started("ecs-svc/1", 0));
    assert_eq!(verifying.status, Status::VerifyingTest);
    assert_eq!(
        effects,
        vec![
            Effect::RecordRevision(Environment::Test),
            Effect::Verify(Environment::Test)
        ]
    );
    assert!(
        verifying.approval.is_none(),
        "no approval round before the check passed"
    );
    let (once, effects) = step(&verifying, attempted(Environment::Test, 1));
    assert_eq!(once.status, Status::VerifyingTest);
    assert!(effects.is_empty());
    assert_eq!(once.verify_test.as_ref().unwrap().attempts, 1);
    let (awaiting, effects) = step(&once, passed(Environment::Test, 2));
    assert_eq!(awaiting.status, Status::AwaitingApproval);
    assert_eq!(
        effects,
        vec![
            Effect::RecordRevision(Environment::Test),
            Effect::SupersedeOlder,
            Effect::RequestApproval
        ]
    );
    let v = awaiting.verify_test.as_ref().unwrap();
    assert_eq!(v.attempts, 2);
    assert!(v.passed_at.is_some());
    assert!(v.summary().unwrap().contains("version 0123456789ab"));
    assert!(awaiting.approval.is_some());
    assert!(awaiting
        .history
        .last()
        .unwrap()
        .cause
        .starts_with("test verified: GET https://hello.example.com/health answered 200"));
}

#[test]
fn a_passed_test_check_needs_an_approval_round() {
    let e = at(Status::VerifyingTest);
    let r = apply(
        &e,
        Event::CheckPassed {
            environment: Environment::Test,
            attempt: 1,
            result: Some(check_result(true)),
            approval: None,
        },
    );
    assert_eq!(r, Err(DomainError::MissingApproval));
}

#[test]
fn a_failed_test_verification_fails_the_test_stage_with_its_cause_and_no_approval() {
    let e = at(Status::VerifyingTest);
    let (failed, effects) = step(
        &e,
        Event::VerifyFailed {
            environment: Environment::Test,
            reason: "3 check attempt(s) failed; last: version seen ffffffffffff".into(),
            result: Some(check_result(false)),
        },
    );
    assert_eq!(failed.status, Status::TestFailed);
    assert_eq!(effects, vec![Effect::Notify]);
    assert!(failed.approval.is_none());
    let f = failed.failure.as_ref().unwrap();
    assert_eq!(f.stage, Stage::Test);
    assert!(f.reason.contains("ffffffffffff"));
    assert_eq!(failed.verify_test.as_ref().unwrap().attempts, 1);
    // retry redeploys test and verifies again from scratch
    let (retried, effects) = step(&failed, Event::Retry);
    assert_eq!(retried.status, Status::Built);
    assert_eq!(effects, vec![Effect::DeployTest]);
    assert!(retried.verify_test.is_none());
}

#[test]
fn repeated_attempts_are_already_applied_and_skipped_ones_refused() {
    let e = at(Status::VerifyingTest);
    let (once, _) = step(&e, attempted(Environment::Test, 1));
    // the same attempt again (a resumer racing the first worker)
    assert_eq!(
        apply(&once, attempted(Environment::Test, 1)),
        Err(DomainError::AlreadyApplied {
            event: "CheckAttempted"
        })
    );
    assert_eq!(
        apply(&once, passed(Environment::Test, 1)),
        Err(DomainError::AlreadyApplied {
            event: "CheckPassed"
        })
    );
    // an attempt out of order (3 before 2)
    assert!(matches!(
        apply(&once, attempted(Environment::Test, 3)),
        Err(DomainError::IllegalTransition { .. })
    ));
    // a check of the other environment
    assert!(matches!(
        apply(&once, attempted(Environment::Prod, 2)),
        Err(DomainError::IllegalTransition { .. })
    ));
    // the completion event again: already verifying
    assert_eq!(
        apply(&once, verify_started("ecs-svc/1", 0)),
        Err(DomainError::AlreadyApplied {
            event: "VerifyStarted"
        })
    );
    // a completion of another deployment
    assert!(matches!(
        apply(&once, verify_started("ecs-svc/9", 0)),
        Err(DomainError::UnknownDeployment { .. })
    ));
    // a plain DeployCompleted (a pipeline whose verify was removed meanwhile) is refused
    assert!(apply(
        &once,
        Event::DeployCompleted {
            deployment_id: "ecs-svc/1".into(),
            approval: grant()
        }
    )
    .is_err());
    // a late check once the state moved on
    let (awaiting, _) = step(&once, passed(Environment::Test, 2));
    assert!(apply(&awaiting, attempted(Environment::Test, 3)).is_err());
    assert!(apply(&awaiting, passed(Environment::Test, 3)).is_err());
}

#[test]
fn production_verifies_bakes_and_only_then_succeeds() {
    let (verifying, effects) = step(&at(Status::DeployingProd), verify_started("ecs-svc/2", 60));
    assert_eq!(verifying.status, Status::VerifyingProd);
    assert_eq!(
        effects,
        vec![
            Effect::RecordRevision(Environment::Prod),
            Effect::Verify(Environment::Prod)
        ]
    );
    let v = verifying.verify_prod.as_ref().unwrap();
    assert_eq!(v.bake_seconds, 60);
    assert_eq!(v.alarms, vec!["hello-prod-5xx".to_string()]);
    let passed_at = t(verifying.history.len() as i64);
    let (baking, effects) = step(&verifying, passed(Environment::Prod, 1));
    assert_eq!(baking.status, Status::BakingProd);
    assert_eq!(effects, vec![Effect::Verify(Environment::Prod)]);
    let until = baking.verify_prod.as_ref().unwrap().bake_until.unwrap();
    assert_eq!(until, passed_at + chrono::Duration::seconds(60));
    // not before the bake is over
    assert_eq!(
        transition(
            &baking,
            Change::new(Event::BakePassed, until - chrono::Duration::seconds(1), "t")
        ),
        Err(DomainError::BakeNotOver { until })
    );
    let done = transition(&baking, Change::new(Event::BakePassed, until, "t")).unwrap();
    assert_eq!(done.execution.status, Status::Succeeded);
    assert_eq!(
        done.effects,
        vec![Effect::RecordRevision(Environment::Prod)]
    );
    // a repeated BakePassed once succeeded
    assert!(transition(&done.execution, Change::new(Event::BakePassed, until, "t")).is_err());
}

#[test]
fn production_without_a_bake_succeeds_when_its_check_passes() {
    let (verifying, _) = step(&at(Status::DeployingProd), verify_started("ecs-svc/2", 0));
    let (done, effects) = step(&verifying, passed(Environment::Prod, 1));
    assert_eq!(done.status, Status::Succeeded);
    assert_eq!(effects, vec![Effect::RecordRevision(Environment::Prod)]);
}

#[test]
fn a_failed_production_verification_rolls_back_automatically_once() {
    for status in [Status::VerifyingProd, Status::BakingProd] {
        let (failed, effects) = step(
            &at(status),
            Event::VerifyFailed {
                environment: Environment::Prod,
                reason: "during the bake: alarm hello-prod-5xx is in ALARM".into(),
                result: None,
            },
        );
        assert_eq!(failed.status, Status::ProdFailed, "{status}");
        assert_eq!(effects, vec![Effect::AutoRollback, Effect::Notify]);
        assert_eq!(failed.failure.as_ref().unwrap().stage, Stage::Prod);
        // owed until the rollback is recorded
        assert_eq!(pending_effects(&failed), vec![Effect::AutoRollback]);
        let by = ExecutionId::generate(t(500));
        let (started, effects) = step(&failed, Event::AutoRollbackStarted { by: by.clone() });
        assert_eq!(started.status, Status::ProdFailed);
        assert!(effects.is_empty());
        assert!(pending_effects(&started).is_empty());
        assert_eq!(
            apply(&started, Event::AutoRollbackStarted { by: by.clone() }),
            Err(DomainError::AlreadyApplied {
                event: "AutoRollbackStarted"
            })
        );
        // the rollback completed: ROLLED_BACK, the cause kept
        let (rolled, effects) = step(&started, Event::RolledBack { by });
        assert_eq!(rolled.status, Status::RolledBack);
        assert_eq!(effects, vec![Effect::Notify]);
        assert!(rolled.failure.as_ref().unwrap().reason.contains("ALARM"));
    }
    // a prod failure that was not a verification owes no automatic rollback
    assert!(pending_effects(&at(Status::ProdFailed)).is_empty());
    assert!(apply(
        &at(Status::ProdFailed),
        Event::AutoRollbackStarted {
            by: ExecutionId::generate(t(1))
        }
    )
    .is_err());
}

#[test]
fn rollbacks_are_never_verified() {
    let restored = crate::domain::DeployedRevision::completed(
        &at(Status::Succeeded),
        Environment::Prod,
        t(90),
    )
    .expect("a completed prod deployment");
    let rb = Execution::rollback(
        ExecutionId::generate(t(100)),
        "hello",
        Environment::Prod,
        &restored,
        None,
        t(100),
        "ops",
    );
    let (deploying, _) = step(
        &rb,
        Event::DeployStarted {
            deployment: deployment(Environment::Prod, "ecs-svc/7"),
        },
    );
    assert!(matches!(
        apply(&deploying, verify_started("ecs-svc/7", 60)),
        Err(DomainError::IllegalTransition { .. })
    ));
}

#[test]
fn verifying_states_owe_the_verification_and_are_active() {
    for (status, env) in [
        (Status::VerifyingTest, Environment::Test),
        (Status::VerifyingProd, Environment::Prod),
        (Status::BakingProd, Environment::Prod),
    ] {
        assert!(status.is_active());
        assert!(!status.is_failure());
        assert_eq!(pending_effects(&at(status)), vec![Effect::Verify(env)]);
        assert_eq!(status.as_str().parse::<Status>().unwrap(), status);
        // stored and read back unchanged
        let e = at(status);
        let back: Execution = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
    assert_eq!(
        "VERIFYING_TEST".parse::<Status>().unwrap(),
        Status::VerifyingTest
    );
    assert_eq!(
        serde_json::to_string(&Status::BakingProd).unwrap(),
        "\"BAKING_PROD\""
    );
}

#[test]
fn executions_stored_before_verification_read_back_without_it() {
    let e = at(Status::AwaitingApproval);
    let text = serde_json::to_string(&e).unwrap();
    assert!(
        !text.contains("verify_"),
        "nothing new is written for unverified pipelines"
    );
    let back: Execution = serde_json::from_str(&text).unwrap();
    assert!(back.verify_test.is_none() && back.verify_prod.is_none());
}
