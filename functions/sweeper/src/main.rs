//! shipgate-sweeper: scheduled sweeps (EventBridge schedule).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let svc = shared::runtime::bootstrap().await?;
    run(service_fn(|event: LambdaEvent<Value>| {
        let svc = svc.clone();
        async move { sweeper::handler::handle(&svc, event.payload).await }
    }))
    .await
}
