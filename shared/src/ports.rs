//! The small async traits the use cases need. Signatures use domain types only; AWS SDK types
//! stay in [`crate::adapters`].

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{
    Environment, Execution, ExecutionId, PipelineDefinition, ServiceTarget, Source, Status,
};

/// Errors of the execution store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: the item changed since it was read. Carries the current item.
    #[error("conflict: execution {} is now {} (version {})", .0.id, .0.status, .0.version)]
    Conflict(Box<Execution>),
    /// A pipeline was changed concurrently.
    #[error("pipeline {0} was changed concurrently; read it again")]
    PipelineConflict(String),
    /// The item the write expected is not there.
    #[error("not found: {0}")]
    NotFound(String),
    /// Throttling, timeouts, 5xx: safe to retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store refused the request itself (DynamoDB `ValidationException`: item too large,
    /// key too long): permanent, retrying the same request can never succeed.
    #[error("store rejected the request: {0}")]
    Rejected(String),
    /// An item could not be decoded (should never happen; needs a person).
    #[error("corrupt item {key}: {message}")]
    Corrupt { key: String, message: String },
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Errors of the other AWS-facing ports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error("throttled: {0}")]
    Throttled(String),
    /// Timeouts, 5xx, connection failures.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// Validation, access denied, bad configuration: retrying will not help.
    #[error("rejected: {0}")]
    Rejected(String),
}

impl ServiceError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ServiceError::Throttled(_) | ServiceError::Unavailable(_)
        )
    }
}

/// A key that may be claimed once (webhook deliveries, EventBridge event ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    /// When the claim may be forgotten (DynamoDB TTL).
    pub expires_at: DateTime<Utc>,
}

/// Result of creating an execution under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Created,
    /// The key was claimed before by this execution.
    Duplicate(ExecutionId),
}

/// Result of claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Claimed,
    /// Claimed before; carries the value stored with the first claim.
    Existing(String),
}

/// A stored pipeline definition (one version of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPipeline {
    pub definition: PipelineDefinition,
    pub version: u64,
    /// When this version was applied (items written before `applied_by` existed call it
    /// `updated_at`).
    #[serde(alias = "updated_at")]
    pub applied_at: DateTime<Utc>,
    /// Who applied it: the actor the control command carried (absent for versions applied before
    /// shipgate recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_by: Option<String>,
}

/// Who applies pipelines that no operator applied (the sandbox's own, test set-up).
pub const SYSTEM_APPLIER: &str = "shipgate";

/// What `put_pipeline` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineWrite {
    pub version: u64,
    /// The definition it replaced (None when created).
    pub previous: Option<PipelineDefinition>,
}

pub use crate::domain::{DeployedRevision, EnvironmentRevisions};

