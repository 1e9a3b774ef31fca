//! ECS blue/green lifecycle hook and alarm events through the use cases and the fakes.

use super::alarms::on_alarm_state;
use super::bluegreen::on_lifecycle_hook;
use super::events::on_deployment_state;
use super::sweeper::{sweep, SweepLimits};
use super::test_support::*;
use crate::domain::alarm_events::decode_alarm_state;
use crate::domain::aws_events::DeploymentEventName;
use crate::domain::ecs_hook::{decode_lifecycle_hook, HookAnswer, HookStatus, LifecycleHook};
use crate::domain::verify::AlarmState;
use crate::domain::{Environment, Event, ExecutionId, Format, PipelineDefinition, Status, Verdict};
use crate::fake_world::FakeWorld;
use crate::fakes::SAMPLE_PIPELINE;
use crate::ports::{Clock, Deployer, ExecutionStore};

const GREEN: &str = r#"
[verify.prod]
test_listener_url = "http://hello-test-listener.internal:8080/health"
attempts = 4
interval_seconds = 1
timeout_seconds = 1
"#;

async fn world(verify: &str) -> FakeWorld {
    let w = FakeWorld::with_pipeline().await;
    let p = PipelineDefinition::parse(&format!("{SAMPLE_PIPELINE}\n{verify}"), Format::Toml)
        .expect("pipeline with verify");
    w.store.put_pipeline(&p, w.clock.now()).await.unwrap();
    w
}

fn hook(service: &str, revision: u64) -> LifecycleHook {
    let mut v: serde_json::Value = serde_json::from_str(include_str!(
        "../../../events/ecs/lifecycle-hook-post-test-traffic-shift.json"
    ))
    .unwrap();
    v["executionDetails"]["serviceArn"] =
        format!("arn:aws:ecs:us-east-1:123456789012:service/apps/{service}").into();
    v["executionDetails"]["targetServiceRevisionArn"] =
        format!("arn:aws:ecs:us-east-1:123456789012:service-revision/apps/{service}/{revision}")
            .into();
    decode_lifecycle_hook(&v).unwrap()
}

async fn approved(w: &FakeWorld, n: u8) -> ExecutionId {
    let id = awaiting(w, n).await;
    super::approvals::decide(
        &w.services,
        &id,
        Verdict::Approve,
        "ops",
        crate::domain::Channel::Cli,
        None,
    )
    .await
    .unwrap();
    assert_eq!(exec(w, &id).await.status, Status::DeployingProd);
    id
}

async fn ecs_says(w: &FakeWorld, id: &ExecutionId, name: DeploymentEventName) {
    let dep = exec(w, id).await.prod.unwrap().deployment_id;
    on_deployment_state(&w.services, &deploy_event(&dep, name))
        .await
        .unwrap();
}

async fn answer(w: &FakeWorld, h: &LifecycleHook) -> HookAnswer {
    on_lifecycle_hook(&w.services.for_invocation(), h)
        .await
        .unwrap()
}

/// A release through the hook (passed at once) and ECS's completion.
async fn released(w: &FakeWorld, n: u8) -> ExecutionId {
    let id = approved(w, n).await;
    let tag = exec(w, &id).await.image_tag();
    w.probe.answer_version(200, &tag);
    assert_eq!(
        answer(w, &hook("hello-prod", u64::from(n))).await.status,
        HookStatus::Succeeded
    );
    ecs_says(w, &id, DeploymentEventName::Completed).await;
    assert_eq!(exec(w, &id).await.status, Status::Succeeded);
    id
}

