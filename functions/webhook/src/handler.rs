//! `POST /webhooks/github` (API Gateway HTTP API, payload 2.0).

use serde_json::{json, Value};
use shared::app::sources::{
    handle_github_delivery, WebhookError, WebhookOutcome, WebhookRequest, MAX_WEBHOOK_BODY_BYTES,
};
use shared::app::{AppError, Services};
use shared::http::{self, HttpRequest, HttpResponse};
use shared::ports::StoreError;
use tracing::{error, warn};

/// Handle one request; always answers (never an invocation error), so GitHub sees a status.
pub async fn handle(svc: &Services, req: HttpRequest) -> HttpResponse {
    // one invocation: each pipeline definition is read at most once
    let svc = &svc.for_invocation();
    if http::method(&req) != "POST" {
        return http::json_error(405, "use POST", json!({}));
    }
    if http::body_len_hint(&req) > MAX_WEBHOOK_BODY_BYTES {
        return respond(Err(WebhookError::TooLarge));
    }
    if http::header(&req, "content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        return http::json_error(
            415,
            "set the GitHub webhook content type to application/json",
            json!({}),
        );
    }
    let body = match http::body_bytes(&req) {
        Ok(b) => b,
        Err(_) => return http::json_error(400, "body is not valid base64", json!({})),
    };
    let outcome = handle_github_delivery(
        svc,
        WebhookRequest {
            event: http::header(&req, "x-github-event"),
            delivery: http::header(&req, "x-github-delivery"),
            hook_id: http::header(&req, "x-github-hook-id"),
            signature: http::header(&req, "x-hub-signature-256"),
            body: &body,
        },
    )
    .await;
    respond(outcome)
}

