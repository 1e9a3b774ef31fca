//! Hostile and oversized input against `shipgate dev`, over HTTP only (issue 14, items 1–4 and
//! the sandbox's body limits of item 7).

mod common;

use std::time::{Duration, Instant};

use common::DevSandbox;
use serde_json::{json, Value};

async fn post_webhook(sb: &DevSandbox, body: &str, delivery: &str, hook: &str) -> (u16, Value) {
    let sig = shared::domain::github::sign_body(
        sb.env["SHIPGATE_DEV_WEBHOOK_SECRET"].as_bytes(),
        body.as_bytes(),
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/webhooks/github", sb.base))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", delivery)
        .header("x-github-hook-id", hook)
        .header("x-hub-signature-256", sig)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn push_body(message: &str) -> String {
    let sha = format!("{:040x}", ulid::Ulid::new().0 >> 8);
    json!({
        "ref": "refs/heads/main",
        "before": "1e3c5a7b9d2f4e6a8c0b1d3f5a7c9e2b4d6f8a0c",
        "after": sha,
        "repository": {"full_name": "shipgate-demo/hello", "pushed_at": 1_764_000_000},
        "pusher": {"name": "e2e"},
        "head_commit": {"id": sha, "message": message, "author": {"name": "E2E Test"}},
        "commits": [{"id": sha, "added": [], "removed": [], "modified": ["src/main.py"]}]
    })
    .to_string()
}

#[tokio::test]
async fn hostile_input_through_the_sandbox() {
    let Some(sb) = DevSandbox::start("hostile") else {
        return;
    };

    // 1. test = prod written as a cluster ARN and a name: refused at apply time
    let listed = sb.control(json!({"command": "list_pipelines"})).await;
    let mut pipeline = listed["pipelines"][0]["definition"].clone();
    if pipeline.is_null() {
        pipeline = listed["pipelines"][0].clone();
    }
    assert_eq!(pipeline["name"], "demo", "{listed}");
    let mut evil = pipeline.clone();
    evil["name"] = "evil".into();
    evil["test"]["cluster"] = format!(
        "arn:aws:ecs:us-east-1:123456789012:cluster/{}",
        pipeline["prod"]["cluster"].as_str().unwrap()
    )
    .into();
    evil["test"]["service"] = pipeline["prod"]["service"].clone();
    let out = sb
        .control(json!({"command": "apply_pipeline", "pipeline": evil}))
        .await;
    assert_eq!(out["error"]["code"], "invalid_pipeline", "{out}");
    assert_eq!(out["error"]["details"][0]["path"], "prod.service", "{out}");

    // 3. parser and glob bombs: clear errors, fast, nothing stored
    let started = Instant::now();
    let yaml = format!("name: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    let out = sb
        .control(json!({"command": "apply_pipeline", "format": "yaml", "definition": yaml}))
        .await;
    assert_eq!(out["error"]["code"], "invalid_pipeline", "{out}");
    let mut bomb = pipeline.clone();
    bomb["branches"] = json!(["{".repeat(25_000) + &"}".repeat(25_000)]);
    let out = sb
        .control(json!({"command": "apply_pipeline", "pipeline": bomb}))
        .await;
    assert_eq!(out["error"]["details"][0]["path"], "branches[0]", "{out}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let listed = sb.control(json!({"command": "list_pipelines"})).await;
    assert_eq!(listed["pipelines"].as_array().unwrap().len(), 1, "{listed}");

    // 2. a captured request re-sent with new delivery and hook ids starts nothing
    let body = push_body("Replayed change");
    let (status, first) = post_webhook(&sb, &body, "r-1", "1").await;
    assert_eq!(status, 202, "{first}");
    for (delivery, hook) in [("r-2", "1"), ("r-3", "2"), ("r-4", "3"), ("r-5", "4")] {
        let (status, again) = post_webhook(&sb, &body, delivery, hook).await;
        assert_eq!(status, 202, "{again}");
        assert_eq!(again["execution_id"], first["execution_id"]);
        assert_eq!(again["duplicate"], true);
    }
    let id = first["execution_id"].as_str().unwrap().to_string();
    sb.wait_for(&id, "AWAITING_APPROVAL").await;

    // 4. a 420 KB commit message: accepted, reaches approval, the e-mail is sent
    let big = format!("Huge change\n\n{}", "y".repeat(420_000));
    let (status, out) = post_webhook(&sb, &push_body(&big), "big-1", "1").await;
    assert_eq!(status, 202, "{out}");
    let big_id = out["execution_id"].as_str().unwrap().to_string();
    let exec = sb.wait_for(&big_id, "AWAITING_APPROVAL").await;
    let stored = exec["commit"]["message"].as_str().unwrap();
    assert!(
        stored.ends_with("(truncated, 420013 bytes)"),
        "{}",
        &stored[stored.len() - 40..]
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let message = loop {
        let found = sb
            .outbox()
            .await
            .into_iter()
            .find(|m| m["subject"].as_str().unwrap_or("").contains("Huge change"));
        if let Some(m) = found {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "no approval e-mail for the big push"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(message["message"].as_str().unwrap().len() < 16 * 1024);
    assert!(message["links"][0]
        .as_str()
        .unwrap()
        .contains("/approvals/"));

    // 7. body limits as in AWS: 3 MB reaches the handler (an unsigned body: 401), 7 MB gets the
    //    handler's 413, 11 MB API Gateway's 413; the Invoke API refuses over 6 MB
    let client = reqwest::Client::new();
    for (size, expected, needle) in [
        (3_000_000usize, 401u16, "X-Hub-Signature-256"),
        (7_000_000, 413, "payload larger than 6291456 bytes"),
        (11_000_000, 413, "Request Entity Too Large"),
    ] {
        let resp = client
            .post(format!("{}/webhooks/github", sb.base))
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-github-delivery", "size")
            .body(" ".repeat(size))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), expected, "{size}");
        let text = resp.text().await.unwrap();
        assert!(text.contains(needle), "{size}: {text}");
    }
    let resp = client
        .post(format!(
            "{}/2015-03-31/functions/shipgate-control/invocations",
            sb.base
        ))
        .body(format!("{{\"command\": \"{}\"}}", "x".repeat(7_000_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    assert_eq!(
        resp.headers()["x-amzn-errortype"],
        "RequestEntityTooLargeException"
    );
}