#[tokio::test]
async fn the_hook_answers_in_progress_while_attempts_remain_then_succeeded() {
    let w = world(GREEN).await;
    let id = approved(&w, 1).await;
    let tag = exec(&w, &id).await.image_tag();
    // the green revision is still starting: the wrong (blue) version answers
    w.probe.answer_version(200, "blueblueblue");
    let h = hook("hello-prod", 1);
    let a = answer(&w, &h).await;
    assert_eq!(a.status, HookStatus::InProgress);
    assert!(
        a.callback_delay.is_some_and(|d| (1..=2).contains(&d)),
        "{a:?}"
    );
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::VerifyingProd);
    let v = e.verify_prod.as_ref().unwrap();
    assert_eq!(v.green.as_deref(), Some(h.target_revision.as_str()));
    assert_eq!(v.attempts, 3, "bounded per invocation");
    assert_eq!(w.probe.count(), 3);
    assert!(w
        .probe
        .requests
        .lock()
        .unwrap()
        .iter()
        .all(|u| u == "http://hello-test-listener.internal:8080/health"));
    // nothing runs in production yet: no revision recorded for it
    assert!(
        super::releases::shown(&w.services, "hello", Environment::Prod)
            .await
            .unwrap()
            .is_none_or(|r| r.current().is_none())
    );

    // ECS calls back; the green revision answers now
    w.probe.answer_version(200, &tag);
    let a = answer(&w, &h).await;
    assert_eq!(a, HookAnswer::succeeded());
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::VerifyingProd, "ECS has not completed yet");
    assert_eq!(e.verify_prod.as_ref().unwrap().attempts, 4);
    // a repeated invocation answers the same and checks nothing again
    assert_eq!(answer(&w, &h).await, HookAnswer::succeeded());
    assert_eq!(w.probe.count(), 4);

    // ECS shifted production traffic and completed
    ecs_says(&w, &id, DeploymentEventName::Completed).await;
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::Succeeded, "{:?}", e.history);
    assert_eq!(w.probe.count(), 4, "no second check after completion");
    let shown = super::releases::shown(&w.services, "hello", Environment::Prod)
        .await
        .unwrap()
        .unwrap();
    let current = shown.current().unwrap();
    assert_eq!(current.image.digest, e.image.as_ref().unwrap().digest);
    let running = w.deployer.image_of(&FakeWorld::pipeline().prod).unwrap();
    assert!(running.ends_with(&current.image.digest));
    // the event again changes nothing
    ecs_says(&w, &id, DeploymentEventName::Completed).await;
    assert_eq!(exec(&w, &id).await.version, e.version);
}

#[tokio::test]
async fn a_failing_green_revision_is_failed_and_ecs_rolls_back_not_shipgate() {
    let w = world(GREEN).await;
    let good = released(&w, 1).await;
    let good_digest = exec(&w, &good).await.image.unwrap().digest;
    let prod = FakeWorld::pipeline().prod;
    let blue = w
        .deployer
        .service_state(&prod)
        .await
        .unwrap()
        .task_definition;

    let id = approved(&w, 2).await;
    w.probe.answer_version(503, "x");
    let h = hook("hello-prod", 2);
    assert_eq!(answer(&w, &h).await.status, HookStatus::InProgress);
    assert_eq!(answer(&w, &h).await, HookAnswer::failed());
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::ProdFailed);
    let reason = &e.failure.as_ref().unwrap().reason;
    assert!(
        reason.contains("green revision") && reason.contains("answered 503"),
        "{reason}"
    );
    assert_eq!(
        w.probe.count(),
        1 + 4,
        "one for the good release, four attempts"
    );
    // no rollback of shipgate's own: ECS rolls back
    let rollbacks = w
        .store
        .list_executions("hello", 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.trigger.is_rollback())
        .count();
    assert_eq!(rollbacks, 0);
    // repeated invocations answer FAILED again without checking
    assert_eq!(answer(&w, &h).await, HookAnswer::failed());
    assert_eq!(w.probe.count(), 5);
    // ECS rolls the service back to the blue revision and reports the deployment failed
    w.deployer
        .deploy_task_definition(&prod, &blue)
        .await
        .unwrap();
    ecs_says(&w, &id, DeploymentEventName::Failed).await;
    assert_eq!(exec(&w, &id).await.status, Status::ProdFailed);
    // status says what ECS runs: the previous release
    let shown = super::releases::shown(&w.services, "hello", Environment::Prod)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown.current().unwrap().image.digest, good_digest);
    assert!(w.deployer.image_of(&prod).unwrap().ends_with(&good_digest));
    // the sweeper owes nothing (no automatic rollback)
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(1));
    sweep(&w.services, &SweepLimits::default()).await.unwrap();
    assert_eq!(exec(&w, &id).await.status, Status::ProdFailed);
    assert!(exec(&w, &id).await.verify_prod.unwrap().rollback.is_none());
}

#[tokio::test]
async fn unknown_services_other_stages_and_unconfigured_pipelines_are_not_gated() {
    let w = world(GREEN).await;
    let id = approved(&w, 1).await;
    let before = exec(&w, &id).await;
    assert_eq!(
        answer(&w, &hook("someone-else", 1)).await,
        HookAnswer::succeeded()
    );
    let mut other_stage = hook("hello-prod", 1);
    other_stage.stage = crate::domain::ecs_hook::LifecycleStage::PostScaleUp;
    assert_eq!(answer(&w, &other_stage).await, HookAnswer::succeeded());
    assert_eq!(exec(&w, &id).await, before, "nothing changed");
    assert_eq!(w.probe.count(), 0);

    // a pipeline without test_listener_url: the hook does not check
    let plain = FakeWorld::with_pipeline().await;
    let id = approved(&plain, 3).await;
    assert_eq!(
        answer(&plain, &hook("hello-prod", 3)).await,
        HookAnswer::succeeded()
    );
    assert_eq!(exec(&plain, &id).await.status, Status::DeployingProd);
}

