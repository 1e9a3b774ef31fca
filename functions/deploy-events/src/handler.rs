//! What deploy-events receives, told apart by shape: ECS "Deployment State Change"
//! (EventBridge), "CloudWatch Alarm State Change" (EventBridge; bakes it watches), "CodeBuild
//! Build State Change" of the smoke test projects (EventBridge; the smoke tests it starts),
//! "Scheduled Event" (the sweeper's schedule: production verifications to resume), and ECS
//! blue/green lifecycle hook invocations (ECS invokes the function with its hook role).

use serde_json::Value;
use shared::app::alarms::on_alarm_state;
use shared::app::bluegreen::{answer_error, on_lifecycle_hook};
use shared::app::events::on_deployment_state;
use shared::app::smoke::on_smoke_build_event;
use shared::app::sweeper::{resume_production, SweepLimits};
use shared::app::Services;
use shared::domain::alarm_events::{decode_alarm_state, is_alarm_event};
use shared::domain::aws_events::{
    decode_build_state, decode_deployment_state, CODEBUILD_DETAIL_TYPE,
};
use shared::domain::ecs_hook::{decode_lifecycle_hook, is_lifecycle_hook};
use shared::runtime::{outcome_json, EventError};

/// The detail-type of EventBridge schedule events.
const SCHEDULED_DETAIL_TYPE: &str = "Scheduled Event";

pub async fn handle(svc: &Services, event: Value) -> Result<Value, EventError> {
    // one invocation: each pipeline definition is read at most once
    let svc = &svc.for_invocation();
    if is_lifecycle_hook(&event) {
        let hook = decode_lifecycle_hook(&event)?;
        let answer = match on_lifecycle_hook(svc, &hook).await {
            Ok(a) => a,
            Err(e) => answer_error(e)?,
        };
        tracing::info!(hook_status = ?answer.status, callback_delay = ?answer.callback_delay, "lifecycle hook answered");
        return Ok(serde_json::to_value(answer).unwrap_or_default());
    }
    if is_alarm_event(&event) {
        let change = decode_alarm_state(&event)?;
        return Ok(on_alarm_state(svc, &change).await?.to_json());
    }
    match event.get("detail-type").and_then(Value::as_str) {
        Some(CODEBUILD_DETAIL_TYPE) => {
            let change = decode_build_state(&event)?;
            return Ok(outcome_json(&on_smoke_build_event(svc, &change).await?));
        }
        Some(SCHEDULED_DETAIL_TYPE)
            if event.get("source").and_then(Value::as_str) == Some("aws.events") =>
        {
            let report = resume_production(svc, &SweepLimits::default()).await?;
            return Ok(serde_json::to_value(report).unwrap_or(Value::Null));
        }
        _ => {}
    }
    let change = decode_deployment_state(&event)?;
    let outcome = on_deployment_state(svc, &change).await?;
    Ok(outcome_json(&outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::fake_world::FakeWorld;

    #[tokio::test]
    async fn unknown_deployments_are_ignored_and_bad_events_are_invalid() {
        let w = FakeWorld::with_pipeline().await;
        for file in [
            include_str!("../../../events/ecs/completed.json"),
            include_str!("../../../events/ecs/failed.json"),
            include_str!("../../../events/ecs/in-progress.json"),
        ] {
            let out = handle(&w.services, serde_json::from_str(file).unwrap())
                .await
                .unwrap();
            assert_eq!(out["status"], "ignored");
        }
        // a lifecycle hook for a service shipgate does not deploy is not gated; an alarm no
        // bake watches changes nothing; a malformed hook payload is invalid
        let hook: Value = serde_json::from_str(include_str!(
            "../../../events/ecs/lifecycle-hook-post-test-traffic-shift.json"
        ))
        .unwrap();
        let out = handle(&w.services, hook.clone()).await.unwrap();
        assert_eq!(out, serde_json::json!({"hookStatus": "SUCCEEDED"}));
        let alarm: Value =
            serde_json::from_str(include_str!("../../../events/cloudwatch/alarm.json")).unwrap();
        assert_eq!(
            handle(&w.services, alarm).await.unwrap()["status"],
            "ignored"
        );
        let mut bad = hook;
        bad["executionDetails"]["serviceArn"] = 42.into();
        assert!(matches!(
            handle(&w.services, bad).await,
            Err(EventError::Invalid(_))
        ));
        // a build state change of no smoke test (an image build's event, should a rule send
        // one here) changes nothing; a malformed one is invalid
        let build: Value =
            serde_json::from_str(include_str!("../../../events/codebuild/succeeded.json")).unwrap();
        assert_eq!(
            handle(&w.services, build.clone()).await.unwrap()["status"],
            "ignored"
        );
        let mut bad = build;
        bad["detail"]["build-id"] = serde_json::json!([1]);
        assert!(matches!(
            handle(&w.services, bad).await,
            Err(EventError::Invalid(_))
        ));
        // the schedule: nothing to resume
        let tick: Value =
            serde_json::from_str(include_str!("../../../events/scheduled/sweeper.json")).unwrap();
        let report = handle(&w.services, tick).await.unwrap();
        assert_eq!(report["checked"], 0);
        assert_eq!(report["resumed"], 0);
        let wrong: Value =
            serde_json::from_str(include_str!("../../../events/codecommit/updated.json")).unwrap();
        assert!(matches!(
            handle(&w.services, wrong).await,
            Err(EventError::Invalid(_))
        ));
    }
}
