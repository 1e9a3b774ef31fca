//! What a build produced, against moto through the build-events handler: the digest the build
//! exported (`IMAGE_DIGEST`) is deployed, cross-checked with ECR, even if the tag moved since.

use shared::domain::Status;
use shipgate_tests::{build_event_exporting, start, World};

#[tokio::test]
async fn the_exported_digest_is_deployed_even_after_the_tag_was_pushed_again() {
    let Some(w) = World::start().await else {
        return;
    };
    let sb = w.provisioned.sandbox.clone();
    let id = start(&w, "d-exported").await;
    let exec = w.services.execution(&id).await.unwrap();
    // (a second tag keeps moto from deleting the image when its tag moves: moto's PutImage
    // deletes the image a moved tag leaves, where ECR keeps it untagged)
    let built = w.push_image("kept", "built").await;
    assert_eq!(w.push_image(&exec.image_tag(), "built").await, built);
    // someone pushes the same tag again before the build's event arrives
    let other = w.push_image(&exec.image_tag(), "swapped").await;
    assert_ne!(built, other);
    let out = build_events::handler::handle(
        &w.services,
        build_event_exporting(exec.build_id.as_deref().unwrap(), "SUCCEEDED", &built),
    )
    .await
    .unwrap();
    assert_eq!(out["execution_status"], "DEPLOYING_TEST", "{out}");
    assert_eq!(
        w.service_image(&sb.test_cluster, &sb.test_service).await,
        format!("{}@{}", w.provisioned.repository_uri, built),
        "test runs the digest the build exported, not the one the tag points at now"
    );
    let exec = w.services.execution(&id).await.unwrap();
    let line = exec.history.iter().find(|h| h.to == Status::Built).unwrap();
    assert!(
        line.cause.contains(&format!("now points at {other}")),
        "{}",
        line.cause
    );
}

#[tokio::test]
async fn an_exported_digest_ecr_does_not_have_fails_the_build() {
    let Some(w) = World::start().await else {
        return;
    };
    let sb = w.provisioned.sandbox.clone();
    let before = w.service_image(&sb.test_cluster, &sb.test_service).await;
    let id = start(&w, "d-missing").await;
    let exec = w.services.execution(&id).await.unwrap();
    w.push_image(&exec.image_tag(), "built").await;
    let missing = format!("sha256:{}", "ab".repeat(32));
    let out = build_events::handler::handle(
        &w.services,
        build_event_exporting(exec.build_id.as_deref().unwrap(), "SUCCEEDED", &missing),
    )
    .await
    .unwrap();
    assert_eq!(out["execution_status"], "BUILD_FAILED", "{out}");
    let exec = w.services.execution(&id).await.unwrap();
    let reason = exec.failure.unwrap().reason;
    assert!(reason.contains(&missing), "{reason}");
    assert!(reason.contains("has no image with that digest"), "{reason}");
    assert_eq!(
        w.service_image(&sb.test_cluster, &sb.test_service).await,
        before,
        "nothing deployed"
    );
}

/// The CodeBuild adapter's StopBuild (a smoke test build that never reported is stopped): moto
/// accepts the request, also for a build stopped already. (What the build reads as afterwards
/// cannot be checked here: moto's BatchGetBuilds answers SUCCEEDED for every build; the fakes'
/// StopBuild and the late STOPPED event are covered by shared's smoke tests.)
#[tokio::test]
async fn a_started_build_is_stopped_through_the_adapter() {
    let Some(w) = World::start().await else {
        return;
    };
    let id = start(&w, "d-stop").await;
    let exec = w.services.execution(&id).await.unwrap();
    let build_id = exec.build_id.clone().unwrap();
    w.services.builds.stop_build(&build_id).await.unwrap();
    w.services.builds.stop_build(&build_id).await.unwrap();
}
