//! `shipgate doctor` and the coverage check of `shipgate pipeline apply`, through the built
//! binary against `shipgate dev`'s local AWS and its stand-in stack (sandbox/src/stack.rs).

mod common;

use assert_cmd::Command;
use common::DevSandbox;

fn shipgate(sb: &DevSandbox) -> Command {
    let mut cmd = Command::cargo_bin("shipgate").unwrap();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&sb.env);
    cmd
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The demo's resources, but a prod service the stand-in stack's ProdServiceArns does not list.
fn uncovered_pipeline(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("uncovered.toml");
    std::fs::write(
        &path,
        r#"
name = "uncovered"
source = { github = "shipgate-demo/uncovered" }
build = { project = "hello-build" }
image = { repository = "123456789012.dkr.ecr.us-east-1.amazonaws.com/hello" }
test = { cluster = "demo-test", service = "hello-test", container = "app" }
prod = { cluster = "demo-prod", service = "uncovered-prod", container = "app" }
approval = { topic_arn = "arn:aws:sns:us-east-1:123456789012:shipgate-approvals" }
"#,
    )
    .unwrap();
    path
}

const UNCOVERED_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:service/demo-prod/uncovered-prod";

#[tokio::test]
async fn doctor_against_the_sandbox_then_an_uncovered_prod_service() {
    let Some(sb) = DevSandbox::start("doctor") else {
        return;
    };

    // make dev as it starts: every check passes
    let out = shipgate(&sb).arg("doctor").output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(!stdout.contains('✗'), "{stdout}");
    for line in [
        "✓ AWS identity",
        "✓ stack shipgate: CREATE_COMPLETE",
        "✓ control invocable",
        "✓ deployment events rule",
        "✓ dead-letter queue: empty",
        "✓ GitHub webhook secret: present",
        "pipeline demo",
        "✓ prod circuit breaker: on, with rollback",
        "✓ approval subscribers: 3 confirmed", // the outbox and the two demo approvers' mailboxes
        "✓ prod service allowed",
        // the demo verifies both environments with a smoke test and bakes watching an alarm
        "✓ smoke test project shipgate-smoke-hello: exists",
        "✓ test smoke test allowed: shipgate-smoke-hello starts with SmokeProjectNamePrefix (shipgate-smoke-)",
        "✓ prod smoke test allowed",
        "✓ bake alarms readable: 1 alarm(s), each starting with VerifyAlarmNamePrefix (shipgate-)",
    ] {
        assert!(stdout.contains(line), "{line:?} in {stdout}");
    }
    assert!(stdout.contains("checks passed"), "{stdout}");
    // the secret's value is never printed
    assert!(!stdout.contains("shipgate-dev-webhook-secret"));

    let out = shipgate(&sb).args(["doctor", "--json"]).output().unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    assert!(doc["checks"].as_array().unwrap().len() >= 25);

    // --strict refuses an uncovered pipeline, names the parameter, and stores nothing
    let file = uncovered_pipeline(&sb.state_dir);
    let out = shipgate(&sb)
        .args(["pipeline", "apply", "--strict"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ProdServiceArns"), "{stderr}");
    assert!(stderr.contains(UNCOVERED_ARN), "{stderr}");
    assert!(stderr.contains("nothing was stored"), "{stderr}");
    let out = shipgate(&sb)
        .args(["pipeline", "show", "uncovered"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "not stored: {out:?}");
    assert!(text(&out.stderr).contains("not_found"));

    // without --strict: stored, with the warning
    let out = shipgate(&sb)
        .args(["pipeline", "apply"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: stack shipgate does not cover pipeline uncovered"),
        "{stderr}"
    );
    assert!(stderr.contains("ProdServiceArns"), "{stderr}");
    assert!(text(&out.stdout).contains("pipeline uncovered: created"));

    // doctor: ✗ naming the stack parameter, exit 1; the rest of the pipeline is fine
    let out = shipgate(&sb)
        .args(["doctor", "--pipeline", "uncovered"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let failures: Vec<&str> = stdout.lines().filter(|l| l.contains('✗')).collect();
    assert_eq!(failures.len(), 2, "{stdout}");
    assert!(failures[0].contains("✗ prod service allowed"), "{stdout}");
    assert!(failures[0].contains(UNCOVERED_ARN), "{stdout}");
    assert!(
        failures[1].contains("✗ prod deployment events reach shipgate"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "fix: add {UNCOVERED_ARN} to the stack parameter ProdServiceArns"
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("pipeline demo"), "--pipeline checks one");

    // every pipeline (the default): the demo still passes, the run fails
    let out = shipgate(&sb).args(["doctor", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    let failed: Vec<&serde_json::Value> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|c| c["section"] == "pipeline uncovered"));
    assert!(failed
        .iter()
        .all(|c| c["fix"].as_str().unwrap().contains("ProdServiceArns")));

    // an unknown pipeline, an unknown stack
    let out = shipgate(&sb)
        .args(["doctor", "--pipeline", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("✗ pipeline: no such pipeline"));
    let out = shipgate(&sb)
        .args(["doctor", "--stack", "staging"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("✗ stack staging: not found"), "{stdout}");
    assert!(stdout.contains("--stack NAME"), "{stdout}");

    // apply against a stack that does not exist: a warning; with --strict a refusal
    let out = shipgate(&sb)
        .args(["pipeline", "apply", "--strict", "--stack", "staging"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot check that stack staging covers"));
}

#[test]
fn doctor_without_aws_fails_cleanly() {
    // no credentials, no region, nothing listening: ✗ lines and exit 1, never a panic
    let out = Command::cargo_bin("shipgate")
        .unwrap()
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .arg("doctor")
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("✗ AWS identity"), "{stdout}");
    assert!(stdout.contains("✗ region"), "{stdout}");
}
