//! Verified promotion: performing the `Verify` effect (HTTP check attempts against the deployed
//! service, the production bake watching CloudWatch alarms) in bounded steps, and the
//! automatic rollback of production when its verification fails.
//!
//! Bounded: one invocation spends at most [`STEP_BUDGET`] on a verification; every attempt is
//! stored with a conditional write numbered by attempt, so a killed handler, a concurrent
//! resumer or a repeated event never records (or acts on) an attempt twice. What one step did
//! not finish stays owed (`pending_effects`: `VERIFYING_*` / `BAKING_PROD` owe `Verify`) and is
//! resumed by the sweeper once the execution has not changed for `RESUME_AFTER` — never by a
//! Lambda sleeping for minutes.

use std::time::{Duration as StdDuration, Instant};

use tracing::{info, warn};

use super::{approvals, releases, AppError, Services, SYSTEM_ACTOR};
use crate::domain::token::new_nonce;
use crate::domain::verify::{alarm_problems, judge, Verification, MAX_BODY_BYTES};
use crate::domain::{
    ApprovalGrant, Environment, Event, Execution, PipelineDefinition, Status, Transition,
};

/// The most one invocation spends on one verification step (two steps may follow each other
/// in one invocation: the prod check, then the bake), well inside a function's timeout.
pub const STEP_BUDGET: StdDuration = StdDuration::from_secs(12);
/// How often alarms are read during a bake that one step watches.
pub const BAKE_POLL: StdDuration = StdDuration::from_secs(2);

/// The event a completed deployment of `env` becomes: `VerifyStarted` when the pipeline
/// verifies that environment (never for rollbacks), otherwise `None` (the caller sends
/// `DeployCompleted` as before).
pub fn start_event(
    pipeline: &PipelineDefinition,
    exec: &Execution,
    env: Environment,
    deployment_id: &str,
) -> Option<Event> {
    if exec.trigger.is_rollback() {
        return None;
    }
    let spec = pipeline.verify_of(env)?;
    Some(Event::VerifyStarted {
        deployment_id: deployment_id.to_string(),
        bake_seconds: spec.bake_seconds,
        alarms: spec.alarms.clone(),
    })
}

fn verifying(env: Environment) -> Status {
    match env {
        Environment::Test => Status::VerifyingTest,
        Environment::Prod => Status::VerifyingProd,
    }
}

/// One bounded step of an environment's verification. Answers the transition that ended the
/// step (its effects are the caller's to perform), or `None` when the step ran out of budget
/// (the work stays owed) or another worker moved the execution on.
pub(crate) async fn run(
    svc: &Services,
    exec: &Execution,
    pipeline: &PipelineDefinition,
    env: Environment,
) -> Result<Option<Transition>, AppError> {
    let started = Instant::now();
    let mut cur = exec.clone();
    loop {
        let Some(v) = cur.verification(env).cloned() else {
            return Ok(None);
        };
        let left = STEP_BUDGET.saturating_sub(started.elapsed());
        if cur.status == Status::VerifyingProd && env == Environment::Prod && v.green.is_some() {
            // blue/green: ECS's hook invocations drive the checks; what is owed here is only
            // learning how ECS's deployment ended, should its event be lost
            return green_reconcile(svc, &cur).await;
        }
        // the smoke test phase (the HTTP check passed): its build decides
        if cur.status == verifying(env) && v.smoke.is_some() {
            return super::smoke::step(svc, &cur, env).await;
        }
        if cur.status == verifying(env) {
            let mut spec = pipeline.verify_of(env).cloned().unwrap_or_default();
            if spec.url.is_none() {
                // a blue/green production checked after its traffic shift (the hook never
                // passed it): the test listener serves the new revision too by then
                spec.url = spec.test_listener_url.clone();
            }
            let Some(check) = spec.http() else {
                // nothing to ask (bake only, smoke only, or the definition no longer
                // verifies): passed
                let event = passed(svc, pipeline, env, v.attempts + 1, None);
                match svc.follow_up(&cur, event).await? {
                    // a smoke test was asked for: start it
                    Some(tr) if tr.execution.status == cur.status => {
                        cur = tr.execution;
                        continue;
                    }
                    other => return Ok(other),
                }
            };
            // the interval since the last attempt (also across invocations)
            if let Some(last) = &v.last {
                let due = last.at + chrono::Duration::seconds(i64::from(check.interval_seconds));
                let wait = (due - svc.now()).to_std().unwrap_or_default();
                let wait = wait.min(StdDuration::from_secs(u64::from(check.interval_seconds)));
                if wait + StdDuration::from_secs(u64::from(check.timeout_seconds)) > left {
                    info!(execution_id = %cur.id, environment = %env, "verification step ends; the next attempt is resumed later");
                    return Ok(None);
                }
                tokio::time::sleep(wait).await;
            }
            let left = STEP_BUDGET.saturating_sub(started.elapsed());
            let timeout = StdDuration::from_secs(u64::from(check.timeout_seconds));
            if timeout > left && v.attempts > 0 {
                return Ok(None);
            }
            let t0 = Instant::now();
            let answer = svc.probe.get(&check.url, timeout, MAX_BODY_BYTES).await;
            let elapsed_ms = t0.elapsed().as_millis() as u64;
            let error = answer.as_ref().err().map(|e| e.to_string());
            let result = judge(
                &check,
                match (&answer, &error) {
                    (Ok(a), _) => Ok(a),
                    (Err(_), Some(e)) => Err(e.as_str()),
                    (Err(_), None) => Err("no answer"),
                },
                &cur.commit.sha,
                &cur.image_tag(),
                svc.now(),
                elapsed_ms,
            );
            let attempt = v.attempts + 1;
            info!(execution_id = %cur.id, environment = %env, attempt, passed = result.passed, status = ?result.status, version_seen = ?result.version_seen, elapsed_ms, "verification check");
            let event = if result.passed {
                passed(svc, pipeline, env, attempt, Some(result))
            } else if attempt >= check.attempts && !may_fail(svc, &cur, env) {
                return Ok(None);
            } else if attempt >= check.attempts {
                Event::VerifyFailed {
                    environment: env,
                    reason: format!(
                        "{attempt} check attempt(s) failed; last: {}",
                        result.describe()
                    ),
                    result: Some(result),
                }
            } else {
                Event::CheckAttempted {
                    environment: env,
                    attempt,
                    result,
                }
            };
            match svc.follow_up(&cur, event).await? {
                Some(tr) if tr.execution.status == cur.status => {
                    cur = tr.execution;
                    continue;
                }
                other => return Ok(other),
            }
        }
        if cur.status == Status::BakingProd && env == Environment::Prod {
            match bake_step(svc, &cur, &v, left).await? {
                Some(event) => return svc.follow_up(&cur, event).await,
                None => return Ok(None),
            }
        }
        return Ok(None);
    }
}

