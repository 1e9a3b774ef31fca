//! Helpers shared by the use-case tests: drive executions through the fakes.

use super::approvals::FormDecision;
use super::events::{on_build_state, on_deployment_state};
use super::sources::{handle_github_delivery, WebhookOutcome, WebhookRequest};
use crate::domain::aws_events::{
    BuildStateChange, BuildStatus, DeploymentEventName, DeploymentStateChange,
};
use crate::domain::github::sign_body;
use crate::domain::{Execution, ExecutionId, Status, Verdict};
use crate::fake_world::FakeWorld;
use crate::fakes::WEBHOOK_SECRET;
use crate::ports::Clock;

pub(crate) const PUSH: &str = include_str!("../../../events/github/push.json");
pub(crate) const REPO: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/hello";

pub(crate) fn push_body(sha: &str, message: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(PUSH).unwrap();
    v["after"] = sha.into();
    v["head_commit"]["id"] = sha.into();
    v["head_commit"]["message"] = message.into();
    v.to_string()
}

pub(crate) fn sha(n: u8) -> String {
    format!("{:040x}", u128::from(n) * 0x1111_1111_1111)
}

pub(crate) async fn push(w: &FakeWorld, sha: &str, delivery: &str) -> ExecutionId {
    let body = push_body(sha, "change");
    let sig = sign_body(WEBHOOK_SECRET.as_bytes(), body.as_bytes());
    let out = handle_github_delivery(
        &w.services,
        WebhookRequest {
            event: Some("push"),
            delivery: Some(delivery),
            hook_id: Some("1"),
            signature: Some(&sig),
            body: body.as_bytes(),
        },
    )
    .await
    .unwrap();
    match out {
        WebhookOutcome::Started(s) => s[0].execution_id.clone(),
        other => panic!("{other:?}"),
    }
}

pub(crate) fn build_event(exec: &Execution, status: BuildStatus) -> BuildStateChange {
    BuildStateChange {
        event_id: "e".into(),
        build_id: exec.build_id.clone().unwrap(),
        project: "hello-build".into(),
        status,
        current_phase: Some("BUILD".into()),
        reason: (status == BuildStatus::Failed).then(|| "COMMAND_EXECUTION_ERROR: exit 1".into()),
        logs_link: Some("https://logs.example/x".into()),
        resolved_commit: None,
        exported_variables: Vec::new(),
    }
}

pub(crate) fn deploy_event(
    deployment_id: &str,
    name: DeploymentEventName,
) -> DeploymentStateChange {
    DeploymentStateChange {
        event_id: "e".into(),
        deployment_id: deployment_id.into(),
        name,
        service_arn: None,
        reason: (name == DeploymentEventName::Failed)
            .then(|| "circuit breaker: tasks failed".into()),
    }
}

pub(crate) async fn exec(w: &FakeWorld, id: &ExecutionId) -> Execution {
    w.services.execution(id).await.unwrap()
}

/// Push and drive the build to success (the "image" is pushed to the fake registry).
pub(crate) async fn built(w: &FakeWorld, n: u8) -> ExecutionId {
    let id = push(w, &sha(n), &format!("d-{n}")).await;
    let e = exec(w, &id).await;
    w.registry.push(
        "hello",
        &e.image_tag(),
        &format!("sha256:{:064x}", n),
        w.clock.now(),
    );
    on_build_state(&w.services, &build_event(&e, BuildStatus::Succeeded))
        .await
        .unwrap();
    id
}

/// ... and through the test deployment to AWAITING_APPROVAL.
pub(crate) async fn awaiting(w: &FakeWorld, n: u8) -> ExecutionId {
    let id = built(w, n).await;
    let e = exec(w, &id).await;
    let dep = e.test.as_ref().unwrap().deployment_id.clone();
    on_deployment_state(
        &w.services,
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    assert_eq!(exec(w, &id).await.status, Status::AwaitingApproval);
    id
}

pub(crate) fn approval_token(w: &FakeWorld) -> String {
    let (_, notice) = w
        .notifier
        .sent()
        .into_iter()
        .rev()
        .find(|(_, n)| n.subject.contains("Approve"))
        .expect("approval message");
    let link = notice
        .body
        .lines()
        .find(|l| l.contains("/approvals/"))
        .unwrap()
        .trim()
        .to_string();
    link.rsplit('/').next().unwrap().to_string()
}

pub(crate) fn form(verdict: Verdict) -> FormDecision {
    FormDecision {
        verdict,
        name: Some("Grace".into()),
        comment: Some("ship it".into()),
        source_ip: Some("203.0.113.7".into()),
        user_agent: Some("Mozilla/5.0".into()),
    }
}

pub(crate) async fn succeed(w: &FakeWorld, n: u8) -> ExecutionId {
    let id = approve_and_complete_prod(w, n).await;
    assert_eq!(exec(w, &id).await.status, Status::Succeeded);
    id
}

/// Execution `n` awaiting approval, approved from the CLI, its prod deployment completed (what
/// follows depends on the pipeline: SUCCEEDED, or a production verification / bake).
pub(crate) async fn approve_and_complete_prod(w: &FakeWorld, n: u8) -> ExecutionId {
    let id = awaiting(w, n).await;
    let e = super::approvals::decide(
        &w.services,
        &id,
        Verdict::Approve,
        "ops",
        crate::domain::Channel::Cli,
        None,
    )
    .await
    .unwrap();
    let dep = e.prod.unwrap().deployment_id;
    on_deployment_state(
        &w.services,
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    id
}

/// An execution recorded by a webhook that died before StartBuild.
pub(crate) async fn received_without_build(w: &FakeWorld, n: u8) -> ExecutionId {
    let now = w.clock.now();
    let exec = Execution::received(
        ExecutionId::generate(now),
        "hello",
        crate::domain::Commit {
            sha: sha(n),
            reference: "main".into(),
            ..Default::default()
        },
        crate::domain::Trigger::GithubPush {
            delivery: format!("d-{n}"),
            pusher: None,
        },
        now,
        "github",
    );
    crate::ports::ExecutionStore::create_execution(w.store.as_ref(), &exec, None)
        .await
        .unwrap();
    exec.id
}

pub(crate) fn deployment_change(deployment_id: &str) -> DeploymentStateChange {
    deploy_event(deployment_id, DeploymentEventName::Completed)
}
