//! Talking to `shipgate-control` through the Lambda Invoke API with the caller's credentials.
//! `AWS_ENDPOINT_URL_LAMBDA` points it at a local sandbox, as `aws lambda invoke
//! --endpoint-url` would.

use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::primitives::Blob;
use serde_json::Value;
use shared::domain::identity::IdentityProof;
use shared::protocol::{ControlRequest, ProvenRequest};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not invoke {function}: {message}\n  (check AWS credentials and region; for the local sandbox: set -a; . .shipgate/dev.env)")]
    Invoke { function: String, message: String },
    #[error("{function} failed: {message}")]
    Function { function: String, message: String },
    #[error("{function} answered something this CLI does not understand: {message}")]
    BadAnswer { function: String, message: String },
    #[error("could not prove who you are (signed sts:GetCallerIdentity): {0}")]
    Identity(String),
}

pub struct ControlClient {
    lambda: aws_sdk_lambda::Client,
    function: String,
    sdk: aws_config::SdkConfig,
}

impl ControlClient {
    pub async fn new(function: &str, aws: &crate::aws::AwsOptions) -> ControlClient {
        let sdk = aws.sdk_config().await;
        let mut lambda = aws_sdk_lambda::config::Builder::from(&sdk);
        if let Some(url) = &aws.endpoint_url {
            lambda = lambda.endpoint_url(url);
        }
        ControlClient {
            lambda: aws_sdk_lambda::Client::from_conf(lambda.build()),
            function: function.to_string(),
            sdk,
        }
    }

    /// The SDK configuration (for the other services a command reads, e.g. CloudWatch Logs).
    pub fn sdk(&self) -> &aws_config::SdkConfig {
        &self.sdk
    }

    /// The configured region, if any.
    pub fn region(&self) -> Option<String> {
        self.sdk.region().map(|r| r.to_string())
    }

    /// The proof of who calls, for `request` only (see `shared::domain::identity`): an
    /// `sts:GetCallerIdentity` request signed with the caller's credentials, bound to the
    /// command and to the control function. control executes it and records the ARN STS answers.
    pub async fn identity_proof(
        &self,
        request: &ControlRequest,
    ) -> Result<IdentityProof, ClientError> {
        use aws_credential_types::provider::ProvideCredentials;
        let provider = self
            .sdk
            .credentials_provider()
            .ok_or_else(|| ClientError::Identity("no AWS credentials configured".into()))?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| ClientError::Identity(DisplayErrorContext(e).to_string()))?;
        let region = self
            .sdk
            .region()
            .map(|r| r.as_ref().to_string())
            .ok_or_else(|| {
                ClientError::Identity("no AWS region configured (set AWS_REGION)".into())
            })?;
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let url = var("AWS_ENDPOINT_URL_STS")
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
        shared::adapters::sts::sign_proof(
            &credentials,
            &region,
            &url,
            &server_id(&self.function),
            &request.binding(),
            std::time::SystemTime::now(),
        )
        .map_err(|e| ClientError::Identity(e.to_string()))
    }

    /// Send `request`; answers the raw JSON (`--json` prints it as it came).
    pub async fn invoke(&self, request: &ControlRequest) -> Result<Value, ClientError> {
        self.invoke_proven(request, None).await
    }

    /// Send `request` with the proof of who sends it.
    pub async fn invoke_proven(
        &self,
        request: &ControlRequest,
        identity_proof: Option<IdentityProof>,
    ) -> Result<Value, ClientError> {
        let payload = serde_json::to_vec(&ProvenRequest {
            request,
            identity_proof,
        })
        .unwrap_or_default();
        let out = self
            .lambda
            .invoke()
            .function_name(&self.function)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| ClientError::Invoke {
                function: self.function.clone(),
                message: DisplayErrorContext(e).to_string(),
            })?;
        let payload = out
            .payload()
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default();
        if out.function_error().is_some() {
            return Err(ClientError::Function {
                function: self.function.clone(),
                message: String::from_utf8_lossy(&payload).into_owned(),
            });
        }
        serde_json::from_slice(&payload).map_err(|e| self.bad_answer(&e))
    }

    /// The function answered something that is not (the expected) JSON.
    pub fn bad_answer(&self, e: &serde_json::Error) -> ClientError {
        ClientError::BadAnswer {
            function: self.function.clone(),
            message: e.to_string(),
        }
    }
}

/// The server id a proof is signed for: the control function's name (`--function` may be an
/// ARN, with a qualifier); control checks it against its own `AWS_LAMBDA_FUNCTION_NAME`.
pub fn server_id(function: &str) -> String {
    match function.split(':').collect::<Vec<_>>()[..] {
        ["arn", _, "lambda", _, _, "function", name, ..] => name.to_string(),
        [name, _qualifier] if !name.is_empty() => name.to_string(),
        _ => function.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_server_id_is_the_function_name() {
        for f in [
            "shipgate-control",
            "shipgate-control:live",
            "arn:aws:lambda:eu-west-1:123456789012:function:shipgate-control",
            "arn:aws:lambda:eu-west-1:123456789012:function:shipgate-control:3",
        ] {
            assert_eq!(super::server_id(f), "shipgate-control", "{f}");
        }
    }
}
