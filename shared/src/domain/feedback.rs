//! GitHub feedback: which commit statuses and deployment statuses a stored transition reports.
//!
//! Pure: [`updates`] maps one transition (`from` → the execution as stored) to the updates
//! GitHub should get, with an exhaustive `match` on [`Status`] so that a new state is a compile
//! error here until someone decides what GitHub shows for it. The engine performs them through
//! the `CommitFeedback` port (best effort, after the conditional write that won).

use serde::{Deserialize, Serialize};

use super::{Environment, Execution, Status, Verdict};

/// Per-pipeline GitHub feedback settings (`[github]` in a pipeline file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitHubFeedbackSpec {
    /// Secrets Manager name or ARN of the token: a personal access token or a GitHub App
    /// installation token (plain string, or JSON `{"token": "..."}`). Its name starts with
    /// [`GITHUB_TOKEN_SECRET_PREFIX`] (the functions may read only those).
    pub token_secret: String,
    /// REST API base: `https://api.github.com` (default) or GitHub Enterprise Server's
    /// `https://HOST/api/v3`.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// What the repository's Environments page links as the test environment (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_url: Option<String>,
    /// Likewise for production.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prod_url: Option<String>,
}

/// The only secret names the template lets the functions read for GitHub feedback.
pub const GITHUB_TOKEN_SECRET_PREFIX: &str = "shipgate/github/";
/// GitHub.com's REST API.
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";

fn default_api_url() -> String {
    DEFAULT_GITHUB_API_URL.to_string()
}

/// The name part of a secret id (a name, or an ARN `arn:aws:secretsmanager:R:A:secret:NAME`).
pub fn secret_name(id: &str) -> &str {
    match id.strip_prefix("arn:") {
        Some(_) => id.splitn(7, ':').nth(6).unwrap_or(""),
        None => id,
    }
}

/// A commit status context shipgate reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusContext {
    Build,
    Test,
    Approval,
    Prod,
}

impl StatusContext {
    pub const ALL: [StatusContext; 4] = [
        StatusContext::Build,
        StatusContext::Test,
        StatusContext::Approval,
        StatusContext::Prod,
    ];

    /// The `context` GitHub shows (and branch protection can require).
    pub fn as_str(self) -> &'static str {
        match self {
            StatusContext::Build => "shipgate/build",
            StatusContext::Test => "shipgate/test",
            StatusContext::Approval => "shipgate/approval",
            StatusContext::Prod => "shipgate/prod",
        }
    }
}

/// GitHub commit status states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitState {
    Pending,
    Success,
    Failure,
    Error,
}

/// GitHub deployment status states (the subset shipgate reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    InProgress,
    Success,
    Failure,
    Error,
}

/// Which link an update points at (resolved to a URL by the application layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedbackLink {
    /// The CodeBuild logs of the execution's build.
    BuildLogs,
    /// The ECS console page of the environment's service deployments.
    Service(Environment),
    /// The pipeline's status page (where an approver sees what waits; never the approval link
    /// itself: a commit status is readable by everyone who can read the repository).
    StatusPage,
}

/// One call GitHub should get for a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedbackUpdate {
    /// `POST /repos/{repo}/statuses/{sha}`.
    CommitStatus {
        context: StatusContext,
        state: CommitState,
        description: String,
        link: FeedbackLink,
    },
    /// A status of the execution's GitHub deployment to `environment` (created on first use).
    Deployment {
        environment: Environment,
        state: DeploymentState,
        description: String,
    },
}

/// GitHub's limit for a commit status description.
pub const MAX_DESCRIPTION_CHARS: usize = 140;

