//! Legal transitions: the happy path, failure edges, retries, owed effects and rollbacks.

use super::*;
use crate::domain::execution::fixtures::*;
use crate::domain::execution::*;

#[test]
fn happy_path_records_history_and_effects() {
    let e = new_exec();
    assert_eq!(e.status, Status::Received);
    assert_eq!(e.version, 1);
    assert_eq!(e.history.len(), 1);
    assert_eq!(e.history[0].from, None);

    let (e, fx) = step(
        &e,
        Event::BuildStarted {
            build_id: "b1".into(),
        },
    );
    assert_eq!((e.status, e.version, fx), (Status::Building, 2, vec![]));
    assert_eq!(e.awaited(), Some(Link::Build("b1".into())));

    let (e, fx) = step(
        &e,
        Event::BuildProgress {
            phase: "BUILD".into(),
        },
    );
    assert_eq!((e.status, fx.len()), (Status::Building, 0));
    assert_eq!(e.history.last().unwrap().cause, "build phase BUILD");

    let (e, fx) = step(
        &e,
        Event::BuildSucceeded {
            image: image(),
            resolved_sha: None,
            note: None,
        },
    );
    assert_eq!((e.status, fx), (Status::Built, vec![Effect::DeployTest]));

    let (e, fx) = step(
        &e,
        Event::DeployStarted {
            deployment: deployment(Environment::Test, "ecs-svc/1"),
        },
    );
    assert_eq!((e.status, fx), (Status::DeployingTest, vec![]));
    assert_eq!(e.awaited(), Some(Link::Deployment("ecs-svc/1".into())));

    let (e, fx) = step(
        &e,
        Event::DeployCompleted {
            deployment_id: "ecs-svc/1".into(),
            approval: grant(),
        },
    );
    assert_eq!(e.status, Status::AwaitingApproval);
    assert_eq!(
        fx,
        vec![
            Effect::RecordRevision(Environment::Test),
            Effect::SupersedeOlder,
            Effect::RequestApproval
        ]
    );
    assert_eq!(
        pending_effects(&e),
        fx,
        "until the request is sent it is owed"
    );
    let (e, fx) = step(
        &e,
        Event::ApprovalRequested {
            message_id: "m-1".into(),
        },
    );
    assert_eq!((e.status, fx), (Status::AwaitingApproval, vec![]));
    assert!(pending_effects(&e).is_empty());
    assert_eq!(
        apply(
            &e,
            Event::ApprovalRequested {
                message_id: "m-2".into()
            }
        ),
        Err(DomainError::AlreadyApplied {
            event: "ApprovalRequested"
        })
    );
    assert_eq!(e.approval.as_ref().unwrap().nonce, "n1");

    let (e, fx) = step(
        &e,
        Event::Decided {
            decision: decision(Verdict::Approve),
        },
    );
    assert_eq!(
        (e.status, fx),
        (
            Status::DeployingProd,
            vec![Effect::DeployProd, Effect::SupersedeOlder]
        )
    );
    assert_eq!(
        e.history.last().unwrap().cause,
        "approved by Grace via email link: lgtm"
    );
    assert_eq!(
        e.approval
            .as_ref()
            .unwrap()
            .decision
            .as_ref()
            .unwrap()
            .actor,
        "Grace"
    );

    let (e, _) = step(
        &e,
        Event::DeployStarted {
            deployment: deployment(Environment::Prod, "ecs-svc/2"),
        },
    );
    assert_eq!(e.status, Status::DeployingProd);
    assert_eq!(e.environment_of("ecs-svc/2"), Some(Environment::Prod));
    assert_eq!(e.awaited(), Some(Link::Deployment("ecs-svc/2".into())));

    let (e, fx) = step(
        &e,
        Event::DeployCompleted {
            deployment_id: "ecs-svc/2".into(),
            approval: None,
        },
    );
    assert_eq!(
        (e.status, fx),
        (
            Status::Succeeded,
            vec![Effect::RecordRevision(Environment::Prod)]
        )
    );

    let statuses: Vec<Status> = e.history.iter().map(|h| h.to).collect();
    assert_eq!(
        statuses,
        vec![
            Status::Received,
            Status::Building,
            Status::Building,
            Status::Built,
            Status::DeployingTest,
            Status::AwaitingApproval,
            Status::AwaitingApproval,
            Status::DeployingProd,
            Status::DeployingProd,
            Status::Succeeded
        ]
    );
    // history is append-only and each entry's `from` is the previous entry's `to`
    for w in e.history.windows(2) {
        assert_eq!(w[1].from, Some(w[0].to));
        assert!(w[1].at >= w[0].at);
    }
    assert_eq!(e.version as usize, e.history.len());
}

