//! AWS SDK implementations of the ports. SDK types (clients, `AttributeValue`, SDK errors) never
//! leave this module. Endpoints come from the standard `AWS_ENDPOINT_URL[_<SERVICE>]` variables:
//! there is no emulator branch here.

pub mod cloudwatch;
pub mod codebuild;
pub mod dynamodb;
pub mod ecr;
pub mod ecs;
pub mod github;
pub mod http_probe;
pub mod lazy;
pub mod secrets;
pub mod sns;
pub mod sts;
pub mod tls;

use std::error::Error;

use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::ports::ServiceError;

/// Map any SDK error to a port error with the SDK's own retry classification (the lists
/// `aws-runtime`'s `AwsErrorCodeClassifier` and the HTTP-status classifier use, so they move with
/// the SDK): throttling codes are `Throttled`; transient codes, 5xx answers and transport
/// failures are `Unavailable`; not-found codes are `NotFound`; the rest is `Rejected` with the AWS
/// code and message.
pub(crate) fn classify<E>(err: &SdkError<E, HttpResponse>) -> ServiceError
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    match err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown");
            let message = se.err().message().unwrap_or("").to_string();
            let text = if message.is_empty() {
                code.to_string()
            } else {
                format!("{code}: {message}")
            };
            classify_answer(code, se.raw().status().as_u16(), text)
        }
        other => ServiceError::Unavailable(DisplayErrorContext(other).to_string()),
    }
}

/// The same rule for an AWS error code and HTTP status (pure, so it is tested without an SDK).
fn classify_answer(code: &str, status: u16, text: String) -> ServiceError {
    if THROTTLING_ERRORS.contains(&code) || status == 429 {
        ServiceError::Throttled(text)
    } else if TRANSIENT_ERRORS.contains(&code) || TRANSIENT_STATUS.contains(&status) {
        ServiceError::Unavailable(text)
    } else if code.ends_with("NotFoundException") || code == "ResourceNotFound" {
        ServiceError::NotFound(text)
    } else {
        ServiceError::Rejected(text)
    }
}

/// The status codes the SDK's `HttpStatusCodeClassifier` retries.
const TRANSIENT_STATUS: [u16; 4] = [500, 502, 503, 504];

#[cfg(test)]
mod classify_tests {
    use super::*;

    fn kind(code: &str, status: u16) -> &'static str {
        match classify_answer(code, status, String::new()) {
            ServiceError::Throttled(_) => "throttled",
            ServiceError::Unavailable(_) => "unavailable",
            ServiceError::NotFound(_) => "not found",
            ServiceError::Rejected(_) => "rejected",
        }
    }

    #[test]
    fn sdk_throttling_and_transient_codes_are_retryable() {
        for code in THROTTLING_ERRORS {
            assert_eq!(kind(code, 400), "throttled", "{code}");
        }
        for code in TRANSIENT_ERRORS {
            assert_eq!(kind(code, 400), "unavailable", "{code}");
        }
        assert_eq!(
            kind("ProvisionedThroughputExceededException", 400),
            "throttled"
        );
        assert_eq!(kind("TransactionInProgressException", 400), "throttled");
    }

    #[test]
    fn server_errors_are_unavailable_whatever_the_code() {
        for status in [500, 502, 503, 504] {
            assert_eq!(kind("InternalServerError", status), "unavailable");
            assert_eq!(kind("Unknown", status), "unavailable");
        }
        assert_eq!(kind("Unknown", 429), "throttled");
    }

    #[test]
    fn client_errors_are_not_retried() {
        assert_eq!(kind("ResourceNotFoundException", 400), "not found");
        assert_eq!(kind("ServiceNotFoundException", 400), "not found");
        assert_eq!(kind("ResourceNotFound", 404), "not found");
        assert_eq!(kind("ValidationException", 400), "rejected");
        assert_eq!(kind("ConditionalCheckFailedException", 400), "rejected");
        assert_eq!(kind("AccessDeniedException", 400), "rejected");
    }
}

/// A port a function does not use (so its SDK client is not even linked into that binary).
/// Every call answers `Rejected`; the function's capabilities keep use cases from calling it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unused;

fn unused(port: &str) -> ServiceError {
    ServiceError::Rejected(format!("{port} is not available in this function"))
}

#[async_trait::async_trait]
impl crate::ports::BuildRunner for Unused {
    async fn start_build(&self, _: &crate::ports::BuildRequest) -> Result<String, ServiceError> {
        Err(unused("CodeBuild"))
    }
    async fn get_build(&self, _: &str) -> Result<crate::ports::BuildObservation, ServiceError> {
        Err(unused("CodeBuild"))
    }
    async fn stop_build(&self, _: &str) -> Result<(), ServiceError> {
        Err(unused("CodeBuild"))
    }
}

