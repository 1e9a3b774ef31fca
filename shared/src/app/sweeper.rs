//! The sweeper (every 5 minutes): expire approvals, reconcile executions whose AWS events were
//! lost (CodeBuild and CodeCommit events are best-effort), resume work a Lambda died in the
//! middle of, and prune old images. Every action is idempotent (conditional transitions; deleting
//! an image twice is harmless) and bounded per run.

use std::collections::{BTreeMap, HashSet};

use chrono::Duration;
use serde::Serialize;
use tracing::{error, info, instrument, warn};

use super::events::{on_build_state, on_deployment_state, EventOutcome};
use super::{AppError, Applied, Services, SYSTEM_ACTOR};
use crate::domain::aws_events::{
    BuildStateChange, BuildStatus, DeploymentEventName, DeploymentStateChange,
};
use crate::domain::{Environment, Event, Execution, PipelineDefinition, Status};
use crate::ports::{DeploymentObservation, ServiceError};

/// How much one run may do, and when an execution counts as stuck.
#[derive(Debug, Clone)]
pub struct SweepLimits {
    /// Executions examined per status per run.
    pub per_status: usize,
    /// A build with no state change for this long is checked with `BatchGetBuilds`.
    pub build_stuck_after: Duration,
    /// A deployment with no state change for this long is checked with `DescribeServices`.
    pub deploy_stuck_after: Duration,
    /// Images deleted per run, over all pipelines.
    pub max_image_deletions: usize,
    /// Image repositories examined for pruning per run (with every pipeline on each); with
    /// more, each run takes the next ones, so the work of a run does not grow with the number
    /// of pipelines.
    pub prune_repositories: usize,
}

impl Default for SweepLimits {
    fn default() -> Self {
        SweepLimits {
            per_status: 50,
            build_stuck_after: Duration::minutes(10),
            deploy_stuck_after: Duration::minutes(10),
            max_image_deletions: 100,
            prune_repositories: 20,
        }
    }
}

/// Images deleted from one repository.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub pipeline: String,
    pub repository: String,
    pub deleted: Vec<String>,
    pub bytes_freed: i64,
    pub kept: usize,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub expired: usize,
    pub builds_checked: usize,
    pub builds_reconciled: usize,
    pub deployments_checked: usize,
    pub deployments_reconciled: usize,
    pub resumed: usize,
    pub pruned: Vec<Pruned>,
    pub images_deleted: usize,
    pub bytes_freed: i64,
    /// Problems with single items; the run went on with the others.
    pub errors: Vec<String>,
}

/// One sweeper run.
#[instrument(skip_all)]
pub async fn sweep(svc: &Services, limits: &SweepLimits) -> Result<SweepReport, AppError> {
    let mut report = SweepReport::default();
    expire(svc, limits, &mut report).await?;
    reconcile_builds(svc, limits, &mut report).await?;
    reconcile_deployments(svc, limits, &mut report).await?;
    resume(svc, limits, &mut report).await?;
    prune(svc, limits, &mut report).await?;
    report.images_deleted = report.pruned.iter().map(|p| p.deleted.len()).sum();
    report.bytes_freed = report.pruned.iter().map(|p| p.bytes_freed).sum();
    info!(
        expired = report.expired,
        builds_checked = report.builds_checked,
        builds_reconciled = report.builds_reconciled,
        deployments_checked = report.deployments_checked,
        deployments_reconciled = report.deployments_reconciled,
        resumed = report.resumed,
        images_deleted = report.images_deleted,
        bytes_freed = report.bytes_freed,
        errors = report.errors.len(),
        "sweep done"
    );
    for e in &report.errors {
        error!(problem = %e, "sweep item failed");
    }
    Ok(report)
}

fn note(report: &mut SweepReport, exec: &Execution, what: &str, e: impl std::fmt::Display) {
    report
        .errors
        .push(format!("{what} of execution {} failed: {e}", exec.id));
}

