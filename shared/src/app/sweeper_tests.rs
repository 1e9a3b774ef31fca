//! The sweeper, one test per branch, against the fakes.

use chrono::Duration;

use super::sweeper::{sweep, SweepLimits};
use super::test_support::*;
use crate::domain::{Environment, Status};
use crate::fake_world::FakeWorld;
use crate::ports::{Clock, DeploymentObservation, ExecutionStore, ServiceError};

#[tokio::test]
async fn expires_approvals_once_with_a_notice() {
    let w = FakeWorld::with_pipeline().await;
    let id = awaiting(&w, 1).await;
    let limits = SweepLimits::default();
    assert_eq!(
        sweep(&w.services, &limits).await.unwrap().expired,
        0,
        "not yet"
    );
    w.clock.advance(Duration::hours(73));
    let r = sweep(&w.services, &limits).await.unwrap();
    println!("sweep: {r:?}");
    assert_eq!(r.expired, 1);
    assert_eq!(
        w.services.execution(&id).await.unwrap().status,
        Status::Expired
    );
    let (_, notice) = w.notifier.sent().pop().unwrap();
    assert!(notice.subject.contains("EXPIRED"));
    assert!(notice.body.contains("shipgate release hello --commit"));
    assert_eq!(
        sweep(&w.services, &limits).await.unwrap().expired,
        0,
        "idempotent"
    );
    assert_eq!(w.notifier.count("EXPIRED"), 1);
}

#[tokio::test]
async fn reconciles_builds_whose_events_were_lost() {
    let w = FakeWorld::with_pipeline().await;
    let ok = push(&w, &sha(2), "d-2").await;
    let bad = push(&w, &sha(3), "d-3").await;
    let running = push(&w, &sha(4), "d-4").await;
    let e_ok = w.services.execution(&ok).await.unwrap();
    let e_bad = w.services.execution(&bad).await.unwrap();
    w.registry
        .push("hello", &e_ok.image_tag(), "sha256:ok", w.clock.now());
    w.builds
        .set_state(e_ok.build_id.as_deref().unwrap(), "SUCCEEDED", None);
    w.builds.set_state(
        e_bad.build_id.as_deref().unwrap(),
        "FAILED",
        Some("COMMAND_EXECUTION_ERROR: exit status 2"),
    );
    let limits = SweepLimits::default();
    assert_eq!(
        sweep(&w.services, &limits).await.unwrap().builds_checked,
        0,
        "not stuck yet"
    );
    w.clock.advance(Duration::minutes(11));
    let r = sweep(&w.services, &limits).await.unwrap();
    println!("sweep: {r:?}");
    assert_eq!((r.builds_checked, r.builds_reconciled), (3, 2));
    assert_eq!(
        w.services.execution(&ok).await.unwrap().status,
        Status::DeployingTest
    );
    let failed = w.services.execution(&bad).await.unwrap();
    assert_eq!(failed.status, Status::BuildFailed);
    assert!(failed.failure.unwrap().reason.contains("exit status 2"));
    assert_eq!(
        w.services.execution(&running).await.unwrap().status,
        Status::Building
    );
    assert_eq!(w.deployer.deployments_to("hello-test"), 1);
    // CodeBuild unreachable for one build: noted, the run goes on
    w.builds
        .faults
        .fail_always("get_build", ServiceError::Throttled("Rate exceeded".into()));
    w.clock.advance(Duration::minutes(11));
    let r = sweep(&w.services, &limits).await.unwrap();
    assert_eq!(r.errors.len(), 1, "{r:?}");
    assert!(r.errors[0].contains("Rate exceeded"));
}

