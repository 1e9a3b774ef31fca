//! The production smoke test through the use cases and the fakes, each with the function that
//! performs it in AWS: deploy-events starts it once the prod check passed and its result
//! (the smoke projects' EventBridge rule) bakes or rolls production back automatically; the
//! sweeper never decides a production verification; deploy-events' scheduled resume applies a
//! lost result and fails a build that never reports. After each: what `status` shows is what
//! ECS runs.

use super::events::{on_deployment_state, EventOutcome};
use super::smoke::on_smoke_build_event;
use super::sweeper::{resume_production, sweep, SweepLimits};
use super::test_support::*;
use super::Services;
use crate::domain::aws_events::{BuildStateChange, BuildStatus, DeploymentEventName};
use crate::domain::{Environment, Execution, ExecutionId, Format, PipelineDefinition, Status};
use crate::fake_world::FakeWorld;
use crate::fakes::SAMPLE_PIPELINE;
use crate::ports::{BuildRequest, Clock, ExecutionStore};
use crate::wiring::profiles;

const PROD_SMOKE: &str = r#"
[verify.prod]
url = "http://hello-prod.internal/health"
attempts = 2
interval_seconds = 1
timeout_seconds = 2
smoke_project = "hello-smoke"
smoke_timeout_minutes = 10
bake_seconds = 1
"#;

async fn world(verify: &str) -> FakeWorld {
    let w = FakeWorld::with_pipeline().await;
    let p = PipelineDefinition::parse(&format!("{SAMPLE_PIPELINE}\n{verify}"), Format::Toml)
        .expect("pipeline with a production smoke test");
    w.store.put_pipeline(&p, w.clock.now()).await.unwrap();
    w
}

fn function(w: &FakeWorld, profile: &crate::wiring::Profile) -> Services {
    w.services.clone().with_capabilities(profile.can)
}

fn prod_smoke_build(e: &Execution) -> Option<String> {
    e.verify_prod
        .as_ref()
        .and_then(|v| v.smoke.as_ref())
        .and_then(|s| s.build_id.clone())
}

fn smoke_event(build_id: &str, status: BuildStatus) -> BuildStateChange {
    BuildStateChange {
        event_id: "prod-smoke-e".into(),
        build_id: build_id.into(),
        project: "hello-smoke".into(),
        status,
        current_phase: Some("BUILD".into()),
        reason: (status == BuildStatus::Failed)
            .then(|| "COMMAND_EXECUTION_ERROR: curl $TARGET_URL: exit status 22".into()),
        logs_link: Some(
            "https://console.aws.amazon.com/cloudwatch/home#logEvent:prod-smoke".into(),
        ),
        resolved_commit: None,
        exported_variables: Vec::new(),
    }
}

fn smoke_requests(w: &FakeWorld) -> Vec<BuildRequest> {
    w.builds
        .started()
        .into_iter()
        .filter(|r| r.project == "hello-smoke")
        .collect()
}

/// Execution `n` approved; its prod deployment completes (deploy-events) with a healthy prod.
async fn prod_completed(w: &FakeWorld, n: u8) -> ExecutionId {
    let id = awaiting(w, n).await;
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
    w.probe.answer_version(200, &e.image_tag());
    let dep = e.prod.unwrap().deployment_id;
    on_deployment_state(
        &function(w, &profiles::DEPLOY_EVENTS),
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    id
}

/// Bake over: the next resume passes it (deploy-events' schedule).
async fn finish_bake(w: &FakeWorld, id: &ExecutionId) {
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(2));
    resume_production(
        &function(w, &profiles::DEPLOY_EVENTS),
        &SweepLimits::default(),
    )
    .await
    .unwrap();
    assert_eq!(exec(w, id).await.status, Status::Succeeded);
}

/// Prod runs `digest`, and `status` says so.
async fn prod_runs(w: &FakeWorld, digest: &str) {
    let p = FakeWorld::pipeline();
    let running = w.deployer.image_of(&p.prod).unwrap();
    assert!(
        running.ends_with(digest),
        "prod runs {running}, expected {digest}"
    );
    let shown = super::releases::shown(&w.services, "hello", Environment::Prod)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown.current().unwrap().image.digest, digest);
}

