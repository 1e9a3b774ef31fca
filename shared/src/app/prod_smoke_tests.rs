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

/// Release `n` reaches production, passes its smoke test and its bake: SUCCEEDED. Returns its id
/// and digest.
async fn good_release(w: &FakeWorld, n: u8) -> (ExecutionId, String) {
    let id = prod_completed(w, n).await;
    let build = prod_smoke_build(&exec(w, &id).await).unwrap();
    on_smoke_build_event(
        &function(w, &profiles::DEPLOY_EVENTS),
        &smoke_event(&build, BuildStatus::Succeeded),
    )
    .await
    .unwrap();
    finish_bake(w, &id).await;
    let digest = exec(w, &id).await.image.unwrap().digest;
    (id, digest)
}

/// deploy-events without the right to roll production back: it records a failure, then the
/// rollback is owed — what a handler killed right after that write leaves behind.
fn without_rollback(w: &FakeWorld) -> Services {
    w.services
        .clone()
        .with_capabilities(crate::app::Capabilities {
            roll_back_prod: false,
            ..profiles::DEPLOY_EVENTS.can
        })
}

/// Release `id`'s prod smoke test fails, recorded by a function that may not roll back (what a
/// deploy-events killed right after that write leaves: the rollback owed). Returns it.
async fn smoke_failed_rollback_owed(w: &FakeWorld, id: &ExecutionId) -> Services {
    let build = prod_smoke_build(&exec(w, id).await).unwrap();
    let no_rollback = without_rollback(w);
    let event = crate::domain::Event::SmokeFinished {
        build_id: build,
        status: "FAILED".into(),
        reason: Some("exit status 22".into()),
        link: None,
        approval: None,
    };
    no_rollback
        .apply_to(exec(w, id).await, super::SYSTEM_ACTOR, event)
        .await
        .unwrap();
    no_rollback
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
    let (_, good) = good_release(&w, 1).await;

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
    let (_, good) = good_release(&w, 1).await;

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
    let (_, good) = good_release(&w, 1).await;

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
    let build = prod_smoke_build(&e).unwrap();
    assert_eq!(*w.builds.stopped.lock().unwrap(), vec![build.clone()]);
    complete_rollback(&w, &e).await;
    prod_runs(&w, &good).await;
    // the stopped build's late event changes nothing
    on_smoke_build_event(&deploy_events, &smoke_event(&build, BuildStatus::Stopped))
        .await
        .unwrap();
    assert_eq!(exec(&w, &second).await.status, Status::RolledBack);
    prod_runs(&w, &good).await;
}

#[tokio::test]
async fn a_handler_killed_after_the_failure_was_written_has_its_rollback_started_by_the_resume() {
    let w = world(PROD_SMOKE).await;
    let deploy_events = function(&w, &profiles::DEPLOY_EVENTS);
    let (_, good) = good_release(&w, 1).await;

    let second = prod_completed(&w, 2).await;
    // a function that may not roll back records the failure, then "dies" (the rollback owed)
    smoke_failed_rollback_owed(&w, &second).await;
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

/// deploy-events runs 60 s: its scheduled resume must end well inside that however many
/// production verifications are stale (every bake step watches for up to 12 s), and an owed
/// automatic rollback — production runs a release that failed — comes before any bake.
#[tokio::test]
async fn the_scheduled_resume_starts_owed_rollbacks_first_and_stops_within_its_budget() {
    let w = world(PROD_SMOKE).await;
    let deploy_events = function(&w, &profiles::DEPLOY_EVENTS);
    let (first, good) = good_release(&w, 1).await;

    // release 2 failed its smoke test; the rollback is owed (its handler died)
    let second = prod_completed(&w, 2).await;
    smoke_failed_rollback_owed(&w, &second).await;
    // long bakes whose workers died (older executions: listed first)
    let template = exec(&w, &first).await;
    for i in 0..3 {
        let mut baking = template.clone();
        baking.id = ExecutionId::generate(template.created_at - chrono::Duration::hours(1 + i));
        baking.status = Status::BakingProd;
        if let Some(v) = baking.verify_prod.as_mut() {
            v.bake_until = Some(w.clock.now() + chrono::Duration::hours(1));
            v.alarms.clear();
        }
        w.store.create_execution(&baking, None).await.unwrap();
    }
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(2));
    // a spent budget: this run resumes one execution — the owed rollback
    let limits = SweepLimits {
        production_budget: std::time::Duration::ZERO,
        ..SweepLimits::default()
    };
    let report = resume_production(&deploy_events, &limits).await.unwrap();
    assert_eq!(report.resumed, 1, "{report:?}");
    assert_eq!(report.deferred, 3, "{report:?}");
    let e = exec(&w, &second).await;
    assert!(e.verify_prod.as_ref().unwrap().rollback.is_some());
    complete_rollback(&w, &e).await;
    prod_runs(&w, &good).await;
    // the default budget ends the run within deploy-events' timeout
    assert!(
        SweepLimits::default().production_budget + 2 * super::verification::STEP_BUDGET
            < std::time::Duration::from_secs(DEPLOY_EVENTS_TIMEOUT_SECONDS)
    );
}

