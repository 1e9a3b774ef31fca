//! Executions: ids, statuses, commits, triggers, the records an execution keeps, and the
//! `Execution` itself. Its state machine is in [`transition`] (re-exported here).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::revisions::DeployedRevision;
use super::verify::Verification;

mod smoke_transition;
pub use smoke_transition::smoke_of_build;
mod transition;
pub use transition::*;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;

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
    /// Test deployment completed; its HTTP check runs (pipelines with `verify.test`).
    VerifyingTest,
    /// Production deployment completed; its HTTP check runs (pipelines with `verify.prod`).
    VerifyingProd,
    /// Production passed its check and bakes, alarms watched, before `SUCCEEDED`.
    BakingProd,
}

impl Status {
    pub const ALL: [Status; 17] = [
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
        Status::VerifyingTest,
        Status::VerifyingProd,
        Status::BakingProd,
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
            Status::VerifyingTest => "VERIFYING_TEST",
            Status::VerifyingProd => "VERIFYING_PROD",
            Status::BakingProd => "BAKING_PROD",
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
                | Status::VerifyingTest
                | Status::VerifyingProd
                | Status::BakingProd
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

/// Error for a string that is not a status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownStatus(s.to_string()))
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

/// Error for a string that is not an environment (holds it in lower case).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown environment {0:?} (expected test or prod)")]
pub struct UnknownEnvironment(pub String);

impl FromStr for Environment {
    type Err = UnknownEnvironment;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "test" => Ok(Environment::Test),
            "prod" | "production" => Ok(Environment::Prod),
            other => Err(UnknownEnvironment(other.to_string())),
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
    /// The pipeline verifies this environment (`verify`) as this deployment started: its
    /// completion starts the verification (read so a completion costs no pipeline read
    /// otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verify: bool,
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

pub fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::EmailLink => "email link",
        Channel::Cli => "cli",
        Channel::Console => "console",
    }
}

/// A recorded approval decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub actor: String,
    /// The pipeline approver (e-mail) the actor was matched to, when the pipeline lists them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
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
    /// Approvals counted so far when a pipeline needs more than one (distinct approvers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Decision>,
    /// How many distinct approvals the pipeline needed when the first was counted (0: one).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub required: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The part of an execution that failed: its build, or its deployment to test or to production.
/// Stored as `build`, `test` or `prod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Build,
    Test,
    Prod,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Build, Stage::Test, Stage::Prod];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Build => "build",
            Stage::Test => "test",
            Stage::Prod => "prod",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a string that is not a stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stage {0:?} (expected build, test or prod)")]
pub struct UnknownStage(pub String);

impl FromStr for Stage {
    type Err = UnknownStage;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownStage(s.to_string()))
    }
}

/// Why an execution failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub stage: Stage,
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
    /// The verification of the test deployment (pipelines with `verify.test`); boxed, so an
    /// execution held across awaits stays small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_test: Option<Box<Verification>>,
    /// The verification and bake of the production deployment (`verify.prod`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_prod: Option<Box<Verification>>,
    /// Who pushed or wrote the change, as its source reported it (the self-approval check);
    /// boxed like the verifications (an execution stays small).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_by: Option<Box<super::pushed_by::PushedBy>>,
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
            verify_test: None,
            verify_prod: None,
            pushed_by: None,
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

    /// The id of the AWS work this execution waits on, which its events are looked up by: a
    /// running smoke test build (test or production), else the newest of prod deployment, test deployment and build (a retry clears what comes after the
    /// retried stage, so the newest is the one the execution is in). Events for older work
    /// (a build once the test deployment started, the test deployment once prod started) no
    /// longer find the execution; its state machine would ignore them anyway.
    pub fn awaited(&self) -> Option<Link> {
        // a verification's smoke build, while it runs (its state change decides)
        let verifying = match self.status {
            Status::VerifyingTest => Some(Environment::Test),
            Status::VerifyingProd => Some(Environment::Prod),
            _ => None,
        };
        if let Some(build) = verifying
            .and_then(|env| self.verification(env))
            .and_then(|v| v.smoke.as_ref())
            .and_then(|s| s.running_build())
        {
            return Some(Link::Build(build.to_string()));
        }
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

    /// The verification of an environment, if one started.
    pub fn verification(&self, env: Environment) -> Option<&Verification> {
        match env {
            Environment::Test => self.verify_test.as_deref(),
            Environment::Prod => self.verify_prod.as_deref(),
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
