//! Verified promotion end to end against `shipgate dev` (real local hello-service processes,
//! moto CloudWatch): a healthy push is verified in test and the approval message shows the
//! check; a `[bad-health]` push ends TEST_FAILED with the version seen and no approval message;
//! an `[alarm]` push is rolled back automatically during the bake — production runs the
//! previous digest again and `status` says so.

mod common;

use common::DevSandbox;
use serde_json::json;

async fn approve(sb: &DevSandbox, id: &str) {
    sb.approve_by_link(id).await;
}

#[tokio::test]
async fn verified_test_bad_health_and_automatic_rollback() {
    let Some(mut sb) = DevSandbox::start("verified") else {
        return;
    };

    // healthy: verified, then approval with the verification in the message
    let (status, body) = sb.push("Add a greeting").await;
    assert_eq!(status, 202, "{body}");
    let good = body["execution_id"].as_str().unwrap().to_string();
    let waiting = sb.wait_for(&good, "AWAITING_APPROVAL").await;
    let tag = waiting["commit"]["sha"].as_str().unwrap()[..12].to_string();
    assert!(waiting["verify_test"]["passed_at"].is_string(), "{waiting}");
    let message = sb.message("Approve demo").await;
    let text = message["body"]
        .as_str()
        .or(message["message"].as_str())
        .unwrap_or("")
        .to_string();
    let text = if text.is_empty() {
        message.to_string()
    } else {
        text
    };
    assert!(text.contains("Verified:"), "{text}");
    assert!(text.contains(&format!("200 with version {tag}")), "{text}");
    assert!(sb.printed().contains("[verify]"), "each check is printed");
    approve(&sb, &good).await;
    let done = sb.wait_for(&good, "SUCCEEDED").await;
    assert!(done["verify_prod"]["bake_until"].is_string(), "{done}");
    let good_digest = done["image"]["digest"].as_str().unwrap().to_string();

    // [bad-health]: the test service answers another version → TEST_FAILED, no approval
    let approvals_before = count_approvals(&sb).await;
    let (_, body) = sb.push("Break health [bad-health]").await;
    let bad = body["execution_id"].as_str().unwrap().to_string();
    let failed = sb.wait_for(&bad, "TEST_FAILED").await;
    let reason = failed["failure"]["reason"].as_str().unwrap();
    assert!(reason.contains("version seen not-"), "{reason}");
    assert!(failed["approval"].is_null(), "{failed}");
    assert_eq!(
        count_approvals(&sb).await,
        approvals_before,
        "no approval message"
    );

    // [alarm]: the demo alarm goes off during the bake → automatic rollback
    let (_, body) = sb.push("Risky change [alarm]").await;
    let risky = body["execution_id"].as_str().unwrap().to_string();
    sb.wait_for(&risky, "AWAITING_APPROVAL").await;
    approve(&sb, &risky).await;
    let rolled = sb.wait_for(&risky, "ROLLED_BACK").await;
    assert!(
        rolled["failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("alarm shipgate-demo-prod-5xx is in ALARM"),
        "{rolled}"
    );
    let (_, image) = sb.service_runs("demo-prod", "hello-prod", "app").await;
    assert!(
        image.ends_with(&good_digest),
        "prod runs {image}, expected {good_digest}"
    );
    let status = sb
        .control(json!({"command": "status", "pipeline": "demo"}))
        .await;
    let text = status.to_string();
    assert!(
        text.contains(&good_digest),
        "status names the restored digest: {text}"
    );
    assert!(text.contains("rollback"), "{text}");
    sb.stop();
}

async fn count_approvals(sb: &DevSandbox) -> usize {
    sb.outbox()
        .await
        .iter()
        .filter(|m| m["subject"].as_str().unwrap_or("").contains("Approve demo"))
        .count()
}
