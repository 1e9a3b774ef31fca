//! ECS blue/green's transitions: the lifecycle hook's verification of the green revision
//! (DEPLOYING_PROD → VERIFYING_PROD without effects), its pass (stays VERIFYING_PROD until ECS
//! completes), its failure (PROD_FAILED, ECS rolls back: no automatic rollback owed), ECS's
//! completion (bake or SUCCEEDED) and failure, repeated and refused events.

use super::*;
use crate::domain::execution::fixtures::*;
use crate::domain::execution::*;

const GREEN: &str = "arn:aws:ecs:us-east-1:1:service-revision/apps/hello-prod/7";

fn green_started(bake_seconds: u32) -> Event {
    Event::GreenVerifyStarted {
        deployment_id: "ecs-svc/2".into(),
        target_revision: GREEN.into(),
        bake_seconds,
        alarms: vec!["shipgate-hello-5xx".into()],
    }
}

fn passed(attempt: u32) -> Event {
    Event::CheckPassed {
        environment: Environment::Prod,
        attempt,
        result: Some(check_result(true)),
        approval: None,
    }
}

fn completed() -> Event {
    Event::DeployCompleted {
        deployment_id: "ecs-svc/2".into(),
        approval: None,
    }
}

#[test]
fn the_green_revision_is_verified_before_ecs_completes_then_bakes() {
    let (verifying, effects) = step(&at(Status::DeployingProd), green_started(60));
    assert_eq!(verifying.status, Status::VerifyingProd);
    assert!(
        effects.is_empty(),
        "the hook drives the checks: {effects:?}"
    );
    let v = verifying.verify_prod.as_ref().unwrap();
    assert_eq!(v.green.as_deref(), Some(GREEN));
    assert_eq!(
        pending_effects(&verifying),
        vec![Effect::Verify(Environment::Prod)]
    );
    // the same hook start again is already applied; another revision's is refused
    assert!(matches!(
        apply(&verifying, green_started(60)),
        Err(DomainError::AlreadyApplied { .. })
    ));
    let mut other = green_started(60);
    if let Event::GreenVerifyStarted {
        target_revision, ..
    } = &mut other
    {
        *target_revision = "arn:aws:ecs:us-east-1:1:service-revision/apps/hello-prod/8".into();
    }
    assert!(apply(&verifying, other).is_err());
    // (ECS's completion before the check passed: the fallback test below)
    let (ok, effects) = step(&verifying, passed(1));
    assert_eq!(
        ok.status,
        Status::VerifyingProd,
        "ECS has not completed yet"
    );
    assert!(effects.is_empty());
    assert!(ok.verify_prod.as_ref().unwrap().green_passed());
    assert!(ok.history.last().unwrap().cause.contains("test listener"));
    // ECS completes: the bake starts and what runs is recorded
    let (baking, effects) = step(&ok, completed());
    assert_eq!(baking.status, Status::BakingProd);
    assert_eq!(
        effects,
        vec![
            Effect::RecordRevision(Environment::Prod),
            Effect::Verify(Environment::Prod)
        ]
    );
    assert!(baking.verify_prod.as_ref().unwrap().bake_until.is_some());
    // the same completion through VerifyStarted (a pipeline that verifies prod) is the same
    let (baking2, _) = step(&ok, verify_started("ecs-svc/2", 60));
    assert_eq!(baking2.status, Status::BakingProd);
    assert!(
        apply(&baking, completed()).is_err(),
        "a repeated completion"
    );
    // an alarm in the bake after ECS completed: shipgate rolls back (ECS's deployment is over)
    let (failed, effects) = step(
        &baking,
        Event::VerifyFailed {
            environment: Environment::Prod,
            reason: "alarm".into(),
            result: None,
        },
    );
    assert_eq!(failed.status, Status::ProdFailed);
    assert_eq!(effects, vec![Effect::AutoRollback, Effect::Notify]);
    assert_eq!(pending_effects(&failed), vec![Effect::AutoRollback]);
}

#[test]
fn without_a_bake_ecs_completion_succeeds() {
    let (verifying, _) = step(&at(Status::DeployingProd), green_started(0));
    let (ok, _) = step(&verifying, passed(1));
    let (done, effects) = step(&ok, completed());
    assert_eq!(done.status, Status::Succeeded);
    assert_eq!(effects, vec![Effect::RecordRevision(Environment::Prod)]);
}

