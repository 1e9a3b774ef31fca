//! Sources: GitHub push webhooks and CodeCommit reference changes start executions.

use serde::Serialize;
use tracing::{info, instrument, warn};

use super::{AppError, Services, DELIVERY_KEY_TTL};
use crate::domain::aws_events::{ReferenceChange, ReferenceEvent};
use crate::domain::github::{
    body_digest, decode_push, verify_signature, PushError, SignatureError,
};
use crate::domain::limits::{bounded_commit, excerpt, MAX_AUTHOR_BYTES};
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
    let exec = Execution::received(
        ExecutionId::generate(now),
        &req.pipeline.name,
        bounded_commit(req.commit),
        req.trigger,
        now,
        &req.actor,
    );
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

    let source = Source::Github(push.repository.clone());
    let pipelines: Vec<PipelineDefinition> = svc
        .store
        .list_pipelines()
        .await
        .map_err(AppError::from)?
        .into_iter()
        .map(|p| p.definition)
        .filter(|p| {
            p.matches(
                &source,
                push.kind,
                &push.ref_name,
                push.changed_files.as_deref(),
            )
        })
        .inspect(|p| svc.remember_pipeline(p))
        .collect();
    if pipelines.is_empty() {
        if push.kind == RefKind::Tag {
            return Ok(WebhookOutcome::Ignored(format!(
                "tag push {} (no pipeline opts in to tags)",
                push.ref_name
            )));
        }
        return Ok(WebhookOutcome::NoPipeline);
    }

    let head = push.head_commit.as_ref();
    let pusher = push.pusher.as_deref().map(|p| excerpt(p, MAX_AUTHOR_BYTES));
    let commit = Commit {
        sha: push.after.clone(),
        reference: push.ref_name.clone(),
        author: head.and_then(|h| h.author.clone()).or(pusher.clone()),
        message: head.map(|h| h.message.clone()),
        url: push
            .compare_url
            .clone()
            .or(head.and_then(|h| h.url.clone())),
    };
    let mut started = Vec::new();
    for pipeline in pipelines {
        let key = format!("PUSH#{body_digest}#{}", pipeline.name);
        let req = StartRequest {
            commit: commit.clone(),
            trigger: Trigger::GithubPush {
                delivery: delivery.to_string(),
                pusher: pusher.clone(),
            },
            idempotency_key: Some(key),
            actor: pusher
                .as_ref()
                .map(|p| format!("github:{p}"))
                .unwrap_or_else(|| "github".into()),
            pipeline,
        };
        started.push(start_execution(svc, req).await?);
    }
    Ok(WebhookOutcome::Started(started))
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
    let Some(sha) = change.commit_id.clone() else {
        return Ok(CodeCommitOutcome::Ignored("no commit id".into()));
    };
    let source = Source::Codecommit(change.repository.clone());
    let pipelines: Vec<PipelineDefinition> = svc
        .store
        .list_pipelines()
        .await?
        .into_iter()
        .map(|p| p.definition)
        .filter(|p| p.matches(&source, kind, &change.reference_name, None))
        .inspect(|p| svc.remember_pipeline(p))
        .collect();
    if pipelines.is_empty() {
        if kind == RefKind::Tag {
            return Ok(CodeCommitOutcome::Ignored(format!(
                "tag {} (no pipeline opts in to tags)",
                change.reference_name
            )));
        }
        return Ok(CodeCommitOutcome::NoPipeline);
    }
    let actor = change.caller.clone().unwrap_or_else(|| "codecommit".into());
    let mut started = Vec::new();
    for pipeline in pipelines {
        let req = StartRequest {
            commit: Commit {
                sha: sha.clone(),
                reference: change.reference_name.clone(),
                author: change.author.clone().or(change.caller.clone()),
                message: change.message.clone(),
                url: None,
            },
            trigger: Trigger::CodecommitPush {
                event_id: change.event_id.clone(),
            },
            idempotency_key: Some(format!("EVENT#{}#{}", change.event_id, pipeline.name)),
            actor: actor.clone(),
            pipeline,
        };
        started.push(start_execution(svc, req).await?);
    }
    Ok(CodeCommitOutcome::Started(started))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::github::sign_body;
    use crate::fake_world::FakeWorld;
    use crate::fakes::WEBHOOK_SECRET;
    use crate::ports::{Clock, ExecutionStore, ServiceError};

    const PUSH: &str = include_str!("../../../events/github/push.json");

    fn request<'a>(
        body: &'a [u8],
        sig: Option<&'a str>,
        event: &'a str,
        delivery: &'a str,
    ) -> WebhookRequest<'a> {
        WebhookRequest {
            event: Some(event),
            delivery: Some(delivery),
            hook_id: Some("512345678"),
            signature: sig,
            body,
        }
    }

    #[tokio::test]
    async fn push_starts_one_execution_and_build() {
        let w = FakeWorld::with_pipeline().await;
        let sig = sign_body(WEBHOOK_SECRET.as_bytes(), PUSH.as_bytes());
        let out = handle_github_delivery(
            &w.services,
            request(PUSH.as_bytes(), Some(&sig), "push", "d-1"),
        )
        .await
        .unwrap();
        let WebhookOutcome::Started(started) = out else {
            panic!("{out:?}")
        };
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].status, Status::Building);
        assert!(!started[0].duplicate);
        let builds = w.builds.started();
        assert_eq!(builds.len(), 1);
        let b = &builds[0];
        assert_eq!(b.project, "hello-build");
        assert_eq!(b.source_version, "9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a");
        let env: std::collections::HashMap<_, _> = b.environment.iter().cloned().collect();
        assert_eq!(env["IMAGE_TAG"], "9f2c7a1e4b6d");
        assert_eq!(
            env["SHIPGATE_EXECUTION_ID"],
            started[0].execution_id.to_string()
        );
        assert_eq!(
            env["IMAGE_REPO_URI"],
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/hello"
        );
        let exec = w
            .services
            .execution(&started[0].execution_id)
            .await
            .unwrap();
        assert_eq!(exec.commit.author.as_deref(), Some("Ada Lovelace"));
        assert!(exec
            .commit
            .message
            .as_deref()
            .unwrap()
            .starts_with("Add /health"));
        assert!(exec.commit.url.as_deref().unwrap().contains("/compare/"));
        let by_build = w
            .store
            .find_by_build(exec.build_id.as_deref().unwrap())
            .await
            .unwrap();
        assert_eq!(by_build, Some(exec.id.clone()));
    }

    #[tokio::test]
    async fn redelivery_answers_the_same_execution() {
        let w = FakeWorld::with_pipeline().await;
        let sig = sign_body(WEBHOOK_SECRET.as_bytes(), PUSH.as_bytes());
        let mut ids = Vec::new();
        for _ in 0..3 {
            let out = handle_github_delivery(
                &w.services,
                request(PUSH.as_bytes(), Some(&sig), "push", "d-1"),
            )
            .await
            .unwrap();
            let WebhookOutcome::Started(s) = out else {
                panic!()
            };
            ids.push((s[0].execution_id.clone(), s[0].duplicate));
        }
        assert_eq!(ids[0].0, ids[1].0);
        assert_eq!(ids[0].0, ids[2].0);
        assert_eq!((ids[0].1, ids[1].1, ids[2].1), (false, true, true));
        assert_eq!(w.builds.started().len(), 1);
        assert_eq!(w.store.executions().len(), 1);
        // the same signed body with a new X-GitHub-Delivery and X-GitHub-Hook-ID (headers
        // GitHub does not sign) is a replay: nothing new, the original execution answers
        for (delivery, hook) in [
            ("d-2", "512345678"),
            ("d-3", "1"),
            ("d-4", "2"),
            ("d-5", "3"),
        ] {
            let out = handle_github_delivery(
                &w.services,
                WebhookRequest {
                    hook_id: Some(hook),
                    ..request(PUSH.as_bytes(), Some(&sig), "push", delivery)
                },
            )
            .await
            .unwrap();
            let WebhookOutcome::Started(s) = out else {
                panic!()
            };
            assert_eq!((&s[0].execution_id, s[0].duplicate), (&ids[0].0, true));
        }
        assert_eq!(w.store.executions().len(), 1);
        assert_eq!(w.builds.started().len(), 1);
        // a new push (any change to the signed body) is a new execution
        let other = PUSH.replace("\"pushed_at\"", "\"pushed_at_\"");
        assert_ne!(other, PUSH);
        let sig2 = sign_body(WEBHOOK_SECRET.as_bytes(), other.as_bytes());
        handle_github_delivery(
            &w.services,
            request(other.as_bytes(), Some(&sig2), "push", "d-6"),
        )
        .await
        .unwrap();
        assert_eq!(w.store.executions().len(), 2);
    }

    #[tokio::test]
    async fn bad_inputs_write_nothing() {
        let w = FakeWorld::with_pipeline().await;
        let good = sign_body(WEBHOOK_SECRET.as_bytes(), PUSH.as_bytes());
        let wrong = sign_body(b"wrong", PUSH.as_bytes());
        let writes = w.store.writes();
        let cases: Vec<(WebhookRequest, &str)> = vec![
            (request(PUSH.as_bytes(), None, "push", "d"), "unauthorized"),
            (
                request(PUSH.as_bytes(), Some(&wrong), "push", "d"),
                "unauthorized",
            ),
            (
                request(PUSH.as_bytes(), Some("sha256=zz"), "push", "d"),
                "unauthorized",
            ),
        ];
        for (req, what) in cases {
            let err = handle_github_delivery(&w.services, req).await.unwrap_err();
            assert!(
                matches!(err, WebhookError::Unauthorized(_)),
                "{what}: {err:?}"
            );
        }
        let big = vec![b' '; MAX_WEBHOOK_BODY_BYTES + 1];
        let sig = sign_body(WEBHOOK_SECRET.as_bytes(), &big);
        assert!(matches!(
            handle_github_delivery(&w.services, request(&big, Some(&sig), "push", "d")).await,
            Err(WebhookError::TooLarge)
        ));
        for body in [&b"{not json"[..], br#"{"ref":"refs/heads/main"}"#] {
            let sig = sign_body(WEBHOOK_SECRET.as_bytes(), body);
            let err = handle_github_delivery(&w.services, request(body, Some(&sig), "push", "d"))
                .await
                .unwrap_err();
            assert!(matches!(err, WebhookError::BadRequest(_)), "{err:?}");
        }
        let mut no_delivery = request(PUSH.as_bytes(), Some(&good), "push", "");
        no_delivery.delivery = None;
        assert!(
            matches!(handle_github_delivery(&w.services, no_delivery).await, Err(WebhookError::BadRequest(m)) if m.contains("X-GitHub-Delivery"))
        );
        assert_eq!(w.store.writes(), writes, "nothing was written");
        assert!(w.builds.started().is_empty());
    }

    #[tokio::test]
    async fn ping_unknown_events_tags_deletions_and_unmatched_pushes() {
        let w = FakeWorld::with_pipeline().await;
        let sign = |b: &[u8]| sign_body(WEBHOOK_SECRET.as_bytes(), b);
        let ping = include_str!("../../../events/github/ping.json");
        let s = sign(ping.as_bytes());
        assert_eq!(
            handle_github_delivery(&w.services, request(ping.as_bytes(), Some(&s), "ping", "p"))
                .await
                .unwrap(),
            WebhookOutcome::Pong
        );
        let s = sign(PUSH.as_bytes());
        assert!(matches!(
            handle_github_delivery(
                &w.services,
                request(PUSH.as_bytes(), Some(&s), "issues", "i")
            )
            .await
            .unwrap(),
            WebhookOutcome::Ignored(_)
        ));
        let tag = include_str!("../../../events/github/push-tag.json");
        let s = sign(tag.as_bytes());
        assert!(
            matches!(handle_github_delivery(&w.services, request(tag.as_bytes(), Some(&s), "push", "t")).await.unwrap(), WebhookOutcome::Ignored(m) if m.contains("tag"))
        );
        let del = include_str!("../../../events/github/push-branch-deleted.json");
        let s = sign(del.as_bytes());
        assert!(
            matches!(handle_github_delivery(&w.services, request(del.as_bytes(), Some(&s), "push", "x")).await.unwrap(), WebhookOutcome::Ignored(m) if m.contains("deleted"))
        );
        let other = PUSH.replace("refs/heads/main", "refs/heads/feature/x");
        let s = sign(other.as_bytes());
        assert_eq!(
            handle_github_delivery(
                &w.services,
                request(other.as_bytes(), Some(&s), "push", "f")
            )
            .await
            .unwrap(),
            WebhookOutcome::NoPipeline
        );
        assert!(w.builds.started().is_empty());
        assert!(w.store.executions().is_empty());
    }

    #[tokio::test]
    async fn rotated_secret_is_accepted() {
        let w = FakeWorld::with_pipeline().await;
        let rotating = FakeWorld::new();
        drop(rotating);
        // replace the secret with a rotation document
        let secrets = std::sync::Arc::new(crate::fakes::FakeSecrets::with(&[(
            crate::fakes::WEBHOOK_SECRET_ID,
            r#"{"current": "new-secret", "previous": "It's a Secret to Everybody"}"#,
        )]));
        let mut svc = w.services.clone();
        svc.secrets = std::sync::Arc::new(crate::app::CachedSecrets::new(secrets));
        for secret in ["new-secret", WEBHOOK_SECRET] {
            let sig = sign_body(secret.as_bytes(), PUSH.as_bytes());
            let out =
                handle_github_delivery(&svc, request(PUSH.as_bytes(), Some(&sig), "push", secret))
                    .await
                    .unwrap();
            assert!(matches!(out, WebhookOutcome::Started(_)));
        }
        assert_eq!(webhook_secrets("plain"), vec!["plain"]);
        assert_eq!(webhook_secrets(r#"{"current":"a"}"#), vec!["a"]);
        assert_eq!(
            webhook_secrets(r#"{"other":"a"}"#),
            vec![r#"{"other":"a"}"#]
        );
    }

    #[tokio::test]
    async fn start_build_failure_ends_build_failed_with_cause() {
        let w = FakeWorld::with_pipeline().await;
        w.builds.faults.fail_next(
            "start_build",
            ServiceError::Rejected("AccessDeniedException: not authorized".into()),
        );
        let sig = sign_body(WEBHOOK_SECRET.as_bytes(), PUSH.as_bytes());
        let out = handle_github_delivery(
            &w.services,
            request(PUSH.as_bytes(), Some(&sig), "push", "d-1"),
        )
        .await
        .unwrap();
        let WebhookOutcome::Started(s) = out else {
            panic!()
        };
        assert_eq!(s[0].status, Status::BuildFailed);
        assert!(s[0]
            .failure
            .as_deref()
            .unwrap()
            .contains("AccessDeniedException"));
        let exec = w.services.execution(&s[0].execution_id).await.unwrap();
        assert_eq!(exec.status, Status::BuildFailed);
        assert_eq!(w.notifier.count("BUILD_FAILED"), 1, "failure notice sent");
    }

    #[tokio::test]
    async fn store_outage_is_retryable_and_writes_nothing() {
        let w = FakeWorld::with_pipeline().await;
        w.store.faults.fail_next(
            "create_execution",
            crate::ports::StoreError::Unavailable("503".into()),
        );
        let sig = sign_body(WEBHOOK_SECRET.as_bytes(), PUSH.as_bytes());
        let err = handle_github_delivery(
            &w.services,
            request(PUSH.as_bytes(), Some(&sig), "push", "d-1"),
        )
        .await
        .unwrap_err();
        let WebhookError::App(app) = err else {
            panic!()
        };
        assert!(app.is_retryable());
        assert!(w.builds.started().is_empty());
    }

    #[tokio::test]
    async fn crash_before_start_build_is_resumed_by_redelivery() {
        let w = FakeWorld::with_pipeline().await;
        // the first invocation recorded the execution, then died before StartBuild
        let p = FakeWorld::pipeline();
        let now = w.clock.now();
        let exec = Execution::received(
            ExecutionId::generate(now),
            "hello",
            Commit {
                sha: "9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a".into(),
                reference: "main".into(),
                ..Default::default()
            },
            Trigger::GithubPush {
                delivery: "d-1".into(),
                pusher: None,
            },
            now,
            "github",
        );
        w.store
            .create_execution(
                &exec,
                Some(&IdempotencyKey {
                    key: format!(
                        "PUSH#{}#{}",
                        crate::domain::github::body_digest(PUSH.as_bytes()),
                        p.name
                    ),
                    expires_at: now + DELIVERY_KEY_TTL,
                }),
            )
            .await
            .unwrap();
        w.clock.advance(chrono::Duration::minutes(5));
        let sig = sign_body(WEBHOOK_SECRET.as_bytes(), PUSH.as_bytes());
        let out = handle_github_delivery(
            &w.services,
            request(PUSH.as_bytes(), Some(&sig), "push", "d-1"),
        )
        .await
        .unwrap();
        let WebhookOutcome::Started(s) = out else {
            panic!()
        };
        assert!(s[0].duplicate);
        assert_eq!(s[0].execution_id, exec.id);
        assert_eq!(s[0].status, Status::Building);
        assert_eq!(w.builds.started().len(), 1);
    }

    #[tokio::test]
    async fn codecommit_events() {
        let w = FakeWorld::new();
        let mut p = FakeWorld::pipeline();
        p.source = Source::Codecommit("hello".into());
        w.store.put_pipeline(&p, w.clock.now()).await.unwrap();
        let load = |t: &str| {
            crate::domain::aws_events::decode_reference_change(&serde_json::from_str(t).unwrap())
                .unwrap()
        };
        let updated = load(include_str!("../../../events/codecommit/updated.json"));
        let out = handle_codecommit_change(&w.services, &updated)
            .await
            .unwrap();
        let CodeCommitOutcome::Started(s) = out else {
            panic!("{out:?}")
        };
        assert_eq!(s[0].status, Status::Building);
        // the same event again: nothing new
        let again = handle_codecommit_change(&w.services, &updated)
            .await
            .unwrap();
        let CodeCommitOutcome::Started(s2) = again else {
            panic!()
        };
        assert!(s2[0].duplicate);
        assert_eq!(w.builds.started().len(), 1);
        let created = load(include_str!("../../../events/codecommit/created.json"));
        assert!(matches!(
            handle_codecommit_change(&w.services, &created)
                .await
                .unwrap(),
            CodeCommitOutcome::Started(_)
        ));
        let deleted = load(include_str!("../../../events/codecommit/deleted.json"));
        assert!(matches!(
            handle_codecommit_change(&w.services, &deleted)
                .await
                .unwrap(),
            CodeCommitOutcome::Ignored(_)
        ));
        let mut tag = updated.clone();
        tag.reference_type = "tag".into();
        assert!(matches!(
            handle_codecommit_change(&w.services, &tag).await.unwrap(),
            CodeCommitOutcome::Ignored(_)
        ));
        let mut other = updated.clone();
        other.repository = "other".into();
        other.event_id = "x".into();
        assert_eq!(
            handle_codecommit_change(&w.services, &other).await.unwrap(),
            CodeCommitOutcome::NoPipeline
        );
        assert_eq!(w.builds.started().len(), 2);
    }
}
