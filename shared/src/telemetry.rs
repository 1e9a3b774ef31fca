//! Logging set-up shared by every binary.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Structured logs to stderr. On Lambda, set the function's log format to JSON (the runtime
/// then emits JSON); `SHIPGATE_LOG_FORMAT=json` forces JSON elsewhere.
///
/// The filter is `RUST_LOG` as a list of `target=level` directives (`info`,
/// `warn,shared=debug`), else the function's Lambda log level (`AWS_LAMBDA_LOG_LEVEL`), else
/// `info`. (A target list rather than `EnvFilter`: no regex engine in every binary.)
pub fn init() {
    let filter = filter_from(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
    );
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"))
        || std::env::var("SHIPGATE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    // try_init: a second call (tests, the dev server) keeps the first subscriber
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

/// The filter from `RUST_LOG` and Lambda's log level; anything unreadable means `info`.
fn filter_from(rust_log: Option<&str>, lambda_level: Option<&str>) -> Targets {
    if let Some(targets) = rust_log
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse::<Targets>().ok())
    {
        return targets;
    }
    use tracing::Level;
    let level = match lambda_level
        .map(|l| l.trim().to_ascii_uppercase())
        .as_deref()
    {
        Some("TRACE") => Level::TRACE,
        Some("DEBUG") => Level::DEBUG,
        Some("WARN") => Level::WARN,
        Some("ERROR" | "FATAL") => Level::ERROR,
        _ => Level::INFO,
    };
    Targets::new().with_default(level)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::level_filters::LevelFilter;

    #[test]
    fn filter_sources_in_order() {
        let f = filter_from(None, None);
        assert_eq!(f.default_level(), Some(LevelFilter::INFO));
        let f = filter_from(Some("warn,shared=debug"), Some("ERROR"));
        assert_eq!(f.default_level(), Some(LevelFilter::WARN));
        assert!(f.would_enable("shared::app", &tracing::Level::DEBUG));
        assert!(!f.would_enable("aws_smithy_runtime", &tracing::Level::INFO));
        let f = filter_from(None, Some("DEBUG"));
        assert_eq!(f.default_level(), Some(LevelFilter::DEBUG));
        let f = filter_from(Some(""), Some("FATAL"));
        assert_eq!(f.default_level(), Some(LevelFilter::ERROR));
        let f = filter_from(None, Some("loud"));
        assert_eq!(f.default_level(), Some(LevelFilter::INFO));
    }
}