/// A stored value with its optimistic-locking version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// The state store: one DynamoDB table in production, memory in tests.
#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Create or replace a pipeline definition, applied by `applied_by`; an update keeps the
    /// version it replaces (see [`ExecutionStore::pipeline_history`]).
    async fn put_pipeline_by(
        &self,
        definition: &PipelineDefinition,
        at: DateTime<Utc>,
        applied_by: &str,
    ) -> Result<PipelineWrite, StoreError>;
    /// [`ExecutionStore::put_pipeline_by`] by [`SYSTEM_APPLIER`].
    async fn put_pipeline(
        &self,
        definition: &PipelineDefinition,
        at: DateTime<Utc>,
    ) -> Result<PipelineWrite, StoreError> {
        self.put_pipeline_by(definition, at, SYSTEM_APPLIER).await
    }
    /// The versions of a pipeline that later versions replaced, newest first (at most `limit`).
    async fn pipeline_history(
        &self,
        name: &str,
        limit: usize,
    ) -> Result<Vec<StoredPipeline>, StoreError>;
    async fn get_pipeline(&self, name: &str) -> Result<Option<StoredPipeline>, StoreError>;
    /// All pipelines, by name.
    async fn list_pipelines(&self) -> Result<Vec<StoredPipeline>, StoreError>;
    /// At most `limit` pipelines whose names sort after `after` (from the first without), by
    /// name: one page of [`ExecutionStore::list_pipelines`].
    async fn list_pipelines_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredPipeline>, StoreError>;
    /// The pipelines built from `source` (same [`Source::index_key`]), by name: what a push
    /// reads, whatever the number of other pipelines.
    async fn pipelines_for_source(
        &self,
        source: &Source,
    ) -> Result<Vec<StoredPipeline>, StoreError>;

    /// Store a new execution (findable by its build and deployment ids, if any); with a key,
    /// atomically claim it too (a second call with the same key stores nothing and answers the
    /// first execution's id).
    async fn create_execution(
        &self,
        execution: &Execution,
        key: Option<&IdempotencyKey>,
    ) -> Result<Created, StoreError>;
    async fn get_execution(&self, id: &ExecutionId) -> Result<Option<Execution>, StoreError>;
    /// Executions of a pipeline, newest first.
    async fn list_executions(
        &self,
        pipeline: &str,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError>;
    /// Executions in an active status (for the sweeper), oldest first.
    async fn list_by_status(
        &self,
        status: Status,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError>;
    /// Replace `previous` with `next` if the stored item still has `previous`'s status and
    /// version; also makes `next` findable by any new build or deployment id. A lost race
    /// answers [`StoreError::Conflict`] with the current item.
    async fn save(&self, previous: &Execution, next: &Execution) -> Result<(), StoreError>;

    /// Claim a key once; the first claim stores `value`.
    async fn claim(&self, key: &IdempotencyKey, value: &str) -> Result<Claim, StoreError>;
    async fn find_by_build(&self, build_id: &str) -> Result<Option<ExecutionId>, StoreError>;
    async fn find_by_deployment(
        &self,
        deployment_id: &str,
    ) -> Result<Option<ExecutionId>, StoreError>;

    /// The deployment history of an environment (see [`EnvironmentRevisions`]).
    async fn get_revisions(
        &self,
        pipeline: &str,
        environment: Environment,
    ) -> Result<Option<Versioned<EnvironmentRevisions>>, StoreError>;
    /// Store the history if the stored one still has version `expected` (`None`: if there is
    /// none yet). Answers false when another writer got there first (read again and re-decide).
    async fn put_revisions(
        &self,
        pipeline: &str,
        environment: Environment,
        revisions: &EnvironmentRevisions,
        expected: Option<u64>,
    ) -> Result<bool, StoreError>;
}

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRequest {
    pub project: String,
    pub source_version: String,
    pub environment: Vec<(String, String)>,
    /// Same token → same build (AWS keeps it for 5 minutes).
    pub idempotency_token: String,
}

/// A build's state as CodeBuild reports it (for reconciliation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildObservation {
    pub build_id: String,
    /// IN_PROGRESS, SUCCEEDED, FAILED, FAULT, STOPPED, TIMED_OUT
    pub status: String,
    pub phase: Option<String>,
    pub reason: Option<String>,
    pub logs_link: Option<String>,
    /// The commit the build checked out (`resolvedSourceVersion`): for a build of a branch head,
    /// the SHA it resolved to.
    pub resolved_source_version: Option<String>,
    /// Variables the buildspec exported (`env: exported-variables:`), e.g. `IMAGE_DIGEST`.
    pub exported_variables: Vec<(String, String)>,
}

#[async_trait]
pub trait BuildRunner: Send + Sync {
    /// Start a build; answers the build id (`project:uuid`).
    async fn start_build(&self, request: &BuildRequest) -> Result<String, ServiceError>;
    async fn get_build(&self, build_id: &str) -> Result<BuildObservation, ServiceError>;
    /// Stop a running build (a smoke test whose verification timed out). Stopping a build that
    /// already ended is not an error.
    async fn stop_build(&self, build_id: &str) -> Result<(), ServiceError>;
}

/// A deployment that was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedDeployment {
    pub task_definition: String,
    pub previous_task_definition: Option<String>,
    pub deployment_id: String,
}

/// A deployment's state as ECS reports it (for reconciliation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentObservation {
    InProgress,
    Completed,
    Failed(String),
    /// No longer the service's primary deployment.
    Replaced,
    Unknown,
}

/// What a service runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    pub task_definition: String,
    /// Image of the target container.
    pub image: Option<String>,
}