/// The automatic rollback `e` started completes (its ECS deployment event).
async fn complete_rollback(w: &FakeWorld, e: &Execution) -> ExecutionId {
    let rollback = e
        .verify_prod
        .as_ref()
        .unwrap()
        .rollback
        .clone()
        .expect("automatic rollback started");
    let rb = exec(w, &rollback).await;
    assert!(rb.trigger.is_rollback());
    let dep = rb.prod.as_ref().unwrap().deployment_id.clone();
    on_deployment_state(
        &function(w, &profiles::DEPLOY_EVENTS),
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    assert_eq!(exec(w, &rollback).await.status, Status::Succeeded);
    rollback
}

fn rollbacks(execs: &[Execution]) -> usize {
    execs.iter().filter(|e| e.trigger.is_rollback()).count()
}

#[tokio::test]
async fn a_passed_prod_check_starts_one_prod_smoke_build_whose_success_bakes_then_succeeds() {
    let w = world(PROD_SMOKE).await;
    let deploy_events = function(&w, &profiles::DEPLOY_EVENTS);
    let id = prod_completed(&w, 1).await;
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::VerifyingProd, "{:?}", e.history);
    let smoke = smoke_requests(&w);
    assert_eq!(smoke.len(), 1);
    let env: std::collections::HashMap<&str, &str> = smoke[0]
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env["SHIPGATE_ENVIRONMENT"], "prod");
    assert_eq!(env["TARGET_URL"], "http://hello-prod.internal/health");
    assert_eq!(env["COMMIT_SHA"], e.commit.sha);
    assert_eq!(env["IMAGE_DIGEST"], e.image.as_ref().unwrap().digest);
    assert_eq!(env["SHIPGATE_EXECUTION_ID"], id.as_str());
    assert_eq!(smoke[0].idempotency_token, format!("{id}-smoke-prod-1"));
    let build_id = prod_smoke_build(&e).expect("prod smoke build recorded");
    assert_eq!(
        w.store.find_by_build(&build_id).await.unwrap(),
        Some(id.clone())
    );
    // in progress: nothing; the prod deployment's completion again: no second build
    on_smoke_build_event(
        &deploy_events,
        &smoke_event(&build_id, BuildStatus::InProgress),
    )
    .await
    .unwrap();
    let dep = e.prod.as_ref().unwrap().deployment_id.clone();
    on_deployment_state(
        &deploy_events,
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    assert_eq!(smoke_requests(&w).len(), 1);
    assert_eq!(exec(&w, &id).await.status, Status::VerifyingProd);
    // passed: the bake starts
    let out = on_smoke_build_event(
        &deploy_events,
        &smoke_event(&build_id, BuildStatus::Succeeded),
    )
    .await
    .unwrap();
    assert!(matches!(out, EventOutcome::Applied(_)), "{out:?}");
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::BakingProd, "{:?}", e.history);
    assert!(e
        .verify_prod
        .as_ref()
        .unwrap()
        .smoke
        .as_ref()
        .unwrap()
        .passed());
    // duplicated and contradicting events: nothing
    for status in [BuildStatus::Succeeded, BuildStatus::Failed] {
        let out = on_smoke_build_event(&deploy_events, &smoke_event(&build_id, status))
            .await
            .unwrap();
        assert!(matches!(out, EventOutcome::Ignored(_)), "{out:?}");
    }
    finish_bake(&w, &id).await;
    prod_runs(&w, &e.image.unwrap().digest).await;
    assert_eq!(
        rollbacks(&w.store.list_executions("hello", 100).await.unwrap()),
        0
    );
}

