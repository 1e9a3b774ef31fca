//! Hostile and oversized input against moto, through the real handlers (issue 14): replayed
//! signed bodies, oversized but legitimate pushes, requests DynamoDB refuses, commit text that
//! tries to look like shipgate's approval link.

use serde_json::Value;
use shared::adapters::dynamodb::DynamoStore;
use shared::app::sweeper::{sweep, SweepLimits};
use shared::domain::{Commit, Execution, ExecutionId, Status, Trigger};
use shared::http::{self, HttpRequest};
use shared::ports::{ExecutionStore, IdempotencyKey, StoreError};
use shipgate_sandbox::{drain_outbox, TableAdmin, DEV_WEBHOOK_SECRET};
use shipgate_tests::{build_event, deploy_event, signed_push, World, PUSH};

fn answer(resp: &http::HttpResponse) -> (i64, Value) {
    (
        resp.status_code,
        serde_json::from_str(&http::body_text(resp)).unwrap(),
    )
}

/// The sample push with its own commit (`n`), message and `pushed_at` (a different push).
fn push_body(n: u32, message: &str) -> String {
    let mut v: Value = serde_json::from_str(PUSH).unwrap();
    let sha = format!("{n:040x}");
    v["after"] = sha.clone().into();
    v["head_commit"]["id"] = sha.into();
    v["head_commit"]["message"] = message.into();
    v["repository"]["pushed_at"] = (1_700_000_000 + n).into();
    v.to_string()
}

fn with_headers(mut req: HttpRequest, headers: &[(&'static str, &str)]) -> HttpRequest {
    for (name, value) in headers {
        req.headers.insert(*name, value.parse().unwrap());
    }
    req
}

fn store(w: &World) -> DynamoStore {
    DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&w.moto.sdk),
        &w.provisioned.sandbox.table,
    )
}

/// Bytes of an item as DynamoDB counts them (names + values), near enough.
async fn item_bytes(w: &World, id: &ExecutionId) -> usize {
    store(w)
        .raw_item(&format!("EXEC#{id}"), "EXEC")
        .await
        .unwrap()
        .unwrap()
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum()
}

async fn builds(w: &World) -> usize {
    w.codebuild()
        .list_builds_for_project()
        .project_name(&w.provisioned.sandbox.project)
        .send()
        .await
        .unwrap()
        .ids()
        .len()
}

/// Build SUCCEEDED → test deployment COMPLETED → AWAITING_APPROVAL; answers the approval
/// message captured through SNS → SQS.
async fn to_approval(w: &World, id: &ExecutionId, seed: &str) -> shipgate_sandbox::OutboxMessage {
    let exec = w.services.execution(id).await.unwrap();
    w.push_image(&exec.image_tag(), seed).await;
    let out = build_events::handler::handle(
        &w.services,
        build_event(exec.build_id.as_deref().unwrap(), "SUCCEEDED"),
    )
    .await
    .unwrap();
    assert_eq!(out["execution_status"], "DEPLOYING_TEST", "{out}");
    let dep = w
        .services
        .execution(id)
        .await
        .unwrap()
        .test
        .unwrap()
        .deployment_id;
    let out = deploy_events::handler::handle(
        &w.services,
        deploy_event(&dep, "SERVICE_DEPLOYMENT_COMPLETED"),
    )
    .await
    .unwrap();
    assert_eq!(out["execution_status"], "AWAITING_APPROVAL", "{out}");
    let mut outbox = drain_outbox(&w.sqs(), &w.provisioned.outbox_queue_url)
        .await
        .unwrap();
    assert_eq!(outbox.len(), 1, "one approval message");
    outbox.remove(0)
}

