//! shipgate-webhook: GitHub push webhooks (API Gateway HTTP API).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::http::HttpRequest;
use shared::wiring::profiles;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // the ports and capabilities of its profile (shared::wiring); only those SDK clients are linked
    let svc = shared::runtime::bootstrap::<profiles::Webhook>().await?;
    run(service_fn(|event: LambdaEvent<HttpRequest>| {
        let svc = svc.clone();
        async move { Ok::<_, Error>(webhook::handler::handle(&svc, event.payload).await) }
    }))
    .await
}