#[async_trait::async_trait]
impl crate::ports::Deployer for Unused {
    async fn deploy_image(
        &self,
        _: &crate::domain::ServiceTarget,
        _: &str,
    ) -> Result<crate::ports::StartedDeployment, ServiceError> {
        Err(unused("ECS"))
    }
    async fn deploy_task_definition(
        &self,
        _: &crate::domain::ServiceTarget,
        _: &str,
    ) -> Result<crate::ports::StartedDeployment, ServiceError> {
        Err(unused("ECS"))
    }
    async fn service_state(
        &self,
        _: &crate::domain::ServiceTarget,
    ) -> Result<crate::ports::ServiceState, ServiceError> {
        Err(unused("ECS"))
    }
    async fn deployment_state(
        &self,
        _: &crate::domain::ServiceTarget,
        _: &str,
    ) -> Result<crate::ports::DeploymentObservation, ServiceError> {
        Err(unused("ECS"))
    }
}

#[async_trait::async_trait]
impl crate::ports::ImageRegistry for Unused {
    async fn find_image(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<crate::ports::ImageDetail>, ServiceError> {
        Err(unused("ECR"))
    }
    async fn find_digest(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<crate::ports::ImageDetail>, ServiceError> {
        Err(unused("ECR"))
    }
    async fn list_images(&self, _: &str) -> Result<Vec<crate::ports::ImageDetail>, ServiceError> {
        Err(unused("ECR"))
    }
    async fn delete_images(&self, _: &str, _: &[String]) -> Result<Vec<String>, ServiceError> {
        Err(unused("ECR"))
    }
}

#[async_trait::async_trait]
impl crate::ports::Notifier for Unused {
    async fn publish(&self, _: &str, _: &crate::ports::Notice) -> Result<String, ServiceError> {
        Err(unused("SNS"))
    }
}

#[async_trait::async_trait]
impl crate::ports::CommitFeedback for Unused {
    async fn commit_status(
        &self,
        _: &crate::ports::GitHubRepository,
        _: &crate::ports::SecretValue,
        _: &crate::ports::CommitStatusRequest,
    ) -> Result<(), crate::ports::FeedbackError> {
        Err(crate::ports::FeedbackError::Rejected(
            "GitHub feedback is not available in this function".into(),
        ))
    }
    async fn deployment_status(
        &self,
        _: &crate::ports::GitHubRepository,
        _: &crate::ports::SecretValue,
        _: &crate::ports::DeploymentRequest,
        _: &crate::ports::DeploymentStatusRequest,
    ) -> Result<(), crate::ports::FeedbackError> {
        Err(crate::ports::FeedbackError::Rejected(
            "GitHub feedback is not available in this function".into(),
        ))
    }
}

#[async_trait::async_trait]
impl crate::ports::SecretSource for Unused {
    async fn secret(&self, _: &str) -> Result<crate::ports::SecretValue, ServiceError> {
        Err(unused("Secrets Manager"))
    }
}

#[async_trait::async_trait]
impl crate::ports::HealthProbe for Unused {
    async fn get(
        &self,
        _: &str,
        _: std::time::Duration,
        _: usize,
    ) -> Result<crate::domain::verify::ProbeAnswer, ServiceError> {
        Err(unused("outbound HTTP checks"))
    }
}

#[async_trait::async_trait]
impl crate::ports::AlarmReader for Unused {
    async fn alarm_states(
        &self,
        _: &[String],
    ) -> Result<Vec<(String, crate::domain::verify::AlarmState)>, ServiceError> {
        Err(unused("CloudWatch"))
    }
}

/// The AWS SDK configuration of a function, built once per cold start from the variables Lambda
/// sets: `AWS_REGION`, and the execution role's `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
/// `AWS_SESSION_TOKEN`; endpoints from `AWS_ENDPOINT_URL_<SERVICE>` or `AWS_ENDPOINT_URL`
/// (local runs, tests, the benchmarks). Not aws-config's default chain: profiles, SSO, web
/// identity through STS and instance metadata never apply on Lambda, and linking them cost
/// every binary about half a megabyte. Retries, timeouts, the identity cache and the HTTPS
/// client are the SDK clients' defaults for this behavior version.
pub fn lambda_sdk_config() -> aws_config::SdkConfig {
    lambda_sdk_config_from(|name| std::env::var(name).ok())
}

/// The HTTPS client of every SDK configuration: hyper with rustls on ring (the SDK crates are built
/// without their default client, which brings aws-lc: about 0.4 MB more per binary).
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// [`lambda_sdk_config`] from any variable lookup (tests).
pub fn lambda_sdk_config_from(
    lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> aws_config::SdkConfig {
    use aws_credential_types::provider::SharedCredentialsProvider;
    let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .into_iter()
        .find_map(var)
        .map(aws_config::Region::new);
    // Lambda's variables do not change during an execution environment's life
    let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(key), Some(secret)) => {
            SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
                key,
                secret,
                var("AWS_SESSION_TOKEN"),
                None,
                "Environment",
            ))
        }
        // Lambda SnapStart and container runtimes hand out credentials through an endpoint
        // (`AWS_CONTAINER_CREDENTIALS_FULL_URI` / `_RELATIVE_URI`, with
        // `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`): the SDK's own provider reads them (from the
        // process environment, as the SDK always does), and every client caches what it answers
        // until it expires.
        _ if CONTAINER_CREDENTIALS.iter().any(|name| var(name).is_some()) => {
            let provider_config = aws_config::provider_config::ProviderConfig::empty()
                .with_http_client(https_client())
                .with_sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new());
            SharedCredentialsProvider::new(
                aws_config::ecs::EcsCredentialsProvider::builder()
                    .configure(&provider_config)
                    .build(),
            )
        }
        // absent: every call fails, saying so
        _ => SharedCredentialsProvider::new(NoCredentials),
    };
    let flag = |name: &str| var(name).map(|v| v.trim().eq_ignore_ascii_case("true"));
    let (use_fips, use_dual_stack) = (
        flag("AWS_USE_FIPS_ENDPOINT"),
        flag("AWS_USE_DUALSTACK_ENDPOINT"),
    );
    // the built-in AWS roots unless AWS_CA_BUNDLE / SHIPGATE_TLS_ROOTS say otherwise (tls.rs)
    let roots = tls::roots_from(var, |path| std::fs::read(path));
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .credentials_provider(credentials)
        .http_client(tls::https_client_trusting(&roots))
        .service_config(EnvServiceConfig(Box::new(lookup)));
    builder.set_region(region);
    builder.set_use_fips(use_fips);
    builder.set_use_dual_stack(use_dual_stack);
    builder.build()
}

