//! `CommitFeedback` on GitHub's REST API (github.com or GitHub Enterprise Server), over the
//! hyper + rustls (ring) stack the AWS SDK clients already link. The token is sent only in the
//! `Authorization` header and never appears in an error or a log line.

use std::time::Duration;

use async_trait::async_trait;
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use serde_json::{json, Value};

use crate::ports::{
    CommitFeedback, CommitStatusRequest, DeploymentRequest, DeploymentStatusRequest, FeedbackError,
    GitHubRepository, SecretValue,
};

/// One request's budget: GitHub answers in well under a second; a transition is never held
/// up for long by feedback.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest response body read (a deployment list of one execution is tiny).
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// The HTTPS connector, built on the first call (only functions that report for a pipeline with
/// `[github]` load the system's CA certificates; GitHub is not signed by the Amazon roots the
/// SDK clients trust) and kept for the rest of the execution environment's life (`super::lazy`).
///
/// It is the SDK's own connector type (`aws_smithy_http_client::Connector`, as the STS verifier's),
/// not a second `hyper_util` client: one copy of the HTTP/1 client code in each binary (a hyper
/// client of its own, with its own body type, is a second copy of it; measured in
/// bench/README.md "Binary sizes").
pub struct GitHubApi {
    connector: super::lazy::Lazy<aws_smithy_http_client::Connector>,
}

impl Default for GitHubApi {
    fn default() -> Self {
        GitHubApi::new()
    }
}

impl GitHubApi {
    pub fn new() -> GitHubApi {
        GitHubApi {
            connector: super::lazy::Lazy::new(|| {
                Ok(super::tls::connector_trusting(&super::tls::Roots::System))
            }),
        }
    }