#[tokio::test]
async fn reconciles_deployments_whose_events_were_lost() {
    let w = FakeWorld::with_pipeline().await;
    let limits = SweepLimits::default();
    let completed = built(&w, 5).await;
    let failed = built(&w, 6).await;
    let replaced = built(&w, 7).await;
    for (id, state) in [
        (&completed, DeploymentObservation::Completed),
        (
            &failed,
            DeploymentObservation::Failed("tasks failed to start".into()),
        ),
        (&replaced, DeploymentObservation::Replaced),
    ] {
        let dep = w
            .services
            .execution(id)
            .await
            .unwrap()
            .test
            .unwrap()
            .deployment_id;
        w.deployer.set_deployment_state(&dep, state);
    }
    w.clock.advance(Duration::minutes(11));
    let r = sweep(&w.services, &limits).await.unwrap();
    println!("sweep: {r:?}");
    assert_eq!((r.deployments_checked, r.deployments_reconciled), (3, 3));
    assert_eq!(
        w.services.execution(&completed).await.unwrap().status,
        Status::AwaitingApproval
    );
    assert_eq!(w.notifier.count("Approve"), 1);
    let f = w.services.execution(&failed).await.unwrap();
    assert_eq!(f.status, Status::TestFailed);
    assert!(f.failure.unwrap().reason.contains("tasks failed to start"));
    assert_eq!(
        w.services.execution(&replaced).await.unwrap().status,
        Status::Superseded
    );

    // prod
    let id = awaiting(&w, 8).await;
    let e = super::approvals::decide(
        &w.services,
        &id,
        crate::domain::Verdict::Approve,
        "ops",
        crate::domain::Channel::Cli,
        None,
    )
    .await
    .unwrap();
    w.deployer.set_deployment_state(
        &e.prod.unwrap().deployment_id,
        DeploymentObservation::Completed,
    );
    w.clock.advance(Duration::minutes(11));
    sweep(&w.services, &limits).await.unwrap();
    assert_eq!(
        w.services.execution(&id).await.unwrap().status,
        Status::Succeeded
    );
    assert!(w
        .store
        .get_revisions("hello", Environment::Prod)
        .await
        .unwrap()
        .is_some());
    // nothing left to do: a second run changes nothing
    let r = sweep(&w.services, &limits).await.unwrap();
    assert_eq!(
        (
            r.builds_reconciled,
            r.deployments_reconciled,
            r.resumed,
            r.expired
        ),
        (0, 0, 0, 0)
    );
}

#[tokio::test]
async fn starts_or_fails_executions_that_never_got_a_build() {
    let w = FakeWorld::with_pipeline().await;
    let limits = SweepLimits::default();
    // two executions recorded by a webhook that died before StartBuild
    let a = received_without_build(&w, 9).await;
    let b = received_without_build(&w, 10).await;
    assert_eq!(
        sweep(&w.services, &limits).await.unwrap().resumed,
        0,
        "too recent"
    );
    w.clock.advance(Duration::minutes(3));
    w.builds.faults.fail_next(
        "start_build",
        ServiceError::Rejected("AccessDeniedException: not allowed".into()),
    );
    let r = sweep(&w.services, &limits).await.unwrap();
    println!("sweep: {r:?}");
    assert_eq!(r.resumed, 2);
    let statuses = [
        w.services.execution(&a).await.unwrap(),
        w.services.execution(&b).await.unwrap(),
    ];
    let building = statuses
        .iter()
        .filter(|e| e.status == Status::Building)
        .count();
    let failed: Vec<_> = statuses
        .iter()
        .filter(|e| e.status == Status::BuildFailed)
        .collect();
    assert_eq!((building, failed.len()), (1, 1));
    assert!(failed[0]
        .failure
        .as_ref()
        .unwrap()
        .reason
        .contains("AccessDeniedException"));
    assert_eq!(w.builds.started().len(), 1);
    assert_eq!(sweep(&w.services, &limits).await.unwrap().resumed, 0);
}

#[tokio::test]
async fn resends_an_approval_request_that_was_never_sent() {
    let w = FakeWorld::with_pipeline().await;
    let id = built(&w, 11).await;
    let dep = w
        .services
        .execution(&id)
        .await
        .unwrap()
        .test
        .unwrap()
        .deployment_id;
    w.notifier
        .faults
        .fail_next("publish", ServiceError::Unavailable("SNS 503".into()));
    let err = super::events::on_deployment_state(&w.services, &deployment_change(&dep))
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    let e = w.services.execution(&id).await.unwrap();
    assert_eq!(e.status, Status::AwaitingApproval);
    assert!(e.approval.unwrap().message_id.is_none());
    w.clock.advance(Duration::minutes(3));
    let r = sweep(&w.services, &SweepLimits::default()).await.unwrap();
    assert_eq!(r.resumed, 1);
    assert_eq!(w.notifier.count("Approve"), 1);
    assert!(w
        .services
        .execution(&id)
        .await
        .unwrap()
        .approval
        .unwrap()
        .message_id
        .is_some());
}

