//! End to end over HTTP only, against `shipgate dev` started as a child process: push →
//! AWAITING_APPROVAL → approval link from the outbox → GET (no change) → POST approve →
//! SUCCEEDED with the tested digest in prod; a `[fail-deploy]` push ends TEST_FAILED with a
//! failure notice and the test service back on the release before; a `[fail-prod]` push ends
//! PROD_FAILED with production still running the good release; concurrent pushes each end in a
//! defined state; moto dying stops the sandbox; and nothing is left running afterwards.

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
    // the demo pipeline lists alice and bob: each gets a message with their personal link
    let message = sb.message("Approve demo").await;
    assert!(
        ["alice@example.com", "bob@example.com"].contains(&message["audience"].as_str().unwrap()),
        "{message}"
    );
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
    // a personal link records its owner, whatever name is typed
    let owner = message["audience"].as_str().unwrap();
    assert_eq!(
        done["approval"]["decision"]["actor"],
        format!("{owner} — personal email link")
    );
    assert_eq!(done["approval"]["decision"]["approver"], owner);
    assert_eq!(done["approval"]["decision"]["channel"], "email-link");

    // production runs exactly the digest that ran in test
    let sdk = shipgate_sandbox::sdk_config(&sb.aws_endpoint()).await;
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

    let (test_a, _) = sb.service_runs("demo-test", "hello-test", "app").await;
    let (prod_a, _) = sb.service_runs("demo-prod", "hello-prod", "app").await;
    assert_eq!(td, prod_a);

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
    // the circuit breaker rolled the test service back to the release that ran before
    let failed_td = failed["test"]["task_definition"].as_str().unwrap();
    assert_ne!(failed_td, test_a);
    sb.wait_service_on("demo-test", "hello-test", &test_a).await;

    // a push whose production deployment fails: ECS keeps running release A
    let (status, body) = sb.push("Works in test, not in prod [fail-prod]").await;
    assert_eq!(status, 202, "{body}");
    let prod_fail_id = body["execution_id"].as_str().unwrap().to_string();
    let waiting = sb.wait_for(&prod_fail_id, "AWAITING_APPROVAL").await;
    assert_ne!(waiting["image"]["digest"], digest.as_str());
    sb.approve_by_link(&prod_fail_id).await;
    let prod_failed = sb.wait_for(&prod_fail_id, "PROD_FAILED").await;
    assert!(
        prod_failed["failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("circuit breaker"),
        "{prod_failed}"
    );
    assert_ne!(prod_failed["prod"]["task_definition"], prod_a.as_str());
    sb.wait_service_on("demo-prod", "hello-prod", &prod_a).await;
    let (_, prod_image) = sb.service_runs("demo-prod", "hello-prod", "app").await;
    assert!(
        prod_image.ends_with(&format!("@{digest}")),
        "prod runs {prod_image}"
    );
    let status = sb
        .control(serde_json::json!({"command": "status", "pipeline": "demo"}))
        .await;
    assert_eq!(
        status["pipelines"][0]["prod"]["current"]["execution_id"],
        id.as_str(),
        "status says prod runs release A: {status}"
    );
    sb.message("PROD_FAILED").await;

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
        .control(serde_json::json!({"command": "retry", "execution_id": id}))
        .await;
    assert_eq!(retried["execution"]["status"], "BUILDING", "{retried}");
    assert_eq!(retried["execution"]["attempt"], 2);
    sb.wait_for(&id, "BUILD_FAILED").await;
}

