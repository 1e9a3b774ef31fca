//! CodeBuild "Build State Change" (EventBridge).

use serde_json::Value;
use shared::app::events::on_build_state;
use shared::app::Services;
use shared::domain::aws_events::decode_build_state;
use shared::runtime::{outcome_json, EventError};

pub async fn handle(svc: &Services, event: Value) -> Result<Value, EventError> {
    // one invocation: each pipeline definition is read at most once
    let svc = &svc.for_invocation();
    let change = decode_build_state(&event)?;
    let outcome = on_build_state(svc, &change).await?;
    Ok(outcome_json(&outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::fake_world::FakeWorld;

    #[tokio::test]
    async fn unknown_builds_are_ignored_and_bad_events_are_invalid() {
        let w = FakeWorld::with_pipeline().await;
        let sample: Value =
            serde_json::from_str(include_str!("../../../events/codebuild/succeeded.json")).unwrap();
        let out = handle(&w.services, sample).await.unwrap();
        assert_eq!(out["status"], "ignored");
        let err = handle(&w.services, serde_json::json!({"detail-type": "nope"}))
            .await
            .unwrap_err();
        let d: lambda_runtime::Diagnostic = err.into();
        assert_eq!(d.error_type, "InvalidEvent");
        let wrong: Value =
            serde_json::from_str(include_str!("../../../events/ecs/completed.json")).unwrap();
        assert!(matches!(
            handle(&w.services, wrong).await,
            Err(EventError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn store_outage_is_retryable() {
        let w = FakeWorld::with_pipeline().await;
        w.store.faults.fail_next(
            "find_by_build",
            shared::ports::StoreError::Unavailable("503".into()),
        );
        let sample: Value =
            serde_json::from_str(include_str!("../../../events/codebuild/failed.json")).unwrap();
        let d: lambda_runtime::Diagnostic = handle(&w.services, sample).await.unwrap_err().into();
        assert_eq!(d.error_type, "Retryable");
    }
}