#[tokio::test]
async fn prunes_old_images_but_never_protected_ones() {
    let w = FakeWorld::with_pipeline().await;
    // prod: v1 then v2 (v1 is the rollback target); an execution awaits approval with v3
    let v1 = succeed(&w, 20).await;
    let v2 = succeed(&w, 21).await;
    let v3 = awaiting(&w, 22).await;
    let digest = |e: crate::domain::Execution| e.image.unwrap().digest;
    let protected = [
        digest(w.services.execution(&v1).await.unwrap()),
        digest(w.services.execution(&v2).await.unwrap()),
        digest(w.services.execution(&v3).await.unwrap()),
    ];
    // make the protected images the oldest, then 12 newer unrelated ones
    let base = w.clock.now() - Duration::days(30);
    for (i, d) in protected.iter().enumerate() {
        w.registry
            .set_pushed_at("hello", d, base + Duration::minutes(i as i64));
    }
    for i in 0..12 {
        w.registry.push(
            "hello",
            &format!("new-{i}"),
            &format!("sha256:new{i:02}"),
            base + Duration::days(1) + Duration::minutes(i),
        );
    }
    let mut limits = SweepLimits {
        max_image_deletions: 1,
        ..SweepLimits::default()
    };
    let r = sweep(&w.services, &limits).await.unwrap();
    assert_eq!(r.images_deleted, 1, "bounded per run");
    limits.max_image_deletions = 100;
    let r = sweep(&w.services, &limits).await.unwrap();
    println!("sweep: {r:?}");
    // 15 images: the newest 10 are kept; of the 5 older ones, 3 are protected (the prod
    // revision, its rollback target, the image awaiting approval): only new01 and new00 go
    assert_eq!(r.images_deleted, 1);
    assert_eq!(r.bytes_freed, 50_000_000);
    assert_eq!(r.pruned[0].kept, 13);
    let deleted = w.registry.deleted.lock().unwrap().clone();
    assert_eq!(
        deleted,
        vec!["sha256:new01".to_string(), "sha256:new00".to_string()]
    );
    for d in &protected {
        assert!(!deleted.contains(d), "protected {d} deleted");
    }
    assert_eq!(
        sweep(&w.services, &limits).await.unwrap().images_deleted,
        0,
        "idempotent"
    );
}

/// An execution approved whose prod deployment was never started (the approvals function died
/// between storing the decision and calling ECS).
/// A run prunes a bounded number of repositories; the next runs take the next ones.
#[tokio::test]
async fn each_run_prunes_the_next_repositories() {
    let w = FakeWorld::new();
    let base = w.clock.now() - Duration::days(30);
    for r in 0..3 {
        let mut p = FakeWorld::pipeline();
        p.name = format!("p{r}");
        p.image.repository = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/r{r}");
        p.keep_images = 10;
        w.store.put_pipeline(&p, w.clock.now()).await.unwrap();
        for i in 0..11 {
            w.registry.push(
                &format!("r{r}"),
                &format!("t{i}"),
                &format!("sha256:r{r}-{i:02}"),
                base + Duration::minutes(i),
            );
        }
    }
    let limits = SweepLimits {
        prune_repositories: 1,
        ..SweepLimits::default()
    };
    let mut pruned = Vec::new();
    for _ in 0..3 {
        let r = sweep(&w.services, &limits).await.unwrap();
        assert_eq!(r.pruned.len(), 1, "one repository per run: {r:?}");
        pruned.push(r.pruned[0].repository.clone());
        w.clock.advance(Duration::minutes(5));
    }
    pruned.sort();
    assert_eq!(pruned, ["r0", "r1", "r2"], "every repository in turn");
    let mut deleted = w.registry.deleted.lock().unwrap().clone();
    deleted.sort();
    assert_eq!(deleted, ["sha256:r0-00", "sha256:r1-00", "sha256:r2-00"]);
}