#[test]
fn a_failed_green_revision_is_rolled_back_by_ecs_not_by_shipgate() {
    let (verifying, _) = step(&at(Status::DeployingProd), green_started(60));
    let (failed, effects) = step(
        &verifying,
        Event::VerifyFailed {
            environment: Environment::Prod,
            reason: "4 attempts failed".into(),
            result: Some(check_result(false)),
        },
    );
    assert_eq!(failed.status, Status::ProdFailed);
    assert_eq!(
        effects,
        vec![Effect::RecordFailure(Environment::Prod), Effect::Notify]
    );
    assert!(failed.verify_prod.as_ref().unwrap().rolled_back_by_ecs());
    assert!(
        pending_effects(&failed).is_empty(),
        "no automatic rollback owed"
    );
    assert!(failed
        .history
        .last()
        .unwrap()
        .cause
        .contains("ECS rolls production back"));
    // ECS then reports the deployment failed: nothing more
    assert!(apply(
        &failed,
        Event::DeployFailed {
            deployment_id: "ecs-svc/2".into(),
            reason: "rolled back".into()
        }
    )
    .is_err());
    assert!(apply(
        &failed,
        Event::AutoRollbackStarted {
            by: ExecutionId::generate(t(5))
        }
    )
    .is_err());
}

#[test]
fn ecs_giving_up_during_the_hook_ends_prod_failed() {
    let (verifying, _) = step(&at(Status::DeployingProd), green_started(60));
    let (failed, effects) = step(
        &verifying,
        Event::DeployFailed {
            deployment_id: "ecs-svc/2".into(),
            reason: "hook timed out".into(),
        },
    );
    assert_eq!(failed.status, Status::ProdFailed);
    assert_eq!(
        effects,
        vec![Effect::RecordFailure(Environment::Prod), Effect::Notify]
    );
    assert!(pending_effects(&failed).is_empty());
    // another deployment's failure is not this execution's
    assert!(matches!(
        apply(
            &verifying,
            Event::DeployFailed {
                deployment_id: "ecs-svc/9".into(),
                reason: "x".into()
            }
        ),
        Err(DomainError::UnknownDeployment { .. })
    ));
}

#[test]
fn the_hook_starts_only_an_approved_deployment_under_way() {
    for status in [
        Status::Received,
        Status::Building,
        Status::Built,
        Status::DeployingTest,
        Status::VerifyingTest,
        Status::AwaitingApproval,
        Status::BakingProd,
        Status::Succeeded,
    ] {
        assert!(apply(&at(status), green_started(0)).is_err(), "{status}");
    }
    // a non-blue/green prod verification is not a hook's
    let plain = at(Status::VerifyingProd);
    assert!(apply(&plain, green_started(0)).is_err());
    let mut wrong = green_started(0);
    if let Event::GreenVerifyStarted { deployment_id, .. } = &mut wrong {
        *deployment_id = "ecs-svc/1".into();
    }
    assert!(matches!(
        apply(&at(Status::DeployingProd), wrong),
        Err(DomainError::UnknownDeployment { .. })
    ));
}

#[test]
fn a_completion_before_the_green_revision_passed_falls_back_to_verifying_production() {
    // the hook started checking, then ECS completed anyway (its timeout action continued)
    let (verifying, _) = step(&at(Status::DeployingProd), green_started(60));
    let with_attempt = step(
        &verifying,
        Event::CheckAttempted {
            environment: Environment::Prod,
            attempt: 1,
            result: check_result(false),
        },
    )
    .0;
    for event in [completed(), verify_started("ecs-svc/2", 60)] {
        let (fallback, effects) = step(&with_attempt, event);
        assert_eq!(fallback.status, Status::VerifyingProd);
        assert_eq!(
            effects,
            vec![
                Effect::RecordRevision(Environment::Prod),
                Effect::Verify(Environment::Prod)
            ]
        );
        let v = fallback.verify_prod.as_ref().unwrap();
        assert!(v.green.is_none(), "now an ordinary production verification");
        assert_eq!(v.attempts, 0);
        assert!(v.last.is_none());
        assert!(fallback
            .history
            .last()
            .unwrap()
            .cause
            .contains("completed before its green revision passed"));
        // from here it is the rolling path: a pass bakes, a failure rolls back automatically
        let (baking, _) = step(&fallback, passed(1));
        assert_eq!(baking.status, Status::BakingProd);
        let (failed, effects) = step(
            &fallback,
            Event::VerifyFailed {
                environment: Environment::Prod,
                reason: "1 check attempt(s) failed".into(),
                result: Some(check_result(false)),
            },
        );
        assert_eq!(failed.status, Status::ProdFailed);
        assert_eq!(effects, vec![Effect::AutoRollback, Effect::Notify]);
        // the same completion again changes nothing more
        assert!(apply(&fallback, completed()).is_err());
    }
    // another deployment's completion is refused
    assert!(matches!(
        apply(
            &verifying,
            Event::DeployCompleted {
                deployment_id: "ecs-svc/9".into(),
                approval: None
            }
        ),
        Err(DomainError::UnknownDeployment { .. })
    ));
}
