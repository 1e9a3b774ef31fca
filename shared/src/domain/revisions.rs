//! What shipgate deployed to each environment of a pipeline, and which revision a rollback
//! restores. Pure: the store keeps one [`EnvironmentRevisions`] per environment and writes it
//! with a conditional put on its version.
//!
//! Releases are ordered by the id of the execution that first built them (its *origin*;
//! execution ids are ULIDs, so that is push order). A rollback execution redeploys an earlier
//! release: its revision keeps the origin of the release it restores. So "older" always means
//! "an earlier release", however often a release was redeployed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::execution::{Commit, Environment, Execution, ExecutionId, ImageRef, Trigger};

/// Revisions kept per environment (newest first); older ones are forgotten and can no longer be
/// rolled back to by shipgate (the task definitions stay in ECS).
pub const KEPT_REVISIONS: usize = 30;
/// Longest commit title, author or reference kept in a revision record.
const MAX_TEXT: usize = 200;

/// How a revision came to run in the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployKind {
    /// A push (GitHub or CodeCommit) went through the pipeline.
    #[default]
    Push,
    /// `shipgate release`.
    Release,
    /// `shipgate retry` of a failed deployment.
    Retry,
    /// `shipgate rollback`: an earlier release deployed again.
    Rollback,
}

impl DeployKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeployKind::Push => "push",
            DeployKind::Release => "release",
            DeployKind::Retry => "retry",
            DeployKind::Rollback => "rollback",
        }
    }
}

/// One successful deployment of an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedRevision {
    /// The execution that deployed it (for a rollback, the rollback execution).
    pub execution_id: ExecutionId,
    /// For a rollback: the execution whose release it restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restores: Option<ExecutionId>,
    #[serde(default)]
    pub how: DeployKind,
    /// The ECS deployment (absent in records written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    pub commit: Commit,
    pub image: ImageRef,
    pub task_definition: String,
    /// When the deployment was started (what ECS runs is the newest started deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it completed and was recorded.
    pub deployed_at: DateTime<Utc>,
    /// A later rollback moved the environment away from this release: the default rollback
    /// skips it (`--to` may still name it; deploying it again clears the mark).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
}

impl DeployedRevision {
    /// The execution that built this release (the restored one, for a rollback).
    pub fn origin(&self) -> &ExecutionId {
        self.restores.as_ref().unwrap_or(&self.execution_id)
    }

    /// When its deployment started (when it was recorded, for records without that).
    pub fn started(&self) -> DateTime<Utc> {
        self.started_at.unwrap_or(self.deployed_at)
    }

    /// The revision an execution's completed deployment to `env` put there; `None` if the
    /// execution has no image or no deployment to that environment.
    pub fn completed(
        exec: &Execution,
        env: Environment,
        at: DateTime<Utc>,
    ) -> Option<DeployedRevision> {
        let image = exec.image.clone()?;
        let deployment = exec.deployment(env)?;
        let (how, restores) = match &exec.trigger {
            Trigger::Rollback { restores, .. } => (DeployKind::Rollback, Some(restores.clone())),
            _ if exec.attempt > 1 => (DeployKind::Retry, None),
            Trigger::Release { .. } => (DeployKind::Release, None),
            Trigger::GithubPush { .. } | Trigger::CodecommitPush { .. } => (DeployKind::Push, None),
        };
        Some(DeployedRevision {
            execution_id: exec.id.clone(),
            restores,
            how,
            deployment_id: Some(deployment.deployment_id.clone()),
            commit: excerpt(&exec.commit),
            image,
            task_definition: deployment.task_definition.clone(),
            started_at: Some(deployment.started_at),
            deployed_at: at,
            withdrawn: false,
        })
    }
}

/// The commit as a revision record keeps it: title only, every text bounded, so thirty records
/// stay far below DynamoDB's item limit whatever a push carried.
fn excerpt(c: &Commit) -> Commit {
    fn cut(s: &str) -> String {
        match s.char_indices().nth(MAX_TEXT) {
            Some((i, _)) => format!("{}…", &s[..i]),
            None => s.to_string(),
        }
    }
    Commit {
        sha: cut(&c.sha),
        reference: cut(&c.reference),
        author: c.author.as_deref().map(cut),
        message: c.message.as_ref().map(|_| cut(c.title())),
        url: c
            .url
            .as_deref()
            .filter(|u| u.len() <= 2 * MAX_TEXT)
            .map(str::to_string),
    }
}

