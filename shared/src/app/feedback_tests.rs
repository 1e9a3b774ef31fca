//! GitHub feedback through the engine: the calls a release makes, once per transition, and
//! GitHub's failures change nothing.

use super::events::{on_build_state, on_deployment_state};
use super::test_support::*;
use crate::domain::aws_events::{BuildStatus, DeploymentEventName};
use crate::domain::Status;
use crate::fake_world::{FakeWorld, GITHUB_TOKEN};
use crate::fakes::GitHubCall;
use crate::ports::{Clock, ExecutionStore, FeedbackError};

async fn github_world() -> FakeWorld {
    let w = FakeWorld::with_pipeline().await;
    w.store
        .put_pipeline(&FakeWorld::github_pipeline(), w.clock.now())
        .await
        .unwrap();
    w
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

const PUSH_TO_PROD: &[(&str, &str)] = &[
    ("shipgate/build", "Pending"),
    ("shipgate/build", "Success"),
    ("shipgate/test", "Pending"),
    ("deployment/test", "InProgress"),
    ("shipgate/test", "Success"),
    ("deployment/test", "Success"),
    ("shipgate/approval", "Pending"),
    ("shipgate/approval", "Success"),
    ("shipgate/prod", "Pending"),
    ("deployment/production", "InProgress"),
    ("shipgate/prod", "Success"),
    ("deployment/production", "Success"),
];

#[tokio::test]
async fn push_to_production_reports_statuses_and_deployments_in_order() {
    let w = github_world().await;
    let id = succeed(&w, 1).await;
    assert_eq!(exec(&w, &id).await.status, Status::Succeeded);
    assert_eq!(w.github.summary(), pairs(PUSH_TO_PROD));
    // every call is about the commit, with the token from Secrets Manager
    for call in w.github.calls() {
        let sha_of = match &call {
            GitHubCall::Status { sha, .. } | GitHubCall::Deployment { sha, .. } => sha,
        };
        assert_eq!(sha_of, &sha(1));
    }
    assert!(w
        .github
        .tokens
        .lock()
        .unwrap()
        .iter()
        .all(|t| t == GITHUB_TOKEN));
    // one deployment per environment, found again by its task
    let created = w.github.created.lock().unwrap().clone();
    assert_eq!(created.len(), 2, "{created:?}");
    assert!(created
        .iter()
        .all(|(_, task, _)| task == &format!("deploy:shipgate/{id}")));
    // links: build logs, the configured test URL, the ECS console for prod
    let calls = w.github.calls();
    match &calls[0] {
        GitHubCall::Status { target_url, .. } => assert!(
            target_url
                .as_deref()
                .unwrap()
                .contains("codebuild/projects/hello-build/build/"),
            "{target_url:?}"
        ),
        other => panic!("{other:?}"),
    }
    let test_ok = calls.iter().find_map(|c| match c {
        GitHubCall::Deployment {
            environment,
            environment_url,
            log_url,
            ..
        } if environment == "test" => Some((environment_url.clone(), log_url.clone())),
        _ => None,
    });
    let (env_url, log_url) = test_ok.unwrap();
    assert_eq!(env_url.as_deref(), Some("https://test.hello.example.com"));
    assert!(log_url
        .unwrap()
        .contains("/services/hello-test/deployments"));
    // the approval link (a signed token) is never put on GitHub
    assert!(calls
        .iter()
        .all(|c| !format!("{c:?}").contains("/approvals/")));
}

#[tokio::test]
async fn a_pipeline_without_github_reports_nothing() {
    let w = FakeWorld::with_pipeline().await;
    succeed(&w, 1).await;
    assert!(w.github.calls().is_empty());
}

#[tokio::test]
async fn a_failed_build_reports_failure_with_its_logs() {
    let w = github_world().await;
    let id = push(&w, &sha(2), "d-2").await;
    let e = exec(&w, &id).await;
    on_build_state(&w.services, &build_event(&e, BuildStatus::Failed))
        .await
        .unwrap();
    assert_eq!(
        w.github.summary(),
        pairs(&[("shipgate/build", "Pending"), ("shipgate/build", "Failure")])
    );
    match w.github.calls().last().unwrap() {
        GitHubCall::Status {
            target_url,
            description,
            ..
        } => {
            assert_eq!(target_url.as_deref(), Some("https://logs.example/x"));
            assert!(description.contains("FAILED"), "{description}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_failed_prod_deployment_reports_failure() {
    let w = github_world().await;
    let id = awaiting(&w, 3).await;
    let e = super::approvals::decide(
        &w.services,
        &id,
        crate::domain::Verdict::Approve,
        "ops",
        crate::domain::Channel::Cli,
        None,
    )
    .await
    .unwrap();
    let dep = e.prod.unwrap().deployment_id;
    on_deployment_state(
        &w.services,
        &deploy_event(&dep, DeploymentEventName::Failed),
    )
    .await
    .unwrap();
    assert_eq!(exec(&w, &id).await.status, Status::ProdFailed);
    let s = w.github.summary();
    assert_eq!(
        &s[s.len() - 2..],
        &pairs(&[
            ("shipgate/prod", "Failure"),
            ("deployment/production", "Failure")
        ])[..]
    );
}

#[tokio::test]
async fn a_repeated_event_sends_nothing_twice() {
    let w = github_world().await;
    let id = built(&w, 4).await;
    let e = exec(&w, &id).await;
    let dep = e.test.as_ref().unwrap().deployment_id.clone();
    let done = deploy_event(&dep, DeploymentEventName::Completed);
    on_deployment_state(&w.services, &done).await.unwrap();
    let after_first = w.github.calls().len();
    // EventBridge delivers again, and a build event arrives late
    on_deployment_state(&w.services, &done).await.unwrap();
    on_build_state(&w.services, &build_event(&e, BuildStatus::Succeeded))
        .await
        .unwrap();
    assert_eq!(w.github.calls().len(), after_first);
}

#[tokio::test]
async fn github_errors_change_no_execution_state() {
    // GitHub down (5xx), rate limited (429 asking for a long wait), and refusing (401): the
    // release still goes to production, exactly as without GitHub
    for fault in [
        FeedbackError::Retryable {
            message: "HTTP 502".into(),
            retry_after_secs: None,
        },
        FeedbackError::Retryable {
            message: "HTTP 429".into(),
            retry_after_secs: Some(3600),
        },
        FeedbackError::Rejected("HTTP 401 Bad credentials".into()),
    ] {
        let w = github_world().await;
        w.github.faults.fail_always("commit_status", fault.clone());
        w.github
            .faults
            .fail_always("deployment_status", fault.clone());
        let id = succeed(&w, 5).await;
        let e = exec(&w, &id).await;
        assert_eq!(e.status, Status::Succeeded, "{fault:?}");
        assert!(w.github.calls().is_empty());
        // the history is the one a pipeline without GitHub gets
        let plain = FakeWorld::with_pipeline().await;
        let pid = succeed(&plain, 5).await;
        let pe = exec(&plain, &pid).await;
        let causes = |x: &crate::domain::Execution| {
            x.history.iter().map(|h| (h.from, h.to)).collect::<Vec<_>>()
        };
        assert_eq!(causes(&e), causes(&pe), "{fault:?}");
    }
}

#[tokio::test]
async fn a_transient_github_error_is_retried_and_then_sent_once() {
    let w = github_world().await;
    w.github.faults.fail_times(
        "commit_status",
        FeedbackError::Retryable {
            message: "HTTP 503".into(),
            retry_after_secs: None,
        },
        2,
    );
    succeed(&w, 6).await;
    assert_eq!(w.github.summary(), pairs(PUSH_TO_PROD));
}

#[tokio::test]
async fn an_unreadable_token_skips_feedback_only() {
    let w = github_world().await;
    w.secrets.set(crate::fake_world::GITHUB_TOKEN_ID, "");
    let mut p = FakeWorld::github_pipeline();
    p.github.as_mut().unwrap().token_secret = "shipgate/github/missing".into();
    w.store.put_pipeline(&p, w.clock.now()).await.unwrap();
    let id = succeed(&w, 7).await;
    assert_eq!(exec(&w, &id).await.status, Status::Succeeded);
    assert!(w.github.calls().is_empty());
}

#[tokio::test]
async fn a_refused_token_is_read_again_for_the_next_transition() {
    let w = github_world().await;
    let id = push(&w, &sha(8), "d-8").await;
    let reads = w.secrets.reads();
    w.github.faults.fail_next(
        "commit_status",
        FeedbackError::Rejected("HTTP 401 Bad credentials".into()),
    );
    let e = exec(&w, &id).await;
    // the token is rotated; the next transition reads it again and is reported
    w.secrets
        .set(crate::fake_world::GITHUB_TOKEN_ID, "ghs_rotated");
    w.registry.push(
        "hello",
        &e.image_tag(),
        &format!("sha256:{:064x}", 8),
        w.clock.now(),
    );
    on_build_state(&w.services, &build_event(&e, BuildStatus::Succeeded))
        .await
        .unwrap();
    assert!(w.secrets.reads() > reads);
    assert_eq!(
        w.github.tokens.lock().unwrap().last().unwrap(),
        "ghs_rotated"
    );
}

/// A pipeline file that points `api_url` at a host of its author's choosing never gets the token
/// there: only the secret itself can name a GitHub Enterprise Server API.
#[tokio::test]
async fn the_token_goes_only_to_github_com_or_the_api_its_secret_names() {
    let w = github_world().await;
    // the secret binds its token to an Enterprise Server
    let ghe = "https://ghe.example.com/api/v3";
    w.secrets.set(
        crate::fake_world::GITHUB_TOKEN_ID,
        &serde_json::json!({"token": "ghs_ghe", "api_url": format!("{ghe}/")}).to_string(),
    );
    let mut p = FakeWorld::github_pipeline();
    p.github.as_mut().unwrap().api_url = "https://collector.attacker.example/api/v3".into();
    w.store.put_pipeline(&p, w.clock.now()).await.unwrap();
    let id = succeed(&w, 9).await;
    assert_eq!(exec(&w, &id).await.status, Status::Succeeded);
    assert!(w.github.calls().is_empty(), "{:?}", w.github.calls());

    // the pipeline names the API the secret names: the token is sent there
    p.github.as_mut().unwrap().api_url = ghe.into();
    w.store.put_pipeline(&p, w.clock.now()).await.unwrap();
    succeed(&w, 10).await;
    assert!(!w.github.calls().is_empty());
    assert!(w
        .github
        .tokens
        .lock()
        .unwrap()
        .iter()
        .all(|t| t == "ghs_ghe"));
}
