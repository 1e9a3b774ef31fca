//! One state transition of the pure state machine (`shared::domain::transition`): the work a
//! function does between reading an execution and its conditional write.
//! Run: `cargo bench -p shared --bench transition`.

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use shared::domain::{
    transition, ApprovalGrant, Change, Channel, Commit, Decision, DeploymentRecord, Environment,
    Event, Execution, ExecutionId, ImageRef, Status, Trigger, Verdict,
};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

fn received() -> Execution {
    Execution::received(
        ExecutionId::generate(t(0)),
        "demo",
        Commit {
            sha: "9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a".into(),
            reference: "main".into(),
            author: Some("Ada Lovelace".into()),
            message: Some(
                "Add /health version field\n\nReports the commit the image was built from.".into(),
            ),
            url: Some(
                "https://github.com/shipgate-demo/hello/compare/1e3c5a7b9d2f...9f2c7a1e4b6d".into(),
            ),
        },
        Trigger::GithubPush {
            delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
            pusher: Some("ada".into()),
        },
        t(0),
        "github:ada",
    )
}

fn deployment(env: Environment, id: &str) -> DeploymentRecord {
    DeploymentRecord {
        environment: env,
        cluster: format!("demo-{env}"),
        service: format!("hello-{env}"),
        task_definition: "arn:aws:ecs:eu-west-1:123456789012:task-definition/hello:2".into(),
        previous_task_definition: Some(
            "arn:aws:ecs:eu-west-1:123456789012:task-definition/hello:1".into(),
        ),
        deployment_id: id.into(),
        verify: false,
        started_at: t(5),
    }
}

fn change(event: Event, at: i64) -> Change {
    Change::new(event, t(at), "bench")
}

fn step(e: &Execution, event: Event, at: i64) -> Execution {
    transition(e, change(event, at))
        .expect("legal transition")
        .execution
}

fn bench(c: &mut Criterion) {
    let received = received();
    let building = step(
        &received,
        Event::BuildStarted {
            build_id: "hello-build:8745a7a9-c340-456a-9166-edf953571b00".into(),
        },
        1,
    );
    let built = step(
        &building,
        Event::BuildSucceeded {
            image: ImageRef {
                repository_uri: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello".into(),
                tag: "9f2c7a1e4b6d".into(),
                digest: "sha256:188a33d7e0ee4c4a7b1d6f1b2b7b0c2d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b"
                    .into(),
            },
            resolved_sha: None,
            note: None,
        },
        2,
    );
    let deploying_test = step(
        &built,
        Event::DeployStarted {
            deployment: deployment(Environment::Test, "ecs-svc/1"),
        },
        3,
    );
    let awaiting = step(
        &deploying_test,
        Event::DeployCompleted {
            deployment_id: "ecs-svc/1".into(),
            approval: Some(ApprovalGrant {
                nonce: "q1w2e3r4t5y6u7i8o9p0aZ".into(),
                expires_at: t(72 * 3600),
            }),
        },
        4,
    );
    assert_eq!(awaiting.status, Status::AwaitingApproval);

    let cases: Vec<(&str, &Execution, Change)> = vec![
        (
            "received+BuildStarted",
            &received,
            change(
                Event::BuildStarted {
                    build_id: "hello-build:8745a7a9-c340-456a-9166-edf953571b00".into(),
                },
                1,
            ),
        ),
        (
            "deploying_test+DeployCompleted",
            &deploying_test,
            change(
                Event::DeployCompleted {
                    deployment_id: "ecs-svc/1".into(),
                    approval: Some(ApprovalGrant {
                        nonce: "q1w2e3r4t5y6u7i8o9p0aZ".into(),
                        expires_at: t(72 * 3600),
                    }),
                },
                4,
            ),
        ),
        (
            "awaiting_approval+Decided",
            &awaiting,
            change(
                Event::Decided {
                    decision: Decision {
                        approver: None,
                        verdict: Verdict::Approve,
                        actor: "Grace Hopper".into(),
                        channel: Channel::EmailLink,
                        comment: Some("looks good".into()),
                        at: t(50),
                        source_ip: Some("203.0.113.9".into()),
                        user_agent: Some(
                            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X)".into(),
                        ),
                    },
                },
                50,
            ),
        ),
    ];
    let mut g = c.benchmark_group("transition");
    for (name, exec, ch) in &cases {
        transition(exec, ch.clone()).expect("legal transition");
        // the Change is moved into transition(); cloning it is setup, not measured
        g.bench_function(*name, |b| {
            b.iter_batched(
                || ch.clone(),
                |ch| transition(black_box(exec), ch),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
