//! ECS native blue/green: shipgate as the Lambda lifecycle hook at `POST_TEST_TRAFFIC_SHIFT`.
//!
//! A production service deployed with `deploymentConfiguration.strategy = BLUE_GREEN` is
//! deployed by the same `UpdateService` as any other; ECS starts the green revision, moves the
//! load balancer's *test* listener to it and invokes the hook. shipgate then runs the
//! pipeline's production check (`[verify.prod]`, with `test_listener_url` as its URL) against
//! the green revision and answers:
//!
//! - `IN_PROGRESS` with `callBackDelay` while attempts remain (each attempt one conditional
//!   write numbered by attempt, at most [`ATTEMPTS_PER_INVOCATION`] and [`HOOK_BUDGET`] per
//!   invocation);
//! - `FAILED` when the check failed: ECS rolls back to the blue revision, which never stopped
//!   taking production traffic; the execution is `PROD_FAILED` with the cause (no automatic
//!   rollback of shipgate's own: ECS's is the rollback);
//! - `SUCCEEDED` when it passed: ECS shifts production traffic; its "deployment completed"
//!   event then bakes (alarms) or ends in `SUCCEEDED`.
//!
//! Which execution: among the pipelines whose production target is the hook's service, the
//! execution whose verification already names this green revision (a repeated or later
//! invocation, in whatever state it is now), else the newest production deployment under way
//! (`DEPLOYING_PROD`; ECS runs one deployment of a service at a time, and a newer
//! `UpdateService` replaces an older one). A deployment shipgate did not start (unknown
//! service, an operator's own `UpdateService`) and rollback executions are answered
//! `SUCCEEDED` and logged: shipgate only gates what it can verify. A transient failure
//! (throttling, a lost race) answers `IN_PROGRESS` (ask again soon) — a function error would
//! make ECS roll back a healthy release.

use std::time::{Duration as StdDuration, Instant};

use tracing::{info, instrument, warn};

use super::{AppError, Applied, Services, SYSTEM_ACTOR};
use crate::domain::ecs_hook::{
    names_service, HookAnswer, LifecycleHook, LifecycleStage, RETRY_CALLBACK_DELAY,
};
use crate::domain::verify::{judge, HttpCheck, MAX_BODY_BYTES};
use crate::domain::{Environment, Event, Execution, ExecutionId, PipelineDefinition, Status};

/// The most one hook invocation spends checking (ECS waits for the answer; the function's
/// timeout is 60 s).
pub const HOOK_BUDGET: StdDuration = StdDuration::from_secs(12);
/// The most check attempts one invocation makes; the rest follow ECS's call back.
pub const ATTEMPTS_PER_INVOCATION: u32 = 3;
/// How many of a pipeline's newest executions are searched for the hook's deployment.
pub const RECENT_EXECUTIONS: usize = 20;

/// What the hook is about.
enum Found {
    /// No shipgate execution deploys to this service.
    Nothing,
    /// An execution is approved for this service but its deployment is not recorded yet.
    NotRecorded(ExecutionId),
    Execution(Box<Execution>, Box<PipelineDefinition>),
}

/// Answer one lifecycle hook invocation.
#[instrument(skip_all, fields(stage = hook.stage.as_str(), service = %hook.service, target_revision = %hook.target_revision))]
pub async fn on_lifecycle_hook(
    svc: &Services,
    hook: &LifecycleHook,
) -> Result<HookAnswer, AppError> {
    if hook.stage != LifecycleStage::PostTestTrafficShift {
        info!("shipgate verifies at POST_TEST_TRAFFIC_SHIFT only; this stage continues");
        return Ok(HookAnswer::succeeded());
    }
    match find(svc, hook).await? {
        Found::Nothing => {
            warn!("no shipgate execution is deploying to this service; not gated");
            Ok(HookAnswer::succeeded())
        }
        Found::NotRecorded(id) => {
            info!(execution_id = %id, "the production deployment of this service is not recorded yet; ask again");
            Ok(HookAnswer::in_progress(i64::from(RETRY_CALLBACK_DELAY)))
        }
        Found::Execution(exec, pipeline) => drive(svc, *exec, &pipeline, hook).await,
    }
}

