//! AWS events: CodeBuild build state changes and ECS deployment state changes.

use tracing::{info, instrument, warn};

use super::{approvals, AppError, Applied, Services, SYSTEM_ACTOR};
use crate::domain::aws_events::{
    full_commit_sha, BuildStateChange, BuildStatus, DeploymentEventName, DeploymentStateChange,
};
use crate::domain::token::new_nonce;
use crate::domain::{
    ApprovalGrant, Environment, Event, Execution, ImageRef, ServiceTarget, Status,
};
use crate::ports::{DeploymentObservation, ServiceError};

/// What an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Stored; the execution is now in this status.
    Applied(Box<Execution>),
    /// Nothing to do (unknown, repeated, stale or out-of-order event).
    Ignored(String),
}

impl EventOutcome {
    fn from_applied(applied: Applied) -> EventOutcome {
        match applied {
            Applied::Done(e) => EventOutcome::Applied(Box::new(e)),
            Applied::Ignored { reason, current } => EventOutcome::Ignored(format!(
                "{reason} (execution {} is {})",
                current.id, current.status
            )),
        }
    }
}

/// The event did not change anything: resume owed work if the execution's worker died, and
/// report the event as ignored.
async fn ignored(svc: &Services, exec: &Execution, why: String) -> Result<EventOutcome, AppError> {
    if let Some(resumed) = svc.resume_if_stale(exec).await? {
        return Ok(EventOutcome::Applied(Box::new(resumed)));
    }
    info!(execution_id = %exec.id, status = %exec.status, reason = %why, "event ignored");
    Ok(EventOutcome::Ignored(why))
}

/// CodeBuild "Build State Change".
#[instrument(skip_all, fields(build_id = %change.build_id, status = change.status.as_str()))]
pub async fn on_build_state(
    svc: &Services,
    change: &BuildStateChange,
) -> Result<EventOutcome, AppError> {
    let Some(id) = svc.store.find_by_build(&change.build_id).await? else {
        info!("event for a build shipgate did not start; ignored");
        return Ok(EventOutcome::Ignored(format!(
            "build {} is not a shipgate build",
            change.build_id
        )));
    };
    let exec = svc.execution(&id).await?;
    // a smoke test build is deploy-events' (its own EventBridge rule): never an image build
    if super::smoke::is_smoke_build(&exec, &change.build_id) {
        info!(execution_id = %exec.id, "smoke test build: its result is deploy-events'; ignored");
        return Ok(EventOutcome::Ignored(format!(
            "build {} is a smoke test build (deploy-events decides it)",
            change.build_id
        )));
    }
    if exec.build_id.as_deref() != Some(change.build_id.as_str()) {
        return ignored(
            svc,
            &exec,
            format!(
                "build {} is not the execution's current build",
                change.build_id
            ),
        )
        .await;
    }
    if exec.status != Status::Building {
        return ignored(
            svc,
            &exec,
            format!("execution is {}, not BUILDING", exec.status),
        )
        .await;
    }
    let applied = match change.status {
        BuildStatus::InProgress => {
            let phase = change
                .current_phase
                .clone()
                .unwrap_or_else(|| "IN_PROGRESS".into());
            svc.apply_to(exec, SYSTEM_ACTOR, Event::BuildProgress { phase })
                .await?
        }
        BuildStatus::Succeeded => {
            let event = match resolve_image(svc, &exec, change).await? {
                Event::BuildSucceeded { image, note, .. } => Event::BuildSucceeded {
                    image,
                    note,
                    resolved_sha: resolved_commit(svc, &exec, change).await,
                },
                failed => failed,
            };
            svc.apply_to(exec, SYSTEM_ACTOR, event).await?
        }
        BuildStatus::Failed | BuildStatus::Stopped | BuildStatus::Fault | BuildStatus::TimedOut => {
            let event = Event::BuildFailed {
                status: change.status.as_str().to_string(),
                phase: change.current_phase.clone(),
                reason: change
                    .reason
                    .clone()
                    .unwrap_or_else(|| "CodeBuild gave no reason; see the build logs".into()),
                link: change.logs_link.clone(),
            };
            svc.apply_to(exec, SYSTEM_ACTOR, event).await?
        }
    };
    Ok(EventOutcome::from_applied(applied))
}

