//! Sources: GitHub push webhooks and CodeCommit reference changes start executions.

use serde::Serialize;
use tracing::{info, instrument, warn};

use super::{AppError, Services, DELIVERY_KEY_TTL};
use crate::domain::aws_events::{ReferenceChange, ReferenceEvent};
use crate::domain::github::{
    body_digest, decode_push, verify_signature, Push as GithubPush, PushError, SignatureError,
};
use crate::domain::limits::{bounded_commit, excerpt, MAX_AUTHOR_BYTES};
use crate::domain::pushed_by::PushedBy;
use crate::domain::{
    Commit, Effect, Execution, ExecutionId, PipelineDefinition, RefKind, Source, Status,
    Transition, Trigger,
};
use crate::ports::{Created, IdempotencyKey};

/// Lambda's own request payload limit; GitHub caps payloads at 25 MB but API Gateway → Lambda
/// cannot carry more than this.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 6 * 1024 * 1024;
/// Longest `X-GitHub-Delivery` accepted (GitHub sends a 36-character GUID).
pub const MAX_DELIVERY_ID_LEN: usize = 128;
/// Longest `X-GitHub-Hook-ID` accepted (GitHub sends a decimal number).
pub const MAX_HOOK_ID_LEN: usize = 32;
/// Longest `X-GitHub-Event` accepted.
pub const MAX_EVENT_NAME_LEN: usize = 64;

/// Start an execution of `pipeline` for `commit`.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub pipeline: PipelineDefinition,
    pub commit: Commit,
    pub trigger: Trigger,
    /// A repeated request with the same key starts nothing and answers the first execution.
    pub idempotency_key: Option<String>,
    pub actor: String,
    /// Who pushed or wrote the change (recorded on the execution: the self-approval check).
    pub pushed_by: PushedBy,
}

/// What a start request did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    pub execution_id: ExecutionId,
    pub pipeline: String,
    pub status: Status,
    /// True when the key was seen before and nothing new was started.
    pub duplicate: bool,
    /// Why the build could not be started, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// Record the execution, then start its build. A StartBuild failure ends the execution in
/// `BUILD_FAILED` with the AWS error as cause — never a silent loss.
#[instrument(skip_all, fields(pipeline = %req.pipeline.name, commit = %req.commit.sha))]
pub async fn start_execution(svc: &Services, req: StartRequest) -> Result<Started, AppError> {
    let now = svc.now();
    let mut exec = Execution::received(
        ExecutionId::generate(now),
        &req.pipeline.name,
        bounded_commit(req.commit),
        req.trigger,
        now,
        &req.actor,
    );
    let pushed_by = req.pushed_by.bounded();
    exec.pushed_by = (!pushed_by.is_empty()).then(|| Box::new(pushed_by));
    let key = req.idempotency_key.map(|key| IdempotencyKey {
        key,
        expires_at: now + DELIVERY_KEY_TTL,
    });
    match svc.store.create_execution(&exec, key.as_ref()).await? {
        Created::Duplicate(existing) => {
            info!(execution_id = %existing, "duplicate delivery; nothing started");
            let current = svc.execution(&existing).await?;
            // a first delivery whose Lambda died before StartBuild is completed by a redelivery
            let current = svc.resume_if_stale(&current).await?.unwrap_or(current);
            Ok(Started {
                execution_id: existing,
                pipeline: current.pipeline.clone(),
                status: current.status,
                duplicate: true,
                failure: current.failure.map(|f| f.reason),
            })
        }
        Created::Created => {
            info!(execution_id = %exec.id, "execution recorded");
            let latest = svc
                .perform(Transition {
                    execution: exec,
                    effects: vec![Effect::StartBuild],
                })
                .await?;
            Ok(Started {
                execution_id: latest.id.clone(),
                pipeline: latest.pipeline.clone(),
                status: latest.status,
                duplicate: false,
                failure: latest.failure.map(|f| f.reason),
            })
        }
    }
}

/// A GitHub webhook request, as API Gateway delivered it.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    pub event: Option<&'a str>,
    pub delivery: Option<&'a str>,
    pub hook_id: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// What a webhook delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// `ping`: nothing to do.
    Pong,
    /// A valid delivery shipgate does not act on.
    Ignored(String),
    /// No stored pipeline matches the push.
    NoPipeline,
    /// Executions started (or found, for a redelivery).
    Started(Vec<Started>),
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("request body is larger than {MAX_WEBHOOK_BODY_BYTES} bytes")]
    TooLarge,
    #[error("signature check failed: {0}")]
    Unauthorized(SignatureError),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    App(#[from] AppError),
}

/// The secret may be a plain string, or JSON `{"current": "...", "previous": "..."}` while a
/// rotation is under way (both are accepted).
pub use crate::ports::rotating_secrets as webhook_secrets;

