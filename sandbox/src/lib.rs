//! The local sandbox: a moto server standing in for AWS, the resources shipgate needs in it, the
//! API Gateway requests API Gateway would send, and the DynamoDB table the template would create.
//!
//! Used by `shipgate dev` (the `cli/` crate) and the tests; never by a Lambda function:
//! `scripts/check-release-deps.sh` (run by `make test`) fails when a `functions/*` crate links
//! this crate or a test feature of `shared`, alone or in a workspace-wide build.

pub mod apigw;
pub mod github;
mod iam;
mod moto;
mod outbox;
mod provision;
mod stack;
mod table;

pub use iam::{create_iam_user, IamUser};
pub use moto::{python, sdk_config, MotoServer};
pub use outbox::{drain_outbox, links_in, OutboxMessage};
pub use provision::{
    create_service, register_bootstrap_task_definition, DemoApprover, DemoVerify, Mailbox,
    Provisioned, Sandbox, DEMO_ALARM, DEMO_SMOKE_PROJECT,
};
pub use stack::{create_stand_in_stack, STACK_NAME};
pub use table::TableAdmin;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
/// The sandbox's GitHub webhook secret: fixed, so the signed samples in `events/apigw/` work
/// against it. Local use only.
pub const DEV_WEBHOOK_SECRET: &str = "shipgate-dev-webhook-secret";

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

pub(crate) fn step<E: std::fmt::Display>(step: &'static str) -> impl FnOnce(E) -> LocalError {
    move |e| LocalError::Provision {
        step,
        message: e.to_string(),
    }
}

pub(crate) fn aws_step<E, R>(
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