#[async_trait]
pub trait Deployer: Send + Sync {
    /// Register a revision of the service's current task definition with only `target.container`'s
    /// image changed to `image`, and point the service at it.
    async fn deploy_image(
        &self,
        target: &ServiceTarget,
        image: &str,
    ) -> Result<StartedDeployment, ServiceError>;
    /// Point the service at an existing task definition revision (rollback).
    async fn deploy_task_definition(
        &self,
        target: &ServiceTarget,
        task_definition: &str,
    ) -> Result<StartedDeployment, ServiceError>;
    async fn service_state(&self, target: &ServiceTarget) -> Result<ServiceState, ServiceError>;
    async fn deployment_state(
        &self,
        target: &ServiceTarget,
        deployment_id: &str,
    ) -> Result<DeploymentObservation, ServiceError>;
}

/// An image in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDetail {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: Option<DateTime<Utc>>,
    pub size_bytes: Option<i64>,
}

#[async_trait]
pub trait ImageRegistry: Send + Sync {
    /// The image a tag points at, if any.
    async fn find_image(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<ImageDetail>, ServiceError>;
    /// The image with this digest, if the repository has it.
    async fn find_digest(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<ImageDetail>, ServiceError>;
    async fn list_images(&self, repository: &str) -> Result<Vec<ImageDetail>, ServiceError>;
    /// Delete images by digest; answers the digests deleted.
    async fn delete_images(
        &self,
        repository: &str,
        digests: &[String],
    ) -> Result<Vec<String>, ServiceError>;
}

/// A message for people (SNS → e-mail and chat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub subject: String,
    /// The text for e-mail (and any subscriber without a message of its own).
    pub body: String,
    /// The Amazon Q Developer in chat applications custom notification (JSON) for chat
    /// subscriptions (Slack, Microsoft Teams, Amazon Chime); see `app::notices::chat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<String>,
    /// Who the message is for, published as the SNS message attribute `shipgate_audience`
    /// ([`crate::domain::audience`]): `all`, or one approver's address for the message that
    /// holds their personal approval link (their subscription's filter policy lets it through).
    #[serde(default = "everyone")]
    pub audience: String,
}

fn everyone() -> String {
    crate::domain::audience::EVERYONE.to_string()
}

impl Notice {
    /// A notice for everyone.
    pub fn for_everyone(subject: String, body: String, chat: Option<String>) -> Notice {
        Notice {
            subject,
            body,
            chat,
            audience: everyone(),
        }
    }
}

#[async_trait]
pub trait Notifier: Send + Sync {
    /// Publish (with the notice's audience as the message attribute `shipgate_audience`);
    /// answers the message id.
    async fn publish(&self, topic_arn: &str, notice: &Notice) -> Result<String, ServiceError>;
}

/// A repository feedback goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubRepository {
    /// REST API base without a trailing slash (`https://api.github.com`).
    pub api_url: String,
    /// `owner/repo`.
    pub repository: String,
}

/// `POST /repos/{repo}/statuses/{sha}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatusRequest {
    pub sha: String,
    /// `shipgate/build`, …
    pub context: String,
    pub state: crate::domain::feedback::CommitState,
    pub description: String,
    pub target_url: Option<String>,
}

/// The GitHub deployment of one execution to one environment (created on first use; found again
/// by its `task`, which names the execution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRequest {
    pub sha: String,
    /// GitHub environment name (`test`, `production`).
    pub environment: String,
    /// `deploy:shipgate/<execution id>`: unique per execution, so a retried call finds the
    /// deployment a previous attempt created instead of creating a second one.
    pub task: String,
    pub production: bool,
    pub description: String,
}

/// `POST /repos/{repo}/deployments/{id}/statuses`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentStatusRequest {
    pub state: crate::domain::feedback::DeploymentState,
    pub description: String,
    pub log_url: Option<String>,
    pub environment_url: Option<String>,
}