#[tokio::test]
async fn a_killed_invocation_is_continued_and_a_rollback_deployment_is_never_checked() {
    let w = world(GREEN).await;
    let id = approved(&w, 1).await;
    let tag = exec(&w, &id).await.image_tag();
    let h = hook("hello-prod", 1);
    // an invocation stored the start and one attempt, then died before answering
    let dep = exec(&w, &id).await.prod.unwrap().deployment_id;
    w.services
        .apply(
            &id,
            "shipgate",
            Event::GreenVerifyStarted {
                deployment_id: dep,
                target_revision: h.target_revision.clone(),
                bake_seconds: 0,
                alarms: vec![],
            },
        )
        .await
        .unwrap();
    let result = crate::domain::verify::CheckResult {
        url: "http://hello-test-listener.internal:8080/health".into(),
        at: w.clock.now(),
        elapsed_ms: 1,
        status: None,
        version_seen: None,
        version_expected: tag.clone(),
        passed: false,
        detail: "connection refused".into(),
    };
    w.services
        .apply(
            &id,
            "shipgate",
            Event::CheckAttempted {
                environment: Environment::Prod,
                attempt: 1,
                result,
            },
        )
        .await
        .unwrap();
    // ECS calls again (or retried the invocation): it goes on from attempt 2
    w.probe.answer_version(200, &tag);
    assert_eq!(answer(&w, &h).await, HookAnswer::succeeded());
    let v = exec(&w, &id).await.verify_prod.unwrap();
    assert_eq!((v.attempts, w.probe.count()), (2, 1));

    // a deployment ECS gave up on while the hook was under way ends PROD_FAILED
    let w = world(GREEN).await;
    let id = approved(&w, 2).await;
    w.probe.refuse();
    assert_eq!(
        answer(&w, &hook("hello-prod", 2)).await.status,
        HookStatus::InProgress
    );
    ecs_says(&w, &id, DeploymentEventName::Failed).await;
    assert_eq!(exec(&w, &id).await.status, Status::ProdFailed);
    assert_eq!(
        answer(&w, &hook("hello-prod", 2)).await,
        HookAnswer::failed()
    );

    // a rollback's deployment passes the hook unchecked
    let w = world(GREEN).await;
    released(&w, 3).await;
    released(&w, 4).await;
    let checks = w.probe.count();
    let rb = super::releases::rollback(&w.services, "hello", Environment::Prod, None, "ops")
        .await
        .unwrap();
    assert!(rb.trigger.is_rollback());
    assert_eq!(
        answer(&w, &hook("hello-prod", 99)).await,
        HookAnswer::succeeded()
    );
    assert_eq!(w.probe.count(), checks);
}

#[tokio::test]
async fn a_lost_completion_event_is_reconciled_from_ecs() {
    let w = world(GREEN).await;
    let id = approved(&w, 1).await;
    let tag = exec(&w, &id).await.image_tag();
    w.probe.answer_version(200, &tag);
    assert_eq!(
        answer(&w, &hook("hello-prod", 1)).await,
        HookAnswer::succeeded()
    );
    let dep = exec(&w, &id).await.prod.unwrap().deployment_id;
    w.deployer
        .set_deployment_state(&dep, crate::ports::DeploymentObservation::Completed);
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(1));
    sweep(&w.services, &SweepLimits::default()).await.unwrap();
    assert_eq!(exec(&w, &id).await.status, Status::Succeeded);
}

const BAKE: &str = r#"
[verify.prod]
bake_minutes = 30
alarms = ["shipgate-hello-5xx"]
"#;

fn alarm_event(name: &str, state: &str) -> crate::domain::alarm_events::AlarmStateChange {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../../events/cloudwatch/alarm.json")).unwrap();
    v["detail"]["alarmName"] = name.into();
    v["detail"]["state"]["value"] = state.into();
    decode_alarm_state(&v).unwrap()
}

