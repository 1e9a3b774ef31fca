//! The scheduled sweeper (EventBridge schedule, every 5 minutes by default).

use serde_json::Value;
use shared::app::sweeper::{sweep, SweepLimits};
use shared::app::Services;
use shared::runtime::EventError;

/// Any scheduled event (its content is not used) runs one bounded sweep; answers the report.
pub async fn handle(svc: &Services, _event: Value) -> Result<Value, EventError> {
    // one invocation: each pipeline definition is read at most once
    let svc = &svc.for_invocation();
    let report = sweep(svc, &SweepLimits::default()).await?;
    Ok(serde_json::to_value(report).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::fake_world::FakeWorld;

    #[tokio::test]
    async fn scheduled_event_runs_a_sweep() {
        let w = FakeWorld::with_pipeline().await;
        let event: Value =
            serde_json::from_str(include_str!("../../../events/scheduled/sweeper.json")).unwrap();
        let report = handle(&w.services, event).await.unwrap();
        assert_eq!(report["expired"], 0);
        assert_eq!(report["images_deleted"], 0);
        assert!(report["errors"].as_array().unwrap().is_empty());
    }

    #[tokio::test]
    async fn store_outage_is_an_error() {
        let w = FakeWorld::with_pipeline().await;
        w.store.faults.fail_always(
            "list_by_status",
            shared::ports::StoreError::Unavailable("503".into()),
        );
        let d: lambda_runtime::Diagnostic =
            handle(&w.services, Value::Null).await.unwrap_err().into();
        assert_eq!(d.error_type, "Retryable");
    }
}
