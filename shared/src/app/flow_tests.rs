//! Whole-flow tests of the use cases against the fakes: push → build → test → approval → prod,
//! with repeated, out-of-order and racing events.

use std::sync::Arc;

use chrono::Duration;

use super::approvals::{self, LinkError};
use super::control;
use super::events::{on_build_state, on_deployment_state, EventOutcome};
use super::test_support::*;
use crate::domain::aws_events::{BuildStatus, DeploymentEventName};
use crate::domain::{Channel, Environment, ExecutionId, ExecutionMode, Status, Verdict};
use crate::fake_world::FakeWorld;
use crate::ports::{Clock, DeploymentObservation, ExecutionStore, ServiceError};

#[tokio::test]
async fn full_promotion_of_the_tested_digest() {
    let w = FakeWorld::with_pipeline().await;
    let p = FakeWorld::pipeline();
    let id = built(&w, 1).await;
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::DeployingTest);
    let digest = e.image.as_ref().unwrap().digest.clone();
    let pinned = format!("{REPO}@{digest}");
    assert_eq!(
        w.deployer.image_of(&p.test).unwrap(),
        pinned,
        "test runs the digest"
    );
    let test_dep = e.test.as_ref().unwrap();
    assert!(test_dep
        .previous_task_definition
        .as_deref()
        .unwrap()
        .ends_with("hello-test:1"));

    on_deployment_state(
        &w.services,
        &deploy_event(&test_dep.deployment_id, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::AwaitingApproval);
    assert!(e.approval.as_ref().unwrap().message_id.is_some());
    let sent = w.notifier.sent();
    assert_eq!(sent.len(), 1);
    let (topic, notice) = &sent[0];
    assert_eq!(topic, &p.approval.topic_arn);
    assert!(notice.body.contains(&e.commit.sha));
    assert!(notice.body.contains(&digest));
    assert!(notice.body.contains(&format!("shipgate approve {id}")));
    assert!(notice
        .body
        .contains("https://shipgate.example.com/approvals/"));
    assert!(
        !notice.body.contains(crate::fakes::SIGNING_KEY),
        "no secret in the message"
    );
    assert_eq!(
        w.store
            .get_revisions("hello", Environment::Test)
            .await
            .unwrap()
            .unwrap()
            .value
            .current()
            .unwrap()
            .execution_id,
        id
    );

    let token = approval_token(&w);
    // GET and HEAD any number of times change nothing
    let version = e.version;
    for _ in 0..10 {
        let view = approvals::view(&w.services, &token).await.unwrap();
        assert_eq!(view.execution.id, id);
        assert_eq!(view.pipeline.name, "hello");
    }
    assert_eq!(exec(&w, &id).await.version, version);
    assert_eq!(w.deployer.deployments_to("hello-prod"), 0);

    let after = approvals::decide_by_link(&w.services, &token, form(Verdict::Approve))
        .await
        .unwrap();
    assert_eq!(after.status, Status::DeployingProd);
    let d = after.approval.as_ref().unwrap().decision.as_ref().unwrap();
    assert_eq!(
        (d.actor.as_str(), d.channel, d.source_ip.as_deref()),
        (
            "Grace — email link (unverified name)",
            Channel::EmailLink,
            Some("203.0.113.7")
        )
    );
    assert_eq!(
        w.deployer.image_of(&p.prod).unwrap(),
        pinned,
        "prod runs exactly the tested digest"
    );

    let prod_dep = after.prod.as_ref().unwrap().deployment_id.clone();
    on_deployment_state(
        &w.services,
        &deploy_event(&prod_dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::Succeeded);
    let prod = w
        .store
        .get_revisions("hello", Environment::Prod)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(prod.value.current().unwrap().image.digest, digest);

    // the used link now answers 409 and changes nothing
    let again = approvals::decide_by_link(&w.services, &token, form(Verdict::Approve))
        .await
        .unwrap_err();
    assert!(
        matches!(again, LinkError::AlreadyDecided(ref m) if m.contains("Grace")),
        "{again:?}"
    );
    assert_eq!(again.http_status(), 409);
    assert_eq!(w.deployer.deployments_to("hello-prod"), 1);
}

#[tokio::test]
async fn duplicate_and_out_of_order_events_cause_nothing_twice() {
    let w = FakeWorld::with_pipeline().await;
    let id = push(&w, &sha(2), "d-2").await;
    let e = exec(&w, &id).await;
    w.registry.push(
        "hello",
        &e.image_tag(),
        &format!("sha256:{:064x}", 2),
        w.clock.now(),
    );
    let succeeded = build_event(&e, BuildStatus::Succeeded);
    let in_progress = build_event(&e, BuildStatus::InProgress);
    for _ in 0..3 {
        on_build_state(&w.services, &succeeded).await.unwrap();
    }
    // a late IN_PROGRESS after SUCCEEDED changes nothing
    let late = on_build_state(&w.services, &in_progress).await.unwrap();
    assert!(matches!(late, EventOutcome::Ignored(_)));
    assert_eq!(w.deployer.deployments_to("hello-test"), 1);

    let e = exec(&w, &id).await;
    let dep = e.test.as_ref().unwrap().deployment_id.clone();
    // in-progress after completed, completed three times
    for name in [
        DeploymentEventName::Completed,
        DeploymentEventName::InProgress,
        DeploymentEventName::Completed,
        DeploymentEventName::Completed,
    ] {
        on_deployment_state(&w.services, &deploy_event(&dep, name))
            .await
            .unwrap();
    }
    assert_eq!(w.notifier.count("Approve"), 1, "one approval email");
    // a failure arriving after completion is stale
    let stale = on_deployment_state(
        &w.services,
        &deploy_event(&dep, DeploymentEventName::Failed),
    )
    .await
    .unwrap();
    assert!(matches!(stale, EventOutcome::Ignored(_)));
    assert_eq!(exec(&w, &id).await.status, Status::AwaitingApproval);

    // events for builds and deployments shipgate did not start are ignored
    let mut foreign = succeeded.clone();
    foreign.build_id = "other:1".into();
    assert!(matches!(
        on_build_state(&w.services, &foreign).await.unwrap(),
        EventOutcome::Ignored(_)
    ));
    assert!(matches!(
        on_deployment_state(
            &w.services,
            &deploy_event("ecs-svc/999", DeploymentEventName::Completed)
        )
        .await
        .unwrap(),
        EventOutcome::Ignored(_)
    ));
}

#[tokio::test]
async fn build_failure_notifies_and_retry_builds_the_same_commit() {
    let w = FakeWorld::with_pipeline().await;
    let id = push(&w, &sha(3), "d-3").await;
    let e = exec(&w, &id).await;
    on_build_state(&w.services, &build_event(&e, BuildStatus::Failed))
        .await
        .unwrap();
    let failed = exec(&w, &id).await;
    assert_eq!(failed.status, Status::BuildFailed);
    assert!(failed
        .failure
        .as_ref()
        .unwrap()
        .reason
        .contains("COMMAND_EXECUTION_ERROR"));
    let (_, notice) = w.notifier.sent().pop().unwrap();
    assert!(notice.subject.contains("BUILD_FAILED"));
    assert!(notice.body.contains(&format!("shipgate retry {id}")));
    assert!(notice.body.contains("https://logs.example/x"));

    let retried = control::retry(&w.services, &id, "ops").await.unwrap();
    assert_eq!(retried.status, Status::Building);
    let builds = w.builds.started();
    assert_eq!(builds.len(), 2);
    assert_eq!(builds[1].source_version, builds[0].source_version);
    assert_ne!(retried.build_id, e.build_id);
    // the old build's late events no longer apply
    let stale = on_build_state(&w.services, &build_event(&e, BuildStatus::Succeeded))
        .await
        .unwrap();
    assert!(matches!(stale, EventOutcome::Ignored(_)));
    // retry of a running execution is refused
    assert!(matches!(
        control::retry(&w.services, &id, "ops").await,
        Err(super::AppError::Conflict(_))
    ));
}

#[tokio::test]
async fn succeeded_build_without_image_fails_with_cause() {
    let w = FakeWorld::with_pipeline().await;
    let id = push(&w, &sha(4), "d-4").await;
    let e = exec(&w, &id).await;
    on_build_state(&w.services, &build_event(&e, BuildStatus::Succeeded))
        .await
        .unwrap();
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::BuildFailed);
    assert!(e.failure.unwrap().reason.contains("no image tagged"));
    // a throttled registry is retryable: the event handler fails, nothing changes
    let id = push(&w, &sha(5), "d-5").await;
    let e = exec(&w, &id).await;
    w.registry
        .faults
        .fail_next("find_image", ServiceError::Throttled("slow".into()));
    assert!(
        on_build_state(&w.services, &build_event(&e, BuildStatus::Succeeded))
            .await
            .unwrap_err()
            .is_retryable()
    );
    assert_eq!(exec(&w, &id).await.status, Status::Building);
}

