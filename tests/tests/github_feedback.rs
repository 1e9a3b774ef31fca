//! GitHub feedback end to end: the real handlers against moto report to a fake GitHub API over
//! HTTP (the same adapter the Lambda functions use); GitHub's failures change nothing.

use shipgate_sandbox::github::{FakeFailure, FakeGitHubServer};
use shipgate_sandbox::Sandbox;
use shipgate_tests::*;

const COMMIT: &str = "9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a";

async fn world_reporting_to(github: &FakeGitHubServer) -> Option<World> {
    World::start_with(Sandbox {
        github_api_url: Some(github.base_url.clone()),
        ..Sandbox::default()
    })
    .await
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn release_to_production_reports_statuses_and_deployments() {
    let github = FakeGitHubServer::start(0, None).await.unwrap();
    let Some(w) = world_reporting_to(&github).await else {
        return;
    };
    let (id, _) = release_to_approval(&w, "demo", COMMIT).await;
    approve_to_success(&w, &id).await;
    assert_eq!(
        github.summary(),
        pairs(&[
            ("shipgate/build", "pending"),
            ("shipgate/build", "success"),
            ("shipgate/test", "pending"),
            ("deployment/test", "in_progress"),
            ("shipgate/test", "success"),
            ("deployment/test", "success"),
            ("shipgate/approval", "pending"),
            ("shipgate/approval", "success"),
            ("shipgate/prod", "pending"),
            ("deployment/production", "in_progress"),
            ("shipgate/prod", "success"),
            ("deployment/production", "success"),
        ])
    );
    let calls = github.calls();
    assert!(calls.iter().all(|c| c.authorized), "{calls:?}");
    // one deployment per environment: the second status of each found it again
    let created = calls
        .iter()
        .filter(|c| c.method == "POST" && c.path.ends_with("/deployments"))
        .count();
    assert_eq!(created, 2);
    assert!(calls
        .iter()
        .all(|c| c.path.starts_with("/repos/shipgate-demo/hello/")));
    assert!(calls
        .iter()
        .filter(|c| c.path.contains("/statuses/"))
        .all(|c| c.path.ends_with(COMMIT) || c.path.contains("/deployments/")));
}

#[tokio::test]
async fn a_failed_prod_deployment_reports_failure() {
    let github = FakeGitHubServer::start(0, None).await.unwrap();
    let Some(w) = world_reporting_to(&github).await else {
        return;
    };
    let (id, _) = release_to_approval(&w, "demo", COMMIT).await;
    let dep = approve(&w, &id).await;
    let out = deployment_event(&w, &dep, "SERVICE_DEPLOYMENT_FAILED").await;
    assert_eq!(out["execution_status"], "PROD_FAILED", "{out}");
    let s = github.summary();
    assert_eq!(
        &s[s.len() - 2..],
        &pairs(&[
            ("shipgate/prod", "failure"),
            ("deployment/production", "failure")
        ])[..]
    );
}

#[tokio::test]
async fn github_outages_and_rate_limits_change_no_execution_state() {
    for failure in [
        FakeFailure {
            status: 502,
            headers: vec![],
        },
        FakeFailure {
            status: 429,
            headers: vec![("retry-after", "3600".into())],
        },
        FakeFailure {
            status: 403,
            headers: vec![
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset", "4102444800".into()),
            ],
        },
    ] {
        let github = FakeGitHubServer::start(0, None).await.unwrap();
        github.fail_always(Some(failure.clone()));
        let Some(w) = world_reporting_to(&github).await else {
            return;
        };
        let (id, _) = release_to_approval(&w, "demo", COMMIT).await;
        approve_to_success(&w, &id).await;
        let e = w.peek(&id.parse().unwrap()).await;
        assert_eq!(e.status.as_str(), "SUCCEEDED");
        assert!(github.summary().is_empty());
        let calls = github.calls();
        assert!(!calls.is_empty());
        if failure.status == 502 {
            // retried, boundedly: at most 3 attempts per update
            assert!(calls.len() <= 12 * 3, "{}", calls.len());
            assert!(calls.len() > 12, "{}", calls.len());
        } else {
            // a long rate limit is not waited for: one attempt per update
            assert_eq!(calls.len(), 12, "{failure:?}");
        }
    }
}