/// deploy-events' `Timeout` in infra/template.yaml.
const DEPLOY_EVENTS_TIMEOUT_SECONDS: u64 = 60;

/// An operator rolls production back while a release's production smoke test runs: once the
/// rollback completed, the release it moved away from is ROLLED_BACK (what `status` and ECS
/// say), and that smoke build's late success neither bakes nor succeeds it.
#[tokio::test]
async fn an_operator_rollback_during_the_prod_smoke_test_marks_the_release_rolled_back() {
    let w = world(PROD_SMOKE).await;
    let deploy_events = function(&w, &profiles::DEPLOY_EVENTS);
    let (_, good) = good_release(&w, 1).await;

    let second = prod_completed(&w, 2).await;
    let build = prod_smoke_build(&exec(&w, &second).await).unwrap();
    // `shipgate rollback hello --env prod` (control) while the smoke build runs
    let rb = super::releases::rollback(&w.services, "hello", Environment::Prod, None, "ops")
        .await
        .unwrap();
    let dep = exec(&w, &rb.id).await.prod.unwrap().deployment_id;
    on_deployment_state(
        &deploy_events,
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    assert_eq!(exec(&w, &rb.id).await.status, Status::Succeeded);
    let e = exec(&w, &second).await;
    assert_eq!(e.status, Status::RolledBack, "{:?}", e.history);
    prod_runs(&w, &good).await;
    // the smoke build of the release moved away from succeeds late; resumes follow
    let late = on_smoke_build_event(&deploy_events, &smoke_event(&build, BuildStatus::Succeeded))
        .await
        .unwrap();
    assert!(matches!(late, EventOutcome::Ignored(_)), "{late:?}");
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(2));
    resume_production(&deploy_events, &SweepLimits::default())
        .await
        .unwrap();
    assert_eq!(exec(&w, &second).await.status, Status::RolledBack);
    prod_runs(&w, &good).await;
}

/// deploy-events dies between creating the automatic rollback's execution and starting its
/// production deployment. On the next tick deploy-events' resume and the sweeper both find it
/// (in either order): the rollback's deployment is started by deploy-events — the sweeper,
/// which may not deploy production, must not be left to fail it while the failed release
/// stays in production with its rollback "recorded".
#[tokio::test]
async fn an_automatic_rollback_killed_before_its_deployment_is_deployed_by_the_resume() {
    killed_rollback_then_the_schedule(false).await;
    killed_rollback_then_the_schedule(true).await;
}

async fn killed_rollback_then_the_schedule(sweeper_first: bool) {
    let w = world(PROD_SMOKE).await;
    let deploy_events = function(&w, &profiles::DEPLOY_EVENTS);
    let (_, good) = good_release(&w, 1).await;

    let second = prod_completed(&w, 2).await;
    let no_rollback = smoke_failed_rollback_owed(&w, &second).await;
    // the rollback execution is stored (claim and item), then the invocation dies: its
    // production deployment is never started (a function that may not deploy prod)
    let rb = super::releases::rollback(
        &no_rollback,
        "hello",
        Environment::Prod,
        None,
        super::SYSTEM_ACTOR,
    )
    .await
    .unwrap();
    assert_eq!(rb.status, Status::DeployingProd);
    assert!(rb.prod.is_none());
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(2));
    // the schedule runs both functions, in either order
    let sweeper = function(&w, &profiles::SWEEPER);
    if sweeper_first {
        sweep(&sweeper, &SweepLimits::default()).await.unwrap();
    }
    resume_production(&deploy_events, &SweepLimits::default())
        .await
        .unwrap();
    if !sweeper_first {
        sweep(&sweeper, &SweepLimits::default()).await.unwrap();
    }
    let e = exec(&w, &second).await;
    let by = e.verify_prod.as_ref().unwrap().rollback.clone().unwrap();
    let running = exec(&w, &by).await;
    assert_eq!(
        running.status,
        Status::DeployingProd,
        "{:?}",
        running.history
    );
    assert!(
        running.prod.is_some(),
        "the rollback's deployment was started"
    );
    if sweeper_first {
        // the sweeper failed the dead one first: a new rollback was started instead
        assert_eq!(exec(&w, &rb.id).await.status, Status::ProdFailed);
        assert_ne!(by, rb.id);
    } else {
        assert_eq!(by, rb.id);
    }
    complete_rollback(&w, &e).await;
    prod_runs(&w, &good).await;
    assert_eq!(exec(&w, &second).await.status, Status::RolledBack);
}

