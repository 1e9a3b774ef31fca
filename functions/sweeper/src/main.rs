//! shipgate-sweeper: scheduled sweeps (EventBridge schedule).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::wiring::profiles;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // the ports and capabilities of its profile (shared::wiring); only those SDK clients are linked
    let svc = shared::runtime::bootstrap::<profiles::Sweeper>().await?;
    run(service_fn(|event: LambdaEvent<Value>| {
        let svc = svc.clone();
        async move { sweeper::handler::handle(&svc, event.payload).await }
    }))
    .await
}
