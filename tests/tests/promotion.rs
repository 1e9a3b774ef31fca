//! Promotion against moto, through the real handlers: build SUCCEEDED → test service on a new
//! revision pinned by digest → deployment COMPLETED → approval message captured through SQS →
//! GET page → POST approve → prod runs the same digest → prod COMPLETED → SUCCEEDED.

use shared::domain::Status;
use shared::http::{self};
use shipgate_sandbox::drain_outbox;
use shipgate_tests::World;

use shipgate_tests::{build_event, deploy_event, start};

#[tokio::test]
async fn push_to_production_with_the_tested_digest() {
    let Some(mut w) = World::start().await else {
        return;
    };
    let writes = w.count_dynamodb_writes().await;
    let sb = w.provisioned.sandbox.clone();
    let id = start(&w, "d-1").await;
    let exec = w.peek(&id).await;

    // the build pushes its image, then CodeBuild reports SUCCEEDED
    let digest = w.push_image(&exec.image_tag(), "v1").await;
    let out = build_events::handler::handle(
        &w.services,
        build_event(exec.build_id.as_deref().unwrap(), "SUCCEEDED"),
    )
    .await
    .unwrap();
    assert_eq!(out["execution_status"], "DEPLOYING_TEST", "{out}");
    let pinned = format!("{}@{}", w.provisioned.repository_uri, digest);
    assert_eq!(
        w.service_image(&sb.test_cluster, &sb.test_service).await,
        pinned,
        "test runs the image pinned by digest"
    );
    assert!(pinned.contains("@sha256:"));
    let exec = w.peek(&id).await;
    let test_dep = exec.test.clone().unwrap();
    assert!(
        test_dep.task_definition.ends_with(":2"),
        "a new revision: {}",
        test_dep.task_definition
    );
    assert!(test_dep
        .previous_task_definition
        .as_deref()
        .unwrap()
        .ends_with(":1"));

    // ECS reports the test deployment complete → approval requested through SNS
    let out = deploy_events::handler::handle(
        &w.services,
        deploy_event(&test_dep.deployment_id, "SERVICE_DEPLOYMENT_COMPLETED"),
    )
    .await
    .unwrap();
    assert_eq!(out["execution_status"], "AWAITING_APPROVAL", "{out}");
    let outbox = drain_outbox(&w.sqs(), &w.provisioned.outbox_queue_url)
        .await
        .unwrap();
    assert_eq!(outbox.len(), 1);
    let msg = &outbox[0];
    assert!(msg.subject.contains("Approve demo"), "{}", msg.subject);
    assert!(msg.message.contains(&digest));
    assert!(msg.message.contains(&format!("shipgate approve {id}")));
    let link = msg
        .links
        .iter()
        .find(|l| l.contains("/approvals/"))
        .expect("approval link")
        .clone();
    let path = link.trim_start_matches(&w.public_url).to_string();

    // GET shows the page and changes nothing
    let before = w.peek(&id).await;
    let page = approvals::handler::handle(
        &w.services,
        shipgate_sandbox::apigw::request(
            "GET",
            &path,
            "/approvals/{token}",
            &[],
            None,
            "198.51.100.1",
        ),
    )
    .await;
    assert_eq!(page.status_code, 200);
    assert!(http::body_text(&page).contains(&exec.commit.sha));
    assert_eq!(w.peek(&id).await, before);

    // POST approve → prod runs the same digest
    let post = approvals::handler::handle(
        &w.services,
        shipgate_sandbox::apigw::request(
            "POST",
            &path,
            "/approvals/{token}",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some("decision=approve&name=Grace"),
            "198.51.100.1",
        ),
    )
    .await;
    assert_eq!(post.status_code, 200, "{}", http::body_text(&post));
    assert_eq!(
        w.service_image(&sb.prod_cluster, &sb.prod_service).await,
        pinned,
        "prod runs exactly the tested digest"
    );
    let exec = w.peek(&id).await;
    assert_eq!(exec.status, Status::DeployingProd);

    let out = deploy_events::handler::handle(
        &w.services,
        deploy_event(
            &exec.prod.unwrap().deployment_id,
            "SERVICE_DEPLOYMENT_COMPLETED",
        ),
    )
    .await
    .unwrap();
    assert_eq!(out["execution_status"], "SUCCEEDED", "{out}");
    let history: Vec<Status> = w.peek(&id).await.history.iter().map(|h| h.to).collect();
    println!("history: {history:?}");
    assert_eq!(history.last(), Some(&Status::Succeeded));

    // the target: at most 12 DynamoDB items written per successful execution
    println!(
        "DynamoDB items written: {} {:?}",
        writes.total(),
        writes.by_operation()
    );
    assert!(
        writes.total() <= 12,
        "{} items written: {:?}",
        writes.total(),
        writes.by_operation()
    );
    // and at most 31 DynamoDB requests in all (reads included): the engine does not read
    // what it just wrote or was handed (the 31st reads the definition for the SUCCEEDED
    // notice's topic: recording the production revision alone does not need it)
    println!(
        "DynamoDB requests: {} {:?}",
        writes.calls(),
        writes.calls_by_operation()
    );
    assert!(
        writes.calls() <= 31,
        "{} DynamoDB requests: {:?}",
        writes.calls(),
        writes.calls_by_operation()
    );
}

#[tokio::test]
async fn failed_build_and_failed_test_deployment() {
    let Some(w) = World::start().await else {
        return;
    };
    let id = start(&w, "d-1").await;
    let exec = w.peek(&id).await;
    let out = build_events::handler::handle(
        &w.services,
        build_event(exec.build_id.as_deref().unwrap(), "FAILED"),
    )
    .await
    .unwrap();
    assert_eq!(out["execution_status"], "BUILD_FAILED");
    let notices = drain_outbox(&w.sqs(), &w.provisioned.outbox_queue_url)
        .await
        .unwrap();
    assert!(
        notices[0].subject.contains("BUILD_FAILED"),
        "{:?}",
        notices[0]
    );

    // retry builds the same commit again, in CodeBuild
    let retried = control::handler::handle(
        &w.services,
        serde_json::json!({"command": "retry", "execution_id": id}),
    )
    .await;
    assert_eq!(retried["execution"]["status"], "BUILDING", "{retried}");
    let builds = w
        .codebuild()
        .list_builds_for_project()
        .project_name("hello-build")
        .send()
        .await
        .unwrap();
    assert_eq!(builds.ids().len(), 2);
    let exec = w.peek(&id).await;
    let got = w
        .codebuild()
        .batch_get_builds()
        .ids(exec.build_id.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.builds()[0].source_version(),
        Some(exec.commit.sha.as_str())
    );

    w.push_image(&exec.image_tag(), "v2").await;
    build_events::handler::handle(
        &w.services,
        build_event(exec.build_id.as_deref().unwrap(), "SUCCEEDED"),
    )
    .await
    .unwrap();
    let exec = w.peek(&id).await;
    let dep = exec.test.unwrap().deployment_id;
    let out = deploy_events::handler::handle(
        &w.services,
        deploy_event(&dep, "SERVICE_DEPLOYMENT_FAILED"),
    )
    .await
    .unwrap();
    assert_eq!(out["execution_status"], "TEST_FAILED");
    let notices = drain_outbox(&w.sqs(), &w.provisioned.outbox_queue_url)
        .await
        .unwrap();
    assert!(notices.iter().any(|n| n.subject.contains("TEST_FAILED")));
}
