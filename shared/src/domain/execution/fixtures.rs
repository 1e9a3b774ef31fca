//! Executions and events shared by the execution and transition tests.

use chrono::{DateTime, TimeZone, Utc};

use super::*;

pub(crate) fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

pub(crate) fn new_exec() -> Execution {
    Execution::received(
        ExecutionId::generate(t(0)),
        "hello",
        Commit {
            sha: "0123456789abcdef0123456789abcdef01234567".into(),
            reference: "main".into(),
            author: Some("Ada".into()),
            message: Some("Add health check\n\nlonger text".into()),
            url: None,
        },
        Trigger::GithubPush {
            delivery: "d-1".into(),
            pusher: None,
        },
        t(0),
        "github",
    )
}

pub(crate) fn image() -> ImageRef {
    ImageRef {
        repository_uri: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello".into(),
        tag: "0123456789ab".into(),
        digest: "sha256:aa".into(),
    }
}

pub(crate) fn deployment(env: Environment, id: &str) -> DeploymentRecord {
    DeploymentRecord {
        environment: env,
        cluster: "apps".into(),
        service: format!("hello-{env}"),
        task_definition: "arn:td/hello:2".into(),
        previous_task_definition: Some("arn:td/hello:1".into()),
        deployment_id: id.into(),
        verify: false,
        started_at: t(5),
    }
}

pub(crate) fn decision(verdict: Verdict) -> Decision {
    Decision {
        approver: None,
        verdict,
        actor: "Grace".into(),
        channel: Channel::EmailLink,
        comment: Some("lgtm".into()),
        at: t(50),
        source_ip: Some("203.0.113.9".into()),
        user_agent: Some("Mozilla".into()),
    }
}

pub(crate) fn apply(exec: &Execution, event: Event) -> Result<Transition, DomainError> {
    transition(
        exec,
        Change::new(event, t(exec.history.len() as i64), "test"),
    )
}

pub(crate) fn step(exec: &Execution, event: Event) -> (Execution, Vec<Effect>) {
    let tr = apply(exec, event).expect("legal transition");
    (tr.execution, tr.effects)
}

pub(crate) fn grant() -> Option<ApprovalGrant> {
    Some(ApprovalGrant {
        nonce: "n1".into(),
        expires_at: t(3600),
    })
}

/// An execution driven to `status` along the happy path (or the failure edge into it).
pub(crate) fn at(status: Status) -> Execution {
    let e = new_exec();
    let building = step(
        &e,
        Event::BuildStarted {
            build_id: "b1".into(),
        },
    )
    .0;
    let built = step(
        &building,
        Event::BuildSucceeded {
            image: image(),
            resolved_sha: None,
            note: None,
        },
    )
    .0;
    let deploying_test = step(
        &built,
        Event::DeployStarted {
            deployment: deployment(Environment::Test, "ecs-svc/1"),
        },
    )
    .0;
    let awaiting = step(
        &deploying_test,
        Event::DeployCompleted {
            deployment_id: "ecs-svc/1".into(),
            approval: grant(),
        },
    )
    .0;
    let deploying_prod = step(
        &awaiting,
        Event::Decided {
            decision: decision(Verdict::Approve),
        },
    )
    .0;
    let deploying_prod_started = step(
        &deploying_prod,
        Event::DeployStarted {
            deployment: deployment(Environment::Prod, "ecs-svc/2"),
        },
    )
    .0;
    match status {
        Status::VerifyingTest => step(&deploying_test, verify_started("ecs-svc/1", 0)).0,
        Status::VerifyingProd => step(&deploying_prod_started, verify_started("ecs-svc/2", 60)).0,
        Status::BakingProd => {
            let verifying = step(&deploying_prod_started, verify_started("ecs-svc/2", 60)).0;
            step(
                &verifying,
                Event::CheckPassed {
                    environment: Environment::Prod,
                    attempt: 1,
                    result: Some(check_result(true)),
                    approval: None,
                },
            )
            .0
        }
        Status::Received => e,
        Status::Building => building,
        Status::Built => built,
        Status::DeployingTest => deploying_test,
        Status::AwaitingApproval => awaiting,
        Status::DeployingProd => deploying_prod_started,
        Status::Succeeded => {
            step(
                &deploying_prod_started,
                Event::DeployCompleted {
                    deployment_id: "ecs-svc/2".into(),
                    approval: None,
                },
            )
            .0
        }
        Status::BuildFailed => {
            step(
                &building,
                Event::BuildFailed {
                    status: "FAILED".into(),
                    phase: Some("BUILD".into()),
                    reason: "exit 1".into(),
                    link: None,
                },
            )
            .0
        }
        Status::TestFailed => {
            step(
                &deploying_test,
                Event::DeployFailed {
                    deployment_id: "ecs-svc/1".into(),
                    reason: "circuit breaker".into(),
                },
            )
            .0
        }
        Status::Rejected => {
            step(
                &awaiting,
                Event::Decided {
                    decision: decision(Verdict::Reject),
                },
            )
            .0
        }
        Status::Expired => {
            transition(
                &awaiting,
                Change::new(Event::ApprovalExpired, t(4000), "sweeper"),
            )
            .unwrap()
            .execution
        }
        Status::Superseded => {
            step(
                &awaiting,
                Event::Superseded {
                    by: ExecutionId::generate(t(9)),
                },
            )
            .0
        }
        Status::ProdFailed => {
            step(
                &deploying_prod_started,
                Event::DeployFailed {
                    deployment_id: "ecs-svc/2".into(),
                    reason: "tasks failed to start".into(),
                },
            )
            .0
        }
        Status::RolledBack => {
            let failed = step(
                &deploying_prod_started,
                Event::DeployFailed {
                    deployment_id: "ecs-svc/2".into(),
                    reason: "x".into(),
                },
            )
            .0;
            step(
                &failed,
                Event::RolledBack {
                    by: ExecutionId::generate(t(99)),
                },
            )
            .0
        }
    }
}

pub(crate) fn verify_started(deployment_id: &str, bake_seconds: u32) -> Event {
    Event::VerifyStarted {
        deployment_id: deployment_id.into(),
        bake_seconds,
        alarms: if bake_seconds > 0 {
            vec!["hello-prod-5xx".into()]
        } else {
            vec![]
        },
    }
}

pub(crate) fn check_result(passed: bool) -> crate::domain::verify::CheckResult {
    crate::domain::verify::CheckResult {
        url: "https://hello.example.com/health".into(),
        at: t(20),
        elapsed_ms: 12,
        status: Some(if passed { 200 } else { 503 }),
        version_seen: Some(
            if passed {
                "0123456789ab"
            } else {
                "ffffffffffff"
            }
            .into(),
        ),
        version_expected: "0123456789abcdef0123456789abcdef01234567".into(),
        passed,
        detail: if passed {
            String::new()
        } else {
            "the service runs another version".into()
        },
    }
}
