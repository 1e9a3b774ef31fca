//! Provisioning: every resource the sandbox needs, created in the local AWS.

use aws_config::SdkConfig;
use aws_sdk_ecs::types as ecs;
use serde::Serialize;
use shared::adapters::dynamodb::DynamoStore;
use shared::domain::{Format, PipelineDefinition};
use shared::ports::ExecutionStore;

use crate::{aws_step, step, LocalError, TableAdmin, ACCOUNT, DEV_WEBHOOK_SECRET};

/// Names of everything the sandbox creates.
#[derive(Debug, Clone, Serialize)]
pub struct Sandbox {
    pub table: String,
    pub webhook_secret_id: String,
    pub signing_key_id: String,
    pub approval_topic: String,
    pub outbox_queue: String,
    pub repository: String,
    pub project: String,
    pub test_cluster: String,
    pub prod_cluster: String,
    pub test_service: String,
    pub prod_service: String,
    pub container: String,
    pub pipeline: String,
    pub github_repo: String,
    /// A (fake) GitHub API the demo pipeline reports to (`[github]`), with its token stored as
    /// [`Sandbox::github_token_secret_id`]; None: the demo pipeline reports to no GitHub.
    pub github_api_url: Option<String>,
    /// Verified promotion of the demo pipeline (`shipgate dev`): `None` provisions it without.
    pub demo_verify: Option<DemoVerify>,
    /// The demo pipeline's approvers (`shipgate dev`: [`DemoApprover::defaults`]); each gets a
    /// mailbox queue subscribed to the approval topic with their filter policy. Empty: the demo
    /// pipeline has no approvers (one shared link).
    pub demo_approvers: Vec<DemoApprover>,
    /// `approval.required` of the demo pipeline when it has approvers (`shipgate dev`: 1, so
    /// `shipgate approve` alone releases as in the README; tests ask for more).
    pub demo_required: u32,
}

/// An approver of the demo pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct DemoApprover {
    pub email: String,
    /// The IAM ARN pattern their CLI identity matches.
    pub arn: String,
}

impl DemoApprover {
    /// alice@example.com, whose `arn` is the sandbox's CLI identity (moto answers the default
    /// credentials as `arn:aws:sts::123456789012:user/moto`, so `shipgate approve` acts as
    /// alice), and bob@example.com (`user/bob`, an IAM user tests create). The demo push is by
    /// `dev@example.com`, neither of them.
    pub fn defaults() -> Vec<DemoApprover> {
        vec![
            DemoApprover {
                email: "alice@example.com".into(),
                arn: format!("arn:aws:sts::{ACCOUNT}:user/moto"),
            },
            DemoApprover {
                email: "bob@example.com".into(),
                arn: format!("arn:aws:iam::{ACCOUNT}:user/bob"),
            },
        ]
    }
}

/// An approver's mailbox in the sandbox: an SQS queue subscribed to the approval topic with the
/// approver's filter policy (`shared::domain::audience::filter_policy`), standing in for their
/// e-mail subscription: it receives what their inbox would.
#[derive(Debug, Clone, Serialize)]
pub struct Mailbox {
    pub approver: String,
    pub queue_url: String,
}

/// The demo pipeline's verification: `/health` of the local test and prod services, a short
/// production bake watching one demo alarm (created in the local CloudWatch, state OK).
#[derive(Debug, Clone, Serialize)]
pub struct DemoVerify {
    pub test_url: String,
    pub prod_url: String,
    pub bake_seconds: u32,
    pub alarm: String,
    /// The smoke test project of the test and production verifications (`None`: no smoke
    /// test).
    pub smoke_project: Option<String>,
}

