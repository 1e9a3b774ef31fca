//! `shipgate watch ID` and `--wait`: follow an execution until it ends, printing each transition
//! as it happens and each link once it is known; the exit code says how it ended.
//!
//! Exit codes (also in `shipgate watch --help` and docs/visibility.md):
//! 0 SUCCEEDED · 1 refused (unknown id, bad input) · 3 AWS could not be reached ·
//! 4 `--timeout` passed while it still ran · 10 failed (build, test or prod) · 11 rejected ·
//! 12 expired · 13 superseded · 14 rolled back · 141 the reader of stdout went away.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use shared::domain::{Execution, ExecutionId, Status};
use shared::protocol::{Answer, ControlRequest, ControlResponse, ExecutionRef};

use crate::client::ControlClient;
use crate::{links, output};

/// Still running after `--timeout`.
pub const EXIT_TIMEOUT: u8 = 4;

/// How an execution in `status` ends a watch: None while it still runs, else the exit code.
/// One exhaustive match: a new state does not compile until it is given its outcome.
pub fn outcome(status: Status) -> Option<u8> {
    match status {
        Status::Received
        | Status::Building
        | Status::Built
        | Status::DeployingTest
        | Status::VerifyingTest
        | Status::AwaitingApproval
        | Status::DeployingProd
        | Status::VerifyingProd
        | Status::BakingProd => None,
        Status::Succeeded => Some(0),
        Status::BuildFailed | Status::TestFailed | Status::ProdFailed => Some(10),
        Status::Rejected => Some(11),
        Status::Expired => Some(12),
        Status::Superseded => Some(13),
        Status::RolledBack => Some(14),
    }
}

/// Options of `watch` and of `--wait`.
#[derive(clap::Args, Debug, Clone)]
pub struct WatchOptions {
    /// Seconds between two looks at the execution.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub interval: u64,
    /// Give up (exit 4) after this many seconds; default: wait until it ends.
    #[arg(long)]
    pub timeout: Option<u64>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            interval: 2,
            timeout: None,
        }
    }
}

fn paint(status: Status, text: &str, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let code = match outcome(status) {
        None if status == Status::AwaitingApproval => "33",
        None => "36",
        Some(0) => "32",
        Some(10) => "31",
        Some(_) => "35",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// What has been printed already, so each transition and link appears once.
#[derive(Default)]
struct Printed {
    history: usize,
    links: HashSet<(&'static str, String)>,
    approval: bool,
}

fn print_news(e: &Execution, printed: &mut Printed, region: Option<&str>, json: bool) {
    let color = crate::aws::use_color();
    for h in e.history.iter().skip(printed.history) {
        if json {
            output::say(&serde_json::to_string(h).unwrap_or_default());
            continue;
        }
        let from = h.from.map(|f| format!("{f} → ")).unwrap_or_default();
        output::say(&format!(
            "{}  {}  {} ({})",
            output::when(&h.at),
            paint(h.to, &format!("{from}{}", h.to), color),
            output::inert(&h.cause),
            output::inert(&h.actor)
        ));
    }
    printed.history = e.history.len();
    if json {
        return;
    }
    for (label, value) in links::lines(e, region) {
        if printed.links.insert((label, value.clone())) {
            output::say(&format!("    {label:<13} {}", output::inert(&value)));
        }
    }
    if let Some(a) = &e.approval {
        if e.status == Status::AwaitingApproval && !printed.approval {
            printed.approval = true;
            output::say(&format!(
                "    {:<13} waiting until {} — shipgate approve {} (or the e-mailed link)",
                "approval",
                output::when(&a.expires_at),
                e.id
            ));
        }
    }
}

/// Look at the execution every `interval` until it ends; its outcome is the exit code.
pub async fn follow(
    client: &ControlClient,
    id: &ExecutionId,
    opts: &WatchOptions,
    json: bool,
) -> ExitCode {
    let request = ControlRequest::Show(ExecutionRef {
        execution_id: id.clone(),
        actor: None,
    });
    let started = Instant::now();
    let mut printed = Printed::default();
    let cli_region = client.region();
    loop {
        let raw = match client.invoke(&request).await {
            Ok(raw) => raw,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(3);
            }
        };
        let exec = match Answer::decode(&request, raw) {
            Ok(Answer::Done(r)) => match *r {
                ControlResponse::Execution(shown) => shown.execution,
                _ => {
                    eprintln!("error: control answered something else than an execution");
                    return ExitCode::from(3);
                }
            },
            Ok(Answer::Refused(err)) => {
                output::print_error(&err);
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("error: {}", client.bad_answer(&e));
                return ExitCode::from(3);
            }
        };
        let region = links::region_of(&exec, cli_region.as_deref());
        print_news(&exec, &mut printed, region.as_deref(), json);
        if let Some(code) = outcome(exec.status) {
            if !json {
                let color = crate::aws::use_color();
                let mut line = format!(
                    "{} {}",
                    exec.id,
                    paint(exec.status, exec.status.as_str(), color)
                );
                if let Some(f) = &exec.failure {
                    line.push_str(&format!(" in {}: {}", f.stage, output::inert(&f.reason)));
                }
                output::say(&line);
            }
            return ExitCode::from(code);
        }
        if let Some(limit) = opts.timeout {
            if started.elapsed() >= Duration::from_secs(limit) {
                eprintln!(
                    "{} is still {} after {limit}s (follow it with: shipgate watch {})",
                    exec.id, exec.status, exec.id
                );
                return ExitCode::from(EXIT_TIMEOUT);
            }
        }
        tokio::time::sleep(Duration::from_secs(opts.interval)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_distinct_and_documented() {
        assert_eq!(outcome(Status::Succeeded), Some(0));
        assert_eq!(outcome(Status::BuildFailed), Some(10));
        assert_eq!(outcome(Status::TestFailed), Some(10));
        assert_eq!(outcome(Status::ProdFailed), Some(10));
        let ends = [
            Status::Rejected,
            Status::Expired,
            Status::Superseded,
            Status::RolledBack,
        ];
        let codes: HashSet<u8> = ends.iter().filter_map(|s| outcome(*s)).collect();
        assert_eq!(codes.len(), ends.len());
        for s in Status::ALL {
            // a watch ends exactly when the execution stops being active
            assert_eq!(outcome(s).is_none(), s.is_active(), "{s}");
            assert_ne!(outcome(s), Some(1), "1 is a refusal");
            assert_ne!(outcome(s), Some(3), "3 is AWS unreachable");
            assert_ne!(outcome(s), Some(EXIT_TIMEOUT));
        }
    }
}