async fn find(svc: &Services, hook: &LifecycleHook) -> Result<Found, AppError> {
    let pipelines = svc.store.list_pipelines().await?;
    let mut deploying: Vec<(Execution, PipelineDefinition)> = Vec::new();
    let mut unrecorded: Option<ExecutionId> = None;
    for stored in pipelines {
        let def = stored.definition;
        let target = def.target(Environment::Prod);
        if !names_service(&target.cluster, &target.service, hook) {
            continue;
        }
        svc.remember_pipeline(&def);
        for exec in svc
            .store
            .list_executions(&def.name, RECENT_EXECUTIONS)
            .await?
        {
            let green = exec.verify_prod.as_ref().and_then(|v| v.green.as_deref());
            if green == Some(hook.target_revision.as_str()) {
                return Ok(Found::Execution(Box::new(exec), Box::new(def)));
            }
            if exec.status != Status::DeployingProd {
                continue;
            }
            match &exec.prod {
                Some(d) if names_service(&d.cluster, &d.service, hook) => {
                    deploying.push((exec, def.clone()))
                }
                Some(_) => {}
                None => unrecorded = Some(exec.id.clone()),
            }
        }
    }
    let newest = deploying
        .into_iter()
        .max_by_key(|(e, _)| e.prod.as_ref().map(|d| d.started_at));
    Ok(match (newest, unrecorded) {
        (Some((e, p)), _) => Found::Execution(Box::new(e), Box::new(p)),
        (None, Some(e)) => Found::NotRecorded(e),
        (None, None) => Found::Nothing,
    })
}

/// The answer for an execution whose verification of this green revision is recorded.
fn settled(exec: &Execution) -> Option<HookAnswer> {
    let v = exec.verify_prod.as_ref()?;
    if v.failed || exec.status == Status::ProdFailed {
        return Some(HookAnswer::failed());
    }
    if v.passed_at.is_some() {
        return Some(HookAnswer::succeeded());
    }
    if exec.status != Status::VerifyingProd {
        // superseded, or otherwise ended without a pass: never let it take traffic
        return Some(HookAnswer::failed());
    }
    None
}

async fn drive(
    svc: &Services,
    exec: Execution,
    pipeline: &PipelineDefinition,
    hook: &LifecycleHook,
) -> Result<HookAnswer, AppError> {
    if exec.trigger.is_rollback() {
        info!(execution_id = %exec.id, "a rollback deployment is not verified; continuing");
        return Ok(HookAnswer::succeeded());
    }
    let mut cur = exec;
    if cur.status == Status::DeployingProd {
        let spec = pipeline.verify_of(Environment::Prod);
        let Some(check) = spec.and_then(|s| s.green_check()) else {
            info!(execution_id = %cur.id, pipeline = %pipeline.name, "the pipeline sets no [verify.prod] test_listener_url: the green revision is not checked");
            return Ok(HookAnswer::succeeded());
        };
        let Some(deployment) = cur.prod.clone() else {
            return Ok(HookAnswer::in_progress(i64::from(RETRY_CALLBACK_DELAY)));
        };
        let spec = spec.cloned().unwrap_or_default();
        let event = Event::GreenVerifyStarted {
            deployment_id: deployment.deployment_id,
            target_revision: hook.target_revision.clone(),
            bake_seconds: spec.bake_seconds,
            alarms: spec.alarms,
        };
        cur = match svc.apply_to(cur, SYSTEM_ACTOR, event).await? {
            Applied::Done(e) => e,
            Applied::Ignored { current, reason } => {
                let ours = current
                    .verify_prod
                    .as_ref()
                    .is_some_and(|v| v.green.as_deref() == Some(hook.target_revision.as_str()));
                if !ours {
                    warn!(execution_id = %current.id, %reason, "the green verification could not start; ask again");
                    return Ok(HookAnswer::in_progress(i64::from(RETRY_CALLBACK_DELAY)));
                }
                current
            }
        };
        info!(execution_id = %cur.id, url = %check.url, "verifying the green revision through the test listener");
    }
    attempts(svc, cur, pipeline).await
}

