//! The checklist from facts: every check passes for a correctly wired account, and each
//! miswiring gives a ✗ whose fix names what to change.

use std::collections::BTreeMap;

use shared::domain::{Format, PipelineDefinition};

use super::*;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";

fn arn_service(cluster: &str, name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}")
}

fn definition(extra: &str) -> PipelineDefinition {
    let text = format!(
        r#"
name = "web"
source = {{ github = "acme/web" }}
build = {{ project = "web-build" }}
image = {{ repository = "{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/web" }}
test = {{ cluster = "staging", service = "web-test", container = "app" }}
prod = {{ cluster = "live", service = "web", container = "app" }}
approval = {{ topic_arn = "arn:aws:sns:{REGION}:{ACCOUNT}:shipgate-approvals" }}
{extra}
"#
    );
    PipelineDefinition::parse(&text, Format::Toml).unwrap()
}

fn stack() -> StackFacts {
    let mut parameters = BTreeMap::new();
    let mut put = |k: &str, v: &[&str]| {
        parameters.insert(k.to_string(), v.iter().map(|s| s.to_string()).collect());
    };
    put(PROJECT_NAMES, &["web-build"]);
    put(
        PROJECT_ARNS,
        &["arn:aws:codebuild:eu-west-1:123456789012:project/web-build"],
    );
    put(
        REPOSITORY_ARNS,
        &["arn:aws:ecr:eu-west-1:123456789012:repository/*"],
    );
    put(TEST_SERVICES, &[&arn_service("staging", "web-test")]);
    put(PROD_SERVICES, &[&arn_service("live", "web")]);
    put(TASK_ROLES, &["arn:aws:iam::123456789012:role/web-*"]);
    put(CODECOMMIT_REPOSITORIES, &[]);
    put(SMOKE_PREFIX, &["shipgate-smoke-"]);
    put(ALARM_PREFIX, &["shipgate-"]);
    let outputs = [
        ("ControlFunctionName", "shipgate-control".to_string()),
        (
            "ApprovalTopicArn",
            format!("arn:aws:sns:{REGION}:{ACCOUNT}:shipgate-approvals"),
        ),
        (
            "FailureTopicArn",
            format!("arn:aws:sns:{REGION}:{ACCOUNT}:shipgate-failures"),
        ),
        (
            "DeadLetterQueueUrl",
            "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq".to_string(),
        ),
        ("WebhookSecretArn", "arn:secret".to_string()),
        ("BuildEventsRuleName", "build-rule".to_string()),
        ("DeployEventsRuleName", "deploy-rule".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    StackFacts {
        status: "UPDATE_COMPLETE".into(),
        parameters,
        outputs,
    }
}

fn service(cluster: &str, name: &str) -> ServiceFacts {
    ServiceFacts {
        arn: arn_service(cluster, name),
        status: "ACTIVE".into(),
        circuit_breaker: true,
        rollback: true,
        task_definition: format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:3"),
        containers: vec!["app".into(), "sidecar".into()],
        roles: vec![
            "arn:aws:iam::123456789012:role/web-task".into(),
            "arn:aws:iam::123456789012:role/web-execution".into(),
        ],
    }
}

fn rule(name: &str, pattern: serde_json::Value) -> Lookup<RuleFacts> {
    Lookup::Found(RuleFacts {
        name: name.into(),
        enabled: true,
        pattern,
    })
}

fn healthy() -> Facts {
    Facts {
        identity: Ok(Identity {
            arn: format!("arn:aws:iam::{ACCOUNT}:user/ops"),
            account: ACCOUNT.into(),
        }),
        region: Some(REGION.into()),
        stack_name: "shipgate".into(),
        stack: Lookup::Found(stack()),
        control: Some(("shipgate-control".into(), Ok(1))),
        build_rule: rule(
            "build-rule",
            serde_json::json!({"detail": {"project-name": ["web-build"]}}),
        ),
        deploy_rule: rule(
            "deploy-rule",
            serde_json::json!({"resources": [arn_service("staging", "web-test"), arn_service("live", "web")]}),
        ),
        codecommit_rule: Lookup::NotRead,
        dead_letters: Lookup::Found(0),
        webhook_secret: Lookup::Found(true),
        unknown_pipeline: None,
        pipelines: vec![PipelineFacts {
            definition: definition(""),
            project: Lookup::Found(ProjectFacts {
                arn: "arn:aws:codebuild:eu-west-1:123456789012:project/web-build".into(),
            }),
            repository: Lookup::Found("arn:aws:ecr:eu-west-1:123456789012:repository/web".into()),
            test: Lookup::Found(service("staging", "web-test")),
            prod: Lookup::Found(service("live", "web")),
            approval_topic: Lookup::Found(TopicFacts {
                confirmed: 2,
                pending: 0,
                ..TopicFacts::default()
            }),
            smoke: Vec::new(),
        }],
    }
}

fn failed(checks: &[Check]) -> Vec<&Check> {
    checks.iter().filter(|c| !c.ok).collect()
}

fn only_failure(facts: &Facts) -> Check {
    let checks = evaluate(facts);
    let f = failed(&checks);
    assert_eq!(f.len(), 1, "{}", render(&checks));
    f[0].clone()
}

#[test]
fn a_correctly_wired_account_passes_every_check() {
    let checks = evaluate(&healthy());
    assert!(failed(&checks).is_empty(), "{}", render(&checks));
    assert!(checks.len() >= 25, "{}", render(&checks));
    assert!(render(&checks).ends_with("checks passed\n"));
}

#[test]
fn a_prod_service_missing_from_the_allow_list_names_the_parameter() {
    let mut facts = healthy();
    facts.pipelines[0].prod = Lookup::Found(service("live", "web-2"));
    let checks = evaluate(&facts);
    let f = failed(&checks);
    // not allowed, and the deployment rule does not list it (both fixed by one parameter)
    assert_eq!(f.len(), 2, "{}", render(&checks));
    for c in f {
        let fix = c.fix.as_deref().unwrap();
        assert!(fix.contains("ProdServiceArns"), "{fix}");
        assert!(fix.contains(&arn_service("live", "web-2")), "{fix}");
    }
}

#[test]
fn a_test_service_also_matched_as_prod_is_refused() {
    let mut facts = healthy();
    let Lookup::Found(s) = &mut facts.stack else {
        unreachable!()
    };
    s.parameters
        .get_mut(PROD_SERVICES)
        .unwrap()
        .push(format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/*"));
    let c = only_failure(&facts);
    assert_eq!(c.name, "test service allowed");
    assert!(c.fix.unwrap().contains("remove"));
}

#[test]
fn a_wildcard_allows_but_the_rule_needs_the_exact_arn() {
    let mut facts = healthy();
    let Lookup::Found(s) = &mut facts.stack else {
        unreachable!()
    };
    s.parameters.insert(
        TEST_SERVICES.into(),
        vec![format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/staging/*")],
    );
    facts.deploy_rule = rule(
        "deploy-rule",
        serde_json::json!({"resources": [format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/staging/*"), arn_service("live", "web")]}),
    );
    let c = only_failure(&facts);
    assert_eq!(c.name, "test deployment events reach shipgate");
    assert!(c.fix.unwrap().contains("no wildcard"));
}

#[test]
fn each_miswiring_gives_one_failure_with_its_fix() {
    type Break = fn(&mut Facts);
    let cases: Vec<(&str, Break, &str)> = vec![
        (
            "AWS identity",
            |f| f.identity = Err("expired token".into()),
            "aws sso login",
        ),
        ("region", |f| f.region = None, "AWS_REGION"),
        (
            "control invocable",
            |f| f.control = Some(("shipgate-control".into(), Err("AccessDenied".into()))),
            "OperatorPolicyArn",
        ),
        (
            "build events rule",
            |f| {
                if let Lookup::Found(r) = &mut f.build_rule {
                    r.enabled = false;
                }
            },
            "aws events enable-rule --name build-rule",
        ),
        (
            "dead-letter queue",
            |f| f.dead_letters = Lookup::Found(3),
            "aws sqs receive-message",
        ),
        (
            "GitHub webhook secret",
            |f| f.webhook_secret = Lookup::Found(false),
            "put-secret-value",
        ),
        (
            "CodeBuild project web-build",
            |f| f.pipelines[0].project = Lookup::Missing,
            "build.project",
        ),
        (
            "ECR repository web",
            |f| f.pipelines[0].repository = Lookup::Missing,
            "create-repository",
        ),
        (
            "test circuit breaker",
            |f| {
                if let Lookup::Found(s) = &mut f.pipelines[0].test {
                    s.rollback = false;
                }
            },
            "deploymentCircuitBreaker={enable=true,rollback=true}",
        ),
        (
            "prod container app",
            |f| {
                if let Lookup::Found(s) = &mut f.pipelines[0].prod {
                    s.containers = vec!["web".into()];
                }
            },
            "prod.container",
        ),
        (
            "prod task roles (iam:PassRole)",
            |f| {
                if let Lookup::Found(s) = &mut f.pipelines[0].prod {
                    s.roles.push("arn:aws:iam::123456789012:role/other".into());
                }
            },
            "EcsTaskRoleArns",
        ),
        (
            "approval subscribers",
            |f| {
                f.pipelines[0].approval_topic = Lookup::Found(TopicFacts {
                    confirmed: 0,
                    pending: 1,
                    ..TopicFacts::default()
                })
            },
            "aws sns subscribe",
        ),
        (
            "approvers' filter policies",
            |f| {
                f.pipelines[0].approval_topic = Lookup::Found(TopicFacts {
                    confirmed: 2,
                    pending: 0,
                    unfiltered_mailboxes: Some(vec!["carol@example.com".into()]),
                    unreadable_mailboxes: vec![],
                })
            },
            "shipgate approvers add EMAIL --pipeline web",
        ),
        (
            "approvers' filter policies",
            |f| {
                f.pipelines[0].approval_topic = Lookup::Found(TopicFacts {
                    confirmed: 2,
                    pending: 0,
                    unfiltered_mailboxes: Some(vec![]),
                    unreadable_mailboxes: vec!["carol@example.com".into()],
                })
            },
            "sns:GetSubscriptionAttributes",
        ),
        (
            "image repository allowed",
            |f| {
                if let Lookup::Found(s) = &mut f.stack {
                    s.parameters.insert(REPOSITORY_ARNS.into(), vec![]);
                }
            },
            "EcrRepositoryArns",
        ),
        (
            "approval.topic_arn publishable",
            |f| {
                f.pipelines[0].definition.approval.topic_arn =
                    format!("arn:aws:sns:{REGION}:{ACCOUNT}:elsewhere");
            },
            "ApprovalTopicArn",
        ),
        (
            "stack outputs",
            |f| {
                if let Lookup::Found(s) = &mut f.stack {
                    s.outputs.remove("FailureTopicArn");
                }
            },
            "make deploy",
        ),
    ];
    for (name, break_it, fix_says) in cases {
        let mut facts = healthy();
        break_it(&mut facts);
        let checks = evaluate(&facts);
        let f = failed(&checks);
        assert!(
            f.iter().any(|c| c.name == name),
            "{name}: {}",
            render(&checks)
        );
        let c = f.iter().find(|c| c.name == name).unwrap();
        assert!(
            c.fix.as_deref().unwrap().contains(fix_says),
            "{name}: fix {:?} should say {fix_says:?}",
            c.fix
        );
    }
}

#[test]
fn a_project_not_allowed_names_both_parameters_and_the_rule() {
    let mut facts = healthy();
    facts.pipelines[0].definition.build.project = "api-build".into();
    facts.pipelines[0].project = Lookup::Found(ProjectFacts {
        arn: "arn:aws:codebuild:eu-west-1:123456789012:project/api-build".into(),
    });
    let checks = evaluate(&facts);
    let f = failed(&checks);
    assert_eq!(f.len(), 2, "{}", render(&checks));
    let fix = f[0].fix.as_deref().unwrap();
    assert!(fix.contains("api-build to CodeBuildProjectNames"), "{fix}");
    assert!(
        fix.contains("project/api-build to CodeBuildProjectArns"),
        "{fix}"
    );
    assert!(f[1]
        .fix
        .as_deref()
        .unwrap()
        .contains("CodeBuildProjectNames"));
}

#[test]
fn no_stack_stops_after_saying_how_to_deploy_or_name_it() {
    let mut facts = healthy();
    facts.stack = Lookup::Missing;
    let checks = evaluate(&facts);
    let f = failed(&checks);
    assert_eq!(f.len(), 1);
    let fix = f[0].fix.as_deref().unwrap();
    assert!(
        fix.contains("make deploy") && fix.contains("--stack"),
        "{fix}"
    );
    assert!(!checks.iter().any(|c| c.section.starts_with("pipeline")));
}

#[test]
fn stack_states() {
    for (status, ok) in [
        ("CREATE_COMPLETE", true),
        ("UPDATE_ROLLBACK_COMPLETE", true),
        ("UPDATE_IN_PROGRESS", false),
        ("ROLLBACK_COMPLETE", false),
        ("DELETE_FAILED", false),
    ] {
        let mut facts = healthy();
        if let Lookup::Found(s) = &mut facts.stack {
            s.status = status.into();
        }
        let checks = evaluate(&facts);
        assert_eq!(
            failed(&checks).is_empty(),
            ok,
            "{status}: {}",
            render(&checks)
        );
    }
}

#[test]
fn a_codecommit_source_needs_the_parameter_and_the_rule() {
    let mut facts = healthy();
    facts.pipelines[0].definition.source = Source::Codecommit("web".into());
    let checks = evaluate(&facts);
    let f = failed(&checks);
    assert_eq!(f.len(), 2, "{}", render(&checks));
    assert!(f.iter().all(|c| c
        .fix
        .as_deref()
        .unwrap()
        .contains("CodeCommitRepositoryArns")));

    let arn = format!("arn:aws:codecommit:{REGION}:{ACCOUNT}:web");
    if let Lookup::Found(s) = &mut facts.stack {
        s.parameters
            .insert(CODECOMMIT_REPOSITORIES.into(), vec![arn.clone()]);
    }
    facts.codecommit_rule = rule("cc-rule", serde_json::json!({"resources": [arn]}));
    let checks = evaluate(&facts);
    assert!(failed(&checks).is_empty(), "{}", render(&checks));
}

#[test]
fn a_short_arn_service_is_reported_with_the_account_setting() {
    let mut facts = healthy();
    if let Lookup::Found(s) = &mut facts.pipelines[0].test {
        s.arn = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/web-test");
    }
    let checks = evaluate(&facts);
    let c = failed(&checks)
        .into_iter()
        .find(|c| c.name.starts_with("test service staging"))
        .cloned()
        .expect("the short ARN is a failure");
    assert!(c.fix.unwrap().contains("serviceLongArnFormat"));
}

#[test]
fn apply_coverage_builds_arns_from_names() {
    let facts = healthy();
    let place = Place::of(facts.identity.as_ref().unwrap(), REGION);
    let checks = coverage_checks(
        definition(""),
        &stack(),
        (
            facts.build_rule.clone(),
            facts.deploy_rule.clone(),
            Lookup::NotRead,
        ),
        &place,
    );
    assert!(failed(&checks).is_empty(), "{}", render(&checks));
    assert!(!checks.iter().any(|c| c.name.contains("circuit breaker")));

    let mut d = definition("");
    d.prod.service = "web-canary".into();
    let checks = coverage_checks(
        d,
        &stack(),
        (facts.build_rule.clone(), facts.deploy_rule, Lookup::NotRead),
        &place,
    );
    let f = failed(&checks);
    assert_eq!(f.len(), 2);
    assert!(f[0].detail.contains(&arn_service("live", "web-canary")));
}

#[test]
fn arns_from_names_and_uris() {
    let place = Place {
        partition: "aws".into(),
        region: REGION.into(),
        account: ACCOUNT.into(),
    };
    assert_eq!(
        place.repository_arn("999999999999.dkr.ecr.us-east-2.amazonaws.com/team/web"),
        "arn:aws:ecr:us-east-2:999999999999:repository/team/web"
    );
    let target = ServiceTarget {
        cluster: "arn:aws:ecs:eu-west-1:123456789012:cluster/live".into(),
        service: "web".into(),
        container: "app".into(),
    };
    assert_eq!(place.service_arn(&target), arn_service("live", "web"));
    let short = ServiceTarget {
        cluster: "live".into(),
        service: "arn:aws:ecs:eu-west-1:123456789012:service/web".into(),
        container: "app".into(),
    };
    assert_eq!(place.service_arn(&short), arn_service("live", "web"));
}

#[test]
fn iam_wildcards() {
    assert!(iam_match(
        "arn:aws:ecr:*:123:repository/*",
        "arn:aws:ecr:eu-west-1:123:repository/a/b"
    ));
    assert!(iam_match("a?c", "abc"));
    assert!(!iam_match("a?c", "ac"));
    assert!(iam_match("*", ""));
    assert!(!iam_match("abc", "abcd"));
    assert!(!iam_match("ABC", "abc"));
    assert!(iam_match("a*b*c", "aXbYbZc"));
    // linear, not exponential, on a hostile pattern
    let long = "a".repeat(5000);
    assert!(!iam_match(&"*a".repeat(50), &format!("{long}b")));
}

#[test]
fn json_has_every_check_and_no_fix_on_a_pass() {
    let checks = evaluate(&healthy());
    let v = serde_json::to_value(&checks).unwrap();
    assert!(v[0].get("fix").is_none());
    assert_eq!(v[0]["section"], "account");
}

#[test]
fn the_template_has_every_parameter_and_output_doctor_reads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    let template: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for parameter in [
        PROJECT_NAMES,
        PROJECT_ARNS,
        REPOSITORY_ARNS,
        TEST_SERVICES,
        PROD_SERVICES,
        TASK_ROLES,
        CODECOMMIT_REPOSITORIES,
        SMOKE_PREFIX,
        ALARM_PREFIX,
    ] {
        assert!(
            template["Parameters"].get(parameter).is_some(),
            "infra/template.yaml has no parameter {parameter}"
        );
    }
    for output in REQUIRED_OUTPUTS.iter().chain(&["CodeCommitRuleName"]) {
        assert!(
            template["Outputs"].get(*output).is_some(),
            "infra/template.yaml has no output {output}"
        );
    }
}

const VERIFIED: &str = r#"
[verify.test]
url = "https://web-test.example.com/health"
smoke_project = "shipgate-smoke-web"
[verify.prod]
url = "https://web.example.com/health"
smoke_project = "shipgate-smoke-web"
bake_minutes = 5
alarms = ["shipgate-web-5xx", "shipgate-web-latency"]
"#;

fn verified(smoke: Lookup<ProjectFacts>) -> Facts {
    let mut facts = healthy();
    facts.pipelines[0].definition = definition(VERIFIED);
    facts.pipelines[0].smoke = vec![("shipgate-smoke-web".into(), smoke)];
    facts
}

fn smoke_found() -> Lookup<ProjectFacts> {
    Lookup::Found(ProjectFacts {
        arn: "arn:aws:codebuild:eu-west-1:123456789012:project/shipgate-smoke-web".into(),
    })
}

#[test]
fn verified_pipelines_check_their_smoke_project_and_the_prefixes_of_smoke_and_alarms() {
    let checks = evaluate(&verified(smoke_found()));
    assert!(failed(&checks).is_empty(), "{}", render(&checks));
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    for n in [
        "smoke test project shipgate-smoke-web",
        "test smoke test allowed",
        "prod smoke test allowed",
        "bake alarms readable",
    ] {
        assert!(names.contains(&n), "{n}: {}", render(&checks));
    }

    let c = only_failure(&verified(Lookup::Missing));
    assert_eq!(c.name, "smoke test project shipgate-smoke-web");
    assert!(c.fix.unwrap().contains("smoke_project"));
}

#[test]
fn smoke_projects_and_alarms_outside_the_stacks_prefixes_name_the_parameter() {
    let mut facts = verified(smoke_found());
    let Lookup::Found(s) = &mut facts.stack else {
        unreachable!()
    };
    s.parameters
        .insert(SMOKE_PREFIX.into(), vec!["web-smoke-".into()]);
    s.parameters
        .insert(ALARM_PREFIX.into(), vec!["web-".into()]);
    let checks = evaluate(&facts);
    let f = failed(&checks);
    assert_eq!(f.len(), 3, "{}", render(&checks));
    for c in &f[..2] {
        assert!(c.name.ends_with("smoke test allowed"), "{}", c.name);
        assert!(c.detail.contains("StartBuild is denied"), "{}", c.detail);
        assert!(c.fix.as_deref().unwrap().contains(SMOKE_PREFIX));
    }
    assert_eq!(f[2].name, "bake alarms readable");
    assert!(f[2]
        .detail
        .contains("shipgate-web-5xx, shipgate-web-latency"));
    assert!(f[2].fix.as_deref().unwrap().contains(ALARM_PREFIX));
    // the coverage check of `pipeline apply` says the same (nothing read)
    let place = Place::of(
        facts.identity.as_ref().unwrap(),
        facts.region.as_deref().unwrap(),
    );
    let Lookup::Found(stack) = &facts.stack else {
        unreachable!()
    };
    let apply = coverage_checks(
        definition(VERIFIED),
        stack,
        (Lookup::NotRead, Lookup::NotRead, Lookup::NotRead),
        &place,
    );
    assert_eq!(failed(&apply).len(), 3, "{}", render(&apply));
}

#[test]
fn a_stack_older_than_verified_promotion_is_told_to_redeploy() {
    let mut facts = verified(smoke_found());
    let Lookup::Found(s) = &mut facts.stack else {
        unreachable!()
    };
    s.parameters.remove(SMOKE_PREFIX);
    s.parameters.remove(ALARM_PREFIX);
    let checks = evaluate(&facts);
    let f = failed(&checks);
    assert_eq!(f.len(), 3, "{}", render(&checks));
    for c in f {
        assert!(
            c.detail.contains("before verified promotion"),
            "{}",
            c.detail
        );
        assert!(c.fix.as_deref().unwrap().contains("make deploy"));
    }
    // a pipeline without verification is not affected
    let mut plain = healthy();
    let Lookup::Found(s) = &mut plain.stack else {
        unreachable!()
    };
    s.parameters.remove(SMOKE_PREFIX);
    s.parameters.remove(ALARM_PREFIX);
    assert!(failed(&evaluate(&plain)).is_empty());
}