/// The one place outcomes and errors become HTTP statuses.
pub fn respond(outcome: Result<WebhookOutcome, WebhookError>) -> HttpResponse {
    match outcome {
        Ok(WebhookOutcome::Pong) => http::json(200, &json!({ "status": "pong" })),
        Ok(WebhookOutcome::Ignored(reason)) => {
            http::json(202, &json!({ "status": "ignored", "reason": reason }))
        }
        Ok(WebhookOutcome::NoPipeline) => http::json(
            202,
            &json!({ "status": "no pipeline", "reason": "no pipeline matches this repository, branch and paths" }),
        ),
        Ok(WebhookOutcome::Started(started)) => {
            let executions: Vec<Value> = started
                .iter()
                .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
                .collect();
            let first = &started[0];
            match started.iter().find(|s| !s.duplicate && s.failure.is_some()) {
                // StartBuild failed: the execution is recorded as BUILD_FAILED, GitHub sees 502
                Some(failed) => http::json(
                    502,
                    &json!({
                        "error": "the build could not be started",
                        "execution_id": failed.execution_id,
                        "cause": failed.failure,
                        "executions": executions,
                    }),
                ),
                None => http::json(
                    202,
                    &json!({
                        "execution_id": first.execution_id,
                        "status": first.status,
                        "duplicate": first.duplicate,
                        "executions": executions,
                    }),
                ),
            }
        }
        Err(WebhookError::TooLarge) => http::json_error(
            413,
            &format!("payload larger than {MAX_WEBHOOK_BODY_BYTES} bytes"),
            json!({}),
        ),
        Err(WebhookError::Unauthorized(e)) => http::json_error(
            401,
            "invalid or missing X-Hub-Signature-256",
            json!({ "detail": e.to_string() }),
        ),
        Err(WebhookError::BadRequest(m)) => http::json_error(400, &m, json!({})),
        // permanent: the same request can never be stored; redelivering it would not help
        Err(WebhookError::App(AppError::Store(e @ StoreError::Rejected(_)))) => {
            warn!(error = %e, "webhook delivery refused by the store");
            http::json_error(
                422,
                "the delivery cannot be recorded; redelivering it will not help",
                json!({ "reason": e.to_string() }),
            )
        }
        Err(WebhookError::App(e)) if e.is_retryable() => {
            warn!(error = %e, "webhook failed on a retryable error");
            http::json_error(
                503,
                "temporarily unavailable; redeliver the webhook",
                json!({}),
            )
        }
        Err(WebhookError::App(e)) => {
            error!(error = %e, "webhook failed");
            http::json_error(
                500,
                "internal error; see the webhook function's logs",
                json!({}),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::github::sign_body;
    use shared::fake_world::FakeWorld;
    use shared::fakes::WEBHOOK_SECRET;
    use shared::ports::ServiceError;

    const PUSH: &str = include_str!("../../../events/github/push.json");

    fn signed(body: &str, event: &str, delivery: &str) -> HttpRequest {
        let sig = sign_body(WEBHOOK_SECRET.as_bytes(), body.as_bytes());
        shipgate_sandbox::apigw::request(
            "POST",
            "/webhooks/github",
            "/webhooks/github",
            &[
                ("X-GitHub-Event", event),
                ("X-GitHub-Delivery", delivery),
                ("X-GitHub-Hook-ID", "9"),
                ("X-Hub-Signature-256", &sig),
                ("Content-Type", "application/json"),
            ],
            Some(body),
            "140.82.115.11",
        )
    }

    fn status_and_json(r: &HttpResponse) -> (i64, Value) {
        (
            r.status_code,
            serde_json::from_str(&http::body_text(r)).unwrap(),
        )
    }

    #[tokio::test]
    async fn push_answers_202_with_execution_id() {
        let w = FakeWorld::with_pipeline().await;
        let (status, body) =
            status_and_json(&handle(&w.services, signed(PUSH, "push", "d1")).await);
        assert_eq!(status, 202);
        assert_eq!(body["status"], "BUILDING");
        assert_eq!(body["execution_id"].as_str().unwrap().len(), 26);
        assert_eq!(w.builds.started().len(), 1);
    }

    #[tokio::test]
    async fn each_bad_input_gets_its_status_and_writes_nothing() {
        let w = FakeWorld::with_pipeline().await;
        let writes = w.store.writes();
        let mut unsigned = signed(PUSH, "push", "d1");
        unsigned.headers.remove("x-hub-signature-256");
        let mut bad_sig = signed(PUSH, "push", "d1");
        bad_sig.headers.insert(
            "x-hub-signature-256",
            format!("sha256={}", "0".repeat(64)).parse().unwrap(),
        );
        let mut get = signed(PUSH, "push", "d1");
        get.request_context.http.method = aws_lambda_events::http::Method::GET;
        let mut big = signed("x", "push", "d1");
        big.body = Some(" ".repeat(MAX_WEBHOOK_BODY_BYTES + 1));
        let mut form = signed(PUSH, "push", "d1");
        form.headers.insert(
            "content-type",
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let mut b64 = signed(PUSH, "push", "d1");
        b64.is_base64_encoded = true;
        b64.body = Some("%%%".into());
        let cases = vec![
            (unsigned, 401),
            (bad_sig, 401),
            (get, 405),
            (big, 413),
            (form, 415),
            (b64, 400),
            (signed("{broken", "push", "d1"), 400),
            (
                signed(r#"{"ref":"refs/heads/main","after":"abc"}"#, "push", "d1"),
                400,
            ),
        ];
        for (req, expected) in cases {
            let (status, body) = status_and_json(&handle(&w.services, req).await);
            assert_eq!(status, expected, "{body}");
            assert!(body["error"].is_string(), "{body}");
        }
        assert_eq!(w.store.writes(), writes);
        assert!(w.builds.started().is_empty());
    }

    #[tokio::test]
    async fn base64_encoded_bodies_are_verified_on_their_raw_bytes() {
        use base64::Engine;
        let w = FakeWorld::with_pipeline().await;
        let mut req = signed(PUSH, "push", "d1");
        req.body = Some(base64::engine::general_purpose::STANDARD.encode(PUSH));
        req.is_base64_encoded = true;
        assert_eq!(handle(&w.services, req).await.status_code, 202);
    }

    #[tokio::test]
    async fn ping_and_unknown_events() {
        let w = FakeWorld::with_pipeline().await;
        let ping = include_str!("../../../events/github/ping.json");
        assert_eq!(
            handle(&w.services, signed(ping, "ping", "p"))
                .await
                .status_code,
            200
        );
        let (status, body) =
            status_and_json(&handle(&w.services, signed(PUSH, "pull_request", "x")).await);
        assert_eq!((status, body["status"].as_str()), (202, Some("ignored")));
        let other = PUSH.replace("shipgate-demo/hello", "someone/else");
        let (status, body) =
            status_and_json(&handle(&w.services, signed(&other, "push", "y")).await);
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("no pipeline"))
        );
        assert!(w.store.executions().is_empty());
    }

    #[tokio::test]
    async fn start_build_failure_is_502_with_the_execution_id() {
        let w = FakeWorld::with_pipeline().await;
        w.builds.faults.fail_next(
            "start_build",
            ServiceError::Throttled("Rate exceeded".into()),
        );
        let (status, body) =
            status_and_json(&handle(&w.services, signed(PUSH, "push", "d1")).await);
        assert_eq!(status, 502);
        let id = body["execution_id"].as_str().unwrap().parse().unwrap();
        let exec = w.services.execution(&id).await.unwrap();
        assert_eq!(exec.status, shared::domain::Status::BuildFailed);
        assert!(body["cause"].as_str().unwrap().contains("Rate exceeded"));
    }

    #[tokio::test]
    async fn store_outage_is_503() {
        let w = FakeWorld::with_pipeline().await;
        w.store.faults.fail_always(
            "pipelines_for_source",
            shared::ports::StoreError::Unavailable("down".into()),
        );
        assert_eq!(
            handle(&w.services, signed(PUSH, "push", "d1"))
                .await
                .status_code,
            503
        );
    }

    #[tokio::test]
    async fn oversized_headers_are_400_and_write_nothing() {
        let w = FakeWorld::with_pipeline().await;
        let writes = w.store.writes();
        let mut hook = signed(PUSH, "push", "d1");
        hook.headers
            .insert("x-github-hook-id", "9".repeat(3000).parse().unwrap());
        let long_delivery = "d".repeat(129);
        for req in [hook, signed(PUSH, "push", &long_delivery)] {
            let (status, body) = status_and_json(&handle(&w.services, req).await);
            assert_eq!(status, 400, "{body}");
            assert!(
                body["error"].as_str().unwrap().contains("at most"),
                "{body}"
            );
        }
        assert_eq!(w.store.writes(), writes);
        assert!(w.builds.started().is_empty());
    }

    #[tokio::test]
    async fn a_request_the_store_rejects_is_422_not_503() {
        let w = FakeWorld::with_pipeline().await;
        w.store.faults.fail_always(
            "create_execution",
            StoreError::Rejected(
                "ValidationException: Item size has exceeded the maximum allowed size".into(),
            ),
        );
        let (status, body) =
            status_and_json(&handle(&w.services, signed(PUSH, "push", "d1")).await);
        assert_eq!(status, 422, "{body}");
        assert!(
            body["reason"].as_str().unwrap().contains("Item size"),
            "{body}"
        );
        assert!(w.builds.started().is_empty());
    }

    #[tokio::test]
    async fn sample_events_decode() {
        let w = FakeWorld::with_pipeline().await;
        // the samples are signed with the sandbox's dev secret, not the fakes' one
        for (file, expected) in [
            (include_str!("../../../events/apigw/github-push.json"), 401),
            (
                include_str!("../../../events/apigw/github-bad-signature.json"),
                401,
            ),
            (
                include_str!("../../../events/apigw/github-push-replayed.json"),
                401,
            ),
            // the header bound comes before any other check
            (
                include_str!("../../../events/apigw/github-push-long-hook-id.json"),
                400,
            ),
        ] {
            let req: HttpRequest = serde_json::from_str(file).unwrap();
            assert_eq!(handle(&w.services, req).await.status_code, expected);
        }
    }
}
