//! `shipgate doctor`: is this AWS account wired so that shipgate can run every pipeline? A ✓/✗
//! checklist with the exact fix for every ✗, computed by pure functions from [`Facts`] (what
//! [`aws`] read: plain data, no SDK types). `shipgate pipeline apply` runs the coverage part
//! ([`coverage_checks`]) on the definition it is about to store.
//!
//! Why these checks: a pipeline whose CodeBuild project, repository, service or role is not in
//! the stack's allow-lists fails silently in AWS — StartBuild is denied (502, `BUILD_FAILED`), a
//! deploy is denied, or the EventBridge rule filters its events out (stuck in `BUILDING` until
//! the sweeper). Each allow-list is a parameter of `infra/template.yaml`, so every coverage ✗
//! names the parameter to change.

pub mod aws;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;
use shared::domain::{service_identity, PipelineDefinition, ServiceTarget, Source};

/// The stack parameters that allow-list what shipgate may touch (`infra/template.yaml`).
pub const PROJECT_NAMES: &str = "CodeBuildProjectNames";
pub const PROJECT_ARNS: &str = "CodeBuildProjectArns";
pub const REPOSITORY_ARNS: &str = "EcrRepositoryArns";
pub const TEST_SERVICES: &str = "TestServiceArns";
pub const PROD_SERVICES: &str = "ProdServiceArns";
pub const TASK_ROLES: &str = "EcsTaskRoleArns";
pub const CODECOMMIT_REPOSITORIES: &str = "CodeCommitRepositoryArns";
/// Verified promotion: the prefixes smoke test projects and bake alarms must be named with
/// (String parameters; a stack without them predates verified promotion).
pub const SMOKE_PREFIX: &str = "SmokeProjectNamePrefix";
pub const ALARM_PREFIX: &str = "VerifyAlarmNamePrefix";

/// The stack outputs doctor reads.
pub const REQUIRED_OUTPUTS: [&str; 7] = [
    "ControlFunctionName",
    "ApprovalTopicArn",
    "FailureTopicArn",
    "DeadLetterQueueUrl",
    "WebhookSecretArn",
    "BuildEventsRuleName",
    "DeployEventsRuleName",
];

/// How redeploying with changed parameters is said in every fix.
const REDEPLOY: &str =
    "then redeploy: `make deploy` (or `sam deploy --parameter-overrides ...`; see infra/README.md)";

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What is checked: `account`, `stack`, or `pipeline NAME`.
    pub section: String,
    pub name: String,
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// For a ✗: exactly what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(section: &str, name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            section: section.to_string(),
            name: name.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(
        section: &str,
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            section: section.to_string(),
            name: name.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// A read that may find the thing, find it missing, fail, or not be made (the coverage check
/// of `pipeline apply` reads no resources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    Found(T),
    Missing,
    Failed(String),
    NotRead,
}