/// The first release fails its production smoke test (no earlier release: no rollback is
/// possible), and its prod deployment's completion event was lost (the sweeper reconciles
/// it, deploy-events verifies it). `shipgate retry` starts a new round: a new smoke build with
/// its own token; the old build's late event changes nothing; the new one bakes and succeeds.
#[tokio::test]
async fn a_retried_release_gets_a_new_prod_smoke_build_and_the_old_ones_late_event_is_ignored() {
    let w = world(PROD_SMOKE).await;
    let deploy_events = function(&w, &profiles::DEPLOY_EVENTS);
    let sweeper = function(&w, &profiles::SWEEPER);
    let id = awaiting(&w, 1).await;
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
    // the deployment completes; its event is lost: the sweeper reconciles, leaves the
    // verification to deploy-events
    let dep = e.prod.as_ref().unwrap().deployment_id.clone();
    w.deployer
        .set_deployment_state(&dep, crate::ports::DeploymentObservation::Completed);
    w.clock.advance(chrono::Duration::minutes(11));
    sweep(&sweeper, &SweepLimits::default()).await.unwrap();
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::VerifyingProd, "{:?}", e.history);
    assert!(smoke_requests(&w).is_empty());
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(2));
    resume_production(&deploy_events, &SweepLimits::default())
        .await
        .unwrap();
    let e = exec(&w, &id).await;
    let old = prod_smoke_build(&e).expect("deploy-events started the smoke build");
    assert_eq!(
        smoke_requests(&w)[0].idempotency_token,
        format!("{id}-smoke-prod-1")
    );
    on_smoke_build_event(&deploy_events, &smoke_event(&old, BuildStatus::Failed))
        .await
        .unwrap();
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::ProdFailed);
    assert!(
        e.verify_prod.as_ref().unwrap().rollback.is_none(),
        "nothing to roll back to"
    );

    let retried = super::control::retry(&w.services, &id, "ops")
        .await
        .unwrap();
    assert_eq!(retried.status, Status::DeployingProd);
    let dep = retried.prod.as_ref().unwrap().deployment_id.clone();
    on_deployment_state(
        &deploy_events,
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    let e = exec(&w, &id).await;
    let new = prod_smoke_build(&e).expect("a new smoke build");
    assert_ne!(new, old);
    let requests = smoke_requests(&w);
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].idempotency_token, format!("{id}-smoke-prod-2"));
    // the first round's build reports again, late: ignored
    let late = on_smoke_build_event(&deploy_events, &smoke_event(&old, BuildStatus::Succeeded))
        .await
        .unwrap();
    assert!(matches!(late, EventOutcome::Ignored(_)), "{late:?}");
    assert_eq!(exec(&w, &id).await.status, Status::VerifyingProd);
    on_smoke_build_event(&deploy_events, &smoke_event(&new, BuildStatus::Succeeded))
        .await
        .unwrap();
    finish_bake(&w, &id).await;
    prod_runs(&w, &e.image.unwrap().digest).await;
}

/// Two good releases, then a third whose prod smoke test fails: the automatic rollback restores
/// the second (the last good one), not the first; the third is ROLLED_BACK.
#[tokio::test]
async fn a_third_release_failing_its_prod_smoke_test_restores_the_second() {
    let w = world(PROD_SMOKE).await;
    let deploy_events = function(&w, &profiles::DEPLOY_EVENTS);
    let mut good = Vec::new();
    for n in 1..=2 {
        let (id, digest) = good_release(&w, n).await;
        assert_eq!(exec(&w, &id).await.status, Status::Succeeded);
        good.push(digest);
    }
    assert_ne!(good[0], good[1]);
    let third = prod_completed(&w, 3).await;
    let build = prod_smoke_build(&exec(&w, &third).await).unwrap();
    on_smoke_build_event(&deploy_events, &smoke_event(&build, BuildStatus::Failed))
        .await
        .unwrap();
    let e = exec(&w, &third).await;
    assert_eq!(e.status, Status::ProdFailed, "{:?}", e.history);
    let rollback = complete_rollback(&w, &e).await;
    assert_eq!(
        exec(&w, &rollback).await.image.unwrap().digest,
        good[1],
        "the rollback restores the last good release"
    );
    assert_eq!(exec(&w, &third).await.status, Status::RolledBack);
    prod_runs(&w, &good[1]).await;
}
