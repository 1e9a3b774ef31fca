//! The execution state machine. A transition is a pure function
//! `(Execution, Change) -> Result<Transition, DomainError>`; the caller persists the new execution
//! with a conditional write on `(status, version)` and, only if that write won, performs the
//! returned effects.

use chrono::{DateTime, Utc};

use super::super::verify::{CheckResult, Verification};
use super::{
    channel_name, Approval, Decision, DeploymentRecord, Environment, Execution, ExecutionId,
    Failure, HistoryEntry, ImageRef, Stage, Status, Verdict,
};

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
    /// A person decided for a pipeline that needs `required` distinct approvers: an approval
    /// is counted (once per approver) and decides when it is the `required`-th; a rejection
    /// decides at once.
    ///
    /// `listed`: the pipeline's approvers (e-mail) when the decision is made; an earlier
    /// approval of someone no longer listed is kept in the record but does not count. Empty:
    /// every approval counts.
    Counted {
        decision: Decision,
        required: u32,
        listed: Vec<String>,
    },
    /// The approval window closed.
    ApprovalExpired,
    /// A newer execution of the pipeline now awaits approval.
    Superseded { by: ExecutionId },
    /// The environment was pointed back at an earlier revision by execution `by`.
    RolledBack { by: ExecutionId },
    /// An operator restarts a failed execution from its failed stage.
    Retry,
    /// ECS reported the deployment complete and the pipeline verifies this environment: the
    /// verification starts (sent instead of `DeployCompleted`; never for a rollback).
    VerifyStarted {
        deployment_id: String,
        /// Production: the bake after the check passed, and the alarms watched during it.
        bake_seconds: u32,
        alarms: Vec<String>,
    },
    /// Check attempt `attempt` (1-based) did not pass; more remain.
    CheckAttempted {
        environment: Environment,
        attempt: u32,
        result: CheckResult,
    },
    /// The check passed at attempt `attempt` (`result` is `None` for a bake-only production
    /// verification). Test: `approval` opens the approval round.
    CheckPassed {
        environment: Environment,
        attempt: u32,
        result: Option<CheckResult>,
        approval: Option<ApprovalGrant>,
    },
    /// The verification failed: the last attempt, its overall time, or an alarm in the bake.
    VerifyFailed {
        environment: Environment,
        reason: String,
        result: Option<CheckResult>,
    },
    /// The production bake ended with every watched alarm OK.
    BakePassed,
    /// The automatic rollback after a failed production verification was started (execution
    /// `by`).
    AutoRollbackStarted { by: ExecutionId },
    /// ECS blue/green: ECS invoked shipgate's lifecycle hook at `POST_TEST_TRAFFIC_SHIFT` for
    /// the production deployment `deployment_id`; the verification of the green revision
    /// `target_revision` through the test listener starts (production traffic still goes to
    /// the blue revision; ECS completes the deployment after the hook answered SUCCEEDED).
    GreenVerifyStarted {
        deployment_id: String,
        target_revision: String,
        bake_seconds: u32,
        alarms: Vec<String>,
    },
    /// A verification with a smoke test: the HTTP check of `environment` passed at `attempt`
    /// (`result` is `None` without a URL); the smoke build of `project` is to be started.
    SmokeRequested {
        environment: Environment,
        attempt: u32,
        result: Option<CheckResult>,
        project: String,
        target_url: String,
        timeout_minutes: u32,
    },
    /// `codebuild:StartBuild` of the smoke test answered this build id.
    SmokeStarted { build_id: String },
    /// CodeBuild reported the smoke build finished with `status`. `approval` opens the
    /// approval round when a test smoke build succeeded (production: `None`).
    SmokeFinished {
        build_id: String,
        status: String,
        reason: Option<String>,
        link: Option<String>,
        approval: Option<ApprovalGrant>,
    },
    /// The smoke build never reported within its timeout (a resumed verification step).
    SmokeTimedOut,
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
            Event::Counted { .. } => "Counted",
            Event::ApprovalExpired => "ApprovalExpired",
            Event::Superseded { .. } => "Superseded",
            Event::RolledBack { .. } => "RolledBack",
            Event::Retry => "Retry",
            Event::VerifyStarted { .. } => "VerifyStarted",
            Event::CheckAttempted { .. } => "CheckAttempted",
            Event::CheckPassed { .. } => "CheckPassed",
            Event::VerifyFailed { .. } => "VerifyFailed",
            Event::BakePassed => "BakePassed",
            Event::AutoRollbackStarted { .. } => "AutoRollbackStarted",
            Event::GreenVerifyStarted { .. } => "GreenVerifyStarted",
            Event::SmokeRequested { .. } => "SmokeRequested",
            Event::SmokeStarted { .. } => "SmokeStarted",
            Event::SmokeFinished { .. } => "SmokeFinished",
            Event::SmokeTimedOut => "SmokeTimedOut",
        }
    }

    /// An event of the smoke test phase ([`smoke_transition`](super::smoke_transition)).
    pub fn is_smoke(&self) -> bool {
        matches!(
            self,
            Event::SmokeRequested { .. }
                | Event::SmokeStarted { .. }
                | Event::SmokeFinished { .. }
                | Event::SmokeTimedOut
        )
    }
}

