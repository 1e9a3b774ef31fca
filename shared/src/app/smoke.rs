//! The smoke test of a verification (test, and production): a CodeBuild project started once
//! the HTTP check passed (or at once without a URL) with `TARGET_URL`, `COMMIT_SHA`,
//! `IMAGE_DIGEST`, `SHIPGATE_EXECUTION_ID` and `SHIPGATE_ENVIRONMENT`; its result comes with the
//! "CodeBuild Build State Change" events of the smoke projects, which EventBridge delivers to
//! deploy-events (the function that starts smoke builds and may roll production back); it finds
//! the execution by the smoke build's id, linked while it runs (`Execution::awaited`).
//!
//! - Starting it is one `StartBuild` with an idempotency token of the execution, round and
//!   environment (`SmokeRun::token_for`), then a conditional write of the build id: a retried
//!   or resumed step (a Lambda killed between the two) gets the same build back, never a second
//!   one (within the 5 minutes AWS keeps a token; a later resume could start another build,
//!   whose events find no execution — the first build recorded is the one that counts).
//! - A resumed step of a smoke build that runs reads it (`BatchGetBuilds`): a state change that
//!   was lost, or that came before the build was linked, is applied then; a build that never
//!   reports fails the verification after its timeout. A failed production smoke test rolls
//!   production back, so only a function that may do that (deploy-events) decides it.

use tracing::{info, warn};

use super::events::EventOutcome;
use super::{approvals, AppError, Services, SYSTEM_ACTOR};
use crate::domain::aws_events::{BuildStateChange, BuildStatus};
use crate::domain::smoke_of_build;
use crate::domain::token::new_nonce;
use crate::domain::verify::{build_finished, SmokeRun};
use crate::domain::{ApprovalGrant, Environment, Event, Execution, Status, Transition};
use crate::ports::BuildRequest;

/// Is `build_id` a smoke test build (test or production) of this execution?
pub fn is_smoke_build(exec: &Execution, build_id: &str) -> bool {
    smoke_of_build(exec, build_id).is_some()
}

fn smoke_run(exec: &Execution, env: Environment) -> Option<&SmokeRun> {
    exec.verification(env).and_then(|v| v.smoke.as_ref())
}

fn verifying(env: Environment) -> Status {
    match env {
        Environment::Test => Status::VerifyingTest,
        Environment::Prod => Status::VerifyingProd,
    }
}

/// The environment variables of a smoke build (what its buildspec reads).
pub fn environment(exec: &Execution, run: &SmokeRun, env: Environment) -> Vec<(String, String)> {
    vec![
        ("SHIPGATE_ENVIRONMENT".into(), env.to_string()),
        ("TARGET_URL".into(), run.target_url.clone()),
        ("COMMIT_SHA".into(), exec.commit.sha.clone()),
        (
            "IMAGE_DIGEST".into(),
            exec.image
                .as_ref()
                .map(|i| i.digest.clone())
                .unwrap_or_default(),
        ),
        ("SHIPGATE_EXECUTION_ID".into(), exec.id.to_string()),
    ]
}

/// One step of the smoke phase of `exec` (in `VERIFYING_TEST` / `VERIFYING_PROD` with a smoke
/// test asked for): start the build if it is not recorded yet; otherwise (a resumed step)
/// reconcile it.
pub(crate) async fn step(
    svc: &Services,
    exec: &Execution,
    env: Environment,
) -> Result<Option<Transition>, AppError> {
    let Some(run) = smoke_run(exec, env).filter(|r| r.outcome.is_none()) else {
        return Ok(None);
    };
    if exec.status != verifying(env) {
        return Ok(None);
    }
    let Some(build_id) = run.build_id.clone() else {
        if !svc.can.start_smoke {
            info!(execution_id = %exec.id, "smoke test start left to a function allowed to start it");
            return Ok(None);
        }
        let request = BuildRequest {
            project: run.project.clone(),
            // the project's own source: the commit is in COMMIT_SHA
            source_version: String::new(),
            environment: environment(exec, run, env),
            idempotency_token: run.token.clone(),
        };
        let event = match svc.builds.start_build(&request).await {
            Ok(build_id) => {
                info!(execution_id = %exec.id, %build_id, project = %run.project, "smoke test build started");
                Event::SmokeStarted { build_id }
            }
            Err(e) if e.is_retryable() => {
                // stays owed: a resumed step starts it (the sweeper for test, deploy-events for
                // production; same token, so at most one build within its 5 minutes)
                warn!(execution_id = %exec.id, error = %e, "smoke test StartBuild failed; resumed later");
                return Ok(None);
            }
            Err(e) => {
                warn!(execution_id = %exec.id, error = %e, "smoke test could not be started");
                if !may_decide(svc, exec, env, "its smoke test could not be started") {
                    return Ok(None);
                }
                Event::VerifyFailed {
                    environment: env,
                    reason: format!(
                        "the smoke test {} could not be started: codebuild:StartBuild failed: {e}",
                        run.project
                    ),
                    result: None,
                }
            }
        };
        return svc.follow_up(exec, event).await;
    };
    // resumed: the build's state change may have been lost, or have come before it was linked
    match svc.builds.get_build(&build_id).await {
        Ok(o) if build_finished(&o.status) => {
            if o.status != "SUCCEEDED" && !may_decide(svc, exec, env, "its smoke test failed") {
                return Ok(None);
            }
            info!(execution_id = %exec.id, %build_id, status = %o.status, "smoke test build finished without an event reaching shipgate; applying it");
            let event = finished(svc, exec, &build_id, &o.status, o.reason, o.logs_link).await?;
            return svc.follow_up(exec, event).await;
        }
        Ok(_) => {}
        Err(e) => {
            warn!(execution_id = %exec.id, %build_id, error = %e, "smoke test build could not be read")
        }
    }
    if run.deadline().is_some_and(|d| svc.now() >= d) {
        if !may_decide(svc, exec, env, "its smoke test never reported") {
            return Ok(None);
        }
        warn!(execution_id = %exec.id, %build_id, "smoke test build never reported; failing the verification");
        let decided = svc.follow_up(exec, Event::SmokeTimedOut).await?;
        if decided.is_some() {
            // the verification failed (this write won): stop the build, so that it does not run
            // on (and bill) until the project's own timeout. Best effort: its late STOPPED event
            // changes nothing, and one that does not stop ends at that timeout.
            if let Err(e) = svc.builds.stop_build(&build_id).await {
                warn!(execution_id = %exec.id, %build_id, error = %e, "timed-out smoke test build could not be stopped");
            }
        }
        return Ok(decided);
    }
    Ok(None)
}

