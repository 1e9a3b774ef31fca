//! What a build produced: the commit a branch-head release resolved, and the digest the build
//! exported (cross-checked with the registry).

use chrono::Duration;

use super::events::on_build_state;
use super::sweeper::{sweep, SweepLimits};
use super::test_support::*;
use super::{approvals, control};
use crate::domain::aws_events::{BuildStatus, DeploymentEventName};
use crate::domain::{ExecutionId, Status};
use crate::fake_world::FakeWorld;
use crate::ports::Clock;

fn digest(n: u8) -> String {
    format!("sha256:{:064x}", n)
}

/// A release of the branch head, built: the build pushed its `r-…` tag.
async fn branch_head_release(w: &FakeWorld) -> ExecutionId {
    let started = control::release(&w.services, "hello", None, None, "ops")
        .await
        .unwrap();
    let e = exec(w, &started.execution_id).await;
    assert_eq!(e.commit.sha, "");
    w.registry
        .push("hello", &e.image_tag(), &digest(9), w.clock.now());
    started.execution_id
}

#[tokio::test]
async fn branch_head_release_learns_the_commit_from_codebuild() {
    let w = FakeWorld::with_pipeline().await;
    let id = branch_head_release(&w).await;
    let e = exec(&w, &id).await;
    let build_id = e.build_id.clone().unwrap();
    // the event names no SHA (source-version is the branch): BatchGetBuilds has it
    w.builds
        .set_outputs(&build_id, Some(&sha(42).to_uppercase()), &[]);
    let event = build_event(&e, BuildStatus::Succeeded);
    assert_eq!(event.resolved_commit, None);
    on_build_state(&w.services, &event).await.unwrap();

    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::DeployingTest);
    assert_eq!(e.commit.sha, sha(42));
    assert!(
        e.history
            .iter()
            .any(|h| h.cause == format!("main resolved to commit {}", sha(42))),
        "{:#?}",
        e.history
    );
    // the image keeps the tag the build pushed
    assert!(e.image.as_ref().unwrap().tag.starts_with("r-"));

    // through the test deployment: e-mail, page and status show the commit
    let dep = e.test.as_ref().unwrap().deployment_id.clone();
    super::events::on_deployment_state(
        &w.services,
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    let (_, mail) = w.notifier.sent().pop().unwrap();
    assert!(mail.subject.contains(&sha(42)[..12]), "{}", mail.subject);
    assert!(mail.body.contains(&sha(42)[..12]), "{}", mail.body);
    let view = approvals::view(&w.services, &approval_token(&w))
        .await
        .unwrap();
    assert_eq!(view.execution.commit.sha, sha(42));
    let status = control::status(&w.services, Some("hello")).await.unwrap();
    assert_eq!(
        status[0]
            .test
            .as_ref()
            .unwrap()
            .current()
            .unwrap()
            .commit
            .sha,
        sha(42)
    );
}

#[tokio::test]
async fn branch_head_release_takes_the_commit_from_the_event_when_it_has_one() {
    let w = FakeWorld::with_pipeline().await;
    let id = branch_head_release(&w).await;
    let e = exec(&w, &id).await;
    let mut event = build_event(&e, BuildStatus::Succeeded);
    event.resolved_commit = Some(sha(43));
    // CodeBuild unreachable: not needed
    w.builds.faults.fail_always(
        "get_build",
        crate::ports::ServiceError::Rejected("not allowed".into()),
    );
    on_build_state(&w.services, &event).await.unwrap();
    assert_eq!(exec(&w, &id).await.commit.sha, sha(43));
}

#[tokio::test]
async fn commit_unknown_to_codebuild_leaves_the_release_going() {
    let w = FakeWorld::with_pipeline().await;
    let id = branch_head_release(&w).await;
    let e = exec(&w, &id).await;
    w.builds.faults.fail_always(
        "get_build",
        crate::ports::ServiceError::Throttled("Rate exceeded".into()),
    );
    on_build_state(&w.services, &build_event(&e, BuildStatus::Succeeded))
        .await
        .unwrap();
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::DeployingTest);
    assert_eq!(e.commit.sha, "");
}

#[tokio::test]
async fn an_abbreviated_release_commit_is_completed_and_a_mismatch_is_not_recorded() {
    let w = FakeWorld::with_pipeline().await;
    let s = control::release(&w.services, "hello", Some(&sha(44)[..10]), None, "ops")
        .await
        .unwrap();
    let e = exec(&w, &s.execution_id).await;
    w.registry
        .push("hello", &e.image_tag(), &digest(1), w.clock.now());
    let mut event = build_event(&e, BuildStatus::Succeeded);
    event.resolved_commit = Some(sha(44));
    on_build_state(&w.services, &event).await.unwrap();
    let e = exec(&w, &s.execution_id).await;
    assert_eq!(e.commit.sha, sha(44));
    assert!(e
        .history
        .iter()
        .any(|h| h.cause == format!("commit {} resolved to {}", &sha(44)[..10], sha(44))));

    // a pushed commit is never rewritten
    let pushed = push(&w, &sha(45), "d-45").await;
    let e = exec(&w, &pushed).await;
    w.registry
        .push("hello", &e.image_tag(), &digest(2), w.clock.now());
    let mut event = build_event(&e, BuildStatus::Succeeded);
    event.resolved_commit = Some(sha(46));
    on_build_state(&w.services, &event).await.unwrap();
    assert_eq!(exec(&w, &pushed).await.commit.sha, sha(45));
}

