//! Logging set-up shared by every binary.

use tracing_subscriber::EnvFilter;

/// Structured logs to stderr. On Lambda, set the function's log format to JSON (the runtime
/// then emits JSON); `SHIPGATE_LOG_FORMAT=json` forces JSON elsewhere. `RUST_LOG` filters.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"))
        || std::env::var("SHIPGATE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    // try_init: a second call (tests, the dev server) keeps the first subscriber
    let _ = if json {
        builder.json().flatten_event(true).without_time().try_init()
    } else {
        builder.try_init()
    };
}
