//! Direct-invoke commands (`{"command": "...", ...}`) for the CLI and the console.
//! Always answers JSON: a result, or `{"error": {"code", "message"}}` with nothing changed.
//! Requests and answers are the typed [`shared::protocol`] the CLI speaks too.

use serde_json::Value;
use shared::app::approvals::{self, LinkError};
use shared::app::{control, status_page, AppError, Services};
use shared::domain::limits::{excerpt, MAX_DEFINITION_BYTES};
use shared::domain::{PipelineDefinition, ValidationError, ValidationErrors, Verdict};
use shared::protocol::{
    ApplyPipeline, ControlError, ControlRequest, ControlResponse, ErrorAnswer, ExecutionList,
    ExecutionShown, PipelineList, PipelineSummary, Released, RequestError, StatusPageLink,
    StatusReport,
};
use tracing::{error, info};

/// Every command, for `--help` texts and the unknown-command error.
pub const COMMANDS: &[&str] = ControlRequest::COMMANDS;

/// Longest string argument of a command (except `definition`, bounded as a pipeline file).
pub use shared::protocol::MAX_ARGUMENT_BYTES;

/// A command failed; rendered as `{"error": {...}}`.
#[derive(Debug)]
pub struct CommandError {
    pub code: &'static str,
    pub message: String,
    pub details: Option<Vec<ValidationError>>,
}

impl CommandError {
    fn invalid(message: impl Into<String>) -> CommandError {
        CommandError {
            code: "invalid_argument",
            message: message.into(),
            details: None,
        }
    }
}

impl From<AppError> for CommandError {
    fn from(e: AppError) -> Self {
        let details = match &e {
            AppError::Validation(v) => Some(v.0.clone()),
            _ => None,
        };
        if matches!(
            e,
            AppError::Store(_) | AppError::Service(_) | AppError::Config(_)
        ) {
            error!(error = %e, "control command failed");
        }
        CommandError {
            code: e.code(),
            message: e.to_string(),
            details,
        }
    }
}

impl From<LinkError> for CommandError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::App(a) => a.into(),
            LinkError::Expired(_) | LinkError::Superseded(_) => CommandError {
                code: "gone",
                message: e.to_string(),
                details: None,
            },
            LinkError::AlreadyDecided(_) | LinkError::NotAwaiting(_) | LinkError::OutOfOrder(_) => {
                CommandError {
                    code: "conflict",
                    message: e.to_string(),
                    details: None,
                }
            }
            other => CommandError {
                code: "invalid_argument",
                message: other.to_string(),
                details: None,
            },
        }
    }
}

impl From<RequestError> for CommandError {
    fn from(e: RequestError) -> Self {
        CommandError {
            code: e.code(),
            message: e.to_string(),
            details: None,
        }
    }
}

impl From<CommandError> for ControlError {
    fn from(e: CommandError) -> Self {
        ControlError {
            code: e.code.to_string(),
            message: e.message,
            details: e.details,
        }
    }
}

/// Handle one command.
pub async fn handle(svc: &Services, input: Value) -> Value {
    // one invocation: each pipeline definition is read at most once
    let svc = &svc.for_invocation();
    let answer = match decode(input) {
        Ok(request) => run(svc, request).await,
        Err(e) => Err(e),
    };
    let encoded = match answer {
        Ok(response) => serde_json::to_value(response),
        Err(e) => serde_json::to_value(ErrorAnswer {
            error: ControlError::from(e),
        }),
    };
    // plain data with string keys: encoding cannot fail
    encoded.unwrap_or(Value::Null)
}

/// The typed request, logged with its command (an unknown one as an excerpt).
fn decode(input: Value) -> Result<ControlRequest, CommandError> {
    match ControlRequest::decode(input) {
        Ok(request) => {
            info!(command = %request.command(), "control command");
            Ok(request)
        }
        Err(e) => {
            if let Some(command) = e.command() {
                info!(command = %excerpt(command, 100), "control command");
            }
            Err(e.into())
        }
    }
}

/// Who acts on a request: the actor it asserts (the CLI sends its caller's IAM ARN), required
/// for a decision, `control` otherwise. The one place to change when actors are verified.
fn acting(request: &ControlRequest) -> Result<String, CommandError> {
    let command = request.command();
    match (request, request.actor()) {
        (ControlRequest::Approve(_) | ControlRequest::Reject(_), None) => Err(
            CommandError::invalid(format!("{command}: missing field `actor`")),
        ),
        (ControlRequest::Approve(_) | ControlRequest::Reject(_), Some(a))
            if a.trim().is_empty() =>
        {
            Err(CommandError::invalid(format!(
                "{command}: `actor` must not be empty"
            )))
        }
        (ControlRequest::Approve(_) | ControlRequest::Reject(_), Some(a)) => Ok(a.to_string()),
        (_, a) => Ok(a
            .filter(|s| !s.trim().is_empty())
            .unwrap_or("control")
            .to_string()),
    }
}

