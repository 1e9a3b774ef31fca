//! The local HTTP server: API Gateway routes and the Lambda Invoke API, each request turned into
//! the event shape AWS would deliver and passed to the same handler as the Lambda binary.

use shared::wiring::profiles;
use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};
use shared::http::{HttpRequest, HttpResponse};
use shared::protocol::{ControlRequest, PipelineApplied};

use super::DevState;

/// API Gateway HTTP APIs refuse request bodies above 10 MB (413); the sandbox does the same.
/// Smaller ones reach the handler, which answers 413 above its own limit (the webhook's is 6 MiB,
/// Lambda's invoke payload limit).
pub const API_GATEWAY_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Lambda's synchronous Invoke refuses payloads above 6 MB (`RequestEntityTooLargeException`).
pub const LAMBDA_MAX_INVOKE_BYTES: usize = 6 * 1024 * 1024;

pub fn router(state: DevState) -> Router {
    Router::new()
        .route("/", get(index))
        .route(
            "/webhooks/github",
            post(webhook_route).layer(DefaultBodyLimit::max(API_GATEWAY_MAX_BODY_BYTES)),
        )
        .route(
            "/approvals/{token}",
            get(approvals_route)
                .head(approvals_route)
                .post(approvals_route)
                .layer(DefaultBodyLimit::max(API_GATEWAY_MAX_BODY_BYTES)),
        )
        .route("/status/{token}", get(status_route).head(status_route))
        .route(
            "/2015-03-31/functions/{name}/invocations",
            post(invoke).layer(DefaultBodyLimit::max(LAMBDA_MAX_INVOKE_BYTES)),
        )
        .route("/_dev/outbox", get(outbox))
        .route("/_dev/github", get(github_calls))
        .route("/_dev/chat", get(chat_notices))
        .fallback(not_found)
        .with_state(state)
}

async fn index() -> Json<Value> {
    Json(json!({
        "service": "shipgate dev",
        "routes": ["POST /webhooks/github", "GET|HEAD|POST /approvals/{token}", "GET|HEAD /status/{token}", "POST /2015-03-31/functions/{name}/invocations", "GET /_dev/outbox[?for=APPROVER]", "GET /_dev/github", "GET /_dev/chat"],
        "functions": FUNCTIONS,
    }))
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response()
}

/// Every message on the approval topic (each with its `audience`); `?for=alice@example.com`:
/// what that demo approver's mailbox received (their subscription's filter policy applied).
async fn outbox(
    State(state): State<DevState>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Json<Value> {
    let approver = query.as_deref().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "for")
            .map(|(_, v)| v.replace("%40", "@").to_ascii_lowercase())
    });
    let messages = match approver {
        Some(a) => state
            .mailboxes
            .lock()
            .map(|m| m.get(&a).cloned().unwrap_or_default())
            .unwrap_or_default(),
        None => state.outbox.lock().map(|m| m.clone()).unwrap_or_default(),
    };
    Json(serde_json::to_value(messages).unwrap_or(Value::Array(vec![])))
}

/// What the fake GitHub API received: every call, and `(context, state)` in order.
async fn github_calls(State(state): State<DevState>) -> Json<Value> {
    match &state.github {
        Some(g) => Json(json!({ "api": g.base_url, "summary": g.summary(), "calls": g.calls() })),
        None => Json(json!({ "calls": [] })),
    }
}

/// The Amazon Q Developer chat JSON of every notice published.
async fn chat_notices(State(state): State<DevState>) -> Json<Value> {
    let all = state.chat.lock().map(|c| c.clone()).unwrap_or_default();
    Json(json!({ "notices": all }))
}

