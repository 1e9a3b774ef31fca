//! shipgate-approvals: approval pages and decisions (API Gateway HTTP API).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::http::HttpRequest;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let svc = shared::runtime::bootstrap().await?;
    run(service_fn(|event: LambdaEvent<HttpRequest>| {
        let svc = svc.clone();
        async move { Ok::<_, Error>(approvals::handler::handle(&svc, event.payload).await) }
    }))
    .await
}
