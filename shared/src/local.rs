//! The local sandbox: a moto server standing in for AWS, and the resources shipgate needs in it.
//! Used by `shipgate dev` and the integration tests (feature `local`); never by the Lambda
//! functions.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::Credentials;
use serde::Serialize;

use crate::adapters::dynamodb::DynamoStore;
use crate::domain::{Format, PipelineDefinition};
use crate::ports::ExecutionStore;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
/// The sandbox's GitHub webhook secret: fixed, so the signed samples in `events/apigw/` work
/// against it. Local use only.
pub const DEV_WEBHOOK_SECRET: &str = "shipgate-dev-webhook-secret";

/// The watchdog script (also at `scripts/moto_server.py`), embedded so the binary does not
/// depend on the working directory.
const MOTO_SCRIPT: &str = include_str!("../../scripts/moto_server.py");

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("moto is not installed for {python} (run `make setup`, which installs it into .venv)")]
    MotoMissing { python: String },
    #[error("could not start moto: {0}")]
    MotoStart(String),
    #[error("port {0} is busy: {1}")]
    PortBusy(u16, String),
    #[error("provisioning the sandbox failed at {step}: {message}")]
    Provision { step: &'static str, message: String },
}

/// The Python interpreter of the project's virtualenv: `$SHIPGATE_PYTHON`, else `./.venv`, else
/// the `.venv` of the checkout this binary was built from.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SHIPGATE_PYTHON") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from(".venv/bin/python");
    if local.exists() {
        return local;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python"))
}

/// A moto server process on 127.0.0.1. Stopped when dropped; also stops by itself when this
/// process dies (it watches its standard input).
pub struct MotoServer {
    child: Child,
    port: u16,
}

impl MotoServer {
    /// Start moto on `port` (0: any free port) and wait until it answers.
    pub fn start(port: u16) -> Result<MotoServer, LocalError> {
        let python = python();
        let mut child = Command::new(&python)
            .arg("-c")
            .arg(MOTO_SCRIPT)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    LocalError::MotoMissing {
                        python: python.display().to_string(),
                    }
                } else {
                    LocalError::MotoStart(e.to_string())
                }
            })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let line = line.trim().to_string();
        match (read, line.strip_prefix("PORT ")) {
            (Ok(_), Some(p)) => {
                let port = p
                    .parse()
                    .map_err(|_| LocalError::MotoStart(format!("unexpected output {line:?}")))?;
                Ok(MotoServer { child, port })
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                if line.contains("moto is not installed") || line.is_empty() {
                    Err(LocalError::MotoMissing {
                        python: python.display().to_string(),
                    })
                } else if line.contains("cannot listen") {
                    Err(LocalError::PortBusy(port, line))
                } else {
                    Err(LocalError::MotoStart(line))
                }
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stop the server now (also done on drop).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How the process ended, once it has (`None` while it runs).
    pub fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(status.to_string()),
            Err(e) => Some(format!("cannot wait for it: {e}")),
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SDK configuration for a local endpoint with dummy credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::adapters::https_client())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "shipgate-local",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

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
}

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
    pub repository_uri: String,
    pub pipeline: PipelineDefinition,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

fn step<E: std::fmt::Display>(step: &'static str) -> impl FnOnce(E) -> LocalError {
    move |e| LocalError::Provision {
        step,
        message: e.to_string(),
    }
}

fn aws_step<E, R>(
    step: &'static str,
) -> impl FnOnce(aws_sdk_dynamodb::error::SdkError<E, R>) -> LocalError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    move |e| LocalError::Provision {
        step,
        message: aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
    }
}

impl Sandbox {
    /// Create the table, secrets, topic + capture queue, ECR repository, CodeBuild project,
    /// clusters and services (circuit breaker on), and the demo pipeline.
    pub async fn provision(&self, sdk: &SdkConfig) -> Result<Provisioned, LocalError> {
        use aws_sdk_ecs::types as ecs;

        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &self.table);
        store.create_table().await.map_err(step("dynamodb table"))?;

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
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(aws_step("sqs queue arn"))?
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .unwrap_or_default();
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(&queue_arn)
            .send()
            .await
            .map_err(aws_step("sns subscription"))?;

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
        let container = ecs::ContainerDefinition::builder()
            .name(&self.container)
            .image(format!("{repository_uri}:bootstrap"))
            .essential(true)
            .port_mappings(ecs::PortMapping::builder().container_port(8080).build())
            .build();
        let td = ecs_client
            .register_task_definition()
            .family(&self.repository)
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
            .to_string();
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
            ecs_client
                .create_service()
                .cluster(cluster)
                .service_name(service)
                .task_definition(&td)
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
approval = {{ topic_arn = "{topic_arn}", timeout_hours = 72 }}
"#,
            name = self.pipeline,
            repo = self.github_repo,
            project = self.project,
            tc = self.test_cluster,
            ts = self.test_service,
            pc = self.prod_cluster,
            ps = self.prod_service,
            c = self.container,
        );
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
            repository_uri,
            pipeline,
        })
    }
}

/// A message captured from the approval topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxMessage {
    pub subject: String,
    pub message: String,
    pub links: Vec<String>,
}

/// Every `http(s)://` link in a text.
pub fn links_in(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(|w| w.trim_end_matches(['.', ',', ')', '>']).to_string())
        .collect()
}

/// Take the messages waiting in the capture queue (each is returned once).
pub async fn drain_outbox(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<Vec<OutboxMessage>, LocalError> {
    let mut out = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .map_err(aws_step("sqs receive"))?;
        let messages = received.messages();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let body = m.body().unwrap_or_default();
            // SNS wraps the notice in a JSON envelope with Subject and Message
            let (subject, message) = match serde_json::from_str::<serde_json::Value>(body) {
                Ok(v) => (
                    v["Subject"].as_str().unwrap_or_default().to_string(),
                    v["Message"].as_str().unwrap_or(body).to_string(),
                ),
                Err(_) => (String::new(), body.to_string()),
            };
            out.push(OutboxMessage {
                links: links_in(&message),
                subject,
                message,
            });
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(aws_step("sqs delete"))?;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_links() {
        assert_eq!(
            links_in("open http://127.0.0.1:9000/approvals/abc.def\nor https://x.example/y)."),
            vec![
                "http://127.0.0.1:9000/approvals/abc.def",
                "https://x.example/y"
            ]
        );
    }
}