async fn approved_not_deployed(w: &FakeWorld, n: u8) -> crate::domain::ExecutionId {
    let id = awaiting(w, n).await;
    let e = w.services.execution(&id).await.unwrap();
    let decided = crate::domain::transition(
        &e,
        crate::domain::Change::new(
            crate::domain::Event::Decided {
                decision: crate::domain::Decision {
                    approver: None,
                    verdict: crate::domain::Verdict::Approve,
                    actor: "Grace".into(),
                    channel: crate::domain::Channel::EmailLink,
                    comment: None,
                    at: w.clock.now(),
                    source_ip: None,
                    user_agent: None,
                },
            },
            w.clock.now(),
            "Grace",
        ),
    )
    .unwrap()
    .execution;
    w.store.save(&e, &decided).await.unwrap();
    id
}

#[tokio::test]
async fn functions_only_resume_what_they_are_allowed_to_do() {
    let w = FakeWorld::with_pipeline().await;
    let id = approved_not_deployed(&w, 30).await;
    w.clock.advance(Duration::minutes(3));
    let e = w.services.execution(&id).await.unwrap();
    // deploy-events and build-events may not touch production: they leave it
    for can in [
        crate::wiring::profiles::DEPLOY_EVENTS.can,
        crate::wiring::profiles::BUILD_EVENTS.can,
        crate::wiring::profiles::WEBHOOK.can,
    ] {
        let svc = w.services.clone().with_capabilities(can);
        assert!(svc.resume_if_stale(&e).await.unwrap().is_none());
    }
    assert_eq!(w.deployer.deployments_to("hello-prod"), 0);
    assert_eq!(
        w.services.execution(&id).await.unwrap().status,
        Status::DeployingProd
    );
    // the approvals function may
    let svc = w
        .services
        .clone()
        .with_capabilities(crate::wiring::profiles::APPROVALS.can);
    let done = svc.resume_if_stale(&e).await.unwrap().unwrap();
    assert_eq!(done.status, Status::DeployingProd);
    assert_eq!(w.deployer.deployments_to("hello-prod"), 1);
}

#[tokio::test]
async fn the_sweeper_fails_a_never_started_prod_deployment_and_retry_deploys_it() {
    let w = FakeWorld::with_pipeline().await;
    let id = approved_not_deployed(&w, 31).await;
    let sweeper = w
        .services
        .clone()
        .with_capabilities(crate::wiring::profiles::SWEEPER.can);
    assert_eq!(
        sweep(&sweeper, &SweepLimits::default())
            .await
            .unwrap()
            .resumed,
        0,
        "too recent"
    );
    w.clock.advance(Duration::minutes(3));
    let r = sweep(&sweeper, &SweepLimits::default()).await.unwrap();
    assert_eq!(r.resumed, 1);
    let e = w.services.execution(&id).await.unwrap();
    assert_eq!(e.status, Status::ProdFailed);
    assert!(e
        .failure
        .unwrap()
        .reason
        .contains(&format!("shipgate retry {id}")));
    assert_eq!(
        w.deployer.deployments_to("hello-prod"),
        0,
        "the sweeper never touches prod"
    );
    assert_eq!(w.notifier.count("PROD_FAILED"), 1);
    // the operator's retry (control may deploy to prod) deploys the approved digest
    let e = super::control::retry(&w.services, &id, "ops")
        .await
        .unwrap();
    assert_eq!(e.status, Status::DeployingProd);
    assert_eq!(w.deployer.deployments_to("hello-prod"), 1);
}

#[tokio::test]
async fn sources_do_not_publish_notices() {
    let w = FakeWorld::with_pipeline().await;
    let svc = w
        .services
        .clone()
        .with_capabilities(crate::wiring::profiles::WEBHOOK.can);
    w.builds
        .faults
        .fail_next("start_build", ServiceError::Rejected("AccessDenied".into()));
    let body = include_str!("../../../events/github/push.json");
    let sig =
        crate::domain::github::sign_body(crate::fakes::WEBHOOK_SECRET.as_bytes(), body.as_bytes());
    let out = super::sources::handle_github_delivery(
        &svc,
        super::sources::WebhookRequest {
            event: Some("push"),
            delivery: Some("d"),
            hook_id: None,
            signature: Some(&sig),
            body: body.as_bytes(),
        },
    )
    .await
    .unwrap();
    let super::sources::WebhookOutcome::Started(s) = out else {
        panic!()
    };
    assert_eq!(s[0].status, Status::BuildFailed);
    assert!(
        w.notifier.sent().is_empty(),
        "the public webhook function has no SNS permission"
    );
}
