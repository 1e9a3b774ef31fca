//! AWS SDK implementations of the ports. SDK types (clients, `AttributeValue`, SDK errors) never
//! leave this module. Endpoints come from the standard `AWS_ENDPOINT_URL[_<SERVICE>]` variables:
//! there is no emulator branch here.

pub mod codebuild;
pub mod dynamodb;
pub mod ecr;
pub mod ecs;
pub mod secrets;
pub mod sns;

use std::error::Error;
use std::sync::Arc;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::app::{Services, Settings};
use crate::ports::{ServiceError, SystemClock};

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

/// Typed configuration of every function, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table: String,
    pub settings: Settings,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("missing or empty environment variable(s): {}", .0.join(", "))]
pub struct ConfigError(pub Vec<&'static str>);

impl Config {
    /// Read `SHIPGATE_TABLE`, `SHIPGATE_WEBHOOK_SECRET_ID`, `SHIPGATE_SIGNING_KEY_ID`,
    /// `SHIPGATE_PUBLIC_URL`; every missing one is named.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut missing = Vec::new();
        let mut read = |k: &'static str| match get(k).filter(|v| !v.trim().is_empty()) {
            Some(v) => v,
            None => {
                missing.push(k);
                String::new()
            }
        };
        let table = read("SHIPGATE_TABLE");
        let webhook_secret_id = read("SHIPGATE_WEBHOOK_SECRET_ID");
        let signing_key_id = read("SHIPGATE_SIGNING_KEY_ID");
        let public_url = read("SHIPGATE_PUBLIC_URL");
        if !missing.is_empty() {
            return Err(ConfigError(missing));
        }
        Ok(Config {
            table,
            settings: Settings {
                public_url,
                webhook_secret_id,
                signing_key_id,
            },
        })
    }
}

/// Load the AWS SDK configuration (region, credentials, endpoints) once per cold start.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// Every port backed by AWS, from one SDK configuration.
pub fn aws_services(sdk: &aws_config::SdkConfig, config: &Config) -> Services {
    Services::new(
        Arc::new(dynamodb::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            &config.table,
        )),
        Arc::new(codebuild::CodeBuildRunner::new(
            aws_sdk_codebuild::Client::new(sdk),
        )),
        Arc::new(ecs::EcsDeployer::new(aws_sdk_ecs::Client::new(sdk))),
        Arc::new(ecr::EcrRegistry::new(aws_sdk_ecr::Client::new(sdk))),
        Arc::new(sns::SnsNotifier::new(aws_sdk_sns::Client::new(sdk))),
        Arc::new(secrets::SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(sdk),
        )),
        Arc::new(SystemClock),
        config.settings.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_every_missing_variable() {
        let err =
            Config::from_lookup(|k| (k == "SHIPGATE_TABLE").then(|| "t".to_string())).unwrap_err();
        assert_eq!(
            err.0,
            vec![
                "SHIPGATE_WEBHOOK_SECRET_ID",
                "SHIPGATE_SIGNING_KEY_ID",
                "SHIPGATE_PUBLIC_URL"
            ]
        );
        assert!(err.to_string().contains("SHIPGATE_PUBLIC_URL"));
        let ok = Config::from_lookup(|k| Some(format!("v-{k}"))).unwrap();
        assert_eq!(ok.table, "v-SHIPGATE_TABLE");
        assert_eq!(ok.settings.public_url, "v-SHIPGATE_PUBLIC_URL");
    }
}