/// Check attempts within this invocation's budget.
async fn attempts(
    svc: &Services,
    mut cur: Execution,
    pipeline: &PipelineDefinition,
) -> Result<HookAnswer, AppError> {
    let started = Instant::now();
    let Some(check) = pipeline
        .verify_of(Environment::Prod)
        .and_then(|s| s.green_check())
    else {
        // the definition no longer checks the green revision: the verification cannot go on
        return fail(
            svc,
            cur,
            "the pipeline no longer sets [verify.prod] test_listener_url".into(),
        )
        .await;
    };
    for _ in 0..ATTEMPTS_PER_INVOCATION {
        if let Some(answer) = settled(&cur) {
            return Ok(answer);
        }
        let Some(v) = cur.verify_prod.clone() else {
            return Ok(HookAnswer::in_progress(i64::from(RETRY_CALLBACK_DELAY)));
        };
        let timeout = StdDuration::from_secs(u64::from(check.timeout_seconds));
        if let Some(last) = &v.last {
            let due = last.at + chrono::Duration::seconds(i64::from(check.interval_seconds));
            let wait = (due - svc.now()).to_std().unwrap_or_default();
            if started.elapsed() + wait + timeout > HOOK_BUDGET {
                return Ok(HookAnswer::in_progress(wait.as_secs() as i64 + 1));
            }
            tokio::time::sleep(wait).await;
        }
        let event = attempt(svc, &cur, &check, v.attempts + 1).await;
        cur = match svc.apply_to(cur, SYSTEM_ACTOR, event).await? {
            Applied::Done(e) => e,
            // a concurrent invocation recorded this attempt: go on from what it stored
            Applied::Ignored { current, .. } => current,
        };
    }
    Ok(settled(&cur).unwrap_or_else(|| HookAnswer::in_progress(i64::from(check.interval_seconds))))
}

/// One attempt against the green revision, as the event that records it.
async fn attempt(svc: &Services, cur: &Execution, check: &HttpCheck, attempt: u32) -> Event {
    let timeout = StdDuration::from_secs(u64::from(check.timeout_seconds));
    let t0 = Instant::now();
    let answer = svc.probe.get(&check.url, timeout, MAX_BODY_BYTES).await;
    let elapsed_ms = t0.elapsed().as_millis() as u64;
    let error = answer.as_ref().err().map(|e| e.to_string());
    let result = judge(
        check,
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
    info!(execution_id = %cur.id, attempt, passed = result.passed, status = ?result.status, version_seen = ?result.version_seen, elapsed_ms, "green revision check");
    if result.passed {
        Event::CheckPassed {
            environment: Environment::Prod,
            attempt,
            result: Some(result),
            approval: None,
        }
    } else if attempt >= check.attempts {
        Event::VerifyFailed {
            environment: Environment::Prod,
            reason: format!(
                "{attempt} check attempt(s) of the green revision through the test listener failed; last: {}",
                result.describe()
            ),
            result: Some(result),
        }
    } else {
        Event::CheckAttempted {
            environment: Environment::Prod,
            attempt,
            result,
        }
    }
}

async fn fail(svc: &Services, cur: Execution, reason: String) -> Result<HookAnswer, AppError> {
    let event = Event::VerifyFailed {
        environment: Environment::Prod,
        reason,
        result: None,
    };
    let cur = match svc.apply_to(cur, SYSTEM_ACTOR, event).await? {
        Applied::Done(e) => e,
        Applied::Ignored { current, .. } => current,
    };
    Ok(settled(&cur).unwrap_or_else(|| HookAnswer::in_progress(i64::from(RETRY_CALLBACK_DELAY))))
}

/// The hook's answer when the use case failed: a transient failure asks ECS to call again
/// (an error would roll back a release that may be healthy); anything else is an error.
pub fn answer_error(e: AppError) -> Result<HookAnswer, AppError> {
    if e.is_retryable()
        || matches!(
            e,
            AppError::Conflict(_) | AppError::Store(crate::ports::StoreError::Conflict(_))
        )
    {
        warn!(error = %e, "lifecycle hook: transient failure; ECS asks again");
        return Ok(HookAnswer::in_progress(i64::from(RETRY_CALLBACK_DELAY)));
    }
    Err(e)
}