/// Why GitHub did not take an update.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedbackError {
    /// 5xx, rate limits (403/429 with rate-limit headers), timeouts, connection failures.
    #[error("GitHub unavailable: {message}")]
    Retryable {
        message: String,
        /// What `Retry-After` / `X-RateLimit-Reset` asked for.
        retry_after_secs: Option<u64>,
    },
    /// Bad credentials, no access, validation: retrying will not help.
    #[error("GitHub refused: {0}")]
    Rejected(String),
}

/// GitHub's commit statuses and deployments (see `domain::feedback`).
#[async_trait]
pub trait CommitFeedback: Send + Sync {
    async fn commit_status(
        &self,
        repo: &GitHubRepository,
        token: &SecretValue,
        request: &CommitStatusRequest,
    ) -> Result<(), FeedbackError>;
    /// Find or create the deployment, then add a status to it.
    async fn deployment_status(
        &self,
        repo: &GitHubRepository,
        token: &SecretValue,
        deployment: &DeploymentRequest,
        status: &DeploymentStatusRequest,
    ) -> Result<(), FeedbackError>;
}

/// A secret value. Never printed: `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> SecretValue {
        SecretValue(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A secret that may be rotated: a plain string, or JSON `{"current": "...", "previous": "..."}`
/// while a rotation is under way. Answers the values to accept, `current` first (the one to sign
/// with); a JSON object without either key, or with only empty ones, is taken as a plain string.
/// The one parser of rotating secrets (webhook secret, approval signing key).
pub fn rotating_secrets(raw: &str) -> Vec<String> {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(raw) {
        let secrets: Vec<String> = ["current", "previous"]
            .iter()
            .filter_map(|k| map.get(*k).and_then(|v| v.as_str()))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if !secrets.is_empty() {
            return secrets;
        }
    }
    vec![raw.to_string()]
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn secret(&self, id: &str) -> Result<SecretValue, ServiceError>;
}

/// Checks a caller's identity proof (a signed `sts:GetCallerIdentity` request bound to one
/// command, see [`crate::domain::identity`]) and answers who AWS says the caller is.
#[async_trait]
pub trait CallerVerifier: Send + Sync {
    /// `binding`: the SHA-256 (hex) of the command the proof must be for.
    async fn verify(
        &self,
        proof: &crate::domain::identity::IdentityProof,
        binding: &str,
    ) -> Result<crate::domain::identity::VerifiedCaller, crate::domain::identity::IdentityError>;
}

/// A function that checks no proofs (every function but control): a proof is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCallerVerifier;

#[async_trait]
impl CallerVerifier for NoCallerVerifier {
    async fn verify(
        &self,
        _proof: &crate::domain::identity::IdentityProof,
        _binding: &str,
    ) -> Result<crate::domain::identity::VerifiedCaller, crate::domain::identity::IdentityError>
    {
        Err(crate::domain::identity::IdentityError::Unavailable(
            "this function is not configured to check identity proofs".into(),
        ))
    }
}

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Outbound HTTP GET of a deployed service's check URL (verified promotion). Bounded: the
/// request ends after `timeout`, and at most `max_body` bytes of the body are read.
#[async_trait]
pub trait HealthProbe: Send + Sync {
    async fn get(
        &self,
        url: &str,
        timeout: std::time::Duration,
        max_body: usize,
    ) -> Result<crate::domain::verify::ProbeAnswer, ServiceError>;
}

/// CloudWatch alarm states (`cloudwatch:DescribeAlarms`) of the alarms a production bake
/// watches. Alarms that do not exist are absent from the answer.
#[async_trait]
pub trait AlarmReader: Send + Sync {
    async fn alarm_states(
        &self,
        names: &[String],
    ) -> Result<Vec<(String, crate::domain::verify::AlarmState)>, ServiceError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = SecretValue::new("hunter2");
        assert_eq!(format!("{s:?}"), "SecretValue(<redacted>)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn retryable_errors() {
        assert!(ServiceError::Throttled("x".into()).is_retryable());
        assert!(ServiceError::Unavailable("x".into()).is_retryable());
        assert!(!ServiceError::Rejected("x".into()).is_retryable());
        assert!(!ServiceError::NotFound("x".into()).is_retryable());
        assert!(StoreError::Unavailable("x".into()).is_retryable());
        assert!(!StoreError::NotFound("x".into()).is_retryable());
    }
}
