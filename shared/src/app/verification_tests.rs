//! Verified promotion through the use cases and the fakes: a verified test deployment asks
//! for approval showing the check, a wrong version fails test without asking, a check a dead
//! handler left is resumed once, an alarm during the bake rolls production back automatically.

use super::events::on_deployment_state;
use super::sweeper::{sweep, SweepLimits};
use super::test_support::*;
use crate::domain::aws_events::DeploymentEventName;
use crate::domain::verify::AlarmState;
use crate::domain::{Environment, Format, PipelineDefinition, Status};
use crate::fake_world::FakeWorld;
use crate::fakes::SAMPLE_PIPELINE;
use crate::ports::{Clock, ExecutionStore};

async fn world(verify: &str) -> FakeWorld {
    let w = FakeWorld::with_pipeline().await;
    let p = PipelineDefinition::parse(&format!("{SAMPLE_PIPELINE}\n{verify}"), Format::Toml)
        .expect("pipeline with verify");
    w.store.put_pipeline(&p, w.clock.now()).await.unwrap();
    w
}

const TEST_VERIFY: &str = r#"
[verify.test]
url = "http://hello-test.internal/health"
attempts = 2
interval_seconds = 1
timeout_seconds = 2
"#;

async fn complete_test(w: &FakeWorld, id: &crate::domain::ExecutionId) {
    let dep = exec(w, id).await.test.unwrap().deployment_id;
    on_deployment_state(
        &w.services,
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_verified_test_deployment_asks_for_approval_showing_the_check() {
    let w = world(TEST_VERIFY).await;
    let id = built(&w, 1).await;
    let tag = exec(&w, &id).await.image_tag();
    w.probe.answer_version(200, &tag);
    complete_test(&w, &id).await;
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::AwaitingApproval);
    assert_eq!(w.probe.count(), 1);
    let v = e.verify_test.as_ref().unwrap();
    assert_eq!(v.attempts, 1);
    assert_eq!(
        v.last.as_ref().unwrap().version_seen.as_deref(),
        Some(tag.as_str())
    );
    let history: Vec<_> = e.history.iter().map(|h| h.to).collect();
    assert!(history.contains(&Status::VerifyingTest), "{history:?}");
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
            .contains("Verified:   GET http://hello-test.internal/health"),
        "{}",
        notice.body
    );
    assert!(
        notice
            .body
            .contains(&format!("Answer:     200 with version {tag}")),
        "{}",
        notice.body
    );
    // the real link still comes first
    assert!(notice.body.find("/approvals/").unwrap() < notice.body.find("Verified:").unwrap());
    // the ECS event again changes nothing and checks nothing again
    complete_test(&w, &id).await;
    assert_eq!(w.probe.count(), 1);
    assert_eq!(w.notifier.count("Approve"), 1);
}

#[tokio::test]
async fn a_wrong_version_fails_test_with_the_cause_and_no_approval_request() {
    let w = world(TEST_VERIFY).await;
    let id = built(&w, 2).await;
    w.probe.answer_version(200, "ffffffffffff");
    complete_test(&w, &id).await;
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::TestFailed);
    assert_eq!(w.probe.count(), 2, "both attempts");
    let reason = &e.failure.as_ref().unwrap().reason;
    assert!(reason.contains("version seen ffffffffffff"), "{reason}");
    assert!(
        reason.contains(&format!("expected {}", e.commit.sha)),
        "{reason}"
    );
    assert_eq!(w.notifier.count("Approve"), 0, "no approval request");
    assert!(e.approval.is_none());
    // a failure notice names the cause
    assert!(w
        .notifier
        .sent()
        .iter()
        .any(|(_, n)| n.body.contains("ffffffffffff")));
}