impl<T> Lookup<T> {
    fn found(&self) -> Option<&T> {
        match self {
            Lookup::Found(t) => Some(t),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub arn: String,
    pub account: String,
}

impl Identity {
    /// `aws`, `aws-cn`, `aws-us-gov` (from the caller's ARN).
    pub fn partition(&self) -> &str {
        self.arn.split(':').nth(1).unwrap_or("aws")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StackFacts {
    pub status: String,
    /// CommaDelimitedList parameters split at commas, blanks dropped.
    pub parameters: BTreeMap<String, Vec<String>>,
    pub outputs: BTreeMap<String, String>,
}

impl StackFacts {
    pub fn list(&self, parameter: &str) -> &[String] {
        self.parameters
            .get(parameter)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// A String parameter's value; `None` when the stack has no such parameter.
    pub fn string(&self, parameter: &str) -> Option<&str> {
        self.list(parameter).first().map(String::as_str)
    }

    pub fn output(&self, key: &str) -> Option<&str> {
        self.outputs
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// An EventBridge rule: its state and event pattern (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFacts {
    pub name: String,
    pub enabled: bool,
    pub pattern: serde_json::Value,
}

impl RuleFacts {
    /// The strings the pattern lists at `path` (e.g. `["detail", "project-name"]`).
    fn listed(&self, path: &[&str]) -> Vec<String> {
        let mut v = &self.pattern;
        for p in path {
            match v.get(p) {
                Some(next) => v = next,
                None => return Vec::new(),
            }
        }
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFacts {
    pub arn: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFacts {
    pub arn: String,
    pub status: String,
    pub circuit_breaker: bool,
    pub rollback: bool,
    pub task_definition: String,
    /// Container names of the task definition.
    pub containers: Vec<String>,
    /// Task role and execution role of the task definition (those set).
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicFacts {
    pub confirmed: usize,
    pub pending: usize,
    /// Read for a pipeline with approvers: the confirmed e-mail subscriptions without a filter
    /// policy (each receives every approver's personal link; `shipgate approvers`).
    pub unfiltered_mailboxes: Option<Vec<String>>,
    /// E-mail subscriptions whose filter policy could not be read (GetSubscriptionAttributes).
    pub unreadable_mailboxes: Vec<String>,
}

/// Everything read about one pipeline.
#[derive(Debug, Clone)]
pub struct PipelineFacts {
    pub definition: PipelineDefinition,
    pub project: Lookup<ProjectFacts>,
    /// The repository's ARN.
    pub repository: Lookup<String>,
    pub test: Lookup<ServiceFacts>,
    pub prod: Lookup<ServiceFacts>,
    pub approval_topic: Lookup<TopicFacts>,
    /// The smoke test projects of `[verify.test]` / `[verify.prod]` (each name once).
    pub smoke: Vec<(String, Lookup<ProjectFacts>)>,
}

impl PipelineFacts {
    /// Nothing read but the definition (the coverage check of `pipeline apply`).
    pub fn unread(definition: PipelineDefinition) -> PipelineFacts {
        PipelineFacts {
            definition,
            project: Lookup::NotRead,
            repository: Lookup::NotRead,
            test: Lookup::NotRead,
            prod: Lookup::NotRead,
            approval_topic: Lookup::NotRead,
            smoke: Vec::new(),
        }
    }
}

/// Everything `shipgate doctor` read.
#[derive(Debug, Clone)]
pub struct Facts {
    pub identity: Result<Identity, String>,
    pub region: Option<String>,
    pub stack_name: String,
    pub stack: Lookup<StackFacts>,
    /// The control function invoked and what it answered: the pipelines, or why not.
    pub control: Option<(String, Result<usize, String>)>,
    pub build_rule: Lookup<RuleFacts>,
    pub deploy_rule: Lookup<RuleFacts>,
    /// `NotRead` when the stack has no CodeCommit rule (no `CodeCommitRuleName` output).
    pub codecommit_rule: Lookup<RuleFacts>,
    pub dead_letters: Lookup<u64>,
    /// Whether the webhook secret has a current value (DescribeSecret; the value is never read).
    pub webhook_secret: Lookup<bool>,
    /// `--pipeline NAME` that the table does not have.
    pub unknown_pipeline: Option<String>,
    pub pipelines: Vec<PipelineFacts>,
}

/// IAM's resource matching: `*` any run of characters, `?` one character, case-sensitive.
pub fn iam_match(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < v.len() {
        if i < p.len() && (p[i] == '?' || p[i] == v[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

fn allowed(list: &[String], arn: &str) -> bool {
    list.iter().any(|p| iam_match(p, arn))
}

/// The pieces ARNs are built from when a resource is given by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl Place {
    pub fn of(identity: &Identity, region: &str) -> Place {
        Place {
            partition: identity.partition().to_string(),
            region: region.to_string(),
            account: identity.account.clone(),
        }
    }

    pub fn project_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:codebuild:{}:{}:project/{name}",
            self.partition, self.region, self.account
        )
    }

    /// From `<account>.dkr.ecr.<region>.amazonaws.com/<name>`.
    pub fn repository_arn(&self, uri: &str) -> String {
        let (host, name) = uri.split_once('/').unwrap_or(("", uri));
        let mut parts = host.split('.');
        let account = parts
            .next()
            .filter(|a| !a.is_empty())
            .unwrap_or(&self.account);
        let region = parts.nth(2).unwrap_or(&self.region);
        format!(
            "arn:{}:ecr:{region}:{account}:repository/{name}",
            self.partition
        )
    }

    /// The long-format ARN of a service target (names, or ARNs of either format).
    pub fn service_arn(&self, target: &ServiceTarget) -> String {
        match service_identity(target) {
            Ok(id) => format!(
                "arn:{}:ecs:{}:{}:service/{}/{}",
                self.partition,
                id.region.as_deref().unwrap_or(&self.region),
                id.account.as_deref().unwrap_or(&self.account),
                id.cluster,
                id.service
            ),
            Err(_) => target.service.clone(),
        }
    }

    pub fn codecommit_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:codecommit:{}:{}:{name}",
            self.partition, self.region, self.account
        )
    }
}

/// The whole checklist.
pub fn evaluate(facts: &Facts) -> Vec<Check> {
    let mut checks = Vec::new();
    let acct = "account";
    match &facts.identity {
        Ok(id) => checks.push(Check::pass(
            acct,
            "AWS identity",
            format!("{} (account {})", id.arn, id.account),
        )),
        Err(e) => checks.push(Check::fail(
            acct,
            "AWS identity",
            format!("sts:GetCallerIdentity failed: {e}"),
            "configure credentials for the stack's account: `aws configure`, `export AWS_PROFILE=NAME` or `aws sso login`; for the local sandbox: `set -a; . .shipgate/dev.env; set +a`",
        )),
    }
    match &facts.region {
        Some(r) => checks.push(Check::pass(acct, "region", r.clone())),
        None => checks.push(Check::fail(
            acct,
            "region",
            "no region configured",
            "set the stack's region: `export AWS_REGION=eu-west-1` (or `region` in your AWS profile)",
        )),
    }

    let st = "stack";
    let name = &facts.stack_name;
    let stack = match &facts.stack {
        Lookup::Found(s) => {
            match s.status.as_str() {
                "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" => {
                    checks.push(Check::pass(st, format!("stack {name}"), s.status.clone()))
                }
                "UPDATE_ROLLBACK_COMPLETE" => checks.push(Check::pass(
                    st,
                    format!("stack {name}"),
                    "UPDATE_ROLLBACK_COMPLETE (the last update was rolled back; the one before it is in place)",
                )),
                status if status.ends_with("_IN_PROGRESS") => checks.push(Check::fail(
                    st,
                    format!("stack {name}"),
                    format!("status {status}"),
                    format!("wait for it: `aws cloudformation wait stack-update-complete --stack-name {name}` (or stack-create-complete), then run doctor again"),
                )),
                status => checks.push(Check::fail(
                    st,
                    format!("stack {name}"),
                    format!("status {status}"),
                    format!("see why: `aws cloudformation describe-stack-events --stack-name {name}`; fix the cause and `make deploy` again (a stack in ROLLBACK_COMPLETE must be deleted first: `aws cloudformation delete-stack --stack-name {name}`)"),
                )),
            }
            Some(s)
        }
        Lookup::Missing => {
            checks.push(Check::fail(
                st,
                format!("stack {name}"),
                "not found in this account and region",
                format!("deploy the control plane (`make deploy`, infra/README.md), or name the stack you deployed: `shipgate doctor --stack NAME` (or `export SHIPGATE_STACK=NAME`); stack {name} was looked for in the region above"),
            ));
            None
        }
        Lookup::Failed(e) => {
            checks.push(Check::fail(
                st,
                format!("stack {name}"),
                format!("cloudformation:DescribeStacks failed: {e}"),
                "allow your identity cloudformation:DescribeStacks on the stack (read-only), or run doctor with credentials that have it",
            ));
            None
        }
        Lookup::NotRead => None,
    };
    let Some(stack) = stack else {
        return checks;
    };
    let missing: Vec<&str> = REQUIRED_OUTPUTS
        .iter()
        .copied()
        .filter(|k| stack.output(k).is_none())
        .collect();
    if missing.is_empty() {
        checks.push(Check::pass(st, "stack outputs", "all present"));
    } else {
        checks.push(Check::fail(
            st,
            "stack outputs",
            format!("missing: {}", missing.join(", ")),
            format!("the stack was deployed from an older template: deploy infra/template.yaml again (`make deploy`) so stack {name} has these outputs"),
        ));
    }

    match &facts.control {
        Some((function, Ok(n))) => checks.push(Check::pass(
            st,
            "control invocable",
            format!("{function} answered ({n} pipeline(s))"),
        )),
        Some((function, Err(e))) => checks.push(Check::fail(
            st,
            "control invocable",
            format!("invoking {function} failed: {e}"),
            format!("allow your identity lambda:InvokeFunction on {function}: attach the stack's OperatorPolicyArn output (`aws iam attach-user-policy --user-name YOU --policy-arn ARN`, or attach-role-policy); the function name comes from the ControlFunctionName output"),
        )),
        None => {}
    }

    for (label, key, rule, needed) in [
        (
            "build events rule",
            "BuildEventsRuleName",
            &facts.build_rule,
            true,
        ),
        (
            "deployment events rule",
            "DeployEventsRuleName",
            &facts.deploy_rule,
            true,
        ),
        (
            "CodeCommit rule",
            "CodeCommitRuleName",
            &facts.codecommit_rule,
            false,
        ),
    ] {
        match rule {
            Lookup::Found(r) if r.enabled => {
                checks.push(Check::pass(st, label, format!("{} enabled", r.name)))
            }
            Lookup::Found(r) => checks.push(Check::fail(
                st,
                label,
                format!("{} is disabled: its events never reach shipgate", r.name),
                format!("`aws events enable-rule --name {}`", r.name),
            )),
            Lookup::Missing if needed => checks.push(Check::fail(
                st,
                label,
                format!("the rule named by output {key} does not exist"),
                "deploy the stack again (`make deploy`); it creates the rule",
            )),
            Lookup::Failed(e) => checks.push(Check::fail(
                st,
                label,
                format!("events:DescribeRule failed: {e}"),
                "allow your identity events:DescribeRule (read-only)",
            )),
            _ => {}
        }
    }

    match (&facts.dead_letters, stack.output("DeadLetterQueueUrl")) {
        (Lookup::Found(0), _) => checks.push(Check::pass(st, "dead-letter queue", "empty")),
        (Lookup::Found(n), Some(url)) => checks.push(Check::fail(
            st,
            "dead-letter queue",
            format!("{n} event(s) failed after every retry and were dropped"),
            format!("read them: `aws sqs receive-message --queue-url {url} --max-number-of-messages 10 --attribute-names All --message-attribute-names All` (the error is in the message attributes); fix the cause (often a ✗ below), run `shipgate status` and `shipgate retry` what failed, then `aws sqs purge-queue --queue-url {url}`"),
        )),
        (Lookup::Failed(e), _) => checks.push(Check::fail(
            st,
            "dead-letter queue",
            format!("sqs:GetQueueAttributes failed: {e}"),
            "allow your identity sqs:GetQueueAttributes on the stack's DeadLetterQueue (read-only)",
        )),
        (Lookup::Missing, _) => checks.push(Check::fail(
            st,
            "dead-letter queue",
            "the queue named by output DeadLetterQueueUrl does not exist",
            "deploy the stack again (`make deploy`)",
        )),
        _ => {}
    }

    let secret = stack
        .output("WebhookSecretArn")
        .unwrap_or("WebhookSecretArn");
    match &facts.webhook_secret {
        Lookup::Found(true) => checks.push(Check::pass(st, "GitHub webhook secret", "present")),
        Lookup::Found(false) | Lookup::Missing => checks.push(Check::fail(
            st,
            "GitHub webhook secret",
            "the secret has no current value (or is scheduled for deletion): every GitHub delivery is refused (401)",
            format!("set one and paste the same value into the repository's webhook settings: `aws secretsmanager put-secret-value --secret-id {secret} --secret-string \"$(openssl rand -hex 24)\"`"),
        )),
        Lookup::Failed(e) => checks.push(Check::fail(
            st,
            "GitHub webhook secret",
            format!("secretsmanager:DescribeSecret failed: {e}"),
            format!("allow your identity secretsmanager:DescribeSecret on {secret} (the stack's OperatorPolicyArn has it; the value is never read)"),
        )),
        Lookup::NotRead => {}
    }

    if let Some(p) = &facts.unknown_pipeline {
        checks.push(Check::fail(
            &format!("pipeline {p}"),
            "pipeline",
            "no such pipeline in the table",
            "`shipgate pipeline list` shows the pipelines; apply it with `shipgate pipeline apply FILE`",
        ));
    }

    let place = match (&facts.identity, &facts.region) {
        (Ok(id), Some(r)) => Some(Place::of(id, r)),
        _ => None,
    };
    for p in &facts.pipelines {
        checks.extend(pipeline_checks(p, stack, facts, place.as_ref()));
    }
    checks
}

/// Whether a CodeBuild project exists (`None` when it was not read): the image build project and
/// the smoke test projects alike.
fn project_check(
    sec: &str,
    label: String,
    found: &Lookup<ProjectFacts>,
    missing: &str,
    fix: String,
) -> Option<Check> {
    match found {
        Lookup::Missing => Some(Check::fail(sec, label, missing, fix)),
        Lookup::Failed(e) => Some(Check::fail(
            sec,
            label,
            format!("codebuild:BatchGetProjects failed: {e}"),
            "allow your identity codebuild:BatchGetProjects (read-only)",
        )),
        Lookup::Found(_) => Some(Check::pass(sec, label, "exists")),
        Lookup::NotRead => None,
    }
}

/// Every check of one pipeline: whether what it names exists and is healthy (when read), and
/// whether the stack covers it.
fn pipeline_checks(
    p: &PipelineFacts,
    stack: &StackFacts,
    facts: &Facts,
    place: Option<&Place>,
) -> Vec<Check> {
    let d = &p.definition;
    let sec = format!("pipeline {}", d.name);
    let mut checks = Vec::new();

    checks.extend(project_check(
        &sec,
        format!("CodeBuild project {}", d.build.project),
        &p.project,
        "does not exist in this account and region",
        format!("create it (infra/example-environment.yaml has one), or set build.project of pipeline {} to an existing project and apply it again", d.name),
    ));
    for (project, found) in &p.smoke {
        checks.extend(project_check(
            &sec,
            format!("smoke test project {project}"),
            found,
            "does not exist in this account and region: every verification that starts it fails (production: rolls back)",
            format!("create it (infra/example-environment.yaml has SmokeProject), or set verify.test/verify.prod smoke_project of pipeline {} to an existing project and apply it again", d.name),
        ));
    }

    match &p.repository {
        Lookup::Missing => checks.push(Check::fail(
            &sec,
            format!("ECR repository {}", d.image.repository_name()),
            "does not exist",
            format!("`aws ecr create-repository --repository-name {}`, or set image.repository to the one the build pushes to", d.image.repository_name()),
        )),
        Lookup::Failed(e) => checks.push(Check::fail(
            &sec,
            format!("ECR repository {}", d.image.repository_name()),
            format!("ecr:DescribeRepositories failed: {e}"),
            "allow your identity ecr:DescribeRepositories (read-only)",
        )),
        Lookup::Found(_) => checks.push(Check::pass(
            &sec,
            format!("ECR repository {}", d.image.repository_name()),
            "exists",
        )),
        Lookup::NotRead => {}
    }

    for (env, target, found) in [("test", &d.test, &p.test), ("prod", &d.prod, &p.prod)] {
        let label = format!(
            "{env} service {}/{}",
            short(&target.cluster),
            short(&target.service)
        );
        match found {
            Lookup::Missing => checks.push(Check::fail(
                &sec,
                &label,
                "does not exist (or is not ACTIVE)",
                format!("create it with the deployment circuit breaker on (infra/example-environment.yaml), or point {env}.cluster / {env}.service of pipeline {} at an existing service", d.name),
            )),
            Lookup::Failed(e) => checks.push(Check::fail(
                &sec,
                &label,
                format!("ecs:DescribeServices failed: {e}"),
                "allow your identity ecs:DescribeServices and ecs:DescribeTaskDefinition (read-only)",
            )),
            Lookup::Found(s) => {
                checks.extend(service_health(&sec, &label, env, target, s, stack));
            }
            Lookup::NotRead => {}
        }
    }

    match &p.approval_topic {
        Lookup::Found(t) if t.confirmed >= 1 => checks.push(Check::pass(
            &sec,
            "approval subscribers",
            format!("{} confirmed subscription(s)", t.confirmed),
        )),
        Lookup::Found(t) => checks.push(Check::fail(
            &sec,
            "approval subscribers",
            format!("no confirmed subscription ({} pending confirmation): approval requests reach nobody", t.pending),
            format!("`shipgate approvers add approver@example.com --pipeline {}` (or `aws sns subscribe --topic-arn {} --protocol email --notification-endpoint approver@example.com`), then confirm it with AuthenticateOnUnsubscribe=true (docs/approvals.md, \"Managing approvers\")", d.name, d.approval.topic_arn),
        )),
        Lookup::Missing => checks.push(Check::fail(
            &sec,
            "approval subscribers",
            format!("topic {} does not exist", d.approval.topic_arn),
            "set approval.topic_arn to the stack's ApprovalTopicArn output and apply the pipeline again",
        )),
        Lookup::Failed(e) => checks.push(Check::fail(
            &sec,
            "approval subscribers",
            format!("sns:ListSubscriptionsByTopic failed: {e}"),
            "allow your identity sns:ListSubscriptionsByTopic (read-only)",
        )),
        Lookup::NotRead => {}
    }
    if let Lookup::Found(t) = &p.approval_topic {
        checks.extend(filter_policy_check(&sec, &d.name, t));
    }

    match place {
        Some(place) => checks.extend(coverage(p, stack, facts, place)),
        None => checks.push(Check::fail(
            &sec,
            "stack coverage",
            "not checked: identity or region unknown (see above)",
            "fix the account checks above, then run doctor again",
        )),
    }
    checks
}

/// A pipeline with approvers: every e-mail subscription of its approval topic has a filter
/// policy (one without receives every approver's personal approval link).
fn filter_policy_check(sec: &str, pipeline: &str, t: &TopicFacts) -> Option<Check> {
    let name = "approvers' filter policies";
    let unfiltered = t.unfiltered_mailboxes.as_ref()?;
    Some(if !unfiltered.is_empty() {
        Check::fail(
            sec,
            name,
            format!(
                "{} e-mail subscription(s) without a filter policy receive every approver's personal approval link: {}",
                unfiltered.len(),
                unfiltered.join(", ")
            ),
            format!(
                "`shipgate approvers add EMAIL --pipeline {pipeline}` for each (sets its filter policy), or `shipgate approvers remove EMAIL --pipeline {pipeline}`; `shipgate approvers list --pipeline {pipeline}` shows them all"
            ),
        )
    } else if !t.unreadable_mailboxes.is_empty() {
        Check::fail(
            sec,
            name,
            format!(
                "sns:GetSubscriptionAttributes failed for {}",
                t.unreadable_mailboxes.join(", ")
            ),
            "allow your identity sns:GetSubscriptionAttributes (the stack's OperatorPolicyArn has it)",
        )
    } else {
        Check::pass(sec, name, "every e-mail subscription has a filter policy")
    })
}

/// The last part of a name or ARN, for labels.
fn short(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// A service that exists: long ARN, circuit breaker, the named container, PassRole coverage.
fn service_health(
    sec: &str,
    label: &str,
    env: &str,
    target: &ServiceTarget,
    s: &ServiceFacts,
    stack: &StackFacts,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let long = s
        .arn
        .split_once(":service/")
        .is_some_and(|(_, path)| path.contains('/'));
    if long {
        checks.push(Check::pass(sec, label, format!("{} ({})", s.arn, s.status)));
    } else {
        checks.push(Check::fail(
            sec,
            label,
            format!("{} is in the old short ARN format: ECS events name it without the cluster, so the deployment events rule cannot match it", s.arn),
            "opt in to the long ARN format (`aws ecs put-account-setting-default --name serviceLongArnFormat --value enabled`) and create the service again; then list its new ARN in the stack parameters",
        ));
    }
    if s.circuit_breaker && s.rollback {
        checks.push(Check::pass(
            sec,
            format!("{env} circuit breaker"),
            "on, with rollback",
        ));
    } else {
        checks.push(Check::fail(
            sec,
            format!("{env} circuit breaker"),
            "off: a failed deployment is never reported as failed (and is not rolled back)",
            format!("`aws ecs update-service --cluster {} --service {} --deployment-configuration \"deploymentCircuitBreaker={{enable=true,rollback=true}}\"`", target.cluster, target.service),
        ));
    }
    if s.containers.iter().any(|c| c == &target.container) {
        checks.push(Check::pass(
            sec,
            format!("{env} container {}", target.container),
            format!("in {}", short(&s.task_definition)),
        ));
    } else {
        checks.push(Check::fail(
            sec,
            format!("{env} container {}", target.container),
            format!(
                "task definition {} has no container {} (it has: {})",
                short(&s.task_definition),
                target.container,
                s.containers.join(", ")
            ),
            format!("set {env}.container to one of those and apply the pipeline again"),
        ));
    }
    let roles = stack.list(TASK_ROLES);
    let not_allowed: Vec<&String> = s.roles.iter().filter(|r| !allowed(roles, r)).collect();
    if not_allowed.is_empty() {
        checks.push(Check::pass(
            sec,
            format!("{env} task roles (iam:PassRole)"),
            if s.roles.is_empty() {
                "the task definition names no role".to_string()
            } else {
                format!("{} allowed by {TASK_ROLES}", s.roles.len())
            },
        ));
    } else {
        let list = not_allowed
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        checks.push(Check::fail(
            sec,
            format!("{env} task roles (iam:PassRole)"),
            format!("not in stack parameter {TASK_ROLES}: {list}; registering the next task definition revision is denied"),
            format!("add {list} to the stack parameter {TASK_ROLES}, {REDEPLOY}"),
        ));
    }
    checks
}

/// Whether the stack's allow-lists and rules cover the pipeline: the checks `pipeline apply`
/// runs too. Resources that were read give their real ARNs; others are built from the names.
fn coverage(p: &PipelineFacts, stack: &StackFacts, facts: &Facts, place: &Place) -> Vec<Check> {
    let d = &p.definition;
    let sec = format!("pipeline {}", d.name);
    let mut checks = Vec::new();

    // build
    let project_arn = p
        .project
        .found()
        .map(|f| f.arn.clone())
        .unwrap_or_else(|| place.project_arn(&d.build.project));
    let by_name = stack
        .list(PROJECT_NAMES)
        .iter()
        .any(|n| n == &d.build.project);
    let by_arn = allowed(stack.list(PROJECT_ARNS), &project_arn);
    if by_name && by_arn {
        checks.push(Check::pass(
            &sec,
            "build allowed",
            format!("{} in {PROJECT_NAMES} and {PROJECT_ARNS}", d.build.project),
        ));
    } else {
        let mut missing = Vec::new();
        if !by_name {
            missing.push(format!("{} to {PROJECT_NAMES}", d.build.project));
        }
        if !by_arn {
            missing.push(format!("{project_arn} to {PROJECT_ARNS}"));
        }
        checks.push(Check::fail(
            &sec,
            "build allowed",
            format!("project {} is not allowed by the stack: StartBuild is denied (the push answers 502, the execution is BUILD_FAILED)", d.build.project),
            format!("add {} (same position in both lists), {REDEPLOY}", missing.join(" and ")),
        ));
    }
    if let Some(rule) = facts.build_rule.found() {
        let listed = rule.listed(&["detail", "project-name"]);
        if listed.iter().any(|n| n == &d.build.project) {
            checks.push(Check::pass(
                &sec,
                "build events reach shipgate",
                format!("rule {} matches project {}", rule.name, d.build.project),
            ));
        } else {
            checks.push(Check::fail(
                &sec,
                "build events reach shipgate",
                format!("rule {} does not match project {}: its executions stay BUILDING until the sweeper reconciles them", rule.name, d.build.project),
                format!("add {} to the stack parameter {PROJECT_NAMES} (the rule's pattern is made from it), {REDEPLOY}", d.build.project),
            ));
        }
    }

    checks.extend(verify_coverage(d, stack, &sec));

    // image
    let repo_arn = p
        .repository
        .found()
        .cloned()
        .unwrap_or_else(|| place.repository_arn(&d.image.repository));
    if allowed(stack.list(REPOSITORY_ARNS), &repo_arn) {
        checks.push(Check::pass(
            &sec,
            "image repository allowed",
            format!("{repo_arn} in {REPOSITORY_ARNS}"),
        ));
    } else {
        checks.push(Check::fail(
            &sec,
            "image repository allowed",
            format!("{repo_arn} is not in stack parameter {REPOSITORY_ARNS}: resolving the image digest is denied (BUILD_FAILED)"),
            format!("add {repo_arn} to the stack parameter {REPOSITORY_ARNS}, {REDEPLOY}"),
        ));
    }

    // services
    let deploy_listed = facts
        .deploy_rule
        .found()
        .map(|r| (r.name.clone(), r.listed(&["resources"])));
    for (env, target, found, list, other) in [
        ("test", &d.test, &p.test, TEST_SERVICES, PROD_SERVICES),
        ("prod", &d.prod, &p.prod, PROD_SERVICES, TEST_SERVICES),
    ] {
        let arn = found
            .found()
            .map(|s| s.arn.clone())
            .unwrap_or_else(|| place.service_arn(target));
        let label = format!("{env} service allowed");
        if !allowed(stack.list(list), &arn) {
            let consequence = if env == "test" {
                "deploying builds to it is denied (TEST_FAILED)"
            } else {
                "deploying approved releases to it is denied (PROD_FAILED)"
            };
            checks.push(Check::fail(
                &sec,
                &label,
                format!("{arn} is not in stack parameter {list}: {consequence}"),
                format!("add {arn} to the stack parameter {list}, {REDEPLOY}"),
            ));
        } else if env == "test" && allowed(stack.list(other), &arn) {
            checks.push(Check::fail(
                &sec,
                &label,
                format!("{arn} is also matched by stack parameter {other}: the test stage's roles are denied ecs:UpdateService on every prod service"),
                format!("remove what matches {arn} from the stack parameter {other}, {REDEPLOY}"),
            ));
        } else {
            checks.push(Check::pass(&sec, &label, format!("{arn} in {list}")));
        }
        if let Some((rule, listed)) = &deploy_listed {
            if listed.iter().any(|r| r == &arn) {
                checks.push(Check::pass(
                    &sec,
                    format!("{env} deployment events reach shipgate"),
                    format!("rule {rule} matches {arn}"),
                ));
            } else {
                checks.push(Check::fail(
                    &sec,
                    format!("{env} deployment events reach shipgate"),
                    format!("rule {rule} does not list {arn} (EventBridge matches ARNs exactly): deployments stay DEPLOYING until the sweeper reconciles them"),
                    format!("list exactly {arn} (no wildcard) in the stack parameter {list}, {REDEPLOY}"),
                ));
            }
        }
    }

    // topics
    let stack_topics: Vec<&str> = ["ApprovalTopicArn", "FailureTopicArn"]
        .iter()
        .filter_map(|k| stack.output(k))
        .collect();
    let approval_output = stack
        .output("ApprovalTopicArn")
        .unwrap_or("the ApprovalTopicArn output");
    let mut topics = vec![("approval.topic_arn", d.approval.topic_arn.as_str())];
    if let Some(n) = &d.notifications {
        topics.push(("notifications.topic_arn", n.topic_arn.as_str()));
    }
    for (field, topic) in topics {
        if stack_topics.contains(&topic) {
            checks.push(Check::pass(
                &sec,
                format!("{field} publishable"),
                format!("{topic} is the stack's"),
            ));
        } else {
            checks.push(Check::fail(
                &sec,
                format!("{field} publishable"),
                format!("{topic} is not one of the stack's topics: the functions may publish only to ApprovalTopicArn and FailureTopicArn"),
                format!("set {field} to {approval_output} (the stack's ApprovalTopicArn output; or its FailureTopicArn) in pipeline {} and apply it again", d.name),
            ));
        }
    }

    // source
    if let Source::Codecommit(repo) = &d.source {
        let arn = place.codecommit_arn(repo);
        if allowed(stack.list(CODECOMMIT_REPOSITORIES), &arn) {
            checks.push(Check::pass(
                &sec,
                "CodeCommit repository allowed",
                format!("{arn} in {CODECOMMIT_REPOSITORIES}"),
            ));
        } else {
            checks.push(Check::fail(
                &sec,
                "CodeCommit repository allowed",
                format!("{arn} is not in stack parameter {CODECOMMIT_REPOSITORIES}: its pushes never reach shipgate"),
                format!("add {arn} to the stack parameter {CODECOMMIT_REPOSITORIES}, {REDEPLOY}"),
            ));
        }
        match &facts.codecommit_rule {
            Lookup::Found(rule) if rule.listed(&["resources"]).iter().any(|r| r == &arn) => checks.push(Check::pass(
                &sec,
                "CodeCommit events reach shipgate",
                format!("rule {} matches {arn}", rule.name),
            )),
            Lookup::Found(rule) => checks.push(Check::fail(
                &sec,
                "CodeCommit events reach shipgate",
                format!("rule {} does not list {arn}", rule.name),
                format!("list exactly {arn} in the stack parameter {CODECOMMIT_REPOSITORIES}, {REDEPLOY}"),
            )),
            Lookup::NotRead | Lookup::Missing => checks.push(Check::fail(
                &sec,
                "CodeCommit events reach shipgate",
                "the stack has no CodeCommit rule (CodeCommitRepositoryArns is empty)",
                format!("add {arn} to the stack parameter {CODECOMMIT_REPOSITORIES}, {REDEPLOY}"),
            )),
            Lookup::Failed(_) => {}
        }
    }
    checks
}

/// Whether the stack lets shipgate start the pipeline's smoke test projects and read its bake
/// alarms: both are scoped by a name prefix (stack parameters [`SMOKE_PREFIX`] and
/// [`ALARM_PREFIX`]), which also filters the smoke builds' and alarms' events.
fn verify_coverage(d: &PipelineDefinition, stack: &StackFacts, sec: &str) -> Vec<Check> {
    let mut checks = Vec::new();
    let Some(verify) = &d.verify else {
        return checks;
    };
    for (env, v) in [("test", &verify.test), ("prod", &verify.prod)] {
        let Some(project) = v.as_ref().and_then(|v| v.smoke_project.as_deref()) else {
            continue;
        };
        let name = format!("{env} smoke test allowed");
        match stack.string(SMOKE_PREFIX) {
            Some(prefix) if project.starts_with(prefix) => checks.push(Check::pass(
                sec,
                name,
                format!("{project} starts with {SMOKE_PREFIX} ({prefix})"),
            )),
            Some(prefix) => checks.push(Check::fail(
                sec,
                name,
                format!("smoke test project {project} does not start with {SMOKE_PREFIX} ({prefix}): StartBuild is denied and its build events are filtered out, so every {env} verification fails"),
                format!("name the project {prefix}…, or set the stack parameter {SMOKE_PREFIX} to a prefix of {project}, {REDEPLOY}"),
            )),
            None => checks.push(predates(sec, name, SMOKE_PREFIX, "its smoke tests cannot start")),
        }
    }
    let alarms = verify
        .prod
        .as_ref()
        .map(|v| v.alarms.as_slice())
        .unwrap_or(&[]);
    if alarms.is_empty() {
        return checks;
    }
    let Some(alarm_prefix) = stack.string(ALARM_PREFIX) else {
        checks.push(predates(
            sec,
            "bake alarms readable".into(),
            ALARM_PREFIX,
            "its bake cannot read the alarms",
        ));
        return checks;
    };
    let outside: Vec<&str> = alarms
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with(alarm_prefix))
        .collect();
    if outside.is_empty() {
        checks.push(Check::pass(
            sec,
            "bake alarms readable",
            format!(
                "{} alarm(s), each starting with {ALARM_PREFIX} ({alarm_prefix})",
                alarms.len()
            ),
        ));
    } else {
        checks.push(Check::fail(
            sec,
            "bake alarms readable",
            format!("alarm(s) {} do not start with {ALARM_PREFIX} ({alarm_prefix}): cloudwatch:DescribeAlarms is denied on them and their state changes are filtered out, so the production bake cannot watch them", outside.join(", ")),
            format!("name the alarms {alarm_prefix}…, or set the stack parameter {ALARM_PREFIX} to a prefix they share, {REDEPLOY}"),
        ));
    }
    checks
}

/// A ✗ for a stack deployed from a template older than the parameter `parameter`.
fn predates(sec: &str, name: String, parameter: &str, consequence: &str) -> Check {
    Check::fail(
        sec,
        name,
        format!("the stack has no parameter {parameter}: it was deployed from a template before verified promotion, so {consequence}"),
        "deploy the current infra/template.yaml: `make deploy` (or `sam deploy`; see infra/README.md)",
    )
}

/// The coverage checks of `pipeline apply` for `definition` (no resource is read).
pub fn coverage_checks(
    definition: PipelineDefinition,
    stack: &StackFacts,
    rules: (Lookup<RuleFacts>, Lookup<RuleFacts>, Lookup<RuleFacts>),
    place: &Place,
) -> Vec<Check> {
    let facts = Facts {
        identity: Err(String::new()),
        region: None,
        stack_name: String::new(),
        stack: Lookup::NotRead,
        control: None,
        build_rule: rules.0,
        deploy_rule: rules.1,
        codecommit_rule: rules.2,
        dead_letters: Lookup::NotRead,
        webhook_secret: Lookup::NotRead,
        unknown_pipeline: None,
        pipelines: Vec::new(),
    };
    coverage(&PipelineFacts::unread(definition), stack, &facts, place)
}

/// The checklist as printed: sections, ✓/✗ lines, the fix under each ✗, and a summary.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    let mut section = "";
    for c in checks {
        if c.section != section {
            section = &c.section;
            out.push_str(&format!("{section}\n"));
        }
        let mark = if c.ok { "✓" } else { "✗" };
        out.push_str(&format!("  {mark} {}: {}\n", c.name, c.detail));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("      fix: {fix}\n"));
        }
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        out.push_str(&format!("all {} checks passed\n", checks.len()));
    } else {
        out.push_str(&format!("{failed} of {} checks failed\n", checks.len()));
    }
    out
}

/// `shipgate doctor`'s options.
#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// The control-plane stack (the name given to `sam deploy`).
    #[arg(long, env = "SHIPGATE_STACK", default_value = "shipgate")]
    pub stack: String,
    /// Check only this pipeline (default: every pipeline in the table).
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Print the checks as JSON: {"ok", "checks": [{section, name, ok, detail, fix}]}.
    #[arg(long)]
    pub json: bool,
    /// The control function to invoke (default: the stack's ControlFunctionName output).
    #[arg(long, env = "SHIPGATE_CONTROL_FUNCTION")]
    pub function: Option<String>,
}

/// Run the checklist; exit 0 only when every check passed, else 1.
pub async fn run(args: DoctorArgs) -> std::process::ExitCode {
    let facts = aws::gather(
        &args.stack,
        args.pipeline.as_deref(),
        args.function.as_deref(),
    )
    .await;
    let checks = evaluate(&facts);
    let ok = checks.iter().all(|c| c.ok);
    if args.json {
        let doc = serde_json::json!({"ok": ok, "checks": checks});
        crate::output::say(&serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        crate::output::say(render(&checks).trim_end());
    }
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}

/// Before `pipeline apply` stores `file`: the coverage checks against `stack`, printed as
/// warnings on stderr. `Err` (nothing is stored) only with `strict`, when a check failed or the
/// stack could not be read.
pub async fn before_apply(file: &std::path::Path, stack: &str, strict: bool) -> Result<(), String> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Ok(()); // apply reports it
    };
    let name = file.to_string_lossy();
    let Some(format) = shared::domain::Format::from_path(&name) else {
        return Ok(());
    };
    let Ok(definition) = PipelineDefinition::parse(&text, format) else {
        return Ok(());
    };
    let pipeline = definition.name.clone();
    let refused = "refused (--strict): nothing was stored";
    match aws::apply_coverage(stack, definition).await {
        Ok(checks) => {
            let failed: Vec<&Check> = checks.iter().filter(|c| !c.ok).collect();
            if failed.is_empty() {
                return Ok(());
            }
            let mut text = format!(
                "warning: stack {stack} does not cover pipeline {pipeline} ({} problem(s)); in AWS it would fail:\n",
                failed.len()
            );
            for c in &failed {
                text.push_str(&format!("  ✗ {}: {}\n", c.name, c.detail));
                if let Some(fix) = &c.fix {
                    text.push_str(&format!("      fix: {fix}\n"));
                }
            }
            if strict {
                eprint!("{text}");
                Err(refused.into())
            } else {
                text.push_str(
                    "  (applied anyway; `--strict` refuses, `shipgate doctor` checks everything)",
                );
                eprintln!("{text}");
                Ok(())
            }
        }
        Err(e) if strict => Err(format!(
            "cannot check that stack {stack} covers pipeline {pipeline}: {e}; {refused}"
        )),
        Err(e) => {
            eprintln!("warning: cannot check that stack {stack} covers pipeline {pipeline}: {e}");
            Ok(())
        }
    }
}
