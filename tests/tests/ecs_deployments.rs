//! ECS deployments as the moto launcher keeps them (one per UpdateService, each with its own id,
//! the replaced one ACTIVE), read through the real `EcsDeployer`: what the sandbox's pump and the
//! sweeper rely on.

use serde_json::json;
use shared::ports::DeploymentObservation;
use shipgate_tests::World;

/// End a rollout the way the sandbox's pump does (the launcher's `/_shipgate/ecs/rollout`).
async fn end_rollout(w: &World, service: &str, deployment_id: &str, state: &str) {
    let p = &w.provisioned.pipeline;
    let cluster = if service == p.test.service {
        &p.test.cluster
    } else {
        &p.prod.cluster
    };
    let resp = reqwest::Client::new()
        .post(format!("{}/_shipgate/ecs/rollout", w.moto.server.endpoint()))
        .json(&json!({"cluster": cluster, "service": service, "deploymentId": deployment_id, "rolloutState": state, "reason": "tasks failed to start"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap()
    );
}

#[tokio::test]
async fn every_update_is_its_own_deployment() {
    let Some(w) = World::start().await else {
        return;
    };
    let target = &w.provisioned.pipeline.test;
    let repo = &w.provisioned.repository_uri;
    let deployer = &w.services.deployer;
    let image = |c: char| format!("{repo}@sha256:{}", c.to_string().repeat(64));

    let first = deployer.deploy_image(target, &image('a')).await.unwrap();
    let second = deployer.deploy_image(target, &image('b')).await.unwrap();
    assert_ne!(first.deployment_id, second.deployment_id);
    assert_eq!(
        second.previous_task_definition.as_deref(),
        Some(first.task_definition.as_str())
    );
    let state = |id: String| async move { deployer.deployment_state(target, &id).await.unwrap() };
    assert_eq!(
        state(first.deployment_id.clone()).await,
        DeploymentObservation::Replaced
    );
    assert_eq!(
        state(second.deployment_id.clone()).await,
        DeploymentObservation::InProgress
    );

    // the newest completes: the replaced one is drained and stays replaced
    end_rollout(&w, &target.service, &second.deployment_id, "COMPLETED").await;
    assert_eq!(
        state(second.deployment_id.clone()).await,
        DeploymentObservation::Completed
    );
    assert_eq!(
        state(first.deployment_id.clone()).await,
        DeploymentObservation::Replaced
    );

    // a failed rollout, then the circuit breaker's rollback to the last completed one: the
    // failed deployment reads as failed, not as replaced
    let third = deployer.deploy_image(target, &image('c')).await.unwrap();
    end_rollout(&w, &target.service, &third.deployment_id, "FAILED").await;
    let rollback = deployer
        .deploy_task_definition(target, &second.task_definition)
        .await
        .unwrap();
    assert_ne!(rollback.deployment_id, third.deployment_id);
    match state(third.deployment_id.clone()).await {
        DeploymentObservation::Failed(reason) => assert!(reason.contains("failed"), "{reason}"),
        other => panic!("a failed rollout reads as {other:?}"),
    }
    let now = deployer.service_state(target).await.unwrap();
    assert_eq!(now.task_definition, second.task_definition);

    // bad requests to the launcher's endpoint are refused, nothing changes
    let bad = reqwest::Client::new()
        .post(format!(
            "{}/_shipgate/ecs/rollout",
            w.moto.server.endpoint()
        ))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let unknown = reqwest::Client::new()
        .post(format!("{}/_shipgate/ecs/rollout", w.moto.server.endpoint()))
        .json(&json!({"cluster": target.cluster, "service": target.service, "deploymentId": "ecs-svc/0", "rolloutState": "COMPLETED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    assert_eq!(
        state(rollback.deployment_id).await,
        DeploymentObservation::InProgress
    );
}
