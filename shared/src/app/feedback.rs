//! GitHub feedback: performing the updates [`crate::domain::feedback::updates`] chose for a
//! stored transition. Best effort: each call is retried a bounded number of times with backoff,
//! every outcome is logged (never the token), and nothing here can fail or hold a transition
//! for long — the state is already stored, and the engine runs this after the write that won.

use std::time::Duration;

use tracing::{info, warn};

use super::Services;
use crate::domain::feedback::{
    environment_name, updates, FeedbackLink, FeedbackUpdate, GitHubFeedbackSpec,
    DEFAULT_GITHUB_API_URL,
};
use crate::domain::{Environment, Execution, PipelineDefinition, Source, Status};
use crate::ports::{
    CommitStatusRequest, DeploymentRequest, DeploymentStatusRequest, FeedbackError,
    GitHubRepository, SecretValue,
};

/// Attempts per GitHub call (the first one included).
pub const MAX_ATTEMPTS: u32 = 3;
/// Backoff before the second attempt; doubled for each further one.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// A rate limit asking to wait longer than this is not waited for: the update is dropped
/// (logged) rather than holding the function.
pub const MAX_WAIT: Duration = Duration::from_secs(2);

/// All of one transition's GitHub calls together, retries included (the webhook function
/// answers GitHub within 10 s; the others have more).
pub const MAX_REPORT_TIME: Duration = Duration::from_secs(5);

/// The status page of a pipeline, if one is served. HOOK: the status page (issue 16, "Status
/// page") provides the URL builder; until it is wired here, commit statuses that would link it
/// link the test service instead.
pub fn status_page_url(_svc: &Services, _pipeline: &PipelineDefinition) -> Option<String> {
    None
}

/// Report the stored transition `from` → `to` of `exec` to the pipeline's repository.
pub async fn report(
    svc: &Services,
    exec: &Execution,
    pipeline: &PipelineDefinition,
    from: Status,
    to: Status,
) {
    let (Some(spec), Source::Github(repository)) = (&pipeline.github, &pipeline.source) else {
        return;
    };
    // the execution may have moved on since (later effects of the same invocation): report
    // the transition as it was stored
    let mut at = exec.clone();
    at.status = to;
    let planned = updates(from, &at);
    if planned.is_empty() {
        return;
    }
    let repo = GitHubRepository {
        api_url: spec.api_url.trim_end_matches('/').to_string(),
        repository: repository.clone(),
    };
    let token = match svc.secrets.get(&spec.token_secret).await {
        Ok(raw) => match token_for(&raw, &repo.api_url) {
            Ok(token) => token,
            Err(why) => {
                warn!(execution_id = %exec.id, pipeline = %pipeline.name, secret = %spec.token_secret, api_url = %repo.api_url, "GitHub feedback skipped: {why}");
                return;
            }
        },
        Err(e) => {
            warn!(execution_id = %exec.id, pipeline = %pipeline.name, secret = %spec.token_secret, error = %e, "GitHub feedback skipped: the token could not be read");
            return;
        }
    };
    let all = async {
        for update in planned {
            let what = describe(&update);
            let outcome =
                with_retries(|| send(svc, exec, pipeline, spec, &repo, &token, &update)).await;
            match outcome {
                Ok(attempts) => {
                    info!(execution_id = %exec.id, pipeline = %pipeline.name, update = %what, attempts, "GitHub feedback sent")
                }
                Err((attempts, e)) => {
                    warn!(execution_id = %exec.id, pipeline = %pipeline.name, update = %what, attempts, error = %e, "GitHub feedback not sent (best effort; the execution is unaffected)");
                    if matches!(&e, FeedbackError::Rejected(m) if m.starts_with("HTTP 401")) {
                        // an expired installation token: the next report reads the rotated one
                        svc.secrets.forget(&spec.token_secret).await;
                        break;
                    }
                }
            }
        }
    };
    if tokio::time::timeout(MAX_REPORT_TIME, all).await.is_err() {
        warn!(execution_id = %exec.id, pipeline = %pipeline.name, "GitHub feedback cut short: it took longer than its budget");
    }
}

/// A token secret: the plain token, or JSON `{"token": "..."}` (how a rotation function that
/// mints GitHub App installation tokens may store them), and the API it may be sent to.
///
/// A pipeline file names both the secret and `api_url`, and whoever may apply pipelines may
/// name any `shipgate/github/*` secret: so the token goes to github.com (or a local fake on the
/// loopback interface) only, unless the secret itself names the GitHub Enterprise Server API
/// (`{"token": "...", "api_url": "https://HOST/api/v3"}`, written by whoever may write the
/// secret). A pipeline cannot send another team's token to a host of its choosing.
fn token_for(raw: &SecretValue, api_url: &str) -> Result<SecretValue, &'static str> {
    let json = serde_json::from_str::<serde_json::Value>(raw.expose()).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|v| v.get(name))
            .and_then(|t| t.as_str())
            .map(str::trim)
    };
    let token = SecretValue::new(field("token").unwrap_or(raw.expose().trim()));
    let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
        .iter()
        .any(|l| api_url.starts_with(l));
    let named = field("api_url").map(|u| u.trim_end_matches('/'));
    if api_url == DEFAULT_GITHUB_API_URL || loopback || named == Some(api_url) {
        Ok(token)
    } else {
        Err("the pipeline's api_url is not github.com, and the token's secret does not name it (store the token as {\"token\": \"...\", \"api_url\": \"<the pipeline's api_url>\"})")
    }
}

