//! The verifications' smoke tests end to end against `shipgate dev`: deploy-events starts the
//! demo smoke project's build after the real `/health` check passed (in test, and in production
//! after the approval), the pump finishes it like CodeBuild (a GET of `TARGET_URL`) and
//! delivers its "Build State Change" to deploy-events (the smoke projects' rule). A healthy
//! push passes it and the approval message says so; a `[smoke-fail]` push ends TEST_FAILED
//! with the build's logs link and no approval message; what `status` says test runs is what ECS
//! runs there (the failed push's image: nothing rolls test back), and production never runs it.
//! In production: the healthy release passes its smoke test and bake (SUCCEEDED); an approved
//! `[prod-smoke-fail]` release is rolled back automatically (ROLLED_BACK), and production runs,
//! and `status` shows, the healthy release again.

mod common;

use common::DevSandbox;
use serde_json::{json, Value};

fn text_of(message: &Value) -> String {
    message["body"]
        .as_str()
        .or(message["message"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| message.to_string())
}

async fn count_approvals(sb: &DevSandbox) -> usize {
    sb.outbox()
        .await
        .iter()
        .filter(|m| m["subject"].as_str().unwrap_or("").contains("Approve demo"))
        .count()
}

#[tokio::test]
async fn smoke_test_passes_into_approval_and_smoke_fail_stops_test() {
    let Some(mut sb) = DevSandbox::start("smoke") else {
        return;
    };
    // shipgate dev prints the demo smoke test
    sb.wait_printed("smoke test shipgate-smoke-hello");

    // healthy: check, smoke build, approval naming the smoke test
    let (status, body) = sb.push("Add a greeting").await;
    assert_eq!(status, 202, "{body}");
    let good = body["execution_id"].as_str().unwrap().to_string();
    let waiting = sb.wait_for(&good, "AWAITING_APPROVAL").await;
    let smoke = &waiting["verify_test"]["smoke"];
    assert_eq!(smoke["outcome"], "SUCCEEDED", "{waiting}");
    assert_eq!(smoke["project"], "shipgate-smoke-hello");
    let build_id = smoke["build_id"].as_str().unwrap().to_string();
    assert!(build_id.starts_with("shipgate-smoke-hello:"), "{build_id}");
    assert_ne!(
        waiting["build_id"].as_str(),
        Some(build_id.as_str()),
        "the smoke build is not the image build"
    );
    let text = text_of(&sb.message("Approve demo").await);
    assert!(text.contains("Verified:"), "{text}");
    assert!(
        text.contains("Smoke test: smoke test shipgate-smoke-hello passed"),
        "{text}"
    );
    let printed = sb.printed();
    assert!(printed.contains("[smoke]"), "the smoke build is printed");
    assert!(printed.contains("→ deploy-events"), "{printed}");
    let good_digest = waiting["image"]["digest"].as_str().unwrap().to_string();

    // [smoke-fail]: the smoke build fails → TEST_FAILED with its logs, no approval message
    let approvals_before = count_approvals(&sb).await;
    let (_, body) = sb.push("Break the smoke test [smoke-fail]").await;
    let bad = body["execution_id"].as_str().unwrap().to_string();
    let failed = sb.wait_for(&bad, "TEST_FAILED").await;
    let reason = failed["failure"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("smoke test shipgate-smoke-hello FAILED"),
        "{reason}"
    );
    assert!(reason.contains("[smoke-fail]"), "{reason}");
    assert!(
        failed["failure"]["link"]
            .as_str()
            .is_some_and(|l| l.contains("/aws/codebuild/shipgate-smoke-hello")),
        "{failed}"
    );
    assert!(failed["approval"].is_null(), "{failed}");
    assert_eq!(
        count_approvals(&sb).await,
        approvals_before,
        "no approval message"
    );
    // the first release is still the one waiting for approval
    let first = sb.show(&good).await;
    assert_eq!(first["status"], "AWAITING_APPROVAL", "{first}");

    // what status says test runs is what ECS runs there
    let status = sb
        .control(json!({"command": "status", "pipeline": "demo"}))
        .await;
    let (_, image) = sb.service_runs("demo-test", "hello-test", "app").await;
    let bad_digest = failed["image"]["digest"].as_str().unwrap().to_string();
    let current = &status["pipelines"][0]["test"]["current"];
    let said = current["image"]["digest"].as_str().unwrap_or_default();
    assert!(
        !said.is_empty() && image.ends_with(&format!("@{said}")),
        "status says test runs {said}, ECS runs {image}: {status}"
    );
    // nothing rolls test back: it runs the failed push's image (verified there, and failed),
    // which never reaches production
    assert_eq!(current["execution_id"], bad.as_str(), "{status}");
    assert!(image.ends_with(&format!("@{bad_digest}")), "{image}");
    assert_ne!(bad_digest, good_digest);
    let (_, prod) = sb.service_runs("demo-prod", "hello-prod", "app").await;
    assert!(!prod.ends_with(&bad_digest), "prod runs {prod}");

    // production: the healthy release passes its own smoke test (TARGET_URL = prod) and bake
    sb.approve_by_link(&good).await;
    let done = sb.wait_for(&good, "SUCCEEDED").await;
    let prod_smoke = &done["verify_prod"]["smoke"];
    assert_eq!(prod_smoke["outcome"], "SUCCEEDED", "{done}");
    assert_ne!(prod_smoke["build_id"], smoke["build_id"], "its own build");
    assert_ne!(prod_smoke["target_url"], smoke["target_url"], "{done}");

    // an approved release whose production smoke test fails is rolled back automatically
    let (_, body) = sb.push("Break production only [prod-smoke-fail]").await;
    let third = body["execution_id"].as_str().unwrap().to_string();
    sb.wait_for(&third, "AWAITING_APPROVAL").await;
    sb.approve_by_link(&third).await;
    let rolled = sb.wait_for(&third, "ROLLED_BACK").await;
    let reason = rolled["failure"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("smoke test shipgate-smoke-hello FAILED")
            && reason.contains("[prod-smoke-fail]"),
        "{reason}"
    );
    assert_eq!(rolled["failure"]["stage"], "prod", "{rolled}");
    let third_digest = rolled["image"]["digest"].as_str().unwrap().to_string();
    // what status says production runs is what ECS runs: the healthy release
    let status = sb
        .control(json!({"command": "status", "pipeline": "demo"}))
        .await;
    let current = &status["pipelines"][0]["prod"]["current"];
    let said = current["image"]["digest"].as_str().unwrap_or_default();
    assert_eq!(said, good_digest, "{status}");
    let (_, prod) = sb.service_runs("demo-prod", "hello-prod", "app").await;
    assert!(
        prod.ends_with(&format!("@{good_digest}")),
        "prod runs {prod}"
    );
    assert!(!prod.ends_with(&third_digest));
    sb.stop();
}