/// Handle one GitHub delivery: verify, decode, match pipelines, start executions.
#[instrument(skip_all, fields(delivery = req.delivery.unwrap_or("-"), event = req.event.unwrap_or("-")))]
pub async fn handle_github_delivery(
    svc: &Services,
    req: WebhookRequest<'_>,
) -> Result<WebhookOutcome, WebhookError> {
    if req.body.len() > MAX_WEBHOOK_BODY_BYTES {
        return Err(WebhookError::TooLarge);
    }
    for (name, value, max) in [
        ("X-GitHub-Delivery", req.delivery, MAX_DELIVERY_ID_LEN),
        ("X-GitHub-Hook-ID", req.hook_id, MAX_HOOK_ID_LEN),
        ("X-GitHub-Event", req.event, MAX_EVENT_NAME_LEN),
    ] {
        if let Some(v) = value.filter(|v| v.len() > max) {
            return Err(WebhookError::BadRequest(format!(
                "{name} header is {} bytes; at most {max} are allowed",
                v.len()
            )));
        }
    }
    let secret = svc
        .secrets
        .get(&svc.settings.webhook_secret_id)
        .await
        .map_err(AppError::from)?;
    let secrets = webhook_secrets(secret.expose());
    let keys: Vec<&[u8]> = secrets.iter().map(|s| s.as_bytes()).collect();
    verify_signature(&keys, req.body, req.signature).map_err(|e| {
        warn!(error = %e, "rejected webhook delivery");
        WebhookError::Unauthorized(e)
    })?;

    let event = req
        .event
        .ok_or_else(|| WebhookError::BadRequest("missing X-GitHub-Event header".into()))?;
    match event {
        "ping" => return Ok(WebhookOutcome::Pong),
        "push" => {}
        other => {
            return Ok(WebhookOutcome::Ignored(format!(
                "event {other:?} is not handled"
            )))
        }
    }
    let delivery = req
        .delivery
        .filter(|d| !d.is_empty())
        .ok_or_else(|| WebhookError::BadRequest("missing X-GitHub-Delivery header".into()))?;
    // Replay protection keys on what the signature covers: the raw body. GitHub does not sign
    // X-GitHub-Delivery or X-GitHub-Hook-ID, so a captured request re-sent with new ones is the
    // same push; a genuine redelivery is the same body too. (Distinct pushes differ in body:
    // `before`/`after`, `repository.pushed_at`.)
    let body_digest = body_digest(req.body);

    let push = decode_push(req.body).map_err(|e| match e {
        PushError::Json(m) => WebhookError::BadRequest(format!("body is not valid JSON: {m}")),
        PushError::Field { path, message } => {
            WebhookError::BadRequest(format!("push payload field `{path}`: {message}"))
        }
    })?;
    if push.is_deletion() {
        return Ok(WebhookOutcome::Ignored(format!(
            "{} was deleted",
            push.full_ref
        )));
    }

    let push = github_push(&push, delivery, &body_digest);
    match start_push(svc, &push).await? {
        Some(started) => Ok(WebhookOutcome::Started(started)),
        None if push.kind == RefKind::Tag => Ok(WebhookOutcome::Ignored(format!(
            "tag push {} (no pipeline opts in to tags)",
            push.ref_name
        ))),
        None => Ok(WebhookOutcome::NoPipeline),
    }
}

/// What a GitHub push starts: the head commit (or the pusher) as author, the compare view as
/// link, keyed on the signed body.
fn github_push<'a>(push: &'a GithubPush, delivery: &str, body_digest: &str) -> Push<'a> {
    let head = push.head_commit.as_ref();
    let pusher = push.pusher.as_deref().map(|p| excerpt(p, MAX_AUTHOR_BYTES));
    Push {
        source: Source::Github(push.repository.clone()),
        kind: push.kind,
        ref_name: &push.ref_name,
        changed_files: push.changed_files.as_deref(),
        commit: Commit {
            sha: push.after.clone(),
            reference: push.ref_name.clone(),
            author: head.and_then(|h| h.author.clone()).or(pusher.clone()),
            message: head.map(|h| h.message.clone()),
            url: push
                .compare_url
                .clone()
                .or(head.and_then(|h| h.url.clone())),
        },
        actor: pusher
            .as_ref()
            .map(|p| format!("github:{p}"))
            .unwrap_or_else(|| "github".into()),
        trigger: Trigger::GithubPush {
            delivery: delivery.to_string(),
            pusher,
        },
        pushed_by: PushedBy {
            pusher_name: push.pusher.clone(),
            pusher_email: push.pusher_email.clone(),
            sender_login: push.sender.clone(),
            author_email: head.and_then(|h| h.author_email.clone()),
            author_username: head.and_then(|h| h.author_username.clone()),
            caller_arn: None,
        },
        claim: format!("PUSH#{body_digest}"),
    }
}