/// A blue/green verification that stopped changing: ask ECS how the deployment ended (its
/// completion bakes or succeeds once the green revision passed, its failure ends in
/// `PROD_FAILED`); still under way: nothing to do.
async fn green_reconcile(svc: &Services, exec: &Execution) -> Result<Option<Transition>, AppError> {
    let Some(d) = exec.prod.as_ref() else {
        return Ok(None);
    };
    let target = crate::domain::ServiceTarget {
        cluster: d.cluster.clone(),
        service: d.service.clone(),
        container: String::new(),
    };
    let deployment_id = d.deployment_id.clone();
    let event = match svc
        .deployer
        .deployment_state(&target, &deployment_id)
        .await?
    {
        crate::ports::DeploymentObservation::Completed => Event::DeployCompleted {
            deployment_id,
            approval: None,
        },
        crate::ports::DeploymentObservation::Failed(reason) => Event::DeployFailed {
            deployment_id,
            reason,
        },
        _ => return Ok(None),
    };
    info!(execution_id = %exec.id, event = event.name(), "blue/green deployment reconciled with ECS");
    svc.follow_up(exec, event).await
}

/// Watch the bake within `left`: the event that ends it (an alarm, or the bake is over), or
/// `None` when this step ends first.
async fn bake_step(
    svc: &Services,
    exec: &Execution,
    v: &Verification,
    left: StdDuration,
) -> Result<Option<Event>, AppError> {
    let until = v.bake_until.unwrap_or_else(|| svc.now());
    // the end of the bake on this invocation's own clock, so a step never spins
    let end = Instant::now() + (until - svc.now()).to_std().unwrap_or_default();
    let started = Instant::now();
    loop {
        if !v.alarms.is_empty() {
            match svc.alarms.alarm_states(&v.alarms).await {
                Ok(states) => {
                    let problems = alarm_problems(&v.alarms, &states);
                    if !problems.is_empty() && !may_fail(svc, exec, Environment::Prod) {
                        return Ok(None);
                    }
                    if !problems.is_empty() {
                        warn!(execution_id = %exec.id, problems = ?problems, "bake failed");
                        return Ok(Some(Event::VerifyFailed {
                            environment: Environment::Prod,
                            reason: format!("during the bake: {}", problems.join("; ")),
                            result: None,
                        }));
                    }
                    info!(execution_id = %exec.id, alarms = v.alarms.len(), "bake: alarms OK");
                }
                // a transient read error fails nothing: the next step reads again
                Err(e) => {
                    warn!(execution_id = %exec.id, error = %e, "alarm states could not be read");
                    return Ok(None);
                }
            }
        }
        let remaining = end.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(Some(Event::BakePassed));
        }
        let nap = remaining.min(BAKE_POLL);
        if started.elapsed() + nap > left {
            // resumed later (sweeper), when the execution has not changed for a while
            return Ok(None);
        }
        tokio::time::sleep(nap).await;
    }
}