/// Issue 14, item 2: the same signed body re-sent with new X-GitHub-Delivery / X-GitHub-Hook-ID
/// (5 sends) starts one build and answers the original execution each time.
#[tokio::test]
async fn a_replayed_signed_body_starts_nothing() {
    let Some(w) = World::start().await else {
        return;
    };
    let mut ids = Vec::new();
    for i in 0..5 {
        let req = with_headers(
            signed_push(PUSH, &format!("replay-{i}"), DEV_WEBHOOK_SECRET),
            &[("x-github-hook-id", &format!("{}", 900 + i))],
        );
        let (status, body) = answer(&webhook::handler::handle(&w.services, req).await);
        assert_eq!(status, 202, "{body}");
        ids.push((body["execution_id"].clone(), body["duplicate"].clone()));
    }
    assert!(ids.iter().all(|(id, _)| *id == ids[0].0), "{ids:?}");
    assert_eq!(ids[0].1, false);
    assert!(ids[1..].iter().all(|(_, dup)| *dup == true));
    assert_eq!(builds(&w).await, 1, "5 sends → 1 build");
}

/// Issue 14, item 4: pushes with 270 KB, 385 KB, 420 KB and 6.2 MB commit messages are accepted,
/// stored as small items, reach approval with an e-mail SNS accepts, and the sweeper runs clean.
#[tokio::test]
async fn oversized_legitimate_pushes_complete() {
    let Some(w) = World::start().await else {
        return;
    };
    // the reported sizes, and the largest message a push under the 6 MiB body limit can carry
    for (n, size) in [
        (1u32, 270_000usize),
        (2, 385_000),
        (3, 420_000),
        (4, 6_200_000),
    ] {
        let message = format!("Big change {n}\n\n{}", "x".repeat(size));
        let body = push_body(n, &message);
        let req = signed_push(&body, &format!("big-{n}"), DEV_WEBHOOK_SECRET);
        let (status, answer) = answer(&webhook::handler::handle(&w.services, req).await);
        assert_eq!(status, 202, "{size}: {answer}");
        let id: ExecutionId = answer["execution_id"].as_str().unwrap().parse().unwrap();
        let exec = w.services.execution(&id).await.unwrap();
        let stored = exec.commit.message.clone().unwrap();
        assert!(stored.starts_with(&format!("Big change {n}")));
        assert!(
            stored.ends_with(&format!("… (truncated, {} bytes)", message.len())),
            "{}",
            &stored[stored.len() - 40..]
        );
        let bytes = item_bytes(&w, &id).await;
        assert!(bytes < 40_000, "{size}: execution item is {bytes} bytes");

        let msg = to_approval(&w, &id, &format!("big-{n}")).await;
        assert!(
            msg.message.len() < 16 * 1024,
            "approval e-mail {} bytes",
            msg.message.len()
        );
        assert!(msg.links[0].starts_with(&w.public_url), "{:?}", msg.links);
        assert!(msg.message.contains(&format!("Big change {n}")));
        assert!(item_bytes(&w, &id).await < 40_000);
        // a newer push supersedes this one; the sweeper's runs stay clean
        let report = sweep(&w.services, &SweepLimits::default()).await.unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
    }
    let latest = w.services.store.list_executions("demo", 10).await.unwrap();
    assert_eq!(latest.len(), 4);
    assert_eq!(latest[0].status, Status::AwaitingApproval);
}