/// What a CodeCommit event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCommitOutcome {
    Ignored(String),
    NoPipeline,
    Started(Vec<Started>),
}

/// Handle a CodeCommit reference change (the EventBridge event id is the idempotency key).
#[instrument(skip_all, fields(event_id = %change.event_id, repository = %change.repository))]
pub async fn handle_codecommit_change(
    svc: &Services,
    change: &ReferenceChange,
) -> Result<CodeCommitOutcome, AppError> {
    if change.event == ReferenceEvent::Deleted {
        return Ok(CodeCommitOutcome::Ignored(format!(
            "{} {} was deleted",
            change.reference_type, change.reference_name
        )));
    }
    let kind = match change.reference_type.as_str() {
        "branch" => RefKind::Branch,
        "tag" => RefKind::Tag,
        other => {
            return Ok(CodeCommitOutcome::Ignored(format!(
                "reference type {other:?} is not handled"
            )))
        }
    };
    let Some(push) = codecommit_push(change, kind) else {
        return Ok(CodeCommitOutcome::Ignored("no commit id".into()));
    };
    match start_push(svc, &push).await? {
        Some(started) => Ok(CodeCommitOutcome::Started(started)),
        None if kind == RefKind::Tag => Ok(CodeCommitOutcome::Ignored(format!(
            "tag {} (no pipeline opts in to tags)",
            change.reference_name
        ))),
        None => Ok(CodeCommitOutcome::NoPipeline),
    }
}

/// What a CodeCommit reference change starts (None without a commit id): no changed-file list
/// and no link; the caller is the actor and, failing the commit's, the author; keyed on the
/// EventBridge event id.
fn codecommit_push(change: &ReferenceChange, kind: RefKind) -> Option<Push<'_>> {
    let sha = change.commit_id.clone()?;
    Some(Push {
        source: Source::Codecommit(change.repository.clone()),
        kind,
        ref_name: &change.reference_name,
        changed_files: None,
        commit: Commit {
            sha,
            reference: change.reference_name.clone(),
            author: change.author.clone().or(change.caller.clone()),
            message: change.message.clone(),
            url: None,
        },
        actor: change.caller.clone().unwrap_or_else(|| "codecommit".into()),
        trigger: Trigger::CodecommitPush {
            event_id: change.event_id.clone(),
        },
        // the event names the IAM identity that pushed (AWS verified it); the commit's author
        // e-mail is git metadata anyone can set, so it is not fetched (GetCommit) for this
        pushed_by: PushedBy {
            caller_arn: change.caller.clone(),
            ..PushedBy::default()
        },
        claim: format!("EVENT#{}", change.event_id),
    })
}

/// A push from either source, decoded: the one flow both start executions through.
#[derive(Debug)]
struct Push<'a> {
    source: Source,
    kind: RefKind,
    ref_name: &'a str,
    /// What a path filter reads (GitHub lists them; None: no path filter excludes the push).
    changed_files: Option<&'a [String]>,
    commit: Commit,
    trigger: Trigger,
    actor: String,
    pushed_by: PushedBy,
    /// `PUSH#<body digest>` / `EVENT#<event id>`; with `#<pipeline>` appended, the idempotency
    /// key of that pipeline's execution.
    claim: String,
}

/// Start (or, for a repeated push, find) an execution of every pipeline of the push's
/// repository that the push matches, reading only that repository's pipelines. None when no
/// pipeline matches.
async fn start_push(svc: &Services, push: &Push<'_>) -> Result<Option<Vec<Started>>, AppError> {
    let pipelines: Vec<PipelineDefinition> = svc
        .store
        .pipelines_for_source(&push.source)
        .await?
        .into_iter()
        .map(|p| p.definition)
        .filter(|p| p.matches(&push.source, push.kind, push.ref_name, push.changed_files))
        .inspect(|p| svc.remember_pipeline(p))
        .collect();
    if pipelines.is_empty() {
        return Ok(None);
    }
    let mut started = Vec::with_capacity(pipelines.len());
    for pipeline in pipelines {
        let req = StartRequest {
            commit: push.commit.clone(),
            trigger: push.trigger.clone(),
            idempotency_key: Some(format!("{}#{}", push.claim, pipeline.name)),
            actor: push.actor.clone(),
            pushed_by: push.pushed_by.clone(),
            pipeline,
        };
        started.push(start_execution(svc, req).await?);
    }
    Ok(Some(started))
}

#[cfg(test)]
#[path = "sources_tests.rs"]
mod tests;