/// The demo alarm `[alarm]` pushes set to ALARM during the bake.
pub const DEMO_ALARM: &str = "shipgate-demo-prod-5xx";
/// The demo smoke test project (named with the template's default `SmokeProjectNamePrefix`),
/// run after the test and the production check; `[smoke-fail]` pushes fail its simulated build
/// in test, `[prod-smoke-fail]` pushes in production.
pub const DEMO_SMOKE_PROJECT: &str = "shipgate-smoke-hello";

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox {
            table: "shipgate".into(),
            webhook_secret_id: "shipgate/webhook-secret".into(),
            signing_key_id: "shipgate/signing-key".into(),
            approval_topic: "shipgate-approvals".into(),
            outbox_queue: "shipgate-outbox".into(),
            repository: "hello".into(),
            project: "hello-build".into(),
            test_cluster: "demo-test".into(),
            prod_cluster: "demo-prod".into(),
            test_service: "hello-test".into(),
            prod_service: "hello-prod".into(),
            container: "app".into(),
            pipeline: "demo".into(),
            github_repo: "shipgate-demo/hello".into(),
            github_api_url: None,
            demo_verify: None,
            demo_approvers: Vec::new(),
            demo_required: 1,
        }
    }
}

/// What provisioning created.
#[derive(Debug, Clone, Serialize)]
pub struct Provisioned {
    pub sandbox: Sandbox,
    #[serde(skip)]
    pub webhook_secret: String,
    #[serde(skip)]
    pub signing_key: String,
    pub approval_topic_arn: String,
    pub outbox_queue_url: String,
    /// One per demo approver.
    pub mailboxes: Vec<Mailbox>,
    pub repository_uri: String,
    pub pipeline: PipelineDefinition,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

impl Sandbox {
    /// Secrets Manager name of the demo pipeline's GitHub token.
    pub fn github_token_secret_id(&self) -> String {
        format!("shipgate/github/{}", self.pipeline)
    }

    /// Create the table, secrets, topic + capture queue, ECR repository, CodeBuild project,
    /// clusters and services (circuit breaker on), and the demo pipeline.
    pub async fn provision(&self, sdk: &SdkConfig) -> Result<Provisioned, LocalError> {
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &self.table);
        store.create_table().await?;

        let secrets = aws_sdk_secretsmanager::Client::new(sdk);
        let webhook_secret = DEV_WEBHOOK_SECRET.to_string();
        let signing_key = random_hex(32);
        for (id, value) in [
            (&self.webhook_secret_id, &webhook_secret),
            (&self.signing_key_id, &signing_key),
        ] {
            secrets
                .create_secret()
                .name(id)
                .secret_string(value)
                .send()
                .await
                .map_err(aws_step("secrets"))?;
        }
        if self.github_api_url.is_some() {
            secrets
                .create_secret()
                .name(self.github_token_secret_id())
                .secret_string(crate::github::FAKE_GITHUB_TOKEN)
                .send()
                .await
                .map_err(aws_step("secrets"))?;
        }

        let sns = aws_sdk_sns::Client::new(sdk);
        let topic_arn = sns
            .create_topic()
            .name(&self.approval_topic)
            .send()
            .await
            .map_err(aws_step("sns topic"))?
            .topic_arn()
            .unwrap_or_default()
            .to_string();
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let queue_url = sqs
            .create_queue()
            .queue_name(&self.outbox_queue)
            .send()
            .await
            .map_err(aws_step("sqs queue"))?
            .queue_url()
            .unwrap_or_default()
            .to_string();
        let outbox_arn = queue_arn(&sqs, &queue_url).await?;
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(&outbox_arn)
            .send()
            .await
            .map_err(aws_step("sns subscription"))?;
        let mut mailboxes = Vec::new();
        for (i, a) in self.demo_approvers.iter().enumerate() {
            let url = sqs
                .create_queue()
                .queue_name(format!("{}-mailbox-{}", self.outbox_queue, i + 1))
                .send()
                .await
                .map_err(aws_step("sqs mailbox queue"))?
                .queue_url()
                .unwrap_or_default()
                .to_string();
            let arn = queue_arn(&sqs, &url).await?;
            sns.subscribe()
                .topic_arn(&topic_arn)
                .protocol("sqs")
                .endpoint(&arn)
                .attributes(
                    "FilterPolicy",
                    shared::domain::audience::filter_policy(&a.email),
                )
                .attributes("FilterPolicyScope", "MessageAttributes")
                .send()
                .await
                .map_err(aws_step("sns mailbox subscription"))?;
            mailboxes.push(Mailbox {
                approver: shared::domain::audience::approver(&a.email),
                queue_url: url,
            });
        }

