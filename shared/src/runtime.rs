//! Cold-start wiring shared by every function's `main.rs`.

use crate::adapters::{dynamodb::DynamoStore, lambda_sdk_config, Config, Wiring};
use crate::app::Services;

/// Init tracing, load the SDK and typed configuration once (failing fast with a clear message),
/// let the function wire the adapters it uses, and make one cheap DynamoDB call so the TLS
/// handshake happens during init rather than on the first event.
pub async fn bootstrap(
    wire: impl FnOnce(&Wiring) -> Services,
) -> Result<Services, lambda_error::BootstrapError> {
    crate::telemetry::init();
    let config = Config::from_env().map_err(lambda_error::BootstrapError::Config)?;
    let sdk = lambda_sdk_config();
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table)
        .warm_up()
        .await;
    Ok(wire(&Wiring { sdk, config }))
}

pub mod lambda_error {
    /// Why a function could not start.
    #[derive(Debug, thiserror::Error)]
    pub enum BootstrapError {
        #[error("shipgate configuration: {0}")]
        Config(crate::adapters::ConfigError),
    }
}

/// Errors of the EventBridge-triggered functions. `Err` makes Lambda retry the event (and after
/// the retries, send it to the dead-letter queue); handled or deliberately ignored events are `Ok`.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The event is not what this function consumes; retrying cannot help (goes to the DLQ).
    #[error("invalid event: {0}")]
    Invalid(#[from] crate::domain::aws_events::EventDecodeError),
    #[error(transparent)]
    Failed(#[from] crate::app::AppError),
}

impl From<EventError> for lambda_runtime::Diagnostic {
    fn from(e: EventError) -> Self {
        let error_type = match &e {
            EventError::Invalid(_) => "InvalidEvent",
            EventError::Failed(a) if a.is_retryable() => "Retryable",
            EventError::Failed(_) => "Failed",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_string(),
            error_message: e.to_string(),
        }
    }
}

/// JSON answer of an event function.
pub fn outcome_json(outcome: &crate::app::events::EventOutcome) -> serde_json::Value {
    use crate::app::events::EventOutcome;
    match outcome {
        EventOutcome::Applied(e) => serde_json::json!({
            "status": "applied",
            "execution_id": e.id,
            "execution_status": e.status,
        }),
        EventOutcome::Ignored(reason) => {
            serde_json::json!({ "status": "ignored", "reason": reason })
        }
    }
}
