//! Operator use cases: pipelines, status, retry, rollback, release.

use serde_json::Value;
use tracing::{info, instrument};

use super::sources::{start_execution, StartRequest, Started};
use super::{AppError, Applied, Services};
use crate::domain::{
    Environment, Event, Execution, ExecutionId, PipelineDefinition, Status, Trigger,
};
use crate::ports::StoredPipeline;
pub use crate::protocol::{
    ApplyResult, FieldChange, PipelineApplied, PipelineShown, PipelineStatus, PipelineVersion,
};

/// Leaf-by-leaf difference of two JSON documents.
pub fn diff(before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    diff_into("", before, after, &mut out);
    out
}

fn diff_into(path: &str, before: &Value, after: &Value, out: &mut Vec<FieldChange>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff_into(&p, x, y, out),
                    (x, y) => out.push(FieldChange {
                        path: p,
                        before: x.cloned(),
                        after: y.cloned(),
                    }),
                }
            }
        }
        (a, b) if a != b => out.push(FieldChange {
            path: path.to_string(),
            before: Some(a.clone()),
            after: Some(b.clone()),
        }),
        _ => {}
    }
}

/// Create or update a pipeline as `actor`; answers what changed. An update keeps the version it
/// replaces ([`show_pipeline`] lists them).
#[instrument(skip_all, fields(pipeline = %definition.name, %actor))]
pub async fn apply_pipeline(
    svc: &Services,
    definition: PipelineDefinition,
    actor: &str,
) -> Result<PipelineApplied, AppError> {
    definition.validate()?;
    if let Some(existing) = svc.store.get_pipeline(&definition.name).await? {
        if existing.definition == definition {
            return Ok(PipelineApplied {
                pipeline: definition.name,
                result: ApplyResult::Unchanged,
                version: existing.version,
                changes: vec![],
            });
        }
    }
    let written = svc
        .store
        .put_pipeline_by(&definition, svc.now(), actor)
        .await?;
    let after = serde_json::to_value(&definition).unwrap_or(Value::Null);
    let (result, changes) = match &written.previous {
        None => (ApplyResult::Created, vec![]),
        Some(prev) => (
            ApplyResult::Updated,
            diff(&serde_json::to_value(prev).unwrap_or(Value::Null), &after),
        ),
    };
    info!(
        result = result.as_str(),
        version = written.version,
        "pipeline applied"
    );
    Ok(PipelineApplied {
        pipeline: definition.name,
        result,
        version: written.version,
        changes,
    })
}

/// Versions `show_pipeline` lists at most (newest first).
pub const PIPELINE_HISTORY_LIMIT: usize = 50;

/// The current definition of a pipeline and, with `history`, its versions.
#[instrument(skip(svc))]
pub async fn show_pipeline(
    svc: &Services,
    name: &str,
    history: bool,
) -> Result<PipelineShown, AppError> {
    let current = svc
        .store
        .get_pipeline(name)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("pipeline {name}")))?;
    if !history {
        return Ok(PipelineShown {
            pipeline: current,
            history: None,
        });
    }
    let mut versions = vec![current.clone()];
    versions.extend(
        svc.store
            .pipeline_history(name, PIPELINE_HISTORY_LIMIT - 1)
            .await?,
    );
    let json = |p: &crate::ports::StoredPipeline| {
        serde_json::to_value(&p.definition).unwrap_or(Value::Null)
    };
    let listed = versions
        .iter()
        .enumerate()
        .map(|(i, v)| PipelineVersion {
            version: v.version,
            applied_at: v.applied_at,
            applied_by: v.applied_by.clone(),
            changes: match versions.get(i + 1) {
                Some(older) if older.version + 1 == v.version => diff(&json(older), &json(v)),
                _ => vec![],
            },
        })
        .collect();
    Ok(PipelineShown {
        pipeline: current,
        history: Some(listed),
    })
}

/// Most pipelines one `list_pipelines` answer lists (also its default).
pub const MAX_PIPELINES_LISTED: usize = 1000;
/// Most bytes of definitions one `list_pipelines` answer carries (a Lambda answer is at most
/// 6 MB; a definition at most 64 KiB).
pub const MAX_LISTED_DEFINITION_BYTES: usize = 4 * 1024 * 1024;
/// Most pipelines one `status` answer covers (three reads each; also its default).
pub const MAX_STATUS_PIPELINES: usize = 50;

