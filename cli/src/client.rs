//! Talking to `shipgate-control` through the Lambda Invoke API with the caller's credentials.
//! `AWS_ENDPOINT_URL_LAMBDA` points it at a local sandbox, as `aws lambda invoke
//! --endpoint-url` would.

use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::primitives::Blob;
use serde_json::Value;
use shared::protocol::ControlRequest;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not invoke {function}: {message}\n  (check AWS credentials and region; for the local sandbox: set -a; . .shipgate/dev.env)")]
    Invoke { function: String, message: String },
    #[error("{function} failed: {message}")]
    Function { function: String, message: String },
    #[error("{function} answered something this CLI does not understand: {message}")]
    BadAnswer { function: String, message: String },
    #[error("could not find out who you are (sts:GetCallerIdentity): {0}")]
    Identity(String),
}

pub struct ControlClient {
    lambda: aws_sdk_lambda::Client,
    sts: aws_sdk_sts::Client,
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
            sts: aws_sdk_sts::Client::new(&sdk),
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

    /// The caller's ARN: recorded as the actor of approvals, retries, rollbacks and releases.
    pub async fn caller_arn(&self) -> Result<String, ClientError> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| ClientError::Identity(DisplayErrorContext(e).to_string()))?;
        out.arn()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Identity("no ARN in the answer".into()))
    }

    /// Send `request`; answers the raw JSON (`--json` prints it as it came).
    pub async fn invoke(&self, request: &ControlRequest) -> Result<Value, ClientError> {
        let out = self
            .lambda
            .invoke()
            .function_name(&self.function)
            .payload(Blob::new(serde_json::to_vec(request).unwrap_or_default()))
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
