//! ECS native blue/green and alarm events against moto, through the real deploy-events handler.
//!
//! moto has no deployment strategies (no BLUE_GREEN, no lifecycle hooks, no
//! ListServiceDeployments): ECS's part is played by the test — it invokes the handler with the
//! documented hook payload (`events/ecs/lifecycle-hook-post-test-traffic-shift.json`, service
//! and revision changed) and points the service back at the blue revision where ECS would roll
//! back. The green revision behind the test listener is a local HTTP server answering
//! `/health` like `examples/hello-service`.

use std::sync::{Arc, Mutex};

use shared::domain::verify::{EnvironmentVerify, VerifySettings};
use shared::domain::Status;
use shared::ports::{Clock, SystemClock};
use shipgate_tests::{approve, deployment_event, release_to_approval, World};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A `/health` endpoint whose answer the test sets: (status, version).
#[derive(Clone)]
struct Health {
    url: String,
    answer: Arc<Mutex<(u16, String)>>,
    requests: Arc<Mutex<u32>>,
}

impl Health {
    async fn start() -> Health {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let h = Health {
            url,
            answer: Arc::new(Mutex::new((503, "starting".into()))),
            requests: Arc::new(Mutex::new(0)),
        };
        let served = h.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let served = served.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    *served.requests.lock().unwrap() += 1;
                    let (status, version) = served.answer.lock().unwrap().clone();
                    let body = format!(r#"{{"status":"ok","version":"{version}"}}"#);
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        h
    }
    fn answer(&self, status: u16, version: &str) {
        *self.answer.lock().unwrap() = (status, version.to_string());
    }
    fn requests(&self) -> u32 {
        *self.requests.lock().unwrap()
    }
}

/// The documented hook payload for the sandbox's prod service and a revision.
fn hook_payload(w: &World, revision: u32) -> serde_json::Value {
    let sb = &w.provisioned.sandbox;
    let mut v: serde_json::Value = serde_json::from_str(include_str!(
        "../../events/ecs/lifecycle-hook-post-test-traffic-shift.json"
    ))
    .unwrap();
    v["executionDetails"]["serviceArn"] = format!(
        "arn:aws:ecs:us-east-1:123456789012:service/{}/{}",
        sb.prod_cluster, sb.prod_service
    )
    .into();
    v["executionDetails"]["targetServiceRevisionArn"] = format!(
        "arn:aws:ecs:us-east-1:123456789012:service-revision/{}/{}/{revision}",
        sb.prod_cluster, sb.prod_service
    )
    .into();
    v
}

async fn hook(w: &World, revision: u32) -> serde_json::Value {
    deploy_events::handler::handle(&w.services, hook_payload(w, revision))
        .await
        .unwrap()
}

async fn with_prod_verify(w: &World, prod: EnvironmentVerify) {
    let mut def = w.services.pipeline("demo").await.unwrap();
    def.verify = Some(VerifySettings {
        test: None,
        prod: Some(prod),
    });
    w.services
        .store
        .put_pipeline(&def, SystemClock.now())
        .await
        .unwrap();
}

/// The digest `shipgate status` shows running in production.
async fn shown_prod_digest(w: &World) -> String {
    let status = shipgate_tests::control(
        w,
        serde_json::json!({"command": "status", "pipeline": "demo"}),
    )
    .await;
    status["pipelines"][0]["prod"]["current"]["image"]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn the_lifecycle_hook_verifies_the_green_revision_and_ecs_does_the_rest() {
    let Some(w) = World::start().await else {
        return;
    };
    let sb = w.provisioned.sandbox.clone();
    let green = Health::start().await;
    with_prod_verify(
        &w,
        EnvironmentVerify {
            test_listener_url: Some(green.url.clone()),
            expect_status: 200,
            attempts: 4,
            interval_seconds: 1,
            timeout_seconds: 2,
            ..EnvironmentVerify::default()
        },
    )
    .await;

    // release 1: the green revision is still starting, then answers its commit
    let (id, digest) =
        release_to_approval(&w, "demo", "1111111111111111111111111111111111111111").await;
    approve(&w, &id).await;
    let out = hook(&w, 1).await;
    assert_eq!(out["hookStatus"], "IN_PROGRESS", "{out}");
    assert!(
        out["callBackDelay"]
            .as_u64()
            .is_some_and(|d| (1..=2).contains(&d)),
        "{out}"
    );
    let e = w.peek(&id.parse().unwrap()).await;
    assert_eq!(e.status, Status::VerifyingProd);
    assert_eq!(e.verify_prod.as_ref().unwrap().attempts, 3);
    green.answer(200, &e.image_tag());
    let out = hook(&w, 1).await;
    assert_eq!(out, serde_json::json!({"hookStatus": "SUCCEEDED"}));
    // a repeated invocation: the same answer, no check
    let seen = green.requests();
    assert_eq!(hook(&w, 1).await["hookStatus"], "SUCCEEDED");
    assert_eq!(green.requests(), seen);
    // ECS shifted production traffic and reports the deployment complete
    let done = deployment_event(
        &w,
        &e.prod.unwrap().deployment_id,
        "SERVICE_DEPLOYMENT_COMPLETED",
    )
    .await;
    assert_eq!(done["execution_status"], "SUCCEEDED", "{done}");
    let pinned = format!("{}@{digest}", w.provisioned.repository_uri);
    assert_eq!(
        w.service_image(&sb.prod_cluster, &sb.prod_service).await,
        pinned
    );
    assert_eq!(shown_prod_digest(&w).await, digest);
    let blue = w
        .peek(&id.parse().unwrap())
        .await
        .prod
        .unwrap()
        .task_definition;

    // release 2: the green revision fails its check → FAILED, ECS rolls back
    let (id2, _) =
        release_to_approval(&w, "demo", "2222222222222222222222222222222222222222").await;
    approve(&w, &id2).await;
    green.answer(500, "boom");
    assert_eq!(hook(&w, 2).await["hookStatus"], "IN_PROGRESS");
    assert_eq!(hook(&w, 2).await["hookStatus"], "FAILED");
    let e2 = w.peek(&id2.parse().unwrap()).await;
    assert_eq!(e2.status, Status::ProdFailed);
    assert!(e2.failure.as_ref().unwrap().reason.contains("answered 500"));
    assert_eq!(
        hook(&w, 2).await["hookStatus"],
        "FAILED",
        "duplicates answer the same"
    );
    // ECS's rollback: the service back on the blue revision, then the deployment failed event
    w.ecs()
        .update_service()
        .cluster(&sb.prod_cluster)
        .service(&sb.prod_service)
        .task_definition(&blue)
        .send()
        .await
        .unwrap();
    let failed = deployment_event(
        &w,
        &e2.prod.unwrap().deployment_id,
        "SERVICE_DEPLOYMENT_FAILED",
    )
    .await;
    assert_eq!(failed["status"], "ignored", "{failed}");
    assert_eq!(
        w.peek(&id2.parse().unwrap()).await.status,
        Status::ProdFailed
    );
    // what status says runs is what ECS runs: release 1; shipgate started no rollback itself
    assert_eq!(
        w.service_image(&sb.prod_cluster, &sb.prod_service).await,
        pinned
    );
    assert_eq!(shown_prod_digest(&w).await, digest);
    let rollbacks = w
        .services
        .store
        .list_executions("demo", 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.trigger.is_rollback())
        .count();
    assert_eq!(rollbacks, 0);

    // an unknown service and a malformed payload
    let mut other = hook_payload(&w, 3);
    other["executionDetails"]["serviceArn"] =
        "arn:aws:ecs:us-east-1:123456789012:service/elsewhere/other".into();
    let out = deploy_events::handler::handle(&w.services, other)
        .await
        .unwrap();
    assert_eq!(out["hookStatus"], "SUCCEEDED");
    let mut bad = hook_payload(&w, 3);
    bad["lifecycleStage"] = "NOPE".into();
    let err = deploy_events::handler::handle(&w.services, bad)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lifecycleStage"), "{err}");
}

#[tokio::test]
async fn an_alarm_event_rolls_a_baking_release_back_once() {
    let health = Health::start().await;
    let sandbox = shipgate_sandbox::Sandbox {
        demo_verify: Some(shipgate_sandbox::DemoVerify {
            test_url: health.url.clone(),
            prod_url: health.url.clone(),
            bake_seconds: 3600,
            alarm: shipgate_sandbox::DEMO_ALARM.into(),
            smoke_project: None,
        }),
        ..Default::default()
    };
    let Some(w) = World::start_with(sandbox).await else {
        return;
    };
    let sb = w.provisioned.sandbox.clone();
    let mut alarm: serde_json::Value =
        serde_json::from_str(include_str!("../../events/cloudwatch/alarm.json")).unwrap();
    alarm["detail"]["alarmName"] = shipgate_sandbox::DEMO_ALARM.into();

    // release 1 bakes for a second (the bake the pipeline asks for when ECS completes)
    let set_bake = |seconds: u32| {
        let w = &w;
        async move {
            let mut def = w.services.pipeline("demo").await.unwrap();
            def.verify
                .as_mut()
                .unwrap()
                .prod
                .as_mut()
                .unwrap()
                .bake_seconds = seconds;
            w.services
                .store
                .put_pipeline(&def, SystemClock.now())
                .await
                .unwrap();
        }
    };
    set_bake(1).await;
    // test and prod /health answer the release's tag (the first 12 characters of its commit)
    health.answer(200, "111111111111");
    let (id1, digest1) =
        release_to_approval(&w, "demo", "1111111111111111111111111111111111111111").await;
    assert_eq!(
        w.peek(&id1.parse().unwrap()).await.image_tag(),
        "111111111111"
    );
    let dep = approve(&w, &id1).await;
    let done = deployment_event(&w, &dep, "SERVICE_DEPLOYMENT_COMPLETED").await;
    assert_eq!(done["execution_status"], "SUCCEEDED", "{done}");
    assert_eq!(shown_prod_digest(&w).await, digest1);

    // release 2 bakes for an hour; the demo alarm goes to ALARM
    set_bake(3600).await;
    health.answer(200, "222222222222");
    let (id2, _) =
        release_to_approval(&w, "demo", "2222222222222222222222222222222222222222").await;
    let dep = approve(&w, &id2).await;
    let done = deployment_event(&w, &dep, "SERVICE_DEPLOYMENT_COMPLETED").await;
    assert_eq!(done["execution_status"], "BAKING_PROD", "{done}");
    // an ALARM event while the alarm is OK (a late, retried one) fails nothing
    let out = deploy_events::handler::handle(&w.services, alarm.clone())
        .await
        .unwrap();
    assert_eq!(out["status"], "ignored", "{out}");
    aws_sdk_cloudwatch::Client::new(&w.moto.sdk)
        .set_alarm_state()
        .alarm_name(shipgate_sandbox::DEMO_ALARM)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("test: 5xx")
        .send()
        .await
        .unwrap();
    let out = deploy_events::handler::handle(&w.services, alarm.clone())
        .await
        .unwrap();
    assert_eq!(out["status"], "applied", "{out}");
    assert_eq!(out["failed"][0], id2.as_str());
    let e2 = w.peek(&id2.parse().unwrap()).await;
    assert_eq!(e2.status, Status::ProdFailed);
    let rollback = e2
        .verify_prod
        .as_ref()
        .unwrap()
        .rollback
        .clone()
        .expect("automatic rollback");
    // duplicated events: nothing twice
    for _ in 0..2 {
        let out = deploy_events::handler::handle(&w.services, alarm.clone())
            .await
            .unwrap();
        assert_eq!(out["status"], "ignored", "{out}");
    }
    let rb = w.peek(&rollback).await;
    let done = deployment_event(
        &w,
        &rb.prod.unwrap().deployment_id,
        "SERVICE_DEPLOYMENT_COMPLETED",
    )
    .await;
    assert_eq!(done["execution_status"], "SUCCEEDED", "{done}");
    assert_eq!(
        w.peek(&id2.parse().unwrap()).await.status,
        Status::RolledBack
    );
    // a late event for the rolled-back release changes nothing
    let out = deploy_events::handler::handle(&w.services, alarm)
        .await
        .unwrap();
    assert_eq!(out["status"], "ignored");
    let rollbacks = w
        .services
        .store
        .list_executions("demo", 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.trigger.is_rollback())
        .count();
    assert_eq!(rollbacks, 1);
    // what status says runs is what ECS runs: release 1
    assert_eq!(
        w.service_image(&sb.prod_cluster, &sb.prod_service).await,
        format!("{}@{digest1}", w.provisioned.repository_uri)
    );
    assert_eq!(shown_prod_digest(&w).await, digest1);
}
