//! Executions and their state machine.
//!
//! A transition is a pure function `(Execution, Change) -> Result<Transition, DomainError>`; the
//! caller persists the new execution with a conditional write on `(status, version)` and, only if
//! that write won, performs the returned effects.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::revisions::DeployedRevision;

/// Execution id: a ULID (sortable by creation time).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExecutionId(String);

impl ExecutionId {
    /// A new id for an execution created at `at`, with randomness from the OS.
    pub fn generate(at: DateTime<Utc>) -> ExecutionId {
        let ms = at.timestamp_millis().max(0) as u64;
        let mut random = [0u8; 10];
        // getrandom only fails when the OS has no entropy source at all; fall back to the clock.
        if getrandom::fill(&mut random).is_err() {
            let nanos = at.timestamp_subsec_nanos().to_be_bytes();
            random[..4].copy_from_slice(&nanos);
        }
        let mut r: u128 = 0;
        for b in random {
            r = (r << 8) | u128::from(b);
        }
        ExecutionId(ulid::Ulid::from_parts(ms, r).to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Error for a string that is not an execution id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an execution id: expected a 26-character ULID like 01JD3V5X8Q2M4N6P7R9S0T1V2W")]
pub struct InvalidExecutionId;

impl FromStr for ExecutionId {
    type Err = InvalidExecutionId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        ulid::Ulid::from_string(s)
            .map(|u| ExecutionId(u.to_string()))
            .map_err(|_| InvalidExecutionId)
    }
}

/// Every state of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Received,
    Building,
    Built,
    DeployingTest,
    AwaitingApproval,
    DeployingProd,
    Succeeded,
    BuildFailed,
    TestFailed,
    Rejected,
    Expired,
    Superseded,
    ProdFailed,
    RolledBack,
}

impl Status {
    pub const ALL: [Status; 14] = [
        Status::Received,
        Status::Building,
        Status::Built,
        Status::DeployingTest,
        Status::AwaitingApproval,
        Status::DeployingProd,
        Status::Succeeded,
        Status::BuildFailed,
        Status::TestFailed,
        Status::Rejected,
        Status::Expired,
        Status::Superseded,
        Status::ProdFailed,
        Status::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "RECEIVED",
            Status::Building => "BUILDING",
            Status::Built => "BUILT",
            Status::DeployingTest => "DEPLOYING_TEST",
            Status::AwaitingApproval => "AWAITING_APPROVAL",
            Status::DeployingProd => "DEPLOYING_PROD",
            Status::Succeeded => "SUCCEEDED",
            Status::BuildFailed => "BUILD_FAILED",
            Status::TestFailed => "TEST_FAILED",
            Status::Rejected => "REJECTED",
            Status::Expired => "EXPIRED",
            Status::Superseded => "SUPERSEDED",
            Status::ProdFailed => "PROD_FAILED",
            Status::RolledBack => "ROLLED_BACK",
        }
    }

    /// Work is still under way (or waiting for a person) in these states.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Status::Received
                | Status::Building
                | Status::Built
                | Status::DeployingTest
                | Status::AwaitingApproval
                | Status::DeployingProd
        )
    }

    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Status::BuildFailed | Status::TestFailed | Status::ProdFailed
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown status {s:?}"))
    }
}

/// Test or production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Test,
    Prod,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Test => "test",
            Environment::Prod => "prod",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "test" => Ok(Environment::Test),
            "prod" | "production" => Ok(Environment::Prod),
            other => Err(format!(
                "unknown environment {other:?} (expected test or prod)"
            )),
        }
    }
}

/// The commit an execution builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Commit {
    pub sha: String,
    /// Branch or tag name (without `refs/heads/`).
    pub reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Compare or commit link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Commit {
    /// First 12 characters of the SHA: the image tag CodeBuild pushes.
    pub fn short_sha(&self) -> &str {
        let end = self
            .sha
            .char_indices()
            .nth(12)
            .map(|(i, _)| i)
            .unwrap_or(self.sha.len());
        &self.sha[..end]
    }

    /// First line of the commit message.
    pub fn title(&self) -> &str {
        self.message
            .as_deref()
            .and_then(|m| m.lines().next())
            .unwrap_or("")
    }
}

/// What started an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    GithubPush {
        delivery: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pusher: Option<String>,
    },
    CodecommitPush {
        event_id: String,
    },
    /// Started by an operator without a push.
    Release {
        actor: String,
    },
    /// Points an environment back at an earlier revision.
    Rollback {
        actor: String,
        environment: Environment,
        /// The execution whose revision is being restored.
        restores: ExecutionId,
        /// The task definition revision the environment is pointed back at.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_definition: Option<String>,
        /// The release the environment is moved away from (marked `ROLLED_BACK`, and skipped by
        /// later default rollbacks, once this rollback completed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaces: Option<ExecutionId>,
    },
}

impl Trigger {
    pub fn is_rollback(&self) -> bool {
        matches!(self, Trigger::Rollback { .. })
    }
}

/// The image a build produced, pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    pub repository_uri: String,
    pub tag: String,
    /// `sha256:...`
    pub digest: String,
}

impl ImageRef {
    /// `repo@sha256:...` — the only form ever deployed.
    pub fn pinned(&self) -> String {
        format!("{}@{}", self.repository_uri, self.digest)
    }
}

/// One deployment to an ECS service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub environment: Environment,
    pub cluster: String,
    pub service: String,
    /// The task definition revision deployed.
    pub task_definition: String,
    /// The one it replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_task_definition: Option<String>,
    pub deployment_id: String,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Reject,
}

/// Where an approval decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    EmailLink,
    Cli,
    Console,
}

/// A recorded approval decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub actor: String,
    pub channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// The approval an execution waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Random value bound into the token: a token from an earlier approval round never works.
    pub nonce: String,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Set once the approval request was published (message id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// Why an execution failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// `build`, `test` or `prod`.
    pub stage: String,
    pub reason: String,
    /// Link to the build logs or the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// One line of an execution's append-only history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub from: Option<Status>,
    pub to: Status,
    pub cause: String,
    pub actor: String,
}

/// One run of a pipeline for one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    pub id: ExecutionId,
    pub pipeline: String,
    pub status: Status,
    /// Optimistic-locking version; every write increments it.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub trigger: Trigger,
    pub commit: Commit,
    /// How many times the build or test stage was started (1 for the first run).
    #[serde(default = "one")]
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<DeploymentRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prod: Option<DeploymentRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub history: Vec<HistoryEntry>,
}

fn one() -> u32 {
    1
}

/// An id an execution can be found by (build id, ECS deployment id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Link {
    Build(String),
    Deployment(String),
}

