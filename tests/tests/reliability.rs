//! Reliability suites. Every AWS event may arrive twice, late or out of order; every call may
//! fail; every Lambda may die mid-way — and no execution is lost and nothing is done twice.
//! Each test prints its figures.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Duration;
use futures::future::join_all;
use serde_json::{json, Value};
use shared::app::sweeper::{sweep, SweepLimits};
use shared::domain::{ExecutionId, Status};
use shared::fake_world::FakeWorld;
use shared::fakes::WEBHOOK_SECRET;
use shared::http;
use shared::ports::{Clock, ExecutionStore, ServiceError, StoreError};
use shipgate_sandbox::DEV_WEBHOOK_SECRET;
use shipgate_tests::{build_event, deploy_event, signed_push, Outage, World, PUSH};

/// A small deterministic generator (xorshift64*) so a failing order can be replayed by seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

fn push_body(sha: &str, message: &str) -> String {
    let mut v: Value = serde_json::from_str(PUSH).unwrap();
    v["after"] = sha.into();
    v["head_commit"]["id"] = sha.into();
    v["head_commit"]["message"] = message.into();
    v.to_string()
}

fn sha(n: usize) -> String {
    format!("{:040x}", (n as u128 + 1) * 0x9e37_79b9_7f4a_7c15)
}

// ---------------------------------------------------------------------------------------------
// 1. 10 distinct pushes, each delivered 10 times, all 100 concurrently → 10 executions, 10 builds

#[tokio::test]
async fn ten_pushes_delivered_ten_times_each_all_at_once() {
    let Some(w) = World::start().await else {
        return;
    };
    let w = Arc::new(w);
    let mut requests = Vec::new();
    for p in 0..10 {
        let body = push_body(&sha(p), &format!("change {p}"));
        for _ in 0..10 {
            requests.push(signed_push(
                &body,
                &format!("delivery-{p}"),
                DEV_WEBHOOK_SECRET,
            ));
        }
    }
    let sent = requests.len();
    let answers = join_all(requests.into_iter().map(|req| {
        let w = w.clone();
        async move {
            let r = webhook::handler::handle(&w.services, req).await;
            (
                r.status_code,
                serde_json::from_str::<Value>(&http::body_text(&r)).unwrap(),
            )
        }
    }))
    .await;
    let ids: HashSet<String> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 202, "{body}");
            body["execution_id"].as_str().unwrap().to_string()
        })
        .collect();
    let executions = w
        .services
        .store
        .list_executions("demo", 1000)
        .await
        .unwrap();
    let builds = w
        .codebuild()
        .list_builds_for_project()
        .project_name("hello-build")
        .send()
        .await
        .unwrap();
    let building = executions
        .iter()
        .filter(|e| e.status == Status::Building)
        .count();
    println!(
        "deliveries sent: {sent}; distinct execution ids answered: {}; executions created: {}; builds started: {}; executions BUILDING: {building}",
        ids.len(),
        executions.len(),
        builds.ids().len()
    );
    assert_eq!(ids.len(), 10);
    assert_eq!(executions.len(), 10);
    assert_eq!(builds.ids().len(), 10);
    assert_eq!(building, 10);
}

// ---------------------------------------------------------------------------------------------
// 2. every event of a full execution delivered 3 times in shuffled order

