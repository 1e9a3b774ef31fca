//! `shipgate metrics PIPELINE [--since 30d] [--json]`: delivery metrics (deployment frequency,
//! lead time push → production by stage, change failure rate, time to restore) computed from the
//! executions `list_executions` answers (`shared::domain::metrics`; the newest
//! [`MAX_EXECUTION_LIMIT`], which the report says when the window reaches past them).

use std::process::ExitCode;

use serde::Serialize;
use shared::domain::metrics::{parse_window, report, DeliveryReport, Spread};
use shared::protocol::{
    Answer, ControlRequest, ControlResponse, ListExecutions, MAX_EXECUTION_LIMIT,
};

use crate::client::ControlClient;
use crate::{client_error, output, Remote};

/// The report as `--json` prints it.
#[derive(Serialize)]
struct Printed<'a> {
    #[serde(flatten)]
    report: &'a DeliveryReport,
    /// The window reaches past the executions read: older ones are not counted.
    truncated: bool,
}

pub async fn run(pipeline: String, since: String, remote: Remote) -> ExitCode {
    let window = match parse_window(&since) {
        Ok(w) => w,
        Err(message) => {
            eprintln!("error: --since {message}");
            return ExitCode::from(1);
        }
    };
    let request = ControlRequest::ListExecutions(ListExecutions {
        pipeline: pipeline.clone(),
        limit: Some(MAX_EXECUTION_LIMIT),
    });
    let client = ControlClient::new(&remote.function, &remote.aws).await;
    let raw = match client.invoke(&request).await {
        Ok(raw) => raw,
        Err(e) => return client_error(e),
    };
    let executions = match Answer::decode(&request, raw) {
        Ok(Answer::Done(response)) => match *response {
            ControlResponse::Executions(list) => list.executions,
            _ => {
                eprintln!("error: shipgate-control answered something other than executions");
                return ExitCode::from(3);
            }
        },
        Ok(Answer::Refused(err)) => {
            output::print_error(&err);
            return ExitCode::from(1);
        }
        Err(e) => return client_error(client.bad_answer(&e)),
    };
    let until = chrono::Utc::now();
    let since_at = until - window;
    let truncated = executions.len() >= MAX_EXECUTION_LIMIT
        && executions
            .iter()
            .map(|e| e.created_at)
            .min()
            .is_some_and(|oldest| oldest > since_at);
    let r = report(&pipeline, &executions, since_at, until);
    if remote.json() {
        let printed = Printed {
            report: &r,
            truncated,
        };
        output::say(&serde_json::to_string_pretty(&printed).unwrap_or_default());
    } else {
        output::say(&render(&r, &since, truncated));
    }
    ExitCode::SUCCESS
}

/// `1h 5m`, `12m 30s`, `45s`.
pub fn duration(secs: i64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn spread(s: &Spread) -> String {
    match (s.median_seconds, s.mean_seconds, s.max_seconds) {
        (Some(md), Some(mean), Some(max)) => format!(
            "median {}  (mean {}, max {}; {} release{})",
            duration(md),
            duration(mean),
            duration(max),
            s.count,
            if s.count == 1 { "" } else { "s" }
        ),
        _ => "-".into(),
    }
}

fn median(s: &Spread) -> String {
    s.median_seconds.map(duration).unwrap_or_else(|| "-".into())
}

pub fn render(r: &DeliveryReport, window: &str, truncated: bool) -> String {
    let fmt = |t: &chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut out = vec![
        format!(
            "delivery metrics of {} over the last {window} ({} → {})",
            r.pipeline,
            fmt(&r.since),
            fmt(&r.until)
        ),
        format!(
            "executions              {} started ({} in progress)",
            r.executions, r.in_progress
        ),
        format!(
            "deployment frequency    {} release{} to production ({:.2} a day)",
            r.deployments,
            if r.deployments == 1 { "" } else { "s" },
            r.deployments_per_day
        ),
        format!("lead time push → prod   {}", spread(&r.lead_time.total)),
        format!("  build                 {}", median(&r.lead_time.build)),
        format!("  test                  {}", median(&r.lead_time.test)),
        format!(
            "  waiting for approval  {}",
            median(&r.lead_time.approval_wait)
        ),
        format!("  prod                  {}", median(&r.lead_time.prod)),
        match r.change_failure_rate {
            Some(rate) => format!(
                "change failure rate     {:.0}%  ({} of {} production deployments failed or were rolled back)",
                rate * 100.0,
                r.prod_failures,
                r.prod_attempts
            ),
            None => "change failure rate     -  (no production deployment)".into(),
        },
        format!(
            "time to restore         {}{}",
            match r.time_to_restore.median_seconds {
                Some(_) => spread(&r.time_to_restore).replace(" release", " failure"),
                None => "-".into(),
            },
            if r.unrestored > 0 {
                format!("  ({} not restored yet)", r.unrestored)
            } else {
                String::new()
            }
        ),
        format!(
            "other outcomes          build failed {}, test failed {}, rejected {}, expired {}",
            r.build_failures, r.test_failures, r.rejected, r.expired
        ),
    ];
    if truncated {
        out.push(format!(
            "note: only the newest {MAX_EXECUTION_LIMIT} executions were read; older ones in the window are not counted"
        ));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(750), "12m 30s");
        assert_eq!(duration(3900), "1h 5m");
        assert_eq!(duration(90_000), "1d 1h");
    }

    #[test]
    fn an_empty_window_renders() {
        let now = chrono::Utc::now();
        let r = report("hello", &[], now - chrono::Duration::days(30), now);
        let text = render(&r, "30d", false);
        assert!(text.contains("0 releases to production"), "{text}");
        assert!(text.contains("change failure rate     -"), "{text}");
    }
}
