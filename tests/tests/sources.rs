//! Sources against moto: a signed push through the real webhook handler starts a real CodeBuild
//! build; concurrent redeliveries start one.

use std::sync::Arc;

use futures::future::join_all;
use serde_json::Value;
use shared::domain::github::sign_body;
use shared::domain::Status;
use shared::http::{self, HttpRequest};
use shipgate_sandbox::DEV_WEBHOOK_SECRET;
use shipgate_tests::World;

use shipgate_tests::PUSH;
const SHA: &str = "9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a";

fn signed_push(delivery: &str) -> HttpRequest {
    shipgate_tests::signed_push(PUSH, delivery, DEV_WEBHOOK_SECRET)
}

async fn builds(w: &World) -> Vec<String> {
    w.codebuild()
        .list_builds_for_project()
        .project_name(&w.provisioned.sandbox.project)
        .send()
        .await
        .unwrap()
        .ids()
        .to_vec()
}

#[tokio::test]
async fn signed_push_creates_a_building_execution_and_a_codebuild_build() {
    let Some(w) = World::start().await else {
        return;
    };
    let resp = webhook::handler::handle(&w.services, signed_push("d-1")).await;
    let body: Value = serde_json::from_str(&http::body_text(&resp)).unwrap();
    assert_eq!(resp.status_code, 202, "{body}");
    let id = body["execution_id"].as_str().unwrap().parse().unwrap();
    let exec = w.services.execution(&id).await.unwrap();
    assert_eq!(exec.status, Status::Building);
    let build_id = exec.build_id.clone().unwrap();
    let got = w
        .codebuild()
        .batch_get_builds()
        .ids(&build_id)
        .send()
        .await
        .unwrap();
    let build = &got.builds()[0];
    assert_eq!(
        build.source_version(),
        Some(SHA),
        "the build is of the pushed commit"
    );
    assert_eq!(build.project_name(), Some("hello-build"));
    assert_eq!(
        w.services.store.find_by_build(&build_id).await.unwrap(),
        Some(id)
    );
    // the wrong secret changes nothing
    let mut bad = signed_push("d-2");
    bad.headers.insert(
        "x-hub-signature-256",
        sign_body(b"wrong", PUSH.as_bytes()).parse().unwrap(),
    );
    assert_eq!(
        webhook::handler::handle(&w.services, bad).await.status_code,
        401
    );
    assert_eq!(builds(&w).await.len(), 1);
}

#[tokio::test]
async fn the_same_delivery_twenty_times_concurrently_makes_one_execution_and_one_build() {
    let Some(w) = World::start().await else {
        return;
    };
    let w = Arc::new(w);
    let responses = join_all((0..20).map(|_| {
        let w = w.clone();
        async move {
            let r = webhook::handler::handle(&w.services, signed_push("same-delivery")).await;
            (
                r.status_code,
                serde_json::from_str::<Value>(&http::body_text(&r)).unwrap(),
            )
        }
    }))
    .await;
    let ids: std::collections::BTreeSet<String> = responses
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 202, "{body}");
            body["execution_id"].as_str().unwrap().to_string()
        })
        .collect();
    let executions = w.services.store.list_executions("demo", 100).await.unwrap();
    let builds = builds(&w).await;
    println!("deliveries sent: 20, distinct execution ids answered: {}, executions stored: {}, builds started: {}", ids.len(), executions.len(), builds.len());
    assert_eq!(ids.len(), 1);
    assert_eq!(executions.len(), 1);
    assert_eq!(builds.len(), 1);
}
