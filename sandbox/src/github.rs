//! A fake GitHub REST API on 127.0.0.1: the calls shipgate's GitHub feedback makes (commit
//! statuses, deployments, deployment statuses) are answered as GitHub would and recorded, in
//! memory and optionally as JSON lines in a file. Answers can be scripted to fail (5xx, rate
//! limits) to show that GitHub's trouble changes nothing in shipgate. Sandbox and tests only.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Value};

/// The token the sandbox stores for its demo pipeline; the fake answers 401 to any other.
pub const FAKE_GITHUB_TOKEN: &str = "ghs_sandbox_fake_installation_token";

/// One call the fake received (the token is never recorded, only whether it was right).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GitHubRequest {
    pub at: String,
    pub method: String,
    pub path: String,
    pub authorized: bool,
    /// The answer's status code.
    pub status: u16,
    pub body: Value,
}

/// A scripted answer for the next call.
#[derive(Debug, Clone)]
pub struct FakeFailure {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Default)]
struct Inner {
    calls: Vec<GitHubRequest>,
    deployments: Vec<Value>,
    failures: VecDeque<FakeFailure>,
    fail_always: Option<FakeFailure>,
}

/// The running fake.
#[derive(Clone)]
pub struct FakeGitHubServer {
    pub base_url: String,
    inner: Arc<Mutex<Inner>>,
    record: Option<PathBuf>,
}

impl FakeGitHubServer {
    /// Listen on 127.0.0.1:`port` (0: a free one); record to `record` too when given.
    pub async fn start(port: u16, record: Option<PathBuf>) -> std::io::Result<FakeGitHubServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        if let Some(p) = &record {
            std::fs::write(p, "")?;
        }
        let server = FakeGitHubServer {
            base_url,
            inner: Arc::default(),
            record,
        };
        let app = Router::new()
            .route("/repos/{owner}/{repo}/statuses/{sha}", post(commit_status))
            .route(
                "/repos/{owner}/{repo}/deployments",
                get(list_deployments).post(create_deployment),
            )
            .route(
                "/repos/{owner}/{repo}/deployments/{id}/statuses",
                post(deployment_status),
            )
            .route("/_calls", get(all_calls))
            .with_state(server.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(server)
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<GitHubRequest> {
        self.lock().calls.clone()
    }

    /// `(context or "deployment/<environment>", state)` of every accepted status call.
    pub fn summary(&self) -> Vec<(String, String)> {
        let inner = self.lock();
        let env_of = |path: &str| {
            let id: u64 = path
                .split('/')
                .nth(5)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            inner
                .deployments
                .iter()
                .find(|d| d["id"] == id)
                .and_then(|d| d["environment"].as_str())
                .unwrap_or("?")
                .to_string()
        };
        inner
            .calls
            .iter()
            .filter(|c| c.method == "POST" && c.status < 300)
            .filter_map(|c| {
                let state = c.body["state"].as_str()?.to_string();
                if c.path.contains("/statuses/") && !c.path.contains("/deployments/") {
                    Some((c.body["context"].as_str()?.to_string(), state))
                } else if c.path.contains("/deployments/") {
                    Some((format!("deployment/{}", env_of(&c.path)), state))
                } else {
                    None
                }
            })
            .collect()
    }

    /// The next `n` calls answer `failure`.
    pub fn fail_next(&self, failure: FakeFailure, n: usize) {
        let mut inner = self.lock();
        for _ in 0..n {
            inner.failures.push_back(failure.clone());
        }
    }

    /// Every call answers `failure` (None: back to normal).
    pub fn fail_always(&self, failure: Option<FakeFailure>) {
        self.lock().fail_always = failure;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a call and decide its answer: a scripted failure, 401 for a wrong token, or `ok`.
    fn answer(
        &self,
        method: &str,
        path: String,
        headers: &HeaderMap,
        body: Value,
        ok: impl FnOnce(&mut Inner) -> (StatusCode, Value),
    ) -> Response {
        let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
            == Some(&format!("Bearer {FAKE_GITHUB_TOKEN}"));
        let mut inner = self.lock();
        let scripted = inner
            .failures
            .pop_front()
            .or_else(|| inner.fail_always.clone());
        let (status, answer, extra) = match scripted {
            Some(f) => (
                StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                json!({"message": "scripted failure"}),
                f.headers,
            ),
            None if !authorized => (
                StatusCode::UNAUTHORIZED,
                json!({"message": "Bad credentials"}),
                vec![],
            ),
            None => {
                let (s, v) = ok(&mut inner);
                (s, v, vec![])
            }
        };
        let call = GitHubRequest {
            at: chrono::Utc::now().to_rfc3339(),
            method: method.to_string(),
            path,
            authorized,
            status: status.as_u16(),
            body,
        };
        if let Some(p) = &self.record {
            if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(p) {
                let _ = writeln!(f, "{}", json!(call));
            }
        }
        inner.calls.push(call);
        drop(inner);
        let mut response = (status, Json(answer)).into_response();
        for (k, v) in extra {
            if let Ok(v) = v.parse() {
                response.headers_mut().insert(k, v);
            }
        }
        response
    }
}

async fn commit_status(
    State(s): State<FakeGitHubServer>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/statuses/{sha}");
    let answer = body.clone();
    s.answer("POST", path, &headers, body, |_| {
        (StatusCode::CREATED, answer)
    })
}

#[derive(serde::Deserialize)]
struct DeploymentFilter {
    sha: Option<String>,
    environment: Option<String>,
    task: Option<String>,
}

async fn list_deployments(
    State(s): State<FakeGitHubServer>,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Query<DeploymentFilter>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/deployments");
    s.answer("GET", path, &headers, Value::Null, |inner| {
        let found: Vec<Value> = inner
            .deployments
            .iter()
            .rev()
            .filter(|d| q.sha.as_ref().is_none_or(|v| d["sha"] == *v))
            .filter(|d| {
                q.environment
                    .as_ref()
                    .is_none_or(|v| d["environment"] == *v)
            })
            .filter(|d| q.task.as_ref().is_none_or(|v| d["task"] == *v))
            .cloned()
            .collect();
        (StatusCode::OK, Value::Array(found))
    })
}

async fn create_deployment(
    State(s): State<FakeGitHubServer>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/deployments");
    let request = body.clone();
    s.answer("POST", path, &headers, body, move |inner| {
        let id = inner.deployments.len() as u64 + 1;
        let d = json!({
            "id": id,
            "sha": request["ref"],
            "ref": request["ref"],
            "task": request["task"],
            "environment": request["environment"],
            "description": request["description"],
        });
        inner.deployments.push(d.clone());
        (StatusCode::CREATED, d)
    })
}

async fn deployment_status(
    State(s): State<FakeGitHubServer>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/deployments/{id}/statuses");
    let answer = body.clone();
    s.answer("POST", path, &headers, body, move |inner| {
        if inner.deployments.iter().any(|d| d["id"] == id) {
            (StatusCode::CREATED, answer)
        } else {
            (StatusCode::NOT_FOUND, json!({"message": "Not Found"}))
        }
    })
}

async fn all_calls(State(s): State<FakeGitHubServer>) -> Json<Value> {
    Json(json!({ "calls": s.calls(), "summary": s.summary() }))
}