/// Many pushes at once: every execution ends in a defined state — the newest awaits approval,
/// each older one is SUPERSEDED (its test deployment was replaced, or a newer one reached
/// approval) — and the one awaiting approval is the one whose image the test service runs.
#[tokio::test]
async fn concurrent_pushes_end_in_defined_states() {
    let Some(sb) = DevSandbox::start("e2e-concurrent") else {
        return;
    };
    let sb = std::sync::Arc::new(sb);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let sb = sb.clone();
        tasks.push(tokio::spawn(async move {
            sb.push(&format!("Concurrent change {i}")).await
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 202, "{body}");
        ids.push(body["execution_id"].as_str().unwrap().to_string());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12);
    let newest = ids.last().unwrap().clone();
    let waiting = sb.wait_for(&newest, "AWAITING_APPROVAL").await;
    let mut deployment_ids = std::collections::HashSet::new();
    for id in &ids[..ids.len() - 1] {
        let e = sb.wait_for_any(id, &["SUPERSEDED"]).await;
        assert_eq!(e["status"], "SUPERSEDED", "{e}");
        deployment_ids.insert(e["test"]["deployment_id"].as_str().unwrap().to_string());
    }
    // every test deployment had its own id (moto alone answers one id per service)
    deployment_ids.insert(
        waiting["test"]["deployment_id"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    assert_eq!(deployment_ids.len(), ids.len(), "{deployment_ids:?}");
    // nothing moved after the dust settled: still exactly one awaiting approval
    let list = sb
        .control(serde_json::json!({"command": "list_executions", "pipeline": "demo", "limit": 50}))
        .await;
    let awaiting: Vec<&str> = list["executions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "AWAITING_APPROVAL")
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(awaiting, vec![newest.as_str()], "{list}");
    // the execution awaiting approval is what runs in test
    let digest = waiting["image"]["digest"].as_str().unwrap();
    let (td, image) = sb.service_runs("demo-test", "hello-test", "app").await;
    assert_eq!(waiting["test"]["task_definition"], td.as_str());
    assert!(
        image.ends_with(&format!("@{digest}")),
        "test runs {image}, awaiting {digest}"
    );
    // and its approval takes exactly that image to production
    sb.approve_by_link(&newest).await;
    sb.wait_for(&newest, "SUCCEEDED").await;
    let (_, prod_image) = sb.service_runs("demo-prod", "hello-prod", "app").await;
    assert_eq!(prod_image, image);
}

/// The local AWS dying stops `shipgate dev` with a message naming moto, and removes dev.env.
#[tokio::test]
async fn moto_dying_stops_the_sandbox() {
    let Some(mut sb) = DevSandbox::start("e2e-moto-dies") else {
        return;
    };
    let env_file = sb.state_dir.join("dev.env");
    assert!(env_file.exists());
    let moto_pid = sb.env["SHIPGATE_DEV_MOTO_PID"].clone();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &moto_pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = sb
        .wait_exit(Duration::from_secs(20))
        .expect("shipgate dev exits by itself when moto dies");
    assert!(!exit.success(), "exit status {exit}");
    // the output readers may lag the exit by a moment
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !sb.printed().contains("moto") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let printed = sb.printed();
    assert!(
        printed.contains("the local AWS (moto, pid") && printed.contains("exited unexpectedly"),
        "{printed}"
    );
    assert!(!env_file.exists(), "dev.env removed");
}

/// A dev.env left by a sandbox that was killed (its pid is gone) is replaced at the next start.
#[tokio::test]
async fn stale_dev_env_is_replaced() {
    let dir = DevSandbox::state_dir("e2e-stale");
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(
        dir.join("dev.env"),
        format!("SHIPGATE_DEV_PID={dead_pid}\nSHIPGATE_DEV_URL=http://127.0.0.1:1\nAWS_ENDPOINT_URL=http://127.0.0.1:1\n"),
    )
    .unwrap();
    let Some(sb) = DevSandbox::start_in(dir, &[]) else {
        return;
    };
    sb.wait_printed("replacing a stale");
    assert_eq!(sb.env["SHIPGATE_DEV_PID"], sb.pid().to_string());
    assert_ne!(sb.env["AWS_ENDPOINT_URL"], "http://127.0.0.1:1");
    let ok = sb
        .control(serde_json::json!({"command": "list_pipelines"}))
        .await;
    assert_eq!(ok["pipelines"][0]["name"], "demo");

    // a second sandbox on the same state directory while this one runs: refused, nothing replaced
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_shipgate"))
        .args(["dev", "--port", "0", "--state-dir"])
        .arg(&sb.state_dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1), "{second:?}");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another shipgate dev"), "{stderr}");
    let env_now = std::fs::read_to_string(sb.state_dir.join("dev.env")).unwrap();
    assert!(env_now.contains(&format!("SHIPGATE_DEV_PID={}", sb.pid())));
}

/// Ctrl-C in a terminal signals the whole process group, moto included: `shipgate dev` stops
/// cleanly (exit 0, "stopped"), it does not mistake that for moto dying.
#[cfg(unix)]
#[test]
fn ctrl_c_to_the_process_group_stops_cleanly() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;

    let dir = DevSandbox::state_dir("e2e-ctrl-c");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_shipgate"))
        .args(["dev", "--port", "0", "--state-dir"])
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    /// Kills the group if the test fails half-way.
    struct Group(u32);
    impl Drop for Group {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.0)])
                .status();
        }
    }
    let group = Group(child.id());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    loop {
        let Some(Ok(line)) = lines.next() else {
            let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap_or_default();
            if stderr.contains("moto is not installed") {
                if std::env::var("SHIPGATE_REQUIRE_MOTO").is_ok_and(|v| v == "1") {
                    panic!("moto is required (SHIPGATE_REQUIRE_MOTO=1): {stderr}");
                }
                shipgate_tests::say("skipped: moto not installed (run make test)");
                let _ = child.wait();
                return;
            }
            let _ = child.wait();
            panic!("shipgate dev exited early: {printed:?} {stderr}");
        };
        let started = line.trim_start().starts_with("API");
        printed.push(line);
        if started {
            break;
        }
    }
    assert!(dir.join("dev.env").exists());
    let sent = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{}", group.0)])
        .status()
        .unwrap();
    assert!(sent.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "still running");
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap_or_default();
    assert!(status.success(), "exit {status}: {rest:?} {stderr}");
    assert!(rest.iter().any(|l| l == "stopped"), "{rest:?}");
    assert!(!stderr.contains("moto"), "{stderr}");
    assert!(!dir.join("dev.env").exists(), "dev.env removed");
    let _ = std::fs::remove_dir_all(&dir);
}