/// One page of a list by pipeline name; `next` (the last name listed) is the `after` of the
/// next page, None on the last.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Up to `limit` pipeline definitions after `after`, by name, within
/// [`MAX_LISTED_DEFINITION_BYTES`].
pub async fn list_pipelines(
    svc: &Services,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<StoredPipeline>, AppError> {
    let limit = limit.clamp(1, MAX_PIPELINES_LISTED);
    let mut read = svc.store.list_pipelines_page(after, limit + 1).await?;
    let mut more = read.len() > limit;
    read.truncate(limit);
    let mut items = Vec::with_capacity(read.len());
    let mut bytes = 0;
    for p in read {
        bytes += serde_json::to_vec(&p.definition).map_or(0, |v| v.len());
        if bytes > MAX_LISTED_DEFINITION_BYTES && !items.is_empty() {
            more = true;
            break;
        }
        items.push(p);
    }
    let next = items
        .last()
        .filter(|_| more)
        .map(|p| p.definition.name.clone());
    Ok(Page { items, next })
}

/// Status of one pipeline, or of the first page of all (see [`status_page`]).
pub async fn status(
    svc: &Services,
    pipeline: Option<&str>,
) -> Result<Vec<PipelineStatus>, AppError> {
    match pipeline {
        Some(name) => status_of(svc, vec![svc.pipeline(name).await?]).await,
        None => Ok(status_page(svc, None, MAX_STATUS_PIPELINES).await?.items),
    }
}

/// Status of up to `limit` pipelines after `after`, by name.
pub async fn status_page(
    svc: &Services,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<PipelineStatus>, AppError> {
    let limit = limit.clamp(1, MAX_STATUS_PIPELINES);
    let mut read = svc.store.list_pipelines_page(after, limit + 1).await?;
    let more = read.len() > limit;
    read.truncate(limit);
    let next = read
        .last()
        .filter(|_| more)
        .map(|p| p.definition.name.clone());
    let items = status_of(svc, read.into_iter().map(|p| p.definition).collect()).await?;
    Ok(Page { items, next })
}

async fn status_of(
    svc: &Services,
    names: Vec<PipelineDefinition>,
) -> Result<Vec<PipelineStatus>, AppError> {
    let mut out = Vec::new();
    for def in names {
        let recent = svc.store.list_executions(&def.name, 50).await?;
        out.push(PipelineStatus {
            pipeline: def.name.clone(),
            source: def.source.describe(),
            test: super::releases::shown(svc, &def.name, Environment::Test).await?,
            prod: super::releases::shown(svc, &def.name, Environment::Prod).await?,
            in_flight: recent
                .iter()
                .filter(|e| e.status.is_active())
                .cloned()
                .collect(),
            latest: recent.into_iter().next(),
            status_page: None,
        });
    }
    Ok(out)
}

/// Restart a failed execution from its failed stage (same commit; same digest for a deploy).
#[instrument(skip(svc))]
pub async fn retry(svc: &Services, id: &ExecutionId, actor: &str) -> Result<Execution, AppError> {
    let exec = svc.execution(id).await?;
    if !matches!(
        exec.status,
        Status::BuildFailed | Status::TestFailed | Status::ProdFailed
    ) {
        return Err(AppError::Conflict(format!(
            "execution {id} is {}; only BUILD_FAILED, TEST_FAILED or PROD_FAILED executions can be retried",
            exec.status
        )));
    }
    if exec.status == Status::ProdFailed {
        super::releases::check_push_order(svc, &exec).await?;
    }
    match svc.apply(id, actor, Event::Retry).await? {
        Applied::Done(e) => Ok(e),
        Applied::Ignored { reason, current } => Err(AppError::Conflict(format!(
            "cannot retry execution {id} ({}): {reason}",
            current.status
        ))),
    }
}

pub use super::releases::rollback;

/// Start an execution without a push: for `commit`, or the head of the pipeline's branch.
#[instrument(skip(svc))]
pub async fn release(
    svc: &Services,
    pipeline: &str,
    commit: Option<&str>,
    request_id: Option<&str>,
    actor: &str,
) -> Result<Started, AppError> {
    release_as(svc, pipeline, commit, request_id, actor, None).await
}

/// [`release`] requested by a caller STS verified (`caller_arn`): recorded as who pushed the
/// change, so that caller cannot approve their own release (no self-approval). Only a verified
/// ARN, never a claimed actor.
pub async fn release_as(
    svc: &Services,
    pipeline: &str,
    commit: Option<&str>,
    request_id: Option<&str>,
    actor: &str,
    caller_arn: Option<&str>,
) -> Result<Started, AppError> {
    let def = svc.pipeline(pipeline).await?;
    let branch = def
        .branches
        .iter()
        .find(|b| !b.contains(['*', '?', '[', '{']))
        .cloned();
    let (sha, reference) = match commit {
        Some(c) => {
            let c = c.trim().to_ascii_lowercase();
            if !(7..=40).contains(&c.len()) || !c.chars().all(|ch| ch.is_ascii_hexdigit()) {
                return Err(AppError::Invalid(format!(
                    "commit {c:?} is not a commit SHA (7 to 40 hex digits)"
                )));
            }
            (c, branch.unwrap_or_else(|| "release".into()))
        }
        None => {
            let Some(branch) = branch else {
                return Err(AppError::Invalid(format!(
                    "pipeline {pipeline} only has branch globs ({}); give a commit",
                    def.branches.join(", ")
                )));
            };
            // CodeBuild builds the branch head; the SHA is learnt from the build
            (String::new(), branch)
        }
    };
    start_execution(
        svc,
        StartRequest {
            pipeline: def,
            commit: crate::domain::Commit {
                sha,
                reference,
                author: None,
                message: Some(format!("release requested by {actor}")),
                url: None,
            },
            trigger: Trigger::Release {
                actor: actor.to_string(),
            },
            pushed_by: crate::domain::pushed_by::PushedBy {
                caller_arn: caller_arn.map(str::to_string),
                ..Default::default()
            },
            idempotency_key: request_id.map(|r| format!("RELEASE#{pipeline}#{r}")),
            actor: actor.to_string(),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_lists_leaf_changes() {
        let a = json!({"name": "x", "test": {"service": "a", "cluster": "c"}, "paths": ["a"]});
        let b = json!({"name": "x", "test": {"service": "b", "cluster": "c"}, "paths": ["a", "b"], "mode": "queued"});
        let d = diff(&a, &b);
        let paths: Vec<&str> = d.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, vec!["mode", "paths", "test.service"]);
        assert_eq!(d[0].before, None);
        assert_eq!(d[2].before, Some(json!("a")));
        assert!(diff(&a, &a).is_empty());
    }
}