fn describe(update: &FeedbackUpdate) -> String {
    match update {
        FeedbackUpdate::CommitStatus { context, state, .. } => {
            format!("{} {state:?}", context.as_str())
        }
        FeedbackUpdate::Deployment {
            environment, state, ..
        } => format!("deployment {} {state:?}", environment_name(*environment)),
    }
}

/// Run `call` up to [`MAX_ATTEMPTS`] times while it fails with a retryable error; answers the
/// attempts made.
async fn with_retries<F, Fut>(mut call: F) -> Result<u32, (u32, FeedbackError)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), FeedbackError>>,
{
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=MAX_ATTEMPTS {
        match call().await {
            Ok(()) => return Ok(attempt),
            Err(FeedbackError::Retryable {
                retry_after_secs, ..
            }) if attempt < MAX_ATTEMPTS
                && retry_after_secs.is_none_or(|s| Duration::from_secs(s) <= MAX_WAIT) =>
            {
                let wait = retry_after_secs
                    .map(Duration::from_secs)
                    .unwrap_or(backoff)
                    .max(backoff);
                tokio::time::sleep(wait.min(MAX_WAIT)).await;
                backoff *= 2;
            }
            Err(e) => return Err((attempt, e)),
        }
    }
    unreachable!("the last attempt returns")
}

async fn send(
    svc: &Services,
    exec: &Execution,
    pipeline: &PipelineDefinition,
    spec: &GitHubFeedbackSpec,
    repo: &GitHubRepository,
    token: &SecretValue,
    update: &FeedbackUpdate,
) -> Result<(), FeedbackError> {
    match update {
        FeedbackUpdate::CommitStatus {
            context,
            state,
            description,
            link,
        } => {
            let request = CommitStatusRequest {
                sha: exec.commit.sha.clone(),
                context: context.as_str().to_string(),
                state: *state,
                description: description.clone(),
                target_url: link_url(svc, exec, pipeline, *link),
            };
            svc.feedback.commit_status(repo, token, &request).await
        }
        FeedbackUpdate::Deployment {
            environment,
            state,
            description,
        } => {
            let deployment = DeploymentRequest {
                sha: exec.commit.sha.clone(),
                environment: environment_name(*environment).to_string(),
                task: format!("deploy:shipgate/{}", exec.id),
                production: *environment == Environment::Prod,
                description: format!(
                    "{} {} ({})",
                    pipeline.name,
                    exec.commit.short_sha(),
                    exec.id
                ),
            };
            let configured = match environment {
                Environment::Test => spec.test_url.clone(),
                Environment::Prod => spec.prod_url.clone(),
            };
            let console = service_console_url(pipeline, *environment);
            let status = DeploymentStatusRequest {
                state: *state,
                description: description.clone(),
                log_url: console.clone(),
                environment_url: configured.or(console),
            };
            svc.feedback
                .deployment_status(repo, token, &deployment, &status)
                .await
        }
    }
}

/// The URL a commit status links.
pub fn link_url(
    svc: &Services,
    exec: &Execution,
    pipeline: &PipelineDefinition,
    link: FeedbackLink,
) -> Option<String> {
    match link {
        FeedbackLink::BuildLogs => build_logs_url(exec, pipeline),
        FeedbackLink::Service(env) => service_console_url(pipeline, env),
        FeedbackLink::StatusPage => status_page_url(svc, pipeline)
            .or_else(|| service_console_url(pipeline, Environment::Test)),
    }
}

/// The region of the pipeline's ECR repository (`<account>.dkr.ecr.<region>.amazonaws.com`).
fn region(pipeline: &PipelineDefinition) -> Option<&str> {
    pipeline
        .image
        .repository
        .split('.')
        .nth(3)
        .filter(|r| !r.is_empty())
}

/// The build's logs: the link CodeBuild reported with a failure, else the console page of
/// the build.
pub fn build_logs_url(exec: &Execution, pipeline: &PipelineDefinition) -> Option<String> {
    if let Some(link) = exec.failure.as_ref().and_then(|f| f.link.clone()) {
        return Some(link);
    }
    let build = exec.build_id.as_deref()?;
    let region = region(pipeline)?;
    Some(format!(
        "https://{region}.console.aws.amazon.com/codesuite/codebuild/projects/{}/build/{}/log?region={region}",
        pipeline.build.project,
        build.replace(':', "%3A")
    ))
}

/// The ECS console page of an environment's service deployments.
pub fn service_console_url(pipeline: &PipelineDefinition, env: Environment) -> Option<String> {
    let region = region(pipeline)?;
    let t = pipeline.target(env);
    Some(format!(
        "https://{region}.console.aws.amazon.com/ecs/v2/clusters/{}/services/{}/deployments?region={region}",
        t.cluster, t.service
    ))
}