/// A rollback under way: further rollbacks of the environment are refused until it is no longer
/// active (checked against the execution's status, so a rollback that died does not block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackClaim {
    pub execution_id: ExecutionId,
    pub at: DateTime<Utc>,
}

/// A deployment the environment was asked to run that failed (ECS rolled it back, or it
/// never became healthy): what a rollback after it moves away from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedDeployment {
    pub execution_id: ExecutionId,
    /// The release it deployed (the restored one, for a rollback).
    pub origin: ExecutionId,
    pub started_at: DateTime<Utc>,
    pub failed_at: DateTime<Utc>,
}

/// The deployment history of one environment, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvironmentRevisions {
    pub history: Vec<DeployedRevision>,
    pub rollback: Option<RollbackClaim>,
    /// The newest failed deployment, if it started after what runs.
    pub failed: Option<FailedDeployment>,
}

/// Why `rollback --to` found nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevisionLookupError {
    #[error("give an execution id or a commit SHA (at least 7 hex digits)")]
    BadSelector,
    #[error(
        "no revision of {0} ever ran successfully here (shipgate keeps the last {KEPT_REVISIONS})"
    )]
    NotFound(String),
    #[error("{selector} matches more than one release ({}); give more of the SHA or an execution id", .candidates.join(", "))]
    Ambiguous {
        selector: String,
        candidates: Vec<String>,
    },
}

impl EnvironmentRevisions {
    /// What shipgate last deployed successfully, i.e. what runs now.
    pub fn current(&self) -> Option<&DeployedRevision> {
        self.history.first()
    }

    /// The newest revision of an earlier release than the current one.
    pub fn previous(&self) -> Option<&DeployedRevision> {
        let current = self.current()?;
        self.rollback_target(current.origin())
    }

    /// Record a completed deployment. Kept in the order the deployments were started (the later
    /// `UpdateService` is what ECS runs), so a late or repeated record never makes an older
    /// deployment current. A rollback's own record releases its claim. Answers whether anything
    /// changed (false: this deployment was recorded before).
    pub fn record(&mut self, revision: DeployedRevision) -> bool {
        let released = self
            .rollback
            .take_if(|claim| claim.execution_id == revision.execution_id)
            .is_some();
        if self.history.iter().any(|r| {
            r.execution_id == revision.execution_id && r.deployment_id == revision.deployment_id
        }) {
            return released;
        }
        // the release runs again: it is no longer withdrawn
        for r in self
            .history
            .iter_mut()
            .filter(|r| r.origin() == revision.origin())
        {
            r.withdrawn = false;
        }
        if self
            .failed
            .as_ref()
            .is_some_and(|f| f.started_at <= revision.started())
        {
            self.failed = None;
        }
        let at = self
            .history
            .iter()
            .position(|r| r.started() <= revision.started())
            .unwrap_or(self.history.len());
        self.history.insert(at, revision);
        self.history.truncate(KEPT_REVISIONS);
        true
    }

    /// A rollback moved the environment away from the release of `origin`.
    pub fn withdraw(&mut self, origin: &ExecutionId) -> bool {
        let mut changed = false;
        for r in self
            .history
            .iter_mut()
            .filter(|r| r.origin() == origin && !r.withdrawn)
        {
            r.withdrawn = true;
            changed = true;
        }
        changed
    }

    /// Remember a failed deployment (if it is newer than what runs and than the one remembered);
    /// a rollback claim held by the failed execution is released. Answers whether anything
    /// changed.
    pub fn record_failure(&mut self, failure: FailedDeployment) -> bool {
        let released = self
            .rollback
            .take_if(|claim| claim.execution_id == failure.execution_id)
            .is_some();
        let newer_than_current = self
            .current()
            .is_none_or(|c| c.started() < failure.started_at);
        let newer_than_failed = self
            .failed
            .as_ref()
            .is_none_or(|f| f.started_at < failure.started_at);
        if newer_than_current && newer_than_failed {
            self.failed = Some(failure);
            return true;
        }
        released
    }

