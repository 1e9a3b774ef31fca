//! Use cases, written against the ports only; [`engine`] applies changes and performs effects.
//!
//! Every state change goes through [`Services::apply`]: read, decide with the pure state machine,
//! conditional write on `(status, version)`; a lost race re-reads and re-decides. Only the writer
//! that won performs the transition's effects ([`Services::perform`]), so a repeated or concurrent
//! event never causes a second build, deploy or email.

pub mod alarms;
pub mod approvals;
pub mod bluegreen;
pub mod control;
pub mod engine;
pub mod events;
pub mod feedback;
pub mod metrics;
pub mod notices;
pub mod releases;
pub mod smoke;
pub mod sources;
pub mod status_page;
pub mod sweeper;
pub mod verification;

#[cfg(test)]
mod approval_key_tests;
#[cfg(test)]
mod approval_policy_tests;
#[cfg(test)]
mod bluegreen_tests;
#[cfg(test)]
mod build_output_tests;
#[cfg(test)]
mod feedback_tests;
#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod personal_links_tests;
#[cfg(test)]
mod prod_smoke_tests;
#[cfg(test)]
mod release_tests;
#[cfg(test)]
mod smoke_tests;
#[cfg(test)]
mod sweeper_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod verification_tests;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Duration;
use tokio::sync::Mutex;

use crate::domain::ValidationErrors;
use crate::ports::{SecretSource, SecretValue, ServiceError, StoreError};

/// How often a conditional write is retried after losing a race.
pub(crate) const MAX_CONFLICT_RETRIES: usize = 8;
/// A state that has not changed for this long may have lost its worker (a Lambda died between
/// the write and the effect); a redelivered event or the sweeper then resumes its effects.
pub const RESUME_AFTER: Duration = Duration::seconds(120);
/// GitHub redelivers for up to 3 days; webhook idempotency keys live longer than that.
pub const DELIVERY_KEY_TTL: Duration = Duration::days(8);
/// The actor recorded for changes made by shipgate itself.
pub const SYSTEM_ACTOR: &str = "shipgate";

/// Configuration every function reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Base of approval links (`${public_url}/approvals/{token}`).
    pub public_url: String,
    /// Secrets Manager id of the GitHub webhook secret.
    pub webhook_secret_id: String,
    /// Secrets Manager id of the approval signing key.
    pub signing_key_id: String,
}

/// Errors of the use cases.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("AWS call failed: {0}")]
    Service(#[from] ServiceError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Validation(#[from] ValidationErrors),
    /// The execution is not in a state where this is possible.
    #[error("{0}")]
    Conflict(String),
    /// The approval window closed.
    #[error("{0}")]
    Gone(String),
    #[error("configuration: {0}")]
    Config(String),
}

impl AppError {
    /// Throttling, timeouts and 5xx: the caller (EventBridge, API Gateway client) should retry.
    pub fn is_retryable(&self) -> bool {
        match self {
            AppError::Store(e) => e.is_retryable(),
            AppError::Service(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Store(StoreError::Conflict(_)) | AppError::Conflict(_) => "conflict",
            AppError::Store(StoreError::Rejected(_)) => "invalid_argument",
            AppError::Store(_) | AppError::Service(_) => "unavailable",
            AppError::NotFound(_) => "not_found",
            AppError::Invalid(_) => "invalid_argument",
            AppError::Validation(_) => "invalid_pipeline",
            AppError::Gone(_) => "gone",
            AppError::Config(_) => "configuration",
        }
    }
}

/// Secrets read once per cold start and cached (a failed read is not cached).
pub struct CachedSecrets {
    source: Arc<dyn SecretSource>,
    cache: Mutex<HashMap<String, SecretValue>>,
}

impl CachedSecrets {
    pub fn new(source: Arc<dyn SecretSource>) -> CachedSecrets {
        CachedSecrets {
            source,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn get(&self, id: &str) -> Result<SecretValue, ServiceError> {
        let mut cache = self.cache.lock().await;
        if let Some(v) = cache.get(id) {
            return Ok(v.clone());
        }
        let v = self.source.secret(id).await?;
        cache.insert(id.to_string(), v.clone());
        Ok(v)
    }

    /// Read `id` again next time (a token the service no longer accepts may have been rotated).
    pub async fn forget(&self, id: &str) {
        self.cache.lock().await.remove(id);
    }
}

pub use engine::{Applied, Capabilities, Services};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_world::FakeWorld;

    #[tokio::test]
    async fn secrets_are_read_once() {
        let w = FakeWorld::new();
        for _ in 0..5 {
            let v = w
                .services
                .secrets
                .get(crate::fakes::SIGNING_KEY_ID)
                .await
                .unwrap();
            assert_eq!(v.expose(), crate::fakes::SIGNING_KEY);
        }
        assert_eq!(w.secrets.reads(), 1);
    }

    #[tokio::test]
    async fn failed_secret_reads_are_not_cached() {
        let w = FakeWorld::new();
        w.secrets
            .faults
            .fail_next("secret", ServiceError::Throttled("slow down".into()));
        assert!(w
            .services
            .secrets
            .get(crate::fakes::SIGNING_KEY_ID)
            .await
            .is_err());
        assert!(w
            .services
            .secrets
            .get(crate::fakes::SIGNING_KEY_ID)
            .await
            .is_ok());
    }

    #[test]
    fn error_codes_and_retryability() {
        assert!(AppError::Service(ServiceError::Throttled("x".into())).is_retryable());
        assert!(!AppError::Invalid("x".into()).is_retryable());
        assert_eq!(AppError::Gone("x".into()).code(), "gone");
        assert_eq!(AppError::NotFound("x".into()).code(), "not_found");
    }
}