#[tokio::test]
async fn an_alarm_event_rolls_a_baking_release_back_exactly_once() {
    let w = world(BAKE).await;
    w.alarms.set("shipgate-hello-5xx", AlarmState::Ok);
    // a good release first (its bake passes)
    let good = approved(&w, 1).await;
    ecs_says(&w, &good, DeploymentEventName::Completed).await;
    assert_eq!(exec(&w, &good).await.status, Status::BakingProd);
    w.clock.advance(chrono::Duration::minutes(31));
    sweep(&w.services, &SweepLimits::default()).await.unwrap();
    assert_eq!(exec(&w, &good).await.status, Status::Succeeded);
    let good_digest = exec(&w, &good).await.image.unwrap().digest;

    let id = approved(&w, 2).await;
    ecs_says(&w, &id, DeploymentEventName::Completed).await;
    assert_eq!(exec(&w, &id).await.status, Status::BakingProd);
    // other alarms and OK states change nothing
    let out = on_alarm_state(&w.services, &alarm_event("unrelated", "ALARM"))
        .await
        .unwrap();
    assert!(out.ignored.is_some());
    let out = on_alarm_state(&w.services, &alarm_event("shipgate-hello-5xx", "OK"))
        .await
        .unwrap();
    assert!(out.ignored.is_some());
    assert_eq!(exec(&w, &id).await.status, Status::BakingProd);

    // a late ALARM event (retried by EventBridge) while the alarm is OK again: nothing
    let out = on_alarm_state(&w.services, &alarm_event("shipgate-hello-5xx", "ALARM"))
        .await
        .unwrap();
    assert!(
        out.ignored
            .as_deref()
            .unwrap()
            .contains("no longer in ALARM"),
        "{out:?}"
    );
    assert_eq!(exec(&w, &id).await.status, Status::BakingProd);

    // the watched alarm fires: at once, not at the next bake step
    w.alarms.set("shipgate-hello-5xx", AlarmState::Alarm);
    let out = on_alarm_state(&w.services, &alarm_event("shipgate-hello-5xx", "ALARM"))
        .await
        .unwrap();
    assert_eq!(out.failed, vec![id.clone()]);
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::ProdFailed);
    assert!(e.failure.as_ref().unwrap().reason.contains("went to ALARM"));
    let rb = e
        .verify_prod
        .as_ref()
        .unwrap()
        .rollback
        .clone()
        .expect("rollback started");
    // duplicated and late events: nothing twice
    for _ in 0..3 {
        let out = on_alarm_state(&w.services, &alarm_event("shipgate-hello-5xx", "ALARM"))
            .await
            .unwrap();
        assert!(out.failed.is_empty());
    }
    // the rollback completes; a late alarm event for the rolled-back release changes nothing
    let dep = exec(&w, &rb).await.prod.unwrap().deployment_id;
    on_deployment_state(
        &w.services,
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    assert_eq!(exec(&w, &id).await.status, Status::RolledBack);
    let out = on_alarm_state(&w.services, &alarm_event("shipgate-hello-5xx", "ALARM"))
        .await
        .unwrap();
    assert!(out.failed.is_empty());
    let rollbacks = w
        .store
        .list_executions("hello", 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.trigger.is_rollback())
        .count();
    assert_eq!(rollbacks, 1);
    assert_eq!(
        exec(&w, &good).await.status,
        Status::Succeeded,
        "a finished release is untouched"
    );
    // status says what ECS runs
    let prod = FakeWorld::pipeline().prod;
    assert!(w.deployer.image_of(&prod).unwrap().ends_with(&good_digest));
    let shown = super::releases::shown(&w.services, "hello", Environment::Prod)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown.current().unwrap().image.digest, good_digest);
}

#[tokio::test]
async fn an_ecs_completion_before_the_green_revision_passed_is_verified_and_rolled_back() {
    let w = world(GREEN).await;
    let first = released(&w, 1).await;
    let good = exec(&w, &first).await.image.unwrap().digest;
    let id = approved(&w, 2).await;
    // the green revision answers the wrong version: the hook keeps answering IN_PROGRESS ...
    w.probe.answer_version(200, "blueblueblue");
    assert_eq!(
        answer(&w, &hook("hello-prod", 2)).await.status,
        HookStatus::InProgress
    );
    // ... and ECS completes anyway (a hook that stopped gating: its timeout action continued)
    ecs_says(&w, &id, DeploymentEventName::Completed).await;
    let e = exec(&w, &id).await;
    // production traffic is on a revision that never passed: checked now (test listener URL,
    // the pipeline has no other), failed, rolled back automatically by shipgate
    assert_eq!(e.status, Status::ProdFailed, "{:?}", e.history);
    assert!(e.verify_prod.as_ref().unwrap().green.is_none());
    let rollback = e
        .verify_prod
        .as_ref()
        .unwrap()
        .rollback
        .clone()
        .expect("automatic rollback started");
    let dep = exec(&w, &rollback).await.prod.unwrap().deployment_id;
    on_deployment_state(
        &w.services,
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    assert_eq!(exec(&w, &id).await.status, Status::RolledBack);
    let p = FakeWorld::pipeline();
    let running = w.deployer.image_of(&p.prod).unwrap();
    assert!(
        running.ends_with(&good),
        "prod runs {running}, expected {good}"
    );
}