    async fn call(
        &self,
        method: hyper::Method,
        url: &str,
        token: &SecretValue,
        body: Option<&Value>,
    ) -> Result<Value, FeedbackError> {
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let bad =
            |e: &dyn std::fmt::Display| FeedbackError::Rejected(format!("bad request URL: {e}"));
        let mut request = aws_smithy_runtime_api::http::Request::new(SdkBody::from(payload));
        request.set_method(method.as_str()).map_err(|e| bad(&e))?;
        request.set_uri(url).map_err(|e| bad(&e))?;
        let h = request.headers_mut();
        h.insert("authorization", format!("Bearer {}", token.expose()));
        h.insert("accept", "application/vnd.github+json");
        h.insert("x-github-api-version", "2022-11-28");
        h.insert("user-agent", "shipgate");
        h.insert("content-type", "application/json");
        let connector = self
            .connector
            .get()
            .map_err(|e| FeedbackError::Rejected(format!("no TLS trust roots for GitHub: {e}")))?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, connector.call(request))
            .await
            .map_err(|_| retryable("timed out".into(), None))?
            .map_err(|e| retryable(format!("connection failed: {e}"), None))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let read = async {
            let mut body = ByteStream::new(response.into_body());
            let mut bytes = Vec::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk
                    .map_err(|e| retryable(format!("reading the answer failed: {e}"), None))?;
                if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(retryable(
                        format!("reading the answer failed: more than {MAX_RESPONSE_BYTES} bytes"),
                        None,
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        };
        let bytes = tokio::time::timeout(REQUEST_TIMEOUT, read)
            .await
            .map_err(|_| retryable("timed out reading the answer".into(), None))??;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let header = |name: &str| headers.get(name);
        Err(classify(
            status,
            header("retry-after"),
            header("x-ratelimit-remaining"),
            header("x-ratelimit-reset"),
            &value,
            chrono::Utc::now().timestamp(),
        ))
    }
}

fn retryable(message: String, retry_after_secs: Option<u64>) -> FeedbackError {
    FeedbackError::Retryable {
        message,
        retry_after_secs,
    }
}

/// GitHub's answer as a port error: 5xx and rate limits (429, or 403 with `Retry-After` or an
/// exhausted `X-RateLimit-Remaining`) may be retried; anything else is refused.
pub fn classify(
    status: u16,
    retry_after: Option<&str>,
    remaining: Option<&str>,
    reset: Option<&str>,
    body: &Value,
    now: i64,
) -> FeedbackError {
    let message: String = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    let text = format!("HTTP {status} {message}").trim_end().to_string();
    let retry_after_secs = retry_after
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or_else(|| {
            reset
                .and_then(|r| r.trim().parse::<i64>().ok())
                .map(|r| r.saturating_sub(now).max(0) as u64)
        });
    let rate_limited = status == 429
        || (status == 403 && (retry_after.is_some() || remaining.map(str::trim) == Some("0")));
    if rate_limited || status >= 500 {
        retryable(text, retry_after_secs)
    } else {
        FeedbackError::Rejected(text)
    }
}

/// `owner/repo` path segments, percent-encoded where GitHub's names could need it (they
/// cannot, after validation; defence in depth).
fn repo_path(repo: &GitHubRepository) -> String {
    repo.repository
        .split('/')
        .map(encode)
        .collect::<Vec<_>>()
        .join("/")
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[async_trait]
impl CommitFeedback for GitHubApi {
    async fn commit_status(
        &self,
        repo: &GitHubRepository,
        token: &SecretValue,
        request: &CommitStatusRequest,
    ) -> Result<(), FeedbackError> {
        let url = format!(
            "{}/repos/{}/statuses/{}",
            repo.api_url,
            repo_path(repo),
            encode(&request.sha)
        );
        let mut body = json!({
            "state": request.state,
            "context": request.context,
            "description": request.description,
        });
        if let Some(u) = &request.target_url {
            body["target_url"] = json!(u);
        }
        self.call(hyper::Method::POST, &url, token, Some(&body))
            .await
            .map(|_| ())
    }

    async fn deployment_status(
        &self,
        repo: &GitHubRepository,
        token: &SecretValue,
        deployment: &DeploymentRequest,
        status: &DeploymentStatusRequest,
    ) -> Result<(), FeedbackError> {
        let base = format!("{}/repos/{}/deployments", repo.api_url, repo_path(repo));
        let list = format!(
            "{base}?sha={}&environment={}&task={}&per_page=5",
            encode(&deployment.sha),
            encode(&deployment.environment),
            encode(&deployment.task)
        );
        let found = self.call(hyper::Method::GET, &list, token, None).await?;
        let existing = found
            .as_array()
            .and_then(|a| a.iter().find_map(|d| d.get("id").and_then(Value::as_u64)));
        let id = match existing {
            Some(id) => id,
            None => {
                let body = json!({
                    "ref": deployment.sha,
                    "task": deployment.task,
                    "environment": deployment.environment,
                    "description": deployment.description,
                    "auto_merge": false,
                    // shipgate's own pending statuses must not block the deployment record
                    "required_contexts": [],
                    "production_environment": deployment.production,
                    "transient_environment": false,
                });
                let created = self
                    .call(hyper::Method::POST, &base, token, Some(&body))
                    .await?;
                created.get("id").and_then(Value::as_u64).ok_or_else(|| {
                    FeedbackError::Rejected("GitHub created no deployment id".into())
                })?
            }
        };
        let mut body = json!({
            "state": status.state,
            "description": status.description,
            "auto_inactive": true,
        });
        if let Some(u) = &status.log_url {
            body["log_url"] = json!(u);
        }
        if let Some(u) = &status.environment_url {
            body["environment_url"] = json!(u);
        }
        self.call(
            hyper::Method::POST,
            &format!("{base}/{id}/statuses"),
            token,
            Some(&body),
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_and_5xx_are_retryable() {
        let none = Value::Null;
        assert_eq!(
            classify(429, Some("7"), None, None, &none, 0),
            retryable("HTTP 429".into(), Some(7))
        );
        assert_eq!(
            classify(
                403,
                None,
                Some("0"),
                Some("130"),
                &json!({"message": "API rate limit exceeded"}),
                100
            ),
            retryable("HTTP 403 API rate limit exceeded".into(), Some(30))
        );
        assert!(matches!(
            classify(502, None, None, None, &none, 0),
            FeedbackError::Retryable { .. }
        ));
        // a 403 without rate-limit headers is a permission problem
        assert_eq!(
            classify(
                403,
                None,
                Some("4999"),
                None,
                &json!({"message": "Resource not accessible by integration"}),
                0
            ),
            FeedbackError::Rejected("HTTP 403 Resource not accessible by integration".into())
        );
        assert!(matches!(
            classify(
                401,
                None,
                None,
                None,
                &json!({"message": "Bad credentials"}),
                0
            ),
            FeedbackError::Rejected(_)
        ));
    }

    #[test]
    fn a_hostile_rate_limit_reset_never_overflows() {
        for reset in ["-9223372036854775808", "9223372036854775807"] {
            let e = classify(
                403,
                None,
                Some("0"),
                Some(reset),
                &Value::Null,
                1_800_000_000,
            );
            assert!(
                matches!(e, FeedbackError::Retryable { .. }),
                "{reset}: {e:?}"
            );
        }
    }

    #[test]
    fn paths_are_encoded() {
        assert_eq!(encode("deploy:shipgate/01J"), "deploy%3Ashipgate%2F01J");
        let repo = GitHubRepository {
            api_url: "https://api.github.com".into(),
            repository: "acme/hello.rs".into(),
        };
        assert_eq!(repo_path(&repo), "acme/hello.rs");
    }
}