async fn expire(
    svc: &Services,
    limits: &SweepLimits,
    report: &mut SweepReport,
) -> Result<(), AppError> {
    let now = svc.now();
    for exec in svc
        .store
        .list_by_status(Status::AwaitingApproval, limits.per_status)
        .await?
    {
        let due = exec.approval.as_ref().is_some_and(|a| now >= a.expires_at);
        if !due {
            continue;
        }
        match svc
            .apply(&exec.id, SYSTEM_ACTOR, Event::ApprovalExpired)
            .await
        {
            Ok(Applied::Done(_)) => {
                info!(execution_id = %exec.id, "approval expired");
                report.expired += 1;
            }
            Ok(Applied::Ignored { .. }) => {}
            Err(e) => note(report, &exec, "expiry", e),
        }
    }
    Ok(())
}

/// Builds whose state-change events were lost: ask CodeBuild and apply what the event would have.
async fn reconcile_builds(
    svc: &Services,
    limits: &SweepLimits,
    report: &mut SweepReport,
) -> Result<(), AppError> {
    let now = svc.now();
    for exec in svc
        .store
        .list_by_status(Status::Building, limits.per_status)
        .await?
    {
        if now - exec.updated_at < limits.build_stuck_after {
            continue;
        }
        let Some(build_id) = exec.build_id.clone() else {
            continue;
        };
        report.builds_checked += 1;
        let observed = match svc.builds.get_build(&build_id).await {
            Ok(o) => o,
            Err(e) => {
                note(report, &exec, "BatchGetBuilds", e);
                continue;
            }
        };
        let Some(status) = BuildStatus::parse(&observed.status) else {
            note(
                report,
                &exec,
                "build status",
                format!("unknown status {}", observed.status),
            );
            continue;
        };
        if status == BuildStatus::InProgress {
            continue;
        }
        let change = BuildStateChange {
            event_id: format!("sweeper:{build_id}"),
            build_id,
            project: String::new(),
            status,
            current_phase: observed.phase,
            reason: observed.reason,
            logs_link: observed.logs_link,
            resolved_commit: observed
                .resolved_source_version
                .as_deref()
                .and_then(crate::domain::aws_events::full_commit_sha),
            exported_variables: observed.exported_variables,
        };
        match on_build_state(svc, &change).await {
            Ok(EventOutcome::Applied(e)) => {
                warn!(execution_id = %e.id, status = %e.status, "reconciled a build whose event was lost");
                report.builds_reconciled += 1;
            }
            Ok(EventOutcome::Ignored(_)) => {}
            Err(e) => note(report, &exec, "build reconciliation", e),
        }
    }
    Ok(())
}

/// Deployments whose state-change events were lost: ask ECS (rollout state; still PRIMARY?).
async fn reconcile_deployments(
    svc: &Services,
    limits: &SweepLimits,
    report: &mut SweepReport,
) -> Result<(), AppError> {
    let now = svc.now();
    for (status, env) in [
        (Status::DeployingTest, Environment::Test),
        (Status::DeployingProd, Environment::Prod),
    ] {
        for exec in svc.store.list_by_status(status, limits.per_status).await? {
            if now - exec.updated_at < limits.deploy_stuck_after {
                continue;
            }
            let Some(deployment) = exec.deployment(env).cloned() else {
                continue;
            };
            let pipeline = match svc.pipeline(&exec.pipeline).await {
                Ok(p) => p,
                Err(e) => {
                    note(report, &exec, "pipeline lookup", e);
                    continue;
                }
            };
            report.deployments_checked += 1;
            let observed = match svc
                .deployer
                .deployment_state(pipeline.target(env), &deployment.deployment_id)
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    note(report, &exec, "DescribeServices", e);
                    continue;
                }
            };
            let outcome = match observed {
                DeploymentObservation::InProgress | DeploymentObservation::Unknown => continue,
                DeploymentObservation::Replaced => {
                    let id = deployment.deployment_id.clone();
                    svc.apply(
                        &exec.id,
                        SYSTEM_ACTOR,
                        Event::DeployReplaced {
                            deployment_id: id.clone(),
                        },
                    )
                    .await
                    .map(|a| matches!(a, Applied::Done(_)))
                }
                DeploymentObservation::Completed | DeploymentObservation::Failed(_) => {
                    let (name, reason) = match observed {
                        DeploymentObservation::Failed(r) => (DeploymentEventName::Failed, Some(r)),
                        _ => (DeploymentEventName::Completed, None),
                    };
                    let change = DeploymentStateChange {
                        event_id: format!("sweeper:{}", deployment.deployment_id),
                        deployment_id: deployment.deployment_id.clone(),
                        name,
                        service_arn: None,
                        reason,
                    };
                    on_deployment_state(svc, &change)
                        .await
                        .map(|o| matches!(o, EventOutcome::Applied(_)))
                }
            };
            match outcome {
                Ok(true) => {
                    warn!(execution_id = %exec.id, "reconciled a deployment whose event was lost");
                    report.deployments_reconciled += 1;
                }
                Ok(false) => {}
                Err(e) => note(report, &exec, "deployment reconciliation", e),
            }
        }
    }
    Ok(())
}

