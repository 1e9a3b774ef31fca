//! Changes that do not apply: repeated events, illegal transitions, terminal states.

use super::*;
use crate::domain::execution::fixtures::*;
use crate::domain::execution::*;

#[test]
fn repeated_events_are_already_applied_or_illegal() {
    let building = at(Status::Building);
    assert_eq!(
        apply(
            &building,
            Event::BuildStarted {
                build_id: "b1".into()
            }
        ),
        Err(DomainError::AlreadyApplied {
            event: "BuildStarted"
        })
    );
    let progressed = step(
        &building,
        Event::BuildProgress {
            phase: "BUILD".into(),
        },
    )
    .0;
    assert_eq!(
        apply(
            &progressed,
            Event::BuildProgress {
                phase: "BUILD".into()
            }
        ),
        Err(DomainError::AlreadyApplied {
            event: "BuildProgress"
        })
    );
    // second SUCCEEDED after the first moved on
    assert!(matches!(
        apply(
            &at(Status::Built),
            Event::BuildSucceeded {
                image: image(),
                resolved_sha: None,
                note: None
            }
        ),
        Err(DomainError::IllegalTransition {
            status: Status::Built,
            ..
        })
    ));
    // a repeated prod DeployStarted
    assert_eq!(
        apply(
            &at(Status::DeployingProd),
            Event::DeployStarted {
                deployment: deployment(Environment::Prod, "ecs-svc/2")
            }
        ),
        Err(DomainError::AlreadyApplied {
            event: "DeployStarted"
        })
    );
    // completion of a deployment that is not ours
    assert!(matches!(
        apply(
            &at(Status::DeployingTest),
            Event::DeployCompleted {
                deployment_id: "ecs-svc/other".into(),
                approval: grant()
            }
        ),
        Err(DomainError::UnknownDeployment { .. })
    ));
    // a test completion without an approval round
    assert_eq!(
        apply(
            &at(Status::DeployingTest),
            Event::DeployCompleted {
                deployment_id: "ecs-svc/1".into(),
                approval: None
            }
        ),
        Err(DomainError::MissingApproval)
    );
    // second decision
    assert!(matches!(
        apply(
            &at(Status::DeployingProd),
            Event::Decided {
                decision: decision(Verdict::Approve)
            }
        ),
        Err(DomainError::IllegalTransition { .. })
    ));
}