#[tokio::test]
async fn a_failed_prod_smoke_test_rolls_production_back_to_the_last_good_release_once() {
    let w = world(PROD_SMOKE).await;
    let deploy_events = function(&w, &profiles::DEPLOY_EVENTS);
    // a first release passes
    let first = prod_completed(&w, 1).await;
    let build = prod_smoke_build(&exec(&w, &first).await).unwrap();
    on_smoke_build_event(&deploy_events, &smoke_event(&build, BuildStatus::Succeeded))
        .await
        .unwrap();
    finish_bake(&w, &first).await;
    let good = exec(&w, &first).await.image.unwrap().digest;

    // the second one's smoke test fails
    let second = prod_completed(&w, 2).await;
    let build = prod_smoke_build(&exec(&w, &second).await).unwrap();
    on_smoke_build_event(&deploy_events, &smoke_event(&build, BuildStatus::Failed))
        .await
        .unwrap();
    let e = exec(&w, &second).await;
    assert_eq!(e.status, Status::ProdFailed, "{:?}", e.history);
    let f = e.failure.as_ref().unwrap();
    assert!(
        f.reason.contains("smoke test hello-smoke FAILED"),
        "{}",
        f.reason
    );
    assert!(f.reason.contains("exit status 22"), "{}", f.reason);
    assert!(f.link.as_deref().unwrap().contains("prod-smoke"));
    // the same failure again (EventBridge redrives): one rollback only
    on_smoke_build_event(&deploy_events, &smoke_event(&build, BuildStatus::Failed))
        .await
        .unwrap();
    let rollback = complete_rollback(&w, &e).await;
    let e = exec(&w, &second).await;
    assert_eq!(e.status, Status::RolledBack);
    assert!(e.failure.as_ref().unwrap().reason.contains("smoke test"));
    prod_runs(&w, &good).await;
    // a notice said so
    assert!(w
        .notifier
        .sent()
        .iter()
        .any(|(_, n)| n.body.contains("smoke test hello-smoke FAILED")));
    // later resumes and sweeps roll back nothing more
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(2));
    resume_production(&deploy_events, &SweepLimits::default())
        .await
        .unwrap();
    sweep(&function(&w, &profiles::SWEEPER), &SweepLimits::default())
        .await
        .unwrap();
    let execs = w.store.list_executions("hello", 100).await.unwrap();
    assert_eq!(rollbacks(&execs), 1, "only {rollback}");
    prod_runs(&w, &good).await;
}

#[tokio::test]
async fn the_sweeper_leaves_production_and_deploy_events_resume_applies_a_lost_failure() {
    let w = world(PROD_SMOKE).await;
    let deploy_events = function(&w, &profiles::DEPLOY_EVENTS);
    let sweeper = function(&w, &profiles::SWEEPER);
    let first = prod_completed(&w, 1).await;
    let build = prod_smoke_build(&exec(&w, &first).await).unwrap();
    on_smoke_build_event(&deploy_events, &smoke_event(&build, BuildStatus::Succeeded))
        .await
        .unwrap();
    finish_bake(&w, &first).await;
    let good = exec(&w, &first).await.image.unwrap().digest;

    let second = prod_completed(&w, 2).await;
    let e = exec(&w, &second).await;
    let build = prod_smoke_build(&e).unwrap();
    // the build fails, but its event never reaches shipgate
    w.builds.set_state(
        &build,
        "FAILED",
        Some("COMMAND_EXECUTION_ERROR: exit status 22"),
    );
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(2));
    // the sweeper may not roll production back: it does not touch the execution
    sweep(&sweeper, &SweepLimits::default()).await.unwrap();
    assert_eq!(exec(&w, &second).await.status, Status::VerifyingProd);
    assert_eq!(exec(&w, &second).await.version, e.version);
    // deploy-events' scheduled resume reads the build and rolls back
    let report = resume_production(&deploy_events, &SweepLimits::default())
        .await
        .unwrap();
    assert_eq!(report.resumed, 1, "{report:?}");
    let e = exec(&w, &second).await;
    assert_eq!(e.status, Status::ProdFailed, "{:?}", e.history);
    complete_rollback(&w, &e).await;
    assert_eq!(exec(&w, &second).await.status, Status::RolledBack);
    prod_runs(&w, &good).await;
    // the build's event arrives late after all: nothing more
    let out = on_smoke_build_event(&deploy_events, &smoke_event(&build, BuildStatus::Failed))
        .await
        .unwrap();
    assert!(matches!(out, EventOutcome::Ignored(_)), "{out:?}");
    assert_eq!(
        rollbacks(&w.store.list_executions("hello", 100).await.unwrap()),
        1
    );
}