#[tokio::test]
async fn test_deploy_failures() {
    let w = FakeWorld::with_pipeline().await;
    // circuit breaker rolled the test deployment back
    let id = built(&w, 6).await;
    let dep = exec(&w, &id).await.test.unwrap().deployment_id;
    on_deployment_state(
        &w.services,
        &deploy_event(&dep, DeploymentEventName::Failed),
    )
    .await
    .unwrap();
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::TestFailed);
    assert!(e
        .failure
        .as_ref()
        .unwrap()
        .reason
        .contains("circuit breaker"));
    assert_eq!(w.notifier.count("TEST_FAILED"), 1);
    // retry redeploys the same digest
    let digest = e.image.as_ref().unwrap().digest.clone();
    let r = control::retry(&w.services, &id, "ops").await.unwrap();
    assert_eq!(r.status, Status::DeployingTest);
    assert!(w
        .deployer
        .image_of(&FakeWorld::pipeline().test)
        .unwrap()
        .ends_with(&digest));
    assert_eq!(w.builds.started().len(), 1, "no rebuild");

    // UpdateService rejected → TEST_FAILED with the AWS error
    w.deployer.faults.fail_next(
        "deploy_image",
        ServiceError::Rejected("InvalidParameterException: no container".into()),
    );
    let id = built(&w, 7).await;
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::TestFailed);
    assert!(e
        .failure
        .unwrap()
        .reason
        .contains("InvalidParameterException"));
}

