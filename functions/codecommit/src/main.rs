//! shipgate-codecommit: CodeCommit reference changes (EventBridge).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::wiring::profiles;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // the ports and capabilities of its profile (shared::wiring); only those SDK clients are linked
    let svc = shared::runtime::bootstrap::<profiles::Codecommit>().await?;
    run(service_fn(|event: LambdaEvent<Value>| {
        let svc = svc.clone();
        async move { codecommit::handler::handle(&svc, event.payload).await }
    }))
    .await
}
