//! Answers: one struct per kind of answer, the refusal, and their decoding by request.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::request::{ControlRequest, RequestError};
use crate::domain::{
    Environment, EnvironmentRevisions, Execution, ExecutionId, PipelineDefinition, ValidationError,
};
use crate::ports::StoredPipeline;

/// What `apply_pipeline` did to the stored pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyResult {
    Created,
    Updated,
    Unchanged,
}

impl ApplyResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyResult::Created => "created",
            ApplyResult::Updated => "updated",
            ApplyResult::Unchanged => "unchanged",
        }
    }
}

impl std::fmt::Display for ApplyResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One changed field of a pipeline definition (absent before: added; absent after: removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// `apply_pipeline`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineApplied {
    pub pipeline: String,
    pub result: ApplyResult,
    pub version: u64,
    pub changes: Vec<FieldChange>,
}

/// One pipeline as `list_pipelines` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineSummary {
    pub name: String,
    /// `github:owner/repo` or `codecommit:name`.
    pub source: String,
    pub version: u64,
    /// The same as `applied_at` (kept for older readers).
    pub updated_at: DateTime<Utc>,
    pub applied_at: DateTime<Utc>,
    /// `null` for versions applied before shipgate recorded who.
    pub applied_by: Option<String>,
    pub definition: PipelineDefinition,
}

impl From<StoredPipeline> for PipelineSummary {
    fn from(p: StoredPipeline) -> PipelineSummary {
        PipelineSummary {
            name: p.definition.name.clone(),
            source: p.definition.source.describe(),
            version: p.version,
            updated_at: p.applied_at,
            applied_at: p.applied_at,
            applied_by: p.applied_by,
            definition: p.definition,
        }
    }
}

/// `list_pipelines`' answer: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineList {
    pub pipelines: Vec<PipelineSummary>,
    /// More pipelines follow: ask again with `after` = this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// One version of a pipeline, as `show_pipeline` with `history` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineVersion {
    pub version: u64,
    pub applied_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_by: Option<String>,
    /// What this version changed, relative to the version before it (empty for the first
    /// version, or when the version before it is no longer kept).
    pub changes: Vec<FieldChange>,
}

/// `show_pipeline`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineShown {
    /// The current definition, its version and who applied it when.
    pub pipeline: StoredPipeline,
    /// With `history`: every kept version, newest first (the current one included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<PipelineVersion>>,
}

/// What runs in each environment of a pipeline and what is in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineStatus {
    pub pipeline: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<EnvironmentRevisions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prod: Option<EnvironmentRevisions>,
    /// Executions not yet finished, newest first.
    pub in_flight: Vec<Execution>,
    /// The newest execution, finished or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<Execution>,
    /// A signed read-only status page link, when `link_days` asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_page: Option<StatusPageLink>,
}

/// A signed read-only status page link and when it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusPageLink {
    pub url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl PipelineStatus {
    /// The revisions of one environment.
    pub fn environment(&self, env: Environment) -> Option<&EnvironmentRevisions> {
        match env {
            Environment::Test => self.test.as_ref(),
            Environment::Prod => self.prod.as_ref(),
        }
    }
}

/// `status`' answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub pipelines: Vec<PipelineStatus>,
    /// More pipelines follow: ask again with `after` = this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `list_executions`' answer: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionList {
    pub executions: Vec<Execution>,
}

/// The answer of `show`, `approve`, `reject`, `retry` and `rollback` (the rollback execution).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionShown {
    pub execution: Execution,
}

/// `release`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    pub execution_id: ExecutionId,
    /// A retried request (same `request_id`): nothing new was started.
    pub duplicate: bool,
    pub execution: Execution,
}

/// A successful answer; what each command answers is fixed ([`ControlResponse::decode`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ControlResponse {
    Applied(PipelineApplied),
    Pipelines(PipelineList),
    PipelineShown(PipelineShown),
    Executions(ExecutionList),
    Execution(ExecutionShown),
    Status(StatusReport),
    Released(Released),
}

impl ControlResponse {
    /// Decode `answer` as the successful answer to `request`.
    pub fn decode(request: &ControlRequest, answer: Value) -> Result<Self, serde_json::Error> {
        use ControlRequest as R;
        Ok(match request {
            R::ApplyPipeline(_) => ControlResponse::Applied(serde_json::from_value(answer)?),
            R::ListPipelines(_) => ControlResponse::Pipelines(serde_json::from_value(answer)?),
            R::ShowPipeline(_) => ControlResponse::PipelineShown(serde_json::from_value(answer)?),
            R::ListExecutions(_) => ControlResponse::Executions(serde_json::from_value(answer)?),
            R::Show(_) | R::Approve(_) | R::Reject(_) | R::Retry(_) | R::Rollback(_) => {
                ControlResponse::Execution(serde_json::from_value(answer)?)
            }
            R::Status(_) => ControlResponse::Status(serde_json::from_value(answer)?),
            R::Release(_) => ControlResponse::Released(serde_json::from_value(answer)?),
        })
    }
}

/// A refusal: nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ControlError {
    /// `invalid_argument`, `unknown_command`, `invalid_pipeline`, `not_found`, `conflict`,
    /// `gone`, `unavailable`, `configuration` (a string, so a client also shows a code it does
    /// not know yet).
    pub code: String,
    pub message: String,
    /// For `invalid_pipeline`: every problem with its field path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<ValidationError>>,
}

/// `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    pub error: ControlError,
}

impl From<RequestError> for ControlError {
    fn from(e: RequestError) -> ControlError {
        ControlError {
            code: e.code().to_string(),
            message: e.to_string(),
            details: None,
        }
    }
}

/// What `shipgate-control` answered a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Done(Box<ControlResponse>),
    Refused(ControlError),
}

impl Answer {
    /// Decode the JSON answer to `request`: its typed answer, or the refusal.
    pub fn decode(request: &ControlRequest, answer: Value) -> Result<Answer, serde_json::Error> {
        let refused = matches!(&answer, Value::Object(o) if o.contains_key("error"));
        if refused {
            let ErrorAnswer { error } = serde_json::from_value(answer)?;
            return Ok(Answer::Refused(error));
        }
        ControlResponse::decode(request, answer).map(|r| Answer::Done(Box::new(r)))
    }
}