#[tokio::test]
async fn a_prod_smoke_build_that_never_reports_rolls_back_after_its_timeout_only() {
    let w = world(PROD_SMOKE).await;
    let deploy_events = function(&w, &profiles::DEPLOY_EVENTS);
    let first = prod_completed(&w, 1).await;
    let build = prod_smoke_build(&exec(&w, &first).await).unwrap();
    on_smoke_build_event(&deploy_events, &smoke_event(&build, BuildStatus::Succeeded))
        .await
        .unwrap();
    finish_bake(&w, &first).await;
    let good = exec(&w, &first).await.image.unwrap().digest;

    let second = prod_completed(&w, 2).await;
    // before its timeout: resumes leave the running build alone
    w.clock.advance(chrono::Duration::minutes(9));
    resume_production(&deploy_events, &SweepLimits::default())
        .await
        .unwrap();
    assert_eq!(exec(&w, &second).await.status, Status::VerifyingProd);
    w.clock.advance(chrono::Duration::minutes(2));
    resume_production(&deploy_events, &SweepLimits::default())
        .await
        .unwrap();
    let e = exec(&w, &second).await;
    assert_eq!(e.status, Status::ProdFailed, "{:?}", e.history);
    assert!(e
        .failure
        .as_ref()
        .unwrap()
        .reason
        .contains("did not report within 10 minutes"));
    complete_rollback(&w, &e).await;
    prod_runs(&w, &good).await;
}

#[tokio::test]
async fn a_handler_killed_after_the_failure_was_written_has_its_rollback_started_by_the_resume() {
    let w = world(PROD_SMOKE).await;
    let deploy_events = function(&w, &profiles::DEPLOY_EVENTS);
    let first = prod_completed(&w, 1).await;
    let build = prod_smoke_build(&exec(&w, &first).await).unwrap();
    on_smoke_build_event(&deploy_events, &smoke_event(&build, BuildStatus::Succeeded))
        .await
        .unwrap();
    finish_bake(&w, &first).await;
    let good = exec(&w, &first).await.image.unwrap().digest;

    let second = prod_completed(&w, 2).await;
    let build = prod_smoke_build(&exec(&w, &second).await).unwrap();
    // a function that may not roll back records the failure, then "dies" (the rollback owed)
    let no_rollback = w
        .services
        .clone()
        .with_capabilities(crate::app::Capabilities {
            roll_back_prod: false,
            ..profiles::DEPLOY_EVENTS.can
        });
    let stored = exec(&w, &second).await;
    let event = crate::domain::Event::SmokeFinished {
        build_id: build.clone(),
        status: "FAILED".into(),
        reason: Some("exit status 22".into()),
        link: None,
        approval: None,
    };
    no_rollback
        .apply_to(stored, super::SYSTEM_ACTOR, event)
        .await
        .unwrap();
    let e = exec(&w, &second).await;
    assert_eq!(e.status, Status::ProdFailed);
    assert!(e.verify_prod.as_ref().unwrap().rollback.is_none());
    // the schedule: deploy-events starts the owed rollback, once
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(2));
    resume_production(&deploy_events, &SweepLimits::default())
        .await
        .unwrap();
    resume_production(&deploy_events, &SweepLimits::default())
        .await
        .unwrap();
    let e = exec(&w, &second).await;
    complete_rollback(&w, &e).await;
    prod_runs(&w, &good).await;
    assert_eq!(
        rollbacks(&w.store.list_executions("hello", 100).await.unwrap()),
        1
    );
}
