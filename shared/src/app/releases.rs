//! What runs where, and moving it: the revision history of each environment, the rule that
//! production only moves forward in push order (except by rollback), and rollback.
//!
//! "What an environment was last asked to run" is derived from the executions (whose deployment
//! there started last, including failed and in-flight ones), so recording it costs no write.

use chrono::{DateTime, Utc};
use tracing::{info, instrument, warn};

use super::{AppError, Applied, Services, MAX_CONFLICT_RETRIES, RESUME_AFTER};
use crate::domain::{
    pending_effects, DeployedRevision, Environment, EnvironmentRevisions, Event, Execution,
    ExecutionId, RollbackClaim, Status, Transition, Trigger,
};

/// Executions looked at to find what an environment was last asked to run.
const RECENT_EXECUTIONS: usize = 100;

/// Record an execution's completed deployment to `env` in the environment's history.
/// Idempotent: a repeated or late record changes nothing (see [`EnvironmentRevisions::record`]).
pub(crate) async fn record_revision(
    svc: &Services,
    exec: &Execution,
    env: Environment,
) -> Result<(), AppError> {
    let Some(revision) = DeployedRevision::completed(exec, env, svc.now()) else {
        return Ok(());
    };
    for _ in 0..MAX_CONFLICT_RETRIES {
        let (mut revisions, version) = read(svc, &exec.pipeline, env).await?;
        if !revisions.record(revision.clone()) {
            return Ok(());
        }
        if svc
            .store
            .put_revisions(&exec.pipeline, env, &revisions, version)
            .await?
        {
            info!(execution_id = %exec.id, environment = %env, digest = %revision.image.digest, "revision recorded");
            return Ok(());
        }
    }
    Err(AppError::Conflict(format!(
        "the revision record of {}/{env} kept changing; gave up after {MAX_CONFLICT_RETRIES} attempts",
        exec.pipeline
    )))
}

async fn read(
    svc: &Services,
    pipeline: &str,
    env: Environment,
) -> Result<(EnvironmentRevisions, Option<u64>), AppError> {
    Ok(match svc.store.get_revisions(pipeline, env).await? {
        Some(v) => (v.value, Some(v.version)),
        None => (EnvironmentRevisions::default(), None),
    })
}

/// The release an environment was last asked to run: the origin of the execution whose
/// deployment there started last (failed, in flight, or approved and about to start), or what
/// the history says runs when no recent execution deployed there.
async fn last_requested(
    svc: &Services,
    pipeline: &str,
    env: Environment,
    revisions: &EnvironmentRevisions,
) -> Result<Option<ExecutionId>, AppError> {
    let mut best: Option<(DateTime<Utc>, ExecutionId)> = revisions
        .current()
        .map(|r| (r.started(), r.origin().clone()));
    for e in svc
        .store
        .list_executions(pipeline, RECENT_EXECUTIONS)
        .await?
    {
        let owes_deployment = match env {
            Environment::Prod => e.status == Status::DeployingProd,
            Environment::Test => e.status == Status::Built,
        };
        let asked_at = match e.deployment(env) {
            Some(d) => d.started_at,
            None if owes_deployment => e.updated_at,
            None => continue,
        };
        if best.as_ref().is_none_or(|(at, _)| asked_at > *at) {
            best = Some((asked_at, origin(&e)));
        }
    }
    Ok(best.map(|(_, id)| id))
}

fn origin(e: &Execution) -> ExecutionId {
    match &e.trigger {
        Trigger::Rollback { restores, .. } => restores.clone(),
        _ => e.id.clone(),
    }
}

/// Production moves forward in push order: an approval (or a retry) that would put an older
/// release on production than the one it runs, or than one already on its way there, is refused.
/// Going back deliberately is `rollback`.
pub(crate) async fn check_push_order(svc: &Services, exec: &Execution) -> Result<(), AppError> {
    if exec.trigger.is_rollback() {
        return Ok(());
    }
    let (revisions, _) = read(svc, &exec.pipeline, Environment::Prod).await?;
    if let Some(current) = revisions.current() {
        if exec.id < *current.origin() {
            return Err(AppError::Conflict(format!(
                "production of {} runs commit {} (execution {}), a newer release than {} (commit {}); releases reach production in push order, so this one can no longer go there. To go back deliberately: shipgate rollback {} --env prod --to {}",
                exec.pipeline,
                current.commit.short_sha(),
                current.origin(),
                exec.id,
                exec.commit.short_sha(),
                exec.pipeline,
                exec.id
            )));
        }
    }
    let newer = svc
        .store
        .list_executions(&exec.pipeline, RECENT_EXECUTIONS)
        .await?
        .into_iter()
        .find(|e| e.id > exec.id && e.status == Status::DeployingProd && !e.trigger.is_rollback());
    if let Some(newer) = newer {
        return Err(AppError::Conflict(format!(
            "newer execution {} (commit {}) is being deployed to production; releases reach production in push order, so {} can no longer go there",
            newer.id,
            newer.commit.short_sha(),
            exec.id
        )));
    }
    Ok(())
}