#[tokio::test]
async fn the_exported_digest_is_deployed_even_if_the_tag_moved() {
    let w = FakeWorld::with_pipeline().await;
    let id = push(&w, &sha(50), "d-50").await;
    let e = exec(&w, &id).await;
    // the build pushed digest 1 under its tag; someone re-pushed the tag with digest 2 since
    w.registry
        .push("hello", &e.image_tag(), &digest(1), w.clock.now());
    w.registry
        .push("hello", &e.image_tag(), &digest(2), w.clock.now());
    let mut event = build_event(&e, BuildStatus::Succeeded);
    event.exported_variables = vec![
        ("OTHER".into(), "x".into()),
        ("IMAGE_DIGEST".into(), digest(1)),
    ];
    on_build_state(&w.services, &event).await.unwrap();
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::DeployingTest);
    assert_eq!(e.image.as_ref().unwrap().digest, digest(1));
    let built = e.history.iter().find(|h| h.to == Status::Built).unwrap();
    assert!(
        built.cause.contains(&format!(
            "tag {} now points at {}; deploying {} the build exported",
            e.image_tag(),
            digest(2),
            digest(1)
        )),
        "{}",
        built.cause
    );
    let test = FakeWorld::pipeline().test;
    assert!(w
        .deployer
        .image_of(&test)
        .unwrap()
        .ends_with(&format!("@{}", digest(1))));
}

#[tokio::test]
async fn an_exported_digest_matching_the_tag_has_no_note() {
    let w = FakeWorld::with_pipeline().await;
    let id = push(&w, &sha(51), "d-51").await;
    let e = exec(&w, &id).await;
    w.registry
        .push("hello", &e.image_tag(), &digest(3), w.clock.now());
    let mut event = build_event(&e, BuildStatus::Succeeded);
    event.exported_variables = vec![("IMAGE_DIGEST".into(), digest(3))];
    on_build_state(&w.services, &event).await.unwrap();
    let e = exec(&w, &id).await;
    assert_eq!(e.image.as_ref().unwrap().digest, digest(3));
    let built = e.history.iter().find(|h| h.to == Status::Built).unwrap();
    assert_eq!(
        built.cause,
        format!("build succeeded: {REPO}@{}", digest(3))
    );
}

#[tokio::test]
async fn an_exported_digest_missing_from_the_repository_fails_the_build() {
    let w = FakeWorld::with_pipeline().await;
    for (n, exported, expect) in [
        (52, digest(7), "has no image with that digest"),
        (53, "sha256:nothex".to_string(), "is not an image digest"),
        (54, "latest".to_string(), "is not an image digest"),
    ] {
        let id = push(&w, &sha(n), &format!("d-{n}")).await;
        let e = exec(&w, &id).await;
        // the tag exists: the export still wins, and it is wrong
        w.registry
            .push("hello", &e.image_tag(), &digest(n), w.clock.now());
        let mut event = build_event(&e, BuildStatus::Succeeded);
        event.exported_variables = vec![("IMAGE_DIGEST".into(), exported.clone())];
        on_build_state(&w.services, &event).await.unwrap();
        let e = exec(&w, &id).await;
        assert_eq!(e.status, Status::BuildFailed, "{exported}");
        let reason = e.failure.unwrap().reason;
        assert!(reason.contains(expect), "{reason}");
        assert!(reason.contains("IMAGE_DIGEST"), "{reason}");
    }
    assert_eq!(w.deployer.deployments_to("hello-test"), 0);
}

#[tokio::test]
async fn a_registry_outage_while_checking_the_export_is_retryable() {
    let w = FakeWorld::with_pipeline().await;
    let id = push(&w, &sha(55), "d-55").await;
    let e = exec(&w, &id).await;
    w.registry
        .push("hello", &e.image_tag(), &digest(5), w.clock.now());
    w.registry.faults.fail_next(
        "find_digest",
        crate::ports::ServiceError::Throttled("Rate exceeded".into()),
    );
    let mut event = build_event(&e, BuildStatus::Succeeded);
    event.exported_variables = vec![("IMAGE_DIGEST".into(), digest(5))];
    assert!(on_build_state(&w.services, &event).await.is_err());
    assert_eq!(exec(&w, &id).await.status, Status::Building);
    on_build_state(&w.services, &event).await.unwrap();
    assert_eq!(exec(&w, &id).await.image.unwrap().digest, digest(5));
}

#[tokio::test]
async fn the_sweeper_uses_what_codebuild_reports_for_a_lost_event() {
    let w = FakeWorld::with_pipeline().await;
    let id = branch_head_release(&w).await;
    let e = exec(&w, &id).await;
    let build_id = e.build_id.clone().unwrap();
    w.registry
        .push("hello", &e.image_tag(), &digest(8), w.clock.now());
    w.builds.set_state(&build_id, "SUCCEEDED", None);
    w.builds
        .set_outputs(&build_id, Some(&sha(60)), &[("IMAGE_DIGEST", &digest(9))]);
    w.clock.advance(Duration::minutes(11));
    sweep(&w.services, &SweepLimits::default()).await.unwrap();
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::DeployingTest);
    assert_eq!(e.commit.sha, sha(60));
    assert_eq!(e.image.unwrap().digest, digest(9));
}