#[test]
fn failure_edges() {
    let e = at(Status::Received);
    let (f, fx) = step(
        &e,
        Event::BuildStartFailed {
            reason: "AccessDenied".into(),
        },
    );
    assert_eq!((f.status, fx), (Status::BuildFailed, vec![Effect::Notify]));
    assert!(f.failure.unwrap().reason.contains("AccessDenied"));

    let f = at(Status::BuildFailed);
    assert_eq!(f.failure.as_ref().unwrap().stage, Stage::Build);
    assert_eq!(
        f.history.last().unwrap().cause,
        "build FAILED in phase BUILD: exit 1"
    );

    let (f, fx) = step(
        &at(Status::Built),
        Event::DeployStartFailed {
            environment: Environment::Test,
            reason: "no container app".into(),
        },
    );
    assert_eq!((f.status, fx), (Status::TestFailed, vec![Effect::Notify]));

    let f = at(Status::TestFailed);
    assert_eq!(f.failure.as_ref().unwrap().stage, Stage::Test);

    let mut deploying_prod = at(Status::AwaitingApproval);
    deploying_prod = step(
        &deploying_prod,
        Event::Decided {
            decision: decision(Verdict::Approve),
        },
    )
    .0;
    let (f, fx) = step(
        &deploying_prod,
        Event::DeployStartFailed {
            environment: Environment::Prod,
            reason: "throttled".into(),
        },
    );
    assert_eq!((f.status, fx), (Status::ProdFailed, vec![Effect::Notify]));

    let f = at(Status::ProdFailed);
    assert_eq!(f.failure.as_ref().unwrap().stage, Stage::Prod);

    let (r, fx) = step(
        &at(Status::AwaitingApproval),
        Event::Decided {
            decision: decision(Verdict::Reject),
        },
    );
    assert_eq!((r.status, fx), (Status::Rejected, vec![]));

    let (s, _) = step(
        &at(Status::DeployingTest),
        Event::DeployReplaced {
            deployment_id: "ecs-svc/1".into(),
        },
    );
    assert_eq!(s.status, Status::Superseded);
    let (s, _) = step(
        &at(Status::DeployingProd),
        Event::DeployReplaced {
            deployment_id: "ecs-svc/2".into(),
        },
    );
    assert_eq!(s.status, Status::Superseded);

    let (rb, fx) = step(
        &at(Status::Succeeded),
        Event::RolledBack {
            by: ExecutionId::generate(t(1)),
        },
    );
    assert_eq!((rb.status, fx), (Status::RolledBack, vec![Effect::Notify]));
    assert_eq!(at(Status::RolledBack).status, Status::RolledBack);
}

#[test]
fn pending_effects_per_state() {
    assert_eq!(
        pending_effects(&at(Status::Received)),
        vec![Effect::StartBuild]
    );
    assert_eq!(pending_effects(&at(Status::Building)), vec![]);
    assert_eq!(
        pending_effects(&at(Status::Built)),
        vec![Effect::DeployTest]
    );
    let approved = step(
        &at(Status::AwaitingApproval),
        Event::Decided {
            decision: decision(Verdict::Approve),
        },
    )
    .0;
    assert_eq!(pending_effects(&approved), vec![Effect::DeployProd]);
    assert_eq!(
        pending_effects(&at(Status::DeployingProd)),
        vec![],
        "prod deployment recorded"
    );
    assert_eq!(
        pending_effects(&at(Status::Succeeded)),
        vec![Effect::RecordRevision(Environment::Prod)]
    );
    for s in [
        Status::BuildFailed,
        Status::Rejected,
        Status::Expired,
        Status::Superseded,
    ] {
        assert!(pending_effects(&at(s)).is_empty());
    }
}

#[test]
fn prod_failure_retry_redeploys_the_approved_digest() {
    let (r, fx) = step(&at(Status::ProdFailed), Event::Retry);
    assert_eq!(
        (r.status, fx),
        (Status::DeployingProd, vec![Effect::DeployProd])
    );
    assert_eq!(r.image, Some(image()));
    assert!(r.prod.is_none());
    assert!(
        r.approval.unwrap().decision.is_some(),
        "the approval stands"
    );
}

#[test]
fn expiry_only_after_deadline() {
    let a = at(Status::AwaitingApproval);
    let early = transition(&a, Change::new(Event::ApprovalExpired, t(100), "sweeper"));
    assert!(matches!(early, Err(DomainError::NotExpired { .. })));
    let late = transition(&a, Change::new(Event::ApprovalExpired, t(3600), "sweeper")).unwrap();
    assert_eq!(late.execution.status, Status::Expired);
    assert_eq!(late.effects, vec![Effect::Notify]);
}