/// Is the rollback that claimed the environment still under way?
async fn under_way(svc: &Services, claim: &RollbackClaim) -> Result<bool, AppError> {
    Ok(match svc.store.get_execution(&claim.execution_id).await? {
        Some(e) => e.status.is_active(),
        // claimed but not yet stored: under way unless its worker died long ago
        None => svc.now() - claim.at < RESUME_AFTER,
    })
}

/// Point an environment back at an earlier release: by default the newest release older than
/// the one it was last asked to run (after a failed deployment that is the last good one;
/// repeated rollbacks walk further back), or the one `to` names (an execution id or a commit
/// SHA that once ran there successfully). Recorded as its own execution; concurrent rollbacks
/// of one environment act once, the others get a conflict.
#[instrument(skip(svc))]
pub async fn rollback(
    svc: &Services,
    pipeline: &str,
    env: Environment,
    to: Option<&str>,
    actor: &str,
) -> Result<Execution, AppError> {
    svc.pipeline(pipeline).await?;
    let now = svc.now();
    let id = ExecutionId::generate(now);
    for _ in 0..MAX_CONFLICT_RETRIES {
        let (mut revisions, version) = read(svc, pipeline, env).await?;
        if revisions.current().is_none() {
            return Err(AppError::Conflict(format!(
                "nothing has been deployed to {env} of {pipeline} by shipgate yet"
            )));
        }
        if let Some(claim) = &revisions.rollback {
            if under_way(svc, claim).await? {
                return Err(AppError::Conflict(format!(
                    "a rollback of {env} of {pipeline} is already under way (execution {}, started {}); follow it with `shipgate show {}`",
                    claim.execution_id,
                    claim.at.format("%Y-%m-%d %H:%M:%S UTC"),
                    claim.execution_id
                )));
            }
        }
        let from = last_requested(svc, pipeline, env, &revisions)
            .await?
            .ok_or_else(|| {
                AppError::Conflict(format!("nothing has been deployed to {env} of {pipeline}"))
            })?;
        let target = match to {
            Some(selector) => {
                let found = revisions
                    .find(selector)
                    .map_err(|e| AppError::Invalid(format!("rollback --to {selector}: {e}")))?;
                if found.origin() == &from {
                    return Err(AppError::Conflict(format!(
                        "{env} of {pipeline} was last asked to run that release already (execution {from}); nothing to roll back"
                    )));
                }
                found.clone()
            }
            None => revisions.rollback_target(&from).cloned().ok_or_else(|| {
                AppError::Conflict(format!(
                    "{env} of {pipeline} has no earlier release to roll back to (it was last asked to run execution {from}; shipgate keeps the last {} revisions)",
                    crate::domain::KEPT_REVISIONS
                ))
            })?,
        };
        revisions.rollback = Some(RollbackClaim {
            execution_id: id.clone(),
            at: now,
        });
        if !svc
            .store
            .put_revisions(pipeline, env, &revisions, version)
            .await?
        {
            // another writer (a record or a concurrent rollback) got there first: re-decide
            continue;
        }
        let exec = Execution::rollback(id, pipeline, env, &target, now, actor);
        svc.store.create_execution(&exec, None).await?;
        info!(execution_id = %exec.id, environment = %env, restores = %target.origin(), from = %from, "rollback started");
        let effects = pending_effects(&exec);
        let done = svc
            .perform(Transition {
                execution: exec,
                effects,
            })
            .await?;
        if env == Environment::Prod && done.prod.is_some() {
            mark_rolled_back(svc, &from, &done.id, actor).await;
        }
        return Ok(done);
    }
    Err(AppError::Conflict(format!(
        "the revision record of {pipeline}/{env} kept changing; try the rollback again"
    )))
}

/// The release production is moved away from becomes `ROLLED_BACK` (if it finished there).
async fn mark_rolled_back(svc: &Services, from: &ExecutionId, by: &ExecutionId, actor: &str) {
    let by = by.clone();
    match svc
        .apply(from, actor, move |_| Event::RolledBack { by: by.clone() })
        .await
    {
        Ok(Applied::Done(_)) => info!(execution_id = %from, "marked rolled back"),
        Ok(Applied::Ignored { .. }) => {}
        Err(e) => warn!(execution_id = %from, error = %e, "could not mark the release rolled back"),
    }
}
