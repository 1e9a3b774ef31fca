//! shipgate-sweeper: scheduled sweeps (EventBridge schedule).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::app::Capabilities;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // only the ports this function uses are wired (and linked); see Capabilities
    let svc = shared::runtime::bootstrap(|w| {
        w.services(
            w.codebuild(),
            w.ecs(),
            w.ecr(),
            w.sns(),
            w.secrets_manager(),
            Capabilities::SWEEPER,
        )
    })
    .await?;
    run(service_fn(|event: LambdaEvent<Value>| {
        let svc = svc.clone();
        async move { sweeper::handler::handle(&svc, event.payload).await }
    }))
    .await
}