impl Execution {
    /// A new execution in `RECEIVED`.
    pub fn received(
        id: ExecutionId,
        pipeline: &str,
        commit: Commit,
        trigger: Trigger,
        at: DateTime<Utc>,
        actor: &str,
    ) -> Execution {
        let cause = match &trigger {
            Trigger::GithubPush { delivery, .. } => format!("GitHub push (delivery {delivery})"),
            Trigger::CodecommitPush { event_id } => format!("CodeCommit push (event {event_id})"),
            Trigger::Release { .. } => "release requested".to_string(),
            Trigger::Rollback {
                environment,
                restores,
                ..
            } => {
                format!("rollback of {environment} to the revision of {restores}")
            }
        };
        Execution {
            id,
            pipeline: pipeline.to_string(),
            status: Status::Received,
            version: 1,
            created_at: at,
            updated_at: at,
            trigger,
            commit,
            attempt: 1,
            build_id: None,
            image: None,
            test: None,
            prod: None,
            approval: None,
            failure: None,
            history: vec![HistoryEntry {
                at,
                from: None,
                to: Status::Received,
                cause,
                actor: actor.to_string(),
            }],
        }
    }

    /// A rollback execution of `environment` to an earlier revision. It owes the deployment
    /// from the start (`DEPLOYING_PROD` without a prod deployment, or `BUILT` for test), so
    /// the deployment is only started once the execution is stored.
    pub fn rollback(
        id: ExecutionId,
        pipeline: &str,
        environment: Environment,
        restored: &DeployedRevision,
        replaces: Option<ExecutionId>,
        at: DateTime<Utc>,
        actor: &str,
    ) -> Execution {
        let mut exec = Execution::received(
            id,
            pipeline,
            restored.commit.clone(),
            Trigger::Rollback {
                actor: actor.to_string(),
                environment,
                restores: restored.origin().clone(),
                task_definition: Some(restored.task_definition.clone()),
                replaces,
            },
            at,
            actor,
        );
        exec.image = Some(restored.image.clone());
        let to = match environment {
            Environment::Test => Status::Built,
            Environment::Prod => Status::DeployingProd,
        };
        exec.status = to;
        exec.history[0].to = to;
        exec
    }

    /// For a rollback: the release it moves the environment away from.
    pub fn rollback_replaces(&self) -> Option<&ExecutionId> {
        match &self.trigger {
            Trigger::Rollback { replaces, .. } => replaces.as_ref(),
            _ => None,
        }
    }

    /// For a rollback of `env`: the task definition revision it restores.
    pub fn restores_task_definition(&self, env: Environment) -> Option<&str> {
        match &self.trigger {
            Trigger::Rollback {
                environment,
                task_definition,
                ..
            } if *environment == env => task_definition.as_deref(),
            _ => None,
        }
    }

    /// The image tag CodeBuild pushes: the short commit SHA, or for a release of a branch head
    /// (commit unknown until built) a tag derived from the execution id.
    pub fn image_tag(&self) -> String {
        let sha = &self.commit.sha;
        if sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()) {
            self.commit.short_sha().to_string()
        } else {
            format!("r-{}", self.id.as_str().to_ascii_lowercase())
        }
    }

    /// The id of the AWS work this execution waits on, which its events are looked up by: the
    /// newest of prod deployment, test deployment and build (a retry clears what comes after the
    /// retried stage, so the newest is the one the execution is in). Events for older work
    /// (a build once the test deployment started, the test deployment once prod started) no
    /// longer find the execution; its state machine would ignore them anyway.
    pub fn awaited(&self) -> Option<Link> {
        if let Some(d) = self.prod.as_ref().or(self.test.as_ref()) {
            return Some(Link::Deployment(d.deployment_id.clone()));
        }
        self.build_id.clone().map(Link::Build)
    }

    /// The deployment of an environment, if one was started.
    pub fn deployment(&self, env: Environment) -> Option<&DeploymentRecord> {
        match env {
            Environment::Test => self.test.as_ref(),
            Environment::Prod => self.prod.as_ref(),
        }
    }

    /// Which environment a deployment id belongs to.
    pub fn environment_of(&self, deployment_id: &str) -> Option<Environment> {
        [&self.test, &self.prod]
            .into_iter()
            .flatten()
            .find(|d| d.deployment_id == deployment_id)
            .map(|d| d.environment)
    }
}

/// Something that happened to an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `codebuild:StartBuild` answered with this build id.
    BuildStarted { build_id: String },
    /// `codebuild:StartBuild` failed.
    BuildStartFailed { reason: String },
    /// CodeBuild reported progress (history only).
    BuildProgress { phase: String },
    /// The build succeeded and pushed this image. `resolved_sha`: the commit a build of a branch
    /// head (or of an abbreviated SHA) checked out; `note`: a fact for the history line.
    BuildSucceeded {
        image: ImageRef,
        resolved_sha: Option<String>,
        note: Option<String>,
    },
    /// The build failed, stopped, faulted or timed out.
    BuildFailed {
        status: String,
        phase: Option<String>,
        reason: String,
        link: Option<String>,
    },
    /// A deployment to `deployment.environment` was started.
    DeployStarted { deployment: DeploymentRecord },
    /// Starting a deployment failed (registering the revision or updating the service).
    DeployStartFailed {
        environment: Environment,
        reason: String,
    },
    /// ECS reported the deployment complete. `approval` opens the approval round for a test
    /// deployment (ignored for rollbacks and prod).
    DeployCompleted {
        deployment_id: String,
        approval: Option<ApprovalGrant>,
    },
    /// ECS reported the deployment failed (circuit breaker rolled it back).
    DeployFailed {
        deployment_id: String,
        reason: String,
    },
    /// Another deployment replaced ours before it completed.
    DeployReplaced { deployment_id: String },
    /// The approval request was published.
    ApprovalRequested { message_id: String },
    /// A person decided.
    Decided { decision: Decision },
    /// The approval window closed.
    ApprovalExpired,
    /// A newer execution of the pipeline now awaits approval.
    Superseded { by: ExecutionId },
    /// The environment was pointed back at an earlier revision by execution `by`.
    RolledBack { by: ExecutionId },
    /// An operator restarts a failed execution from its failed stage.
    Retry,
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::BuildStarted { .. } => "BuildStarted",
            Event::BuildStartFailed { .. } => "BuildStartFailed",
            Event::BuildProgress { .. } => "BuildProgress",
            Event::BuildSucceeded { .. } => "BuildSucceeded",
            Event::BuildFailed { .. } => "BuildFailed",
            Event::DeployStarted { .. } => "DeployStarted",
            Event::DeployStartFailed { .. } => "DeployStartFailed",
            Event::DeployCompleted { .. } => "DeployCompleted",
            Event::DeployFailed { .. } => "DeployFailed",
            Event::DeployReplaced { .. } => "DeployReplaced",
            Event::ApprovalRequested { .. } => "ApprovalRequested",
            Event::Decided { .. } => "Decided",
            Event::ApprovalExpired => "ApprovalExpired",
            Event::Superseded { .. } => "Superseded",
            Event::RolledBack { .. } => "RolledBack",
            Event::Retry => "Retry",
        }
    }
}

/// Nonce and expiry of a new approval round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalGrant {
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
}

/// An event with when it happened and who caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub event: Event,
    pub at: DateTime<Utc>,
    pub actor: String,
}

