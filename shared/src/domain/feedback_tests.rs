use super::*;
use crate::domain::execution::fixtures::{at, decision, deployment, new_exec, step};
use crate::domain::{Event, Verdict};

/// The updates of every transition an execution went through, in order.
fn reported(exec: &Execution) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut replay = exec.clone();
    // replay the history: each entry's `from` with the execution as it was stored then is
    // approximated by the final record, which is what matters for contexts and states
    for h in exec.history.iter().filter(|h| h.from.is_some()) {
        replay.status = h.to;
        for u in updates(h.from.unwrap(), &replay) {
            out.push(match u {
                FeedbackUpdate::CommitStatus { context, state, .. } => {
                    (context.as_str().to_string(), format!("{state:?}"))
                }
                FeedbackUpdate::Deployment {
                    environment, state, ..
                } => (
                    format!("deployment/{}", environment_name(environment)),
                    format!("{state:?}"),
                ),
            });
        }
    }
    out
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn push_to_production_reports_every_stage() {
    let done = at(Status::Succeeded);
    assert_eq!(
        reported(&done),
        pairs(&[
            ("shipgate/build", "Pending"),
            ("shipgate/build", "Success"),
            ("shipgate/test", "Pending"),
            ("deployment/test", "InProgress"),
            ("shipgate/test", "Success"),
            ("deployment/test", "Success"),
            ("shipgate/approval", "Pending"),
            ("shipgate/approval", "Success"),
            ("shipgate/prod", "Pending"),
            ("deployment/production", "InProgress"),
            ("shipgate/prod", "Success"),
            ("deployment/production", "Success"),
        ])
    );
}

#[test]
fn failures_report_failure_on_their_stage() {
    let build = at(Status::BuildFailed);
    assert_eq!(
        reported(&build).last().unwrap(),
        &("shipgate/build".to_string(), "Failure".to_string())
    );
    let prod = at(Status::ProdFailed);
    let r = reported(&prod);
    assert!(r.ends_with(&pairs(&[
        ("shipgate/prod", "Failure"),
        ("deployment/production", "Failure")
    ])));
    let test = at(Status::TestFailed);
    assert!(reported(&test).ends_with(&pairs(&[
        ("shipgate/test", "Failure"),
        ("deployment/test", "Failure")
    ])));
    let rejected = at(Status::Rejected);
    match updates(Status::AwaitingApproval, &rejected).as_slice() {
        [FeedbackUpdate::CommitStatus {
            context: StatusContext::Approval,
            state: CommitState::Failure,
            description,
            ..
        }] => assert_eq!(description, "Rejected by Grace"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn repeated_self_transitions_report_nothing_new() {
    let building = at(Status::Building);
    assert!(updates(Status::Building, &building).is_empty());
    let awaiting = at(Status::AwaitingApproval);
    assert!(updates(Status::AwaitingApproval, &awaiting).is_empty());
}

#[test]
fn a_rollback_reports_only_its_deployment() {
    // a rolled-back release itself reports nothing (its replacement marks it inactive)
    let rolled = at(Status::RolledBack);
    assert!(updates(Status::Succeeded, &rolled).is_empty());
    let mut e = new_exec();
    e.trigger = crate::domain::Trigger::Rollback {
        actor: "ops".into(),
        environment: Environment::Prod,
        restores: e.id.clone(),
        task_definition: None,
        replaces: None,
    };
    e.status = Status::DeployingProd;
    let (started, _) = step(
        &e,
        Event::DeployStarted {
            deployment: deployment(Environment::Prod, "ecs-svc/9"),
        },
    );
    assert_eq!(
        updates(Status::DeployingProd, &started),
        vec![FeedbackUpdate::Deployment {
            environment: Environment::Prod,
            state: DeploymentState::InProgress,
            description: "Deploying to production".into()
        }]
    );
    let (done, _) = step(
        &started,
        Event::DeployCompleted {
            deployment_id: "ecs-svc/9".into(),
            approval: None,
        },
    );
    assert!(matches!(
        updates(Status::DeployingProd, &done).as_slice(),
        [FeedbackUpdate::Deployment {
            state: DeploymentState::Success,
            ..
        }]
    ));
    let _ = decision(Verdict::Approve);
}

#[test]
fn descriptions_fit_github() {
    let long = description(&format!("a\nb{}", "é".repeat(500)));
    assert_eq!(long.chars().count(), MAX_DESCRIPTION_CHARS);
    assert!(long.starts_with("a b"));
    assert!(long.ends_with('…'));
    assert_eq!(description("short"), "short");
}

#[test]
fn secret_names_from_names_and_arns() {
    assert_eq!(
        secret_name("shipgate/github/hello"),
        "shipgate/github/hello"
    );
    assert_eq!(
        secret_name(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shipgate/github/hello-AbCdEf"
        ),
        "shipgate/github/hello-AbCdEf"
    );
    assert_eq!(secret_name("arn:aws:sns"), "");
}

#[test]
fn the_github_table_is_validated() {
    use crate::domain::{Format, PipelineDefinition};
    let base = crate::fakes::SAMPLE_PIPELINE;
    let ok = PipelineDefinition::parse(
        &format!("{base}\n[github]\ntoken_secret = \"shipgate/github/hello\"\nprod_url = \"https://hello.example.com/\"\n"),
        Format::Toml,
    )
    .unwrap();
    let g = ok.github.unwrap();
    assert_eq!(g.api_url, DEFAULT_GITHUB_API_URL);
    assert_eq!(g.prod_url.as_deref(), Some("https://hello.example.com"));
    let ghe = PipelineDefinition::parse(
        &format!("{base}\n[github]\ntoken_secret = \"arn:aws:secretsmanager:eu-west-1:123456789012:secret:shipgate/github/hello-AbC\"\napi_url = \"https://ghe.example.com/api/v3\"\n"),
        Format::Toml,
    )
    .unwrap();
    assert_eq!(
        ghe.github.unwrap().api_url,
        "https://ghe.example.com/api/v3"
    );
    let bad = PipelineDefinition::parse(
        &format!("{base}\n[github]\ntoken_secret = \"prod/db-password\"\napi_url = \"http://evil.example\"\ntest_url = \"javascript:alert(1)\"\ncolour = 1\n"),
        Format::Toml,
    )
    .unwrap_err();
    let paths: Vec<&str> = bad.0.iter().map(|e| e.path.as_str()).collect();
    for p in [
        "github.token_secret",
        "github.api_url",
        "github.test_url",
        "github.colour",
    ] {
        assert!(paths.contains(&p), "{p} in {bad}");
    }
    // a local fake GitHub on the loopback interface is allowed
    assert!(PipelineDefinition::parse(
        &format!("{base}\n[github]\ntoken_secret = \"shipgate/github/x\"\napi_url = \"http://127.0.0.1:9410\"\n"),
        Format::Toml,
    )
    .is_ok());
}
