//! Seeing releases from a terminal and a browser, through the real `shipgate` binary against
//! `shipgate dev`: `release --wait`, `watch`, `logs` (from the sandbox's local CloudWatch
//! Logs), `show`'s links, the status page link, and the rollback confirmation.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::DevSandbox;

fn shipgate(sb: &DevSandbox) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipgate"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .envs(&sb.env)
        .stdin(Stdio::null());
    cmd
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Wait for a child with a deadline; kill it if it overruns.
fn wait_output(mut child: std::process::Child, within: Duration) -> std::process::Output {
    let deadline = Instant::now() + within;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {within:?}: {}\n{}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn approval_link(message: &serde_json::Value) -> String {
    message["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .find(|l| l.contains("/approvals/"))
        .expect("approval link")
        .to_string()
}

#[tokio::test]
async fn release_wait_exits_0_once_the_approval_link_is_posted() {
    let Some(sb) = DevSandbox::start("vis-wait") else {
        return;
    };
    let child = shipgate(&sb)
        .args(["release", "demo", "--wait", "--interval", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // the release was requested by the CLI identity, which the demo lists as alice: her own
    // change, so bob approves (with his personal link)
    let deadline = Instant::now() + Duration::from_secs(60);
    let message = loop {
        assert!(Instant::now() < deadline, "no approval message for bob");
        if let Some(m) = sb.outbox().await.into_iter().find(|m| {
            m["subject"].as_str().unwrap_or("").contains("Approve demo")
                && m["audience"] == "bob@example.com"
        }) {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // the approval request carries the read-only status page link too
    let body = message["message"].as_str().unwrap_or_default();
    assert!(
        body.contains("Status page (read-only, valid 14 days): http"),
        "{body}"
    );
    // the demo pipeline lists approvers: this is one approver's personal link, recorded as theirs
    let owner = message["audience"].as_str().unwrap_or_default().to_string();
    let link = approval_link(&message);
    let post = reqwest::Client::new()
        .post(&link)
        .form(&[("decision", "approve"), ("name", "Grace Hopper")])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 200);
    let out = tokio::task::spawn_blocking(move || wait_output(child, Duration::from_secs(90)))
        .await
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for needle in [
        "RECEIVED → BUILDING",
        // the demo pipeline verifies test and bakes prod (docs/verification.md)
        "VERIFYING_TEST → AWAITING_APPROVAL",
        "AWAITING_APPROVAL → DEPLOYING_PROD",
        "BAKING_PROD → SUCCEEDED",
        " UTC ",
        "shipgate logs ",
        "prod console  https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/demo-prod/services/hello-prod",
    ] {
        assert!(stdout.contains(needle), "{needle:?} in {stdout}");
    }
    assert!(
        stdout.contains(&format!("approved by {owner}")),
        "the link's owner, not the typed name, in {stdout}"
    );
    assert!(!stdout.contains("Grace Hopper"), "{stdout}");
    assert!(!stdout.contains("\x1b["), "NO_COLOR: no colours");
    // each transition once
    assert_eq!(stdout.matches("BAKING_PROD → SUCCEEDED").count(), 1);
}

#[tokio::test]
async fn watch_a_failed_build_exits_10_with_the_logs_link_and_logs_prints_the_build_log() {
    let Some(sb) = DevSandbox::start("vis-watch") else {
        return;
    };
    let (_, body) = sb.push("Break it [fail-build]").await;
    let id = body["execution_id"].as_str().unwrap().to_string();
    let child = shipgate(&sb)
        .args(["watch", &id, "--interval", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = tokio::task::spawn_blocking(move || wait_output(child, Duration::from_secs(60)))
        .await
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(10),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("BUILDING → BUILD_FAILED"), "{stdout}");
    assert!(stdout.contains(&format!("shipgate logs {id}")), "{stdout}");
    assert!(
        stdout.contains("log group     /aws/codebuild/hello-build stream "),
        "{stdout}"
    );
    assert!(stdout.contains("build console https://us-east-1.console.aws.amazon.com/codesuite/codebuild/projects/hello-build/build/hello-build%3A"));

    // the log the sandbox wrote to its local CloudWatch Logs, through the CLI
    let out = shipgate(&sb).args(["logs", &id]).output().unwrap();
    let log = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{log}\n{}", text(&out.stderr));
    let sha = sb.show(&id).await["commit"]["sha"]
        .as_str()
        .unwrap()
        .to_string();
    for needle in [
        "[Container] Entering phase BUILD",
        &format!("[Container] Source version: {sha}"),
        "test result: FAILED",
        "Phase context status code: COMMAND_EXECUTION_ERROR",
    ] {
        assert!(log.contains(needle), "{needle:?} in {log}");
    }
    assert!(text(&out.stderr).contains("log group /aws/codebuild/hello-build"));
    // --follow on an ended build prints the same and ends; --output json gives one event a line
    let out = shipgate(&sb)
        .args(["logs", &id, "--follow", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), log.lines().count());
    assert!(events.iter().all(|e| e["timestamp"].is_i64()));

    // show names the build and where its log is
    let out = shipgate(&sb).args(["show", &id]).output().unwrap();
    let shown = text(&out.stdout);
    assert!(shown.contains("build         hello-build:"), "{shown}");
    assert!(shown.contains("log console   https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/$252Faws$252Fcodebuild$252Fhello-build/log-events/"), "{shown}");

    // unknown execution: refused (1); not an id: 1
    let out = shipgate(&sb)
        .args(["watch", "01JD3V5X8Q2M4N6P7R9S0T1V2W"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = shipgate(&sb).args(["logs", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn status_link_rollback_confirmation_and_completions() {
    let Some(sb) = DevSandbox::start("vis-link") else {
        return;
    };
    let out = shipgate(&sb)
        .args(["status", "demo", "--link", "--link-days", "2"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let url = stdout
        .split_whitespace()
        .find(|w| w.contains("/status/"))
        .expect("a status page link")
        .to_string();
    assert!(url.starts_with(&sb.base), "{url}");
    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    let html = page.text().await.unwrap();
    assert!(html.contains("demo") && html.contains("Nothing deployed by shipgate yet."));
    let tampered = format!("{}x", &url[..url.len() - 1]);
    let bad = reqwest::get(&tampered).await.unwrap();
    assert!(
        matches!(bad.status().as_u16(), 400 | 403),
        "{}",
        bad.status()
    );
    assert!(bad.text().await.unwrap().contains("never changes anything"));
    let post = reqwest::Client::new().post(&url).send().await.unwrap();
    assert!(post.status().is_client_error());

    // a rollback without a terminal to ask on needs --yes, and changes nothing
    let out = shipgate(&sb).args(["rollback", "demo"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("add --yes"),
        "{}",
        text(&out.stderr)
    );
    let v = sb
        .control(serde_json::json!({"command": "list_executions", "pipeline": "demo"}))
        .await;
    assert_eq!(v["executions"].as_array().unwrap().len(), 0, "{v}");

    // completions and AWS habits
    let out = shipgate(&sb)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("_shipgate()"));
    let out = shipgate(&sb)
        .args(["status", "--region", "us-east-1", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pipelines"][0]["pipeline"], "demo");
    // --endpoint-url wins over AWS_ENDPOINT_URL_LAMBDA: a dead endpoint cannot be reached (3)
    let out = shipgate(&sb)
        .args(["status", "--endpoint-url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let out = shipgate(&sb).args(["status", "--debug"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("DEBUG"), "{}", text(&out.stderr));
}
