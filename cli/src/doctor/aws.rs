//! What `shipgate doctor` reads from AWS, as plain facts (the SDK types stay in this file).
//! Read-only calls, with the caller's credentials; endpoints from `AWS_ENDPOINT_URL[_<SERVICE>]`
//! as for every SDK client (so the same code reads `shipgate dev`'s local AWS).

use std::collections::BTreeMap;
use std::fmt::Debug;

use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use shared::domain::PipelineDefinition;
use shared::protocol::{Answer, ControlRequest, ControlResponse, PipelineFilter};

use super::{
    Facts, Identity, Lookup, PipelineFacts, Place, ProjectFacts, RuleFacts, ServiceFacts,
    StackFacts, TopicFacts,
};
use crate::client::ControlClient;

/// The SDK clients doctor reads with, built once.
pub struct AwsReader {
    region: Option<String>,
    sts: aws_sdk_sts::Client,
    cloudformation: aws_sdk_cloudformation::Client,
    events: aws_sdk_eventbridge::Client,
    codebuild: aws_sdk_codebuild::Client,
    ecr: aws_sdk_ecr::Client,
    ecs: aws_sdk_ecs::Client,
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    secrets: aws_sdk_secretsmanager::Client,
}

/// An SDK error as one line (the service's code and message, or why the call failed).
fn say<E, R>(e: SdkError<E, R>) -> String
where
    E: std::error::Error + Send + Sync + 'static,
    R: Debug,
{
    DisplayErrorContext(e).to_string()
}

/// `Found`, `Missing` when the error code is one of `missing` (or `missing_if` says so), else
/// `Failed`.
fn lookup<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    missing: &[&str],
) -> Result<T, Lookup<std::convert::Infallible>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug,
{
    match result {
        Ok(t) => Ok(t),
        Err(e) => {
            let code = e.code().unwrap_or_default().to_string();
            let message = e.message().unwrap_or_default().to_string();
            if missing.iter().any(|m| code.contains(m))
                || (code == "ValidationError" && message.contains("does not exist"))
            {
                Err(Lookup::Missing)
            } else {
                Err(Lookup::Failed(say(e)))
            }
        }
    }
}

fn cast<T>(l: Lookup<std::convert::Infallible>) -> Lookup<T> {
    match l {
        Lookup::Missing => Lookup::Missing,
        Lookup::Failed(e) => Lookup::Failed(e),
        Lookup::NotRead => Lookup::NotRead,
        Lookup::Found(never) => match never {},
    }
}

impl AwsReader {
    pub async fn new() -> AwsReader {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(shared::adapters::https_client())
            .load()
            .await;
        AwsReader {
            region: sdk.region().map(|r| r.to_string()),
            sts: aws_sdk_sts::Client::new(&sdk),
            cloudformation: aws_sdk_cloudformation::Client::new(&sdk),
            events: aws_sdk_eventbridge::Client::new(&sdk),
            codebuild: aws_sdk_codebuild::Client::new(&sdk),
            ecr: aws_sdk_ecr::Client::new(&sdk),
            ecs: aws_sdk_ecs::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
        }
    }

    pub fn region(&self) -> Option<String> {
        self.region.clone()
    }

    pub async fn identity(&self) -> Result<Identity, String> {
        let out = self.sts.get_caller_identity().send().await.map_err(say)?;
        Ok(Identity {
            arn: out.arn().unwrap_or_default().to_string(),
            account: out.account().unwrap_or_default().to_string(),
        })
    }

    pub async fn stack(&self, name: &str) -> Lookup<StackFacts> {
        let out = match lookup(
            self.cloudformation
                .describe_stacks()
                .stack_name(name)
                .send()
                .await,
            &[],
        ) {
            Ok(out) => out,
            Err(l) => return cast(l),
        };
        let Some(s) = out.stacks().first() else {
            return Lookup::Missing;
        };
        let parameters: BTreeMap<String, Vec<String>> = s
            .parameters()
            .iter()
            .filter_map(|p| {
                let values = p
                    .parameter_value()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
                    .collect();
                Some((p.parameter_key()?.to_string(), values))
            })
            .collect();
        let outputs = s
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
            .collect();
        Lookup::Found(StackFacts {
            status: s
                .stack_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            parameters,
            outputs,
        })
    }

