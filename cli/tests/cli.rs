//! The `shipgate` binary against the control handler served on a loopback Lambda Invoke API
//! (`shipgate dev`), with the environment `.shipgate/dev.env` gives.

mod common;

use assert_cmd::Command;
use common::DevSandbox;
use predicates_like::*;

/// Tiny string predicates (assert_cmd's own use the `predicates` crate; these read plainly).
mod predicates_like {
    pub fn contains(haystack: &[u8], needle: &str) -> bool {
        String::from_utf8_lossy(haystack).contains(needle)
    }
}

fn shipgate(sb: &DevSandbox) -> Command {
    let mut cmd = Command::cargo_bin("shipgate").unwrap();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&sb.env);
    cmd
}

#[tokio::test]
async fn status_show_approve_and_errors() {
    let Some(sb) = DevSandbox::start("cli") else {
        return;
    };

    let out = shipgate(&sb).args(["status", "demo"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(contains(&out.stdout, "demo (github:shipgate-demo/hello)"));
    assert!(contains(&out.stdout, "nothing deployed by shipgate yet"));

    let (_, body) = sb.push("CLI test change").await;
    let id = body["execution_id"].as_str().unwrap().to_string();
    sb.wait_for(&id, "AWAITING_APPROVAL").await;

    let out = shipgate(&sb).args(["show", &id]).output().unwrap();
    assert!(out.status.success());
    assert!(contains(&out.stdout, "AWAITING_APPROVAL"));
    // the demo pipeline verifies test (docs/verification.md) before asking for approval
    assert!(
        contains(&out.stdout, "DEPLOYING_TEST → VERIFYING_TEST")
            && contains(&out.stdout, "VERIFYING_TEST → AWAITING_APPROVAL"),
        "timeline shown"
    );

    let out = shipgate(&sb)
        .args(["approve", &id, "--comment", "from the CLI test"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(contains(&out.stdout, "DEPLOYING_PROD") || contains(&out.stdout, "SUCCEEDED"));
    let e = sb.show(&id).await;
    assert_eq!(e["approval"]["decision"]["channel"], "cli");
    assert!(
        e["approval"]["decision"]["actor"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:"),
        "actor is the caller's ARN"
    );
    sb.wait_for(&id, "SUCCEEDED").await;

    let out = shipgate(&sb)
        .args(["status", "demo", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["pipelines"][0]["prod"]["current"]["execution_id"],
        id.as_str()
    );

    // a second release, then roll back: the first one runs again, and the history says how
    let (_, body) = sb.push("CLI second change").await;
    let second = body["execution_id"].as_str().unwrap().to_string();
    sb.wait_for(&second, "AWAITING_APPROVAL").await;
    let out = shipgate(&sb).args(["approve", &second]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    sb.wait_for(&second, "SUCCEEDED").await;
    let out = shipgate(&sb)
        .args(["rollback", "demo", "--env", "prod", "--json", "--yes"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rb: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rb["execution"]["trigger"]["restores"], id.as_str(), "{rb}");
    let rb_id = rb["execution"]["id"].as_str().unwrap().to_string();
    sb.wait_for(&rb_id, "SUCCEEDED").await;
    // marked by the rollback's completion (an effect after its SUCCEEDED is stored)
    sb.wait_for(&second, "ROLLED_BACK").await;
    let out = shipgate(&sb)
        .args(["status", "demo", "--history"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        contains(&out.stdout, &format!("(restores {id})")) && contains(&out.stdout, "HOW"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // a reader that closes the pipe early (`| head`) is no reason to panic
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("shipgate"))
        .args(["status", "demo", "--history"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&sb.env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        !contains(&out.stderr, "panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // a closed stdout ends the command quietly: 141 like a shell's SIGPIPE, or 0 when the text
    // was written before the pipe closed
    assert!(
        matches!(out.status.code(), Some(0) | Some(141)),
        "{:?}",
        out.status
    );
    let out = shipgate(&sb)
        .args(["rollback", "demo", "--to", "deadbeefdeadbeef", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        contains(&out.stderr, "ever ran successfully here"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // errors: non-zero exit with a message
    let out = shipgate(&sb).args(["approve", &id]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(contains(&out.stderr, "already decided"));
    let out = shipgate(&sb).args(["show", "not-an-id"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(contains(&out.stderr, "not an execution id"));
    let out = shipgate(&sb).args(["executions", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = shipgate(&sb)
        .args(["status", "--function", "shipgate-missing"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");

    // a pipeline file with problems: every one listed with its path, nothing sent
    let bad = sb.state_dir.join("bad.toml");
    std::fs::write(&bad, "name = \"bad name\"\nmode = \"fast\"\n").unwrap();
    let out = shipgate(&sb)
        .args(["pipeline", "apply"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    for path in [
        "name:",
        "source:",
        "build:",
        "image:",
        "test:",
        "prod:",
        "approval:",
        "mode:",
    ] {
        assert!(
            contains(&out.stderr, path),
            "{path} missing in {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = shipgate(&sb).args(["pipeline", "list"]).output().unwrap();
    assert!(contains(&out.stdout, "demo"));

    // pipeline show: the current definition; an update by this caller, then its history
    let out = shipgate(&sb)
        .args(["pipeline", "show", "demo", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut def = shown["pipeline"]["definition"].clone();
    def["keep_images"] = 7.into();
    let file = sb.state_dir.join("demo.json");
    std::fs::write(&file, def.to_string()).unwrap();
    let out = shipgate(&sb)
        .args(["pipeline", "apply"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(contains(&out.stdout, "keep_images"), "{out:?}");
    let out = shipgate(&sb)
        .args(["pipeline", "show", "demo", "--history"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("keep_images: 10 → 7"), "{text}");
    assert!(text.contains("created"), "{text}");
    assert!(
        text.contains("arn:aws:"),
        "the caller's ARN is recorded: {text}"
    );
    let out = shipgate(&sb)
        .args(["pipeline", "show", "demo"])
        .output()
        .unwrap();
    assert!(contains(&out.stdout, "\"keep_images\": 7"), "{out:?}");
}

#[test]
fn help_and_usage_errors() {
    let out = Command::cargo_bin("shipgate")
        .unwrap()
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    for cmd in [
        "pipeline",
        "status",
        "executions",
        "show",
        "approve",
        "reject",
        "retry",
        "rollback",
        "release",
        "watch",
        "logs",
        "completions",
        "dev",
    ] {
        assert!(contains(&out.stdout, cmd), "{cmd} in --help");
        let sub = Command::cargo_bin("shipgate")
            .unwrap()
            .args([cmd, "--help"])
            .output()
            .unwrap();
        assert!(sub.status.success(), "{cmd} --help");
    }
    let out = Command::cargo_bin("shipgate")
        .unwrap()
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::cargo_bin("shipgate")
        .unwrap()
        .args(["pipeline", "apply", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(contains(&out.stderr, "cannot read"));
    // a region the SDK would build a host name from is a usage error, from a flag or AWS_REGION
    for args in [
        &["status", "--region", "x.evil.example/#"][..],
        &["status", "--region", "eu west 1"][..],
    ] {
        let out = Command::cargo_bin("shipgate")
            .unwrap()
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(contains(&out.stderr, "not an AWS region name"), "{out:?}");
    }
    let out = Command::cargo_bin("shipgate")
        .unwrap()
        .env("AWS_REGION", "eu-west-1/x")
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::cargo_bin("shipgate")
        .unwrap()
        .args(["status", "--output", "yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `shipgate … | head -1`: a reader that closed stdout ends the command quietly (exit 141, as
/// SIGPIPE would), never with a panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::process::Stdio;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("shipgate"))
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{out:?}");
    assert!(!contains(&out.stderr, "panicked"), "{out:?}");
}

/// A second pipeline applied with `shipgate pipeline apply` gets its CodeBuild project, ECR
/// repository, clusters, services and topic in the local AWS, and `shipgate dev push --pipeline`
/// takes a push through build → test → approval → prod exactly like the demo's.
#[tokio::test]
async fn applied_pipeline_runs_like_the_demo() {
    let Some(sb) = DevSandbox::start("cli-pipeline") else {
        return;
    };
    let file = sb.state_dir.join("shop.toml");
    std::fs::write(
        &file,
        r#"
name = "shop"
source = { github = "acme/shop" }
branches = ["main"]
build = { project = "shop-build" }
image = { repository = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop" }
test = { cluster = "shop-test", service = "web-test", container = "web" }
prod = { cluster = "shop-prod", service = "web-prod", container = "web" }
approval = { topic_arn = "arn:aws:sns:us-east-1:123456789012:shop-approvals", timeout_hours = 24 }
"#,
    )
    .unwrap();
    let out = shipgate(&sb)
        .args(["pipeline", "apply"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // the sandbox prints what it created before it answers; its output may reach us later
    let printed = sb.wait_printed("ECS service shop-prod/web-prod");
    for created in [
        "[sandbox] pipeline shop: created in the local AWS:",
        "ECR repository shop",
        "CodeBuild project shop-build",
        "ECS cluster shop-test",
        "ECS service shop-test/web-test",
        "ECS cluster shop-prod",
        "ECS service shop-prod/web-prod",
        "SNS topic shop-approvals",
    ] {
        assert!(printed.contains(created), "{created:?} not in {printed}");
    }

    // a bad --repo is a usage error; an unknown pipeline a clear refusal
    let out = shipgate(&sb)
        .args(["dev", "push", "--repo", "no-slash"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = shipgate(&sb)
        .args(["dev", "push", "--pipeline", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(contains(&out.stderr, "no pipeline \"nope\""), "{out:?}");

    let out = shipgate(&sb)
        .args([
            "dev",
            "push",
            "--pipeline",
            "shop",
            "--message",
            "Shop change",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(contains(&out.stdout, "github:acme/shop"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("execution "))
        .expect("execution id printed")
        .trim()
        .to_string();

    let waiting = sb.wait_for(&id, "AWAITING_APPROVAL").await;
    assert_eq!(waiting["pipeline"], "shop");
    let digest = waiting["image"]["digest"].as_str().unwrap().to_string();
    assert!(waiting["image"]["repository_uri"]
        .as_str()
        .unwrap()
        .ends_with("/shop"));
    let (_, test_image) = sb.service_runs("shop-test", "web-test", "web").await;
    assert!(test_image.ends_with(&format!("@{digest}")), "{test_image}");
    // the approval request went through the new topic to the sandbox's outbox
    sb.message("Approve shop").await;

    let out = shipgate(&sb)
        .args(["approve", &id, "--comment", "ship it"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    sb.wait_for(&id, "SUCCEEDED").await;
    let (_, prod_image) = sb.service_runs("shop-prod", "web-prod", "web").await;
    assert_eq!(prod_image, test_image);
    // the demo pipeline's services were not touched
    let (_, demo_prod) = sb.service_runs("demo-prod", "hello-prod", "app").await;
    assert!(demo_prod.ends_with(":bootstrap"), "{demo_prod}");

    // a failed production deployment of this pipeline: its prod service keeps the release
    let (prod_td, _) = sb.service_runs("shop-prod", "web-prod", "web").await;
    let (_, body) = sb.push_to("acme/shop", "Bad config [fail-prod]").await;
    let bad = body["execution_id"].as_str().unwrap().to_string();
    sb.wait_for(&bad, "AWAITING_APPROVAL").await;
    let out = shipgate(&sb).args(["approve", &bad]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    sb.wait_for(&bad, "PROD_FAILED").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (td, image) = sb.service_runs("shop-prod", "web-prod", "web").await;
        if td == prod_td {
            assert_eq!(image, test_image);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "shop-prod runs {td}, not {prod_td}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }

    // a pipeline whose source is CodeCommit: `dev push --pipeline` sends the CodeCommit event
    let tools = sb.state_dir.join("tools.yaml");
    std::fs::write(
        &tools,
        "name: tools\nsource: { codecommit: tools }\nbuild: { project: tools-build }\n\
image: { repository: 123456789012.dkr.ecr.us-east-1.amazonaws.com/tools }\n\
test: { cluster: tools-test, service: api-test, container: api }\n\
prod: { cluster: tools-prod, service: api-prod, container: api }\n\
approval: { topic_arn: 'arn:aws:sns:us-east-1:123456789012:shipgate-approvals', timeout_hours: 24 }\n",
    )
    .unwrap();
    let out = shipgate(&sb)
        .args(["pipeline", "apply"])
        .arg(&tools)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    sb.wait_printed("CodeBuild project tools-build");
    let out = shipgate(&sb)
        .args([
            "dev",
            "push",
            "--pipeline",
            "tools",
            "--message",
            "Tools change",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(contains(&out.stdout, "codecommit:tools"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let tools_id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("execution "))
        .expect("execution id printed")
        .trim()
        .to_string();
    let waiting = sb.wait_for(&tools_id, "AWAITING_APPROVAL").await;
    assert_eq!(waiting["pipeline"], "tools");
    let (_, tools_image) = sb.service_runs("tools-test", "api-test", "api").await;
    assert!(tools_image.ends_with(waiting["image"]["digest"].as_str().unwrap()));

    // applying it again creates nothing
    let before = sb.printed().matches("[sandbox] pipeline shop").count();
    let out = shipgate(&sb)
        .args(["pipeline", "apply"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        sb.printed().matches("[sandbox] pipeline shop").count(),
        before
    );
    assert!(
        !sb.printed().contains("cannot create its resources"),
        "{}",
        sb.printed()
    );
}

/// The sweeper answers its report through the sandbox's Lambda Invoke API, under both names.
#[tokio::test]
async fn sweeper_through_the_invoke_api() {
    let Some(sb) = DevSandbox::start("cli-sweeper") else {
        return;
    };
    for name in ["shipgate-sweeper", "sweeper"] {
        let resp = reqwest::Client::new()
            .post(format!(
                "{}/2015-03-31/functions/{name}/invocations",
                sb.base
            ))
            .body(include_str!("../../events/scheduled/sweeper.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{name}");
        assert!(
            resp.headers().get("x-amz-function-error").is_none(),
            "{name}"
        );
        let report: serde_json::Value = resp.json().await.unwrap();
        for key in [
            "expired",
            "builds_reconciled",
            "deployments_reconciled",
            "resumed",
            "images_deleted",
            "bytes_freed",
        ] {
            assert!(
                report[key].is_u64() || report[key].is_i64(),
                "{name}: {key} in {report}"
            );
        }
        assert!(report["errors"].as_array().unwrap().is_empty(), "{report}");
    }
}