/// An API Gateway HTTP API (payload 2.0) event for an HTTP request.
fn apigw_event(
    method: &Method,
    path: &str,
    route: &str,
    headers: &HeaderMap,
    body: &Bytes,
    peer: SocketAddr,
) -> HttpRequest {
    let mut merged: HashMap<String, String> = HashMap::new();
    for (name, value) in headers {
        if let Ok(v) = value.to_str() {
            merged
                .entry(name.as_str().to_ascii_lowercase())
                .and_modify(|e| {
                    e.push(',');
                    e.push_str(v);
                })
                .or_insert_with(|| v.to_string());
        }
    }
    let pairs: Vec<(&str, &str)> = merged
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let text = std::str::from_utf8(body).ok();
    let mut req = shipgate_sandbox::apigw::request(
        method.as_str(),
        path,
        route,
        &pairs,
        if body.is_empty() { None } else { text },
        &peer.ip().to_string(),
    );
    if !body.is_empty() && text.is_none() {
        req.body = Some(base64::engine::general_purpose::STANDARD.encode(body));
        req.is_base64_encoded = true;
    }
    req
}

fn http_response(r: HttpResponse) -> Response {
    let status =
        StatusCode::from_u16(r.status_code as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, shared::http::body_text(&r)).into_response();
    for (name, value) in r.headers.iter() {
        if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
            if let Ok(n) = axum::http::HeaderName::from_bytes(name.as_str().as_bytes()) {
                resp.headers_mut().insert(n, v);
            }
        }
    }
    resp
}

/// A body the route refused (over its limit: API Gateway's own 413 answer).
fn api_rejection(e: BytesRejection) -> Response {
    let status = e.status();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "Request Entity Too Large".to_string()
    } else {
        e.body_text()
    };
    (status, Json(json!({ "message": message }))).into_response()
}

async fn webhook_route(
    State(state): State<DevState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return api_rejection(e),
    };
    let event = apigw_event(
        &method,
        "/webhooks/github",
        "/webhooks/github",
        &headers,
        &body,
        peer,
    );
    let svc = state.services_of(&profiles::WEBHOOK);
    http_response(webhook::handler::handle(&svc, event).await)
}

async fn approvals_route(
    State(state): State<DevState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return api_rejection(e),
    };
    let path = format!("/approvals/{token}");
    let event = apigw_event(&method, &path, "/approvals/{token}", &headers, &body, peer);
    let svc = state.services_of(&profiles::APPROVALS);
    let resp = approvals::handler::handle(&svc, event).await;
    if method == Method::HEAD {
        let mut r = http_response(resp);
        *r.body_mut() = axum::body::Body::empty();
        return r;
    }
    http_response(resp)
}

/// The read-only status page, served by the approvals function as API Gateway routes it.
async fn status_route(
    State(state): State<DevState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let path = format!("/status/{token}");
    let event = apigw_event(
        &method,
        &path,
        "/status/{token}",
        &headers,
        &Bytes::new(),
        peer,
    );
    let svc = state.services_of(&profiles::APPROVALS);
    let resp = approvals::handler::handle(&svc, event).await;
    if method == Method::HEAD {
        let mut r = http_response(resp);
        *r.body_mut() = axum::body::Body::empty();
        return r;
    }
    http_response(resp)
}

pub const FUNCTIONS: &[&str] = &[
    "webhook",
    "codecommit",
    "build-events",
    "deploy-events",
    "approvals",
    "control",
    "sweeper",
];

/// `name`, `shipgate-name`, or a function ARN → the function.
fn function_name(raw: &str) -> Option<&'static str> {
    let name = raw.rsplit(':').next().unwrap_or(raw);
    let name = name.strip_prefix("shipgate-").unwrap_or(name);
    FUNCTIONS.iter().copied().find(|f| *f == name)
}

fn lambda_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let mut r = (
        status,
        Json(json!({"Type": "User", "message": message, "Message": message})),
    )
        .into_response();
    r.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_str(kind).unwrap_or(HeaderValue::from_static("ServiceException")),
    );
    r
}