#[tokio::test]
async fn replaced_deployment_is_superseded_not_success() {
    let w = FakeWorld::with_pipeline().await;
    let id = built(&w, 8).await;
    let dep = exec(&w, &id).await.test.unwrap().deployment_id;
    w.deployer
        .set_deployment_state(&dep, DeploymentObservation::Replaced);
    on_deployment_state(
        &w.services,
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    assert_eq!(exec(&w, &id).await.status, Status::Superseded);
    assert_eq!(w.notifier.count("Approve"), 0);
}

#[tokio::test]
async fn approval_races_have_one_winner() {
    let w = Arc::new(FakeWorld::with_pipeline().await);
    let id = awaiting(&w, 9).await;
    let token = approval_token(&w);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let w = w.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let verdict = if i % 5 == 0 {
                Verdict::Reject
            } else {
                Verdict::Approve
            };
            approvals::decide_by_link(&w.services, &token, form(verdict)).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(e) => assert_eq!(e.http_status(), 409, "{e:?}"),
        }
    }
    assert_eq!(wins, 1);
    let e = exec(&w, &id).await;
    let prod_deploys = w.deployer.deployments_to("hello-prod");
    match e.status {
        Status::DeployingProd => assert_eq!(prod_deploys, 1),
        Status::Rejected => assert_eq!(prod_deploys, 0),
        other => panic!("{other}"),
    }
    // the CLI decides after the link won: conflict, nothing changed
    let cli = approvals::decide(
        &w.services,
        &id,
        Verdict::Approve,
        "arn:aws:iam::1:user/ops",
        Channel::Cli,
        None,
    )
    .await;
    assert!(matches!(cli, Err(LinkError::AlreadyDecided(_))));
}

