//! ECS "Deployment State Change" (EventBridge).

use serde_json::Value;
use shared::app::events::on_deployment_state;
use shared::app::Services;
use shared::domain::aws_events::decode_deployment_state;
use shared::runtime::{outcome_json, EventError};

pub async fn handle(svc: &Services, event: Value) -> Result<Value, EventError> {
    // one invocation: each pipeline definition is read at most once
    let svc = &svc.for_invocation();
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
        let wrong: Value =
            serde_json::from_str(include_str!("../../../events/codebuild/succeeded.json")).unwrap();
        assert!(matches!(
            handle(&w.services, wrong).await,
            Err(EventError::Invalid(_))
        ));
    }
}