impl Change {
    pub fn new(event: Event, at: DateTime<Utc>, actor: impl Into<String>) -> Change {
        Change {
            event,
            at,
            actor: actor.into(),
        }
    }
}

/// Work to do after a transition was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Start a CodeBuild build of the commit.
    StartBuild,
    /// Deploy the execution's image to the test service.
    DeployTest,
    /// Publish the approval request.
    RequestApproval,
    /// Older executions of the pipeline still awaiting approval become `SUPERSEDED`.
    SupersedeOlder,
    /// Deploy the tested digest to production.
    DeployProd,
    /// Record what now runs in the environment (for status and rollback).
    RecordRevision(Environment),
    /// Record that the environment was asked to run this execution's release and the
    /// deployment failed (what rollback moves away from), releasing a rollback claim it held.
    RecordFailure(Environment),
    /// A completed rollback: the release it moved away from becomes `ROLLED_BACK`.
    MarkRolledBack,
    /// Send a notice about the new status on the pipeline's notification topic.
    Notify,
}

/// The result of a legal transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub execution: Execution,
    pub effects: Vec<Effect>,
}

/// Why a change does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{event} does not apply to an execution in {status}")]
    IllegalTransition { status: Status, event: &'static str },
    /// The change was already applied (a repeated event): nothing to do.
    #[error("{event} was already applied")]
    AlreadyApplied { event: &'static str },
    #[error("deployment {got} is not the current {expected} deployment of this execution")]
    UnknownDeployment { expected: &'static str, got: String },
    #[error("a test deployment completed but no approval round was supplied")]
    MissingApproval,
    #[error("the approval does not expire until {expires_at}")]
    NotExpired { expires_at: DateTime<Utc> },
    #[error("retry needs {0}")]
    CannotRetry(&'static str),
}

/// Effects a stored execution still owes: what the winner of its last transition was to do
/// next. Used to resume work after a Lambda died mid-way (sweeper, or a redelivered event after
/// the state stopped changing for a while). Every effect listed is safe to repeat.
pub fn pending_effects(exec: &Execution) -> Vec<Effect> {
    match exec.status {
        Status::Received if exec.build_id.is_none() => vec![Effect::StartBuild],
        Status::Built => vec![Effect::DeployTest],
        Status::AwaitingApproval
            if exec
                .approval
                .as_ref()
                .is_some_and(|a| a.message_id.is_none()) =>
        {
            vec![
                Effect::RecordRevision(Environment::Test),
                Effect::SupersedeOlder,
                Effect::RequestApproval,
            ]
        }
        Status::DeployingProd if exec.prod.is_none() => vec![Effect::DeployProd],
        // recording what runs is idempotent; owed in case the write after SUCCEEDED failed
        Status::Succeeded if exec.prod.is_some() => vec![Effect::RecordRevision(Environment::Prod)],
        Status::Succeeded if exec.test.is_some() => vec![Effect::RecordRevision(Environment::Test)],
        _ => vec![],
    }
}

/// Apply a change to an execution.
pub fn transition(exec: &Execution, change: Change) -> Result<Transition, DomainError> {
    use Status as S;
    let name = change.event.name();
    let illegal = || DomainError::IllegalTransition {
        status: exec.status,
        event: name,
    };
    let mut next = exec.clone();
    let (to, cause, effects): (Status, String, Vec<Effect>) = match (exec.status, change.event) {
        (S::Received, Event::BuildStarted { build_id }) => {
            let cause = format!("build {build_id} started");
            next.build_id = Some(build_id);
            (S::Building, cause, vec![])
        }
        (S::Building, Event::BuildStarted { build_id })
            if exec.build_id.as_deref() == Some(build_id.as_str()) =>
        {
            return Err(DomainError::AlreadyApplied { event: name });
        }
        (S::Received, Event::BuildStartFailed { reason }) => {
            next.failure = Some(Failure {
                stage: "build".into(),
                reason: reason.clone(),
                link: None,
            });
            (
                S::BuildFailed,
                format!("build could not be started: {reason}"),
                vec![Effect::Notify],
            )
        }
        (S::Building, Event::BuildProgress { phase }) => {
            let cause = format!("build phase {phase}");
            if exec.history.last().is_some_and(|h| h.cause == cause) {
                return Err(DomainError::AlreadyApplied { event: name });
            }
            (S::Building, cause, vec![])
        }
        (
            S::Building,
            Event::BuildSucceeded {
                image,
                resolved_sha,
                note,
            },
        ) => {
            if let Some(sha) = resolved_sha.filter(|s| {
                s.len() == 40
                    && s.chars().all(|c| c.is_ascii_hexdigit())
                    && s.starts_with(&exec.commit.sha.to_ascii_lowercase())
                    && *s != exec.commit.sha
            }) {
                next.history.push(HistoryEntry {
                    at: change.at,
                    from: Some(S::Building),
                    to: S::Building,
                    cause: match exec.commit.sha.as_str() {
                        "" => format!("{} resolved to commit {sha}", exec.commit.reference),
                        given => format!("commit {given} resolved to {sha}"),
                    },
                    actor: change.actor.clone(),
                });
                next.commit.sha = sha;
            }
            let mut cause = format!("build succeeded: {}", image.pinned());
            if let Some(note) = note {
                cause = format!("{cause} ({note})");
            }
            next.image = Some(image);
            (S::Built, cause, vec![Effect::DeployTest])
        }
        (
            S::Building,
            Event::BuildFailed {
                status,
                phase,
                reason,
                link,
            },
        ) => {
            let cause = match &phase {
                Some(p) => format!("build {status} in phase {p}: {reason}"),
                None => format!("build {status}: {reason}"),
            };
            next.failure = Some(Failure {
                stage: "build".into(),
                reason: cause.clone(),
                link,
            });
            (S::BuildFailed, cause, vec![Effect::Notify])
        }
        (S::Built, Event::DeployStarted { deployment })
            if deployment.environment == Environment::Test =>
        {
            let cause = format!(
                "test deployment {} started ({})",
                deployment.deployment_id, deployment.task_definition
            );
            next.test = Some(deployment);
            (S::DeployingTest, cause, vec![])
        }
        (S::DeployingProd, Event::DeployStarted { deployment })
            if deployment.environment == Environment::Prod =>
        {
            if exec.prod.is_some() {
                return Err(DomainError::AlreadyApplied { event: name });
            }
            let cause = format!(
                "prod deployment {} started ({})",
                deployment.deployment_id, deployment.task_definition
            );
            next.prod = Some(deployment);
            (S::DeployingProd, cause, vec![])
        }
        (
            S::Built,
            Event::DeployStartFailed {
                environment: Environment::Test,
                reason,
            },
        ) => {
            next.failure = Some(Failure {
                stage: "test".into(),
                reason: reason.clone(),
                link: None,
            });
            (
                S::TestFailed,
                format!("test deployment could not be started: {reason}"),
                vec![Effect::Notify],
            )
        }
        (
            S::DeployingProd,
            Event::DeployStartFailed {
                environment: Environment::Prod,
                reason,
            },
        ) if exec.prod.is_none() => {
            next.failure = Some(Failure {
                stage: "prod".into(),
                reason: reason.clone(),
                link: None,
            });
            (
                S::ProdFailed,
                format!("prod deployment could not be started: {reason}"),
                vec![Effect::Notify],
            )
        }
        (
            S::DeployingTest,
            Event::DeployCompleted {
                deployment_id,
                approval,
            },
        ) => {
            expect_deployment(exec.test.as_ref(), "test", &deployment_id)?;
            if exec.trigger.is_rollback() {
                (
                    S::Succeeded,
                    format!("test rollback deployment {deployment_id} completed"),
                    vec![Effect::RecordRevision(Environment::Test)],
                )
            } else {
                let grant = approval.ok_or(DomainError::MissingApproval)?;
                next.approval = Some(Approval {
                    nonce: grant.nonce,
                    requested_at: change.at,
                    expires_at: grant.expires_at,
                    message_id: None,
                    decision: None,
                });
                (
                    S::AwaitingApproval,
                    format!("test deployment {deployment_id} completed; approval requested"),
                    vec![
                        Effect::RecordRevision(Environment::Test),
                        Effect::SupersedeOlder,
                        Effect::RequestApproval,
                    ],
                )
            }
        }
        (S::DeployingProd, Event::DeployCompleted { deployment_id, .. }) => {
            expect_deployment(exec.prod.as_ref(), "prod", &deployment_id)?;
            let mut effects = vec![Effect::RecordRevision(Environment::Prod)];
            if exec.rollback_replaces().is_some() {
                effects.push(Effect::MarkRolledBack);
            }
            (
                S::Succeeded,
                format!("prod deployment {deployment_id} completed"),
                effects,
            )
        }
        (
            S::DeployingTest,
            Event::DeployFailed {
                deployment_id,
                reason,
            },
        ) => {
            expect_deployment(exec.test.as_ref(), "test", &deployment_id)?;
            next.failure = Some(Failure {
                stage: "test".into(),
                reason: reason.clone(),
                link: None,
            });
            (
                S::TestFailed,
                format!("test deployment {deployment_id} failed: {reason}"),
                vec![Effect::RecordFailure(Environment::Test), Effect::Notify],
            )
        }
        (
            S::DeployingProd,
            Event::DeployFailed {
                deployment_id,
                reason,
            },
        ) => {
            expect_deployment(exec.prod.as_ref(), "prod", &deployment_id)?;
            next.failure = Some(Failure {
                stage: "prod".into(),
                reason: reason.clone(),
                link: None,
            });
            (
                S::ProdFailed,
                format!("prod deployment {deployment_id} failed: {reason}"),
                vec![Effect::RecordFailure(Environment::Prod), Effect::Notify],
            )
        }
        (S::DeployingTest, Event::DeployReplaced { deployment_id }) => {
            expect_deployment(exec.test.as_ref(), "test", &deployment_id)?;
            (S::Superseded, format!("test deployment {deployment_id} was replaced by another deployment before it completed"), vec![])
        }
        (S::DeployingProd, Event::DeployReplaced { deployment_id }) => {
            expect_deployment(exec.prod.as_ref(), "prod", &deployment_id)?;
            (S::Superseded, format!("prod deployment {deployment_id} was replaced by another deployment before it completed"), vec![])
        }
        (S::AwaitingApproval, Event::ApprovalRequested { message_id }) => {
            let Some(approval) = next.approval.as_mut() else {
                return Err(illegal());
            };
            if approval.message_id.is_some() {
                return Err(DomainError::AlreadyApplied { event: name });
            }
            approval.message_id = Some(message_id.clone());
            (
                S::AwaitingApproval,
                format!("approval request sent (message {message_id})"),
                vec![],
            )
        }
        (S::AwaitingApproval, Event::Decided { decision }) => {
            let Some(approval) = next.approval.as_mut() else {
                return Err(illegal());
            };
            let who = format!("{} via {}", decision.actor, channel_name(decision.channel));
            let comment = decision
                .comment
                .as_deref()
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            let verdict = decision.verdict;
            approval.decision = Some(decision);
            match verdict {
                Verdict::Approve => (
                    S::DeployingProd,
                    format!("approved by {who}{comment}"),
                    // releases reach production in push order: older ones still waiting
                    // could no longer be approved, so they give way now
                    vec![Effect::DeployProd, Effect::SupersedeOlder],
                ),
                Verdict::Reject => (S::Rejected, format!("rejected by {who}{comment}"), vec![]),
            }
        }
        (S::AwaitingApproval, Event::ApprovalExpired) => {
            let expires_at = exec.approval.as_ref().map(|a| a.expires_at);
            match expires_at {
                Some(e) if change.at < e => return Err(DomainError::NotExpired { expires_at: e }),
                _ => {}
            }
            (
                S::Expired,
                "approval expired without a decision".to_string(),
                vec![Effect::Notify],
            )
        }
        (S::AwaitingApproval, Event::Superseded { by }) => (
            S::Superseded,
            format!("superseded by newer execution {by}"),
            vec![],
        ),
        // approved, but before its deployment started a newer release (or a rollback) took
        // production: releases reach production in push order, so this one gives way
        (S::DeployingProd, Event::Superseded { by }) if exec.prod.is_none() => (
            S::Superseded,
            format!("superseded before its production deployment started: execution {by} went to production first"),
            vec![],
        ),
        (S::Succeeded | S::ProdFailed, Event::RolledBack { by }) => (
            S::RolledBack,
            format!("rolled back by execution {by}"),
            vec![Effect::Notify],
        ),
        (S::BuildFailed, Event::Retry) => {
            next.attempt += 1;
            next.build_id = None;
            next.image = None;
            next.failure = None;
            (
                S::Received,
                format!("retry {} of the build", next.attempt),
                vec![Effect::StartBuild],
            )
        }
        (S::TestFailed, Event::Retry) => {
            if exec.image.is_none() {
                return Err(DomainError::CannotRetry(
                    "a built image; retry of a build failure restarts the build",
                ));
            }
            next.attempt += 1;
            next.test = None;
            next.failure = None;
            (
                S::Built,
                format!("retry {} of the test deployment", next.attempt),
                vec![Effect::DeployTest],
            )
        }
        (S::ProdFailed, Event::Retry) => {
            if exec.image.is_none() || exec.trigger.is_rollback() {
                return Err(DomainError::CannotRetry(
                    "an approved image; roll back instead",
                ));
            }
            next.attempt += 1;
            next.prod = None;
            next.failure = None;
            (
                S::DeployingProd,
                format!("retry {} of the approved prod deployment", next.attempt),
                vec![Effect::DeployProd],
            )
        }
        _ => return Err(illegal()),
    };
    next.status = to;
    next.version = exec.version + 1;
    next.updated_at = change.at;
    next.history.push(HistoryEntry {
        at: change.at,
        from: Some(exec.status),
        to,
        cause,
        actor: change.actor,
    });
    Ok(Transition {
        execution: next,
        effects,
    })
}

fn expect_deployment(
    recorded: Option<&DeploymentRecord>,
    expected: &'static str,
    got: &str,
) -> Result<(), DomainError> {
    match recorded {
        Some(d) if d.deployment_id == got => Ok(()),
        _ => Err(DomainError::UnknownDeployment {
            expected,
            got: got.to_string(),
        }),
    }
}

pub fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::EmailLink => "email link",
        Channel::Cli => "cli",
        Channel::Console => "console",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    fn new_exec() -> Execution {
        Execution::received(
            ExecutionId::generate(t(0)),
            "hello",
            Commit {
                sha: "0123456789abcdef0123456789abcdef01234567".into(),
                reference: "main".into(),
                author: Some("Ada".into()),
                message: Some("Add health check\n\nlonger text".into()),
                url: None,
            },
            Trigger::GithubPush {
                delivery: "d-1".into(),
                pusher: None,
            },
            t(0),
            "github",
        )
    }

    fn image() -> ImageRef {
        ImageRef {
            repository_uri: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello".into(),
            tag: "0123456789ab".into(),
            digest: "sha256:aa".into(),
        }
    }

    fn deployment(env: Environment, id: &str) -> DeploymentRecord {
        DeploymentRecord {
            environment: env,
            cluster: "apps".into(),
            service: format!("hello-{env}"),
            task_definition: "arn:td/hello:2".into(),
            previous_task_definition: Some("arn:td/hello:1".into()),
            deployment_id: id.into(),
            started_at: t(5),
        }
    }

    fn decision(verdict: Verdict) -> Decision {
        Decision {
            verdict,
            actor: "Grace".into(),
            channel: Channel::EmailLink,
            comment: Some("lgtm".into()),
            at: t(50),
            source_ip: Some("203.0.113.9".into()),
            user_agent: Some("Mozilla".into()),
        }
    }

    fn apply(exec: &Execution, event: Event) -> Result<Transition, DomainError> {
        transition(
            exec,
            Change::new(event, t(exec.history.len() as i64), "test"),
        )
    }

    fn step(exec: &Execution, event: Event) -> (Execution, Vec<Effect>) {
        let tr = apply(exec, event).expect("legal transition");
        (tr.execution, tr.effects)
    }

    fn grant() -> Option<ApprovalGrant> {
        Some(ApprovalGrant {
            nonce: "n1".into(),
            expires_at: t(3600),
        })
    }

    /// An execution driven to `status` along the happy path (or the failure edge into it).
    fn at(status: Status) -> Execution {
        let e = new_exec();
        let building = step(
            &e,
            Event::BuildStarted {
                build_id: "b1".into(),
            },
        )
        .0;
        let built = step(
            &building,
            Event::BuildSucceeded {
                image: image(),
                resolved_sha: None,
                note: None,
            },
        )
        .0;
        let deploying_test = step(
            &built,
            Event::DeployStarted {
                deployment: deployment(Environment::Test, "ecs-svc/1"),
            },
        )
        .0;
        let awaiting = step(
            &deploying_test,
            Event::DeployCompleted {
                deployment_id: "ecs-svc/1".into(),
                approval: grant(),
            },
        )
        .0;
        let deploying_prod = step(
            &awaiting,
            Event::Decided {
                decision: decision(Verdict::Approve),
            },
        )
        .0;
        let deploying_prod_started = step(
            &deploying_prod,
            Event::DeployStarted {
                deployment: deployment(Environment::Prod, "ecs-svc/2"),
            },
        )
        .0;
        match status {
            Status::Received => e,
            Status::Building => building,
            Status::Built => built,
            Status::DeployingTest => deploying_test,
            Status::AwaitingApproval => awaiting,
            Status::DeployingProd => deploying_prod_started,
            Status::Succeeded => {
                step(
                    &deploying_prod_started,
                    Event::DeployCompleted {
                        deployment_id: "ecs-svc/2".into(),
                        approval: None,
                    },
                )
                .0
            }
            Status::BuildFailed => {
                step(
                    &building,
                    Event::BuildFailed {
                        status: "FAILED".into(),
                        phase: Some("BUILD".into()),
                        reason: "exit 1".into(),
                        link: None,
                    },
                )
                .0
            }
            Status::TestFailed => {
                step(
                    &deploying_test,
                    Event::DeployFailed {
                        deployment_id: "ecs-svc/1".into(),
                        reason: "circuit breaker".into(),
                    },
                )
                .0
            }
            Status::Rejected => {
                step(
                    &awaiting,
                    Event::Decided {
                        decision: decision(Verdict::Reject),
                    },
                )
                .0
            }
            Status::Expired => {
                transition(
                    &awaiting,
                    Change::new(Event::ApprovalExpired, t(4000), "sweeper"),
                )
                .unwrap()
                .execution
            }
            Status::Superseded => {
                step(
                    &awaiting,
                    Event::Superseded {
                        by: ExecutionId::generate(t(9)),
                    },
                )
                .0
            }
            Status::ProdFailed => {
                step(
                    &deploying_prod_started,
                    Event::DeployFailed {
                        deployment_id: "ecs-svc/2".into(),
                        reason: "tasks failed to start".into(),
                    },
                )
                .0
            }
            Status::RolledBack => {
                let failed = step(
                    &deploying_prod_started,
                    Event::DeployFailed {
                        deployment_id: "ecs-svc/2".into(),
                        reason: "x".into(),
                    },
                )
                .0;
                step(
                    &failed,
                    Event::RolledBack {
                        by: ExecutionId::generate(t(99)),
                    },
                )
                .0
            }
        }
    }

    #[test]
    fn happy_path_records_history_and_effects() {
        let e = new_exec();
        assert_eq!(e.status, Status::Received);
        assert_eq!(e.version, 1);
        assert_eq!(e.history.len(), 1);
        assert_eq!(e.history[0].from, None);

        let (e, fx) = step(
            &e,
            Event::BuildStarted {
                build_id: "b1".into(),
            },
        );
        assert_eq!((e.status, e.version, fx), (Status::Building, 2, vec![]));
        assert_eq!(e.awaited(), Some(Link::Build("b1".into())));

        let (e, fx) = step(
            &e,
            Event::BuildProgress {
                phase: "BUILD".into(),
            },
        );
        assert_eq!((e.status, fx.len()), (Status::Building, 0));
        assert_eq!(e.history.last().unwrap().cause, "build phase BUILD");

        let (e, fx) = step(
            &e,
            Event::BuildSucceeded {
                image: image(),
                resolved_sha: None,
                note: None,
            },
        );
        assert_eq!((e.status, fx), (Status::Built, vec![Effect::DeployTest]));

        let (e, fx) = step(
            &e,
            Event::DeployStarted {
                deployment: deployment(Environment::Test, "ecs-svc/1"),
            },
        );
        assert_eq!((e.status, fx), (Status::DeployingTest, vec![]));
        assert_eq!(e.awaited(), Some(Link::Deployment("ecs-svc/1".into())));

        let (e, fx) = step(
            &e,
            Event::DeployCompleted {
                deployment_id: "ecs-svc/1".into(),
                approval: grant(),
            },
        );
        assert_eq!(e.status, Status::AwaitingApproval);
        assert_eq!(
            fx,
            vec![
                Effect::RecordRevision(Environment::Test),
                Effect::SupersedeOlder,
                Effect::RequestApproval
            ]
        );
        assert_eq!(
            pending_effects(&e),
            fx,
            "until the request is sent it is owed"
        );
        let (e, fx) = step(
            &e,
            Event::ApprovalRequested {
                message_id: "m-1".into(),
            },
        );
        assert_eq!((e.status, fx), (Status::AwaitingApproval, vec![]));
        assert!(pending_effects(&e).is_empty());
        assert_eq!(
            apply(
                &e,
                Event::ApprovalRequested {
                    message_id: "m-2".into()
                }
            ),
            Err(DomainError::AlreadyApplied {
                event: "ApprovalRequested"
            })
        );
        assert_eq!(e.approval.as_ref().unwrap().nonce, "n1");

        let (e, fx) = step(
            &e,
            Event::Decided {
                decision: decision(Verdict::Approve),
            },
        );
        assert_eq!(
            (e.status, fx),
            (
                Status::DeployingProd,
                vec![Effect::DeployProd, Effect::SupersedeOlder]
            )
        );
        assert_eq!(
            e.history.last().unwrap().cause,
            "approved by Grace via email link: lgtm"
        );
        assert_eq!(
            e.approval
                .as_ref()
                .unwrap()
                .decision
                .as_ref()
                .unwrap()
                .actor,
            "Grace"
        );

        let (e, _) = step(
            &e,
            Event::DeployStarted {
                deployment: deployment(Environment::Prod, "ecs-svc/2"),
            },
        );
        assert_eq!(e.status, Status::DeployingProd);
        assert_eq!(e.environment_of("ecs-svc/2"), Some(Environment::Prod));
        assert_eq!(e.awaited(), Some(Link::Deployment("ecs-svc/2".into())));

        let (e, fx) = step(
            &e,
            Event::DeployCompleted {
                deployment_id: "ecs-svc/2".into(),
                approval: None,
            },
        );
        assert_eq!(
            (e.status, fx),
            (
                Status::Succeeded,
                vec![Effect::RecordRevision(Environment::Prod)]
            )
        );

        let statuses: Vec<Status> = e.history.iter().map(|h| h.to).collect();
        assert_eq!(
            statuses,
            vec![
                Status::Received,
                Status::Building,
                Status::Building,
                Status::Built,
                Status::DeployingTest,
                Status::AwaitingApproval,
                Status::AwaitingApproval,
                Status::DeployingProd,
                Status::DeployingProd,
                Status::Succeeded
            ]
        );
        // history is append-only and each entry's `from` is the previous entry's `to`
        for w in e.history.windows(2) {
            assert_eq!(w[1].from, Some(w[0].to));
            assert!(w[1].at >= w[0].at);
        }
        assert_eq!(e.version as usize, e.history.len());
    }

    #[test]
    fn failure_edges() {
        let e = at(Status::Received);
        let (f, fx) = step(
            &e,
            Event::BuildStartFailed {
                reason: "AccessDenied".into(),
            },
        );
        assert_eq!((f.status, fx), (Status::BuildFailed, vec![Effect::Notify]));
        assert!(f.failure.unwrap().reason.contains("AccessDenied"));

        let f = at(Status::BuildFailed);
        assert_eq!(f.failure.as_ref().unwrap().stage, "build");
        assert_eq!(
            f.history.last().unwrap().cause,
            "build FAILED in phase BUILD: exit 1"
        );

        let (f, fx) = step(
            &at(Status::Built),
            Event::DeployStartFailed {
                environment: Environment::Test,
                reason: "no container app".into(),
            },
        );
        assert_eq!((f.status, fx), (Status::TestFailed, vec![Effect::Notify]));

        let f = at(Status::TestFailed);
        assert_eq!(f.failure.as_ref().unwrap().stage, "test");

        let mut deploying_prod = at(Status::AwaitingApproval);
        deploying_prod = step(
            &deploying_prod,
            Event::Decided {
                decision: decision(Verdict::Approve),
            },
        )
        .0;
        let (f, fx) = step(
            &deploying_prod,
            Event::DeployStartFailed {
                environment: Environment::Prod,
                reason: "throttled".into(),
            },
        );
        assert_eq!((f.status, fx), (Status::ProdFailed, vec![Effect::Notify]));

        let f = at(Status::ProdFailed);
        assert_eq!(f.failure.as_ref().unwrap().stage, "prod");

        let (r, fx) = step(
            &at(Status::AwaitingApproval),
            Event::Decided {
                decision: decision(Verdict::Reject),
            },
        );
        assert_eq!((r.status, fx), (Status::Rejected, vec![]));

        let (s, _) = step(
            &at(Status::DeployingTest),
            Event::DeployReplaced {
                deployment_id: "ecs-svc/1".into(),
            },
        );
        assert_eq!(s.status, Status::Superseded);
        let (s, _) = step(
            &at(Status::DeployingProd),
            Event::DeployReplaced {
                deployment_id: "ecs-svc/2".into(),
            },
        );
        assert_eq!(s.status, Status::Superseded);

        let (rb, fx) = step(
            &at(Status::Succeeded),
            Event::RolledBack {
                by: ExecutionId::generate(t(1)),
            },
        );
        assert_eq!((rb.status, fx), (Status::RolledBack, vec![Effect::Notify]));
        assert_eq!(at(Status::RolledBack).status, Status::RolledBack);
    }

    #[test]
    fn pending_effects_per_state() {
        assert_eq!(
            pending_effects(&at(Status::Received)),
            vec![Effect::StartBuild]
        );
        assert_eq!(pending_effects(&at(Status::Building)), vec![]);
        assert_eq!(
            pending_effects(&at(Status::Built)),
            vec![Effect::DeployTest]
        );
        let approved = step(
            &at(Status::AwaitingApproval),
            Event::Decided {
                decision: decision(Verdict::Approve),
            },
        )
        .0;
        assert_eq!(pending_effects(&approved), vec![Effect::DeployProd]);
        assert_eq!(
            pending_effects(&at(Status::DeployingProd)),
            vec![],
            "prod deployment recorded"
        );
        assert_eq!(
            pending_effects(&at(Status::Succeeded)),
            vec![Effect::RecordRevision(Environment::Prod)]
        );
        for s in [
            Status::BuildFailed,
            Status::Rejected,
            Status::Expired,
            Status::Superseded,
        ] {
            assert!(pending_effects(&at(s)).is_empty());
        }
    }

    #[test]
    fn prod_failure_retry_redeploys_the_approved_digest() {
        let (r, fx) = step(&at(Status::ProdFailed), Event::Retry);
        assert_eq!(
            (r.status, fx),
            (Status::DeployingProd, vec![Effect::DeployProd])
        );
        assert_eq!(r.image, Some(image()));
        assert!(r.prod.is_none());
        assert!(
            r.approval.unwrap().decision.is_some(),
            "the approval stands"
        );
    }

    #[test]
    fn image_tags() {
        let e = new_exec();
        assert_eq!(e.image_tag(), "0123456789ab");
        let mut release = new_exec();
        release.commit.sha = String::new();
        assert!(release.image_tag().starts_with("r-"));
        assert_eq!(
            release.image_tag(),
            release.image_tag().to_ascii_lowercase()
        );
    }

    #[test]
    fn expiry_only_after_deadline() {
        let a = at(Status::AwaitingApproval);
        let early = transition(&a, Change::new(Event::ApprovalExpired, t(100), "sweeper"));
        assert!(matches!(early, Err(DomainError::NotExpired { .. })));
        let late = transition(&a, Change::new(Event::ApprovalExpired, t(3600), "sweeper")).unwrap();
        assert_eq!(late.execution.status, Status::Expired);
        assert_eq!(late.effects, vec![Effect::Notify]);
    }

    #[test]
    fn retry_restarts_the_failed_stage() {
        let (r, fx) = step(&at(Status::BuildFailed), Event::Retry);
        assert_eq!((r.status, fx), (Status::Received, vec![Effect::StartBuild]));
        assert_eq!(r.attempt, 2);
        assert!(r.build_id.is_none() && r.failure.is_none());
        assert_eq!(r.commit, new_exec().commit);

        let (r, fx) = step(&at(Status::TestFailed), Event::Retry);
        assert_eq!((r.status, fx), (Status::Built, vec![Effect::DeployTest]));
        assert_eq!(r.image, Some(image()), "redeploys the same digest");
        assert!(r.test.is_none());
        // and the redeploy can proceed
        let (r, _) = step(
            &r,
            Event::DeployStarted {
                deployment: deployment(Environment::Test, "ecs-svc/9"),
            },
        );
        assert_eq!(r.status, Status::DeployingTest);
        assert_eq!(r.awaited(), Some(Link::Deployment("ecs-svc/9".into())));
    }

    #[test]
    fn a_retried_build_waits_on_nothing_until_the_new_build_starts() {
        let failed = at(Status::BuildFailed);
        let (r, _) = step(&failed, Event::Retry);
        assert_eq!(r.awaited(), None);
        let (r, _) = step(
            &r,
            Event::BuildStarted {
                build_id: "b2".into(),
            },
        );
        assert_eq!(r.awaited(), Some(Link::Build("b2".into())));
    }

    #[test]
    fn repeated_events_are_already_applied_or_illegal() {
        let building = at(Status::Building);
        assert_eq!(
            apply(
                &building,
                Event::BuildStarted {
                    build_id: "b1".into()
                }
            ),
            Err(DomainError::AlreadyApplied {
                event: "BuildStarted"
            })
        );
        let progressed = step(
            &building,
            Event::BuildProgress {
                phase: "BUILD".into(),
            },
        )
        .0;
        assert_eq!(
            apply(
                &progressed,
                Event::BuildProgress {
                    phase: "BUILD".into()
                }
            ),
            Err(DomainError::AlreadyApplied {
                event: "BuildProgress"
            })
        );
        // second SUCCEEDED after the first moved on
        assert!(matches!(
            apply(
                &at(Status::Built),
                Event::BuildSucceeded {
                    image: image(),
                    resolved_sha: None,
                    note: None
                }
            ),
            Err(DomainError::IllegalTransition {
                status: Status::Built,
                ..
            })
        ));
        // a repeated prod DeployStarted
        assert_eq!(
            apply(
                &at(Status::DeployingProd),
                Event::DeployStarted {
                    deployment: deployment(Environment::Prod, "ecs-svc/2")
                }
            ),
            Err(DomainError::AlreadyApplied {
                event: "DeployStarted"
            })
        );
        // completion of a deployment that is not ours
        assert!(matches!(
            apply(
                &at(Status::DeployingTest),
                Event::DeployCompleted {
                    deployment_id: "ecs-svc/other".into(),
                    approval: grant()
                }
            ),
            Err(DomainError::UnknownDeployment { .. })
        ));
        // a test completion without an approval round
        assert_eq!(
            apply(
                &at(Status::DeployingTest),
                Event::DeployCompleted {
                    deployment_id: "ecs-svc/1".into(),
                    approval: None
                }
            ),
            Err(DomainError::MissingApproval)
        );
        // second decision
        assert!(matches!(
            apply(
                &at(Status::DeployingProd),
                Event::Decided {
                    decision: decision(Verdict::Approve)
                }
            ),
            Err(DomainError::IllegalTransition { .. })
        ));
    }

    #[test]
    fn illegal_transitions_table() {
        // (state, event) pairs that must be refused.
        let ev = |name: &str| -> Event {
            match name {
                "BuildStarted" => Event::BuildStarted {
                    build_id: "b2".into(),
                },
                "BuildStartFailed" => Event::BuildStartFailed { reason: "x".into() },
                "BuildProgress" => Event::BuildProgress { phase: "X".into() },
                "BuildSucceeded" => Event::BuildSucceeded {
                    image: image(),
                    resolved_sha: None,
                    note: None,
                },
                "BuildFailed" => Event::BuildFailed {
                    status: "FAILED".into(),
                    phase: None,
                    reason: "x".into(),
                    link: None,
                },
                "DeployStartedTest" => Event::DeployStarted {
                    deployment: deployment(Environment::Test, "ecs-svc/1"),
                },
                "DeployStartedProd" => Event::DeployStarted {
                    deployment: deployment(Environment::Prod, "ecs-svc/3"),
                },
                "DeployStartFailedTest" => Event::DeployStartFailed {
                    environment: Environment::Test,
                    reason: "x".into(),
                },
                "DeployStartFailedProd" => Event::DeployStartFailed {
                    environment: Environment::Prod,
                    reason: "x".into(),
                },
                "DeployCompleted" => Event::DeployCompleted {
                    deployment_id: "ecs-svc/1".into(),
                    approval: grant(),
                },
                "DeployFailed" => Event::DeployFailed {
                    deployment_id: "ecs-svc/1".into(),
                    reason: "x".into(),
                },
                "DeployReplaced" => Event::DeployReplaced {
                    deployment_id: "ecs-svc/1".into(),
                },
                "Approve" => Event::Decided {
                    decision: decision(Verdict::Approve),
                },
                "ApprovalRequested" => Event::ApprovalRequested {
                    message_id: "m".into(),
                },
                "ApprovalExpired" => Event::ApprovalExpired,
                "Superseded" => Event::Superseded {
                    by: ExecutionId::generate(t(1)),
                },
                "RolledBack" => Event::RolledBack {
                    by: ExecutionId::generate(t(1)),
                },
                "Retry" => Event::Retry,
                other => panic!("unknown {other}"),
            }
        };
        let all_events = [
            "BuildStarted",
            "BuildStartFailed",
            "BuildProgress",
            "BuildSucceeded",
            "BuildFailed",
            "DeployStartedTest",
            "DeployStartedProd",
            "DeployStartFailedTest",
            "DeployStartFailedProd",
            "DeployCompleted",
            "DeployFailed",
            "DeployReplaced",
            "Approve",
            "ApprovalRequested",
            "ApprovalExpired",
            "Superseded",
            "RolledBack",
            "Retry",
        ];
        // The events each state accepts; every other one must be refused.
        let legal: &[(Status, &[&str])] = &[
            (Status::Received, &["BuildStarted", "BuildStartFailed"]),
            (
                Status::Building,
                &["BuildProgress", "BuildSucceeded", "BuildFailed"],
            ),
            (
                Status::Built,
                &["DeployStartedTest", "DeployStartFailedTest"],
            ),
            (
                Status::DeployingTest,
                &["DeployCompleted", "DeployFailed", "DeployReplaced"],
            ),
            (
                Status::AwaitingApproval,
                &[
                    "Approve",
                    "ApprovalRequested",
                    "ApprovalExpired",
                    "Superseded",
                ],
            ),
            // at(DeployingProd) already has its prod deployment recorded (ecs-svc/2)
            (Status::DeployingProd, &[]),
            (Status::Succeeded, &["RolledBack"]),
            (Status::BuildFailed, &["Retry"]),
            (Status::TestFailed, &["Retry"]),
            (Status::Rejected, &[]),
            (Status::Expired, &[]),
            (Status::Superseded, &[]),
            (Status::ProdFailed, &["RolledBack", "Retry"]),
            (Status::RolledBack, &[]),
        ];
        assert_eq!(legal.len(), Status::ALL.len(), "every state is covered");
        let mut refused = 0;
        for (status, ok) in legal {
            let exec = at(*status);
            assert_eq!(exec.status, *status);
            for name in all_events {
                let result = transition(&exec, Change::new(ev(name), t(10_000), "test"));
                if ok.contains(&name) {
                    assert!(
                        result.is_ok(),
                        "{status} + {name} should be legal: {result:?}"
                    );
                } else {
                    assert!(result.is_err(), "{status} + {name} should be refused");
                    refused += 1;
                }
            }
        }
        assert!(refused > 180, "refused {refused}");
    }

    #[test]
    fn terminal_states_accept_nothing_but_rollback_or_retry() {
        for s in Status::ALL {
            if !s.is_active() {
                assert!(matches!(
                    s,
                    Status::Succeeded
                        | Status::BuildFailed
                        | Status::TestFailed
                        | Status::Rejected
                        | Status::Expired
                        | Status::Superseded
                        | Status::ProdFailed
                        | Status::RolledBack
                ));
            }
        }
        assert!(Status::BuildFailed.is_failure());
        assert!(!Status::Rejected.is_failure());
    }

    #[test]
    fn rollback_execution_owes_its_deployment_and_succeeds_on_completion() {
        let restored_exec = at(Status::Succeeded);
        let restored =
            crate::domain::DeployedRevision::completed(&restored_exec, Environment::Prod, t(100))
                .unwrap();
        let rb = Execution::rollback(
            ExecutionId::generate(t(200)),
            "hello",
            Environment::Prod,
            &restored,
            Some(ExecutionId::generate(t(150))),
            t(200),
            "arn:aws:iam::123456789012:user/ops",
        );
        assert_eq!(rb.status, Status::DeployingProd);
        assert!(rb.prod.is_none());
        assert_eq!(pending_effects(&rb), vec![Effect::DeployProd]);
        assert_eq!(rb.history.len(), 1);
        assert_eq!(rb.history[0].to, Status::DeployingProd);
        assert!(rb.history[0].cause.starts_with("rollback of prod"));
        assert_eq!(rb.image, restored_exec.image);
        assert_eq!(
            rb.restores_task_definition(Environment::Prod),
            Some(restored.task_definition.as_str())
        );
        assert_eq!(rb.restores_task_definition(Environment::Test), None);
        let (rb, fx) = step(
            &rb,
            Event::DeployStarted {
                deployment: deployment(Environment::Prod, "ecs-svc/7"),
            },
        );
        assert_eq!((rb.status, fx), (Status::DeployingProd, vec![]));
        let (done, fx) = step(
            &rb,
            Event::DeployCompleted {
                deployment_id: "ecs-svc/7".into(),
                approval: None,
            },
        );
        assert_eq!(
            (done.status, fx),
            (
                Status::Succeeded,
                vec![
                    Effect::RecordRevision(Environment::Prod),
                    Effect::MarkRolledBack
                ]
            )
        );
        // a rollback that fails is not retried (roll back again instead)
        let (failed, _) = step(
            &rb,
            Event::DeployFailed {
                deployment_id: "ecs-svc/7".into(),
                reason: "circuit breaker".into(),
            },
        );
        assert_eq!(failed.status, Status::ProdFailed);
        assert!(matches!(
            transition(&failed, Change::new(Event::Retry, t(300), "ops")),
            Err(DomainError::CannotRetry(_))
        ));

        let rb_test = Execution::rollback(
            ExecutionId::generate(t(201)),
            "hello",
            Environment::Test,
            &restored,
            None,
            t(201),
            "ops",
        );
        assert_eq!(rb_test.status, Status::Built);
        assert_eq!(pending_effects(&rb_test), vec![Effect::DeployTest]);
        let (rb_test, _) = step(
            &rb_test,
            Event::DeployStarted {
                deployment: deployment(Environment::Test, "ecs-svc/8"),
            },
        );
        let (done, fx) = step(
            &rb_test,
            Event::DeployCompleted {
                deployment_id: "ecs-svc/8".into(),
                approval: None,
            },
        );
        assert_eq!(
            (done.status, fx),
            (
                Status::Succeeded,
                vec![Effect::RecordRevision(Environment::Test)]
            )
        );
    }

    #[test]
    fn ids_statuses_and_environments_parse() {
        let id = ExecutionId::generate(t(0));
        assert_eq!(id.as_str().len(), 26);
        assert_eq!(id.as_str().parse::<ExecutionId>().unwrap(), id);
        assert!("nope".parse::<ExecutionId>().is_err());
        assert!(
            ExecutionId::generate(t(0)) < ExecutionId::generate(t(1)),
            "ids sort by time"
        );
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert_eq!("PROD".parse::<Environment>().unwrap(), Environment::Prod);
        assert!("staging".parse::<Environment>().is_err());
    }

    #[test]
    fn commit_helpers() {
        let c = new_exec().commit;
        assert_eq!(c.short_sha(), "0123456789ab");
        assert_eq!(c.title(), "Add health check");
        let short = Commit {
            sha: "abc".into(),
            ..Default::default()
        };
        assert_eq!(short.short_sha(), "abc");
        assert_eq!(short.title(), "");
    }

    #[test]
    fn execution_json_round_trip() {
        let e = at(Status::Succeeded);
        let json = serde_json::to_string(&e).unwrap();
        let back: Execution = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["status"], "SUCCEEDED");
        assert_eq!(v["trigger"]["kind"], "github_push");
        assert_eq!(v["approval"]["decision"]["channel"], "email-link");
    }
}
