//! The smoke test phase of a test verification (pure): `VERIFYING_TEST` asks for a smoke build
//! once the HTTP check passed (`SmokeRequested`), records the build `StartBuild` answered
//! (`SmokeStarted`: from then on the execution waits on that build, `Execution::awaited`), and
//! is decided by the build's CodeBuild state change (`SmokeFinished`) or by the sweeper once the
//! build never reported within its timeout (`SmokeTimedOut`). No new state: the phase is the
//! `smoke` record of the test verification.

use chrono::{DateTime, Utc};

use super::super::verify::{build_finished, SmokeRun};
use super::{DomainError, Effect, Environment, Event, Execution, Failure, Stage, Status};

/// The transition a smoke event makes (`None`: it does not apply in `status`).
pub(super) fn smoke(
    exec: &Execution,
    next: &mut Execution,
    status: Status,
    event: Event,
    at: &DateTime<Utc>,
) -> Result<Option<(Status, String, Vec<Effect>)>, DomainError> {
    use Status as S;
    let name = event.name();
    let already = DomainError::AlreadyApplied { event: name };
    let recorded = exec.verify_test.as_ref().and_then(|v| v.smoke.as_ref());
    Ok(Some(match (status, event) {
        (
            S::VerifyingTest,
            Event::SmokeRequested {
                attempt,
                result,
                project,
                target_url,
                timeout_minutes,
            },
        ) => {
            let Some(v) = next.verify_test.as_mut() else {
                return Ok(None);
            };
            if recorded.is_some() || attempt <= v.attempts {
                return Err(already);
            }
            if attempt != v.attempts + 1 {
                return Ok(None);
            }
            let checked = match &result {
                Some(r) => format!("test check passed: {}", r.describe()),
                None => "no HTTP check".to_string(),
            };
            v.attempts = attempt;
            if result.is_some() {
                v.last = result;
            }
            v.smoke = Some(SmokeRun {
                token: SmokeRun::token_for(exec.id.as_str(), exec.attempt),
                project: project.clone(),
                target_url,
                timeout_minutes,
                requested_at: *at,
                build_id: None,
                started_at: None,
                outcome: None,
                finished_at: None,
                logs_link: None,
            });
            (
                S::VerifyingTest,
                format!("{checked}; starting smoke test {project}"),
                vec![],
            )
        }
        (S::VerifyingTest, Event::SmokeStarted { build_id }) => {
            let Some(run) = recorded else {
                return Ok(None);
            };
            match run.build_id.as_deref() {
                Some(b) if b == build_id => return Err(already),
                // a second build (the idempotency token expired): the first one recorded counts
                Some(_) => return Err(DomainError::UnknownSmokeBuild { got: build_id }),
                None => {}
            }
            let project = run.project.clone();
            if let Some(s) = next.verify_test.as_mut().and_then(|v| v.smoke.as_mut()) {
                s.build_id = Some(build_id.clone());
                s.started_at = Some(*at);
            }
            (
                S::VerifyingTest,
                format!("smoke test build {build_id} started ({project})"),
                vec![],
            )
        }
        (
            s,
            Event::SmokeFinished {
                build_id,
                status: build_status,
                reason,
                link,
                approval,
            },
        ) => {
            let Some(run) = recorded else {
                return Ok(None);
            };
            if run.build_id.as_deref() != Some(build_id.as_str()) {
                return Err(DomainError::UnknownSmokeBuild { got: build_id });
            }
            // a repeated or late event of a smoke build already decided changes nothing
            if run.outcome.is_some() {
                return Err(already);
            }
            if s != S::VerifyingTest || !build_finished(&build_status) {
                return Ok(None);
            }
            let passed = build_status == "SUCCEEDED";
            let grant = if passed {
                Some(approval.ok_or(DomainError::MissingApproval)?)
            } else {
                None
            };
            let Some(v) = next.verify_test.as_mut() else {
                return Ok(None);
            };
            let Some(smoke) = v.smoke.as_mut() else {
                return Ok(None);
            };
            smoke.outcome = Some(build_status.clone());
            smoke.finished_at = Some(*at);
            smoke.logs_link = link.clone();
            let what = smoke.describe();
            match grant {
                Some(grant) => {
                    v.passed_at = Some(*at);
                    let http = v
                        .last
                        .as_ref()
                        .filter(|l| l.passed)
                        .map(|l| format!("{}; ", l.describe()))
                        .unwrap_or_default();
                    next.approval = Some(grant.open(*at));
                    (
                        S::AwaitingApproval,
                        format!("test verified: {http}{what}; approval requested"),
                        vec![
                            Effect::RecordRevision(Environment::Test),
                            Effect::SupersedeOlder,
                            Effect::RequestApproval,
                        ],
                    )
                }
                None => {
                    v.failed = true;
                    let reason = match reason.filter(|r| !r.is_empty()) {
                        Some(r) => format!("{what}: {r}"),
                        None => format!("{what}; see the smoke build's logs"),
                    };
                    next.failure = Some(Failure {
                        stage: Stage::Test,
                        reason: reason.clone(),
                        link,
                    });
                    (
                        S::TestFailed,
                        format!("test verification failed: {reason}"),
                        vec![Effect::Notify],
                    )
                }
            }
        }
        (S::VerifyingTest, Event::SmokeTimedOut) => {
            let Some(run) = recorded.filter(|r| r.running_build().is_some()) else {
                return Ok(None);
            };
            if let Some(until) = run.deadline().filter(|d| at < d) {
                return Err(DomainError::SmokeNotOver { until });
            }
            let reason = format!(
                "smoke test {} (build {}) did not report within {} minutes",
                run.project,
                run.build_id.as_deref().unwrap_or_default(),
                run.timeout_minutes
            );
            if let Some(v) = next.verify_test.as_mut() {
                v.failed = true;
                if let Some(s) = v.smoke.as_mut() {
                    s.outcome = Some("TIMED_OUT".into());
                    s.finished_at = Some(*at);
                }
            }
            next.failure = Some(Failure {
                stage: Stage::Test,
                reason: reason.clone(),
                link: None,
            });
            (
                S::TestFailed,
                format!("test verification failed: {reason}"),
                vec![Effect::Notify],
            )
        }
        _ => return Ok(None),
    }))
}

#[cfg(test)]
#[path = "smoke_transition_tests.rs"]
mod tests;
