//! The smoke test of a test verification through the use cases and the fakes, with each
//! function's own capabilities: deploy-events starts it once (idempotency token), build-events
//! recognises its build state change (not the image build's) and decides, the sweeper resumes a
//! start a killed handler left, reconciles a lost event and fails a build that never reports.

use super::events::{on_build_state, on_deployment_state, EventOutcome};
use super::smoke::on_smoke_build_event;
use super::sweeper::{sweep, SweepLimits};
use super::test_support::*;
use super::Services;
use crate::domain::aws_events::{BuildStateChange, BuildStatus, DeploymentEventName};
use crate::domain::{Environment, ExecutionId, Format, PipelineDefinition, Status};
use crate::fake_world::FakeWorld;
use crate::fakes::SAMPLE_PIPELINE;
use crate::ports::{BuildRequest, BuildRunner, Clock, ExecutionStore};
use crate::wiring::profiles;

const SMOKE: &str = r#"
[verify.test]
url = "http://hello-test.internal/health"
attempts = 2
interval_seconds = 1
timeout_seconds = 2
smoke_project = "hello-smoke"
smoke_timeout_minutes = 10
"#;

async fn world(verify: &str) -> FakeWorld {
    let w = FakeWorld::with_pipeline().await;
    let p = PipelineDefinition::parse(&format!("{SAMPLE_PIPELINE}\n{verify}"), Format::Toml)
        .expect("pipeline with a smoke test");
    w.store.put_pipeline(&p, w.clock.now()).await.unwrap();
    w
}

fn function(w: &FakeWorld, profile: &crate::wiring::Profile) -> Services {
    w.services.clone().with_capabilities(profile.can)
}

/// The test deployment of execution `n` completes (deploy-events) with a healthy service.
async fn completed(w: &FakeWorld, svc: &Services, n: u8) -> ExecutionId {
    let id = built(w, n).await;
    let e = exec(w, &id).await;
    w.probe.answer_version(200, &e.image_tag());
    let dep = e.test.unwrap().deployment_id;
    on_deployment_state(svc, &deploy_event(&dep, DeploymentEventName::Completed))
        .await
        .unwrap();
    id
}

fn smoke_build(e: &crate::domain::Execution) -> Option<String> {
    e.verify_test
        .as_ref()
        .and_then(|v| v.smoke.as_ref())
        .and_then(|s| s.build_id.clone())
}

fn smoke_event(build_id: &str, status: BuildStatus) -> BuildStateChange {
    BuildStateChange {
        event_id: "smoke-e".into(),
        build_id: build_id.into(),
        project: "hello-smoke".into(),
        status,
        current_phase: Some("BUILD".into()),
        reason: (status == BuildStatus::Failed)
            .then(|| "COMMAND_EXECUTION_ERROR: curl $TARGET_URL: exit status 22".into()),
        logs_link: Some("https://console.aws.amazon.com/cloudwatch/home#logEvent:smoke".into()),
        resolved_commit: None,
        exported_variables: Vec::new(),
    }
}

