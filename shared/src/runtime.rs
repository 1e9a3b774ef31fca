//! Cold-start wiring shared by every function's `main.rs`.

use crate::adapters::lambda_sdk_config;
use crate::app::Services;
use crate::wiring::{Config, FunctionProfile, Wiring};

/// Init tracing, load the SDK and typed configuration once (failing fast with a clear message),
/// wire the ports of the function's profile `P`, and make one cheap DynamoDB call so the TLS
/// handshake happens during init rather than on the first event.
///
/// Only DynamoDB's client is built here; the other ports' clients are built on their first use,
/// once per cold start (`adapters::lazy`), so `wire_us` is the cost of wiring, not of clients the
/// next events may never use.
///
/// Logs one `cold start` line with the time of each step in microseconds (`telemetry_us`,
/// `config_us`, `sdk_us`, `warm_up_us` — the one init-time AWS round trip, with the TLS set-up
/// of the first connection — and `wire_us`), so Init Duration can be split without a profiler
/// (bench/README.md "Init against the physical limit").
pub async fn bootstrap<P: FunctionProfile>() -> Result<Services, lambda_error::BootstrapError> {
    let mut phases = Phases::start();
    crate::telemetry::init();
    let telemetry_us = phases.lap();
    let config = Config::from_env().map_err(lambda_error::BootstrapError::Config)?;
    let config_us = phases.lap();
    let wiring = Wiring {
        sdk: lambda_sdk_config(),
        config,
    };
    let store = wiring.dynamodb();
    let sdk_us = phases.lap();
    store.warm_up().await;
    let warm_up_us = phases.lap();
    let services = wiring.services_with::<P>(store);
    let wire_us = phases.lap();
    tracing::info!(
        function = P::PROFILE.function,
        telemetry_us,
        config_us,
        sdk_us,
        warm_up_us,
        wire_us,
        "cold start"
    );
    Ok(services)
}

/// Microseconds between the steps of a cold start.
struct Phases(std::time::Instant);

impl Phases {
    fn start() -> Self {
        Phases(std::time::Instant::now())
    }

    fn lap(&mut self) -> u64 {
        let now = std::time::Instant::now();
        let us = now.duration_since(self.0).as_micros() as u64;
        self.0 = now;
        us
    }
}

pub mod lambda_error {
    /// Why a function could not start.
    #[derive(Debug, thiserror::Error)]
    pub enum BootstrapError {
        #[error("shipgate configuration: {0}")]
        Config(crate::wiring::ConfigError),
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
