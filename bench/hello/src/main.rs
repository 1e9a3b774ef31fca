//! bench-hello: the smallest function a shipgate function could be. It does at init what every
//! function does before its first `next` apart from the AWS work (`shared::runtime::bootstrap`
//! minus configuration, SDK clients and the warm-up call): the same tracing set-up as
//! `shared::telemetry::init`, the same tokio runtime (`#[tokio::main]`, multi-threaded), then
//! `lambda_runtime::run(service_fn(...))`. The handler echoes the event.
//!
//! Its Init Duration under bench/runtime_emulator.py is the reference the functions' Init
//! Duration is divided by in `make bench` (bench/README.md).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    run(service_fn(|event: LambdaEvent<Value>| async move {
        tracing::info!(request_id = %event.context.request_id, "echo");
        Ok::<_, Error>(event.payload)
    }))
    .await
}

/// What `shared::telemetry::init` sets up (not linked from `shared`, which would bring the AWS
/// SDK): JSON logs to stderr when `AWS_LAMBDA_LOG_FORMAT=JSON`, level from `RUST_LOG` (a target
/// list) or `AWS_LAMBDA_LOG_LEVEL`, else `info`.
fn init_tracing() {
    use tracing::Level;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| {
            let level = match std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .map(|l| l.trim().to_ascii_uppercase())
                .as_deref()
            {
                Ok("TRACE") => Level::TRACE,
                Ok("DEBUG") => Level::DEBUG,
                Ok("WARN") => Level::WARN,
                Ok("ERROR" | "FATAL") => Level::ERROR,
                _ => Level::INFO,
            };
            Targets::new().with_default(level)
        });
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = if json {
        tracing_subscriber::registry()
            .with(layer.json().flatten_event(true).without_time())
            .with(filter)
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(layer)
            .with(filter)
            .try_init()
    };
}