/// Variables that point at a container credentials endpoint.
const CONTAINER_CREDENTIALS: [&str; 2] = [
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
];

#[derive(Debug)]
struct NoCredentials;

impl aws_credential_types::provider::ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them from the execution role)",
            ),
        ))
    }
}

/// Per-service settings from the environment: `<NAME>_<SERVICE ID>` first (for example
/// `AWS_ENDPOINT_URL_DYNAMODB`), then `<NAME>`.
struct EnvServiceConfig(Box<Lookup>);

/// Reads one environment variable.
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl std::fmt::Debug for EnvServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvServiceConfig")
    }
}

impl aws_types::service_config::LoadServiceConfig for EnvServiceConfig {
    fn load_config(&self, key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        let service = key
            .service_id()
            .to_ascii_uppercase()
            .replace([' ', '-'], "_");
        [format!("{}_{service}", key.env()), key.env().to_string()]
            .iter()
            .find_map(|name| (self.0)(name).filter(|v| !v.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_sdk_config_reads_the_lambda_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let sdk = lambda_sdk_config_from(env(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:6000"),
        ]));
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert!(sdk.credentials_provider().is_some());
        let conf = sdk.service_config().unwrap();
        let key = |service: &'static str| {
            aws_types::service_config::ServiceConfigKey::builder()
                .service_id(service)
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .unwrap()
        };
        assert_eq!(
            conf.load_config(key("DynamoDB")).as_deref(),
            Some("http://127.0.0.1:6000")
        );
        assert_eq!(
            conf.load_config(key("ECS")).as_deref(),
            Some("http://127.0.0.1:5000")
        );
        let sdk = lambda_sdk_config_from(env(&[("AWS_DEFAULT_REGION", "us-east-2")]));
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("us-east-2"));
        assert_eq!(sdk.service_config().unwrap().load_config(key("ECS")), None);
        assert_eq!(sdk.use_fips(), None);
        let sdk = lambda_sdk_config_from(env(&[
            ("AWS_REGION", "us-gov-west-1"),
            ("AWS_USE_FIPS_ENDPOINT", "true"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "false"),
        ]));
        assert_eq!(sdk.use_fips(), Some(true));
        assert_eq!(sdk.use_dual_stack(), Some(false));
    }
}