/// The variable a buildspec exports with the digest of the image it pushed.
pub const IMAGE_DIGEST_VARIABLE: &str = "IMAGE_DIGEST";

/// For an execution that does not know its full commit SHA yet (a release of a branch head, or
/// of an abbreviated SHA): the SHA the build checked out, from the event, else from CodeBuild
/// (`resolvedSourceVersion`). Best effort: without it the execution goes on as before.
async fn resolved_commit(
    svc: &Services,
    exec: &Execution,
    change: &BuildStateChange,
) -> Option<String> {
    if full_commit_sha(&exec.commit.sha).is_some() {
        return None;
    }
    let resolved = match &change.resolved_commit {
        Some(sha) => Some(sha.clone()),
        None => match svc.builds.get_build(&change.build_id).await {
            Ok(o) => o
                .resolved_source_version
                .as_deref()
                .and_then(full_commit_sha),
            Err(e) => {
                warn!(execution_id = %exec.id, error = %e, "could not learn the commit the build resolved");
                None
            }
        },
    }?;
    // an abbreviated SHA the operator gave must be a prefix of what was built
    let given = exec.commit.sha.to_ascii_lowercase();
    if !resolved.starts_with(&given) {
        warn!(execution_id = %exec.id, %resolved, "the build resolved a commit that does not match the requested one; not recorded");
        return None;
    }
    Some(resolved)
}

/// The image the build produced: the digest it exported (`IMAGE_DIGEST`), which must exist in
/// the repository, else the digest the execution's tag points at.
async fn resolve_image(
    svc: &Services,
    exec: &Execution,
    change: &BuildStateChange,
) -> Result<Event, AppError> {
    let pipeline = svc.pipeline(&exec.pipeline).await?;
    let tag = exec.image_tag();
    let repo = pipeline.image.repository_name();
    if let Some(exported) = change.exported(IMAGE_DIGEST_VARIABLE) {
        return exported_image(svc, &pipeline.image.repository, repo, tag, exported).await;
    }
    match svc.registry.find_image(repo, &tag).await {
        Ok(Some(image)) => Ok(Event::BuildSucceeded {
            image: ImageRef {
                repository_uri: pipeline.image.repository.clone(),
                tag,
                digest: image.digest,
            },
            resolved_sha: None,
            note: None,
        }),
        Ok(None) | Err(ServiceError::NotFound(_)) => Ok(Event::BuildFailed {
            status: "SUCCEEDED".into(),
            phase: None,
            reason: format!(
                "the build succeeded but no image tagged {tag} is in repository {repo} (does buildspec.yml push $IMAGE_REPO_URI:$IMAGE_TAG?)"
            ),
            link: None,
        }),
        // throttling or an outage: let EventBridge deliver the event again
        Err(e) if e.is_retryable() => Err(e.into()),
        Err(e) => Ok(Event::BuildFailed {
            status: "SUCCEEDED".into(),
            phase: None,
            reason: format!("could not resolve the image digest: {e}"),
            link: None,
        }),
    }
}

/// The digest the build exported, cross-checked with the registry.
async fn exported_image(
    svc: &Services,
    repository_uri: &str,
    repo: &str,
    tag: String,
    exported: &str,
) -> Result<Event, AppError> {
    let failed = |reason: String| Event::BuildFailed {
        status: "SUCCEEDED".into(),
        phase: None,
        reason,
        link: None,
    };
    if !is_image_digest(exported) {
        return Ok(failed(format!(
            "the build exported {IMAGE_DIGEST_VARIABLE}={exported:?}, which is not an image digest (sha256: and 64 hex digits)"
        )));
    }
    let image = match svc.registry.find_digest(repo, exported).await {
        Ok(Some(image)) => image,
        Ok(None) | Err(ServiceError::NotFound(_)) => {
            return Ok(failed(format!(
                "the build exported {IMAGE_DIGEST_VARIABLE}={exported} but repository {repo} has no image with that digest (was it pushed to another repository, or deleted?)"
            )))
        }
        Err(e) if e.is_retryable() => return Err(e.into()),
        Err(e) => return Ok(failed(format!("could not check the exported image digest: {e}"))),
    };
    let note = if image.tags.contains(&tag) {
        None
    } else {
        // the tag was pushed again (or removed) after the build: the build's own digest wins
        let now = match svc.registry.find_image(repo, &tag).await {
            Ok(Some(other)) => format!("now points at {}", other.digest),
            Ok(None) | Err(ServiceError::NotFound(_)) => "is not in the repository".to_string(),
            Err(e) if e.is_retryable() => return Err(e.into()),
            Err(e) => format!("could not be looked up ({e})"),
        };
        Some(format!(
            "tag {tag} {now}; deploying {} the build exported",
            image.digest
        ))
    };
    Ok(Event::BuildSucceeded {
        image: ImageRef {
            repository_uri: repository_uri.to_string(),
            tag,
            digest: image.digest,
        },
        resolved_sha: None,
        note,
    })
}