    /// What the environment was asked to run most recently, as far as this record knows: the
    /// newer of what runs and the last failed deployment (origin, when it started).
    pub fn last_requested(&self) -> Option<(ExecutionId, DateTime<Utc>)> {
        let current = self.current().map(|c| (c.origin().clone(), c.started()));
        let failed = self
            .failed
            .as_ref()
            .map(|f| (f.origin.clone(), f.started_at));
        match (current, failed) {
            (Some(c), Some(f)) => Some(if f.1 > c.1 { f } else { c }),
            (c, f) => c.or(f),
        }
    }

    /// Every digest in the kept history (pruning never deletes these).
    pub fn digests(&self) -> impl Iterator<Item = &str> {
        self.history.iter().map(|r| r.image.digest.as_str())
    }

    /// The revision `rollback` restores when the environment was last asked to run the release
    /// of `from`: the newest deployment of the newest release older than it.
    pub fn rollback_target(&self, from: &ExecutionId) -> Option<&DeployedRevision> {
        let mut best: Option<&DeployedRevision> = None;
        for r in self
            .history
            .iter()
            .filter(|r| r.origin() < from && !r.withdrawn)
        {
            // history is newest first: keep the first revision of the greatest origin
            if best.is_none_or(|b| r.origin() > b.origin()) {
                best = Some(r);
            }
        }
        best
    }

    /// `rollback --to`: the newest revision of the release an execution id (the release or a
    /// rollback of it) or a commit SHA prefix names.
    pub fn find(&self, selector: &str) -> Result<&DeployedRevision, RevisionLookupError> {
        let selector = selector.trim();
        let sha = selector.to_ascii_lowercase();
        let is_hex = sha.chars().all(|c| c.is_ascii_hexdigit());
        if let Ok(id) = selector.parse::<ExecutionId>() {
            let found = self
                .history
                .iter()
                .find(|r| r.execution_id == id || r.origin() == &id);
            // 26 hex digits also parse as a ULID: then it may be a SHA prefix
            match found {
                Some(r) => return Ok(r),
                None if !is_hex => {
                    return Err(RevisionLookupError::NotFound(format!("execution {id}")))
                }
                None => {}
            }
        }
        if !(7..=40).contains(&sha.len()) || !is_hex {
            return Err(RevisionLookupError::BadSelector);
        }
        let matching: Vec<&DeployedRevision> = self
            .history
            .iter()
            .filter(|r| r.commit.sha.to_ascii_lowercase().starts_with(&sha))
            .collect();
        let Some(first) = matching.first() else {
            return Err(RevisionLookupError::NotFound(format!("commit {sha}")));
        };
        let mut shas: Vec<String> = matching.iter().map(|r| r.commit.sha.clone()).collect();
        shas.sort();
        shas.dedup();
        if shas.len() > 1 {
            return Err(RevisionLookupError::Ambiguous {
                selector: sha,
                candidates: shas,
            });
        }
        Ok(first)
    }
}

/// The stored and answered form: `current` and `previous` are derived, written for readers of
/// the JSON (status, older CLIs) and for records from before the history was kept.
#[derive(Serialize)]
struct Wire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    current: Option<&'a DeployedRevision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<&'a DeployedRevision>,
    history: &'a [DeployedRevision],
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback: Option<&'a RollbackClaim>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<&'a FailedDeployment>,
}

#[derive(Deserialize)]
struct WireOwned {
    #[serde(default)]
    current: Option<DeployedRevision>,
    #[serde(default)]
    previous: Option<DeployedRevision>,
    #[serde(default)]
    history: Option<Vec<DeployedRevision>>,
    #[serde(default)]
    rollback: Option<RollbackClaim>,
    #[serde(default)]
    failed: Option<FailedDeployment>,
}

impl Serialize for EnvironmentRevisions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            current: self.current(),
            previous: self.previous(),
            history: &self.history,
            rollback: self.rollback.as_ref(),
            failed: self.failed.as_ref(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for EnvironmentRevisions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WireOwned::deserialize(d)?;
        let history = match w.history {
            Some(h) => h,
            // a record from before the history: current and previous only
            None => w.current.into_iter().chain(w.previous).collect(),
        };
        Ok(EnvironmentRevisions {
            history,
            rollback: w.rollback,
            failed: w.failed,
        })
    }
}

#[cfg(test)]
#[path = "revisions_tests.rs"]
mod tests;
