//! Direct-invoke commands (`{"command": "...", ...}`) for the CLI and the console.
//! Always answers JSON: a result, or `{"error": {"code", "message"}}` with nothing changed.
//! Requests and answers are the typed [`shared::protocol`] the CLI speaks too.

use serde_json::Value;
use shared::app::approvals::{self, LinkError};
use shared::app::{control, status_page, AppError, Services};
use shared::domain::identity::{IdentityError, IdentityProof, VerifiedCaller, UNVERIFIED_CONSOLE};
use shared::domain::limits::{excerpt, MAX_DEFINITION_BYTES};
use shared::domain::operators::{Operators, OPERATORS_ENV};
use shared::domain::{Channel, PipelineDefinition, ValidationError, ValidationErrors, Verdict};
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
            LinkError::NotAnApprover(_) | LinkError::OwnChange(_) => CommandError {
                code: "forbidden",
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

/// The stack's operator patterns (`SHIPGATE_OPERATOR_ARN_PATTERNS`), read once per cold start.
/// An invalid value is kept as its error: operator commands are then refused (fail closed).
fn configured_operators() -> &'static Result<Operators, String> {
    static OPERATORS: std::sync::OnceLock<Result<Operators, String>> = std::sync::OnceLock::new();
    OPERATORS.get_or_init(|| {
        let parsed = Operators::parse(&std::env::var(OPERATORS_ENV).unwrap_or_default());
        if let Err(e) = &parsed {
            error!(error = %e, "operator patterns are invalid: operator commands are refused");
        }
        parsed
    })
}

/// Handle one command.
pub async fn handle(svc: &Services, input: Value) -> Value {
    handle_with(svc, configured_operators(), input).await
}

/// [`handle`] with the given operator patterns (tests).
pub async fn handle_with(
    svc: &Services,
    operators: &Result<Operators, String>,
    input: Value,
) -> Value {
    // one invocation: each pipeline definition is read at most once
    let svc = &svc.for_invocation();
    let answer = match decode(input) {
        Ok((request, proof)) => run_as_operator(svc, operators, request, proof).await,
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
fn decode(input: Value) -> Result<(ControlRequest, Option<IdentityProof>), CommandError> {
    match ControlRequest::decode_proven(input) {
        Ok((request, proof)) => {
            info!(command = %request.command(), proven = proof.is_some(), "control command");
            Ok((request, proof))
        }
        Err(e) => {
            if let Some(command) = e.command() {
                info!(command = %excerpt(command, 100), "control command");
            }
            Err(e.into())
        }
    }
}

/// Who acts on a request. Identity is what AWS proves, never what the payload claims:
///
/// - with an identity proof (the CLI sends one, see [`shared::domain::identity`]): the ARN STS
///   answers for it; a payload `actor` naming anyone else is refused;
/// - without one (the Lambda console, `aws lambda invoke`): [`UNVERIFIED_CONSOLE`], on the
///   console channel; a payload `actor` is refused (it could not be checked);
/// - commands that record no actor: `control`.
async fn acting(
    svc: &Services,
    request: &ControlRequest,
    proof: Option<&IdentityProof>,
) -> Result<Acting, CommandError> {
    let command = request.command();
    if !request.records_actor() {
        return Ok(Acting {
            actor: "control".into(),
            verified: None,
        });
    }
    let claimed = request.actor().map(str::trim).filter(|a| !a.is_empty());
    let Some(proof) = proof else {
        if let Some(claimed) = claimed {
            return Err(CommandError {
                code: "unverified_actor",
                message: format!(
                    "{command}: `actor` {:?} cannot be verified without an identity proof: use the shipgate CLI (it proves who you are with a signed sts:GetCallerIdentity), or leave `actor` out to be recorded as {UNVERIFIED_CONSOLE:?}; nothing was changed",
                    excerpt(claimed, 100)
                ),
                details: None,
            });
        }
        return Ok(Acting {
            actor: UNVERIFIED_CONSOLE.into(),
            verified: None,
        });
    };
    let caller = svc
        .callers
        .verify(proof, &request.binding())
        .await
        .map_err(|e| CommandError {
            code: match e {
                IdentityError::Unavailable(_) => "unavailable",
                _ => "unauthenticated",
            },
            message: format!("{command}: {e}; nothing was changed"),
            details: None,
        })?;
    if let Some(claimed) = claimed {
        if !caller.is(claimed) {
            info!(command, caller = %caller.arn, claimed = %excerpt(claimed, 100), "actor disagrees with the verified caller");
            return Err(CommandError {
                code: "actor_mismatch",
                message: format!(
                    "{command}: `actor` {:?} is not the verified caller {}; leave `actor` out (the verified caller is recorded); nothing was changed",
                    excerpt(claimed, 100),
                    caller.arn
                ),
                details: None,
            });
        }
    }
    Ok(Acting {
        actor: caller.arn.clone(),
        verified: Some(caller),
    })
}

/// Who acts, and what AWS verified about them (`None`: nothing).
#[derive(Debug, Clone)]
struct Acting {
    actor: String,
    verified: Option<VerifiedCaller>,
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

/// The commands only an operator may run (approve/reject follow the pipeline's approver list).
fn is_operator_command(request: &ControlRequest) -> bool {
    matches!(
        request,
        ControlRequest::ApplyPipeline(_)
            | ControlRequest::Retry(_)
            | ControlRequest::Rollback(_)
            | ControlRequest::Release(_)
    )
}

async fn run_as_operator(
    svc: &Services,
    operators: &Result<Operators, String>,
    request: ControlRequest,
    proof: Option<IdentityProof>,
) -> Result<ControlResponse, CommandError> {
    let acting = acting(svc, &request, proof.as_ref()).await?;
    if is_operator_command(&request) {
        let command = request.command();
        let forbidden = |message: String| CommandError {
            code: "forbidden",
            message,
            details: None,
        };
        match operators {
            Err(e) => {
                return Err(forbidden(format!(
                    "{command}: the stack's operator patterns are invalid ({e}); fix OperatorArnPatterns; nothing was changed"
                )))
            }
            Ok(ops) if !ops.allows(acting.verified.as_ref()) => {
                info!(command, actor = %acting.actor, "not an operator");
                return Err(forbidden(match &acting.verified {
                    Some(c) => format!(
                        "{command}: {} is not an operator of this shipgate (OperatorArnPatterns: {}); nothing was changed",
                        c.arn,
                        ops.describe()
                    ),
                    None => format!(
                        "{command}: this shipgate restricts operator commands to verified operators (OperatorArnPatterns); use the shipgate CLI, which proves who you are; nothing was changed"
                    ),
                }));
            }
            Ok(_) => {}
        }
    }
    run(svc, request, acting).await
}

async fn run(
    svc: &Services,
    request: ControlRequest,
    acting: Acting,
) -> Result<ControlResponse, CommandError> {
    let actor = acting.actor.clone();
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
            let execution = approvals::decide_as(
                svc,
                &a.execution_id,
                verdict,
                acting.verified.as_ref(),
                &actor,
                // a decision without a proof comes from the console, whatever it says
                if acting.verified.is_some() {
                    a.channel()
                } else {
                    Channel::Console
                },
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
            let started = control::release_as(
                svc,
                &a.pipeline,
                a.commit.as_deref(),
                a.request_id.as_deref(),
                &actor,
                acting.verified.as_ref().map(|c| c.arn.as_str()),
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
