//! The AWS CLI habits every remote command shares: `--profile`, `--region`, `--endpoint-url`,
//! `--output`, `--debug`, and the SDK configuration they make.

use clap::{Args, ValueEnum};

/// How answers are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned tables and timelines (times in UTC).
    Table,
    /// The raw JSON answer, as control sent it.
    Json,
}

/// Options of every command that talks to AWS (global: they may come before or after the
/// subcommand, as with the AWS CLI).
#[derive(Args, Debug, Clone, Default)]
pub struct AwsOptions {
    /// Use this named profile from ~/.aws/config (SSO, credential_process and keys all work).
    #[arg(long, env = "AWS_PROFILE", global = true)]
    pub profile: Option<String>,
    /// The AWS region of the shipgate deployment.
    #[arg(long, env = "AWS_REGION", global = true, value_parser = parse_region)]
    pub region: Option<String>,
    /// Send the Lambda Invoke call to this URL instead of AWS (like `aws lambda invoke
    /// --endpoint-url`; a local sandbox sets AWS_ENDPOINT_URL_LAMBDA instead). Other services
    /// keep AWS_ENDPOINT_URL[_<SERVICE>].
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Print debug logs (requests made, retries) to stderr.
    #[arg(long, global = true)]
    pub debug: bool,
}

impl AwsOptions {
    /// The SDK configuration of these options (region, profile, credentials chain).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(shared::adapters::https_client());
        if let Some(p) = &self.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &self.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        loader.load().await
    }

    /// `--debug`: debug logs on stderr (the SDK's requests, retries and endpoints).
    pub fn init_logging(&self) {
        use tracing::Level;
        use tracing_subscriber::filter::Targets;
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        if !self.debug {
            return;
        }
        let filter = Targets::new()
            .with_default(Level::DEBUG)
            .with_target("hyper", Level::INFO)
            .with_target("hyper_util", Level::INFO)
            .with_target("rustls", Level::INFO)
            .with_target("h2", Level::INFO);
        let _ = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .fmt_fields(shared::telemetry::text_fields()),
            )
            .with(filter)
            .try_init();
    }
}

/// A region name as AWS spells them (`eu-west-1`, `us-gov-west-1`): one DNS label of lowercase
/// letters, digits and `-`. Anything else is a usage error here, before the SDK would build an
/// endpoint host from it.
pub fn parse_region(text: &str) -> Result<String, String> {
    let ok = (1..=63).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if ok {
        Ok(text.to_string())
    } else {
        Err("not an AWS region name (lowercase letters, digits and -, like eu-west-1)".into())
    }
}

/// Whether to colour output: a terminal, and NO_COLOR (https://no-color.org) not set.
pub fn use_color() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_one_dns_label() {
        for ok in ["eu-west-1", "us-gov-west-1", "cn-north-1", "local"] {
            assert_eq!(parse_region(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "",
            "eu west 1",
            "x.evil.example/#",
            "EU-WEST-1",
            "-x",
            "a@b",
            &"a".repeat(64),
        ] {
            assert!(parse_region(bad).is_err(), "{bad:?}");
        }
    }
}
