//! `SecretSource` on Secrets Manager. Values are wrapped in [`SecretValue`] at once and never
//! logged.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use super::classify;
use crate::ports::{SecretSource, SecretValue, ServiceError};

pub struct SecretsManagerSource {
    /// Built on first use (`super::lazy`).
    client: super::lazy::Lazy<Client>,
}

impl SecretsManagerSource {
    /// Around a client already built.
    pub fn new(client: Client) -> SecretsManagerSource {
        SecretsManagerSource {
            client: super::lazy::Lazy::ready(client),
        }
    }

    /// Its client is built from `sdk` on the first call (once per cold start).
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> SecretsManagerSource {
        SecretsManagerSource {
            client: super::lazy::Lazy::sdk_client(sdk, Client::new),
        }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn secret(&self, id: &str) -> Result<SecretValue, ServiceError> {
        let out = self
            .client
            .get()?
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        out.secret_string()
            .map(SecretValue::new)
            .ok_or_else(|| ServiceError::Rejected(format!("secret {id} has no string value")))
    }
}