/// A description GitHub accepts: one line, at most [`MAX_DESCRIPTION_CHARS`] characters.
pub fn description(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().count() <= MAX_DESCRIPTION_CHARS {
        line
    } else {
        let mut cut: String = line.chars().take(MAX_DESCRIPTION_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// The GitHub environment name of a shipgate environment.
pub fn environment_name(env: Environment) -> &'static str {
    match env {
        Environment::Test => "test",
        Environment::Prod => "production",
    }
}

fn status(
    context: StatusContext,
    state: CommitState,
    text: &str,
    link: FeedbackLink,
) -> FeedbackUpdate {
    FeedbackUpdate::CommitStatus {
        context,
        state,
        description: description(text),
        link,
    }
}

fn deployment(environment: Environment, state: DeploymentState, text: &str) -> FeedbackUpdate {
    FeedbackUpdate::Deployment {
        environment,
        state,
        description: description(text),
    }
}

/// What GitHub hears of the stored transition `from` → `exec.status` (see the module doc).
/// A rollback reports only its deployment (it builds and tests nothing, and its commit already
/// passed those stages).
pub fn updates(from: Status, exec: &Execution) -> Vec<FeedbackUpdate> {
    use CommitState as C;
    use DeploymentState as D;
    use Environment::{Prod, Test};
    use FeedbackLink as L;
    use StatusContext as X;
    let rollback = exec.trigger.is_rollback();
    let failure = exec
        .failure
        .as_ref()
        .map(|f| f.reason.as_str())
        .unwrap_or("failed");
    let env_of_rollback = match &exec.trigger {
        super::Trigger::Rollback { environment, .. } => Some(*environment),
        _ => None,
    };
    let decided_by = exec
        .approval
        .as_ref()
        .and_then(|a| a.decision.as_ref())
        .map(|d| (d.verdict, d.actor.as_str()));
    match exec.status {
        Status::Received => match from {
            // a retried build
            Status::BuildFailed => vec![status(
                X::Build,
                C::Pending,
                "Build queued (retry)",
                L::BuildLogs,
            )],
            _ => vec![],
        },
        Status::Building if from != Status::Building => {
            vec![status(X::Build, C::Pending, "Building", L::BuildLogs)]
        }
        Status::Building => vec![],
        Status::Built if rollback => vec![],
        Status::Built => match from {
            Status::Building => vec![
                status(X::Build, C::Success, "Image built", L::BuildLogs),
                status(X::Test, C::Pending, "Deploying to test", L::Service(Test)),
            ],
            // a retried test deployment
            _ => vec![status(
                X::Test,
                C::Pending,
                "Deploying to test (retry)",
                L::Service(Test),
            )],
        },
        Status::DeployingTest => vec![deployment(Test, D::InProgress, "Deploying to test")],
        // verified promotion: ECS is done, the service is being asked what it runs
        Status::VerifyingTest if from == Status::DeployingTest => vec![status(
            X::Test,
            C::Pending,
            "Verifying the test service",
            L::Service(Test),
        )],
        Status::VerifyingTest => vec![],
        Status::VerifyingProd if from == Status::DeployingProd => vec![status(
            X::Prod,
            C::Pending,
            "Verifying production",
            L::Service(Prod),
        )],
        Status::VerifyingProd => vec![],
        Status::BakingProd if from != Status::BakingProd => vec![status(
            X::Prod,
            C::Pending,
            "Baking in production (watching alarms)",
            L::Service(Prod),
        )],
        Status::BakingProd => vec![],
        Status::AwaitingApproval => match from {
            Status::DeployingTest | Status::VerifyingTest => vec![
                status(X::Test, C::Success, "Running in test", L::Service(Test)),
                deployment(Test, D::Success, "Running in test"),
                status(
                    X::Approval,
                    C::Pending,
                    "Waiting for approval",
                    L::StatusPage,
                ),
            ],
            // the approval request was sent: nothing new to show
            _ => vec![],
        },
        Status::DeployingProd => match (from, decided_by) {
            (Status::AwaitingApproval, Some((Verdict::Approve, who))) => vec![
                status(
                    X::Approval,
                    C::Success,
                    &format!("Approved by {who}"),
                    L::StatusPage,
                ),
                status(
                    X::Prod,
                    C::Pending,
                    "Deploying to production",
                    L::Service(Prod),
                ),
            ],
            // the production deployment started (approved release or rollback)
            (Status::DeployingProd, _) => {
                vec![deployment(Prod, D::InProgress, "Deploying to production")]
            }
            // a retried production deployment
            _ if !rollback => vec![status(
                X::Prod,
                C::Pending,
                "Deploying to production (retry)",
                L::Service(Prod),
            )],
            _ => vec![],
        },
        Status::Succeeded => match (from, env_of_rollback) {
            (_, Some(env)) => vec![deployment(env, D::Success, "Rolled back to this release")],
            _ => vec![
                status(
                    X::Prod,
                    C::Success,
                    "Running in production",
                    L::Service(Prod),
                ),
                deployment(Prod, D::Success, "Running in production"),
            ],
        },
        Status::BuildFailed => vec![status(X::Build, C::Failure, failure, L::BuildLogs)],
        Status::TestFailed => vec![
            status(X::Test, C::Failure, failure, L::Service(Test)),
            deployment(Test, D::Failure, failure),
        ],
        Status::ProdFailed => {
            let mut out = vec![deployment(Prod, D::Failure, failure)];
            if !rollback {
                out.insert(0, status(X::Prod, C::Failure, failure, L::Service(Prod)));
            }
            out
        }
        Status::Rejected => {
            let who = decided_by.map(|(_, who)| who).unwrap_or("an approver");
            vec![status(
                X::Approval,
                C::Failure,
                &format!("Rejected by {who}"),
                L::StatusPage,
            )]
        }
        Status::Expired => vec![status(
            X::Approval,
            C::Error,
            "Approval expired; production unchanged",
            L::StatusPage,
        )],
        Status::Superseded => match from {
            Status::AwaitingApproval => vec![status(
                X::Approval,
                C::Error,
                "Superseded by a newer release",
                L::StatusPage,
            )],
            Status::DeployingTest => vec![
                status(
                    X::Test,
                    C::Error,
                    "Replaced by another deployment",
                    L::Service(Test),
                ),
                deployment(Test, D::Error, "Replaced by another deployment"),
            ],
            Status::DeployingProd if exec.prod.is_some() => vec![
                status(
                    X::Prod,
                    C::Error,
                    "Replaced by another deployment",
                    L::Service(Prod),
                ),
                deployment(Prod, D::Error, "Replaced by another deployment"),
            ],
            Status::DeployingProd => vec![status(
                X::Prod,
                C::Error,
                "A newer release went to production first",
                L::Service(Prod),
            )],
            _ => vec![],
        },
        // its production verification or bake failed: rolled back automatically
        Status::RolledBack if matches!(from, Status::VerifyingProd | Status::BakingProd) => vec![
            status(X::Prod, C::Failure, failure, L::Service(Prod)),
            deployment(Prod, D::Failure, failure),
        ],
        // a later rollback replaced it: the rollback's own deployment status marks this one
        // inactive on GitHub (auto_inactive)
        Status::RolledBack => vec![],
    }
}

#[cfg(test)]
#[path = "feedback_tests.rs"]
mod tests;