/// `sha256:` and 64 lowercase hex digits.
fn is_image_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// ECS "Deployment State Change".
#[instrument(skip_all, fields(deployment_id = %change.deployment_id))]
pub async fn on_deployment_state(
    svc: &Services,
    change: &DeploymentStateChange,
) -> Result<EventOutcome, AppError> {
    let Some(id) = svc.store.find_by_deployment(&change.deployment_id).await? else {
        info!("event for a deployment shipgate did not start; ignored");
        return Ok(EventOutcome::Ignored(format!(
            "deployment {} is not a shipgate deployment",
            change.deployment_id
        )));
    };
    let exec = svc.execution(&id).await?;
    let Some(env) = exec.environment_of(&change.deployment_id) else {
        return ignored(svc, &exec, "deployment is no longer the execution's".into()).await;
    };
    let deployment_id = change.deployment_id.clone();
    let applied = match change.name {
        DeploymentEventName::InProgress => {
            return ignored(svc, &exec, "deployment in progress".into()).await
        }
        DeploymentEventName::Completed => {
            // the service the deployment was started on (as recorded with it)
            let Some(started) = exec.deployment(env) else {
                return ignored(svc, &exec, "deployment is no longer the execution's".into()).await;
            };
            let target = ServiceTarget {
                cluster: started.cluster.clone(),
                service: started.service.clone(),
                container: String::new(),
            };
            // a completed deployment that another one replaced is not a success
            if svc
                .deployer
                .deployment_state(&target, &deployment_id)
                .await?
                == DeploymentObservation::Replaced
            {
                svc.apply_to(exec, SYSTEM_ACTOR, Event::DeployReplaced { deployment_id })
                    .await?
            } else {
                // a pipeline that verifies this environment verifies before approval / success
                if started.verify || env == Environment::Test {
                    let pipeline = svc.pipeline(&exec.pipeline).await?;
                    if let Some(event) =
                        super::verification::start_event(&pipeline, &exec, env, &deployment_id)
                    {
                        return finish(svc, svc.apply_to(exec, SYSTEM_ACTOR, event).await?).await;
                    }
                }
                // the approval round a completed test deployment opens (prod opens none)
                let grant = match env {
                    Environment::Test => {
                        let pipeline = svc.pipeline(&exec.pipeline).await?;
                        Some(ApprovalGrant {
                            nonce: new_nonce(),
                            expires_at: approvals::expiry(svc.now(), &pipeline),
                        })
                    }
                    Environment::Prod => None,
                };
                let event = Event::DeployCompleted {
                    deployment_id,
                    approval: grant,
                };
                svc.apply_to(exec, SYSTEM_ACTOR, event).await?
            }
        }
        DeploymentEventName::Failed => {
            let reason = change
                .reason
                .clone()
                .unwrap_or_else(|| "ECS reported the deployment failed".into());
            let event = Event::DeployFailed {
                deployment_id,
                reason,
            };
            svc.apply_to(exec, SYSTEM_ACTOR, event).await?
        }
    };
    finish(svc, applied).await
}

pub(super) async fn finish(svc: &Services, applied: Applied) -> Result<EventOutcome, AppError> {
    if let Applied::Ignored { current, reason } = &applied {
        return ignored(svc, current, reason.to_string()).await;
    }
    Ok(EventOutcome::from_applied(applied))
}