#[test]
fn retry_restarts_the_failed_stage() {
    let (r, fx) = step(&at(Status::BuildFailed), Event::Retry);
    assert_eq!((r.status, fx), (Status::Received, vec![Effect::StartBuild]));
    assert_eq!(r.attempt, 2);
    assert!(r.build_id.is_none() && r.failure.is_none());
    assert_eq!(r.commit, new_exec().commit);

    let (r, fx) = step(&at(Status::TestFailed), Event::Retry);
    assert_eq!((r.status, fx), (Status::Built, vec![Effect::DeployTest]));
    assert_eq!(r.image, Some(image()), "redeploys the same digest");
    assert!(r.test.is_none());
    // and the redeploy can proceed
    let (r, _) = step(
        &r,
        Event::DeployStarted {
            deployment: deployment(Environment::Test, "ecs-svc/9"),
        },
    );
    assert_eq!(r.status, Status::DeployingTest);
    assert_eq!(r.awaited(), Some(Link::Deployment("ecs-svc/9".into())));
}

#[test]
fn a_retried_build_waits_on_nothing_until_the_new_build_starts() {
    let failed = at(Status::BuildFailed);
    let (r, _) = step(&failed, Event::Retry);
    assert_eq!(r.awaited(), None);
    let (r, _) = step(
        &r,
        Event::BuildStarted {
            build_id: "b2".into(),
        },
    );
    assert_eq!(r.awaited(), Some(Link::Build("b2".into())));
}

#[test]
fn rollback_execution_owes_its_deployment_and_succeeds_on_completion() {
    let restored_exec = at(Status::Succeeded);
    let restored =
        crate::domain::DeployedRevision::completed(&restored_exec, Environment::Prod, t(100))
            .unwrap();
    let rb = Execution::rollback(
        ExecutionId::generate(t(200)),
        "hello",
        Environment::Prod,
        &restored,
        Some(ExecutionId::generate(t(150))),
        t(200),
        "arn:aws:iam::123456789012:user/ops",
    );
    assert_eq!(rb.status, Status::DeployingProd);
    assert!(rb.prod.is_none());
    assert_eq!(pending_effects(&rb), vec![Effect::DeployProd]);
    assert_eq!(rb.history.len(), 1);
    assert_eq!(rb.history[0].to, Status::DeployingProd);
    assert!(rb.history[0].cause.starts_with("rollback of prod"));
    assert_eq!(rb.image, restored_exec.image);
    assert_eq!(
        rb.restores_task_definition(Environment::Prod),
        Some(restored.task_definition.as_str())
    );
    assert_eq!(rb.restores_task_definition(Environment::Test), None);
    let (rb, fx) = step(
        &rb,
        Event::DeployStarted {
            deployment: deployment(Environment::Prod, "ecs-svc/7"),
        },
    );
    assert_eq!((rb.status, fx), (Status::DeployingProd, vec![]));
    let (done, fx) = step(
        &rb,
        Event::DeployCompleted {
            deployment_id: "ecs-svc/7".into(),
            approval: None,
        },
    );
    assert_eq!(
        (done.status, fx),
        (
            Status::Succeeded,
            vec![
                Effect::RecordRevision(Environment::Prod),
                Effect::MarkRolledBack
            ]
        )
    );
    // a rollback that fails is not retried (roll back again instead)
    let (failed, _) = step(
        &rb,
        Event::DeployFailed {
            deployment_id: "ecs-svc/7".into(),
            reason: "circuit breaker".into(),
        },
    );
    assert_eq!(failed.status, Status::ProdFailed);
    assert!(matches!(
        transition(&failed, Change::new(Event::Retry, t(300), "ops")),
        Err(DomainError::CannotRetry(_))
    ));

    let rb_test = Execution::rollback(
        ExecutionId::generate(t(201)),
        "hello",
        Environment::Test,
        &restored,
        None,
        t(201),
        "ops",
    );
    assert_eq!(rb_test.status, Status::Built);
    assert_eq!(pending_effects(&rb_test), vec![Effect::DeployTest]);
    let (rb_test, _) = step(
        &rb_test,
        Event::DeployStarted {
            deployment: deployment(Environment::Test, "ecs-svc/8"),
        },
    );
    let (done, fx) = step(
        &rb_test,
        Event::DeployCompleted {
            deployment_id: "ecs-svc/8".into(),
            approval: None,
        },
    );
    assert_eq!(
        (done.status, fx),
        (
            Status::Succeeded,
            vec![Effect::RecordRevision(Environment::Test)]
        )
    );
}