        let ecr = aws_sdk_ecr::Client::new(sdk);
        let repository_uri = ecr
            .create_repository()
            .repository_name(&self.repository)
            .send()
            .await
            .map_err(aws_step("ecr repository"))?
            .repository()
            .and_then(|r| r.repository_uri())
            .unwrap_or_default()
            .to_string();

        let codebuild = aws_sdk_codebuild::Client::new(sdk);
        codebuild
            .create_project()
            .name(&self.project)
            .source(
                aws_sdk_codebuild::types::ProjectSource::builder()
                    .r#type(aws_sdk_codebuild::types::SourceType::Github)
                    .location(format!("https://github.com/{}.git", self.github_repo))
                    .build()
                    .map_err(step("codebuild source"))?,
            )
            .artifacts(
                aws_sdk_codebuild::types::ProjectArtifacts::builder()
                    .r#type(aws_sdk_codebuild::types::ArtifactsType::NoArtifacts)
                    .build()
                    .map_err(step("codebuild artifacts"))?,
            )
            .environment(
                aws_sdk_codebuild::types::ProjectEnvironment::builder()
                    .r#type(aws_sdk_codebuild::types::EnvironmentType::LinuxContainer)
                    .image("aws/codebuild/standard:7.0")
                    .compute_type(aws_sdk_codebuild::types::ComputeType::BuildGeneral1Small)
                    .privileged_mode(true)
                    .build()
                    .map_err(step("codebuild environment"))?,
            )
            .service_role(format!("arn:aws:iam::{ACCOUNT}:role/shipgate-codebuild"))
            .send()
            .await
            .map_err(aws_step("codebuild project"))?;

        let ecs_client = aws_sdk_ecs::Client::new(sdk);
        let td = register_bootstrap_task_definition(
            &ecs_client,
            &self.repository,
            &self.container,
            &repository_uri,
        )
        .await?;
        for (cluster, service) in [
            (&self.test_cluster, &self.test_service),
            (&self.prod_cluster, &self.prod_service),
        ] {
            ecs_client
                .create_cluster()
                .cluster_name(cluster)
                .send()
                .await
                .map_err(aws_step("ecs cluster"))?;
            create_service(&ecs_client, cluster, service, &td).await?;
        }