#[derive(Debug, Clone, Copy, PartialEq)]
enum Delivery {
    Push,
    Build(&'static str),
    TestDeploy(&'static str),
    Approve,
    ProdDeploy(&'static str),
}

struct Counts {
    deliveries: usize,
    builds: usize,
    test_deploys: usize,
    approval_messages: usize,
    prod_deploys: usize,
    status: Status,
}

async fn shuffled_run(seed: u64) -> Counts {
    let w = FakeWorld::with_pipeline().await;
    let body = include_str!("../../events/github/push.json");
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut pool = vec![Delivery::Push; 3];
    let mut emitted = HashSet::new();
    let mut deliveries = 0;
    while !pool.is_empty() {
        let d = pool.swap_remove(rng.below(pool.len()));
        deliveries += 1;
        let exec = w.store.executions().into_iter().next();
        match (&d, &exec) {
            (Delivery::Push, _) => {
                let r = webhook::handler::handle(
                    &w.services,
                    signed_push(body, "the-delivery", WEBHOOK_SECRET),
                )
                .await;
                assert_eq!(r.status_code, 202);
            }
            (Delivery::Build(status), Some(e)) => {
                build_events::handler::handle(
                    &w.services,
                    build_event(e.build_id.as_deref().unwrap(), status),
                )
                .await
                .unwrap();
            }
            (Delivery::TestDeploy(name), Some(e)) => {
                deploy_events::handler::handle(
                    &w.services,
                    deploy_event(&e.test.as_ref().unwrap().deployment_id, name),
                )
                .await
                .unwrap();
            }
            (Delivery::ProdDeploy(name), Some(e)) => {
                deploy_events::handler::handle(
                    &w.services,
                    deploy_event(&e.prod.as_ref().unwrap().deployment_id, name),
                )
                .await
                .unwrap();
            }
            (Delivery::Approve, Some(_)) => {
                let (_, notice) = w
                    .notifier
                    .sent()
                    .into_iter()
                    .find(|(_, n)| n.subject.contains("Approve"))
                    .unwrap();
                let link = notice
                    .body
                    .lines()
                    .find(|l| l.contains("/approvals/"))
                    .unwrap()
                    .trim()
                    .to_string();
                let path = link
                    .trim_start_matches("https://shipgate.example.com")
                    .to_string();
                let req = shipgate_sandbox::apigw::request(
                    "POST",
                    &path,
                    "/approvals/{token}",
                    &[("Content-Type", "application/x-www-form-urlencoded")],
                    Some("decision=approve&name=Grace"),
                    "198.51.100.1",
                );
                let status = approvals::handler::handle(&w.services, req)
                    .await
                    .status_code;
                assert!(status == 200 || status == 409, "{status}");
            }
            (other, None) => panic!("{other:?} before the execution exists"),
        }
        // what AWS (and the approver) would now send, three times each, in any order
        let Some(e) = w.store.executions().into_iter().next() else {
            continue;
        };
        if e.build_id.is_some() && emitted.insert("build") {
            w.registry
                .push("hello", &e.image_tag(), "sha256:tested", w.clock.now());
            pool.extend([Delivery::Build("IN_PROGRESS"), Delivery::Build("SUCCEEDED")].repeat(3));
        }
        if e.test.is_some() && emitted.insert("test") {
            pool.extend(
                [
                    Delivery::TestDeploy("SERVICE_DEPLOYMENT_IN_PROGRESS"),
                    Delivery::TestDeploy("SERVICE_DEPLOYMENT_COMPLETED"),
                ]
                .repeat(3),
            );
        }
        if w.notifier.count("Approve") > 0 && emitted.insert("approve") {
            pool.extend([Delivery::Approve].repeat(3));
        }
        if e.prod.is_some() && emitted.insert("prod") {
            pool.extend(
                [
                    Delivery::ProdDeploy("SERVICE_DEPLOYMENT_IN_PROGRESS"),
                    Delivery::ProdDeploy("SERVICE_DEPLOYMENT_COMPLETED"),
                ]
                .repeat(3),
            );
        }
    }
    let execs = w.store.executions();
    assert_eq!(execs.len(), 1);
    Counts {
        deliveries,
        builds: w.builds.started().len(),
        test_deploys: w.deployer.deployments_to("hello-test"),
        approval_messages: w.notifier.count("Approve"),
        prod_deploys: w.deployer.deployments_to("hello-prod"),
        status: execs[0].status,
    }
}

#[tokio::test]
async fn every_event_three_times_in_shuffled_order() {
    let seeds = 40;
    let mut total = 0;
    for seed in 1..=seeds {
        let c = shuffled_run(seed).await;
        total += c.deliveries;
        assert_eq!(
            (
                c.status,
                c.builds,
                c.test_deploys,
                c.approval_messages,
                c.prod_deploys
            ),
            (Status::Succeeded, 1, 1, 1, 1),
            "seed {seed}"
        );
    }
    println!("orders tried: {seeds}; deliveries sent: {total}; every run: 1 execution SUCCEEDED, 1 build, 1 test deploy, 1 approval message, 1 prod deploy");
}

// ---------------------------------------------------------------------------------------------
// 3. fault injection at every AWS call

#[derive(Clone, Copy, Debug)]
enum Port {
    Store,
    Builds,
    Registry,
    Deployer,
    Notifier,
    Secrets,
}

/// Drive the sample push to production the way AWS, GitHub, an approver and an operator would:
/// redeliver after a retryable error, retry a failed execution, let the sweeper run. Answers the
/// execution id and how many rounds it took.
async fn drive(
    w: &FakeWorld,
    inject: &mut Option<(Option<Status>, Port, &'static str, ServiceError)>,
) -> (ExecutionId, usize, Vec<String>) {
    let body = include_str!("../../events/github/push.json");
    let mut log = Vec::new();
    // an event whose handler failed: EventBridge delivers that same event again, later
    let mut redeliver: Option<(bool, Value)> = None;
    for round in 0..40 {
        if let Some((is_build, event)) = redeliver.take() {
            w.clock.advance(Duration::minutes(3));
            let result = if is_build {
                build_events::handler::handle(&w.services, event.clone())
                    .await
                    .map(|_| ())
            } else {
                deploy_events::handler::handle(&w.services, event.clone())
                    .await
                    .map(|_| ())
            };
            log.push(format!(
                "redelivered → {}",
                if result.is_ok() { "ok" } else { "error" }
            ));
            if result.is_err() {
                redeliver = Some((is_build, event));
            }
            continue;
        }
        let exec = w.store.executions().into_iter().next();
        // inject the fault when the execution reaches the chosen state
        if let Some((at, port, op, err)) = inject.clone() {
            if at == exec.as_ref().map(|e| e.status) {
                match port {
                    Port::Store => w.store.faults.fail_next(
                        op,
                        match &err {
                            ServiceError::Throttled(m) | ServiceError::Unavailable(m) => {
                                StoreError::Unavailable(m.clone())
                            }
                            other => StoreError::Unavailable(other.to_string()),
                        },
                    ),
                    Port::Builds => w.builds.faults.fail_next(op, err),
                    Port::Registry => w.registry.faults.fail_next(op, err),
                    Port::Deployer => w.deployer.faults.fail_next(op, err),
                    Port::Notifier => w.notifier.faults.fail_next(op, err),
                    Port::Secrets => w.secrets.faults.fail_next(op, err),
                }
                *inject = None;
            }
        }
        let Some(e) = exec else {
            let r = webhook::handler::handle(&w.services, signed_push(body, "d-1", WEBHOOK_SECRET))
                .await;
            log.push(format!("push → {}", r.status_code));
            continue;
        };
        let id = e.id.clone();
        let outcome: Result<(), String> = match e.status {
            Status::Succeeded => return (id, round, log),
            Status::Building => {
                if w.registry.list_images_now("hello").is_empty() {
                    w.registry
                        .push("hello", &e.image_tag(), "sha256:tested", w.clock.now());
                }
                let event = build_event(e.build_id.as_deref().unwrap(), "SUCCEEDED");
                let r = build_events::handler::handle(&w.services, event.clone()).await;
                if r.is_err() {
                    redeliver = Some((true, event));
                }
                r.map(|_| ()).map_err(|x| x.to_string())
            }
            Status::DeployingTest | Status::DeployingProd
                if e.deployment(if e.status == Status::DeployingTest {
                    shared::domain::Environment::Test
                } else {
                    shared::domain::Environment::Prod
                })
                .is_some() =>
            {
                let env = if e.status == Status::DeployingTest {
                    shared::domain::Environment::Test
                } else {
                    shared::domain::Environment::Prod
                };
                let event = deploy_event(
                    &e.deployment(env).unwrap().deployment_id,
                    "SERVICE_DEPLOYMENT_COMPLETED",
                );
                let r = deploy_events::handler::handle(&w.services, event.clone()).await;
                if r.is_err() {
                    redeliver = Some((false, event));
                }
                r.map(|_| ()).map_err(|x| x.to_string())
            }
            Status::AwaitingApproval
                if e.approval.as_ref().is_some_and(|a| a.message_id.is_some()) =>
            {
                let out = control::handler::handle(
                    &w.services,
                    json!({"command": "approve", "execution_id": id}),
                )
                .await;
                if out.get("error").is_some() {
                    Err(out.to_string())
                } else {
                    Ok(())
                }
            }
            Status::BuildFailed | Status::TestFailed | Status::ProdFailed => {
                log.push(format!(
                    "{} because {}",
                    e.status,
                    e.failure.as_ref().map(|f| f.reason.as_str()).unwrap_or("?")
                ));
                let out = control::handler::handle(
                    &w.services,
                    json!({"command": "retry", "execution_id": id}),
                )
                .await;
                if out.get("error").is_some() {
                    Err(out.to_string())
                } else {
                    Ok(())
                }
            }
            // a worker died between storing a state and acting on it: the sweeper resumes it
            _ => {
                w.clock.advance(Duration::minutes(11));
                sweep(&w.services, &SweepLimits::default())
                    .await
                    .map(|_| ())
                    .map_err(|x| x.to_string())
            }
        };
        if let Err(err) = outcome {
            log.push(format!("{} → error: {err}", e.status));
            w.clock.advance(Duration::minutes(3));
        }
    }
    panic!("did not converge: {log:#?}\n{:#?}", w.store.executions());
}

#[tokio::test]
async fn fault_at_every_aws_call_ends_defined_and_completes_once() {
    let throttled = || ServiceError::Throttled("injected: Rate exceeded".into());
    let unavailable = || ServiceError::Unavailable("injected: 503 Service Unavailable".into());
    let timeout = || ServiceError::Unavailable("injected: operation timed out".into());
    let scenarios: Vec<(&str, Option<Status>, Port, &'static str, ServiceError)> = vec![
        (
            "secret read (webhook)",
            None,
            Port::Secrets,
            "secret",
            unavailable(),
        ),
        (
            "pipeline query (webhook)",
            None,
            Port::Store,
            "pipelines_for_source",
            throttled(),
        ),
        (
            "create execution",
            None,
            Port::Store,
            "create_execution",
            timeout(),
        ),
        ("StartBuild", None, Port::Builds, "start_build", throttled()),
        (
            "store write after StartBuild",
            None,
            Port::Store,
            "save",
            unavailable(),
        ),
        (
            "build lookup",
            Some(Status::Building),
            Port::Store,
            "find_by_build",
            throttled(),
        ),
        (
            "DescribeImages",
            Some(Status::Building),
            Port::Registry,
            "find_image",
            throttled(),
        ),
        (
            "store write BUILT",
            Some(Status::Building),
            Port::Store,
            "save",
            timeout(),
        ),
        (
            "test deploy (UpdateService)",
            Some(Status::Building),
            Port::Deployer,
            "deploy_image",
            unavailable(),
        ),
        (
            "deployment lookup",
            Some(Status::DeployingTest),
            Port::Store,
            "find_by_deployment",
            throttled(),
        ),
        (
            "DescribeServices on completion",
            Some(Status::DeployingTest),
            Port::Deployer,
            "deployment_state",
            timeout(),
        ),
        (
            "record test revision",
            Some(Status::DeployingTest),
            Port::Store,
            "record_revision",
            unavailable(),
        ),
        (
            "approval publish (SNS)",
            Some(Status::DeployingTest),
            Port::Notifier,
            "publish",
            unavailable(),
        ),
        (
            "signing key read",
            Some(Status::DeployingTest),
            Port::Secrets,
            "secret",
            throttled(),
        ),
        (
            "approval write",
            Some(Status::AwaitingApproval),
            Port::Store,
            "save",
            throttled(),
        ),
        (
            "prod deploy (UpdateService)",
            Some(Status::AwaitingApproval),
            Port::Deployer,
            "deploy_image",
            throttled(),
        ),
        (
            "store write SUCCEEDED",
            Some(Status::DeployingProd),
            Port::Store,
            "save",
            timeout(),
        ),
        (
            "record prod revision",
            Some(Status::DeployingProd),
            Port::Store,
            "record_revision",
            unavailable(),
        ),
    ];
    for (name, at, port, op, err) in scenarios {
        let w = FakeWorld::with_pipeline().await;
        let mut inject = Some((at, port, op, err.clone()));
        let (id, rounds, log) = drive(&w, &mut inject).await;
        assert!(inject.is_none(), "{name}: the fault was never injected");
        let e = w.services.execution(&id).await.unwrap();
        let failure_recorded = e.history.iter().any(|h| h.cause.contains("injected"));
        let builds = w.builds.started().len();
        let tests = w.deployer.deployments_to("hello-test");
        let prods = w.deployer.deployments_to("hello-prod");
        let emails = w.notifier.count("Approve");
        let revision = w
            .store
            .get_revisions("hello", shared::domain::Environment::Prod)
            .await
            .unwrap();
        println!("fault at {name:<32} rounds {rounds:>2}; cause in history: {failure_recorded:<5}; builds {builds}, test deploys {tests}, approval emails {emails}, prod deploys {prods}; path: {}", log.join(" | "));
        assert_eq!(e.status, Status::Succeeded, "{name}");
        assert_eq!(
            (builds, tests, emails, prods),
            (1, 1, 1, 1),
            "{name}: something was done twice or not at all"
        );
        assert_eq!(w.store.executions().len(), 1, "{name}: one execution");
        assert_eq!(
            revision.and_then(|r| r.value.current().map(|c| c.execution_id.clone())),
            Some(id),
            "{name}: prod revision recorded"
        );
        // a fault that made the execution fail is in its history
        if log.iter().any(|l| l.contains("FAILED because")) {
            assert!(failure_recorded, "{name}: the cause is recorded");
        }
    }
}

#[tokio::test]
async fn aws_outage_mid_run_loses_nothing() {
    let Some(w) = World::start().await else {
        return;
    };
    let outage = Outage::proxy(&w.moto.server.endpoint()).await;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(shared::adapters::https_client())
        .region(aws_config::Region::new(shipgate_sandbox::REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .endpoint_url(&outage.endpoint)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;
    let sb = &w.provisioned.sandbox;
    let svc = shared::wiring::aws_services(
        &sdk,
        &shared::wiring::Config {
            table: sb.table.clone(),
            settings: shared::app::Settings {
                public_url: w.public_url.clone(),
                webhook_secret_id: sb.webhook_secret_id.clone(),
                signing_key_id: sb.signing_key_id.clone(),
            },
        },
    );
    // AWS is down while GitHub delivers: 503, nothing recorded; GitHub's redelivery succeeds
    outage.cut();
    let first = webhook::handler::handle(&svc, signed_push(PUSH, "d-1", DEV_WEBHOOK_SECRET)).await;
    outage.restore();
    assert_eq!(first.status_code, 503, "{}", http::body_text(&first));
    assert!(w
        .services
        .store
        .list_executions("demo", 10)
        .await
        .unwrap()
        .is_empty());
    let again = webhook::handler::handle(&svc, signed_push(PUSH, "d-1", DEV_WEBHOOK_SECRET)).await;
    assert_eq!(again.status_code, 202);
    let id: ExecutionId = serde_json::from_str::<Value>(&http::body_text(&again)).unwrap()
        ["execution_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let e = w.services.execution(&id).await.unwrap();
    w.push_image(&e.image_tag(), "outage").await;

    // AWS goes down while the build event is handled: a retryable error, nothing half-done
    outage.cut();
    let err = build_events::handler::handle(
        &svc,
        build_event(e.build_id.as_deref().unwrap(), "SUCCEEDED"),
    )
    .await
    .unwrap_err();
    outage.restore();
    let d: lambda_runtime::Diagnostic = err.into();
    assert_eq!(d.error_type, "Retryable");
    assert_eq!(
        w.services.execution(&id).await.unwrap().status,
        Status::Building
    );
    // EventBridge delivers it again
    let out = build_events::handler::handle(
        &svc,
        build_event(e.build_id.as_deref().unwrap(), "SUCCEEDED"),
    )
    .await
    .unwrap();
    assert_eq!(out["execution_status"], "DEPLOYING_TEST");
    let builds = w
        .codebuild()
        .list_builds_for_project()
        .project_name("hello-build")
        .send()
        .await
        .unwrap()
        .ids()
        .len();
    let tds = w
        .ecs()
        .list_task_definitions()
        .family_prefix("hello")
        .send()
        .await
        .unwrap()
        .task_definition_arns()
        .len();
    println!("outage during webhook: 503 then 202 on redelivery; outage during build event: Retryable then DEPLOYING_TEST; builds started: {builds}; task definition revisions: {tds} (initial + test)");
    assert_eq!(builds, 1);
    assert_eq!(tds, 2);
}

// ---------------------------------------------------------------------------------------------
// 4. 50 concurrent approval POSTs → one production deploy

#[tokio::test]
async fn fifty_concurrent_approval_posts_deploy_prod_once() {
    let Some(w) = World::start().await else {
        return;
    };
    let id = shipgate_tests::start(&w, "d-1").await;
    let e = w.services.execution(&id).await.unwrap();
    w.push_image(&e.image_tag(), "v1").await;
    build_events::handler::handle(
        &w.services,
        build_event(e.build_id.as_deref().unwrap(), "SUCCEEDED"),
    )
    .await
    .unwrap();
    let e = w.services.execution(&id).await.unwrap();
    deploy_events::handler::handle(
        &w.services,
        deploy_event(
            &e.test.unwrap().deployment_id,
            "SERVICE_DEPLOYMENT_COMPLETED",
        ),
    )
    .await
    .unwrap();
    let outbox = shipgate_sandbox::drain_outbox(&w.sqs(), &w.provisioned.outbox_queue_url)
        .await
        .unwrap();
    let link = outbox[0]
        .links
        .iter()
        .find(|l| l.contains("/approvals/"))
        .unwrap()
        .clone();
    let path = link.trim_start_matches(&w.public_url).to_string();
    let w = Arc::new(w);
    let statuses = join_all((0..50).map(|i| {
        let w = w.clone();
        let path = path.clone();
        async move {
            let req = shipgate_sandbox::apigw::request(
                "POST",
                &path,
                "/approvals/{token}",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                Some(&format!("decision=approve&name=approver-{i}")),
                "198.51.100.1",
            );
            approvals::handler::handle(&w.services, req)
                .await
                .status_code
        }
    }))
    .await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let conflict = statuses.iter().filter(|s| **s == 409).count();
    let tds = w
        .ecs()
        .list_task_definitions()
        .family_prefix("hello")
        .send()
        .await
        .unwrap()
        .task_definition_arns()
        .len();
    let e = w.services.execution(&id).await.unwrap();
    println!("approval POSTs sent: 50; 200: {ok}; 409: {conflict}; other: {}; task definition revisions: {tds} (initial + test + prod); decided by {}", 50 - ok - conflict, e.approval.as_ref().unwrap().decision.as_ref().unwrap().actor);
    assert_eq!((ok, conflict), (1, 49));
    assert_eq!(tds, 3, "exactly one prod revision registered");
    assert_eq!(e.status, Status::DeployingProd);
}