#[tokio::test]
async fn a_passed_check_starts_one_smoke_build_whose_success_asks_for_approval() {
    let w = world(SMOKE).await;
    let deploy_events = function(&w, &profiles::DEPLOY_EVENTS);
    let smoke_events = function(&w, &profiles::DEPLOY_EVENTS);
    let id = completed(&w, &deploy_events, 1).await;
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::VerifyingTest);
    assert!(e.approval.is_none());
    assert_eq!(
        w.notifier.count("Approve"),
        0,
        "not before the smoke test passed"
    );
    // one build of the smoke project (besides the image build), with what it tests
    let started = w.builds.started();
    let smoke: Vec<&BuildRequest> = started
        .iter()
        .filter(|r| r.project == "hello-smoke")
        .collect();
    assert_eq!(smoke.len(), 1);
    let env: std::collections::HashMap<&str, &str> = smoke[0]
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env["TARGET_URL"], "http://hello-test.internal/health");
    assert_eq!(env["COMMIT_SHA"], e.commit.sha);
    assert_eq!(env["IMAGE_DIGEST"], e.image.as_ref().unwrap().digest);
    assert_eq!(env["SHIPGATE_EXECUTION_ID"], id.as_str());
    assert_eq!(smoke[0].idempotency_token, format!("{id}-smoke-1"));
    assert_eq!(
        smoke[0].source_version, "",
        "the smoke project's own source"
    );
    let build_id = smoke_build(&e).expect("smoke build recorded");
    // the store finds the execution by the smoke build
    assert_eq!(
        w.store.find_by_build(&build_id).await.unwrap(),
        Some(id.clone())
    );
    // the image build's event again (late): it is not the smoke build, nothing changes
    let image_build = e.build_id.clone().unwrap();
    let mut late = build_event(&e, BuildStatus::Succeeded);
    late.build_id = image_build;
    assert!(matches!(
        on_smoke_build_event(&smoke_events, &late).await.unwrap(),
        EventOutcome::Ignored(_)
    ));
    // in progress: nothing
    assert!(matches!(
        on_smoke_build_event(
            &smoke_events,
            &smoke_event(&build_id, BuildStatus::InProgress)
        )
        .await
        .unwrap(),
        EventOutcome::Ignored(_)
    ));
    assert_eq!(exec(&w, &id).await.status, Status::VerifyingTest);
    // build-events never takes a smoke build for an image build (should a rule send it there)
    let build_events = function(&w, &profiles::BUILD_EVENTS);
    assert!(matches!(
        on_build_state(
            &build_events,
            &smoke_event(&build_id, BuildStatus::Succeeded)
        )
        .await
        .unwrap(),
        EventOutcome::Ignored(_)
    ));
    assert_eq!(exec(&w, &id).await.status, Status::VerifyingTest);
    // the smoke build's state change (deploy-events, the smoke projects' rule) decides
    let out = on_smoke_build_event(
        &smoke_events,
        &smoke_event(&build_id, BuildStatus::Succeeded),
    )
    .await
    .unwrap();
    assert!(matches!(out, EventOutcome::Applied(_)), "{out:?}");
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::AwaitingApproval);
    assert_eq!(w.notifier.count("Approve"), 1);
    let (_, notice) = w
        .notifier
        .sent()
        .into_iter()
        .find(|(_, n)| n.subject.contains("Approve"))
        .unwrap();
    assert!(
        notice
            .body
            .contains("Smoke test: smoke test hello-smoke passed"),
        "{}",
        notice.body
    );
    assert!(notice.body.contains("logEvent:smoke"), "{}", notice.body);
    assert!(notice
        .body
        .contains("Verified:   GET http://hello-test.internal/health"));
    // duplicated, and a contradicting late one: nothing twice
    for status in [BuildStatus::Succeeded, BuildStatus::Failed] {
        let out = on_smoke_build_event(&smoke_events, &smoke_event(&build_id, status))
            .await
            .unwrap();
        assert!(matches!(out, EventOutcome::Ignored(_)), "{out:?}");
    }
    assert_eq!(exec(&w, &id).await.status, Status::AwaitingApproval);
    assert_eq!(w.notifier.count("Approve"), 1);
    assert_eq!(
        w.builds
            .started()
            .iter()
            .filter(|r| r.project == "hello-smoke")
            .count(),
        1
    );
    // the ECS completion again: no second check, no second smoke build
    let dep = e.test.unwrap().deployment_id;
    on_deployment_state(
        &deploy_events,
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    assert_eq!(w.builds.started().len(), 2, "image build + one smoke build");
}

#[tokio::test]
async fn a_failed_smoke_build_fails_test_with_its_logs_and_asks_no_one() {
    let w = world(SMOKE).await;
    let smoke_events = function(&w, &profiles::DEPLOY_EVENTS);
    let id = completed(&w, &function(&w, &profiles::DEPLOY_EVENTS), 2).await;
    let build_id = smoke_build(&exec(&w, &id).await).unwrap();
    on_smoke_build_event(&smoke_events, &smoke_event(&build_id, BuildStatus::Failed))
        .await
        .unwrap();
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::TestFailed);
    let f = e.failure.as_ref().unwrap();
    assert!(
        f.reason.contains("smoke test hello-smoke FAILED"),
        "{}",
        f.reason
    );
    assert!(f.reason.contains("curl $TARGET_URL"), "{}", f.reason);
    assert_eq!(
        f.link.as_deref(),
        Some("https://console.aws.amazon.com/cloudwatch/home#logEvent:smoke")
    );
    assert!(e.approval.is_none());
    assert_eq!(w.notifier.count("Approve"), 0);
    // a failure notice was sent with the cause
    assert!(w
        .notifier
        .sent()
        .iter()
        .any(|(_, n)| n.body.contains("smoke test hello-smoke FAILED")));
}