/// The definition `apply_pipeline` carries, validated.
fn definition(a: ApplyPipeline) -> Result<PipelineDefinition, CommandError> {
    match (a.pipeline, a.definition) {
        // the object is bounded like a file (the Lambda payload alone allows 6 MB)
        (Some(v), None) => match serde_json::to_vec(&v).map(|b| b.len()) {
            Ok(n) if n > MAX_DEFINITION_BYTES => Err(ValidationErrors(vec![ValidationError {
                path: "pipeline".into(),
                message: format!("{n} bytes as JSON; at most {MAX_DEFINITION_BYTES} are allowed"),
            }])),
            _ => PipelineDefinition::from_value(&v),
        },
        (None, Some(text)) => PipelineDefinition::parse(&text, a.format.unwrap_or_default().into()),
        _ => {
            return Err(CommandError::invalid(
                "apply_pipeline: give either `pipeline` (an object) or `definition` (text with `format`)",
            ))
        }
    }
    .map_err(|e| AppError::from(e).into())
}

async fn run(svc: &Services, request: ControlRequest) -> Result<ControlResponse, CommandError> {
    let actor = acting(&request)?;
    Ok(match request {
        ControlRequest::ApplyPipeline(a) => {
            let definition = definition(a)?;
            ControlResponse::Applied(control::apply_pipeline(svc, definition, &actor).await?)
        }
        ControlRequest::ListPipelines(f) => {
            let page = control::list_pipelines(
                svc,
                f.after.as_deref(),
                f.limit.unwrap_or(control::MAX_PIPELINES_LISTED),
            )
            .await?;
            let mut pipelines = page.items;
            // newest first within a page
            pipelines.sort_by_key(|p| std::cmp::Reverse(p.applied_at));
            ControlResponse::Pipelines(PipelineList {
                pipelines: pipelines.into_iter().map(PipelineSummary::from).collect(),
                next: page.next,
            })
        }
        ControlRequest::ShowPipeline(a) => ControlResponse::PipelineShown(
            control::show_pipeline(svc, &a.pipeline, a.history).await?,
        ),
        ControlRequest::ListExecutions(a) => {
            svc.pipeline(&a.pipeline).await?;
            let executions = svc
                .store
                .list_executions(&a.pipeline, a.limit())
                .await
                .map_err(AppError::from)?;
            ControlResponse::Executions(ExecutionList { executions })
        }
        ControlRequest::Show(a) => ControlResponse::Execution(ExecutionShown {
            execution: svc.execution(&a.execution_id).await?,
        }),
        ControlRequest::Status(a) => {
            let mut report = match a.pipeline.as_deref() {
                Some(name) => StatusReport {
                    pipelines: control::status(svc, Some(name)).await?,
                    next: None,
                },
                None => {
                    let page = control::status_page(
                        svc,
                        a.after.as_deref(),
                        a.limit.unwrap_or(control::MAX_STATUS_PIPELINES),
                    )
                    .await?;
                    StatusReport {
                        pipelines: page.items,
                        next: page.next,
                    }
                }
            };
            if let Some(days) = a.link_days {
                let validity = shared::domain::status_token::days(i64::from(days.clamp(1, 90)));
                for p in &mut report.pipelines {
                    let (url, expires_at) =
                        status_page::status_page_link(svc, &p.pipeline, validity).await?;
                    p.status_page = Some(StatusPageLink { url, expires_at });
                }
            }
            ControlResponse::Status(report)
        }
        ControlRequest::Approve(ref a) | ControlRequest::Reject(ref a) => {
            let verdict = if matches!(request, ControlRequest::Approve(_)) {
                Verdict::Approve
            } else {
                Verdict::Reject
            };
            let execution = approvals::decide(
                svc,
                &a.execution_id,
                verdict,
                &actor,
                a.channel(),
                a.comment.clone(),
            )
            .await?;
            ControlResponse::Execution(ExecutionShown { execution })
        }
        ControlRequest::Retry(a) => ControlResponse::Execution(ExecutionShown {
            execution: control::retry(svc, &a.execution_id, &actor).await?,
        }),
        ControlRequest::Rollback(a) => ControlResponse::Execution(ExecutionShown {
            execution: control::rollback(svc, &a.pipeline, a.environment, a.to.as_deref(), &actor)
                .await?,
        }),
        ControlRequest::Release(a) => {
            let started = control::release(
                svc,
                &a.pipeline,
                a.commit.as_deref(),
                a.request_id.as_deref(),
                &actor,
            )
            .await?;
            let execution = svc.execution(&started.execution_id).await?;
            ControlResponse::Released(Released {
                execution_id: started.execution_id,
                duplicate: started.duplicate,
                execution,
            })
        }
    })
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
