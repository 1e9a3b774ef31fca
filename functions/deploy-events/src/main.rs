//! shipgate-deploy-events: ECS deployment state changes (EventBridge).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::wiring::profiles;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // the ports and capabilities of its profile (shared::wiring); only those SDK clients are linked
    let svc = shared::runtime::bootstrap::<profiles::DeployEvents>().await?;
    run(service_fn(|event: LambdaEvent<Value>| {
        let svc = svc.clone();
        async move { deploy_events::handler::handle(&svc, event.payload).await }
    }))
    .await
}