/// A failed production verification rolls back automatically: only a function that may do
/// that fails it (the sweeper leaves it, logged, to deploy-events or the operator).
fn may_fail(svc: &Services, exec: &Execution, env: Environment) -> bool {
    if env == Environment::Prod && !svc.can.roll_back_prod {
        warn!(execution_id = %exec.id, "production verification failed, but this function may not roll production back; left to deploy-events or `shipgate rollback`");
        return false;
    }
    true
}

fn passed(
    svc: &Services,
    pipeline: &PipelineDefinition,
    env: Environment,
    attempt: u32,
    result: Option<crate::domain::verify::CheckResult>,
) -> Event {
    // a verification with a smoke test goes on with it (not a blue/green production one:
    // the pipeline's validation refuses that combination)
    if let Some(smoke) = pipeline.verify_of(env).and_then(|v| v.smoke()) {
        return Event::SmokeRequested {
            environment: env,
            attempt,
            result,
            project: smoke.project,
            target_url: smoke.target_url,
            timeout_minutes: smoke.timeout_minutes,
        };
    }
    // a verified test deployment opens the approval round
    let approval = (env == Environment::Test).then(|| ApprovalGrant {
        nonce: new_nonce(),
        expires_at: approvals::expiry(svc.now(), pipeline),
    });
    Event::CheckPassed {
        environment: env,
        attempt,
        result,
        approval,
    }
}

/// Production failed its verification: roll it back to the last good release with the
/// semantics of `shipgate rollback` (claim in the environment's record, a rollback execution
/// that marks this one `ROLLED_BACK` once it completed), then record which rollback started.
/// Owed until recorded; a repeated call finds the rollback under way and records that one.
pub(crate) async fn auto_rollback(
    svc: &Services,
    exec: &Execution,
) -> Result<Option<Transition>, AppError> {
    if exec.status != Status::ProdFailed
        || exec
            .verify_prod
            .as_ref()
            .is_none_or(|v| !v.failed || v.rollback.is_some() || v.rolled_back_by_ecs())
    {
        return Ok(None);
    }
    // the rollback's deployment points the prod service back at a registered revision
    // (ecs:UpdateService only), which `roll_back_prod` grants
    let can = crate::app::Capabilities {
        deploy_prod: true,
        ..svc.can
    };
    let elevated = svc.clone().with_capabilities(can);
    // boxed: the rollback performs effects, which may come back here
    let by = match Box::pin(releases::rollback(
        &elevated,
        &exec.pipeline,
        Environment::Prod,
        None,
        SYSTEM_ACTOR,
    ))
    .await
    {
        Ok(rollback) => {
            info!(execution_id = %exec.id, rollback = %rollback.id, "automatic rollback started");
            rollback.id
        }
        Err(AppError::Conflict(why)) => {
            // a rollback already under way (a previous attempt of this effect): record it
            match svc
                .store
                .get_revisions(&exec.pipeline, Environment::Prod)
                .await?
                .and_then(|r| r.value.rollback)
            {
                Some(claim) => claim.execution_id,
                None => {
                    warn!(execution_id = %exec.id, %why, "automatic rollback not possible");
                    return Ok(None);
                }
            }
        }
        Err(e) => return Err(e),
    };
    svc.follow_up(exec, Event::AutoRollbackStarted { by }).await
}

/// What was verified, for the approval message and page: lines of `label: value`.
pub fn verified_lines(exec: &Execution) -> Vec<(String, String)> {
    let Some(v) = exec.verify_test.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(last) = v.last.as_ref().filter(|l| l.passed) {
        out.push(("Verified".into(), format!("GET {}", last.url)));
        out.push((
            "Answer".into(),
            format!(
                "{} with version {}",
                last.status.map(|s| s.to_string()).unwrap_or_default(),
                last.version_seen.as_deref().unwrap_or("-")
            ),
        ));
    }
    if let Some(smoke) = v.smoke.as_ref().filter(|s| s.passed()) {
        out.push(("Smoke test".into(), smoke.describe()));
        if let Some(link) = &smoke.logs_link {
            out.push(("Smoke test logs".into(), link.clone()));
        }
    }
    if out.is_empty() {
        return out;
    }
    out.push((
        "Took".into(),
        format!(
            "{} s, {} attempt{}",
            v.duration_seconds().unwrap_or(0),
            v.attempts,
            if v.attempts == 1 { "" } else { "s" }
        ),
    ));
    out
}