/// Executions that owe an effect and made no progress: a Lambda died between storing a state
/// and acting on it (e.g. `RECEIVED` with no build: start it, or fail it with the cause).
async fn resume(
    svc: &Services,
    limits: &SweepLimits,
    report: &mut SweepReport,
) -> Result<(), AppError> {
    for status in [
        Status::Received,
        Status::Built,
        Status::AwaitingApproval,
        Status::DeployingProd,
        // verified promotion: a check or bake a worker did not finish, an automatic rollback
        // not yet started
        Status::VerifyingTest,
        Status::VerifyingProd,
        Status::BakingProd,
        Status::ProdFailed,
    ] {
        if PRODUCTION_VERIFICATION.contains(&status) && !svc.can.roll_back_prod {
            // a failing production verification rolls production back, which this function
            // may not do: deploy-events resumes these on the same schedule
            // ([`resume_production`])
            continue;
        }
        for exec in svc.store.list_by_status(status, limits.per_status).await? {
            if status == Status::DeployingProd
                && exec.prod.is_none()
                && !svc.can.deploy_prod
                && svc.now() - exec.updated_at >= super::RESUME_AFTER
            {
                // approved, but the approvals function stopped before deploying; the sweeper
                // may not touch production: fail it visibly, `shipgate retry` deploys it
                let reason = if exec.trigger.is_rollback() {
                    format!(
                        "the rollback was recorded but its production deployment was never started; run `shipgate rollback {} --env prod` again",
                        exec.pipeline
                    )
                } else {
                    format!(
                        "the approval was recorded but the production deployment was never started; `shipgate retry {}` deploys the approved digest",
                        exec.id
                    )
                };
                match svc
                    .apply(
                        &exec.id,
                        SYSTEM_ACTOR,
                        Event::DeployStartFailed {
                            environment: Environment::Prod,
                            reason: reason.clone(),
                        },
                    )
                    .await
                {
                    Ok(Applied::Done(_)) => report.resumed += 1,
                    Ok(Applied::Ignored { .. }) => {}
                    Err(e) => note(report, &exec, "failing a never-started prod deployment", e),
                }
                continue;
            }
            match svc.resume_if_stale(&exec).await {
                Ok(Some(e)) => {
                    warn!(execution_id = %e.id, from = %status, to = %e.status, "resumed");
                    report.resumed += 1;
                }
                Ok(None) => {}
                Err(e) => note(report, &exec, "resume", e),
            }
        }
    }
    Ok(())
}

/// The statuses of a production verification and its automatic rollback.
const PRODUCTION_VERIFICATION: [Status; 3] = [
    Status::VerifyingProd,
    Status::BakingProd,
    Status::ProdFailed,
];

/// What one scheduled resume of production verifications did (deploy-events).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProductionResume {
    pub checked: usize,
    pub resumed: usize,
    pub errors: Vec<String>,
}

