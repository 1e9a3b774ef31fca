//! Logging set-up shared by every binary.

use std::fmt::Write as _;

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;
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
            .with(layer.fmt_fields(text_fields()))
            .with(filter)
            .try_init()
    };
}

/// Field formatting of the text format: like the default (`message` bare, then `name=value`),
/// but every value is escaped with [`escape_untrusted`], so a value holding a line break
/// (a control `command`, a delivery header) cannot forge a log line. (The JSON format escapes by
/// construction.)
pub fn text_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    tracing_subscriber::fmt::format::debug_fn(
        |w: &mut Writer<'_>, field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
            let mut raw = String::new();
            let _ = write!(raw, "{value:?}");
            let text = escape_untrusted(&raw);
            if field.name() == "message" {
                w.write_str(&text)
            } else {
                write!(w, "{}={text}", field.name())
            }
        },
    )
    .delimited(" ")
}

/// Control characters, Unicode line/paragraph separators and bidi controls as `\n`, `\r`,
/// `\t` or `\u{…}`; everything else unchanged.
pub fn escape_untrusted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}') =>
            {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A text-format subscriber writing to `writer` (tests check what a log line looks like).
pub fn text_subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(false)
            .with_target(false)
            .fmt_fields(text_fields()),
    )
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
    fn untrusted_values_are_escaped() {
        assert_eq!(
            escape_untrusted("a\nERROR forged\r\u{202E}x\u{1b}[31m"),
            "a\\nERROR forged\\r\\u{202e}x\\u{1b}[31m"
        );
        assert_eq!(escape_untrusted("plain élan"), "plain élan");
    }

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