        let pipeline_text = format!(
            r#"
name = "{name}"
source = {{ github = "{repo}" }}
branches = ["main"]
build = {{ project = "{project}" }}
image = {{ repository = "{repository_uri}" }}
test = {{ cluster = "{tc}", service = "{ts}", container = "{c}" }}
prod = {{ cluster = "{pc}", service = "{ps}", container = "{c}" }}
approval = {{ topic_arn = "{topic_arn}", timeout_hours = 72{approvers} }}
"#,
            name = self.pipeline,
            repo = self.github_repo,
            project = self.project,
            tc = self.test_cluster,
            ts = self.test_service,
            pc = self.prod_cluster,
            ps = self.prod_service,
            c = self.container,
            approvers = if self.demo_approvers.is_empty() {
                String::new()
            } else {
                let list: Vec<String> = self
                    .demo_approvers
                    .iter()
                    .map(|a| format!("{{ email = \"{}\", arn = \"{}\" }}", a.email, a.arn))
                    .collect();
                format!(
                    ", required = {}, approvers = [{}]",
                    self.demo_required.max(1),
                    list.join(", ")
                )
            },
        );
        let pipeline_text = match &self.github_api_url {
            Some(api) => format!(
                "{pipeline_text}github = {{ token_secret = \"{}\", api_url = \"{api}\" }}\n",
                self.github_token_secret_id()
            ),
            None => pipeline_text,
        };
        let mut pipeline_text = pipeline_text;
        if let Some(v) = &self.demo_verify {
            let cw = aws_sdk_cloudwatch::Client::new(sdk);
            cw.put_metric_alarm()
                .alarm_name(&v.alarm)
                .namespace("Shipgate/Demo")
                .metric_name("5xx")
                .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
                .period(60)
                .evaluation_periods(1)
                .threshold(1.0)
                .comparison_operator(
                    aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold,
                )
                .send()
                .await
                .map_err(aws_step("demo alarm"))?;
            cw.set_alarm_state()
                .alarm_name(&v.alarm)
                .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
                .state_reason("shipgate dev: healthy")
                .send()
                .await
                .map_err(aws_step("demo alarm state"))?;
            let smoke = v
                .smoke_project
                .as_ref()
                .map(|p| format!("smoke_project = \"{p}\"\n"))
                .unwrap_or_default();
            pipeline_text.push_str(&format!(
                r#"
[verify.test]
url = "{test_url}"
attempts = 3
interval_seconds = 1
timeout_seconds = 2
{smoke}
[verify.prod]
url = "{prod_url}"
attempts = 3
interval_seconds = 1
timeout_seconds = 2
{smoke}"#,
                test_url = v.test_url,
                prod_url = v.prod_url,
            ));
            if v.bake_seconds > 0 {
                pipeline_text.push_str(&format!(
                    "bake_seconds = {}\nalarms = [\"{}\"]\n",
                    v.bake_seconds, v.alarm
                ));
            }
        }
        let pipeline = PipelineDefinition::parse(&pipeline_text, Format::Toml)
            .map_err(step("demo pipeline"))?;
        store
            .put_pipeline(&pipeline, chrono::Utc::now())
            .await
            .map_err(step("demo pipeline"))?;

        Ok(Provisioned {
            sandbox: self.clone(),
            webhook_secret,
            signing_key,
            approval_topic_arn: topic_arn,
            outbox_queue_url: queue_url,
            mailboxes,
            repository_uri,
            pipeline,
        })
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<String, LocalError> {
    Ok(sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(aws_step("sqs queue arn"))?
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .unwrap_or_default())
}

/// A Fargate task definition of the sandbox's shape: one container `container` running
/// `<repository_uri>:bootstrap` on port 8080 (what a service starts with before shipgate deploys
/// an image pinned by digest). Answers its ARN.
pub async fn register_bootstrap_task_definition(
    client: &aws_sdk_ecs::Client,
    family: &str,
    container: &str,
    repository_uri: &str,
) -> Result<String, LocalError> {
    let container = ecs::ContainerDefinition::builder()
        .name(container)
        .image(format!("{repository_uri}:bootstrap"))
        .essential(true)
        .port_mappings(ecs::PortMapping::builder().container_port(8080).build())
        .build();
    Ok(client
        .register_task_definition()
        .family(family)
        .network_mode(ecs::NetworkMode::Awsvpc)
        .requires_compatibilities(ecs::Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .execution_role_arn(format!(
            "arn:aws:iam::{ACCOUNT}:role/shipgate-task-execution"
        ))
        .container_definitions(container)
        .send()
        .await
        .map_err(aws_step("ecs task definition"))?
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .unwrap_or_default()
        .to_string())
}

/// A Fargate service on `task_definition` with the deployment circuit breaker on (rollback),
/// as shipgate expects of the services it deploys to.
pub async fn create_service(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    task_definition: &str,
) -> Result<(), LocalError> {
    client
        .create_service()
        .cluster(cluster)
        .service_name(service)
        .task_definition(task_definition)
        .desired_count(1)
        .launch_type(ecs::LaunchType::Fargate)
        .deployment_configuration(
            ecs::DeploymentConfiguration::builder()
                .minimum_healthy_percent(100)
                .maximum_percent(200)
                .deployment_circuit_breaker(
                    ecs::DeploymentCircuitBreaker::builder()
                        .enable(true)
                        .rollback(true)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(aws_step("ecs service"))?;
    Ok(())
}
