//! End to end over HTTP only, against `shipgate dev` started as a child process: push →
//! AWAITING_APPROVAL → approval link from the outbox → GET (no change) → POST approve →
//! SUCCEEDED with the tested digest in prod; a `[fail-deploy]` push ends TEST_FAILED with a
//! failure notice; and nothing is left running afterwards.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::DevSandbox;

#[tokio::test]
async fn push_to_production_over_http() {
    let Some(mut sb) = DevSandbox::start("e2e") else {
        return;
    };

    let (status, body) = sb.push("Add a greeting").await;
    assert_eq!(status, 202, "{body}");
    let id = body["execution_id"].as_str().unwrap().to_string();

    let waiting = sb.wait_for(&id, "AWAITING_APPROVAL").await;
    let digest = waiting["image"]["digest"].as_str().unwrap().to_string();
    let message = sb.message("Approve demo").await;
    let link = message["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .find(|l| l.contains("/approvals/"))
        .expect("approval link")
        .to_string();
    assert!(link.starts_with(&sb.base), "{link}");

    // GET is a confirmation page only (baseline taken once the request was sent and recorded)
    let mut before_get = sb.show(&id).await;
    for _ in 0..40 {
        if before_get["approval"]["message_id"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        before_get = sb.show(&id).await;
    }
    assert!(
        before_get["approval"]["message_id"].is_string(),
        "{before_get}"
    );
    let page = reqwest::get(&link).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(waiting["commit"]["sha"].as_str().unwrap()));
    assert!(html.contains(&digest));
    let after_get = sb.show(&id).await;
    assert_eq!(after_get["status"], "AWAITING_APPROVAL");
    assert_eq!(after_get, before_get, "GET changed nothing");

    let post = reqwest::Client::new()
        .post(&link)
        .form(&[("decision", "approve"), ("name", "E2E Approver")])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 200);
    assert!(post.text().await.unwrap().contains("Approved"));

    let done = sb.wait_for(&id, "SUCCEEDED").await;
    assert_eq!(done["approval"]["decision"]["actor"], "E2E Approver");
    assert_eq!(done["approval"]["decision"]["channel"], "email-link");

    // production runs exactly the digest that ran in test
    let sdk = shared::local::sdk_config(&sb.aws_endpoint()).await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let svc = ecs
        .describe_services()
        .cluster("demo-prod")
        .services("hello-prod")
        .send()
        .await
        .unwrap();
    let td = svc.services()[0].task_definition().unwrap().to_string();
    let def = ecs
        .describe_task_definition()
        .task_definition(&td)
        .send()
        .await
        .unwrap();
    let image = def.task_definition().unwrap().container_definitions()[0]
        .image()
        .unwrap()
        .to_string();
    assert!(
        image.ends_with(&format!("@{digest}")),
        "prod runs {image}, test ran {digest}"
    );

    // a push whose test deployment fails
    let (status, body) = sb.push("Break the health check [fail-deploy]").await;
    assert_eq!(status, 202, "{body}");
    let failed_id = body["execution_id"].as_str().unwrap().to_string();
    let failed = sb.wait_for(&failed_id, "TEST_FAILED").await;
    assert!(
        failed["failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("circuit breaker"),
        "{failed}"
    );
    let notice = sb.message("TEST_FAILED").await;
    assert!(notice["message"]
        .as_str()
        .unwrap()
        .contains(&format!("shipgate retry {failed_id}")));

    // Ctrl-C / SIGTERM stops the server, the pump and moto
    let aws = sb.aws_endpoint();
    let aws_addr = aws.trim_start_matches("http://").to_string();
    let api_addr = sb.base.trim_start_matches("http://").to_string();
    let exit = sb.stop().expect("exit status");
    assert!(exit.success(), "shipgate dev exited with {exit}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        TcpStream::connect(&api_addr).is_err(),
        "the API still answers"
    );
    assert!(
        TcpStream::connect(&aws_addr).is_err(),
        "moto was left running on {aws_addr}"
    );
    assert!(!sb.state_dir.join("dev.env").exists(), "dev.env removed");
}

#[tokio::test]
async fn failed_build_is_reported_and_retry_rebuilds() {
    let Some(sb) = DevSandbox::start("e2e-build") else {
        return;
    };
    let (_, body) = sb.push("Typo in the Makefile [fail-build]").await;
    let id = body["execution_id"].as_str().unwrap().to_string();
    let failed = sb.wait_for(&id, "BUILD_FAILED").await;
    assert!(failed["failure"]["reason"]
        .as_str()
        .unwrap()
        .contains("COMMAND_EXECUTION_ERROR"));
    sb.message("BUILD_FAILED").await;
    // the sandbox fails every build of this commit message; retry starts a new build of it
    let retried = sb
        .control(serde_json::json!({"command": "retry", "execution_id": id, "actor": "e2e"}))
        .await;
    assert_eq!(retried["execution"]["status"], "BUILDING", "{retried}");
    assert_eq!(retried["execution"]["attempt"], 2);
    sb.wait_for(&id, "BUILD_FAILED").await;
}
