//! What runs where, and moving it: the revision history of each environment, the rule that
//! production only moves forward in push order (except by rollback), and rollback.
//!
//! "What an environment was last asked to run" is derived from the executions (whose deployment
//! there started last, including failed and in-flight ones), so recording it costs no write.

use chrono::{DateTime, Utc};
use tracing::{info, instrument, warn};

use super::{AppError, Services, MAX_CONFLICT_RETRIES, RESUME_AFTER};
use crate::domain::{
    pending_effects, DeployedRevision, Effect, Environment, EnvironmentRevisions, Event, Execution,
    ExecutionId, FailedDeployment, PipelineDefinition, RollbackClaim, Status, Transition, Trigger,
};

/// Executions in flight looked at per status; more and shipgate refuses to guess.
const IN_FLIGHT_LIMIT: usize = 1_000;

/// Read-decide-write the environment's record with a conditional put; `change` answers whether
/// it changed anything (nothing to write otherwise).
async fn update(
    svc: &Services,
    pipeline: &str,
    env: Environment,
    change: impl Fn(&mut EnvironmentRevisions) -> bool,
) -> Result<(), AppError> {
    for _ in 0..MAX_CONFLICT_RETRIES {
        let (mut revisions, version) = read(svc, pipeline, env).await?;
        if !change(&mut revisions) {
            return Ok(());
        }
        if svc
            .store
            .put_revisions(pipeline, env, &revisions, version)
            .await?
        {
            return Ok(());
        }
    }
    Err(AppError::Conflict(format!(
        "the revision record of {pipeline}/{env} kept changing; gave up after {MAX_CONFLICT_RETRIES} attempts"
    )))
}

/// Record an execution's completed deployment to `env` in the environment's history (a
/// rollback also withdraws the release it moved away from). Idempotent: a repeated or late
/// record changes nothing (see [`EnvironmentRevisions::record`]).
pub(crate) async fn record_revision(
    svc: &Services,
    exec: &Execution,
    env: Environment,
) -> Result<(), AppError> {
    let Some(revision) = DeployedRevision::completed(exec, env, svc.now()) else {
        return Ok(());
    };
    let replaces = exec.rollback_replaces().cloned();
    update(svc, &exec.pipeline, env, |r| {
        let recorded = r.record(revision.clone());
        let withdrawn = replaces.as_ref().is_some_and(|o| r.withdraw(o));
        recorded || withdrawn
    })
    .await?;
    info!(execution_id = %exec.id, environment = %env, digest = %revision.image.digest, "revision recorded");
    Ok(())
}

/// Remember that the environment was asked to run this execution's release and the deployment
/// failed, so a rollback after it restores the last good release.
pub(crate) async fn record_failure(
    svc: &Services,
    exec: &Execution,
    env: Environment,
) -> Result<(), AppError> {
    let Some(deployment) = exec.deployment(env) else {
        return Ok(());
    };
    let failure = FailedDeployment {
        execution_id: exec.id.clone(),
        origin: origin(exec),
        started_at: deployment.started_at,
        failed_at: svc.now(),
    };
    update(svc, &exec.pipeline, env, |r| {
        r.record_failure(failure.clone())
    })
    .await
}

