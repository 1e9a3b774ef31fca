//! Tests of [`super`]: GitHub deliveries and CodeCommit changes against the fakes.

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

#[tokio::test]
async fn a_push_reads_only_its_repositorys_pipelines() {
    let w = FakeWorld::with_pipeline().await;
    // reading every pipeline would fail: a push must not need it
    w.store.faults.fail_always(
        "list_pipelines",
        crate::ports::StoreError::Unavailable("not for pushes".into()),
    );
    let mut other = FakeWorld::pipeline();
    other.name = "other".into();
    other.source = Source::Github("acme/other".into());
    w.store.put_pipeline(&other, w.clock.now()).await.unwrap();
    let sig = sign_body(WEBHOOK_SECRET.as_bytes(), PUSH.as_bytes());
    let out = handle_github_delivery(
        &w.services,
        request(PUSH.as_bytes(), Some(&sig), "push", "d-1"),
    )
    .await
    .unwrap();
    let WebhookOutcome::Started(s) = out else {
        panic!("{out:?}")
    };
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].pipeline, "hello");
}