/// Resume production verifications whose worker died or whose events were lost: a check or
/// bake not finished, a smoke test whose result never came or that never reported within its
/// timeout, an automatic rollback not started. Run by deploy-events on the sweeper's schedule
/// (it may roll production back; the sweeper may not). Bounded like the sweep; every step is a
/// conditional transition, so running next to an event for the same execution is harmless.
#[instrument(skip_all)]
pub async fn resume_production(
    svc: &Services,
    limits: &SweepLimits,
) -> Result<ProductionResume, AppError> {
    let mut report = ProductionResume::default();
    for status in PRODUCTION_VERIFICATION {
        for exec in svc.store.list_by_status(status, limits.per_status).await? {
            report.checked += 1;
            match svc.resume_if_stale(&exec).await {
                Ok(Some(e)) => {
                    warn!(execution_id = %e.id, from = %status, to = %e.status, "production verification resumed");
                    report.resumed += 1;
                }
                Ok(None) => {}
                Err(e) => report
                    .errors
                    .push(format!("resume of execution {} failed: {e}", exec.id)),
            }
        }
    }
    for e in &report.errors {
        error!(problem = %e, "production resume item failed");
    }
    info!(
        checked = report.checked,
        resumed = report.resumed,
        errors = report.errors.len(),
        "production verifications resumed"
    );
    Ok(report)
}

/// Executions per active status read to protect their images; more than this and pruning
/// waits for a later run rather than guess.
const ACTIVE_SCAN_LIMIT: usize = 1_000;
/// Recent executions per pipeline whose failed deployments keep their image for `retry`.
const RETRYABLE_SCAN: usize = 200;

/// What pruning must never delete, over every pipeline.
#[derive(Debug, Default)]
struct Protected {
    digests: HashSet<String>,
    /// Images a service runs by tag (not pinned): every image carrying that tag is kept.
    tags: HashSet<String>,
}

/// Every digest any pipeline still needs: all revisions in every environment's kept history
/// (what runs and every rollback target), what each test and prod service runs in ECS right
/// now, the image of every active execution, and of recent failed deployments `retry` would
/// redeploy. Any doubt is an error: nothing is pruned.
async fn protected_images(
    svc: &Services,
    pipelines: &[PipelineDefinition],
) -> Result<Protected, String> {
    let mut p = Protected::default();
    for def in pipelines {
        for env in [Environment::Test, Environment::Prod] {
            let revisions =
                svc.store.get_revisions(&def.name, env).await.map_err(|e| {
                    format!("the {env} history of {} could not be read: {e}", def.name)
                })?;
            if let Some(r) = revisions {
                p.digests.extend(r.value.digests().map(str::to_string));
            }
            let target = def.target(env);
            match svc.deployer.service_state(target).await {
                Ok(state) => match state.image.as_deref().map(|i| i.rsplit_once('@')) {
                    Some(Some((_, digest))) => {
                        p.digests.insert(digest.to_string());
                    }
                    Some(None) => {
                        let image = state.image.unwrap_or_default();
                        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
                        p.tags.insert(tag.to_string());
                    }
                    None => {}
                },
                // a service that no longer exists runs nothing
                Err(ServiceError::NotFound(_)) => {}
                Err(e) => {
                    return Err(format!(
                        "what {} in cluster {} runs could not be read: {e}",
                        target.service, target.cluster
                    ))
                }
            }
        }
    }
    // failed executions that `retry` would redeploy keep their image (recent ones)
    for def in pipelines {
        let recent = svc
            .store
            .list_executions(&def.name, RETRYABLE_SCAN)
            .await
            .map_err(|e| format!("executions of {} could not be listed: {e}", def.name))?;
        p.digests.extend(
            recent
                .into_iter()
                .filter(|e| matches!(e.status, Status::TestFailed | Status::ProdFailed))
                .filter_map(|e| e.image)
                .map(|i| i.digest),
        );
    }
    for status in Status::ALL.into_iter().filter(|s| s.is_active()) {
        let active = svc
            .store
            .list_by_status(status, ACTIVE_SCAN_LIMIT)
            .await
            .map_err(|e| format!("{status} executions could not be listed: {e}"))?;
        if active.len() >= ACTIVE_SCAN_LIMIT {
            return Err(format!(
                "{ACTIVE_SCAN_LIMIT} or more executions are {status}; pruning waits"
            ));
        }
        p.digests
            .extend(active.into_iter().filter_map(|e| e.image).map(|i| i.digest));
    }
    Ok(p)
}