/// The Lambda Invoke API (`aws lambda invoke`, the SDK's `Invoke`).
async fn invoke(
    State(state): State<DevState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return lambda_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
                &format!("Request must be smaller than {LAMBDA_MAX_INVOKE_BYTES} bytes for the InvokeFunction operation"),
            )
        }
        Err(e) => {
            return lambda_error(e.status(), "InvalidRequestContentException", &e.body_text())
        }
    };
    let Some(function) = function_name(&name) else {
        return lambda_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {name}"),
        );
    };
    let payload: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return lambda_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    &format!("Could not parse request body into json: {e}"),
                )
            }
        }
    };
    let Some(profile) = profiles::by_name(function) else {
        return lambda_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {function}"),
        );
    };
    let svc = &state.services_of(profile);
    let result: Result<Value, (String, String)> = match function {
        "control" => {
            let applies = matches!(
                ControlRequest::decode_proven(payload.clone()),
                Ok((ControlRequest::ApplyPipeline(_), _))
            );
            let answer = control::handler::handle(svc, payload).await;
            if applies {
                provision_applied(&state, &answer).await;
            }
            Ok(answer)
        }
        "webhook" | "approvals" => match serde_json::from_value::<HttpRequest>(payload) {
            Ok(req) => {
                let resp = if function == "webhook" {
                    webhook::handler::handle(svc, req).await
                } else {
                    approvals::handler::handle(svc, req).await
                };
                Ok(serde_json::to_value(resp).unwrap_or(Value::Null))
            }
            Err(e) => Err((
                "InvalidEvent".into(),
                format!("not an API Gateway HTTP API event: {e}"),
            )),
        },
        "codecommit" => codecommit::handler::handle(svc, payload)
            .await
            .map_err(diagnostic),
        "build-events" => build_events::handler::handle(svc, payload)
            .await
            .map_err(diagnostic),
        "deploy-events" => deploy_events::handler::handle(svc, payload)
            .await
            .map_err(diagnostic),
        "sweeper" => sweeper::handler::handle(svc, payload)
            .await
            .map_err(diagnostic),
        _ => unreachable!("FUNCTIONS lists every name"),
    };
    let mut resp = match result {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err((error_type, message)) => {
            let mut r = (
                StatusCode::OK,
                Json(json!({"errorType": error_type, "errorMessage": message})),
            )
                .into_response();
            r.headers_mut().insert(
                "x-amz-function-error",
                HeaderValue::from_static("Unhandled"),
            );
            r
        }
    };
    resp.headers_mut().insert(
        "x-amz-executed-version",
        HeaderValue::from_static("$LATEST"),
    );
    resp
}

/// After `apply_pipeline`: create what the pipeline names in the local AWS when it is missing, so
/// a push right after runs like one to the demo pipeline. The answer is the control function's,
/// unchanged.
async fn provision_applied(state: &DevState, answer: &Value) {
    // a refusal is not a `PipelineApplied`
    let Ok(PipelineApplied { pipeline: name, .. }) = serde_json::from_value(answer.clone()) else {
        return;
    };
    let name = name.as_str();
    let pipeline = match state.services.store.get_pipeline(name).await {
        Ok(Some(p)) => p.definition,
        Ok(None) => return,
        Err(e) => {
            println!("[sandbox] pipeline {name}: cannot read it back: {e}");
            return;
        }
    };
    match super::resources::ensure(&state.sdk, &pipeline, &state.provisioned.outbox_queue_url).await
    {
        Ok(created) => super::print_created(name, &created),
        Err(e) => println!("[sandbox] pipeline {name}: cannot create its resources: {e}"),
    }
}

fn diagnostic(e: shared::runtime::EventError) -> (String, String) {
    let d: lambda_runtime::Diagnostic = e.into();
    (d.error_type, d.error_message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names() {
        assert_eq!(function_name("control"), Some("control"));
        assert_eq!(function_name("shipgate-control"), Some("control"));
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:shipgate-build-events"),
            Some("build-events")
        );
        assert_eq!(function_name("shipgate-nope"), None);
        assert_eq!(function_name("sweeper"), Some("sweeper"));
        assert_eq!(function_name("shipgate-sweeper"), Some("sweeper"));
    }
}