#[tokio::test]
async fn a_service_that_is_down_fails_with_its_status_and_body() {
    let w = world(TEST_VERIFY).await;
    let id = built(&w, 3).await;
    w.probe.answer_version(503, "x");
    complete_test(&w, &id).await;
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::TestFailed);
    let reason = &e.failure.as_ref().unwrap().reason;
    assert!(
        reason.contains("answered 503") && reason.contains("expected status 200"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_check_a_dead_handler_left_is_resumed_once_by_the_sweeper() {
    let w = world(TEST_VERIFY).await;
    let id = built(&w, 4).await;
    let tag = exec(&w, &id).await.image_tag();
    w.probe.answer_version(200, &tag);
    // the handler stored VERIFYING_TEST and died before checking (no Verify capability here
    // stands in for the kill: the effect is not performed and stays owed)
    let dying = w.services.clone().with_capabilities(super::Capabilities {
        verify: false,
        ..super::Capabilities::ALL
    });
    let dep = exec(&w, &id).await.test.unwrap().deployment_id;
    on_deployment_state(&dying, &deploy_event(&dep, DeploymentEventName::Completed))
        .await
        .unwrap();
    assert_eq!(exec(&w, &id).await.status, Status::VerifyingTest);
    assert_eq!(w.probe.count(), 0);
    // too early: the sweeper leaves work that may still be under way
    sweep(&w.services, &SweepLimits::default()).await.unwrap();
    assert_eq!(exec(&w, &id).await.status, Status::VerifyingTest);
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(1));
    let report = sweep(&w.services, &SweepLimits::default()).await.unwrap();
    assert!(report.resumed >= 1, "{report:?}");
    assert_eq!(exec(&w, &id).await.status, Status::AwaitingApproval);
    assert_eq!(w.probe.count(), 1);
    assert_eq!(w.notifier.count("Approve"), 1);
    // once more: nothing twice
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(1));
    sweep(&w.services, &SweepLimits::default()).await.unwrap();
    assert_eq!(w.probe.count(), 1);
    assert_eq!(w.notifier.count("Approve"), 1);
}

const PROD_BAKE: &str = r#"
[verify.prod]
bake_seconds = 1
alarms = ["shipgate-hello-5xx"]
"#;

#[tokio::test]
async fn production_succeeds_only_after_its_bake_and_an_alarm_rolls_it_back_automatically() {
    let w = world(PROD_BAKE).await;
    w.alarms.set("shipgate-hello-5xx", AlarmState::Ok);
    let first = approve_and_complete_prod(&w, 5).await;
    // the bake is not over on the (manual) clock: still baking, not SUCCEEDED
    assert_eq!(exec(&w, &first).await.status, Status::BakingProd);
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(1));
    sweep(&w.services, &SweepLimits::default()).await.unwrap();
    assert_eq!(exec(&w, &first).await.status, Status::Succeeded);
    let good = exec(&w, &first).await.image.unwrap().digest;

    // the next release: its alarm goes off during the bake
    w.alarms.set("shipgate-hello-5xx", AlarmState::Alarm);
    let second = approve_and_complete_prod(&w, 6).await;
    let e = exec(&w, &second).await;
    assert_eq!(e.status, Status::ProdFailed, "{:?}", e.history);
    assert!(e
        .failure
        .as_ref()
        .unwrap()
        .reason
        .contains("alarm shipgate-hello-5xx is in ALARM"));
    let rollback = e
        .verify_prod
        .as_ref()
        .unwrap()
        .rollback
        .clone()
        .expect("rollback started");
    let rb = exec(&w, &rollback).await;
    assert!(rb.trigger.is_rollback());
    // the rollback's deployment completes: prod runs the previous release, the failed one is
    // ROLLED_BACK with its cause
    let dep = rb
        .prod
        .as_ref()
        .expect("rollback deployment started")
        .deployment_id
        .clone();
    on_deployment_state(
        &w.services,
        &deploy_event(&dep, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
    assert_eq!(exec(&w, &rollback).await.status, Status::Succeeded);
    let e = exec(&w, &second).await;
    assert_eq!(e.status, Status::RolledBack);
    assert!(e.failure.as_ref().unwrap().reason.contains("ALARM"));
    let p = FakeWorld::pipeline();
    let running = w.deployer.image_of(&p.prod).unwrap();
    assert!(
        running.ends_with(&good),
        "prod runs {running}, expected {good}"
    );
    let shown = super::releases::shown(&w.services, "hello", Environment::Prod)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown.current().unwrap().image.digest, good);
    // nothing rolls back twice
    w.clock
        .advance(super::RESUME_AFTER + chrono::Duration::seconds(1));
    sweep(&w.services, &SweepLimits::default()).await.unwrap();
    let rollbacks = w
        .store
        .list_executions("hello", 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.trigger.is_rollback())
        .count();
    assert_eq!(rollbacks, 1);
}
