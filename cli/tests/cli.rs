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
    assert!(
        contains(&out.stdout, "DEPLOYING_TEST → AWAITING_APPROVAL"),
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
        .args(["rollback", "demo", "--env", "prod", "--json"])
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
    let out = shipgate(&sb)
        .args(["rollback", "demo", "--to", "deadbeefdeadbeef"])
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
}