#[tokio::test]
async fn a_handler_killed_between_start_build_and_the_write_is_resumed_without_a_second_build() {
    let w = world(SMOKE).await;
    // deploy-events stored the smoke request and died before StartBuild answered into the
    // table: its StartBuild happened (below, with the same token), the write did not
    let dying = w
        .services
        .clone()
        .with_capabilities(crate::app::Capabilities {
            start_smoke: false,
            ..profiles::DEPLOY_EVENTS.can
        });
    let id = completed(&w, &dying, 3).await;
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::VerifyingTest);
    let run = e.verify_test.as_ref().unwrap().smoke.clone().unwrap();
    assert_eq!(run.build_id, None);
    let request = BuildRequest {
        project: run.project.clone(),
        source_version: String::new(),
        environment: super::smoke::environment(&e, &run, Environment::Test),
        idempotency_token: run.token.clone(),
    };
    let orphan = w.builds.start_build(&request).await.unwrap();
    // the build is quick: it finished before it was linked; its event finds no execution
    w.builds.set_state(&orphan, "SUCCEEDED", None);
    let smoke_events = function(&w, &profiles::DEPLOY_EVENTS);
    assert!(matches!(
        on_smoke_build_event(&smoke_events, &smoke_event(&orphan, BuildStatus::Succeeded))
            .await
            .unwrap(),
        EventOutcome::Ignored(_)
    ));
    // the sweeper resumes: the same token answers the same build, which is recorded
    let sweeper = function(&w, &profiles::SWEEPER);
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(1));
    sweep(&sweeper, &SweepLimits::default()).await.unwrap();
    let e = exec(&w, &id).await;
    assert_eq!(smoke_build(&e).as_deref(), Some(orphan.as_str()));
    assert_eq!(
        w.builds
            .started()
            .iter()
            .filter(|r| r.project == "hello-smoke")
            .count(),
        1,
        "no second smoke build"
    );
    // its result was lost: the next resume reads the build and decides
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(1));
    sweep(&sweeper, &SweepLimits::default()).await.unwrap();
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::AwaitingApproval);
    assert_eq!(w.notifier.count("Approve"), 1);
}

#[tokio::test]
async fn a_smoke_build_that_never_reports_is_failed_by_the_sweeper_after_its_timeout() {
    let w = world(SMOKE).await;
    let id = completed(&w, &function(&w, &profiles::DEPLOY_EVENTS), 4).await;
    let build_id = smoke_build(&exec(&w, &id).await).unwrap();
    let sweeper = function(&w, &profiles::SWEEPER);
    // still running, before its timeout: left alone
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(1));
    sweep(&sweeper, &SweepLimits::default()).await.unwrap();
    assert_eq!(exec(&w, &id).await.status, Status::VerifyingTest);
    assert!(w.builds.stopped.lock().unwrap().is_empty());
    w.clock.advance(chrono::Duration::minutes(10));
    sweep(&sweeper, &SweepLimits::default()).await.unwrap();
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::TestFailed);
    // the build is stopped (it would run on until the project's own timeout), once
    assert_eq!(*w.builds.stopped.lock().unwrap(), vec![build_id.clone()]);
    sweep(&sweeper, &SweepLimits::default()).await.unwrap();
    assert_eq!(w.builds.stopped.lock().unwrap().len(), 1);
    let reason = &e.failure.as_ref().unwrap().reason;
    assert!(
        reason.contains(&format!(
            "(build {build_id}) did not report within 10 minutes"
        )),
        "{reason}"
    );
    assert_eq!(w.notifier.count("Approve"), 0);
    // its late event changes nothing
    let out = on_smoke_build_event(
        &function(&w, &profiles::DEPLOY_EVENTS),
        &smoke_event(&build_id, BuildStatus::Succeeded),
    )
    .await
    .unwrap();
    assert!(matches!(out, EventOutcome::Ignored(_)));
    // nor does the STOPPED event of the stop
    let out = on_smoke_build_event(
        &function(&w, &profiles::DEPLOY_EVENTS),
        &smoke_event(&build_id, BuildStatus::Stopped),
    )
    .await
    .unwrap();
    assert!(matches!(out, EventOutcome::Ignored(_)));
    assert_eq!(exec(&w, &id).await, e);
}