/// A failed production smoke test rolls production back: only a function that may do that
/// fails it (the others leave it, logged, to deploy-events' next resume).
fn may_decide(svc: &Services, exec: &Execution, env: Environment, what: &str) -> bool {
    if env == Environment::Prod && !svc.can.roll_back_prod {
        warn!(execution_id = %exec.id, "production verification failed ({what}), but this function may not roll production back; left to deploy-events");
        return false;
    }
    true
}

/// The event a finished smoke build makes (a passed test smoke build opens the approval round).
async fn finished(
    svc: &Services,
    exec: &Execution,
    build_id: &str,
    status: &str,
    reason: Option<String>,
    link: Option<String>,
) -> Result<Event, AppError> {
    let test = smoke_of_build(exec, build_id).is_some_and(|(env, _)| env == Environment::Test);
    let approval = if status == "SUCCEEDED" && test {
        let pipeline = svc.pipeline(&exec.pipeline).await?;
        Some(ApprovalGrant {
            nonce: new_nonce(),
            expires_at: approvals::expiry(svc.now(), &pipeline),
        })
    } else {
        None
    };
    Ok(Event::SmokeFinished {
        build_id: build_id.to_string(),
        status: status.to_string(),
        reason,
        link,
        approval,
    })
}

/// CodeBuild "Build State Change" of a smoke test project (deploy-events): the execution is
/// found by the build's id; a build that is not a smoke build of it is not this function's.
pub async fn on_smoke_build_event(
    svc: &Services,
    change: &BuildStateChange,
) -> Result<EventOutcome, AppError> {
    let Some(id) = svc.store.find_by_build(&change.build_id).await? else {
        info!(build_id = %change.build_id, "smoke build event of no execution; ignored");
        return Ok(EventOutcome::Ignored(format!(
            "build {} is not the smoke test build of an execution",
            change.build_id
        )));
    };
    let exec = svc.execution(&id).await?;
    if !is_smoke_build(&exec, &change.build_id) {
        info!(build_id = %change.build_id, execution_id = %exec.id, "not a smoke build; ignored");
        return Ok(EventOutcome::Ignored(format!(
            "build {} is not a smoke test build (execution {} is {})",
            change.build_id, exec.id, exec.status
        )));
    }
    on_build_state(svc, exec, change).await
}

/// CodeBuild "Build State Change" of an execution's smoke test build.
pub async fn on_build_state(
    svc: &Services,
    exec: Execution,
    change: &BuildStateChange,
) -> Result<EventOutcome, AppError> {
    if change.status == BuildStatus::InProgress {
        info!(execution_id = %exec.id, "smoke test build in progress");
        return Ok(EventOutcome::Ignored(format!(
            "smoke test build {} in progress",
            change.build_id
        )));
    }
    let event = finished(
        svc,
        &exec,
        &change.build_id,
        change.status.as_str(),
        change.reason.clone(),
        change.logs_link.clone(),
    )
    .await?;
    let applied = svc.apply_to(exec, SYSTEM_ACTOR, event).await?;
    super::events::finish(svc, applied).await
}
