//! The smoke test phase of a verification (pure), in test (`VERIFYING_TEST`) and production
//! (`VERIFYING_PROD`): the verification asks for a smoke build once the HTTP check passed
//! (`SmokeRequested`), records the build `StartBuild` answered (`SmokeStarted`: from then on the
//! execution waits on that build, `Execution::awaited`), and is decided by the build's CodeBuild
//! state change (`SmokeFinished`) or, once the build never reported within its timeout, by a
//! resumed step (`SmokeTimedOut`). No new state: the phase is the `smoke` record of the
//! environment's verification. Test: passed → approval requested, failed → `TEST_FAILED`.
//! Production: passed → the bake (or `SUCCEEDED`), failed → `PROD_FAILED` with the automatic
//! rollback.

use chrono::{DateTime, Utc};

use super::super::verify::{build_finished, SmokeRun};
use super::transition::{prod_verified, prod_verify_failed};
use super::{DomainError, Effect, Environment, Event, Execution, Failure, Stage, Status};

/// The environment whose verification a status is.
fn verifying(status: Status) -> Option<Environment> {
    match status {
        Status::VerifyingTest => Some(Environment::Test),
        Status::VerifyingProd => Some(Environment::Prod),
        _ => None,
    }
}

fn verification_mut(
    next: &mut Execution,
    env: Environment,
) -> Option<&mut super::super::verify::Verification> {
    match env {
        Environment::Test => next.verify_test.as_deref_mut(),
        Environment::Prod => next.verify_prod.as_deref_mut(),
    }
}

/// The environment whose smoke run is build `build_id`, and that run.
pub fn smoke_of_build<'a>(
    exec: &'a Execution,
    build_id: &str,
) -> Option<(Environment, &'a SmokeRun)> {
    [Environment::Test, Environment::Prod]
        .into_iter()
        .find_map(|env| {
            exec.verification(env)
                .and_then(|v| v.smoke.as_ref())
                .filter(|s| s.build_id.as_deref() == Some(build_id))
                .map(|s| (env, s))
        })
}

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
    // the smoke run of the environment this status verifies
    let env = verifying(status);
    let recorded = env
        .and_then(|e| exec.verification(e))
        .and_then(|v| v.smoke.as_ref());
    Ok(Some(match (status, event) {
        (
            S::VerifyingTest | S::VerifyingProd,
            Event::SmokeRequested {
                environment,
                attempt,
                result,
                project,
                target_url,
                timeout_minutes,
            },
        ) if env == Some(environment) => {
            // blue/green: the green revision is verified by ECS's hook, not by a smoke build
            if exec.verify_prod.as_ref().is_some_and(|v| v.green.is_some())
                && environment == Environment::Prod
            {
                return Ok(None);
            }
            let Some(v) = verification_mut(next, environment) else {
                return Ok(None);
            };
            if recorded.is_some() || attempt <= v.attempts {
                return Err(already);
            }
            if attempt != v.attempts + 1 {
                return Ok(None);
            }
            let checked = match &result {
                Some(r) => format!("{environment} check passed: {}", r.describe()),
                None => "no HTTP check".to_string(),
            };
            v.attempts = attempt;
            if result.is_some() {
                v.last = result;
            }
            v.smoke = Some(SmokeRun {
                token: SmokeRun::token_for(exec.id.as_str(), exec.attempt, environment),
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
                status,
                format!("{checked}; starting smoke test {project}"),
                vec![],
            )
        }
        (S::VerifyingTest | S::VerifyingProd, Event::SmokeStarted { build_id }) => {
            let (Some(run), Some(env)) = (recorded, env) else {
                return Ok(None);
            };
            match run.build_id.as_deref() {
                Some(b) if b == build_id => return Err(already),
                // a second build (the idempotency token expired): the first one recorded counts
                Some(_) => return Err(DomainError::UnknownSmokeBuild { got: build_id }),
                None => {}
            }
            let project = run.project.clone();
            if let Some(s) = verification_mut(next, env).and_then(|v| v.smoke.as_mut()) {
                s.build_id = Some(build_id.clone());
                s.started_at = Some(*at);
            }
            (
                status,
                format!("{env} smoke test build {build_id} started ({project})"),
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
            // the build may be either environment's (a late event of the test smoke build
            // arrives while production verifies)
            let Some((env, run)) = smoke_of_build(exec, &build_id) else {
                let any = [Environment::Test, Environment::Prod]
                    .into_iter()
                    .any(|e| exec.verification(e).is_some_and(|v| v.smoke.is_some()));
                if any {
                    return Err(DomainError::UnknownSmokeBuild { got: build_id });
                }
                return Ok(None);
            };
            // a repeated or late event of a smoke build already decided changes nothing
            if run.outcome.is_some() {
                return Err(already);
            }
            if verifying(s) != Some(env) || !build_finished(&build_status) {
                return Ok(None);
            }
            let passed = build_status == "SUCCEEDED";
            let grant = if passed && env == Environment::Test {
                Some(approval.ok_or(DomainError::MissingApproval)?)
            } else {
                None
            };
            let Some(v) = verification_mut(next, env) else {
                return Ok(None);
            };
            let Some(smoke) = v.smoke.as_mut() else {
                return Ok(None);
            };
            smoke.outcome = Some(build_status.clone());
            smoke.finished_at = Some(*at);
            smoke.logs_link = link.clone();
            let what = smoke.describe();
            if env == Environment::Prod {
                let http = v
                    .last
                    .as_ref()
                    .filter(|l| l.passed)
                    .map(|l| format!("{}; ", l.describe()))
                    .unwrap_or_default();
                if passed {
                    return Ok(Some(prod_verified(
                        exec,
                        next,
                        at,
                        &format!("{http}{what}"),
                    )));
                }
                let reason = match reason.filter(|r| !r.is_empty()) {
                    Some(r) => format!("{what}: {r}"),
                    None => format!("{what}; see the smoke build's logs"),
                };
                return Ok(Some(prod_verify_failed(next, &reason, link)));
            }
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
        (S::VerifyingTest | S::VerifyingProd, Event::SmokeTimedOut) => {
            let (Some(run), Some(env)) = (recorded.filter(|r| r.running_build().is_some()), env)
            else {
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
            if let Some(v) = verification_mut(next, env) {
                if let Some(s) = v.smoke.as_mut() {
                    s.outcome = Some("TIMED_OUT".into());
                    s.finished_at = Some(*at);
                }
                if env == Environment::Prod {
                    return Ok(Some(prod_verify_failed(next, &reason, None)));
                }
                v.failed = true;
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

#[cfg(test)]
#[path = "prod_smoke_transition_tests.rs"]
mod prod_tests;