/// Keep the newest images of each repository (the most any pipeline on it asks for with
/// `keep_images`) and never delete a protected one (see [`protected_images`]): the protected
/// set is computed over every pipeline before anything is deleted, so two pipelines sharing a
/// repository protect each other's releases.
async fn prune(
    svc: &Services,
    limits: &SweepLimits,
    report: &mut SweepReport,
) -> Result<(), AppError> {
    let pipelines: Vec<PipelineDefinition> = svc
        .store
        .list_pipelines()
        .await?
        .into_iter()
        .map(|p| p.definition)
        .collect();
    if pipelines.is_empty() {
        return Ok(());
    }
    let mut repositories: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
    for def in &pipelines {
        let entry = repositories
            .entry(def.image.repository_name().to_string())
            .or_default();
        entry.0 = entry.0.max(def.keep_images as usize);
        entry.1.push(def.name.clone());
    }
    // this run's repositories: the next `prune_repositories` of them, rotating with the run's
    // five-minute slot (all of them when there are no more)
    let take = limits.prune_repositories.max(1);
    if repositories.len() > take {
        let slot = usize::try_from(svc.now().timestamp() / 300).unwrap_or(0);
        let start = slot.wrapping_mul(take) % repositories.len();
        let chosen: Vec<String> = repositories
            .keys()
            .cycle()
            .skip(start)
            .take(take)
            .cloned()
            .collect();
        repositories.retain(|repo, _| chosen.contains(repo));
    }
    // every pipeline on a chosen repository protects its images (two sharing one protect each
    // other's releases)
    let pipelines: Vec<PipelineDefinition> = pipelines
        .into_iter()
        .filter(|p| repositories.contains_key(p.image.repository_name()))
        .collect();
    let protected = match protected_images(svc, &pipelines).await {
        Ok(p) => p,
        Err(e) => {
            warn!(problem = %e, "pruning skipped this run");
            report.errors.push(format!("pruning skipped: {e}"));
            return Ok(());
        }
    };
    let mut budget = limits.max_image_deletions;
    for (repo, (keep, names)) in repositories {
        if budget == 0 {
            break;
        }
        let mut images = match svc.registry.list_images(&repo).await {
            Ok(i) => i,
            Err(e) => {
                report
                    .errors
                    .push(format!("listing images of {repo} failed: {e}"));
                continue;
            }
        };
        images.sort_by_key(|i| std::cmp::Reverse(i.pushed_at));
        let candidates: Vec<_> = images
            .iter()
            .skip(keep)
            .filter(|i| !protected.digests.contains(&i.digest))
            .filter(|i| !i.tags.iter().any(|t| protected.tags.contains(t)))
            .take(budget)
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let digests: Vec<String> = candidates.iter().map(|i| i.digest.clone()).collect();
        match svc.registry.delete_images(&repo, &digests).await {
            Ok(deleted) => {
                budget = budget.saturating_sub(deleted.len());
                let bytes = candidates
                    .iter()
                    .filter(|i| deleted.contains(&i.digest))
                    .filter_map(|i| i.size_bytes)
                    .sum();
                let pipeline = names.join(",");
                info!(%pipeline, repository = %repo, deleted = deleted.len(), bytes_freed = bytes, "pruned images");
                report.pruned.push(Pruned {
                    pipeline,
                    repository: repo,
                    kept: images.len() - deleted.len(),
                    deleted,
                    bytes_freed: bytes,
                });
            }
            Err(e) => report
                .errors
                .push(format!("deleting images from {repo} failed: {e}")),
        }
    }
    Ok(())
}