#[test]
fn illegal_transitions_table() {
    // (state, event) pairs that must be refused.
    let ev = |name: &str| -> Event {
        match name {
            "BuildStarted" => Event::BuildStarted {
                build_id: "b2".into(),
            },
            "BuildStartFailed" => Event::BuildStartFailed { reason: "x".into() },
            "BuildProgress" => Event::BuildProgress { phase: "X".into() },
            "BuildSucceeded" => Event::BuildSucceeded {
                image: image(),
                resolved_sha: None,
                note: None,
            },
            "BuildFailed" => Event::BuildFailed {
                status: "FAILED".into(),
                phase: None,
                reason: "x".into(),
                link: None,
            },
            "DeployStartedTest" => Event::DeployStarted {
                deployment: deployment(Environment::Test, "ecs-svc/1"),
            },
            "DeployStartedProd" => Event::DeployStarted {
                deployment: deployment(Environment::Prod, "ecs-svc/3"),
            },
            "DeployStartFailedTest" => Event::DeployStartFailed {
                environment: Environment::Test,
                reason: "x".into(),
            },
            "DeployStartFailedProd" => Event::DeployStartFailed {
                environment: Environment::Prod,
                reason: "x".into(),
            },
            "DeployCompleted" => Event::DeployCompleted {
                deployment_id: "ecs-svc/1".into(),
                approval: grant(),
            },
            "DeployFailed" => Event::DeployFailed {
                deployment_id: "ecs-svc/1".into(),
                reason: "x".into(),
            },
            "DeployReplaced" => Event::DeployReplaced {
                deployment_id: "ecs-svc/1".into(),
            },
            "Approve" => Event::Decided {
                decision: decision(Verdict::Approve),
            },
            "ApprovalRequested" => Event::ApprovalRequested {
                message_id: "m".into(),
            },
            "ApprovalExpired" => Event::ApprovalExpired,
            "Superseded" => Event::Superseded {
                by: ExecutionId::generate(t(1)),
            },
            "RolledBack" => Event::RolledBack {
                by: ExecutionId::generate(t(1)),
            },
            "Retry" => Event::Retry,
            "VerifyStartedTest" => verify_started("ecs-svc/1", 0),
            "VerifyStartedProd" => verify_started("ecs-svc/2", 60),
            "CheckAttemptedTest" | "CheckAttemptedProd" => Event::CheckAttempted {
                environment: env_of(name),
                attempt: 1,
                result: check_result(false),
            },
            "CheckPassedTest" | "CheckPassedProd" => Event::CheckPassed {
                environment: env_of(name),
                attempt: 1,
                result: Some(check_result(true)),
                approval: grant(),
            },
            "VerifyFailedTest" | "VerifyFailedProd" => Event::VerifyFailed {
                environment: env_of(name),
                reason: "x".into(),
                result: None,
            },
            "BakePassed" => Event::BakePassed,
            "AutoRollbackStarted" => Event::AutoRollbackStarted {
                by: ExecutionId::generate(t(1)),
            },
            other => panic!("unknown {other}"),
        }
    };
    fn env_of(name: &str) -> Environment {
        if name.ends_with("Test") {
            Environment::Test
        } else {
            Environment::Prod
        }
    }
    let all_events = [
        "BuildStarted",
        "BuildStartFailed",
        "BuildProgress",
        "BuildSucceeded",
        "BuildFailed",
        "DeployStartedTest",
        "DeployStartedProd",
        "DeployStartFailedTest",
        "DeployStartFailedProd",
        "DeployCompleted",
        "DeployFailed",
        "DeployReplaced",
        "Approve",
        "ApprovalRequested",
        "ApprovalExpired",
        "Superseded",
        "RolledBack",
        "Retry",
        "VerifyStartedTest",
        "VerifyStartedProd",
        "CheckAttemptedTest",
        "CheckAttemptedProd",
        "CheckPassedTest",
        "CheckPassedProd",
        "VerifyFailedTest",
        "VerifyFailedProd",
        "BakePassed",
        "AutoRollbackStarted",
    ];
    // The events each state accepts; every other one must be refused.
    let legal: &[(Status, &[&str])] = &[
        (Status::Received, &["BuildStarted", "BuildStartFailed"]),
        (
            Status::Building,
            &["BuildProgress", "BuildSucceeded", "BuildFailed"],
        ),
        (
            Status::Built,
            &["DeployStartedTest", "DeployStartFailedTest"],
        ),
        (
            Status::DeployingTest,
            &[
                "DeployCompleted",
                "DeployFailed",
                "DeployReplaced",
                "VerifyStartedTest",
            ],
        ),
        (
            Status::AwaitingApproval,
            &[
                "Approve",
                "ApprovalRequested",
                "ApprovalExpired",
                "Superseded",
            ],
        ),
        // at(DeployingProd) already has its prod deployment recorded (ecs-svc/2)
        (Status::DeployingProd, &["VerifyStartedProd"]),
        (Status::Succeeded, &["RolledBack"]),
        (Status::BuildFailed, &["Retry"]),
        (Status::TestFailed, &["Retry"]),
        (Status::Rejected, &[]),
        (Status::Expired, &[]),
        (Status::Superseded, &[]),
        (Status::ProdFailed, &["RolledBack", "Retry"]),
        (Status::RolledBack, &[]),
        (
            Status::VerifyingTest,
            &["CheckAttemptedTest", "CheckPassedTest", "VerifyFailedTest"],
        ),
        (
            Status::VerifyingProd,
            &[
                "CheckAttemptedProd",
                "CheckPassedProd",
                "VerifyFailedProd",
                "RolledBack",
            ],
        ),
        (
            Status::BakingProd,
            &["VerifyFailedProd", "BakePassed", "RolledBack"],
        ),
    ];
    assert_eq!(legal.len(), Status::ALL.len(), "every state is covered");
    let mut refused = 0;
    for (status, ok) in legal {
        let exec = at(*status);
        assert_eq!(exec.status, *status);
        for name in all_events {
            let result = transition(&exec, Change::new(ev(name), t(10_000), "test"));
            if ok.contains(&name) {
                assert!(
                    result.is_ok(),
                    "{status} + {name} should be legal: {result:?}"
                );
            } else {
                assert!(result.is_err(), "{status} + {name} should be refused");
                refused += 1;
            }
        }
    }
    assert!(refused > 440, "refused {refused}");
}

#[test]
fn terminal_states_accept_nothing_but_rollback_or_retry() {
    for s in Status::ALL {
        if !s.is_active() {
            assert!(matches!(
                s,
                Status::Succeeded
                    | Status::BuildFailed
                    | Status::TestFailed
                    | Status::Rejected
                    | Status::Expired
                    | Status::Superseded
                    | Status::ProdFailed
                    | Status::RolledBack
            ));
        }
    }
    assert!(Status::BuildFailed.is_failure());
    assert!(!Status::Rejected.is_failure());
}

#[test]
fn an_unknown_deployment_names_its_environment() {
    for (status, env) in [
        (Status::DeployingTest, Environment::Test),
        (Status::DeployingProd, Environment::Prod),
    ] {
        let err = apply(
            &at(status),
            Event::DeployFailed {
                deployment_id: "ecs-svc/other".into(),
                reason: "x".into(),
            },
        )
        .unwrap_err();
        assert_eq!(
            err,
            DomainError::UnknownDeployment {
                expected: env,
                got: "ecs-svc/other".into()
            }
        );
        assert_eq!(
            err.to_string(),
            format!(
                "deployment ecs-svc/other is not the current {env} deployment of this execution"
            )
        );
    }
}
