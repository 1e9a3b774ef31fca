//! shipgate-build-events: CodeBuild build state changes (EventBridge).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::adapters::Wiring;
use shared::app::Capabilities;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // only the ports this function uses are wired (and linked); see Capabilities
    let svc = shared::runtime::bootstrap(|w| {
        // CodeBuild: BatchGetBuilds only, for the commit a branch-head release resolved
        w.services(
            w.codebuild(),
            w.ecs(),
            w.ecr(),
            w.sns(),
            Wiring::unused(),
            Capabilities::BUILD_EVENTS,
        )
    })
    .await?;
    run(service_fn(|event: LambdaEvent<Value>| {
        let svc = svc.clone();
        async move { build_events::handler::handle(&svc, event.payload).await }
    }))
    .await
}