    pub async fn rule(&self, name: Option<&str>) -> Lookup<RuleFacts> {
        let Some(name) = name else {
            return Lookup::NotRead;
        };
        let out = match lookup(
            self.events.describe_rule().name(name).send().await,
            &["ResourceNotFound"],
        ) {
            Ok(out) => out,
            Err(l) => return cast(l),
        };
        let pattern = out
            .event_pattern()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or(serde_json::Value::Null);
        Lookup::Found(RuleFacts {
            name: name.to_string(),
            enabled: out
                .state()
                .is_some_and(|s| *s == aws_sdk_eventbridge::types::RuleState::Enabled),
            pattern,
        })
    }

    pub async fn queue_depth(&self, url: Option<&str>) -> Lookup<u64> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let Some(url) = url else {
            return Lookup::NotRead;
        };
        let kinds = [
            A::ApproximateNumberOfMessages,
            A::ApproximateNumberOfMessagesNotVisible,
            A::ApproximateNumberOfMessagesDelayed,
        ];
        let out = match lookup(
            self.sqs
                .get_queue_attributes()
                .queue_url(url)
                .set_attribute_names(Some(kinds.to_vec()))
                .send()
                .await,
            &["NonExistentQueue", "QueueDoesNotExist"],
        ) {
            Ok(out) => out,
            Err(l) => return cast(l),
        };
        let attrs = out.attributes();
        let total = kinds
            .iter()
            .filter_map(|k| attrs.and_then(|a| a.get(k)))
            .filter_map(|v| v.parse::<u64>().ok())
            .sum();
        Lookup::Found(total)
    }

    /// Whether the secret has a current value: DescribeSecret (a version staged `AWSCURRENT`,
    /// not scheduled for deletion). The value is never read.
    pub async fn secret_present(&self, id: Option<&str>) -> Lookup<bool> {
        let Some(id) = id else {
            return Lookup::NotRead;
        };
        match lookup(
            self.secrets.describe_secret().secret_id(id).send().await,
            &["ResourceNotFound"],
        ) {
            Ok(out) => Lookup::Found(
                out.deleted_date().is_none()
                    && out.version_ids_to_stages().is_some_and(|versions| {
                        versions
                            .values()
                            .any(|stages| stages.iter().any(|s| s == "AWSCURRENT"))
                    }),
            ),
            Err(l) => cast(l),
        }
    }

    pub async fn project(&self, name: &str) -> Lookup<ProjectFacts> {
        let out = match lookup(
            self.codebuild.batch_get_projects().names(name).send().await,
            &[],
        ) {
            Ok(out) => out,
            Err(l) => return cast(l),
        };
        match out.projects().first() {
            Some(p) => Lookup::Found(ProjectFacts {
                arn: p.arn().unwrap_or_default().to_string(),
            }),
            None => Lookup::Missing,
        }
    }

    /// The repository's ARN; `uri` is `<account>.dkr.ecr.<region>.amazonaws.com/<name>` (the
    /// account is the registry asked).
    pub async fn repository(&self, uri: &str) -> Lookup<String> {
        let (host, name) = uri.split_once('/').unwrap_or(("", uri));
        let registry = host
            .split('.')
            .next()
            .filter(|a| a.len() == 12 && a.chars().all(|c| c.is_ascii_digit()));
        match lookup(
            self.ecr
                .describe_repositories()
                .set_registry_id(registry.map(str::to_string))
                .repository_names(name)
                .send()
                .await,
            &["RepositoryNotFound"],
        ) {
            Ok(out) => match out.repositories().first() {
                Some(r) => Lookup::Found(r.repository_arn().unwrap_or_default().to_string()),
                None => Lookup::Missing,
            },
            Err(l) => cast(l),
        }
    }

    pub async fn service(&self, cluster: &str, service: &str) -> Lookup<ServiceFacts> {
        let out = match lookup(
            self.ecs
                .describe_services()
                .cluster(cluster)
                .services(service)
                .send()
                .await,
            &["ClusterNotFound"],
        ) {
            Ok(out) => out,
            Err(l) => return cast(l),
        };
        let Some(s) = out
            .services()
            .iter()
            .find(|s| s.status() != Some("INACTIVE"))
        else {
            return Lookup::Missing;
        };
        let breaker = s
            .deployment_configuration()
            .and_then(|c| c.deployment_circuit_breaker());
        let task_definition = s.task_definition().unwrap_or_default().to_string();
        let (containers, roles) = match self
            .ecs
            .describe_task_definition()
            .task_definition(&task_definition)
            .send()
            .await
        {
            Ok(td) => {
                let td = td.task_definition();
                let containers = td
                    .map(|t| {
                        t.container_definitions()
                            .iter()
                            .filter_map(|c| c.name().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let roles = td
                    .map(|t| {
                        [t.task_role_arn(), t.execution_role_arn()]
                            .into_iter()
                            .flatten()
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                (containers, roles)
            }
            Err(e) => {
                return Lookup::Failed(format!(
                    "ecs:DescribeTaskDefinition {task_definition}: {}",
                    say(e)
                ))
            }
        };
        Lookup::Found(ServiceFacts {
            arn: s.service_arn().unwrap_or_default().to_string(),
            status: s.status().unwrap_or_default().to_string(),
            circuit_breaker: breaker.is_some_and(|b| b.enable()),
            rollback: breaker.is_some_and(|b| b.rollback()),
            task_definition,
            containers,
            roles,
        })
    }

    /// Confirmed and pending subscriptions (SNS lists a pending one as `PendingConfirmation`);
    /// with `approvers`, also the filter policies of the e-mail subscriptions.
    pub async fn topic(&self, arn: &str, approvers: bool) -> Lookup<TopicFacts> {
        use crate::approvers::{report, sns};
        if approvers {
            return match sns::subscriptions(&self.sns, arn).await {
                Ok((subs, _)) => Lookup::Found(TopicFacts {
                    confirmed: subs.iter().filter(|s| s.arn.is_some()).count(),
                    pending: subs.iter().filter(|s| s.arn.is_none()).count(),
                    unfiltered_mailboxes: Some(report::unfiltered_mailboxes(&subs)),
                    unreadable_mailboxes: subs
                        .iter()
                        .filter(|s| {
                            s.is_email()
                                && matches!(s.attributes, report::Attributes::Failed { .. })
                        })
                        .map(|s| s.endpoint.clone())
                        .collect(),
                }),
                Err(sns::SnsError::NoTopic) => Lookup::Missing,
                Err(e) => Lookup::Failed(e.to_string()),
            };
        }
        let mut facts = TopicFacts::default();
        let mut next: Option<String> = None;
        for _ in 0..50 {
            let out = match lookup(
                self.sns
                    .list_subscriptions_by_topic()
                    .topic_arn(arn)
                    .set_next_token(next.clone())
                    .send()
                    .await,
                &["NotFound"],
            ) {
                Ok(out) => out,
                Err(l) => return cast(l),
            };
            for s in out.subscriptions() {
                match s.subscription_arn() {
                    Some(a) if a.starts_with("arn:") => facts.confirmed += 1,
                    _ => facts.pending += 1,
                }
            }
            next = out.next_token().map(str::to_string);
            if next.is_none() {
                break;
            }
        }
        Lookup::Found(facts)
    }

    pub async fn pipeline(&self, definition: PipelineDefinition) -> PipelineFacts {
        let d = &definition;
        let (project, repository, test, prod, approval_topic, smoke) = tokio::join!(
            self.project(&d.build.project),
            self.repository(&d.image.repository),
            self.service(&d.test.cluster, &d.test.service),
            self.service(&d.prod.cluster, &d.prod.service),
            self.topic(&d.approval.topic_arn, !d.approval.approvers.is_empty()),
            self.smoke_projects(d),
        );
        PipelineFacts {
            definition,
            project,
            repository,
            test,
            prod,
            approval_topic,
            smoke,
        }
    }

    /// The smoke test projects of the pipeline's verifications, each name once (test and prod
    /// usually share one).
    async fn smoke_projects(&self, d: &PipelineDefinition) -> Vec<(String, Lookup<ProjectFacts>)> {
        let mut names: Vec<String> = Vec::new();
        if let Some(v) = &d.verify {
            for name in [&v.test, &v.prod]
                .into_iter()
                .flatten()
                .filter_map(|e| e.smoke_project.clone())
            {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        let mut found = Vec::new();
        for name in names {
            let lookup = self.project(&name).await;
            found.push((name, lookup));
        }
        found
    }

    /// The three rules the stack's outputs name.
    pub async fn rules(
        &self,
        stack: &StackFacts,
    ) -> (Lookup<RuleFacts>, Lookup<RuleFacts>, Lookup<RuleFacts>) {
        tokio::join!(
            self.rule(stack.output("BuildEventsRuleName")),
            self.rule(stack.output("DeployEventsRuleName")),
            self.rule(stack.output("CodeCommitRuleName")),
        )
    }
}

/// Every pipeline in the table (following `next` pages), through the control function.
async fn list_pipelines(function: &str) -> Result<Vec<PipelineDefinition>, String> {
    // the environment's profile and region (doctor has no --profile of its own yet)
    let client = ControlClient::new(function, &crate::aws::AwsOptions::default()).await;
    let mut all = Vec::new();
    let mut filter = PipelineFilter::default();
    for _ in 0..100 {
        let request = ControlRequest::ListPipelines(filter.clone());
        let raw = client.invoke(&request).await.map_err(|e| e.to_string())?;
        match Answer::decode(&request, raw).map_err(|e| e.to_string())? {
            Answer::Done(done) => {
                let ControlResponse::Pipelines(list) = *done else {
                    return Err("unexpected answer to list_pipelines".into());
                };
                all.extend(list.pipelines.into_iter().map(|p| p.definition));
                match list.next {
                    Some(next) if filter.after.as_deref() != Some(next.as_str()) => {
                        filter.after = Some(next)
                    }
                    _ => break,
                }
            }
            Answer::Refused(e) => return Err(e.to_string()),
        }
    }
    Ok(all)
}

/// Read everything the checklist needs.
pub async fn gather(stack_name: &str, pipeline: Option<&str>, function: Option<&str>) -> Facts {
    let reader = AwsReader::new().await;
    let (identity, stack) = tokio::join!(reader.identity(), reader.stack(stack_name));
    let mut facts = Facts {
        identity,
        region: reader.region(),
        stack_name: stack_name.to_string(),
        stack: Lookup::NotRead,
        control: None,
        build_rule: Lookup::NotRead,
        deploy_rule: Lookup::NotRead,
        codecommit_rule: Lookup::NotRead,
        dead_letters: Lookup::NotRead,
        webhook_secret: Lookup::NotRead,
        unknown_pipeline: None,
        pipelines: Vec::new(),
    };
    let Lookup::Found(s) = stack else {
        facts.stack = stack;
        return facts;
    };
    let function = function
        .map(str::to_string)
        .or_else(|| s.output("ControlFunctionName").map(str::to_string))
        .unwrap_or_else(|| "shipgate-control".to_string());
    let (rules, dead_letters, webhook_secret, pipelines) = tokio::join!(
        reader.rules(&s),
        reader.queue_depth(s.output("DeadLetterQueueUrl")),
        reader.secret_present(s.output("WebhookSecretArn")),
        list_pipelines(&function),
    );
    (facts.build_rule, facts.deploy_rule, facts.codecommit_rule) = rules;
    facts.dead_letters = dead_letters;
    facts.webhook_secret = webhook_secret;
    match pipelines {
        Ok(defs) => {
            facts.control = Some((function, Ok(defs.len())));
            let wanted: Vec<PipelineDefinition> = match pipeline {
                Some(name) => {
                    let found: Vec<_> = defs.into_iter().filter(|d| d.name == name).collect();
                    if found.is_empty() {
                        facts.unknown_pipeline = Some(name.to_string());
                    }
                    found
                }
                None => defs,
            };
            for d in wanted {
                facts.pipelines.push(reader.pipeline(d).await);
            }
        }
        Err(e) => facts.control = Some((function, Err(e))),
    }
    facts.stack = Lookup::Found(s);
    facts
}

/// The coverage checks of `pipeline apply` for `definition`: the stack and its rules are read,
/// nothing the pipeline names is. `Err` when the stack cannot be read (the caller warns).
pub async fn apply_coverage(
    stack_name: &str,
    definition: PipelineDefinition,
) -> Result<Vec<super::Check>, String> {
    let reader = AwsReader::new().await;
    let identity = reader.identity().await?;
    let region = reader
        .region()
        .ok_or("no region configured (set AWS_REGION)")?;
    let stack = match reader.stack(stack_name).await {
        Lookup::Found(s) => s,
        Lookup::Missing => {
            return Err(format!(
            "stack {stack_name} not found in {region} (name yours with --stack or SHIPGATE_STACK)"
        ))
        }
        Lookup::Failed(e) => return Err(format!("stack {stack_name}: {e}")),
        Lookup::NotRead => return Err(format!("stack {stack_name} not read")),
    };
    let rules = reader.rules(&stack).await;
    Ok(super::coverage_checks(
        definition,
        &stack,
        rules,
        &Place::of(&identity, &region),
    ))
}