#[tokio::test]
async fn tampered_expired_replayed_and_superseded_links() {
    let w = FakeWorld::with_pipeline().await;
    let first = awaiting(&w, 10).await;
    let token = approval_token(&w);
    let version = exec(&w, &first).await.version;

    // tampered: flip a character of the MAC
    let mut chars: Vec<char> = token.chars().collect();
    let last = chars.len() - 2;
    chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let err = approvals::decide_by_link(&w.services, &tampered, form(Verdict::Approve))
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 403, "{err:?}");
    assert_eq!(
        approvals::view(&w.services, "garbage")
            .await
            .unwrap_err()
            .http_status(),
        400
    );
    // a well-formed token for an unknown execution
    let unknown = crate::domain::token::sign(
        crate::fakes::SIGNING_KEY.as_bytes(),
        &crate::domain::token::TokenClaims {
            execution_id: ExecutionId::generate(w.clock.now()),
            nonce: "n".into(),
            expires_at: w.clock.now() + Duration::hours(1),
        },
        "sha256:x",
    );
    assert_eq!(
        approvals::view(&w.services, &unknown)
            .await
            .unwrap_err()
            .http_status(),
        404
    );

    // superseded by a newer execution reaching approval
    let second = awaiting(&w, 11).await;
    assert_eq!(exec(&w, &first).await.status, Status::Superseded);
    let err = approvals::decide_by_link(&w.services, &token, form(Verdict::Approve))
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 410);
    assert!(err.to_string().contains("newer execution"), "{err}");
    assert_eq!(w.deployer.deployments_to("hello-prod"), 0);
    assert!(exec(&w, &first).await.version > version);

    // expired
    let token2 = approval_token(&w);
    w.clock.advance(Duration::hours(73));
    let err = approvals::view(&w.services, &token2).await.unwrap_err();
    assert_eq!(err.http_status(), 410);
    let err = approvals::decide(
        &w.services,
        &second,
        Verdict::Approve,
        "ops",
        Channel::Cli,
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, LinkError::Expired(_)));
    assert_eq!(exec(&w, &second).await.status, Status::Expired);
    assert_eq!(w.notifier.count("EXPIRED"), 1);

    // replayed after a decision: 409 (covered in full_promotion), rejected here
    let third = awaiting(&w, 12).await;
    let token3 = approval_token(&w);
    approvals::decide_by_link(&w.services, &token3, form(Verdict::Reject))
        .await
        .unwrap();
    assert_eq!(exec(&w, &third).await.status, Status::Rejected);
    let err = approvals::decide_by_link(&w.services, &token3, form(Verdict::Approve))
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 409);
    assert!(err.to_string().contains("rejected by Grace"));
}

#[tokio::test]
async fn queued_mode_keeps_older_approvals() {
    let w = FakeWorld::with_pipeline().await;
    let mut p = FakeWorld::pipeline();
    p.mode = ExecutionMode::Queued;
    w.store.put_pipeline(&p, w.clock.now()).await.unwrap();
    let a = awaiting(&w, 13).await;
    let b = awaiting(&w, 14).await;
    assert_eq!(exec(&w, &a).await.status, Status::AwaitingApproval);
    assert_eq!(exec(&w, &b).await.status, Status::AwaitingApproval);
}