/// A StopBuild that fails (throttled, denied) changes nothing of the decided verification.
#[tokio::test]
async fn a_failed_stop_of_a_timed_out_smoke_build_is_only_logged() {
    let w = world(SMOKE).await;
    let id = completed(&w, &function(&w, &profiles::DEPLOY_EVENTS), 4).await;
    w.builds.faults.fail_always(
        "stop_build",
        crate::ports::ServiceError::Throttled("slow down".into()),
    );
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::minutes(11));
    sweep(&function(&w, &profiles::SWEEPER), &SweepLimits::default())
        .await
        .unwrap();
    assert_eq!(exec(&w, &id).await.status, Status::TestFailed);
    assert!(w.builds.stopped.lock().unwrap().is_empty());
}

#[tokio::test]
async fn without_a_url_the_smoke_test_starts_at_once_and_a_refused_start_fails_test() {
    let w = world(
        r#"
[verify.test]
smoke_project = "hello-smoke"
smoke_target_url = "https://hello-test.example.com/"
"#,
    )
    .await;
    let deploy_events = function(&w, &profiles::DEPLOY_EVENTS);
    let id = completed(&w, &deploy_events, 5).await;
    assert_eq!(w.probe.count(), 0, "no HTTP check");
    let e = exec(&w, &id).await;
    let started = w.builds.started();
    let smoke = started.iter().find(|r| r.project == "hello-smoke").unwrap();
    assert!(smoke.environment.contains(&(
        "TARGET_URL".into(),
        "https://hello-test.example.com/".into()
    )));
    assert!(smoke_build(&e).is_some());
    // a StartBuild CodeBuild refuses (no such project) fails test with the cause
    let id = built(&w, 6).await;
    let e = exec(&w, &id).await;
    w.builds.faults.fail_next(
        "start_build",
        crate::ports::ServiceError::NotFound("project hello-smoke".into()),
    );
    let dep = e.test.unwrap().deployment_id;
    on_deployment_state(
        &deploy_events,
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::TestFailed);
    let reason = &e.failure.as_ref().unwrap().reason;
    assert!(
        reason.contains("the smoke test hello-smoke could not be started"),
        "{reason}"
    );
}

#[tokio::test]
async fn the_smoke_build_samples_decode_and_decide() {
    let sample = |text: &str| {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        crate::domain::aws_events::decode_build_state(&v).unwrap()
    };
    let failed = sample(include_str!("../../../events/codebuild/smoke-failed.json"));
    let passed = sample(include_str!(
        "../../../events/codebuild/smoke-succeeded.json"
    ));
    // what a smoke build stopped after its timeout sends (its late event changes nothing)
    let stopped = sample(include_str!("../../../events/codebuild/smoke-stopped.json"));
    assert_eq!(stopped.status, BuildStatus::Stopped);
    for c in [&failed, &passed, &stopped] {
        assert_eq!(
            c.build_id,
            "shipgate-smoke-hello:3c1f9d2e-7a44-4e0b-9b1d-6f2a8c5e0d17"
        );
        assert_eq!(c.project, "shipgate-smoke-hello");
        assert!(c
            .logs_link
            .as_deref()
            .unwrap()
            .contains("/aws/codebuild/shipgate-smoke-hello"));
    }
    assert_eq!(passed.status, BuildStatus::Succeeded);
    assert_eq!(failed.status, BuildStatus::Failed);
    assert!(failed.reason.as_deref().unwrap().contains("curl -fsS"));
    // build-events decides with the failed sample (its build id made this execution's)
    let w = world(SMOKE).await;
    let id = completed(&w, &function(&w, &profiles::DEPLOY_EVENTS), 7).await;
    let mut change = failed.clone();
    change.build_id = smoke_build(&exec(&w, &id).await).unwrap();
    on_smoke_build_event(&function(&w, &profiles::DEPLOY_EVENTS), &change)
        .await
        .unwrap();
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::TestFailed);
    assert!(e
        .failure
        .as_ref()
        .unwrap()
        .reason
        .contains("Error while executing command: curl -fsS \"$TARGET_URL\""));
}