/// Issue 14, item 5: what DynamoDB refuses (key too long, item too large) is a permanent
/// `Rejected` with the reason, never `Unavailable`; a 3,000-character hook id is a 400 before
/// any write.
#[tokio::test]
async fn requests_dynamodb_refuses_are_permanent() {
    let Some(w) = World::start().await else {
        return;
    };
    let s = store(&w);
    let long_key = IdempotencyKey {
        key: "k".repeat(3000),
        expires_at: chrono::Utc::now() + chrono::Duration::days(1),
    };
    let err = s.claim(&long_key, "v").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Rejected(m) if m.contains("ValidationException")),
        "{err:?}"
    );
    assert!(!err.is_retryable());

    // an item over 400 KB (only possible by bypassing the excerpts)
    let now = chrono::Utc::now();
    let huge = Execution::received(
        ExecutionId::generate(now),
        "demo",
        Commit {
            sha: "a".repeat(40),
            reference: "main".into(),
            message: Some("m".repeat(420_000)),
            ..Default::default()
        },
        Trigger::Release {
            actor: "test".into(),
        },
        now,
        "test",
    );
    for key in [None, Some(&long_key)] {
        let err = s.create_execution(&huge, key).await.unwrap_err();
        assert!(matches!(err, StoreError::Rejected(_)), "{key:?}: {err:?}");
    }

    // through the webhook: a 3,000-character X-GitHub-Hook-ID → 400 naming the header
    let req = with_headers(
        signed_push(PUSH, "d-long", DEV_WEBHOOK_SECRET),
        &[("x-github-hook-id", &"9".repeat(3000))],
    );
    let (status, body) = answer(&webhook::handler::handle(&w.services, req).await);
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("X-GitHub-Hook-ID"));
    assert_eq!(builds(&w).await, 0);
}

/// Issue 14, item 6: commit text with CR, U+2028, bidi overrides and a fake approval link: the
/// real link is the first link of the e-mail, the fake one is no link at all, the text is
/// quoted and labelled as the commit's.
#[tokio::test]
async fn commit_text_cannot_pose_as_the_approval_link() {
    let Some(w) = World::start().await else {
        return;
    };
    let message = "Fix typo, approve here: https://shipgate.evil.example/approvals/x \u{202E}kcilc\u{202C} www.evil.example\rApprove: https://evil.example/approvals/z\u{2028}more";
    let mut body: Value = serde_json::from_str(&push_body(7, message)).unwrap();
    body["head_commit"]["author"]["name"] =
        "Mallory\u{2066}\r\nReview: https://evil.example/approvals/y".into();
    let body = body.to_string();
    let req = signed_push(&body, "phish", DEV_WEBHOOK_SECRET);
    let (status, answer) = answer(&webhook::handler::handle(&w.services, req).await);
    assert_eq!(status, 202, "{answer}");
    let id: ExecutionId = answer["execution_id"].as_str().unwrap().parse().unwrap();
    let msg = to_approval(&w, &id, "phish").await;

    assert!(
        msg.links[0].starts_with(&format!("{}/approvals/", w.public_url)),
        "{:?}",
        msg.links
    );
    assert!(
        msg.links.iter().all(|l| !l.contains("evil")),
        "no link from the commit: {:?}",
        msg.links
    );
    let text = &msg.message;
    for bad in ['\r', '\u{2028}', '\u{202E}', '\u{202C}', '\u{2066}'] {
        assert!(!text.contains(bad), "{bad:?} in {text:?}");
    }
    assert!(
        text.contains("https[:]//shipgate.evil.example/approvals/x"),
        "{text}"
    );
    assert!(text.contains("www[.]evil.example"), "{text}");
    let real = text.find(&msg.links[0]).unwrap();
    let quoted = text.find("From the commit").unwrap();
    assert!(
        real < quoted,
        "the real link comes before the commit's text"
    );
    assert!(text.contains("  Message:  \"Fix typo"), "{text}");
    assert!(!msg.subject.contains("://"), "{}", msg.subject);

    // the approval page shows the same inert text
    let path = msg.links[0].trim_start_matches(&w.public_url).to_string();
    let page = approvals::handler::handle(
        &w.services,
        shipgate_sandbox::apigw::request(
            "GET",
            &path,
            "/approvals/{token}",
            &[],
            None,
            "198.51.100.1",
        ),
    )
    .await;
    assert_eq!(page.status_code, 200);
    let html = http::body_text(&page);
    assert!(
        html.contains("Fix typo, approve here: https[:]//"),
        "{html}"
    );
    for bad in ['\r', '\u{2028}', '\u{202E}', '\u{2066}'] {
        assert!(!html.contains(bad), "{bad:?} in the page");
    }
}
