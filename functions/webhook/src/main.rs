//! shipgate-webhook: GitHub push webhooks (API Gateway HTTP API).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::adapters::Wiring;
use shared::app::Capabilities;
use shared::http::HttpRequest;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // only the ports this function uses are wired (and linked); see Capabilities
    let svc = shared::runtime::bootstrap(|w| {
        w.services(
            w.codebuild(),
            Wiring::unused(),
            Wiring::unused(),
            Wiring::unused(),
            w.secrets_manager(),
            Capabilities::SOURCES,
        )
    })
    .await?;
    run(service_fn(|event: LambdaEvent<HttpRequest>| {
        let svc = svc.clone();
        async move { Ok::<_, Error>(webhook::handler::handle(&svc, event.payload).await) }
    }))
    .await
}