/// Nonce and expiry of a new approval round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalGrant {
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
}

impl ApprovalGrant {
    /// The approval round this grant opens at `at`: nothing decided, nothing sent yet.
    pub(crate) fn open(self, at: DateTime<Utc>) -> Approval {
        Approval {
            nonce: self.nonce,
            requested_at: at,
            expires_at: self.expires_at,
            message_id: None,
            decision: None,
            approvals: Vec::new(),
            required: 0,
        }
    }
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
    /// Report the stored transition `from` → `to` to GitHub (commit statuses, deployments;
    /// see [`crate::domain::feedback`]). Added by the engine to the effects of a transition it
    /// stored, never owed again ([`pending_effects`]): best effort, at most once.
    CommitFeedback { from: Status, to: Status },
    /// Run the environment's verification (HTTP check attempts, bake) in bounded steps.
    Verify(Environment),
    /// A failed production verification: roll production back to the last good release
    /// (`releases::rollback`).
    AutoRollback,
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
    UnknownDeployment { expected: Environment, got: String },
    #[error("a test deployment completed but no approval round was supplied")]
    MissingApproval,
    #[error("the approval does not expire until {expires_at}")]
    NotExpired { expires_at: DateTime<Utc> },
    #[error("retry needs {0}")]
    CannotRetry(&'static str),
    #[error("the bake lasts until {until}")]
    BakeNotOver { until: DateTime<Utc> },
    #[error("build {got} is not this execution's smoke test build")]
    UnknownSmokeBuild { got: String },
    #[error("the smoke test may run until {until}")]
    SmokeNotOver { until: DateTime<Utc> },
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
        Status::VerifyingTest => vec![Effect::Verify(Environment::Test)],
        Status::VerifyingProd | Status::BakingProd => vec![Effect::Verify(Environment::Prod)],
        // (a green revision that failed its blue/green check is rolled back by ECS itself)
        Status::ProdFailed
            if exec
                .verify_prod
                .as_ref()
                .is_some_and(|v| v.failed && v.rollback.is_none() && !v.rolled_back_by_ecs()) =>
        {
            vec![Effect::AutoRollback]
        }
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
                stage: Stage::Build,
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
                stage: Stage::Build,
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
                stage: Stage::Test,
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
                stage: Stage::Prod,
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
            expect_deployment(exec, Environment::Test, &deployment_id)?;
            if exec.trigger.is_rollback() {
                (
                    S::Succeeded,
                    format!("test rollback deployment {deployment_id} completed"),
                    vec![Effect::RecordRevision(Environment::Test)],
                )
            } else {
                let grant = approval.ok_or(DomainError::MissingApproval)?;
                next.approval = Some(grant.open(change.at));
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
            expect_deployment(exec, Environment::Prod, &deployment_id)?;
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
            expect_deployment(exec, Environment::Test, &deployment_id)?;
            next.failure = Some(Failure {
                stage: Stage::Test,
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
            expect_deployment(exec, Environment::Prod, &deployment_id)?;
            next.failure = Some(Failure {
                stage: Stage::Prod,
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
            expect_deployment(exec, Environment::Test, &deployment_id)?;
            (S::Superseded, format!("test deployment {deployment_id} was replaced by another deployment before it completed"), vec![])
        }
        (S::DeployingProd, Event::DeployReplaced { deployment_id }) => {
            expect_deployment(exec, Environment::Prod, &deployment_id)?;
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
        (
            S::AwaitingApproval,
            Event::Counted {
                decision,
                required,
                listed,
            },
        ) => {
            let Some(approval) = next.approval.as_mut() else {
                return Err(illegal());
            };
            let key = |d: &Decision| d.approver.clone().unwrap_or_else(|| d.actor.clone());
            let who = format!("{} via {}", key(&decision), channel_name(decision.channel));
            let comment = decision
                .comment
                .as_deref()
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            match decision.verdict {
                Verdict::Reject => {
                    approval.decision = Some(decision);
                    (S::Rejected, format!("rejected by {who}{comment}"), vec![])
                }
                Verdict::Approve => {
                    // the same person twice counts once
                    if approval.approvals.iter().any(|d| key(d) == key(&decision)) {
                        return Err(DomainError::AlreadyApplied { event: name });
                    }
                    approval.approvals.push(decision.clone());
                    approval.required = required;
                    // an approver removed from the pipeline since approving no longer counts
                    let count = approval
                        .approvals
                        .iter()
                        .filter(|d| {
                            listed.is_empty()
                                || d.approver.as_ref().is_some_and(|a| listed.contains(a))
                        })
                        .count();
                    if count as u32 >= required.max(1) {
                        approval.decision = Some(decision);
                        (
                            S::DeployingProd,
                            format!("approved by {who}{comment} ({count} of {required} approvals)"),
                            vec![Effect::DeployProd, Effect::SupersedeOlder],
                        )
                    } else {
                        (
                            S::AwaitingApproval,
                            format!("approval {count} of {required} by {who}{comment}"),
                            vec![],
                        )
                    }
                }
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
            next.verify_test = None;
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
            next.verify_prod = None;
            next.failure = None;
            (
                S::DeployingProd,
                format!("retry {} of the approved prod deployment", next.attempt),
                vec![Effect::DeployProd],
            )
        }
        (status, event) if event.is_smoke() => {
            match super::smoke_transition::smoke(exec, &mut next, status, event, &change.at)? {
                Some(decided) => decided,
                None => return Err(illegal()),
            }
        }
        (status, event) => match verification(exec, &mut next, status, event, &change.at)? {
            Some(decided) => decided,
            None => return Err(illegal()),
        },
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

/// The transitions of verified promotion (`VERIFYING_TEST`, `VERIFYING_PROD`, `BAKING_PROD`);
/// `None`: the change does not apply.
fn verification(
    exec: &Execution,
    next: &mut Execution,
    status: Status,
    event: Event,
    at: &DateTime<Utc>,
) -> Result<Option<(Status, String, Vec<Effect>)>, DomainError> {
    use Status as S;
    let name = event.name();
    let env_status = |env: Environment| match env {
        Environment::Test => S::VerifyingTest,
        Environment::Prod => S::VerifyingProd,
    };
    // the next attempt must be the one after those recorded; a repeated one is applied already
    let check_attempt = |env: Environment, attempt: u32| -> Result<bool, DomainError> {
        let done = exec.verification(env).map(|v| v.attempts).unwrap_or(0);
        if attempt <= done {
            return Err(DomainError::AlreadyApplied { event: name });
        }
        Ok(attempt == done + 1)
    };
    let record =
        |next: &mut Execution, env: Environment, attempt: u32, result: Option<CheckResult>| {
            let v = match env {
                Environment::Test => next.verify_test.as_mut(),
                Environment::Prod => next.verify_prod.as_mut(),
            };
            if let Some(v) = v {
                v.attempts = v.attempts.max(attempt);
                if result.is_some() {
                    v.last = result;
                }
            }
        };
    Ok(Some(match (status, event) {
        (
            S::DeployingTest | S::DeployingProd,
            Event::VerifyStarted {
                deployment_id,
                bake_seconds,
                alarms,
            },
        ) if !exec.trigger.is_rollback() => {
            let env = if status == S::DeployingTest {
                Environment::Test
            } else {
                Environment::Prod
            };
            expect_deployment(exec, env, &deployment_id)?;
            let v = Verification {
                started_at: *at,
                attempts: 0,
                last: None,
                passed_at: None,
                bake_seconds: if env == Environment::Prod {
                    bake_seconds
                } else {
                    0
                },
                bake_until: None,
                alarms: if env == Environment::Prod {
                    alarms
                } else {
                    vec![]
                },
                failed: false,
                rollback: None,
                green: None,
                smoke: None,
            };
            match env {
                Environment::Test => next.verify_test = Some(Box::new(v)),
                Environment::Prod => next.verify_prod = Some(Box::new(v)),
            }
            (
                env_status(env),
                format!("{env} deployment {deployment_id} completed; verifying {env}"),
                vec![Effect::RecordRevision(env), Effect::Verify(env)],
            )
        }
        (
            S::DeployingProd,
            Event::GreenVerifyStarted {
                deployment_id,
                target_revision,
                bake_seconds,
                alarms,
            },
        ) if !exec.trigger.is_rollback() => {
            expect_deployment(exec, Environment::Prod, &deployment_id)?;
            next.verify_prod = Some(Box::new(Verification {
                started_at: *at,
                attempts: 0,
                last: None,
                passed_at: None,
                bake_seconds,
                bake_until: None,
                alarms,
                failed: false,
                rollback: None,
                green: Some(target_revision.clone()),
                smoke: None,
            }));
            // no effect: ECS's hook invocations drive the checks; nothing runs in prod yet
            (
                S::VerifyingProd,
                format!("blue/green: verifying green revision {target_revision} of prod deployment {deployment_id} through the test listener"),
                vec![],
            )
        }
        (
            S::VerifyingProd,
            Event::GreenVerifyStarted {
                target_revision, ..
            },
        ) if exec
            .verify_prod
            .as_ref()
            .is_some_and(|v| v.green.as_deref() == Some(target_revision.as_str())) =>
        {
            return Err(DomainError::AlreadyApplied { event: name });
        }
        // blue/green: ECS completed the deployment whose green revision passed the hook's check
        (
            S::VerifyingProd,
            Event::VerifyStarted { deployment_id, .. }
            | Event::DeployCompleted { deployment_id, .. },
        ) if exec.verify_prod.as_ref().is_some_and(|v| v.green_passed()) => {
            expect_deployment(exec, Environment::Prod, &deployment_id)?;
            let bake = exec
                .verify_prod
                .as_ref()
                .map(|v| v.bake_seconds)
                .unwrap_or(0);
            if bake > 0 {
                if let Some(v) = next.verify_prod.as_mut() {
                    v.bake_until = Some(*at + chrono::Duration::seconds(i64::from(bake)));
                }
                (
                    S::BakingProd,
                    format!("prod deployment {deployment_id} completed (green revision verified before it took traffic); baking for {bake} s"),
                    vec![Effect::RecordRevision(Environment::Prod), Effect::Verify(Environment::Prod)],
                )
            } else {
                (
                    S::Succeeded,
                    format!("prod deployment {deployment_id} completed (green revision verified before it took traffic)"),
                    vec![Effect::RecordRevision(Environment::Prod)],
                )
            }
        }
        // blue/green: ECS completed the deployment although its green revision never passed
        // the hook's check (a hook configured to continue on timeout, or not invoked):
        // production traffic is on an unverified revision, so it is verified now like a
        // rolling deployment (a failure rolls back automatically)
        (
            S::VerifyingProd,
            Event::VerifyStarted { deployment_id, .. }
            | Event::DeployCompleted { deployment_id, .. },
        ) if exec
            .verify_prod
            .as_ref()
            .is_some_and(|v| v.green.is_some() && !v.green_passed() && !v.failed) =>
        {
            expect_deployment(exec, Environment::Prod, &deployment_id)?;
            if let Some(v) = next.verify_prod.as_mut() {
                v.green = None;
                v.attempts = 0;
                v.last = None;
                v.passed_at = None;
                v.started_at = *at;
            }
            (
                S::VerifyingProd,
                format!("prod deployment {deployment_id} completed before its green revision passed the lifecycle hook's check; verifying prod after the traffic shift"),
                // ECS runs it now: recorded as what prod runs (so a rollback knows what it
                // moves away from), then verified
                vec![Effect::RecordRevision(Environment::Prod), Effect::Verify(Environment::Prod)],
            )
        }
        // blue/green: ECS gave up on the deployment (its own rollback, a hook timeout)
        (
            S::VerifyingProd,
            Event::DeployFailed {
                deployment_id,
                reason,
            },
        ) if exec.verify_prod.as_ref().is_some_and(|v| v.green.is_some()) => {
            expect_deployment(exec, Environment::Prod, &deployment_id)?;
            next.failure = Some(Failure {
                stage: Stage::Prod,
                reason: reason.clone(),
                link: None,
            });
            (
                S::ProdFailed,
                format!("prod deployment {deployment_id} failed: {reason}"),
                vec![Effect::RecordFailure(Environment::Prod), Effect::Notify],
            )
        }
        (S::VerifyingTest | S::VerifyingProd, Event::VerifyStarted { deployment_id, .. }) => {
            let env = if status == S::VerifyingTest {
                Environment::Test
            } else {
                Environment::Prod
            };
            expect_deployment(exec, env, &deployment_id)?;
            return Err(DomainError::AlreadyApplied { event: name });
        }
        (
            s,
            Event::CheckAttempted {
                environment,
                attempt,
                result,
            },
        ) if s == env_status(environment) => {
            if !check_attempt(environment, attempt)? {
                return Ok(None);
            }
            let cause = format!(
                "{environment} check attempt {attempt}: {}",
                result.describe()
            );
            record(next, environment, attempt, Some(result));
            (s, cause, vec![])
        }
        (
            S::VerifyingTest,
            Event::CheckPassed {
                environment: Environment::Test,
                attempt,
                result,
                approval,
            },
        ) => {
            if !check_attempt(Environment::Test, attempt)? {
                return Ok(None);
            }
            let grant = approval.ok_or(DomainError::MissingApproval)?;
            let what = result.as_ref().map(|r| r.describe()).unwrap_or_default();
            record(next, Environment::Test, attempt, result);
            if let Some(v) = next.verify_test.as_mut() {
                v.passed_at = Some(*at);
            }
            next.approval = Some(grant.open(*at));
            (
                S::AwaitingApproval,
                format!("test verified: {what}; approval requested"),
                vec![
                    Effect::RecordRevision(Environment::Test),
                    Effect::SupersedeOlder,
                    Effect::RequestApproval,
                ],
            )
        }
        (
            S::VerifyingProd,
            Event::CheckPassed {
                environment: Environment::Prod,
                attempt,
                result,
                ..
            },
        ) => {
            if !check_attempt(Environment::Prod, attempt)? {
                return Ok(None);
            }
            let what = result
                .as_ref()
                .map(|r| r.describe())
                .unwrap_or_else(|| "no HTTP check".into());
            record(next, Environment::Prod, attempt, result);
            if exec.verify_prod.as_ref().is_some_and(|v| v.green.is_some()) {
                if let Some(v) = next.verify_prod.as_mut() {
                    v.passed_at = Some(*at);
                }
                return Ok(Some((
                    S::VerifyingProd,
                    format!("prod green revision verified through the test listener: {what}; ECS shifts production traffic"),
                    vec![],
                )));
            }
            prod_verified(exec, next, at, &what)
        }
        (
            s,
            Event::VerifyFailed {
                environment,
                reason,
                result,
            },
        ) if s == env_status(environment)
            || (s == S::BakingProd && environment == Environment::Prod) =>
        {
            let attempt = exec
                .verification(environment)
                .map(|v| v.attempts)
                .unwrap_or(0)
                + u32::from(result.is_some());
            record(next, environment, attempt, result);
            let stage = match environment {
                Environment::Test => Stage::Test,
                Environment::Prod => Stage::Prod,
            };
            next.failure = Some(Failure {
                stage,
                reason: reason.clone(),
                link: None,
            });
            match environment {
                Environment::Test => (
                    S::TestFailed,
                    format!("test verification failed: {reason}"),
                    vec![Effect::Notify],
                ),
                Environment::Prod => {
                    if let Some(v) = next.verify_prod.as_mut() {
                        v.failed = true;
                    }
                    if s == S::VerifyingProd
                        && exec.verify_prod.as_ref().is_some_and(|v| v.green.is_some())
                    {
                        // the hook answers FAILED: ECS rolls back to the blue revision, which
                        // still takes all production traffic
                        return Ok(Some((
                            S::ProdFailed,
                            format!("prod verification of the green revision failed: {reason}; ECS rolls production back to the previous revision"),
                            vec![Effect::RecordFailure(Environment::Prod), Effect::Notify],
                        )));
                    }
                    prod_verify_failed(next, &reason, None)
                }
            }
        }
        (S::BakingProd, Event::BakePassed) => {
            let until = exec.verify_prod.as_ref().and_then(|v| v.bake_until);
            if let Some(until) = until.filter(|u| at < u) {
                return Err(DomainError::BakeNotOver { until });
            }
            let alarms = exec
                .verify_prod
                .as_ref()
                .map(|v| v.alarms.len())
                .unwrap_or(0);
            (
                S::Succeeded,
                format!("prod bake passed ({alarms} alarm(s) watched, none in ALARM)"),
                vec![Effect::RecordRevision(Environment::Prod)],
            )
        }
        (S::ProdFailed, Event::AutoRollbackStarted { by })
            if exec
                .verify_prod
                .as_ref()
                .is_some_and(|v| v.failed && !v.rolled_back_by_ecs()) =>
        {
            if exec
                .verify_prod
                .as_ref()
                .is_some_and(|v| v.rollback.is_some())
            {
                return Err(DomainError::AlreadyApplied { event: name });
            }
            if let Some(v) = next.verify_prod.as_mut() {
                v.rollback = Some(by.clone());
            }
            (
                S::ProdFailed,
                format!("automatic rollback started: execution {by}"),
                vec![],
            )
        }
        _ => return Ok(None),
    }))
}

/// A production verification passed (its HTTP check, or its smoke test): the bake starts, or
/// without one the release succeeded.
pub(super) fn prod_verified(
    exec: &Execution,
    next: &mut Execution,
    at: &DateTime<Utc>,
    what: &str,
) -> (Status, String, Vec<Effect>) {
    let bake = exec
        .verify_prod
        .as_ref()
        .map(|v| v.bake_seconds)
        .unwrap_or(0);
    if let Some(v) = next.verify_prod.as_mut() {
        v.passed_at = Some(*at);
        if bake > 0 {
            v.bake_until = Some(*at + chrono::Duration::seconds(i64::from(bake)));
        }
    }
    if bake > 0 {
        (
            Status::BakingProd,
            format!("prod verified: {what}; baking for {bake} s"),
            vec![Effect::Verify(Environment::Prod)],
        )
    } else {
        (
            Status::Succeeded,
            format!("prod verified: {what}"),
            vec![Effect::RecordRevision(Environment::Prod)],
        )
    }
}

/// A production verification failed (not a blue/green one, which ECS rolls back): production
/// is rolled back automatically to the last good release.
pub(super) fn prod_verify_failed(
    next: &mut Execution,
    reason: &str,
    link: Option<String>,
) -> (Status, String, Vec<Effect>) {
    if let Some(v) = next.verify_prod.as_mut() {
        v.failed = true;
    }
    next.failure = Some(Failure {
        stage: Stage::Prod,
        reason: reason.to_string(),
        link,
    });
    (
        Status::ProdFailed,
        format!("prod verification failed: {reason}; rolling back automatically"),
        vec![Effect::AutoRollback, Effect::Notify],
    )
}

/// `got` must be the deployment the execution started to `expected`.
fn expect_deployment(
    exec: &Execution,
    expected: Environment,
    got: &str,
) -> Result<(), DomainError> {
    match exec.deployment(expected) {
        Some(d) if d.deployment_id == got => Ok(()),
        _ => Err(DomainError::UnknownDeployment {
            expected,
            got: got.to_string(),
        }),
    }
}

#[cfg(test)]
#[path = "transition_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "refusal_tests.rs"]
mod refusal_tests;

#[cfg(test)]
#[path = "verify_transition_tests.rs"]
mod verify_transition_tests;

#[cfg(test)]
#[path = "bluegreen_transition_tests.rs"]
mod bluegreen_transition_tests;