#[tokio::test]
async fn older_execution_reaching_approval_late_gives_way_to_newer() {
    let w = FakeWorld::with_pipeline().await;
    let older = built(&w, 15).await;
    let newer = awaiting(&w, 16).await;
    let dep = exec(&w, &older).await.test.unwrap().deployment_id;
    // the older execution's test deployment completes after the newer one already waits
    w.deployer
        .set_deployment_state(&dep, DeploymentObservation::Completed);
    on_deployment_state(
        &w.services,
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    assert_eq!(exec(&w, &older).await.status, Status::Superseded);
    assert_eq!(exec(&w, &newer).await.status, Status::AwaitingApproval);
    assert_eq!(
        w.notifier.count("Approve"),
        1,
        "no email for the superseded one"
    );
}

#[tokio::test]
async fn cli_approval_records_channel_and_actor() {
    let w = FakeWorld::with_pipeline().await;
    let id = awaiting(&w, 17).await;
    let e = approvals::decide(
        &w.services,
        &id,
        Verdict::Approve,
        "arn:aws:iam::123456789012:user/ops",
        Channel::Cli,
        Some("from the terminal".into()),
    )
    .await
    .unwrap();
    assert_eq!(e.status, Status::DeployingProd);
    let d = e.approval.unwrap().decision.unwrap();
    assert_eq!(
        (d.channel, d.actor.as_str()),
        (Channel::Cli, "arn:aws:iam::123456789012:user/ops")
    );
    assert!(
        e.history
            .last()
            .unwrap()
            .cause
            .contains("from the terminal")
            || e.history
                .iter()
                .any(|h| h.cause.contains("from the terminal"))
    );
}

#[tokio::test]
async fn rollback_restores_the_previous_digest() {
    let w = FakeWorld::with_pipeline().await;
    let p = FakeWorld::pipeline();
    let v1 = succeed(&w, 20).await;
    let v2 = succeed(&w, 21).await;
    let d1 = exec(&w, &v1).await.image.unwrap().digest;
    let d2 = exec(&w, &v2).await.image.unwrap().digest;
    assert!(w.deployer.image_of(&p.prod).unwrap().ends_with(&d2));

    let rb = control::rollback(&w.services, "hello", Environment::Prod, None, "ops")
        .await
        .unwrap();
    assert_eq!(rb.status, Status::DeployingProd);
    assert!(rb.history[0].cause.contains("rollback"));
    assert!(
        w.deployer.image_of(&p.prod).unwrap().ends_with(&d1),
        "prod is back on the previous digest"
    );
    // the release moved away from is marked once the rollback completed
    assert_eq!(exec(&w, &v2).await.status, Status::Succeeded);
    let dep = rb.prod.as_ref().unwrap().deployment_id.clone();
    on_deployment_state(
        &w.services,
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    let rb = exec(&w, &rb.id).await;
    assert_eq!(rb.status, Status::Succeeded);
    assert_eq!(exec(&w, &v2).await.status, Status::RolledBack);
    assert_eq!(w.notifier.count("ROLLED_BACK"), 1);
    let rev = w
        .store
        .get_revisions("hello", Environment::Prod)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rev.value.current().unwrap().image.digest, d1);
    assert_eq!(rev.value.current().unwrap().execution_id, rb.id);

    // nothing to roll back to
    let w2 = FakeWorld::with_pipeline().await;
    assert!(matches!(
        control::rollback(&w2.services, "hello", Environment::Prod, None, "ops").await,
        Err(super::AppError::Conflict(_))
    ));
    assert!(matches!(
        control::rollback(&w2.services, "nope", Environment::Prod, None, "ops").await,
        Err(super::AppError::NotFound(_))
    ));
}

#[tokio::test]
async fn release_builds_a_commit_or_the_branch_head() {
    let w = FakeWorld::with_pipeline().await;
    let s = control::release(&w.services, "hello", Some(&sha(30)), Some("req-1"), "ops")
        .await
        .unwrap();
    assert_eq!(s.status, Status::Building);
    assert_eq!(w.builds.started()[0].source_version, sha(30));
    let again = control::release(&w.services, "hello", Some(&sha(30)), Some("req-1"), "ops")
        .await
        .unwrap();
    assert!(again.duplicate);
    let head = control::release(&w.services, "hello", None, None, "ops")
        .await
        .unwrap();
    let b = &w.builds.started()[1];
    assert_eq!(b.source_version, "main");
    let e = exec(&w, &head.execution_id).await;
    assert!(e.image_tag().starts_with("r-"));
    assert!(b.environment.contains(&("IMAGE_TAG".into(), e.image_tag())));
    assert!(matches!(
        control::release(&w.services, "hello", Some("xyz"), None, "ops").await,
        Err(super::AppError::Invalid(_))
    ));
    assert_eq!(w.builds.started().len(), 2);
}

#[tokio::test]
async fn apply_pipeline_reports_changes() {
    let w = FakeWorld::new();
    let p = FakeWorld::pipeline();
    let r = control::apply_pipeline(&w.services, p.clone(), "ops")
        .await
        .unwrap();
    assert_eq!((r.result.as_str(), r.version), ("created", 1));
    let r = control::apply_pipeline(&w.services, p.clone(), "ops")
        .await
        .unwrap();
    assert_eq!(r.result.as_str(), "unchanged");
    let mut p2 = p.clone();
    p2.test.service = "hello-test-2".into();
    let r = control::apply_pipeline(&w.services, p2, "ops")
        .await
        .unwrap();
    assert_eq!((r.result.as_str(), r.version), ("updated", 2));
    assert_eq!(r.changes.len(), 1);
    assert_eq!(r.changes[0].path, "test.service");
    let st = control::status(&w.services, Some("hello")).await.unwrap();
    assert_eq!(st[0].pipeline, "hello");
    assert!(st[0].prod.is_none());
}

#[tokio::test]
async fn lost_worker_is_resumed_by_a_redelivered_event() {
    let w = FakeWorld::with_pipeline().await;
    let id = push(&w, &sha(40), "d-40").await;
    let e = exec(&w, &id).await;
    w.registry
        .push("hello", &e.image_tag(), "sha256:feed", w.clock.now());
    // the winner stored BUILT and died before deploying
    w.deployer
        .faults
        .fail_next("deploy_image", ServiceError::Unavailable("killed".into()));
    let mut built = e.clone();
    built = crate::domain::transition(
        &built,
        crate::domain::Change::new(
            crate::domain::Event::BuildSucceeded {
                image: crate::domain::ImageRef {
                    repository_uri: REPO.into(),
                    tag: e.image_tag(),
                    digest: "sha256:feed".into(),
                },
                resolved_sha: None,
                note: None,
            },
            w.clock.now(),
            "x",
        ),
    )
    .unwrap()
    .execution;
    w.store.save(&e, &built).await.unwrap();
    w.deployer.faults.heal();
    // a redelivery soon after does not double-deploy
    on_build_state(&w.services, &build_event(&e, BuildStatus::Succeeded))
        .await
        .unwrap();
    assert_eq!(w.deployer.deployments_to("hello-test"), 0);
    // a redelivery after the resume window completes the work
    w.clock.advance(Duration::minutes(3));
    on_build_state(&w.services, &build_event(&e, BuildStatus::Succeeded))
        .await
        .unwrap();
    assert_eq!(w.deployer.deployments_to("hello-test"), 1);
    assert_eq!(exec(&w, &id).await.status, Status::DeployingTest);
}

#[tokio::test]
async fn a_verified_release_requester_is_who_pushed_it() {
    use crate::domain::approval_policy::{is_own_change, Approver};
    let w = FakeWorld::with_pipeline().await;
    let alice_arn = "arn:aws:iam::123456789012:user/alice";
    let s = control::release_as(
        &w.services,
        "hello",
        Some(&sha(31)),
        None,
        alice_arn,
        Some(alice_arn),
    )
    .await
    .unwrap();
    let e = exec(&w, &s.execution_id).await;
    let alice = Approver {
        email: "alice@example.com".into(),
        github: None,
        arn: Some("arn:aws:iam::123456789012:user/alice".into()),
    };
    let bob = Approver {
        email: "bob@example.com".into(),
        github: None,
        arn: Some("arn:aws:iam::123456789012:user/bob".into()),
    };
    assert!(is_own_change(&alice, &e), "alice requested it: her change");
    assert!(!is_own_change(&bob, &e));
    // an unverified request records no one (nothing a payload claims)
    let s = control::release(&w.services, "hello", Some(&sha(32)), None, "ops")
        .await
        .unwrap();
    assert!(!is_own_change(&alice, &exec(&w, &s.execution_id).await));
}