/// A completed rollback: the release it moved production away from becomes `ROLLED_BACK`
/// (and its notice is sent).
pub(crate) async fn mark_rolled_back(
    svc: &Services,
    exec: &Execution,
    pipeline: &PipelineDefinition,
) -> Result<(), AppError> {
    let Some(from) = exec.rollback_replaces() else {
        return Ok(());
    };
    let Some(replaced) = svc.store.get_execution(from).await? else {
        return Ok(());
    };
    // stored without performing: its only effect is the notice, sent here (performing would
    // nest this effect inside itself)
    match svc
        .follow_up(
            &replaced,
            Event::RolledBack {
                by: exec.id.clone(),
            },
        )
        .await?
    {
        Some(tr) => {
            info!(execution_id = %from, by = %exec.id, "marked rolled back");
            if tr.effects.contains(&Effect::Notify) {
                svc.notify(&tr.execution, pipeline).await;
            }
        }
        None => {
            info!(execution_id = %from, "release not marked rolled back (its state does not allow it)")
        }
    }
    Ok(())
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

fn origin(e: &Execution) -> ExecutionId {
    match &e.trigger {
        Trigger::Rollback { restores, .. } => restores.clone(),
        _ => e.id.clone(),
    }
}

/// Executions of `pipeline` whose deployment to `env` is under way or owed (approved, or built,
/// and about to start), with when it was asked for. Read from the index of active executions,
/// so it does not grow with the pipeline's history.
async fn in_flight(
    svc: &Services,
    pipeline: &str,
    env: Environment,
) -> Result<Vec<(Execution, DateTime<Utc>)>, AppError> {
    let statuses: &[Status] = match env {
        Environment::Prod => &[Status::DeployingProd],
        Environment::Test => &[Status::Built, Status::DeployingTest],
    };
    let mut out = Vec::new();
    for status in statuses {
        let active = svc.store.list_by_status(*status, IN_FLIGHT_LIMIT).await?;
        if active.len() >= IN_FLIGHT_LIMIT {
            return Err(AppError::Conflict(format!(
                "{IN_FLIGHT_LIMIT} or more executions are {status}; try again when fewer are in flight"
            )));
        }
        for e in active.into_iter().filter(|e| e.pipeline == pipeline) {
            let at = e
                .deployment(env)
                .map(|d| d.started_at)
                .unwrap_or(e.updated_at);
            out.push((e, at));
        }
    }
    Ok(out)
}

/// The release an environment was last asked to run: the newest of what runs, the last failed
/// deployment there, and the deployments under way or owed.
async fn last_requested(
    svc: &Services,
    pipeline: &str,
    env: Environment,
    revisions: &EnvironmentRevisions,
) -> Result<Option<ExecutionId>, AppError> {
    let mut best = revisions.last_requested();
    for (e, at) in in_flight(svc, pipeline, env).await? {
        if best.as_ref().is_none_or(|(_, b)| at > *b) {
            best = Some((origin(&e), at));
        }
    }
    Ok(best.map(|(id, _)| id))
}

/// Why `exec` may not go to production now, if it may not: production moves forward in push
/// order, so not while a rollback is under way, not behind a newer release that runs or is
/// being deployed there. Going back deliberately is `rollback`.
async fn prod_blocker(
    svc: &Services,
    exec: &Execution,
) -> Result<Option<(ExecutionId, String)>, AppError> {
    if exec.trigger.is_rollback() {
        return Ok(None);
    }
    let (revisions, _) = read(svc, &exec.pipeline, Environment::Prod).await?;
    if let Some(claim) = &revisions.rollback {
        if under_way(svc, claim).await? {
            return Ok(Some((
                claim.execution_id.clone(),
                format!(
                    "a rollback of production is under way (execution {}); approve again once it finished",
                    claim.execution_id
                ),
            )));
        }
    }
    let advice = if revisions.history.iter().any(|r| r.origin() == &exec.id) {
        format!(
            "to go back to it deliberately: shipgate rollback {} --env prod --to {}",
            exec.pipeline, exec.id
        )
    } else {
        format!(
            "to ship that commit anyway, release it again (a new execution): shipgate release {} --commit {}",
            exec.pipeline, exec.commit.sha
        )
    };
    if let Some(current) = revisions.current() {
        if exec.id < *current.origin() {
            return Ok(Some((
                current.origin().clone(),
                format!(
                    "production of {} runs commit {} (execution {}), a newer release than {} (commit {}); releases reach production in push order, so this one can no longer go there; {advice}",
                    exec.pipeline,
                    current.commit.short_sha(),
                    current.origin(),
                    exec.id,
                    exec.commit.short_sha(),
                ),
            )));
        }
    }
    let newer = in_flight(svc, &exec.pipeline, Environment::Prod)
        .await?
        .into_iter()
        .map(|(e, _)| e)
        .filter(|e| e.id > exec.id && !e.trigger.is_rollback())
        .max_by(|a, b| a.id.cmp(&b.id));
    Ok(newer.map(|newer| {
        (
            newer.id.clone(),
            format!(
                "newer execution {} (commit {}) is being deployed to production; releases reach production in push order, so {} can no longer go there; {advice}",
                newer.id,
                newer.commit.short_sha(),
                exec.id
            ),
        )
    }))
}

/// Refuse an approval or retry that would move production out of push order.
pub(crate) async fn check_push_order(svc: &Services, exec: &Execution) -> Result<(), AppError> {
    match prod_blocker(svc, exec).await? {
        Some((_, why)) => Err(AppError::Conflict(why)),
        None => Ok(()),
    }
}

/// Checked again right before a production deployment starts (an approval of another
/// execution or a rollback may have come in between): the execution that must give way, and
/// to whom.
pub(crate) async fn gives_way_to(
    svc: &Services,
    exec: &Execution,
) -> Result<Option<ExecutionId>, AppError> {
    Ok(prod_blocker(svc, exec).await?.map(|(by, why)| {
        warn!(execution_id = %exec.id, by = %by, %why, "production deployment not started");
        by
    }))
}

/// The environment's record as `status` shows it: a rollback claim only while that rollback
/// is under way.
pub(crate) async fn shown(
    svc: &Services,
    pipeline: &str,
    env: Environment,
) -> Result<Option<EnvironmentRevisions>, AppError> {
    let Some(mut revisions) = svc
        .store
        .get_revisions(pipeline, env)
        .await?
        .map(|v| v.value)
    else {
        return Ok(None);
    };
    if let Some(claim) = &revisions.rollback {
        if !under_way(svc, claim).await? {
            revisions.rollback = None;
        }
    }
    Ok(Some(revisions))
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
    let def = svc.pipeline(pipeline).await?;
    // as before every deploy (Services::deploy): never with test and prod the same service
    def.check_distinct_targets()
        .map_err(|r| AppError::Invalid(format!("refused to roll back: prod {r}")))?;
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
                let runs = revisions.current().map(|c| c.origin());
                if found.origin() == &from && runs == Some(&from) {
                    return Err(AppError::Conflict(format!(
                        "{env} of {pipeline} runs that release already (execution {from}); nothing to roll back"
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
        // the release moved away from: what was last asked for — or, when that is the release
        // restored again (a failed rollback tried once more), what runs
        let replaces = if &from == target.origin() {
            revisions.current().map(|c| c.origin().clone())
        } else {
            Some(from.clone())
        }
        .filter(|r| r != target.origin());
        let exec = Execution::rollback(id, pipeline, env, &target, replaces, now, actor);
        svc.store.create_execution(&exec, None).await?;
        info!(execution_id = %exec.id, environment = %env, restores = %target.origin(), from = %from, "rollback started");
        let effects = pending_effects(&exec);
        // the release moved away from is marked ROLLED_BACK once this rollback completed
        let done = svc
            .perform(Transition {
                execution: exec,
                effects,
            })
            .await?;
        return Ok(done);
    }
    Err(AppError::Conflict(format!(
        "the revision record of {pipeline}/{env} kept changing; try the rollback again"
    )))
}
