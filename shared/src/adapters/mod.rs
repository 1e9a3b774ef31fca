//! AWS SDK implementations of the ports. SDK types (clients, `AttributeValue`, SDK errors) never
//! leave this module. Endpoints come from the standard `AWS_ENDPOINT_URL[_<SERVICE>]` variables:
//! there is no emulator branch here.

pub mod cloudwatch;
pub mod codebuild;
pub mod dynamodb;
pub mod ecr;
pub mod ecs;
pub mod http_probe;
pub mod secrets;
pub mod sns;

use std::error::Error;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::ports::ServiceError;

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionInProgressException",
    "SlowDown",
];

const UNAVAILABLE_CODES: &[&str] = &[
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ServerException",
];

/// Map any SDK error to a port error: throttling and transport failures are retryable,
/// not-found codes are `NotFound`, the rest is `Rejected` with the AWS code and message.
pub(crate) fn classify<E, R>(err: &SdkError<E, R>) -> ServiceError
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    R: std::fmt::Debug,
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
            if THROTTLING_CODES.contains(&code) {
                ServiceError::Throttled(text)
            } else if UNAVAILABLE_CODES.contains(&code) {
                ServiceError::Unavailable(text)
            } else if code.ends_with("NotFoundException") || code == "ResourceNotFound" {
                ServiceError::NotFound(text)
            } else {
                ServiceError::Rejected(text)
            }
        }
        other => ServiceError::Unavailable(DisplayErrorContext(other).to_string()),
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
        // absent: every call fails, saying so
        _ => SharedCredentialsProvider::new(NoCredentials),
    };
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .credentials_provider(credentials)
        .http_client(https_client())
        .service_config(EnvServiceConfig(Box::new(lookup)));
    builder.set_region(region);
    builder.build()
}

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
    }
}
